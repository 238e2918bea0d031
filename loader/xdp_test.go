package loader

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/cilium/ebpf"
)

// XDP verdicts.
const (
	xdpDrop = 1
	xdpPass = 2
	xdpTX   = 3
)

var (
	ifaceMAC  = mustMAC("02:d1:00:00:00:01")
	clientMAC = mustMAC("02:c1:00:00:00:01")
	vip4      = netip.MustParseAddr("10.99.0.100")
	vip6      = netip.MustParseAddr("fd00:99::100")
	client4   = netip.MustParseAddr("10.99.0.10")
	client6   = netip.MustParseAddr("fd00:99::10")
	testSeed  = uint32(0x5eed)
	testSizes = Sizes{RingSize: 65537, FlowEntries: 4096, MaxVIPs: 16, MaxReals: 64}
)

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root for BPF")
	}
}

// fixture is a loaded program with VIPs and reals, run with
// BPF_PROG_TEST_RUN.
type fixture struct {
	t     *testing.T
	d     *Dataplane
	reals map[uint32]Real
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	requireRoot(t)
	d, err := Load(testSizes, ifaceMAC, testSeed)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return &fixture{t: t, d: d, reals: make(map[uint32]Real)}
}

func realMAC(id uint32) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0xee, 0, 0, byte(id >> 8), byte(id)}
}

func realAddr(family int, id uint32) netip.Addr {
	if family == 6 {
		return netip.AddrFrom16([16]byte{0xfd, 0, 0, 0x99, 14: byte(id >> 8), 15: byte(id)})
	}
	return netip.AddrFrom4([4]byte{10, 99, 1, byte(id)})
}

// addReal sets real id, up, on vipID.
func (f *fixture) addReal(vipID, id uint32, addr netip.Addr) {
	f.t.Helper()
	r := Real{VIPID: vipID, Addr: addr, MAC: realMAC(id), State: RealUp}
	if err := f.d.SetReal(id, r); err != nil {
		f.t.Fatalf("SetReal: %v", err)
	}
	f.reals[id] = r
}

// roundRobin is a table that cycles through ids: enough to test the data
// path, which only reads slots (Maglev itself is tested in director/maglev).
func roundRobin(size uint32, ids ...uint32) []uint32 {
	t := make([]uint32, size)
	for i := range t {
		if len(ids) == 0 {
			t[i] = NoReal
			continue
		}
		t[i] = ids[i%len(ids)]
	}
	return t
}

func (f *fixture) setTable(vipID uint32, ids ...uint32) []uint32 {
	f.t.Helper()
	tbl := roundRobin(testSizes.RingSize, ids...)
	if err := f.d.SetTable(vipID, tbl); err != nil {
		f.t.Fatalf("SetTable: %v", err)
	}
	return tbl
}

// service sets a VIP with reals [first, first+n) and a round-robin table.
func (f *fixture) service(k VIPKey, id uint32, flags VIPFlags, first, n uint32) []uint32 {
	f.t.Helper()
	if err := f.d.SetVIP(k, VIP{ID: id, Flags: flags}); err != nil {
		f.t.Fatalf("SetVIP: %v", err)
	}
	fam := 4
	if k.Addr.Is6() {
		fam = 6
	}
	ids := make([]uint32, 0, n)
	for i := first; i < first+n; i++ {
		f.addReal(id, i, realAddr(fam, i))
		ids = append(ids, i)
	}
	return f.setTable(id, ids...)
}

func (f *fixture) run(pkt []byte) (uint32, []byte) {
	f.t.Helper()
	out := make([]byte, len(pkt)+64)
	opts := ebpf.RunOptions{Data: pkt, DataOut: out}
	ret, err := f.d.objs.XdpDirector.Run(&opts)
	if err != nil {
		f.t.Fatalf("run: %v", err)
	}
	return ret, opts.DataOut[:len(pkt)]
}

