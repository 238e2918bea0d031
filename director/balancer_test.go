package director

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/directorlb/director/director/fakedp"
	"github.com/directorlb/director/loader"
)

var (
	vip   = loader.VIPKey{Addr: netip.MustParseAddr("10.99.0.100"), Port: 80, Proto: loader.TCP}
	rs1   = netip.MustParseAddr("10.99.0.11")
	rs2   = netip.MustParseAddr("10.99.0.12")
	rs3   = netip.MustParseAddr("10.99.0.13")
	sorry = netip.MustParseAddr("10.99.0.99")
)

func macOf(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x02, 0, b[0], b[1], b[2], b[3]}
}

func newTestBalancer(t *testing.T, policy AllDownPolicy) (*Balancer, *fakedp.Dataplane) {
	t.Helper()
	dp := fakedp.New(loader.Sizes{})
	b, err := NewBalancer(dp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, v := range dp.Violations {
			t.Error(v)
		}
	})
	if err := b.AddService(ServiceSpec{Key: vip, AllDown: policy, SorryServer: sorry}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []netip.Addr{rs1, rs2, rs3} {
		if err := b.AddReal(vip, RealSpec{Addr: a, Weight: 1, MAC: macOf(a), Healthy: true}); err != nil {
			t.Fatal(err)
		}
	}
	return b, dp
}

func realStatus(t *testing.T, b *Balancer, a netip.Addr) RealStatus {
	t.Helper()
	for _, s := range b.Services() {
		for _, r := range s.Reals {
			if r.Addr == a {
				return r
			}
		}
	}
	t.Fatalf("real %v not listed", a)
	return RealStatus{}
}

func near(got, want int) bool { return got >= want-1 && got <= want+1 }

func TestBalancerSpreadsAndWeights(t *testing.T) {
	b, dp := newTestBalancer(t, KeepLast)
	sh := dp.Share(vip)
	for _, a := range []netip.Addr{rs1, rs2, rs3} {
		if !near(sh[a], 251/3) {
			t.Fatalf("shares %v", sh)
		}
		if st := realStatus(t, b, a).State; st != loader.RealUp {
			t.Fatalf("real %v state %v", a, st)
		}
	}
	if err := b.SetWeight(vip, rs1, 2); err != nil {
		t.Fatal(err)
	}
	sh = dp.Share(vip)
	if !near(sh[rs1], 2*251/4) || !near(sh[rs2], 251/4) {
		t.Fatalf("weights 2:1:1 gave %v", sh)
	}
}

func TestBalancerHealthDrainWeightZero(t *testing.T) {
	b, dp := newTestBalancer(t, KeepLast)

	// Down: out of the table, flows re-picked (state down).
	if err := b.SetHealth(vip, rs1, false); err != nil {
		t.Fatal(err)
	}
	if sh := dp.Share(vip); sh[rs1] != 0 || sh[rs2]+sh[rs3] != 251 {
		t.Fatalf("down real still in table: %v", sh)
	}
	if st := realStatus(t, b, rs1).State; st != loader.RealDown {
		t.Fatalf("down real in state %v", st)
	}
	if err := b.SetHealth(vip, rs1, true); err != nil {
		t.Fatal(err)
	}
	if sh := dp.Share(vip); !near(sh[rs1], 251/3) {
		t.Fatalf("real back up did not rejoin: %v", sh)
	}

	// Drain: out of the table, existing flows kept (state drain).
	if err := b.Drain(vip, rs2); err != nil {
		t.Fatal(err)
	}
	if sh := dp.Share(vip); sh[rs2] != 0 {
		t.Fatalf("drained real in table: %v", sh)
	}
	if r := realStatus(t, b, rs2); r.State != loader.RealDrain || !r.Drained || r.Weight != 1 {
		t.Fatalf("drained real %+v", r)
	}
	// A drained real that goes down loses its flows.
	if err := b.SetHealth(vip, rs2, false); err != nil {
		t.Fatal(err)
	}
	if st := realStatus(t, b, rs2).State; st != loader.RealDown {
		t.Fatalf("drained+down real in state %v", st)
	}
	if err := b.SetHealth(vip, rs2, true); err != nil {
		t.Fatal(err)
	}
	if err := b.Enable(vip, rs2); err != nil {
		t.Fatal(err)
	}
	if sh := dp.Share(vip); !near(sh[rs2], 251/3) {
		t.Fatalf("enabled real did not rejoin: %v", sh)
	}

	// Weight 0 is a drain too.
	if err := b.SetWeight(vip, rs3, 0); err != nil {
		t.Fatal(err)
	}
	if r := realStatus(t, b, rs3); r.State != loader.RealDrain || dp.Share(vip)[rs3] != 0 {
		t.Fatalf("weight 0: %+v, share %v", r, dp.Share(vip))
	}
}

