package vrrp

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

type fakeConn struct {
	local netip.Addr
	sent  []Advert
	err   error
}

func (c *fakeConn) Send(a *Advert) error {
	if c.err != nil {
		return c.err
	}
	c.sent = append(c.sent, *a)
	return nil
}
func (c *fakeConn) Recv() (*Advert, error) { select {} }
func (c *fakeConn) LocalAddr() netip.Addr  { return c.local }
func (c *fakeConn) Close() error           { return nil }

type fakeActions struct {
	vips      bool
	log       []string
	announced int
}

func (a *fakeActions) AddVIPs() error    { a.vips = true; a.log = append(a.log, "add"); return nil }
func (a *fakeActions) RemoveVIPs() error { a.vips = false; a.log = append(a.log, "remove"); return nil }
func (a *fakeActions) Announce(n int) error {
	a.announced += n
	a.log = append(a.log, "announce")
	return nil
}

type fakeNotifier struct{ states []State }

func (n *fakeNotifier) Notify(_ string, s State, _ uint8) { n.states = append(n.states, s) }

type fakeCheck string

func (c fakeCheck) Name() string                               { return string(c) }
func (c fakeCheck) Watch(ctx context.Context, _ func(ok bool)) { <-ctx.Done() }

var (
	local = netip.MustParseAddr("10.0.0.5")
	lower = netip.MustParseAddr("10.0.0.4")
	upper = netip.MustParseAddr("10.0.0.6")
	vip   = netip.MustParsePrefix("10.0.0.100/24")
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

type harness struct {
	t    *testing.T
	e    *Engine
	clk  *fakeClock
	conn *fakeConn
	act  *fakeActions
	not  *fakeNotifier
	logs *bytes.Buffer
}

func baseConfig() Config {
	return Config{Name: "VI_1", Interface: "eth0", VRID: 7, Priority: 100, VIPs: []netip.Prefix{vip}}
}

func newHarness(t *testing.T, mods ...func(*Config)) *harness {
	t.Helper()
	cfg := baseConfig()
	for _, m := range mods {
		m(&cfg)
	}
	cfg, err := cfg.Validate()
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, clk: &fakeClock{now: t0}, conn: &fakeConn{local: local},
		act: &fakeActions{}, not: &fakeNotifier{}, logs: &bytes.Buffer{}}
	h.e = NewEngine(cfg, Env{Conn: h.conn, Clock: h.clk, Actions: h.act, Notifier: h.not,
		Logger: zerolog.New(h.logs)})
	return h
}

// advance moves the fake clock forward by d, firing every timer on the way
// at its exact time, as the real loop does.
func (h *harness) advance(d time.Duration) {
	end := h.clk.now.Add(d)
	for {
		n := h.e.Next()
		if n.IsZero() || n.After(end) {
			break
		}
		if n.After(h.clk.now) {
			h.clk.now = n
		}
		h.e.Tick()
	}
	h.clk.now = end
}

func (h *harness) recv(prio uint8, src netip.Addr, interval time.Duration) {
	h.e.Receive(&Advert{Version: h.e.cfg.Version, VRID: h.e.cfg.VRID, Priority: prio,
		Interval: interval, Src: src, Dst: GroupV4, TTL: 255, Addrs: []netip.Addr{vip.Addr()},
		AuthType: h.e.params.AuthType, Auth: h.e.params.Auth})
}

func (h *harness) wantState(s State) {
	h.t.Helper()
	if got := h.e.Status().State; got != s {
		h.t.Fatalf("state %v, want %v", got, s)
	}
}

func (h *harness) lastSent() Advert {
	h.t.Helper()
	if len(h.conn.sent) == 0 {
		h.t.Fatal("nothing sent")
	}
	return h.conn.sent[len(h.conn.sent)-1]
}

// skewOf and downOf are the RFC 5798 §6.1 formulas, written out again.
func skewOf(prio int, ai time.Duration) time.Duration {
	return time.Duration((256 - prio)) * ai / 256
}
func downOf(prio int, ai time.Duration) time.Duration { return 3*ai + skewOf(prio, ai) }

