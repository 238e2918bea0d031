package neigh

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"github.com/rs/zerolog"
	"golang.org/x/net/ipv6"
)

// observation is something heard on the wire: addr is at mac.
type observation struct {
	addr netip.Addr
	mac  net.HardwareAddr
}

// readBackoff spaces reads after an unexpected socket error.
const readBackoff = 100 * time.Millisecond

// reader runs a socket's read loop on its own goroutine and stops it.
type reader struct {
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

func newReader() *reader { return &reader{stop: make(chan struct{})} }

// run calls read until stop is closed, delivering observations to out.
// read returns ok=false for packets that say nothing of use.
func (r *reader) run(log zerolog.Logger, out chan<- observation, read func() (observation, bool, error)) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			o, ok, err := read()
			select {
			case <-r.stop:
				return
			default:
			}
			if err != nil {
				log.Debug().Err(err).Msg("read failed")
				select {
				case <-r.stop:
					return
				case <-time.After(readBackoff):
				}
				continue
			}
			if !ok {
				continue
			}
			select {
			case out <- o:
			case <-r.stop:
				return
			}
		}
	}()
}

// close stops the read loop: closeConn must make a blocked read return.
func (r *reader) close(closeConn func() error) {
	r.once.Do(func() {
		close(r.stop)
		_ = closeConn()
		r.wg.Wait()
	})
}

// arpProber asks for IPv4 addresses with ARP requests and hears replies,
// and any other ARP packet a watched address sends (gratuitous ARP,
// requests of its own).
type arpProber struct {
	c *arp.Client
	r *reader
}

// dialARP opens an ARP socket on ifi (the interface needs an IPv4 address:
// it is the requests' sender address).
func dialARP(ifi *net.Interface) (*arp.Client, error) {
	return arp.Dial(ifi)
}

func newARPProber(c *arp.Client, log zerolog.Logger, out chan<- observation) *arpProber {
	p := &arpProber{c: c, r: newReader()}
	p.r.run(log.With().Str("proto", "arp").Logger(), out, func() (observation, bool, error) {
		pkt, _, err := c.Read()
		if err != nil {
			return observation{}, false, err
		}
		return arpObservation(pkt)
	})
	return p
}

// arpObservation extracts what an ARP packet says of its sender.
func arpObservation(pkt *arp.Packet) (observation, bool, error) {
	if pkt.Operation != arp.OperationReply && pkt.Operation != arp.OperationRequest {
		return observation{}, false, nil
	}
	if !pkt.SenderIP.Is4() || pkt.SenderIP.IsUnspecified() || !validMAC(pkt.SenderHardwareAddr) {
		return observation{}, false, nil // e.g. an RFC 5227 probe, sender 0.0.0.0
	}
	return observation{addr: pkt.SenderIP, mac: pkt.SenderHardwareAddr}, true, nil
}

func (p *arpProber) probe(addr netip.Addr) error { return p.c.Request(addr) }

func (p *arpProber) close() { p.r.close(p.c.Close) }

// ndpProber asks for IPv6 addresses with neighbour solicitations to the
// solicited-node multicast group (so a moved MAC still hears it) and hears
// advertisements, and solicitations a watched address sends.
type ndpProber struct {
	c   *ndp.Conn
	src net.HardwareAddr
	r   *reader
}

// listenNDP opens an ICMPv6 socket on ifi bound to src, which filters out
// everything but neighbour solicitations and advertisements.
func listenNDP(ifi *net.Interface, src netip.Addr) (*ndp.Conn, error) {
	c, _, err := ndp.Listen(ifi, ndp.Addr(src.WithZone("").String()))
	if err != nil {
		return nil, err
	}
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeNeighborAdvertisement)
	f.Accept(ipv6.ICMPTypeNeighborSolicitation)
	if err := c.SetICMPFilter(&f); err != nil {
		c.Close()
		return nil, fmt.Errorf("set ICMPv6 filter: %w", err)
	}
	return c, nil
}

func newNDPProber(c *ndp.Conn, mac net.HardwareAddr, log zerolog.Logger, out chan<- observation) *ndpProber {
	p := &ndpProber{c: c, src: mac, r: newReader()}
	p.r.run(log.With().Str("proto", "ndp").Logger(), out, func() (observation, bool, error) {
		m, _, from, err := c.ReadFrom()
		if err != nil {
			return observation{}, false, err
		}
		return ndpObservation(m, from)
	})
	return p
}

// ndpObservation extracts what an NDP message says of a neighbour: an
// advertisement gives its target's link-layer address, a solicitation its
// sender's.
func ndpObservation(m ndp.Message, from netip.Addr) (observation, bool, error) {
	switch m := m.(type) {
	case *ndp.NeighborAdvertisement:
		if mac := lladdr(m.Options, ndp.Target); mac != nil {
			return observation{addr: canon(m.TargetAddress), mac: mac}, true, nil
		}
	case *ndp.NeighborSolicitation:
		if from.IsUnspecified() {
			return observation{}, false, nil // duplicate address detection
		}
		if mac := lladdr(m.Options, ndp.Source); mac != nil {
			return observation{addr: canon(from), mac: mac}, true, nil
		}
	}
	return observation{}, false, nil
}

func lladdr(opts []ndp.Option, dir ndp.Direction) net.HardwareAddr {
	for _, o := range opts {
		if l, ok := o.(*ndp.LinkLayerAddress); ok && l.Direction == dir && validMAC(l.Addr) {
			return l.Addr
		}
	}
	return nil
}

func (p *ndpProber) probe(addr netip.Addr) error {
	snm, err := ndp.SolicitedNodeMulticast(addr)
	if err != nil {
		return err
	}
	m := &ndp.NeighborSolicitation{
		TargetAddress: addr,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: p.src}},
	}
	return p.c.WriteTo(m, nil, snm)
}

func (p *ndpProber) close() { p.r.close(p.c.Close) }

// errNoSource says the interface has no address to send probes from.
var errNoSource = errors.New("no usable address")
