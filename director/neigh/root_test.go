package neigh

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var (
	dirAddr4 = netip.MustParsePrefix("10.99.0.1/24")
	dirAddr6 = netip.MustParsePrefix("fd99::1/64")
	realIP4  = netip.MustParseAddr("10.99.0.2")
	realIP6  = netip.MustParseAddr("fd99::2")
	nobody4  = netip.MustParseAddr("10.99.0.99")
	nobody6  = netip.MustParseAddr("fd99::99")
	realMAC1 = net.HardwareAddr{0x02, 0x99, 0, 0, 0, 0x01}
	realMAC2 = net.HardwareAddr{0x02, 0x99, 0, 0, 0, 0x02}
)

// topo is three namespaces: a switch (bridge br0), the director (d0) and a
// real server (r0), each joined to the bridge by a veth pair.
type topo struct {
	sw, dir, real *testNS
}

func newTopo(t *testing.T) *topo {
	t.Helper()
	requireRoot(t)
	removeStaleNamespaces(t)
	tp := &topo{sw: newTestNS(t, "sw"), dir: newTestNS(t, "dir"), real: newTestNS(t, "real")}

	f := false
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}, MulticastSnooping: &f}
	must(t, "add bridge", tp.sw.nl.LinkAdd(br))
	must(t, "bridge up", tp.sw.nl.LinkSetUp(br))
	tp.plug(t, tp.dir, "p-dir", "d0", nil, dirAddr4, dirAddr6)
	tp.plug(t, tp.real, "p-real", "r0", realMAC1,
		netip.PrefixFrom(realIP4, 24), netip.PrefixFrom(realIP6, 64))
	return tp
}

// plug joins ns to the bridge with a veth: port in the switch, ifname in
// ns, with the given MAC (if any) and addresses (IPv6 without DAD).
func (tp *topo) plug(t *testing.T, ns *testNS, port, ifname string, mac net.HardwareAddr, addrs ...netip.Prefix) {
	t.Helper()
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: port},
		PeerName:         ifname,
		PeerHardwareAddr: mac,
		PeerNamespace:    netlink.NsFd(ns.h),
	}
	must(t, "add veth "+port, tp.sw.nl.LinkAdd(veth))
	br, err := tp.sw.nl.LinkByName("br0")
	must(t, "find bridge", err)
	p, err := tp.sw.nl.LinkByName(port)
	must(t, "find "+port, err)
	must(t, "enslave "+port, tp.sw.nl.LinkSetMaster(p, br))
	must(t, port+" up", tp.sw.nl.LinkSetUp(p))

	l, err := ns.nl.LinkByName(ifname)
	must(t, "find "+ifname, err)
	for _, a := range addrs {
		na := &netlink.Addr{IPNet: &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}}
		if a.Addr().Is6() {
			na.Flags = unix.IFA_F_NODAD
		}
		must(t, "address "+a.String(), ns.nl.AddrAdd(l, na))
	}
	must(t, ifname+" up", ns.nl.LinkSetUp(l))
}

// readdIPv6 puts back an IPv6 address after the interface was down: Linux
// flushes them on admin down (net.ipv6.conf.*.keep_addr_on_down=0).
func readdIPv6(t *testing.T, ns *testNS, ifname string, a netip.Prefix) {
	t.Helper()
	l, err := ns.nl.LinkByName(ifname)
	must(t, "find "+ifname, err)
	na := &netlink.Addr{IPNet: &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), 128)}, Flags: unix.IFA_F_NODAD}
	must(t, "address "+a.String(), ns.nl.AddrReplace(l, na))
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// recorder keeps the resolver's reports and lets a test wait for one.
type recorder struct {
	mu      sync.Mutex
	events  []event
	changed chan struct{} // closed and replaced on every event
}

type event struct {
	at    time.Time
	addr  netip.Addr
	mac   string // "" when unresolved
	cause string
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) onChange(addr netip.Addr, mac net.HardwareAddr, cause string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := event{at: time.Now(), addr: addr, cause: cause}
	if mac != nil {
		e.mac = mac.String()
	}
	r.events = append(r.events, e)
	close(r.changed)
	r.changed = make(chan struct{})
}

// waitFor waits until an event after since satisfies match, and returns
// it; it fails the test after timeout.
func (r *recorder) waitFor(t *testing.T, what string, since time.Time, timeout time.Duration, match func(event) bool) event {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		for _, e := range r.events {
			if !e.at.Before(since) && match(e) {
				r.mu.Unlock()
				return e
			}
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("%s: not reported within %v; events: %v", what, timeout, r.events)
		}
	}
}