func TestTimers(t *testing.T) {
	tests := []struct {
		prio       uint8
		ai         time.Duration
		skew, down time.Duration
	}{
		{100, time.Second, 609375 * time.Microsecond, 3609375 * time.Microsecond},
		{254, time.Second, 7812500 * time.Nanosecond, 3007812500 * time.Nanosecond},
		{1, time.Second, 996093750 * time.Nanosecond, 3996093750 * time.Nanosecond},
		{100, 100 * time.Millisecond, 60937500 * time.Nanosecond, 360937500 * time.Nanosecond},
	}
	for _, tt := range tests {
		h := newHarness(t, func(c *Config) { c.Priority = tt.prio; c.AdvertInterval = tt.ai })
		if s, d := h.e.skew(), h.e.masterDown(); s != tt.skew || d != tt.down {
			t.Errorf("prio %d ai %v: skew %v down %v, want %v %v", tt.prio, tt.ai, s, d, tt.skew, tt.down)
		}
	}
}

func TestInitToBackupThenMaster(t *testing.T) {
	h := newHarness(t)
	h.e.Start()
	h.wantState(StateBackup)
	if len(h.act.log) != 1 || h.act.log[0] != "remove" {
		t.Fatalf("start-up actions %v, want VIPs removed", h.act.log)
	}
	if len(h.conn.sent) != 0 {
		t.Fatal("backup sent an advert")
	}
	h.advance(downOf(100, time.Second) - time.Nanosecond)
	h.wantState(StateBackup)
	h.advance(time.Nanosecond)
	h.wantState(StateMaster)
	if a := h.lastSent(); a.Priority != 100 || a.Interval != time.Second || a.Version != 3 {
		t.Fatalf("advert %+v", a)
	}
	if !h.act.vips || h.act.announced != DefaultGARPRepeat {
		t.Fatalf("actions %v, announced %d", h.act.log, h.act.announced)
	}
	// One advert per interval.
	h.advance(10 * time.Second)
	if n := len(h.conn.sent); n != 11 {
		t.Fatalf("%d adverts in 10s, want 11", n)
	}
	if got := h.not.states; len(got) != 2 || got[0] != StateBackup || got[1] != StateMaster {
		t.Fatalf("notified %v", got)
	}
	if s := h.e.Status(); s.MasterAddr != local || s.Counters.BecameMaster != 1 || s.Counters.AdvertsSent != 11 {
		t.Fatalf("status %+v", s)
	}
}

func TestOwnerBecomesMasterAtOnce(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Priority = 255 })
	h.e.Start()
	h.wantState(StateMaster)
	if a := h.lastSent(); a.Priority != 255 {
		t.Fatalf("advert %+v", a)
	}
}

func TestBackupResetsOnHigherOrEqual(t *testing.T) {
	for _, prio := range []uint8{100, 200, 255} {
		h := newHarness(t)
		h.e.Start()
		for range 20 {
			h.advance(time.Second)
			h.recv(prio, upper, time.Second)
		}
		h.wantState(StateBackup)
		if s := h.e.Status(); s.MasterAddr != upper {
			t.Fatalf("master %v", s.MasterAddr)
		}
		// Master dies: after Master_Down_Interval we take over.
		h.advance(downOf(100, time.Second))
		h.wantState(StateMaster)
	}
}

func TestPreemptLowerPriority(t *testing.T) {
	h := newHarness(t)
	h.e.Start()
	for range 3 {
		h.advance(time.Second)
		h.recv(50, lower, time.Second)
	}
	// Lower priority adverts do not reset the timer: we preempt when the
	// timer armed at start-up fires.
	h.advance(downOf(100, time.Second) - 3*time.Second)
	h.wantState(StateMaster)
}

func TestNoPreempt(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.NoPreempt = true })
	h.e.Start()
	for range 20 {
		h.advance(time.Second)
		h.recv(50, lower, time.Second)
	}
	h.wantState(StateBackup)
}

func TestPreemptDelay(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.PreemptDelay = 10 * time.Second })
	h.e.Start()
	for range 9 {
		h.advance(time.Second)
		h.recv(50, lower, time.Second)
	}
	h.wantState(StateBackup)
	// At 9s the last accepted advert armed the timer for 9s+MDI; adverts
	// after the delay are ignored, so we take over then.
	h.advance(time.Second)
	h.recv(50, lower, time.Second)
	h.advance(downOf(100, time.Second) - time.Second - time.Nanosecond)
	h.wantState(StateBackup)
	h.advance(time.Nanosecond)
	h.wantState(StateMaster)
}

