package loader

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/cilium/ebpf"
)

// BenchmarkDataplane puts the program's cost per packet next to the floor,
// measured side by side in one run: rounds interleave the cases, and each
// case reports its median over the rounds. Run it with -benchtime=1x (make
// bench): one call does all the rounds.
//
// Cases:
//   - floor: a program that only swaps MACs and returns XDP_TX;
//   - established: a VIP flow found in the connection table (repeat re-runs
//     the same frame, whose flow is known after the first run: the real
//     path of an established flow);
//   - new flow: xdp_new_flow_driver adds one to the source address and
//     tail-calls the program, so every run is a flow never seen before
//     (connection-table miss, Maglev pick, insert, with LRU eviction once
//     the table is full); driver+floor measures the driver's own share;
//   - not a VIP: an IPv4 packet to another address, passed to the stack.
func BenchmarkDataplane(b *testing.B) {
	requireRoot(b)
	const (
		rounds = 7
		repeat = 1 << 20
	)
	d, err := Load(Sizes{}, ifaceMAC, testSeed) // production sizes
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	var bench benchObjects
	if err := loadBenchObjects(&bench, nil); err != nil {
		b.Fatal(err)
	}
	defer bench.Close()

	k := VIPKey{vip4, 80, TCP}
	if err := d.SetVIP(k, VIP{ID: 1}); err != nil {
		b.Fatal(err)
	}
	ids := make([]uint32, 10)
	for i := range ids {
		ids[i] = uint32(i + 1)
		if err := d.SetReal(ids[i], Real{VIPID: 1, Addr: realAddr(4, ids[i]), MAC: realMAC(ids[i]), State: RealUp}); err != nil {
			b.Fatal(err)
		}
	}
	if err := d.SetTable(1, roundRobin(DefaultRingSize, ids...)); err != nil {
		b.Fatal(err)
	}

	est := tcp4(client4, 40000, vip4, 80)
	notVIP := tcp4(client4, 40000, netip.MustParseAddr("10.99.0.200"), 80)
	est6 := tcp6(client6, 40000, vip6, 80)
	if err := d.SetVIP(VIPKey{vip6, 80, TCP}, VIP{ID: 2}); err != nil {
		b.Fatal(err)
	}
	for _, id := range ids {
		if err := d.SetReal(id+100, Real{VIPID: 2, Addr: realAddr(6, id), MAC: realMAC(id), State: RealUp}); err != nil {
			b.Fatal(err)
		}
	}
	if err := d.SetTable(2, roundRobin(DefaultRingSize, 101, 102, 103)); err != nil {
		b.Fatal(err)
	}

	// Each round's new flows start from their own source block, so no
	// round meets flows of an earlier one.
	newFlowFrame := func(round int) []byte {
		src := netip.AddrFrom4([4]byte{byte(11 + round), 0, 0, 0})
		return tcp4(src, 40000, vip4, 80)
	}
	run := func(p *ebpf.Program, in []byte, wantRet uint32) time.Duration {
		ret, per, err := p.Benchmark(in, repeat, nil)
		if err != nil {
			b.Fatal(err)
		}
		if ret != wantRet {
			b.Fatalf("verdict %d, want %d", ret, wantRet)
		}
		return per
	}
	tail := func(p *ebpf.Program) {
		if err := bench.BenchNext.Put(uint32(0), p); err != nil {
			b.Fatal(err)
		}
	}

	type result struct {
		name string
		ns   []float64
	}
	cases := []result{{name: "floor"}, {name: "established"}, {name: "established-ipv6"},
		{name: "new-flow"}, {name: "driver+floor"}, {name: "not-vip"}}
	for r := 0; r < rounds; r++ {
		per := []time.Duration{
			run(bench.XdpFloor, est, xdpTX),
			run(d.objs.XdpDirector, est, xdpTX),
			run(d.objs.XdpDirector, est6, xdpTX),
			func() time.Duration {
				tail(d.objs.XdpDirector)
				return run(bench.XdpNewFlowDriver, newFlowFrame(r), xdpTX)
			}(),
			func() time.Duration { tail(bench.XdpFloor); return run(bench.XdpNewFlowDriver, est, xdpTX) }(),
			run(d.objs.XdpDirector, notVIP, xdpPass),
		}
		for i, p := range per {
			cases[i].ns = append(cases[i].ns, float64(p.Nanoseconds()))
		}
	}
	st, err := d.Stats()
	if err != nil {
		b.Fatal(err)
	}
	if st[CTMiss] < rounds*repeat {
		b.Fatalf("new-flow case missed the connection table %d times, want >= %d", st[CTMiss], rounds*repeat)
	}

	median := func(v []float64) float64 {
		s := slices.Clone(v)
		slices.Sort(s)
		return s[len(s)/2]
	}
	floor := median(cases[0].ns)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "case\tns/packet (median of %d)\tmin\tmax\tx floor\t\n", rounds)
	for _, c := range cases {
		m := median(c.ns)
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.2f\t\n", c.name, m, slices.Min(c.ns), slices.Max(c.ns), m/floor)
		b.ReportMetric(m, c.name+"-ns/pkt")
	}
	tw.Flush()
}