func TestBalancerUnresolvedMAC(t *testing.T) {
	b, dp := newTestBalancer(t, KeepLast)
	if err := b.SetMAC(vip, rs1, nil); err != nil {
		t.Fatal(err)
	}
	if r := realStatus(t, b, rs1); r.State != loader.RealDown || dp.Share(vip)[rs1] != 0 {
		t.Fatalf("unresolved real: %+v", r)
	}
	newMAC := net.HardwareAddr{2, 9, 9, 9, 9, 9}
	if err := b.SetMAC(vip, rs1, newMAC); err != nil {
		t.Fatal(err)
	}
	r := realStatus(t, b, rs1)
	if dpr, _ := dp.Real(r.ID); dpr.MAC.String() != newMAC.String() || dpr.State != loader.RealUp {
		t.Fatalf("moved real in dataplane: %+v", dpr)
	}
}

// A real that stays up while its MAC changes (a new NIC, a moved VM) is
// rewritten in place; the table does not move.
func TestBalancerMACChangeInPlace(t *testing.T) {
	b, dp := newTestBalancer(t, KeepLast)
	before := dp.Share(vip)
	newMAC := net.HardwareAddr{2, 9, 9, 9, 9, 8}
	if err := b.SetMAC(vip, rs2, newMAC); err != nil {
		t.Fatal(err)
	}
	r := realStatus(t, b, rs2)
	if dpr, _ := dp.Real(r.ID); dpr.MAC.String() != newMAC.String() || dpr.State != loader.RealUp {
		t.Fatalf("real with a new MAC in the dataplane: %+v", dpr)
	}
	if after := dp.Share(vip); !maps.Equal(before, after) {
		t.Fatalf("table changed: %v -> %v", before, after)
	}
}

func TestBalancerAllDown(t *testing.T) {
	t.Run("keep last", func(t *testing.T) {
		b, dp := newTestBalancer(t, KeepLast)
		before := dp.Share(vip)
		for _, a := range []netip.Addr{rs1, rs2, rs3} {
			if err := b.SetHealth(vip, a, false); err != nil {
				t.Fatal(err)
			}
		}
		// The last table had rs2 and rs3 (rs1 went first): they keep it.
		sh := dp.Share(vip)
		if sh[rs1] != 0 || sh[rs2]+sh[rs3] != 251 {
			t.Fatalf("kept table %v (before %v)", sh, before)
		}
		// One comes back: the table is rebuilt with it alone.
		if err := b.SetHealth(vip, rs1, true); err != nil {
			t.Fatal(err)
		}
		if sh := dp.Share(vip); sh[rs1] != 251 {
			t.Fatalf("after recovery %v", sh)
		}
	})
	t.Run("drop", func(t *testing.T) {
		b, dp := newTestBalancer(t, Drop)
		for _, a := range []netip.Addr{rs1, rs2, rs3} {
			if err := b.SetHealth(vip, a, false); err != nil {
				t.Fatal(err)
			}
		}
		if sh := dp.Share(vip); sh[netip.Addr{}] != 251 {
			t.Fatalf("drop policy table %v", sh)
		}
	})
	t.Run("sorry server", func(t *testing.T) {
		b, dp := newTestBalancer(t, Sorry)
		if err := b.AddReal(vip, RealSpec{Addr: sorry, Weight: 1, MAC: macOf(sorry), Healthy: true, Sorry: true}); err != nil {
			t.Fatal(err)
		}
		if sh := dp.Share(vip); sh[sorry] != 0 {
			t.Fatalf("sorry server in a healthy table: %v", sh)
		}
		for _, a := range []netip.Addr{rs1, rs2, rs3} {
			if err := b.SetHealth(vip, a, false); err != nil {
				t.Fatal(err)
			}
		}
		if sh := dp.Share(vip); sh[sorry] != 251 {
			t.Fatalf("sorry policy table %v", sh)
		}
		if err := b.SetHealth(vip, rs2, true); err != nil {
			t.Fatal(err)
		}
		if sh := dp.Share(vip); sh[rs2] != 251 || sh[sorry] != 0 {
			t.Fatalf("after recovery %v", sh)
		}
	})
}

