package health_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/directorlb/director/director/health"
	"github.com/directorlb/director/director/health/healthtest"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// recorder is a checker whose results follow a script ('+' pass, '-'
// fail; after the script, the last entry repeats) and that records the
// fake time of every call.
type recorder struct {
	clock  *healthtest.Clock
	script string

	mu    sync.Mutex
	calls []time.Time
}

func (r *recorder) Check(context.Context) health.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := min(len(r.calls), len(r.script)-1)
	r.calls = append(r.calls, r.clock.Now())
	if r.script == "" || r.script[i] == '+' {
		return health.Pass(7 * time.Millisecond)
	}
	return health.Fail(health.Cause{Kind: health.CauseStatus, Code: 503}, 7*time.Millisecond)
}

func (r *recorder) Calls() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// gated is a checker that blocks until released (or, if honourCtx, until
// its context ends) and tracks concurrency.
type gated struct {
	honourCtx bool
	started   chan struct{}
	release   chan struct{}
	inflight  atomic.Int32
	most      atomic.Int32
	calls     atomic.Int32
}

func newGated(honourCtx bool) *gated {
	return &gated{honourCtx: honourCtx, started: make(chan struct{}, 100), release: make(chan struct{})}
}

func (g *gated) Check(ctx context.Context) health.Result {
	n := g.inflight.Add(1)
	defer g.inflight.Add(-1)
	for {
		m := g.most.Load()
		if n <= m || g.most.CompareAndSwap(m, n) {
			break
		}
	}
	g.calls.Add(1)
	g.started <- struct{}{}
	done := ctx.Done()
	if !g.honourCtx {
		done = nil
	}
	select {
	case <-g.release:
		return health.Pass(0)
	case <-done:
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return health.Fail(health.Cause{Kind: health.CauseTimeout}, 0)
		}
		return health.Fail(health.Cause{Kind: health.CauseCanceled}, 0)
	}
}

// harness runs a Monitor on a fake clock.
type harness struct {
	t      *testing.T
	clock  *healthtest.Clock
	mon    *health.Monitor
	events chan health.Event
	ctx    context.Context // bounds every wait in the test
	stop   context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T, cfg health.Config) *harness {
	t.Helper()
	h := &harness{t: t, clock: healthtest.NewClock(epoch), events: make(chan health.Event, 100), done: make(chan error, 1)}
	cfg.Clock = h.clock
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(1, 2))
	}
	if cfg.OnTransition == nil {
		cfg.OnTransition = func(e health.Event) { h.events <- e }
	}
	mon, err := health.NewMonitor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.mon = mon
	var cancel context.CancelFunc
	h.ctx, cancel = context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return h
}

func (h *harness) run() {
	runCtx, stop := context.WithCancel(context.Background())
	h.stop = stop
	go func() { h.done <- h.mon.Run(runCtx) }()
	h.t.Cleanup(func() { h.shutdown() })
}

// shutdown stops the monitor and waits for Run to return.
func (h *harness) shutdown() {
	h.t.Helper()
	if h.stop == nil {
		return
	}
	h.stop()
	h.stop = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run returned %v", err)
		}
	case <-time.After(generousTimeout): // h.ctx is done during cleanup
		h.t.Fatal("Run did not return after cancel")
	}
}

func (h *harness) add(tgt health.Target) {
	h.t.Helper()
	if err := h.mon.Add(tgt); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) waitTimers(n int) {
	h.t.Helper()
	if err := h.clock.WaitTimers(h.ctx, n); err != nil {
		h.t.Fatalf("waiting for %d armed timers (have %d): %v", n, h.clock.Timers(), err)
	}
}

// step fires the next timer and waits until n timers are armed again,
// that is, until every target that was due has been checked.
func (h *harness) step(n int) {
	h.t.Helper()
	if _, ok := h.clock.AdvanceToNext(); !ok {
		h.t.Fatal("no timer armed")
	}
	h.waitTimers(n)
}

