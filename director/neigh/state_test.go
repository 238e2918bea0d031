package neigh

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var (
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	real4 = netip.MustParseAddr("10.0.0.2")
	real6 = netip.MustParseAddr("fd00::2")
	macA  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macB  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
)

func testTracker() *tracker {
	return newTracker(params{refresh: 2 * time.Second, timeout: 500 * time.Millisecond, maxMisses: 3})
}

func at(d time.Duration) time.Time { return t0.Add(d) }

// wantChanges compares changes with want, written as addr → mac or cause.
func wantChanges(t *testing.T, step string, got []change, want ...change) {
	t.Helper()
	eq := func(a, b change) bool {
		return a.addr == b.addr && a.mac.String() == b.mac.String() && a.cause == b.cause
	}
	if !slices.EqualFunc(got, want, eq) {
		t.Fatalf("%s: changes = %v, want %v", step, got, want)
	}
}

func resolved(addr netip.Addr, mac net.HardwareAddr) change { return change{addr: addr, mac: mac} }
func lost(addr netip.Addr, cause string) change             { return change{addr: addr, cause: cause} }

func TestTrackerResolveAndFollow(t *testing.T) {
	tr := testTracker()
	wantChanges(t, "add", tr.add(real4, t0))
	if mac, cause, ok := tr.lookup(real4); !ok || mac != nil || cause != CauseResolving {
		t.Fatalf("lookup before any answer = %v %q %v", mac, cause, ok)
	}
	if due := tr.due(t0); !slices.Equal(due, []netip.Addr{real4}) {
		t.Fatalf("due = %v, want the new address at once", due)
	}
	tr.sent(real4, t0)
	if due := tr.due(t0); len(due) != 0 {
		t.Fatalf("due while awaiting a reply = %v", due)
	}
	if w, ok := tr.wake(); !ok || !w.Equal(at(500*time.Millisecond)) {
		t.Fatalf("wake = %v %v, want the probe deadline", w, ok)
	}
	wantChanges(t, "reply", tr.reply(real4, macA, at(10*time.Millisecond)), resolved(real4, macA))
	wantChanges(t, "same reply", tr.reply(real4, macA, at(20*time.Millisecond)))
	// The next probe is a refresh period later.
	if due := tr.due(at(2 * time.Second)); len(due) != 0 {
		t.Fatalf("due before the refresh period = %v", due)
	}
	if due := tr.due(at(2020 * time.Millisecond)); len(due) != 1 {
		t.Fatalf("due after the refresh period = %v", due)
	}
	tr.sent(real4, at(2020*time.Millisecond))
	wantChanges(t, "moved", tr.reply(real4, macB, at(2030*time.Millisecond)), resolved(real4, macB))
	if mac, cause, ok := tr.lookup(real4); !ok || mac.String() != macB.String() || cause != "" {
		t.Fatalf("lookup = %v %q %v", mac, cause, ok)
	}
}

func TestTrackerMisses(t *testing.T) {
	for _, tc := range []struct {
		name     string
		addr     netip.Addr
		resolved bool // resolved before the misses
		cause    string
	}{
		{"ipv4 never resolved", real4, false, "no ARP reply after 3 tries"},
		{"ipv6 never resolved", real6, false, "no neighbour advertisement after 3 tries"},
		{"ipv4 lost", real4, true, "no ARP reply after 3 tries"},
		{"ipv6 lost", real6, true, "no neighbour advertisement after 3 tries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := testTracker()
			tr.add(tc.addr, t0)
			now := t0
			if tc.resolved {
				tr.sent(tc.addr, now)
				tr.reply(tc.addr, macA, now)
				now = now.Add(2 * time.Second)
			}
			for i := 1; i <= 3; i++ {
				if due := tr.due(now); len(due) != 1 {
					t.Fatalf("try %d: due = %v", i, due)
				}
				tr.sent(tc.addr, now)
				wantChanges(t, "before deadline", tr.expire(now.Add(499*time.Millisecond)))
				now = now.Add(500 * time.Millisecond)
				got := tr.expire(now)
				if i < 3 {
					wantChanges(t, "miss", got)
				} else {
					wantChanges(t, "last miss", got, lost(tc.addr, tc.cause))
				}
			}
			// Given up on: retried every refresh period, reported once.
			if due := tr.due(now); len(due) != 0 {
				t.Fatalf("due right after giving up = %v", due)
			}
			now = now.Add(2 * time.Second)
			tr.sent(tc.addr, now)
			wantChanges(t, "another miss", tr.expire(now.Add(500*time.Millisecond)))
			// It comes back.
			wantChanges(t, "back", tr.reply(tc.addr, macB, now.Add(time.Second)), resolved(tc.addr, macB))
		})
	}
}