func isMAC(addr netip.Addr, mac net.HardwareAddr) func(event) bool {
	return func(e event) bool { return e.addr == addr && e.mac == mac.String() }
}

func isLost(addr netip.Addr, causePrefix string) func(event) bool {
	return func(e event) bool {
		return e.addr == addr && e.mac == "" && strings.HasPrefix(e.cause, causePrefix)
	}
}

// startResolver runs a Resolver for d0 inside the director's namespace, on
// a locked thread, until the test ends; the cleanup checks that Run
// returned and left no goroutine behind.
func startResolver(t *testing.T, tp *topo, cfg Config) (*Resolver, *recorder) {
	t.Helper()
	rec := newRecorder()
	cfg.Interface = "d0"
	cfg.OnChange = rec.onChange
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	r, err := New(cfg)
	must(t, "new resolver", err)

	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tp.dir.do(func() error { return r.Run(ctx) }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		waitGoroutines(t, before)
	})
	return r, rec
}

// waitGoroutines waits until no more than n goroutines run.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines leaked: %d > %d\n%s", runtime.NumGoroutine(), n, buf)
		}
		<-tick.C
	}
}

func TestResolverInNamespaces(t *testing.T) {
	tp := newTopo(t)
	const timeout = 200 * time.Millisecond
	r, rec := startResolver(t, tp, Config{ProbeTimeout: timeout}) // default refresh

	start := time.Now()
	for _, a := range []netip.Addr{realIP4, realIP6, nobody4, nobody6} {
		r.Add(a)
	}
	e4 := rec.waitFor(t, "real IPv4 resolved", start, 5*time.Second, isMAC(realIP4, realMAC1))
	e6 := rec.waitFor(t, "real IPv6 resolved", start, 5*time.Second, isMAC(realIP6, realMAC1))
	t.Logf("first resolution: IPv4 %v, IPv6 %v", e4.at.Sub(start), e6.at.Sub(start))
	if mac, cause, ok := r.Lookup(realIP4); !ok || mac.String() != realMAC1.String() || cause != "" {
		t.Errorf("Lookup(%v) = %v %q %v", realIP4, mac, cause, ok)
	}

	n4 := rec.waitFor(t, "nobody IPv4 unresolved", start, 5*time.Second, isLost(nobody4, "no ARP reply after 3 tries"))
	n6 := rec.waitFor(t, "nobody IPv6 unresolved", start, 5*time.Second, isLost(nobody6, "no neighbour advertisement after 3 tries"))
	for _, n := range []event{n4, n6} {
		if d := n.at.Sub(start); d < 3*timeout {
			t.Errorf("%v given up after %v, before 3 probe timeouts", n.addr, d)
		}
	}
	if mac, cause, ok := r.Lookup(nobody4); !ok || mac != nil || cause != "no ARP reply after 3 tries" {
		t.Errorf("Lookup(%v) = %v %q %v", nobody4, mac, cause, ok)
	}

	t.Run("MAC change", func(t *testing.T) {
		r0, err := tp.real.nl.LinkByName("r0")
		must(t, "find r0", err)
		changed := time.Now()
		must(t, "change r0's MAC", tp.real.nl.LinkSetHardwareAddr(r0, realMAC2))
		e4 := rec.waitFor(t, "IPv4 new MAC", changed, 5*time.Second, isMAC(realIP4, realMAC2))
		e6 := rec.waitFor(t, "IPv6 new MAC", changed, 5*time.Second, isMAC(realIP6, realMAC2))
		// IPv4: Linux sends a gratuitous ARP on a MAC change, heard at once.
		// IPv6: no unsolicited NA by default (ndisc_notify=0): the refresh
		// probe finds it, within RefreshInterval (+20% jitter).
		t.Logf("MAC change detected: IPv4 after %v, IPv6 after %v (refresh %v)",
			e4.at.Sub(changed), e6.at.Sub(changed), DefaultRefreshInterval)
	})

	t.Run("real down", func(t *testing.T) {
		r0, err := tp.real.nl.LinkByName("r0")
		must(t, "find r0", err)
		down := time.Now()
		must(t, "r0 down", tp.real.nl.LinkSetDown(r0))
		l4 := rec.waitFor(t, "IPv4 lost", down, 6*time.Second, isLost(realIP4, "no ARP reply after 3 tries"))
		l6 := rec.waitFor(t, "IPv6 lost", down, 6*time.Second, isLost(realIP6, "no neighbour advertisement after 3 tries"))
		t.Logf("real down detected: IPv4 after %v, IPv6 after %v", l4.at.Sub(down), l6.at.Sub(down))

		up := time.Now()
		must(t, "r0 up", tp.real.nl.LinkSetUp(r0))
		readdIPv6(t, tp.real, "r0", netip.PrefixFrom(realIP6, 64))
		rec.waitFor(t, "IPv4 back", up, 6*time.Second, isMAC(realIP4, realMAC2))
		rec.waitFor(t, "IPv6 back", up, 6*time.Second, isMAC(realIP6, realMAC2))
	})

	t.Run("own interface down", func(t *testing.T) {
		d0, err := tp.dir.nl.LinkByName("d0")
		must(t, "find d0", err)
		down := time.Now()
		must(t, "d0 down", tp.dir.nl.LinkSetDown(d0))
		for _, a := range []netip.Addr{realIP4, realIP6, nobody4, nobody6} {
			rec.waitFor(t, a.String()+" down", down, 2*time.Second, isLost(a, "interface d0 is down"))
		}
		up := time.Now()
		must(t, "d0 up", tp.dir.nl.LinkSetUp(d0))
		readdIPv6(t, tp.dir, "d0", dirAddr6)
		rec.waitFor(t, "IPv4 after d0 up", up, 5*time.Second, isMAC(realIP4, realMAC2))
		rec.waitFor(t, "IPv6 after d0 up", up, 5*time.Second, isMAC(realIP6, realMAC2))
		rec.waitFor(t, "nobody after d0 up", up, 5*time.Second, isLost(nobody4, "no ARP reply after 3 tries"))
	})

	t.Run("real deleted", func(t *testing.T) {
		r0, err := tp.real.nl.LinkByName("r0")
		must(t, "find r0", err)
		del := time.Now()
		must(t, "delete r0", tp.real.nl.LinkDel(r0))
		rec.waitFor(t, "IPv4 lost", del, 6*time.Second, isLost(realIP4, "no ARP reply after 3 tries"))
		rec.waitFor(t, "IPv6 lost", del, 6*time.Second, isLost(realIP6, "no neighbour advertisement after 3 tries"))
	})

	t.Run("own interface deleted", func(t *testing.T) {
		d0, err := tp.dir.nl.LinkByName("d0")
		must(t, "find d0", err)
		del := time.Now()
		must(t, "delete d0", tp.dir.nl.LinkDel(d0))
		rec.waitFor(t, "gone", del, 2*time.Second, isLost(nobody4, "interface d0 is gone"))
	})
}