func TestBackupPriorityZeroSkew(t *testing.T) {
	h := newHarness(t)
	h.e.Start()
	h.advance(time.Second)
	h.recv(200, upper, time.Second)
	h.advance(500 * time.Millisecond)
	h.recv(0, upper, time.Second)
	if s := h.e.Status(); s.Counters.Priority0Received != 1 {
		t.Fatalf("counters %+v", s.Counters)
	}
	h.advance(skewOf(100, time.Second) - time.Nanosecond)
	h.wantState(StateBackup)
	h.advance(time.Nanosecond)
	h.wantState(StateMaster)
}

func TestMasterPriorityZeroSendsAdvert(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Priority = 255 })
	h.e.Start()
	h.advance(300 * time.Millisecond)
	n := len(h.conn.sent)
	h.recv(0, upper, time.Second)
	if len(h.conn.sent) != n+1 {
		t.Fatal("no advert in answer to priority 0")
	}
	// The Adver_Timer was reset: next advert one interval later.
	h.advance(time.Second - time.Nanosecond)
	if len(h.conn.sent) != n+1 {
		t.Fatal("adver timer not reset")
	}
	h.advance(time.Nanosecond)
	if len(h.conn.sent) != n+2 {
		t.Fatal("no advert after the interval")
	}
	h.wantState(StateMaster)
}

func TestMasterYieldsToHigherAndLearnsInterval(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Priority = 254 })
	h.e.Start()
	h.advance(4 * time.Second)
	h.wantState(StateMaster)
	h.recv(255, lower, 100*time.Millisecond)
	h.wantState(StateBackup)
	if h.act.vips {
		t.Fatal("VIPs still held")
	}
	if s := h.e.Status(); s.MasterInterval != 100*time.Millisecond || s.MasterAddr != lower {
		t.Fatalf("status %+v", s)
	}
	h.advance(downOf(254, 100*time.Millisecond) - time.Nanosecond)
	h.wantState(StateBackup)
	h.advance(time.Nanosecond)
	h.wantState(StateMaster)
}

func TestBackupLearnsInterval(t *testing.T) {
	h := newHarness(t)
	h.e.Start()
	h.recv(200, upper, 100*time.Millisecond)
	h.advance(downOf(100, 100*time.Millisecond) - time.Nanosecond)
	h.wantState(StateBackup)
	h.advance(time.Nanosecond)
	h.wantState(StateMaster)
	// As master it advertises its own interval again.
	if a := h.lastSent(); a.Interval != time.Second {
		t.Fatalf("advert interval %v", a.Interval)
	}
}

func TestEqualPriorityTieBreak(t *testing.T) {
	tests := []struct {
		name string
		src  netip.Addr
		want State
	}{
		{"higher address wins", upper, StateBackup},
		{"lower address loses", lower, StateMaster},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.e.Start()
			h.advance(4 * time.Second)
			h.wantState(StateMaster)
			h.recv(100, tt.src, time.Second)
			h.wantState(tt.want)
		})
	}
}

func TestSplitBrainHealing(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.GARPDelay = -1 })
	h.e.Start()
	h.advance(4 * time.Second)
	n, a := len(h.conn.sent), h.act.announced
	h.recv(50, upper, time.Second)
	h.wantState(StateMaster)
	if len(h.conn.sent) != n+1 || h.act.announced != a+DefaultGARPRepeat {
		t.Fatalf("sent %d->%d announced %d->%d", n, len(h.conn.sent), a, h.act.announced)
	}
}

func TestGARPSchedule(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Priority = 255
		c.GARPRepeat = 3
		c.GARPDelay = 5 * time.Second
		c.GARPRefresh = 60 * time.Second
	})
	h.e.Start()
	if h.act.announced != 3 {
		t.Fatalf("announced %d", h.act.announced)
	}
	h.advance(5 * time.Second)
	if h.act.announced != 6 {
		t.Fatalf("after delay announced %d", h.act.announced)
	}
	h.advance(55*time.Second - time.Nanosecond)
	if h.act.announced != 6 {
		t.Fatalf("before refresh announced %d", h.act.announced)
	}
	h.advance(time.Nanosecond)
	h.advance(60 * time.Second)
	if h.act.announced != 12 {
		t.Fatalf("after two refreshes announced %d", h.act.announced)
	}
}

