package vrrp

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// inNS runs f on a locked thread switched into namespace ns. The thread is
// never unlocked, so it dies with the goroutine instead of going back to
// the pool in the wrong namespace.
func inNS(t *testing.T, ns string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		h, err := netns.GetFromName(ns)
		if err != nil {
			t.Error(err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			t.Error(err)
			return
		}
		f()
	}()
	<-done
}

func neighMAC(n *node, ip netip.Addr) net.HardwareAddr {
	link, err := n.h.LinkByName("eth0")
	if err != nil {
		return nil
	}
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	ns, _ := n.h.NeighList(link.Attrs().Index, fam)
	for _, e := range ns {
		if x, ok := netip.AddrFromSlice(e.IP); ok && x.Unmap() == ip {
			return e.HardwareAddr
		}
	}
	return nil
}

// TestNetActions adds, announces and removes VIPs in a namespace and checks
// that a neighbour's stale cache entries are overridden by the gratuitous
// ARP and the unsolicited NA.
func TestNetActions(t *testing.T) {
	l := newLab(t, "a", "b")
	a, b := l.nodes["a"], l.nodes["b"]
	vips := []netip.Prefix{labVIP4, labVIP6}
	bogus := "02:00:00:00:00:99"
	for _, p := range vips {
		run(t, "ip", "-n", b.ns, "neigh", "add", p.Addr().String(), "lladdr", bogus, "nud", "stale", "dev", "eth0")
	}
	link, err := a.h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	mac := link.Attrs().HardwareAddr
	act := &NetActions{Interface: "eth0", VIPs: vips}
	inNS(t, a.ns, func() {
		for range 2 { // idempotent
			if err := act.AddVIPs(); err != nil {
				t.Error(err)
			}
		}
		if err := act.Announce(2); err != nil {
			t.Error(err)
		}
	})
	for _, p := range vips {
		if !a.hasVIP(p.Addr()) {
			t.Errorf("%v not added", p)
		}
		waitFor(t, 2*time.Second, "neighbour entry of "+p.Addr().String(), func() bool {
			return neighMAC(b, p.Addr()).String() == mac.String()
		})
	}
	inNS(t, a.ns, func() {
		for range 2 {
			if err := act.RemoveVIPs(); err != nil {
				t.Error(err)
			}
		}
	})
	for _, p := range vips {
		if a.hasVIP(p.Addr()) {
			t.Errorf("%v not removed", p)
		}
	}
}

func TestInterfaceCheck(t *testing.T) {
	l := newLab(t, "a")
	a := l.nodes["a"]
	run(t, "ip", "-n", a.ns, "link", "add", "trk0", "type", "veth", "peer", "name", "trk1")
	run(t, "ip", "-n", a.ns, "link", "set", "trk1", "up")
	got := make(chan bool, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go inNS(t, a.ns, func() {
		InterfaceCheck{Interface: "trk0"}.Watch(ctx, func(ok bool) { got <- ok })
	})
	next := func(want bool) {
		t.Helper()
		for {
			select {
			case ok := <-got:
				if ok == want {
					return
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no report %v", want)
			}
		}
	}
	next(false) // created down
	run(t, "ip", "-n", a.ns, "link", "set", "trk0", "up")
	next(true)
	run(t, "ip", "-n", a.ns, "link", "set", "trk0", "down")
	next(false)
	run(t, "ip", "-n", a.ns, "link", "set", "trk0", "up")
	next(true)
	run(t, "ip", "-n", a.ns, "link", "del", "trk0")
	next(false)
}