func (f *fixture) stats() map[Reason]uint64 {
	f.t.Helper()
	s, err := f.d.Stats()
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// expectTX checks the frame went to real id: MACs rewritten, nothing else.
func (f *fixture) expectTX(in []byte, want uint32) {
	f.t.Helper()
	ret, out := f.run(in)
	if ret != xdpTX {
		f.t.Fatalf("verdict %d, want XDP_TX; stats %v", ret, f.stats())
	}
	if got := net.HardwareAddr(out[:6]); !bytes.Equal(got, realMAC(want)) {
		f.t.Fatalf("dst MAC %v, want real %d (%v)", got, want, realMAC(want))
	}
	if got := net.HardwareAddr(out[6:12]); !bytes.Equal(got, ifaceMAC) {
		f.t.Fatalf("src MAC %v, want interface MAC %v", got, ifaceMAC)
	}
	if !bytes.Equal(out[12:], in[12:]) {
		f.t.Fatalf("bytes past the MACs changed:\n in %x\nout %x", in[12:], out[12:])
	}
}

// expectVerdict checks a non-forwarded frame: verdict, untouched, counted.
func (f *fixture) expectVerdict(in []byte, want uint32, reason Reason) {
	f.t.Helper()
	before := f.stats()[reason]
	ret, out := f.run(in)
	if ret != want {
		f.t.Fatalf("verdict %d, want %d; stats %v", ret, want, f.stats())
	}
	if !bytes.Equal(out, in) {
		f.t.Fatalf("frame changed:\n in %x\nout %x", in, out)
	}
	if after := f.stats()[reason]; after != before+1 {
		f.t.Fatalf("counter %v went %d -> %d, want +1", reason, before, after)
	}
}

// pick predicts the real of a new flow from the table.
func pick(tbl []uint32, fl Flow, sourceOnly bool) uint32 {
	return tbl[FlowHash(fl, testSeed, sourceOnly)%uint32(len(tbl))]
}

func tcp4(src netip.Addr, sport uint16, dst netip.Addr, dport uint16) []byte {
	return frame{dst: ifaceMAC, src: clientMAC, etype: etherIPv4,
		payload: ipv4{src: src, dst: dst, proto: 6, payload: tcpSeg(sport, dport, []byte("hello"))}.bytes()}.bytes()
}

// ack4 is a segment of an established connection.
func ack4(src netip.Addr, sport uint16, dst netip.Addr, dport uint16) []byte {
	return frame{dst: ifaceMAC, src: clientMAC, etype: etherIPv4,
		payload: ipv4{src: src, dst: dst, proto: 6, payload: tcpSegFlags(sport, dport, tcpACK, []byte("data"))}.bytes()}.bytes()
}

func udp4(src netip.Addr, sport uint16, dst netip.Addr, dport uint16) []byte {
	return frame{dst: ifaceMAC, src: clientMAC, etype: etherIPv4,
		payload: ipv4{src: src, dst: dst, proto: 17, payload: udpDgram(sport, dport, []byte("hello"))}.bytes()}.bytes()
}

func tcp6(src netip.Addr, sport uint16, dst netip.Addr, dport uint16) []byte {
	return frame{dst: ifaceMAC, src: clientMAC, etype: etherIPv6,
		payload: ipv6{src: src, dst: dst, next: 6, payload: tcpSeg(sport, dport, []byte("hello"))}.bytes()}.bytes()
}

func udp6(src netip.Addr, sport uint16, dst netip.Addr, dport uint16) []byte {
	return frame{dst: ifaceMAC, src: clientMAC, etype: etherIPv6,
		payload: ipv6{src: src, dst: dst, next: 17, payload: udpDgram(sport, dport, []byte("hello"))}.bytes()}.bytes()
}

func TestForwardsToTheTablesReal(t *testing.T) {
	f := newFixture(t)
	t4 := f.service(VIPKey{vip4, 80, TCP}, 1, 0, 1, 3)
	u4 := f.service(VIPKey{vip4, 53, UDP}, 2, 0, 4, 3)
	t6 := f.service(VIPKey{vip6, 443, TCP}, 3, 0, 7, 3)
	u6 := f.service(VIPKey{vip6, 53, UDP}, 4, 0, 10, 3)

	cases := []struct {
		name  string
		frame func(sport uint16) []byte
		flow  func(sport uint16) Flow
		tbl   []uint32
	}{
		{"ipv4 tcp", func(p uint16) []byte { return tcp4(client4, p, vip4, 80) },
			func(p uint16) Flow { return Flow{client4, vip4, p, 80, TCP} }, t4},
		{"ipv4 udp", func(p uint16) []byte { return udp4(client4, p, vip4, 53) },
			func(p uint16) Flow { return Flow{client4, vip4, p, 53, UDP} }, u4},
		{"ipv6 tcp", func(p uint16) []byte { return tcp6(client6, p, vip6, 443) },
			func(p uint16) Flow { return Flow{client6, vip6, p, 443, TCP} }, t6},
		{"ipv6 udp", func(p uint16) []byte { return udp6(client6, p, vip6, 53) },
			func(p uint16) Flow { return Flow{client6, vip6, p, 53, UDP} }, u6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.t = t
			seen := map[uint32]int{}
			for p := uint16(40000); p < 40300; p++ {
				want := pick(c.tbl, c.flow(p), false)
				f.expectTX(c.frame(p), want)
				seen[want]++
			}
			if len(seen) != 3 {
				t.Fatalf("300 flows reached %d of 3 reals: %v", len(seen), seen)
			}
		})
	}
}