// TestResolverKernelTable checks the kernel's table as a source: an entry
// present at start answers at once, and one the kernel learns later is
// reported when it learns it, though nobody answers the probes.
func TestResolverKernelTable(t *testing.T) {
	tp := newTopo(t)
	d0, err := tp.dir.nl.LinkByName("d0")
	must(t, "find d0", err)
	known := netip.MustParseAddr("10.99.0.50")
	learnt := netip.MustParseAddr("fd99::51")
	kmac := net.HardwareAddr{0x02, 0x99, 0, 0, 0, 0x50}
	must(t, "neighbour entry", tp.dir.nl.NeighSet(&netlink.Neigh{
		LinkIndex: d0.Attrs().Index, State: netlink.NUD_REACHABLE, IP: known.AsSlice(), HardwareAddr: kmac,
	}))

	r, rec := startResolver(t, tp, Config{RefreshInterval: 5 * time.Second, ProbeTimeout: time.Second})
	start := time.Now()
	r.Add(known)
	r.Add(learnt)
	rec.waitFor(t, "entry from the kernel's table", start, time.Second, isMAC(known, kmac))

	learn := time.Now()
	must(t, "learn a neighbour", tp.dir.nl.NeighSet(&netlink.Neigh{
		LinkIndex: d0.Attrs().Index, Family: netlink.FAMILY_V6, State: netlink.NUD_STALE, IP: learnt.AsSlice(), HardwareAddr: kmac,
	}))
	e := rec.waitFor(t, "entry the kernel learns", learn, time.Second, isMAC(learnt, kmac))
	t.Logf("kernel's new entry reported after %v", e.at.Sub(learn))
	// Nobody has it: the probes take it back.
	rec.waitFor(t, "unanswered", learn, 6*time.Second, isLost(learnt, "no neighbour advertisement after 3 tries"))
}

func TestResolverNoInterface(t *testing.T) {
	tp := newTopo(t)
	r, err := New(Config{Interface: "nosuch0"})
	must(t, "new", err)
	err = tp.dir.do(func() error { return r.Run(context.Background()) })
	if err == nil || !strings.Contains(err.Error(), "nosuch0") {
		t.Fatalf("Run without the interface = %v, want an error naming it", err)
	}
}