func (h *harness) event() health.Event {
	h.t.Helper()
	select {
	case e := <-h.events:
		return e
	case <-h.ctx.Done():
		h.t.Fatal("no event")
	}
	return health.Event{}
}

func (h *harness) noEvent() {
	h.t.Helper()
	select {
	case e := <-h.events:
		h.t.Fatalf("unexpected event %+v", e)
	default:
	}
}

func (h *harness) status(key string) health.Status {
	h.t.Helper()
	st, ok := h.mon.Status(key)
	if !ok {
		h.t.Fatalf("no status for %q", key)
	}
	return st
}

func TestMonitorJitter(t *testing.T) {
	h := newHarness(t, health.Config{})
	const (
		n        = 20
		interval = 10 * time.Second
		jitter   = health.DefaultJitter
	)
	recs := make([]*recorder, n)
	for i := range recs {
		recs[i] = &recorder{clock: h.clock}
		h.add(health.Target{Key: fmt.Sprintf("t%02d", i), Checker: recs[i], Interval: interval})
	}
	h.run()
	h.waitTimers(n)
	for range 100 * n {
		h.step(n)
		if !slices.ContainsFunc(recs, func(r *recorder) bool { return len(r.Calls()) < 4 }) {
			break
		}
	}

	var firsts []time.Duration
	var gaps []time.Duration
	for i, r := range recs {
		calls := r.Calls()
		if len(calls) < 4 {
			t.Fatalf("target %d checked %d times", i, len(calls))
		}
		first := calls[0].Sub(epoch)
		if first < 0 || first >= interval {
			t.Errorf("target %d: first check at +%v, want within [0, %v)", i, first, interval)
		}
		firsts = append(firsts, first)
		for j := 1; j < len(calls); j++ {
			gap := calls[j].Sub(calls[j-1])
			lo := time.Duration(float64(interval) * (1 - jitter))
			hi := time.Duration(float64(interval) * (1 + jitter))
			if gap < lo || gap > hi {
				t.Errorf("target %d: %v between checks, want within [%v, %v]", i, gap, lo, hi)
			}
			gaps = append(gaps, gap)
		}
	}
	slices.Sort(firsts)
	if d := len(slices.Compact(slices.Clone(firsts))); d != n {
		t.Errorf("%d distinct first-check offsets among %d targets: %v", d, n, firsts)
	}
	if spread := firsts[n-1] - firsts[0]; spread < interval/2 {
		t.Errorf("first checks spread over %v only, want at least %v: %v", spread, interval/2, firsts)
	}
	slices.Sort(gaps)
	if gaps[0] == gaps[len(gaps)-1] {
		t.Errorf("every interval was %v: no jitter", gaps[0])
	}
}

func TestMonitorNoJitterOption(t *testing.T) {
	h := newHarness(t, health.Config{Jitter: -1})
	r := &recorder{clock: h.clock}
	h.add(health.Target{Key: "a", Checker: r, Interval: time.Second})
	h.run()
	h.waitTimers(1)
	for range 4 {
		h.step(1)
	}
	calls := r.Calls()
	for j := 1; j < len(calls); j++ {
		if gap := calls[j].Sub(calls[j-1]); gap != time.Second {
			t.Errorf("gap %v with jitter disabled, want 1s", gap)
		}
	}
}

func TestMonitorNoOverlap(t *testing.T) {
	h := newHarness(t, health.Config{})
	g := newGated(false)
	h.add(health.Target{Key: "slow", Checker: g, Interval: time.Second, Timeout: time.Hour})
	h.run()
	h.waitTimers(1)
	h.clock.AdvanceToNext()
	<-g.started
	// The check runs far past its interval: nothing may start another.
	for range 10 {
		h.clock.Advance(time.Second)
	}
	if n := h.clock.Timers(); n != 0 {
		t.Errorf("%d timers armed while the check runs, want 0", n)
	}
	select {
	case <-g.started:
		t.Fatal("a second check started while the first was running")
	default:
	}
	g.release <- struct{}{}
	h.waitTimers(1)
	h.clock.AdvanceToNext()
	<-g.started
	g.release <- struct{}{}
	h.waitTimers(1)
	if most, calls := g.most.Load(), g.calls.Load(); most != 1 || calls != 2 {
		t.Errorf("%d checks, at most %d at once; want 2 and 1", calls, most)
	}
}