func TestVLANAndIPOptions(t *testing.T) {
	f := newFixture(t)
	tbl := f.service(VIPKey{vip4, 80, TCP}, 1, 0, 1, 3)
	fl := Flow{client4, vip4, 41000, 80, TCP}
	want := pick(tbl, fl, false)

	tagged := frame{dst: ifaceMAC, src: clientMAC, vlans: []uint16{42}, etype: etherIPv4,
		payload: ipv4{src: client4, dst: vip4, proto: 6, payload: tcpSeg(41000, 80, nil)}.bytes()}.bytes()
	f.expectTX(tagged, want)

	// IHL 8: a 12-byte option area (NOPs and an end-of-list).
	opts := []byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0}
	withOpts := frame{dst: ifaceMAC, src: clientMAC, etype: etherIPv4,
		payload: ipv4{src: client4, dst: vip4, proto: 6, options: opts, payload: tcpSeg(41000, 80, nil)}.bytes()}.bytes()
	f.expectTX(withOpts, want)

	// Two tags are not parsed: the stack gets the frame.
	qinq := frame{dst: ifaceMAC, src: clientMAC, vlans: []uint16{7, 42}, etype: etherIPv4,
		payload: ipv4{src: client4, dst: vip4, proto: 6, payload: tcpSeg(41000, 80, nil)}.bytes()}.bytes()
	f.expectVerdict(qinq, xdpPass, PassNotIP)
}

func TestNotOurs(t *testing.T) {
	f := newFixture(t)
	f.service(VIPKey{vip4, 80, TCP}, 1, 0, 1, 2)
	f.service(VIPKey{vip6, 80, TCP}, 2, 0, 3, 2)
	other4 := netip.MustParseAddr("10.99.0.200")
	other6 := netip.MustParseAddr("fd00:99::200")

	arp := frame{dst: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, src: clientMAC, etype: etherARP,
		payload: make([]byte, 28)}.bytes()
	f.expectVerdict(arp, xdpPass, PassNotIP)
	f.expectVerdict(tcp4(client4, 1000, other4, 80), xdpPass, PassNotVIP)
	f.expectVerdict(tcp6(client6, 1000, other6, 80), xdpPass, PassNotVIP)
	// The VIP's address, another port or protocol: the director's own.
	f.expectVerdict(tcp4(client4, 1000, vip4, 22), xdpPass, PassNoService)
	f.expectVerdict(udp4(client4, 1000, vip4, 80), xdpPass, PassNoService)
	f.expectVerdict(tcp6(client6, 1000, vip6, 22), xdpPass, PassNoService)
	gre := frame{dst: ifaceMAC, src: clientMAC, etype: etherIPv4,
		payload: ipv4{src: client4, dst: vip4, proto: 47, payload: make([]byte, 8)}.bytes()}.bytes()
	f.expectVerdict(gre, xdpPass, PassNoService)
}

func TestPortZeroVIPMatchesEveryPort(t *testing.T) {
	f := newFixture(t)
	tbl := f.service(VIPKey{vip4, 0, TCP}, 1, 0, 1, 3)
	for _, port := range []uint16{1, 22, 80, 443, 8080, 65535} {
		fl := Flow{client4, vip4, 50000, port, TCP}
		f.expectTX(tcp4(client4, 50000, vip4, port), pick(tbl, fl, false))
	}
	f.expectVerdict(udp4(client4, 50000, vip4, 80), xdpPass, PassNoService)

	// A VIP on a port wins over the address's port-0 VIP.
	t80 := f.service(VIPKey{vip4, 80, TCP}, 2, 0, 10, 2)
	fl := Flow{client4, vip4, 50001, 80, TCP}
	f.expectTX(tcp4(client4, 50001, vip4, 80), pick(t80, fl, false))
}

func TestSourceAffinity(t *testing.T) {
	f := newFixture(t)
	tbl := f.service(VIPKey{vip4, 80, TCP}, 1, VIPSourceHash, 1, 5)
	tbl6 := f.service(VIPKey{vip6, 80, TCP}, 2, VIPSourceHash, 10, 5)
	seen := map[uint32]bool{}
	for c := 1; c <= 40; c++ {
		src := netip.AddrFrom4([4]byte{10, 99, 2, byte(c)})
		want := pick(tbl, Flow{Src: src}, true)
		seen[want] = true
		for p := uint16(1024); p < 1034; p++ {
			f.expectTX(tcp4(src, p, vip4, 80), want)
		}
		src6 := netip.AddrFrom16([16]byte{0xfd, 0, 0, 0x99, 15: byte(c)})
		want6 := pick(tbl6, Flow{Src: src6}, true)
		for p := uint16(1024); p < 1030; p++ {
			f.expectTX(tcp6(src6, p, vip6, 80), want6)
		}
	}
	if len(seen) < 3 {
		t.Fatalf("40 clients reached only %d of 5 reals", len(seen))
	}
}