func TestTrackerMissesAreConsecutive(t *testing.T) {
	tr := testTracker()
	tr.add(real4, t0)
	now := t0
	for i := range 10 {
		tr.sent(real4, now)
		now = now.Add(500 * time.Millisecond)
		changes := tr.expire(now)
		if i == 0 {
			continue
		}
		wantChanges(t, "miss", changes)
		if i%2 == 1 {
			tr.sent(real4, now)
			changes = tr.reply(real4, macA, now)
			if i == 1 {
				wantChanges(t, "first reply", changes, resolved(real4, macA))
			}
			now = now.Add(2 * time.Second)
		}
	}
}

func TestTrackerSendFailed(t *testing.T) {
	tr := testTracker()
	tr.add(real4, t0)
	cause := "cannot send ARP requests on eth1: no IPv4 address"
	now := t0
	for i := 1; i <= 3; i++ {
		if due := tr.due(now); len(due) != 1 {
			t.Fatalf("try %d: due = %v", i, due)
		}
		got := tr.sendFailed(real4, now, cause)
		if i < 3 {
			wantChanges(t, "failed send", got)
			if due := tr.due(now); len(due) != 0 {
				t.Fatalf("retry not spaced: due = %v", due)
			}
		} else {
			wantChanges(t, "last failed send", got, lost(real4, cause))
		}
		now = now.Add(500 * time.Millisecond)
	}
}

