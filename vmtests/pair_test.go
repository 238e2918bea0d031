package vmtests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/directorlb/director/vmtests/topo"
	"github.com/directorlb/director/vmtests/web"
)

// An active/standby pair as users run it: `director run` on dir1 and dir2
// with configs/pair-master.yaml and pair-backup.yaml, VRRP between them,
// the VIP on whichever is master, and a client's long-lived connection
// through the VIP across every failover.

func TestAgentPair(t *testing.T) {
	for _, advert := range []time.Duration{time.Second, 100 * time.Millisecond} {
		t.Run("advert "+advert.String(), func(t *testing.T) { testAgentPair(t, advert) })
	}
}

func testAgentPair(t *testing.T, advert time.Duration) {
	spec := topo.DRSpec(1, 2, 3)
	spec.XDPMode = topo.XDPGeneric // as the pair configs ask
	for i := range spec.Hosts {
		if spec.Hosts[i].Role == topo.RoleDirector {
			spec.Hosts[i].NoVIP = true // VRRP adds it to the master
		}
	}
	top := topo.NewT(t, spec)
	ctx := topo.Context(t, 4*time.Minute)
	for _, r := range top.Reals() {
		if _, err := top.StartWebserver(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	interval := func(s string) string {
		return strings.Replace(s, "advert_interval: 1s", "advert_interval: "+advert.String(), 1)
	}
	dir1, dir2 := top.Host("dir1"), top.Host("dir2")
	a2 := startAgent(t, top, dir2, "pair-backup.yaml", interval)
	a1 := startAgent(t, top, dir1, "pair-master.yaml", interval)
	vip := top.VIP4()
	// Master_Down_Interval of the backup (priority 100) and Skew_Time of
	// the backup, RFC 5798 section 6.1.
	skew := time.Duration(256-100) * advert / 256
	masterDown := 3*advert + skew

	owner := func(want, other *topo.Host) func() (bool, error) {
		return func() (bool, error) {
			w, err := want.HasAddr(want.Iface, vip)
			if err != nil {
				return false, err
			}
			o, err := other.HasAddr(other.Iface, vip)
			return w && !o, err
		}
	}
	if err := topo.WaitFor(ctx, 10*time.Second, "dir1 master with the VIP", owner(dir1, dir2)); err != nil {
		t.Fatal(err)
	}
	vrrpState(ctx, t, a1, "MASTER")
	vrrpState(ctx, t, a2, "BACKUP")
	// The backup hears the master's adverts and discards none; ctl
	// status says so to an operator.
	if err := topo.WaitFor(ctx, 10*time.Second, "dir2 receiving adverts", func() (bool, error) {
		st, err := a2.ctl.Status(ctx)
		if err != nil || len(st.VRRP) == 0 {
			return false, err
		}
		in := st.VRRP[0]
		if len(in.Counters.Discards) > 0 {
			return false, topo.Permanent(fmt.Errorf("discards: %v", in.Counters.Discards))
		}
		return in.Counters.AdvertsReceived >= 2 && in.Master == dir1.Addr4().String() && in.AdvertInterval == advert, nil
	}); err != nil {
		t.Fatal(err)
	}
	if out, code := a2.ctlRun(ctx, "status"); code != 0 || !strings.Contains(out, "BACKUP, priority 100") || !strings.Contains(out, "adverts sent") {
		t.Errorf("ctl status on the backup: exit %d\n%s", code, out)
	}

	cl := top.Clients()[0]
	url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(vip, topo.WebPort))
	ll := startLongLived(ctx, t, cl, netip.AddrPortFrom(vip, topo.WebPort))
	ll.waitRequests(t, 20)
	// New connections too, each a new flow on whichever director is master.
	l := startLoad(ctx, cl, url, 2)
	l.waitRequests(t, 50)
	packets2 := vipPackets(ctx, t, a2)

	t.Run("master killed", func(t *testing.T) {
		// A crashed node: the agent dies and takes nothing down with it;
		// the XDP program and the VIP stay on dir1 (as after a SIGKILL of
		// keepalived), and the backup takes over by VRRP and gratuitous ARP.
		if err := a1.proc.Kill(); err != nil {
			t.Fatal(err)
		}
		d, err := pollFor(ctx, masterDown+3*time.Second, func() (bool, error) { return dir2.HasAddr(dir2.Iface, vip) })
		if err != nil {
			t.Fatalf("dir2 did not take the VIP: %v", err)
		}
		t.Logf("FAILOVER agent pair, master SIGKILLed, advert %v: dir2 owns the VIP after %v (Master_Down_Interval %v)",
			advert, d.Round(time.Millisecond), masterDown)
		vrrpState(ctx, t, a2, "MASTER")
		// The client's traffic now crosses dir2: its counters move.
		ll.waitRequests(t, 20)
		l.waitRequests(t, 50)
		if p := vipPackets(ctx, t, a2); p <= packets2 {
			t.Errorf("dir2 forwarded nothing after taking over: %d -> %d packets", packets2, p)
		}
	})

	t.Run("old master back preempts", func(t *testing.T) {
		// At start-up it removes the VIP its killed predecessor left,
		// waits as backup, then preempts the lower priority.
		a1.start()
		if err := topo.WaitFor(ctx, masterDown+10*time.Second, "dir1 master again", owner(dir1, dir2)); err != nil {
			t.Fatal(err)
		}
		vrrpState(ctx, t, a1, "MASTER")
		vrrpState(ctx, t, a2, "BACKUP")
		ll.waitRequests(t, 20)
		l.waitRequests(t, 50)
	})

	t.Run("master stopped cleanly", func(t *testing.T) {
		if err := a1.proc.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		// The priority-0 advert makes the backup take over after
		// Skew_Time, well before Master_Down_Interval.
		d, err := pollFor(ctx, masterDown, func() (bool, error) { return dir2.HasAddr(dir2.Iface, vip) })
		if err != nil {
			t.Fatalf("dir2 did not take the VIP within Master_Down_Interval: %v", err)
		}
		t.Logf("FAILOVER agent pair, master stopped, advert %v: dir2 owns the VIP after %v (Skew_Time %v)",
			advert, d.Round(time.Millisecond), skew)
		a1.proc.Wait(ctx)
		if has, _ := dir1.HasAddr(dir1.Iface, vip); has {
			t.Error("the stopped master left its VIP")
		}
		ll.waitRequests(t, 20)
		l.waitRequests(t, 50)
	})

	servers, failures := l.finish(time.Time{})
	if len(failures) > 0 {
		t.Errorf("%d of %d new connections failed across the failovers, first: %s", len(failures), l.total.Load(), failures[0])
	}
	n, who, err := ll.finish()
	if err != nil {
		t.Errorf("the long-lived connection broke after %d requests: %v", n, err)
	}
	if len(who) != 1 {
		t.Errorf("the long-lived connection was answered by %v, want one real", who)
	}
	t.Logf("long-lived connection: %d requests, all answered by %v; %d new connections answered by %v",
		n, who, l.total.Load(), servers)
}

// pollFor polls cond every 10 ms until it is true, and says how long that
// took; finer than topo.WaitFor, for measuring failovers.
func pollFor(ctx context.Context, limit time.Duration, cond func() (bool, error)) (time.Duration, error) {
	start := time.Now()
	var last error
	for time.Since(start) < limit && ctx.Err() == nil {
		ok, err := cond()
		if ok && err == nil {
			return time.Since(start), nil
		}
		last = err
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("not true after %v (last error: %v)", limit, last)
}

func vrrpState(ctx context.Context, t *testing.T, a *agentRun, want string) {
	t.Helper()
	err := topo.WaitFor(ctx, 10*time.Second, a.host.Name+" "+want, func() (bool, error) {
		st, err := a.ctl.Status(ctx)
		if err != nil || len(st.VRRP) == 0 {
			return false, err
		}
		if st.VRRP[0].State != want {
			return false, fmt.Errorf("state %s", st.VRRP[0].State)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func vipPackets(ctx context.Context, t *testing.T, a *agentRun) uint64 {
	t.Helper()
	vips, err := a.ctl.VIPs(ctx)
	if err != nil || len(vips) == 0 {
		t.Fatalf("%s: vips: %v", a.host.Name, err)
	}
	return vips[0].Packets
}

// longLived is one keep-alive HTTP connection through the VIP, sending a
// request every 20 ms until finished or broken.
type longLived struct {
	mu   sync.Mutex
	n    int
	who  map[string]int
	err  error
	stop chan struct{}
	done chan struct{}
}

func startLongLived(ctx context.Context, t *testing.T, h *topo.Host, addr netip.AddrPort) *longLived {
	t.Helper()
	c, err := h.Dial(ctx, "tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	ll := &longLived{who: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() {
		select {
		case <-ll.stop:
		default:
			close(ll.stop)
		}
		<-ll.done
	})
	go func() {
		defer close(ll.done)
		defer c.Close()
		r := bufio.NewReader(c)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ll.stop:
				return
			case <-tick.C:
			}
			who, err := keepAliveGet(c, r, addr)
			ll.mu.Lock()
			if err != nil {
				ll.err = err
				ll.mu.Unlock()
				return
			}
			ll.n++
			ll.who[who]++
			ll.mu.Unlock()
		}
	}()
	return ll
}

func keepAliveGet(c net.Conn, r *bufio.Reader, addr netip.AddrPort) (string, error) {
	// A request must not wait longer than a failover: Master_Down_Interval
	// at 1 s adverts is 3.6 s; TCP retransmits bridge the gap.
	c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	if resp.Close {
		return "", fmt.Errorf("the server closed the connection")
	}
	b, err := io.ReadAll(resp.Body) // all of it: the next response follows
	if err != nil {
		return "", err
	}
	var who web.WhoAmI
	if err := json.Unmarshal(b, &who); err != nil {
		return "", err
	}
	return who.Server, nil
}

func (ll *longLived) waitRequests(t *testing.T, n int) {
	t.Helper()
	ll.mu.Lock()
	target := ll.n + n
	ll.mu.Unlock()
	ctx := topo.Context(t, 30*time.Second)
	err := topo.WaitFor(ctx, 30*time.Second, fmt.Sprintf("%d requests on the long-lived connection", n), func() (bool, error) {
		ll.mu.Lock()
		defer ll.mu.Unlock()
		if ll.err != nil {
			return false, topo.Permanent(fmt.Errorf("broken after %d requests: %w", ll.n, ll.err))
		}
		return ll.n >= target, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (ll *longLived) finish() (int, map[string]int, error) {
	close(ll.stop)
	<-ll.done
	ll.mu.Lock()
	defer ll.mu.Unlock()
	return ll.n, ll.who, ll.err
}