func TestLocalVIPGoesToTheStack(t *testing.T) {
	f := newFixture(t)
	if err := f.d.SetVIP(VIPKey{vip4, 443, TCP}, VIP{ID: 3, Flags: VIPLocal}); err != nil {
		t.Fatal(err)
	}
	in := tcp4(client4, 1234, vip4, 443)
	f.expectVerdict(in, xdpPass, PassLocal)
	c, err := f.d.VIPCounters(3)
	if err != nil {
		t.Fatal(err)
	}
	if c.Packets != 1 || c.Bytes != uint64(len(in)) {
		t.Fatalf("local VIP counters %+v, want 1 packet of %d bytes", c, len(in))
	}
}

func TestICMP(t *testing.T) {
	f := newFixture(t)
	t4 := f.service(VIPKey{vip4, 80, TCP}, 1, 0, 1, 3)
	t6 := f.service(VIPKey{vip6, 80, TCP}, 2, 0, 10, 3)
	router4 := netip.MustParseAddr("10.99.0.1")
	router6 := netip.MustParseAddr("fd00:99::1")

	t.Run("echo to the stack", func(t *testing.T) {
		f.t = t
		echo := frame{dst: ifaceMAC, src: clientMAC, etype: etherIPv4,
			payload: ipv4{src: client4, dst: vip4, proto: 1, payload: icmpMsg(8, 0, []byte("ping"))}.bytes()}.bytes()
		f.expectVerdict(echo, xdpPass, PassICMP)
		echo6 := frame{dst: ifaceMAC, src: clientMAC, etype: etherIPv6,
			payload: ipv6{src: client6, dst: vip6, next: 58, payload: icmpMsg(128, 0, []byte("ping"))}.bytes()}.bytes()
		f.expectVerdict(echo6, xdpPass, PassICMP)
		// Other errors, such as port unreachable, also go to the stack.
		unreach := frame{dst: ifaceMAC, src: clientMAC, etype: etherIPv4,
			payload: ipv4{src: router4, dst: vip4, proto: 1, payload: icmpMsg(3, 3, make([]byte, 28))}.bytes()}.bytes()
		f.expectVerdict(unreach, xdpPass, PassICMP)
	})

	t.Run("fragmentation needed follows the flow", func(t *testing.T) {
		f.t = t
		// The flow exists: its first packet went to its real.
		fl := Flow{client4, vip4, 42000, 80, TCP}
		owner := pick(t4, fl, false)
		f.expectTX(tcp4(client4, 42000, vip4, 80), owner)
		// Then the table changes so that a fresh pick would differ.
		other := t4[(FlowHash(fl, testSeed, false)+1)%testSizes.RingSize]
		if other == owner {
			other = t4[(FlowHash(fl, testSeed, false)+2)%testSizes.RingSize]
		}
		f.setTable(1, other)
		// The real's reply VIP:80 -> client:42000 was too big for a router.
		quoted := ipv4{src: vip4, dst: client4, proto: 6, payload: tcpSeg(80, 42000, nil)[:8]}.bytes()
		ptb := frame{dst: ifaceMAC, src: clientMAC, etype: etherIPv4,
			payload: ipv4{src: router4, dst: vip4, proto: 1, payload: icmpMsg(3, 4, quoted)}.bytes()}.bytes()
		flowsBefore, _ := f.d.Flows()
		f.expectTX(ptb, owner)
		if got := f.stats()[TXICMPTooBig]; got != 1 {
			t.Fatalf("tx_icmp_too_big = %d, want 1", got)
		}
		// About a flow it does not know: the table's pick, and no entry.
		quoted2 := ipv4{src: vip4, dst: client4, proto: 6, payload: tcpSeg(80, 42001, nil)[:8]}.bytes()
		ptb2 := frame{dst: ifaceMAC, src: clientMAC, etype: etherIPv4,
			payload: ipv4{src: router4, dst: vip4, proto: 1, payload: icmpMsg(3, 4, quoted2)}.bytes()}.bytes()
		f.expectTX(ptb2, other)
		if n, _ := f.d.Flows(); n != flowsBefore {
			t.Fatalf("an ICMP error created a flow: %d -> %d entries", flowsBefore, n)
		}
	})

	t.Run("packet too big follows the flow", func(t *testing.T) {
		f.t = t
		fl := Flow{client6, vip6, 42000, 80, TCP}
		owner := pick(t6, fl, false)
		f.expectTX(tcp6(client6, 42000, vip6, 80), owner)
		quoted := ipv6{src: vip6, dst: client6, next: 6, payload: tcpSeg(80, 42000, nil)}.bytes()
		ptb := frame{dst: ifaceMAC, src: clientMAC, etype: etherIPv6,
			payload: ipv6{src: router6, dst: vip6, next: 58, payload: icmpMsg(2, 0, quoted)}.bytes()}.bytes()
		f.expectTX(ptb, owner)
	})

	t.Run("about a port that is no VIP", func(t *testing.T) {
		f.t = t
		quoted := ipv4{src: vip4, dst: client4, proto: 6, payload: tcpSeg(22, 42000, nil)[:8]}.bytes()
		ptb := frame{dst: ifaceMAC, src: clientMAC, etype: etherIPv4,
			payload: ipv4{src: router4, dst: vip4, proto: 1, payload: icmpMsg(3, 4, quoted)}.bytes()}.bytes()
		f.expectVerdict(ptb, xdpPass, PassICMP)
	})
}