func TestBalancerRemove(t *testing.T) {
	b, dp := newTestBalancer(t, KeepLast)
	id := realStatus(t, b, rs2).ID
	if err := b.RemoveReal(vip, rs2); err != nil {
		t.Fatal(err)
	}
	if _, ok := dp.Real(id); ok {
		t.Fatal("removed real still in the dataplane")
	}
	if sh := dp.Share(vip); sh[rs2] != 0 || !near(sh[rs1], 251/2) {
		t.Fatalf("after removal %v", sh)
	}
	// Its id goes to the next real.
	rs4 := netip.MustParseAddr("10.99.0.14")
	if err := b.AddReal(vip, RealSpec{Addr: rs4, Weight: 1, MAC: macOf(rs4), Healthy: true}); err != nil {
		t.Fatal(err)
	}
	if got := realStatus(t, b, rs4).ID; got != id {
		t.Fatalf("new real got id %d, want the freed %d", got, id)
	}
	if err := b.RemoveService(vip); err != nil {
		t.Fatal(err)
	}
	if vips, _ := dp.VIPs(); len(vips) != 0 {
		t.Fatalf("VIPs left: %v", vips)
	}
	if reals, _ := dp.Reals(); len(reals) != 0 {
		t.Fatalf("reals left: %v", reals)
	}
}

func TestBalancerBadInputChangesNothing(t *testing.T) {
	b, dp := newTestBalancer(t, KeepLast)
	snapshot := func() string {
		vips, _ := dp.VIPs()
		reals, _ := dp.Reals()
		return fmt.Sprint(vips, reals, dp.Share(vip), b.Services())
	}
	before := snapshot()
	other := loader.VIPKey{Addr: netip.MustParseAddr("10.99.0.200"), Port: 80, Proto: loader.TCP}
	cases := []struct {
		name string
		err  error
		is   error
	}{
		{"unknown VIP", b.AddReal(other, RealSpec{Addr: rs1, Weight: 1}), ErrUnknownVIP},
		{"duplicate real", b.AddReal(vip, RealSpec{Addr: rs1, Weight: 1}), ErrExists},
		{"duplicate VIP", b.AddService(ServiceSpec{Key: vip}), ErrExists},
		{"unknown real", b.Drain(vip, netip.MustParseAddr("10.99.0.77")), ErrUnknownReal},
		{"weight out of range", b.SetWeight(vip, rs1, MaxWeight+1), nil},
		{"weight out of range on add", b.AddReal(vip, RealSpec{Addr: netip.MustParseAddr("10.99.0.50"), Weight: 1000}), nil},
		{"family", b.AddReal(vip, RealSpec{Addr: netip.MustParseAddr("fd00::1"), Weight: 1}), nil},
		{"bad MAC", b.SetMAC(vip, rs1, net.HardwareAddr{1, 2, 3}), nil},
	}
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
		} else if c.is != nil && !errors.Is(c.err, c.is) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.is)
		}
	}
	if after := snapshot(); after != before {
		t.Fatalf("failed calls changed state:\n%s\n%s", before, after)
	}

	// A dataplane that refuses a write: the call fails and the balancer's
	// view does not drift from what the dataplane holds.
	dp.Fail = func(op string) error {
		if op == "SetTable" {
			return errors.New("injected")
		}
		return nil
	}
	if err := b.Drain(vip, rs1); err == nil {
		t.Fatal("drain succeeded over a failing dataplane")
	}
	if r := realStatus(t, b, rs1); r.Drained {
		t.Fatalf("balancer thinks rs1 is drained after a failed drain: %+v", r)
	}
}

