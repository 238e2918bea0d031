package neigh

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/rs/zerolog"
)

// captureConn is a UDP PacketConn whose writes are captured instead of
// sent: arp.Client writes to packet.Addr, which UDP cannot.
type captureConn struct {
	net.PacketConn
	writes chan []byte
}

func (c *captureConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	c.writes <- slices.Clone(b)
	return len(b), nil
}

// TestARPProberUDP runs the ARP prober over a UDP socket on localhost, as
// MetalLB tests its ARP responder: no root needed.
func TestARPProberUDP(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no loopback interface: %v", err)
	}
	ifi := *lo
	ifi.HardwareAddr = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}

	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cc := &captureConn{PacketConn: pc, writes: make(chan []byte, 4)}
	c, err := arp.New(&ifi, cc)
	if err != nil {
		t.Skipf("arp.New on lo: %v", err)
	}
	out := make(chan observation, 4)
	p := newARPProber(c, zerolog.New(zerolog.NewTestWriter(t)), out)
	defer p.close()

	// A probe is a broadcast ARP request for the real.
	if err := p.probe(real4); err != nil {
		t.Fatal(err)
	}
	var frame []byte
	select {
	case frame = <-cc.writes:
	case <-time.After(5 * time.Second):
		t.Fatal("no request written")
	}
	var f ethernet.Frame
	if err := f.UnmarshalBinary(frame); err != nil {
		t.Fatal(err)
	}
	var req arp.Packet
	if err := req.UnmarshalBinary(f.Payload); err != nil {
		t.Fatal(err)
	}
	if f.Destination.String() != ethernet.Broadcast.String() || req.Operation != arp.OperationRequest || req.TargetIP != real4 {
		t.Fatalf("request = %v to %v", req, f.Destination)
	}

	// The reply, delivered on the socket, becomes an observation.
	reply, err := arp.NewPacket(arp.OperationReply, macA, real4, ifi.HardwareAddr, req.SenderIP)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := reply.MarshalBinary()
	fb, _ := (&ethernet.Frame{Destination: ifi.HardwareAddr, Source: macA, EtherType: ethernet.EtherTypeARP, Payload: rb}).MarshalBinary()
	uc, err := net.DialUDP("udp4", nil, pc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if _, err := uc.Write(fb); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-out:
		if o.addr != real4 || o.mac.String() != macA.String() {
			t.Fatalf("observation = %v %v", o.addr, o.mac)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no observation from the reply")
	}
	p.close() // returns once the reader is gone
}

func TestARPObservation(t *testing.T) {
	mk := func(op arp.Operation, mac net.HardwareAddr, ip netip.Addr) *arp.Packet {
		p, err := arp.NewPacket(op, mac, ip, ethernet.Broadcast, netip.MustParseAddr("10.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		pkt  *arp.Packet
		ok   bool
	}{
		{"reply", mk(arp.OperationReply, macA, real4), true},
		{"gratuitous request", mk(arp.OperationRequest, macA, real4), true},
		{"RFC 5227 probe", mk(arp.OperationRequest, macA, netip.IPv4Unspecified()), false},
		{"zero MAC", mk(arp.OperationReply, net.HardwareAddr{0, 0, 0, 0, 0, 0}, real4), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, ok, err := arpObservation(tc.pkt)
			if err != nil || ok != tc.ok {
				t.Fatalf("ok = %v, err = %v; want ok %v", ok, err, tc.ok)
			}
			if ok && (o.addr != real4 || o.mac.String() != macA.String()) {
				t.Fatalf("observation = %v %v", o.addr, o.mac)
			}
		})
	}
}

func TestNDPObservation(t *testing.T) {
	tll := &ndp.LinkLayerAddress{Direction: ndp.Target, Addr: macA}
	sll := &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: macA}
	other := netip.MustParseAddr("fd00::1")
	for _, tc := range []struct {
		name string
		m    ndp.Message
		from netip.Addr
		want netip.Addr // invalid: nothing observed
	}{
		{"solicited advertisement", &ndp.NeighborAdvertisement{Solicited: true, TargetAddress: real6, Options: []ndp.Option{tll}}, real6, real6},
		{"advertisement from another source", &ndp.NeighborAdvertisement{TargetAddress: real6, Options: []ndp.Option{tll}}, other, real6},
		{"advertisement without lladdr", &ndp.NeighborAdvertisement{TargetAddress: real6}, real6, netip.Addr{}},
		{"advertisement with a source lladdr only", &ndp.NeighborAdvertisement{TargetAddress: real6, Options: []ndp.Option{sll}}, real6, netip.Addr{}},
		{"solicitation from the real", &ndp.NeighborSolicitation{TargetAddress: other, Options: []ndp.Option{sll}}, real6.WithZone("eth1"), real6},
		{"duplicate address detection", &ndp.NeighborSolicitation{TargetAddress: real6}, netip.IPv6Unspecified(), netip.Addr{}},
		{"router solicitation", &ndp.RouterSolicitation{Options: []ndp.Option{sll}}, real6, netip.Addr{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, ok, err := ndpObservation(tc.m, tc.from)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.want.IsValid() || (ok && (o.addr != tc.want || o.mac.String() != macA.String())) {
				t.Fatalf("observation = %v %v %v, want %v", o.addr, o.mac, ok, tc.want)
			}
		})
	}
}

func TestNewConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without an interface: no error")
	}
	if _, err := New(Config{Interface: "eth1", MaxMisses: -1}); err == nil {
		t.Error("New with negative misses: no error")
	}
	r, err := New(Config{Interface: "eth1"})
	if err != nil {
		t.Fatal(err)
	}
	if r.t.p.refresh != DefaultRefreshInterval || r.t.p.timeout != DefaultProbeTimeout || r.t.p.maxMisses != DefaultMaxMisses {
		t.Errorf("defaults = %+v", r.t.p)
	}
	r.Add(real4)
	if _, cause, ok := r.Lookup(real4); !ok || cause != CauseResolving {
		t.Errorf("Lookup after Add = %q %v", cause, ok)
	}
	r.Remove(real4)
	if _, _, ok := r.Lookup(real4); ok {
		t.Error("Lookup after Remove: still watched")
	}
}