func TestFragmentsAndExtensionHeaders(t *testing.T) {
	f := newFixture(t)
	f.service(VIPKey{vip4, 80, TCP}, 1, 0, 1, 2)
	f.service(VIPKey{vip6, 80, TCP}, 2, 0, 3, 2)
	for _, fo := range []uint16{0x2000, 0x2000 | 10, 10} { // first, middle, last
		fr := frame{dst: ifaceMAC, src: clientMAC, etype: etherIPv4,
			payload: ipv4{src: client4, dst: vip4, proto: 6, fragOff: fo, payload: tcpSeg(1000, 80, nil)}.bytes()}.bytes()
		f.expectVerdict(fr, xdpDrop, DropFragment)
	}
	// Don't-fragment is no fragment.
	df := frame{dst: ifaceMAC, src: clientMAC, etype: etherIPv4,
		payload: ipv4{src: client4, dst: vip4, proto: 6, fragOff: 0x4000, payload: tcpSeg(1000, 80, nil)}.bytes()}.bytes()
	if ret, _ := f.run(df); ret != xdpTX {
		t.Fatalf("DF packet: verdict %d, want XDP_TX", ret)
	}
	// A fragment to another address is not ours to drop.
	other := frame{dst: ifaceMAC, src: clientMAC, etype: etherIPv4,
		payload: ipv4{src: client4, dst: netip.MustParseAddr("10.99.0.200"), proto: 6, fragOff: 0x2000,
			payload: tcpSeg(1000, 80, nil)}.bytes()}.bytes()
	f.expectVerdict(other, xdpPass, PassNotVIP)

	for _, nh := range []uint8{0, 43, 44, 60} {
		ext := append([]byte{6, 0, 0, 0, 0, 0, 0, 0}, tcpSeg(1000, 80, nil)...)
		fr := frame{dst: ifaceMAC, src: clientMAC, etype: etherIPv6,
			payload: ipv6{src: client6, dst: vip6, next: nh, payload: ext}.bytes()}.bytes()
		f.expectVerdict(fr, xdpPass, PassIPv6Ext)
	}
}