func TestBalancerAdoptsAndPrunes(t *testing.T) {
	dp := fakedp.New(loader.Sizes{})
	first, err := NewBalancer(dp)
	if err != nil {
		t.Fatal(err)
	}
	gone := loader.VIPKey{Addr: netip.MustParseAddr("10.99.0.101"), Port: 80, Proto: loader.TCP}
	for _, k := range []loader.VIPKey{gone, vip} { // gone takes id 0
		if err := first.AddService(ServiceSpec{Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []netip.Addr{rs1, rs2} {
		if err := first.AddReal(vip, RealSpec{Addr: a, Weight: 1, MAC: macOf(a), Healthy: true}); err != nil {
			t.Fatal(err)
		}
		if err := first.AddReal(gone, RealSpec{Addr: a, Weight: 1, MAC: macOf(a), Healthy: true}); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[netip.Addr]uint32{}
	for _, s := range first.Services() {
		if s.Spec.Key == vip {
			for _, r := range s.Reals {
				ids[r.Addr] = r.ID
			}
		}
	}
	if err := first.SetHealth(vip, rs2, false); err != nil {
		t.Fatal(err)
	}
	table := dp.Table(1)

	// The agent restarts: a new balancer over the same dataplane, and a
	// config that names vip with rs1 and rs2 only.
	second, err := NewBalancer(dp)
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := second.Adopted(vip, rs1); !ok || st != loader.RealUp {
		t.Fatalf("adopted rs1: %v %v", st, ok)
	}
	if st, ok := second.Adopted(vip, rs2); !ok || st != loader.RealDown {
		t.Fatalf("adopted rs2: %v %v", st, ok)
	}
	if err := second.AddService(ServiceSpec{Key: vip}); err != nil {
		t.Fatal(err)
	}
	// Another order; MACs not resolved yet (the adopted ones are used);
	// health as adopted.
	if err := second.AddReal(vip, RealSpec{Addr: rs2, Weight: 1, Healthy: false}); err != nil {
		t.Fatal(err)
	}
	if err := second.AddReal(vip, RealSpec{Addr: rs1, Weight: 1, Healthy: true}); err != nil {
		t.Fatal(err)
	}
	if err := second.Prune(time.Time{}); err != nil {
		t.Fatal(err)
	}
	for _, s := range second.Services() {
		if s.ID != 1 {
			t.Fatalf("VIP re-adopted with id %d, want 1", s.ID)
		}
		for _, r := range s.Reals {
			if r.ID != ids[r.Addr] {
				t.Fatalf("real %v re-adopted with id %d, want %d", r.Addr, r.ID, ids[r.Addr])
			}
		}
	}
	if fmt.Sprint(dp.Table(1)) != fmt.Sprint(table) {
		t.Fatal("the table changed across the restart")
	}
	vips, _ := dp.VIPs()
	reals, _ := dp.Reals()
	if len(vips) != 1 || len(reals) != 2 {
		t.Fatalf("prune left %d VIPs and %d reals", len(vips), len(reals))
	}
	for _, v := range dp.Violations {
		t.Error(v)
	}
}

func TestBalancerRetireKeepsFlowsUntilReaped(t *testing.T) {
	b, dp := newTestBalancer(t, KeepLast)
	id := realStatus(t, b, rs2).ID
	now := time.Unix(1000, 0)
	if err := b.Retire(vip, rs2, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Out of the table and of the listing; in the dataplane, draining.
	if sh := dp.Share(vip); sh[rs2] != 0 {
		t.Fatalf("retired real in table: %v", sh)
	}
	for _, s := range b.Services() {
		for _, r := range s.Reals {
			if r.Addr == rs2 {
				t.Fatal("retired real still listed")
			}
		}
	}
	if r, ok := dp.Real(id); !ok || r.State != loader.RealDrain {
		t.Fatalf("retired real in dataplane: %+v %v", r, ok)
	}
	// Back before the deadline: same id, flows carry on.
	if err := b.AddReal(vip, RealSpec{Addr: rs2, Weight: 1, MAC: macOf(rs2), Healthy: true}); err != nil {
		t.Fatal(err)
	}
	if got := realStatus(t, b, rs2); got.ID != id || got.State != loader.RealUp {
		t.Fatalf("revived real %+v, want id %d up", got, id)
	}
	if err := b.Retire(vip, rs2, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := b.Reap(now.Add(59 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, ok := dp.Real(id); !ok {
		t.Fatal("reaped before the deadline")
	}
	if err := b.Reap(now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, ok := dp.Real(id); ok {
		t.Fatal("not reaped at the deadline")
	}
	// A real that takes no flows goes at once.
	if err := b.SetHealth(vip, rs3, false); err != nil {
		t.Fatal(err)
	}
	id3 := realStatus(t, b, rs3).ID
	if err := b.Retire(vip, rs3, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, ok := dp.Real(id3); ok {
		t.Fatal("a down real was kept for its flows")
	}
}

// A change that shapes nothing must not rebuild the table: each rebuild is a
// 65,537-slot Maglev build and a new kernel map swapped in.
func TestBalancerNoOpWritesNoTable(t *testing.T) {
	b, dp := newTestBalancer(t, KeepLast)
	before := dp.Ops["SetTable"]
	for i := 0; i < 20; i++ {
		if err := b.SetWeight(vip, rs1, 1); err != nil {
			t.Fatal(err)
		}
		if err := b.SetHealth(vip, rs2, true); err != nil {
			t.Fatal(err)
		}
	}
	if n := dp.Ops["SetTable"] - before; n != 0 {
		t.Fatalf("40 changes that shape nothing wrote the table %d times", n)
	}
	if err := b.SetWeight(vip, rs1, 2); err != nil {
		t.Fatal(err)
	}
	if n := dp.Ops["SetTable"] - before; n != 1 {
		t.Fatalf("a real weight change wrote the table %d times, want 1", n)
	}
}

func TestBalancerMaint(t *testing.T) {
	b, dp := newTestBalancer(t, KeepLast)

	// Maintenance: out of the table and down, flows cut, whatever the
	// health and even when drained before.
	if err := b.Drain(vip, rs1); err != nil {
		t.Fatal(err)
	}
	if err := b.SetMaint(vip, rs1, true); err != nil {
		t.Fatal(err)
	}
	if r := realStatus(t, b, rs1); r.State != loader.RealDown || !r.Maint || !r.Healthy || dp.Share(vip)[rs1] != 0 {
		t.Fatalf("real in maintenance: %+v, share %v", r, dp.Share(vip))
	}
	// Under KeepLast, the reals in maintenance are not kept when every
	// other real is down: the operator asked for no traffic at all.
	if err := b.SetMaint(vip, rs2, true); err != nil {
		t.Fatal(err)
	}
	if err := b.SetMaint(vip, rs3, true); err != nil {
		t.Fatal(err)
	}
	for _, a := range []netip.Addr{rs1, rs2, rs3} {
		if st := realStatus(t, b, a).State; st != loader.RealDown {
			t.Fatalf("every real in maintenance, %v is %v; shares %v", a, st, dp.Share(vip))
		}
	}
	// Out of maintenance, a drained real goes back to draining, the
	// others rejoin the table.
	for _, a := range []netip.Addr{rs1, rs2, rs3} {
		if err := b.SetMaint(vip, a, false); err != nil {
			t.Fatal(err)
		}
	}
	if st := realStatus(t, b, rs1).State; st != loader.RealDrain {
		t.Fatalf("drained real out of maintenance: %v", st)
	}
	if sh := dp.Share(vip); sh[rs1] != 0 || sh[rs2]+sh[rs3] != 251 {
		t.Fatalf("shares after maintenance: %v", sh)
	}
}
