package vrrp

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// chanConn is a Conn for driving Instance.Run with the real clock.
type chanConn struct {
	local  netip.Addr
	in     chan *Advert
	mu     sync.Mutex
	sent   []Advert
	closed chan struct{}
	once   sync.Once
}

func (c *chanConn) Send(a *Advert) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent = append(c.sent, *a)
	return nil
}

func (c *chanConn) Recv() (*Advert, error) {
	select {
	case a := <-c.in:
		return a, nil
	case <-c.closed:
		return nil, net.ErrClosed
	}
}
func (c *chanConn) LocalAddr() netip.Addr { return c.local }
func (c *chanConn) Close() error          { c.once.Do(func() { close(c.closed) }); return nil }

// switchCheck is a Check the test flips.
type switchCheck struct{ c chan bool }

func (s switchCheck) Name() string { return "switch" }
func (s switchCheck) Watch(ctx context.Context, report func(bool)) {
	for {
		select {
		case ok := <-s.c:
			report(ok)
		case <-ctx.Done():
			return
		}
	}
}

func TestInstanceRun(t *testing.T) {
	sw := switchCheck{c: make(chan bool)}
	cfg := baseConfig()
	cfg.AdvertInterval = 20 * time.Millisecond
	cfg.Tracks = []Track{{Check: sw, Weight: 0}}
	inst, err := New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	conn := &chanConn{local: local, in: make(chan *Advert, 8), closed: make(chan struct{})}
	act := &fakeActions{}
	inst.dial = func(Config) (Conn, error) { return conn, nil }
	inst.actions = act
	if s := inst.Status(); s.State != StateInit {
		t.Fatalf("status before Run: %+v", s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- inst.Run(ctx) }()
	wait := func(s State) {
		t.Helper()
		waitFor(t, 2*time.Second, s.String(), func() bool { return inst.Status().State == s })
	}
	wait(StateBackup)
	// A higher priority master keeps us backup.
	stopMaster := make(chan struct{})
	go func() {
		for {
			select {
			case conn.in <- &Advert{Version: 3, VRID: 7, Priority: 200, Interval: 20 * time.Millisecond,
				Src: upper, Dst: GroupV4, TTL: 255, Addrs: []netip.Addr{vip.Addr()}}:
			case <-stopMaster:
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	waitFor(t, 2*time.Second, "adverts received", func() bool { return inst.Status().Counters.AdvertsReceived >= 10 })
	if s := inst.Status(); s.State != StateBackup || s.MasterAddr != upper || s.MasterInterval != 20*time.Millisecond {
		t.Fatalf("status %+v", s)
	}
	close(stopMaster)
	wait(StateMaster)
	sw.c <- false
	wait(StateFault)
	sw.c <- true
	wait(StateBackup)
	wait(StateMaster)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	conn.mu.Lock()
	last := conn.sent[len(conn.sent)-1]
	conn.mu.Unlock()
	if last.Priority != 0 {
		t.Fatalf("last advert priority %d, want 0", last.Priority)
	}
	if act.vips {
		t.Fatal("VIPs left")
	}
}