// Every valid frame cut short anywhere, and every length field made to lie,
// is never forwarded.
func TestMalformedNeverForwarded(t *testing.T) {
	f := newFixture(t)
	f.service(VIPKey{vip4, 0, TCP}, 1, 0, 1, 2)
	f.service(VIPKey{vip4, 0, UDP}, 2, 0, 3, 2)
	f.service(VIPKey{vip6, 0, TCP}, 3, 0, 5, 2)
	f.service(VIPKey{vip6, 0, UDP}, 4, 0, 7, 2)

	quoted := ipv4{src: vip4, dst: client4, proto: 6, payload: tcpSeg(80, 42000, nil)[:8]}.bytes()
	valid := map[string][]byte{
		"ipv4 tcp": tcp4(client4, 1000, vip4, 80),
		"ipv4 udp": udp4(client4, 1000, vip4, 53),
		"ipv6 tcp": tcp6(client6, 1000, vip6, 80),
		"ipv6 udp": udp6(client6, 1000, vip6, 53),
		"vlan ipv4 tcp": frame{dst: ifaceMAC, src: clientMAC, vlans: []uint16{5}, etype: etherIPv4,
			payload: ipv4{src: client4, dst: vip4, proto: 6, payload: tcpSeg(1000, 80, nil)}.bytes()}.bytes(),
		"ipv4 options tcp": frame{dst: ifaceMAC, src: clientMAC, etype: etherIPv4,
			payload: ipv4{src: client4, dst: vip4, proto: 6, options: []byte{1, 1, 1, 0},
				payload: tcpSeg(1000, 80, nil)}.bytes()}.bytes(),
		"icmp frag needed": frame{dst: ifaceMAC, src: clientMAC, etype: etherIPv4,
			payload: ipv4{src: client4, dst: vip4, proto: 1, payload: icmpMsg(3, 4, quoted)}.bytes()}.bytes(),
	}
	for name, pkt := range valid {
		t.Run("truncated "+name, func(t *testing.T) {
			f.t = t
			if ret, _ := f.run(pkt); ret != xdpTX {
				t.Fatalf("the whole frame is not forwarded (verdict %d)", ret)
			}
			for n := 14; n < len(pkt); n++ {
				cut := append([]byte(nil), pkt[:n]...)
				if ret, _ := f.run(cut); ret == xdpTX {
					t.Fatalf("frame cut to %d of %d bytes was forwarded", n, len(pkt))
				}
			}
		})
	}

	// Shorter than an Ethernet header: the kernel refuses to run the
	// program on it, so such a frame never reaches it either.
	for n := 0; n < 14; n++ {
		opts := ebpf.RunOptions{Data: make([]byte, n)}
		if ret, err := f.d.objs.XdpDirector.Run(&opts); err == nil && ret == xdpTX {
			t.Fatalf("%d-byte frame forwarded", n)
		}
	}

	lie := func(pkt []byte, off int, v uint16) []byte {
		b := append([]byte(nil), pkt...)
		be.PutUint16(b[off:], v)
		return b
	}
	setByte := func(pkt []byte, off int, v byte) []byte {
		b := append([]byte(nil), pkt...)
		b[off] = v
		return b
	}
	t4, u4, t6, u6 := valid["ipv4 tcp"], valid["ipv4 udp"], valid["ipv6 tcp"], valid["ipv6 udp"]
	const ip, l4v4, l4v6 = 14, 34, 54
	lies := map[string][]byte{
		"ipv4 total length past the frame": lie(t4, ip+2, uint16(len(t4)-14+1)),
		"ipv4 total length under IHL":      lie(t4, ip+2, 19),
		"ipv4 IHL under 5":                 setByte(t4, ip, 0x44),
		"ipv4 IHL past the frame":          setByte(t4, ip, 0x4f),
		"ipv4 version 6 in an ipv4 frame":  setByte(t4, ip, 0x65),
		"tcp data offset under 5":          setByte(t4, l4v4+12, 4<<4),
		"tcp data offset past the packet":  setByte(t4, l4v4+12, 15<<4),
		"udp length under 8":               lie(u4, l4v4+4, 7),
		"udp length past the packet":       lie(u4, l4v4+4, uint16(len(u4)-l4v4+1)),
		"ipv6 payload length past frame":   lie(t6, ip+4, uint16(len(t6)-54+1)),
		"ipv6 version 4 in an ipv6 frame":  setByte(t6, ip, 0x40),
		"ipv6 tcp data offset past packet": setByte(t6, l4v6+12, 15<<4),
		"ipv6 udp length past the packet":  lie(u6, l4v6+4, uint16(len(u6)-l4v6+1)),
	}
	for name, pkt := range lies {
		t.Run(name, func(t *testing.T) {
			f.t = t
			f.expectVerdict(pkt, xdpDrop, DropMalformed)
		})
	}
}

// An established flow keeps its real across a table change; new flows
// follow the new table.
func TestConnectionTableKeepsFlows(t *testing.T) {
	f := newFixture(t)
	f.service(VIPKey{vip4, 80, TCP}, 1, 0, 1, 3)

	const flows = 200
	owner := map[uint16]uint32{}
	for p := uint16(0); p < flows; p++ {
		ret, out := f.run(tcp4(client4, 30000+p, vip4, 80))
		if ret != xdpTX {
			t.Fatalf("verdict %d", ret)
		}
		owner[p] = uint32(out[5]) | uint32(out[4])<<8
	}
	// A fourth real joins: the table now sends everything new to it.
	f.addReal(1, 4, realAddr(4, 4))
	f.setTable(1, 4)
	for p := uint16(0); p < flows; p++ {
		f.expectTX(tcp4(client4, 30000+p, vip4, 80), owner[p])
	}
	f.expectTX(tcp4(client4, 29999, vip4, 80), 4)
	s := f.stats()
	if s[CTHit] != flows || s[CTMiss] != flows+1 {
		t.Fatalf("ct hits %d misses %d, want %d and %d", s[CTHit], s[CTMiss], flows, flows+1)
	}
}