func TestMonitorTimeout(t *testing.T) {
	h := newHarness(t, health.Config{})
	g := newGated(true)
	h.add(health.Target{Key: "hung", Checker: g, Interval: time.Second, Timeout: 3 * time.Second, Fall: 1})
	h.run()
	h.waitTimers(1)
	h.clock.AdvanceToNext()
	<-g.started
	if err := h.clock.WaitDeadlines(h.ctx, 1); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(3 * time.Second)
	e := h.event()
	if e.Key != "hung" || e.From != health.StateUp || e.To != health.StateDown || e.Cause.Kind != health.CauseTimeout {
		t.Errorf("event = %+v, want hung up -> down on timeout", e)
	}
	if e.Latency != 3*time.Second {
		t.Errorf("latency %v, want the 3s the check took on the clock", e.Latency)
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestMonitorTransitions(t *testing.T) {
	var logs syncBuffer
	var h *harness
	statusInCallback := make(chan health.Status, 10)
	h = newHarness(t, health.Config{
		Logger: zerolog.New(&logs).Level(zerolog.InfoLevel),
		OnTransition: func(e health.Event) {
			// The status reflects the change already, and calling back
			// into the monitor does not deadlock.
			st, _ := h.mon.Status(e.Key)
			statusInCallback <- st
			h.events <- e
		},
	})
	r := &recorder{clock: h.clock, script: "+---++-+"}
	h.add(health.Target{Key: "web", Checker: r, Interval: time.Second, Rise: 2, Fall: 2})
	if st := h.status("web"); st.State != health.StateUp || st.Checks != 0 || !st.Since.Equal(epoch) {
		t.Fatalf("initial status %+v, want up since epoch, no checks", st)
	}
	h.run()
	h.waitTimers(1)

	type want struct {
		after    int // transition after this many checks
		from, to health.State
		cause    string
	}
	wants := []want{
		{3, health.StateUp, health.StateDown, "status 503"},
		{6, health.StateDown, health.StateUp, "ok"},
	}
	checks := 0
	for _, w := range wants {
		for checks < w.after {
			h.step(1)
			checks++
			if checks < w.after {
				h.noEvent()
			}
		}
		e := h.event()
		at := r.Calls()[checks-1]
		if e.Key != "web" || e.From != w.from || e.To != w.to || e.Cause.String() != w.cause ||
			e.Latency != 7*time.Millisecond || !e.Time.Equal(at) {
			t.Errorf("after %d checks: event %+v, want web %v -> %v, cause %q, latency 7ms, at %v", checks, e, w.from, w.to, w.cause, at)
		}
		if st := <-statusInCallback; st.State != w.to {
			t.Errorf("status seen in the callback: %v, want %v", st.State, w.to)
		}
	}
	// "-+" flaps without a transition.
	h.step(1)
	h.step(1)
	h.noEvent()

	st := h.status("web")
	calls := r.Calls()
	if st.State != health.StateUp || !st.Since.Equal(calls[5]) || st.Cause.Kind != health.CauseOK ||
		st.Checks != 8 || st.Successes != 1 || st.Failures != 0 ||
		!st.Last.OK || st.Last.Latency != 7*time.Millisecond || !st.LastCheck.Equal(calls[7]) {
		t.Errorf("status %+v", st)
	}
	if all := h.mon.Statuses(); len(all) != 1 || all[0].Key != "web" {
		t.Errorf("Statuses() = %+v", all)
	}

	out := logs.String()
	for _, s := range []string{`"level":"warn"`, `"cause":"status 503"`, `"to":"down"`, `"level":"info"`, `"to":"up"`, `"target":"web"`} {
		if !strings.Contains(out, s) {
			t.Errorf("log lacks %s:\n%s", s, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 2 {
		t.Errorf("%d log lines at info level, want one per transition:\n%s", n, out)
	}
}

func TestMonitorStartDown(t *testing.T) {
	h := newHarness(t, health.Config{})
	r := &recorder{clock: h.clock, script: "+"}
	h.add(health.Target{Key: "alpha", Checker: r, Interval: time.Second, Rise: 2, StartDown: true})
	if st := h.status("alpha"); st.State != health.StateDown || st.Cause.Kind != health.CauseNone {
		t.Fatalf("initial status %+v, want down, no cause", st)
	}
	h.run()
	h.waitTimers(1)
	h.step(1)
	h.noEvent()
	h.step(1)
	if e := h.event(); e.From != health.StateDown || e.To != health.StateUp {
		t.Errorf("event %+v, want down -> up", e)
	}
}

func TestMonitorFastAndDownInterval(t *testing.T) {
	h := newHarness(t, health.Config{Jitter: -1})
	r := &recorder{clock: h.clock, script: "+--+-"}
	h.add(health.Target{
		Key: "f", Checker: r, Rise: 2, Fall: 2,
		Interval: 10 * time.Second, FastInterval: time.Second, DownInterval: 30 * time.Second,
	})
	h.run()
	h.waitTimers(1)
	for range 5 {
		h.step(1)
	}
	calls := r.Calls()
	var gaps []time.Duration
	for j := 1; j < len(calls); j++ {
		gaps = append(gaps, calls[j].Sub(calls[j-1]))
	}
	// + (up, inter) - (failing: fast) - (down: downinter) + (passing: fast) -
	want := []time.Duration{10 * time.Second, time.Second, 30 * time.Second, time.Second}
	if !slices.Equal(gaps, want) {
		t.Errorf("gaps %v, want %v", gaps, want)
	}
}

func TestMonitorAddRemoveUpdate(t *testing.T) {
	h := newHarness(t, health.Config{})
	a := &recorder{clock: h.clock}
	b := &recorder{clock: h.clock, script: "-"}
	h.add(health.Target{Key: "a", Checker: a, Interval: 10 * time.Second})
	h.add(health.Target{Key: "b", Checker: b, Interval: 10 * time.Second, Fall: 1})
	h.run()
	h.waitTimers(2)
	for len(a.Calls()) == 0 || len(b.Calls()) == 0 {
		h.step(2)
	}
	if e := h.event(); e.Key != "b" || e.To != health.StateDown {
		t.Fatalf("event %+v, want b down", e)
	}

	// Remove a: b goes on alone.
	if err := h.mon.Remove("a"); err != nil {
		t.Fatal(err)
	}
	h.waitTimers(1)
	if _, ok := h.mon.Status("a"); ok {
		t.Error("status of a removed target")
	}
	aCalls, bCalls := len(a.Calls()), len(b.Calls())
	for range 3 {
		h.step(1)
	}
	if got := len(a.Calls()); got != aCalls {
		t.Errorf("removed target checked %d more times", got-aCalls)
	}
	if got := len(b.Calls()); got != bCalls+3 {
		t.Errorf("b checked %d times in 3 steps, want 3", got-bCalls)
	}

	// Errors.
	if err := h.mon.Remove("a"); !errors.Is(err, health.ErrNotFound) {
		t.Errorf("Remove of a removed target = %v, want ErrNotFound", err)
	}
	if err := h.mon.Add(health.Target{Key: "b", Checker: b}); !errors.Is(err, health.ErrExists) {
		t.Errorf("Add of an existing key = %v, want ErrExists", err)
	}
	if err := h.mon.Update(health.Target{Key: "zz", Checker: b}); !errors.Is(err, health.ErrNotFound) {
		t.Errorf("Update of an unknown key = %v, want ErrNotFound", err)
	}

	// Update b: new checker, shorter interval, rise 1. The state stays
	// down until the new checker has passed.
	before := h.status("b")
	b2 := &recorder{clock: h.clock, script: "+"}
	if err := h.mon.Update(health.Target{Key: "b", Checker: b2, Interval: time.Second, Rise: 1, Fall: 1}); err != nil {
		t.Fatal(err)
	}
	if st := h.status("b"); st.State != health.StateDown || st.Checks != before.Checks || !st.Since.Equal(before.Since) {
		t.Errorf("status after Update %+v, want it unchanged from %+v", st, before)
	}
	// The next check comes within the new interval (plus jitter).
	limit := h.clock.Now().Add(time.Second + time.Second/10)
	if err := h.clock.WaitFor(h.ctx, func() bool {
		next, ok := h.clock.NextTimer()
		return ok && !next.After(limit)
	}); err != nil {
		t.Fatalf("no check scheduled within the new interval: %v", err)
	}
	h.step(1)
	if got := len(b2.Calls()); got != 1 {
		t.Errorf("new checker called %d times, want 1", got)
	}
	if e := h.event(); e.Key != "b" || e.To != health.StateUp {
		t.Errorf("event %+v, want b up", e)
	}

	// Add while running.
	c := &recorder{clock: h.clock}
	h.add(health.Target{Key: "c", Checker: c, Interval: 5 * time.Second})
	h.waitTimers(2)
	for len(c.Calls()) == 0 {
		h.step(2)
	}
	if keys := statusKeys(h.mon.Statuses()); !slices.Equal(keys, []string{"b", "c"}) {
		t.Errorf("Statuses keys %v, want [b c]", keys)
	}
}

func statusKeys(sts []health.Status) []string {
	var keys []string
	for _, st := range sts {
		keys = append(keys, st.Key)
	}
	return keys
}

// TestMonitorRemoveAddNoOverlap removes a target whose check ignores
// cancellation and adds it back at once: the new incarnation must wait for
// the old check to finish.
func TestMonitorRemoveAddNoOverlap(t *testing.T) {
	h := newHarness(t, health.Config{})
	g := newGated(false)
	tgt := health.Target{Key: "x", Checker: g, Interval: time.Second, Timeout: time.Hour}
	h.add(tgt)
	h.run()
	h.waitTimers(1)
	h.clock.AdvanceToNext()
	<-g.started

	if err := h.mon.Remove("x"); err != nil {
		t.Fatal(err)
	}
	h.add(tgt)
	for range 5 {
		h.clock.Advance(time.Second)
	}
	if n := h.clock.Timers(); n != 0 {
		t.Fatalf("%d timers armed while the old check runs, want 0", n)
	}
	g.release <- struct{}{} // the old check ends; its result is dropped
	h.waitTimers(1)
	if st := h.status("x"); st.Checks != 0 {
		t.Errorf("re-added target has %d checks before its first, want 0", st.Checks)
	}
	h.clock.AdvanceToNext()
	<-g.started
	g.release <- struct{}{}
	h.waitTimers(1)
	if most := g.most.Load(); most != 1 {
		t.Errorf("%d checks at once, want 1", most)
	}
	if st := h.status("x"); st.Checks != 1 {
		t.Errorf("%d checks recorded, want 1", st.Checks)
	}
	h.noEvent()
}

func TestMonitorPanickingChecker(t *testing.T) {
	h := newHarness(t, health.Config{})
	h.add(health.Target{Key: "p", Interval: time.Second, Fall: 1, Checker: health.CheckerFunc(func(context.Context) health.Result {
		panic("boom")
	})})
	h.run()
	h.waitTimers(1)
	h.step(1)
	e := h.event()
	if e.To != health.StateDown || e.Cause.Kind != health.CauseError || !strings.Contains(e.Cause.String(), "boom") {
		t.Errorf("event %+v, want down with the panic as cause", e)
	}
}

func TestMonitorStop(t *testing.T) {
	base := runtime.NumGoroutine()
	h := newHarness(t, health.Config{})
	g := newGated(true) // blocked in a check when the monitor stops
	for i := range 50 {
		h.add(health.Target{Key: fmt.Sprintf("r%02d", i), Checker: &recorder{clock: h.clock}, Interval: time.Second})
	}
	h.add(health.Target{Key: "blocked", Checker: g, Interval: time.Second, Timeout: time.Hour})
	h.run()
	h.waitTimers(51)
	for g.calls.Load() == 0 {
		if _, ok := h.clock.AdvanceToNext(); !ok {
			t.Fatal("no timer armed")
		}
		if err := h.clock.WaitFor(h.ctx, func() bool { return h.clock.Timers()+int(g.inflight.Load()) == 51 }); err != nil {
			t.Fatal(err)
		}
	}
	<-g.started

	if err := h.mon.Run(h.ctx); !errors.Is(err, health.ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
	h.shutdown()
	if n := h.clock.Timers(); n != 0 {
		t.Errorf("%d timers armed after stop", n)
	}
	if err := h.mon.Add(health.Target{Key: "late", Checker: g}); !errors.Is(err, health.ErrStopped) {
		t.Errorf("Add after stop = %v, want ErrStopped", err)
	}
	if err := h.mon.Run(h.ctx); !errors.Is(err, health.ErrStopped) {
		t.Errorf("Run after stop = %v, want ErrStopped", err)
	}
	waitGoroutines(t, base)
}

// waitGoroutines waits until no more goroutines run than base.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(generousTimeout)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond) // polling a condition, not timing
	}
}

// TestMonitorSystemClock runs real TCP checks on the real clock: a target
// goes down when its listener closes.
func TestMonitorSystemClock(t *testing.T) {
	base := runtime.NumGoroutine()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	events := make(chan health.Event, 10)
	mon, err := health.NewMonitor(health.Config{OnTransition: func(e health.Event) { events <- e }})
	if err != nil {
		t.Fatal(err)
	}
	c, err := health.NewTCPChecker(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.Add(health.Target{Key: "tcp", Checker: c, Interval: 10 * time.Millisecond, Timeout: time.Second, Fall: 1}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- mon.Run(ctx) }()
	deadline := time.After(generousTimeout)
	for {
		st, _ := mon.Status("tcp")
		if st.Checks > 0 {
			break
		}
		select {
		case <-deadline:
			t.Fatal("no check completed")
		case <-time.After(time.Millisecond): // polling a condition
		}
	}
	ln.Close()
	select {
	case e := <-events:
		if e.To != health.StateDown || e.Cause.Kind != health.CauseRefused {
			t.Errorf("event %+v, want down, connection refused", e)
		}
	case <-deadline:
		t.Fatal("no transition after the listener closed")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitGoroutines(t, base)
}

func TestMonitorInvalid(t *testing.T) {
	if _, err := health.NewMonitor(health.Config{Jitter: 0.6}); err == nil {
		t.Error("NewMonitor with jitter 0.6 succeeded")
	}
	mon, err := health.NewMonitor(health.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ok := health.CheckerFunc(func(context.Context) health.Result { return health.Pass(0) })
	tests := []struct {
		name string
		tgt  health.Target
	}{
		{"no key", health.Target{Checker: ok}},
		{"no checker", health.Target{Key: "k"}},
		{"negative interval", health.Target{Key: "k", Checker: ok, Interval: -time.Second}},
		{"negative timeout", health.Target{Key: "k", Checker: ok, Timeout: -time.Second}},
		{"negative fast interval", health.Target{Key: "k", Checker: ok, FastInterval: -1}},
		{"negative rise", health.Target{Key: "k", Checker: ok, Rise: -1}},
		{"negative fall", health.Target{Key: "k", Checker: ok, Fall: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := mon.Add(tt.tgt); err == nil {
				t.Error("Add succeeded, want an error")
			}
		})
	}
	// Defaults fill zero fields.
	if err := mon.Add(health.Target{Key: "d", Checker: ok}); err != nil {
		t.Fatal(err)
	}
	if st, _ := mon.Status("d"); st.State != health.StateUp {
		t.Errorf("default initial state %v, want up", st.State)
	}
}