func TestTrackerKernel(t *testing.T) {
	const dump = true // from the initial listing; false: a live notification
	type kev struct {
		state   int
		mac     net.HardwareAddr
		deleted bool
		dump    bool
	}
	for _, tc := range []struct {
		name    string
		before  []kev // kernel events before Add
		after   []kev // kernel events after Add (and after a first reply with macA if replied)
		replied bool
		want    []change // from Add and the after events
	}{
		{name: "reachable in dump answers at once",
			before: []kev{{state: unix.NUD_REACHABLE, mac: macA, dump: dump}},
			want:   []change{resolved(real4, macA)}},
		{name: "permanent in dump answers at once",
			before: []kev{{state: unix.NUD_PERMANENT, mac: macA, dump: dump}},
			want:   []change{resolved(real4, macA)}},
		{name: "stale in dump waits for a probe",
			before: []kev{{state: unix.NUD_STALE, mac: macA, dump: dump}}},
		{name: "failed in dump waits for a probe",
			before: []kev{{state: unix.NUD_FAILED, dump: dump}}},
		{name: "live new stale entry is fresh news",
			after: []kev{{state: unix.NUD_STALE, mac: macA}},
			want:  []change{resolved(real4, macA)}},
		{name: "live stale with a new lladdr follows the move",
			replied: true,
			before:  []kev{{state: unix.NUD_REACHABLE, mac: macA, dump: dump}},
			after:   []kev{{state: unix.NUD_STALE, mac: macB}},
			want:    []change{resolved(real4, macA), resolved(real4, macB)}},
		{name: "live stale with the same lladdr is no news",
			before: []kev{{state: unix.NUD_STALE, mac: macA, dump: dump}},
			after:  []kev{{state: unix.NUD_DELAY, mac: macA}, {state: unix.NUD_PROBE, mac: macA}}},
		{name: "live reachable confirms",
			before: []kev{{state: unix.NUD_STALE, mac: macA, dump: dump}},
			after:  []kev{{state: unix.NUD_REACHABLE, mac: macA}},
			want:   []change{resolved(real4, macA)}},
		{name: "deleted then recreated is fresh news",
			before: []kev{{state: unix.NUD_STALE, mac: macA, dump: dump}},
			after:  []kev{{deleted: true}, {state: unix.NUD_STALE, mac: macA}},
			want:   []change{resolved(real4, macA)}},
		{name: "zero and broadcast lladdrs are ignored",
			after: []kev{
				{state: unix.NUD_REACHABLE, mac: net.HardwareAddr{0, 0, 0, 0, 0, 0}},
				{state: unix.NUD_REACHABLE, mac: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := testTracker()
			for _, e := range tc.before {
				wantChanges(t, "before add", tr.kernelUpdate(real4, kernelNeigh{state: e.state, mac: e.mac}, e.deleted, e.dump, t0))
			}
			got := tr.add(real4, t0)
			if tc.replied && len(got) == 0 {
				got = append(got, tr.reply(real4, macA, t0)...)
			}
			for _, e := range tc.after {
				got = append(got, tr.kernelUpdate(real4, kernelNeigh{state: e.state, mac: e.mac}, e.deleted, e.dump, t0)...)
			}
			wantChanges(t, "events", got, tc.want...)
		})
	}
}

func TestTrackerKernelFailedProbesNow(t *testing.T) {
	tr := testTracker()
	tr.add(real4, t0)
	tr.sent(real4, t0)
	tr.reply(real4, macA, t0)
	if due := tr.due(at(time.Second)); len(due) != 0 {
		t.Fatalf("due = %v", due)
	}
	wantChanges(t, "failed", tr.kernelUpdate(real4, kernelNeigh{state: unix.NUD_FAILED}, false, false, at(time.Second)))
	if due := tr.due(at(time.Second)); len(due) != 1 {
		t.Fatalf("a FAILED kernel entry must make a probe due: due = %v", due)
	}
	// The answer stands until the probes say otherwise.
	if mac, _, _ := tr.lookup(real4); mac.String() != macA.String() {
		t.Fatalf("lookup = %v", mac)
	}
}

func TestTrackerLinkDownUp(t *testing.T) {
	tr := testTracker()
	tr.add(real4, t0)
	tr.add(real6, t0)
	tr.sent(real4, t0)
	tr.reply(real4, macA, t0)
	wantChanges(t, "down", tr.linkDown("interface eth1 is down"),
		lost(real4, "interface eth1 is down"), lost(real6, "interface eth1 is down"))
	wantChanges(t, "down again", tr.linkDown("interface eth1 is down"))
	if due := tr.due(at(time.Hour)); len(due) != 0 {
		t.Fatalf("due while down = %v", due)
	}
	if _, ok := tr.wake(); ok {
		t.Fatal("wake while down")
	}
	wantChanges(t, "reply while down", tr.reply(real4, macA, at(time.Second)))
	wantChanges(t, "add while down", tr.add(netip.MustParseAddr("10.0.0.3"), at(time.Second)),
		lost(netip.MustParseAddr("10.0.0.3"), "interface eth1 is down"))

	tr.linkUp(at(2 * time.Second))
	if due := tr.due(at(2 * time.Second)); len(due) != 3 {
		t.Fatalf("due after up = %v, want all", due)
	}
	wantChanges(t, "reply after up", tr.reply(real4, macA, at(2*time.Second)), resolved(real4, macA))
	// real6 does not answer: its cause changes from the link to the probes.
	now := at(2 * time.Second)
	var got []change
	for range 3 {
		tr.sent(real6, now)
		now = now.Add(500 * time.Millisecond)
		got = append(got, tr.expire(now)...)
	}
	wantChanges(t, "real6 silent", got[len(got)-1:], lost(real6, "no neighbour advertisement after 3 tries"))
}

func TestTrackerCanonicalAndRemove(t *testing.T) {
	tr := testTracker()
	mapped := netip.MustParseAddr("::ffff:10.0.0.2")
	tr.add(mapped, t0)
	if _, _, ok := tr.lookup(real4); !ok {
		t.Fatal("an IPv4-mapped address is watched as IPv4")
	}
	wantChanges(t, "add again", tr.add(real4, t0))
	wantChanges(t, "reply", tr.reply(real4, macA, t0), resolved(real4, macA))
	ll := netip.MustParseAddr("fe80::2%eth1")
	tr.add(ll, t0)
	if _, _, ok := tr.lookup(netip.MustParseAddr("fe80::2")); !ok {
		t.Fatal("zones are ignored")
	}
	tr.remove(real4)
	if _, _, ok := tr.lookup(real4); ok {
		t.Fatal("removed address still watched")
	}
	wantChanges(t, "reply after remove", tr.reply(real4, macB, t0))
	wantChanges(t, "kernel after remove", tr.kernelUpdate(real4, kernelNeigh{state: unix.NUD_REACHABLE, mac: macB}, false, false, t0))
}

func TestJitter(t *testing.T) {
	for range 1000 {
		if d := jitter(time.Second); d < 800*time.Millisecond || d > 1200*time.Millisecond {
			t.Fatalf("jitter(1s) = %v", d)
		}
	}
}

func TestValidMAC(t *testing.T) {
	for _, tc := range []struct {
		mac  net.HardwareAddr
		want bool
	}{
		{macA, true},
		{nil, false},
		{net.HardwareAddr{0, 0, 0, 0, 0, 0}, false},
		{net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, false},
		{net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}, false},
		{net.HardwareAddr{0, 1, 2, 3, 4, 5, 6, 7}, false},
	} {
		if got := validMAC(tc.mac); got != tc.want {
			t.Errorf("validMAC(%v) = %v, want %v", tc.mac, got, tc.want)
		}
	}
}