func TestStopAsMaster(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Priority = 255 })
	h.e.Start()
	h.e.Stop()
	if a := h.lastSent(); a.Priority != 0 {
		t.Fatalf("last advert priority %d, want 0", a.Priority)
	}
	if h.act.vips {
		t.Fatal("VIPs kept")
	}
	h.wantState(StateInit)
	if !h.e.Next().IsZero() {
		t.Fatal("timers armed after stop")
	}
	if s := h.not.states; s[len(s)-1] != StateInit {
		t.Fatalf("notified %v", s)
	}
}

func TestStopAsBackupSendsNothing(t *testing.T) {
	h := newHarness(t)
	h.e.Start()
	h.e.Stop()
	if len(h.conn.sent) != 0 {
		t.Fatal("backup sent on stop")
	}
}

func TestOwnAdvertIgnored(t *testing.T) {
	h := newHarness(t)
	h.e.Start()
	h.advance(4 * time.Second)
	h.recv(200, local, time.Second)
	h.wantState(StateMaster)
}

func TestDiscardsCountedNotActedOn(t *testing.T) {
	v2 := func(c *Config) { c.Version = 2; c.AuthPass = "secret" }
	tests := []struct {
		name  string
		mods  []func(*Config)
		a     func(a *Advert)
		cause Cause
	}{
		{"vrid", nil, func(a *Advert) { a.VRID = 8 }, CauseVRID},
		{"version", nil, func(a *Advert) { a.Version = 2 }, CauseVersion},
		{"v2 auth type", []func(*Config){v2}, func(a *Advert) { a.AuthType = AuthNone }, CauseAuthType},
		{"v2 password", []func(*Config){v2}, func(a *Advert) { a.Auth = AuthData("wrong") }, CauseAuth},
		{"v2 interval", []func(*Config){v2}, func(a *Advert) { a.Interval = 2 * time.Second }, CauseInterval},
	}
	for _, tt := range tests {
		for _, st := range []State{StateBackup, StateMaster} {
			t.Run(tt.name+"/"+st.String(), func(t *testing.T) {
				h := newHarness(t, tt.mods...)
				h.e.Start()
				if st == StateMaster {
					h.advance(4 * time.Second)
				}
				h.wantState(st)
				next, sent := h.e.Next(), len(h.conn.sent)
				// Priority 0 from a higher address would move either state.
				a := &Advert{Version: h.e.cfg.Version, VRID: 7, Priority: 0, Interval: time.Second,
					Src: upper, Dst: GroupV4, TTL: 255, AuthType: h.e.params.AuthType, Auth: h.e.params.Auth}
				tt.a(a)
				h.e.Receive(a)
				h.e.Receive(a)
				h.wantState(st)
				if h.e.Next() != next || len(h.conn.sent) != sent {
					t.Fatal("discarded advert was acted on")
				}
				s := h.e.Status()
				if s.Counters.Discards[tt.cause.String()] != 2 || s.Counters.AdvertsReceived != 0 {
					t.Fatalf("counters %+v", s.Counters)
				}
			})
		}
	}
}

func TestConnDiscardsCounted(t *testing.T) {
	h := newHarness(t)
	h.e.Start()
	for _, c := range Causes() {
		h.e.Discard(&DiscardError{Cause: c, Detail: "test"})
	}
	h.e.Discard(errors.New("not a discard"))
	s := h.e.Status()
	for _, c := range Causes() {
		if s.Counters.Discards[c.String()] != 1 {
			t.Errorf("%v: %d", c, s.Counters.Discards[c.String()])
		}
	}
	h.wantState(StateBackup)
}