func TestDownAndDrain(t *testing.T) {
	f := newFixture(t)
	tbl := f.service(VIPKey{vip4, 80, TCP}, 1, 0, 1, 3)
	// One flow per real.
	flowOf := map[uint32]uint16{}
	for p := uint16(1000); len(flowOf) < 3; p++ {
		flowOf[pick(tbl, Flow{client4, vip4, p, 80, TCP}, false)] = p
	}
	for id, p := range flowOf {
		f.expectTX(tcp4(client4, p, vip4, 80), id)
	}

	// Drain real 1: out of the table, its flow stays, new flows avoid it.
	tbl = f.setTable(1, 2, 3)
	if err := f.d.SetRealState(1, RealDrain); err != nil {
		t.Fatal(err)
	}
	f.expectTX(ack4(client4, flowOf[1], vip4, 80), 1)
	f.expectTX(ack4(client4, flowOf[1], vip4, 80), 1)
	for p := uint16(2000); p < 2300; p++ {
		want := pick(tbl, Flow{client4, vip4, p, 80, TCP}, false)
		if want == 1 {
			t.Fatal("table still names the drained real")
		}
		f.expectTX(tcp4(client4, p, vip4, 80), want)
	}

	// A client that reuses the drained flow's 5-tuple for a new
	// connection (a SYN) gets a real from the table, and keeps it.
	reuse := pick(tbl, Flow{client4, vip4, flowOf[1], 80, TCP}, false)
	f.expectTX(tcp4(client4, flowOf[1], vip4, 80), reuse)
	f.expectTX(ack4(client4, flowOf[1], vip4, 80), reuse)

	// Down real 2: its flow is re-picked from the table.
	f.setTable(1, 3)
	if err := f.d.SetRealState(2, RealDown); err != nil {
		t.Fatal(err)
	}
	f.expectTX(tcp4(client4, flowOf[2], vip4, 80), 3)
	// And it stays on the new real when 2 comes back.
	if err := f.d.SetRealState(2, RealUp); err != nil {
		t.Fatal(err)
	}
	f.expectTX(tcp4(client4, flowOf[2], vip4, 80), 3)

	// A table slot naming a real that is not up drops, never misroutes.
	if err := f.d.SetRealState(3, RealDown); err != nil {
		t.Fatal(err)
	}
	f.expectVerdict(tcp4(client4, 5555, vip4, 80), xdpDrop, DropNoReal)
	// As does a VIP whose table is empty.
	f.setTable(1)
	f.expectVerdict(tcp4(client4, 5556, vip4, 80), xdpDrop, DropNoReal)
}

// A real id given to another real must not inherit the old one's flows.
func TestReusedRealIDDropsOldFlows(t *testing.T) {
	f := newFixture(t)
	f.service(VIPKey{vip4, 80, TCP}, 1, 0, 1, 2)
	f.setTable(1, 1)
	f.expectTX(tcp4(client4, 7000, vip4, 80), 1)
	f.setTable(1, 2)
	if err := f.d.RemoveReal(1); err != nil {
		t.Fatal(err)
	}
	// Id 1 now belongs to another server.
	f.addReal(1, 1, realAddr(4, 77))
	f.expectTX(tcp4(client4, 7000, vip4, 80), 2)
}

func TestCounters(t *testing.T) {
	f := newFixture(t)
	tbl := f.service(VIPKey{vip4, 80, TCP}, 1, 0, 1, 3)
	var bytes uint64
	perReal := map[uint32]Counters{}
	for p := uint16(0); p < 50; p++ {
		pkt := tcp4(client4, 20000+p, vip4, 80)
		id := pick(tbl, Flow{client4, vip4, 20000 + p, 80, TCP}, false)
		for i := 0; i < 3; i++ { // one new flow, two established packets
			f.expectTX(pkt, id)
			bytes += uint64(len(pkt))
			c := perReal[id]
			c.Packets++
			c.Bytes += uint64(len(pkt))
			if i == 0 {
				c.NewFlows++
			}
			perReal[id] = c
		}
	}
	vc, err := f.d.VIPCounters(1)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Counters{Packets: 150, Bytes: bytes, NewFlows: 50}); vc != want {
		t.Fatalf("VIP counters %+v, want %+v", vc, want)
	}
	for id, want := range perReal {
		got, err := f.d.RealCounters(id)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("real %d counters %+v, want %+v", id, got, want)
		}
	}
	s := f.stats()
	if s[TX] != 150 || s[CTMiss] != 50 || s[CTHit] != 100 {
		t.Fatalf("stats %v", s)
	}
	if n, _ := f.d.Flows(); n != 50 {
		t.Fatalf("%d flows in the table, want 50", n)
	}
}