func TestDiscardLogRateLimited(t *testing.T) {
	h := newHarness(t)
	h.e.Start()
	h.logs.Reset()
	for range 100 {
		h.e.Discard(&DiscardError{Cause: CauseTTL, Detail: "ttl 64"})
	}
	if n := strings.Count(h.logs.String(), "advert discarded"); n != 1 {
		t.Fatalf("%d log lines for 100 discards", n)
	}
	h.e.Discard(&DiscardError{Cause: CauseChecksum})
	if n := strings.Count(h.logs.String(), "advert discarded"); n != 2 {
		t.Fatal("another cause is limited separately")
	}
	h.advance(logEvery)
	h.e.Discard(&DiscardError{Cause: CauseTTL, Detail: "ttl 64"})
	if !strings.Contains(h.logs.String(), `"suppressed":99`) {
		t.Fatalf("suppressed count not logged: %s", h.logs)
	}
}

func TestTrackWeight(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Priority = 150
		c.Tracks = []Track{{Check: fakeCheck("a"), Weight: 30}, {Check: fakeCheck("b"), Weight: 200}}
	})
	h.e.Start()
	h.advance(4 * time.Second)
	h.wantState(StateMaster)
	n := len(h.conn.sent)
	h.e.SetCheck("a", false)
	if s := h.e.Status(); s.Priority != 120 || len(s.FailingChecks) != 1 {
		t.Fatalf("status %+v", s)
	}
	if len(h.conn.sent) != n+1 || h.lastSent().Priority != 120 {
		t.Fatal("new priority not advertised at once")
	}
	h.e.SetCheck("b", false)
	if p := h.e.Status().Priority; p != 1 {
		t.Fatalf("priority %d, want clamped to 1", p)
	}
	h.e.SetCheck("unknown", false)
	h.e.SetCheck("a", true)
	h.e.SetCheck("b", true)
	if p := h.e.Status().Priority; p != 150 {
		t.Fatalf("priority %d after recovery", p)
	}
	// A backup with a lowered priority yields to a master it would have
	// preempted.
	h.recv(140, upper, time.Second)
	h.wantState(StateMaster)
	h.recv(160, upper, time.Second)
	h.wantState(StateBackup)
	h.e.SetCheck("a", false) // 120
	for range 10 {
		h.advance(time.Second)
		h.recv(130, upper, time.Second)
	}
	h.wantState(StateBackup)
	// Back at 150 it preempts the 130 master.
	h.e.SetCheck("a", true)
	for range 4 {
		h.advance(time.Second)
		h.recv(130, upper, time.Second)
	}
	h.wantState(StateMaster)
}

func TestTrackFault(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.Tracks = []Track{{Check: fakeCheck("link"), Weight: 0}}
	})
	h.e.Start()
	h.advance(4 * time.Second)
	h.wantState(StateMaster)
	h.e.SetCheck("link", false)
	h.wantState(StateFault)
	if h.lastSent().Priority != 0 || h.act.vips {
		t.Fatal("fault from master must send priority 0 and drop the VIPs")
	}
	// Nothing moves a faulted instance.
	h.recv(0, upper, time.Second)
	h.advance(time.Minute)
	h.wantState(StateFault)
	h.e.SetCheck("link", true)
	h.wantState(StateBackup)
	h.advance(downOf(100, time.Second))
	h.wantState(StateMaster)
	want := []State{StateBackup, StateMaster, StateFault, StateBackup, StateMaster}
	if got := h.not.states; len(got) != len(want) {
		t.Fatalf("notified %v, want %v", got, want)
	}
}

func TestStartInFault(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Tracks = []Track{{Check: fakeCheck("x")}} })
	h.e.SetCheck("x", false)
	h.e.Start()
	h.wantState(StateFault)
}

func TestSendErrorsCounted(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Priority = 255 })
	h.conn.err = errors.New("network is down")
	h.e.Start()
	h.advance(3 * time.Second)
	if s := h.e.Status(); s.Counters.SendErrors != 4 || s.Counters.AdvertsSent != 0 {
		t.Fatalf("counters %+v", s.Counters)
	}
}

func TestAddrMismatchCountedNotDiscarded(t *testing.T) {
	h := newHarness(t)
	h.e.Start()
	h.e.Receive(&Advert{Version: 3, VRID: 7, Priority: 200, Interval: time.Second, Src: upper, Dst: GroupV4, TTL: 255})
	s := h.e.Status()
	if s.Counters.AddrMismatch != 1 || s.Counters.AdvertsReceived != 1 || s.MasterAddr != upper {
		t.Fatalf("status %+v", s)
	}
}