func TestMapAPI(t *testing.T) {
	f := newFixture(t)
	k := VIPKey{vip6, 443, TCP}
	f.service(k, 5, VIPSourceHash, 1, 2)
	vips, err := f.d.VIPs()
	if err != nil {
		t.Fatal(err)
	}
	if got := vips[k]; got != (VIP{ID: 5, Flags: VIPSourceHash}) || len(vips) != 1 {
		t.Fatalf("VIPs() = %v", vips)
	}
	reals, err := f.d.Reals()
	if err != nil {
		t.Fatal(err)
	}
	if len(reals) != 2 || reals[1].Addr != realAddr(6, 1) || reals[2].VIPID != 5 || reals[2].State != RealUp ||
		reals[1].MAC.String() != realMAC(1).String() {
		t.Fatalf("Reals() = %v", reals)
	}
	tbl, err := f.d.Table(5)
	if err != nil {
		t.Fatal(err)
	}
	if want := roundRobin(testSizes.RingSize, 1, 2); fmt.Sprint(tbl[:10]) != fmt.Sprint(want[:10]) || len(tbl) != len(want) {
		t.Fatalf("Table() = %v...", tbl[:10])
	}

	bad := []struct {
		name string
		err  error
	}{
		{"VIP id out of range", f.d.SetVIP(VIPKey{vip4, 80, TCP}, VIP{ID: 16})},
		{"VIP protocol", f.d.SetVIP(VIPKey{vip4, 80, 1}, VIP{ID: 1})},
		{"VIP invalid address", f.d.SetVIP(VIPKey{netip.Addr{}, 80, TCP}, VIP{ID: 1})},
		{"VIP id changed", f.d.SetVIP(k, VIP{ID: 6})},
		{"real id out of range", f.d.SetReal(64, Real{VIPID: 1, Addr: vip4, MAC: realMAC(1)})},
		{"real MAC", f.d.SetReal(3, Real{VIPID: 1, Addr: vip4, MAC: net.HardwareAddr{1, 2}})},
		{"state of an unset real", f.d.SetRealState(40, RealUp)},
		{"table size", f.d.SetTable(5, []uint32{1, 2})},
		{"table names a real out of range", f.d.SetTable(5, roundRobin(testSizes.RingSize, 1, 99))},
		{"remove an unknown VIP", f.d.RemoveVIP(VIPKey{vip4, 9, UDP})},
	}
	for _, b := range bad {
		if b.err == nil {
			t.Errorf("%s: no error", b.name)
		}
	}
	// None of that changed anything.
	if vips2, _ := f.d.VIPs(); fmt.Sprint(vips2) != fmt.Sprint(vips) {
		t.Fatalf("VIPs changed by failed calls: %v", vips2)
	}
	if tbl2, _ := f.d.Table(5); fmt.Sprint(tbl2) != fmt.Sprint(tbl) {
		t.Fatal("table changed by failed calls")
	}

	// Removing the VIP removes its address from the fast filter.
	if err := f.d.RemoveVIP(k); err != nil {
		t.Fatal(err)
	}
	f.expectVerdict(tcp6(client6, 1000, vip6, 443), xdpPass, PassNotVIP)
	if tbl, _ := f.d.Table(5); tbl != nil {
		t.Fatal("table of a removed VIP is still there")
	}
}

// The Go mirror of the hash is what the program computes: checked against
// the program itself over many flows (a single table slot per real would
// hide a mismatch, so use a table of distinct ids).
func TestFlowHashMatchesProgram(t *testing.T) {
	f := newFixture(t)
	if err := f.d.SetVIP(VIPKey{vip4, 80, TCP}, VIP{ID: 1}); err != nil {
		t.Fatal(err)
	}
	for i := uint32(0); i < 64; i++ {
		f.addReal(1, i, realAddr(4, i))
	}
	ids := make([]uint32, 64)
	for i := range ids {
		ids[i] = uint32(i)
	}
	tbl := f.setTable(1, ids...)
	for p := uint16(1); p < 2000; p += 7 {
		fl := Flow{client4, vip4, p, 80, TCP}
		f.expectTX(tcp4(client4, p, vip4, 80), pick(tbl, fl, false))
	}
}
