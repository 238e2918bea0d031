package vrrp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// tosInternetControl is the TOS / traffic class keepalived sends with
// (IPTOS_PREC_INTERNETCONTROL).
const tosInternetControl = 0xc0

// rawConn is a Conn over a raw IPPROTO_VRRP socket bound to one interface.
type rawConn struct {
	ifi   *net.Interface
	local netip.Addr
	dsts  []netip.Addr // the group, or the unicast peers
	pc    net.PacketConn
	v4    *ipv4.RawConn
	v6    *ipv6.PacketConn
	buf   []byte
}

// DialConn opens the raw socket of an instance: bound to its interface,
// joined to the VRRP group (multicast) or sending to its peers (unicast),
// sending with TTL / hop limit 255 from the instance's source address.
func DialConn(cfg Config) (Conn, error) {
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("vrrp: interface %q: %w", cfg.Interface, err)
	}
	local := cfg.SourceAddr
	if !local.IsValid() {
		if local, err = sourceAddr(ifi, cfg); err != nil {
			return nil, err
		}
	}
	c := &rawConn{ifi: ifi, local: local, buf: make([]byte, 1500)}
	if cfg.Unicast {
		c.dsts = cfg.Peers
	} else if cfg.IPv6() {
		c.dsts = []netip.Addr{GroupV6}
	} else {
		c.dsts = []netip.Addr{GroupV4}
	}
	if err := c.open(cfg); err != nil {
		if c.pc != nil {
			c.pc.Close()
		}
		return nil, fmt.Errorf("vrrp: instance %q on %s: %w", cfg.Name, cfg.Interface, err)
	}
	return c, nil
}

func (c *rawConn) open(cfg Config) error {
	var err error
	if cfg.IPv6() {
		if c.pc, err = net.ListenPacket("ip6:112", "::"); err != nil {
			return err
		}
	} else if c.pc, err = net.ListenPacket("ip4:112", "0.0.0.0"); err != nil {
		return err
	}
	if err := bindToDevice(c.pc, c.ifi.Name); err != nil {
		return err
	}
	if cfg.IPv6() {
		p := ipv6.NewPacketConn(c.pc)
		c.v6 = p
		if err := p.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
			return err
		}
		if err := p.SetHopLimit(255); err != nil {
			return err
		}
		if err := p.SetMulticastHopLimit(255); err != nil {
			return err
		}
		if err := p.SetMulticastLoopback(false); err != nil {
			return err
		}
		if err := p.SetMulticastInterface(c.ifi); err != nil {
			return err
		}
		if !cfg.Unicast {
			return p.JoinGroup(c.ifi, &net.IPAddr{IP: GroupV6.AsSlice()})
		}
		return nil
	}
	r, err := ipv4.NewRawConn(c.pc) // IP_HDRINCL: we write the header
	if err != nil {
		return err
	}
	c.v4 = r
	if err := r.SetMulticastLoopback(false); err != nil {
		return err
	}
	if err := r.SetMulticastInterface(c.ifi); err != nil {
		return err
	}
	if !cfg.Unicast {
		return r.JoinGroup(c.ifi, &net.IPAddr{IP: GroupV4.AsSlice()})
	}
	return nil
}

func bindToDevice(pc net.PacketConn, name string) error {
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return errors.New("not a syscall.Conn")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, name)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("SO_BINDTODEVICE %s: %w", name, serr)
	}
	return nil
}

// sourceAddr picks the interface's primary IPv4 address, or its IPv6
// link-local address (RFC 5798 §5.1.2.1), skipping the VIPs.
func sourceAddr(ifi *net.Interface, cfg Config) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	isVIP := func(a netip.Addr) bool {
		for _, p := range cfg.VIPs {
			if p.Addr() == a {
				return true
			}
		}
		return false
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if isVIP(ip) {
			continue
		}
		if cfg.IPv6() && ip.Is6() && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
		if !cfg.IPv6() && ip.Is4() {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%w on %s for instance %q", errNoSource, ifi.Name, cfg.Name)
}

func (c *rawConn) LocalAddr() netip.Addr { return c.local }

func (c *rawConn) Close() error { return c.pc.Close() }

func (c *rawConn) Send(a *Advert) error {
	var errs []error
	for _, dst := range c.dsts {
		b, err := a.Marshal(c.local, dst)
		if err != nil {
			return err
		}
		if c.v6 != nil {
			cm := &ipv6.ControlMessage{TrafficClass: tosInternetControl, HopLimit: 255,
				Src: c.local.AsSlice(), IfIndex: c.ifi.Index}
			zone := ""
			if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() {
				zone = c.ifi.Name
			}
			_, err = c.v6.WriteTo(b, cm, &net.IPAddr{IP: dst.AsSlice(), Zone: zone})
		} else {
			h := &ipv4.Header{Version: ipv4.Version, Len: ipv4.HeaderLen, TOS: tosInternetControl,
				TotalLen: ipv4.HeaderLen + len(b), TTL: 255, Protocol: Protocol,
				Src: c.local.AsSlice(), Dst: dst.AsSlice()}
			err = c.v4.WriteTo(h, b, nil)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("to %v: %w", dst, err))
		}
	}
	return errors.Join(errs...)
}

func (c *rawConn) Recv() (*Advert, error) {
	if c.v6 != nil {
		n, cm, from, err := c.v6.ReadFrom(c.buf)
		if err != nil {
			return nil, err
		}
		var src, dst netip.Addr
		if ia, ok := from.(*net.IPAddr); ok {
			src, _ = netip.AddrFromSlice(ia.IP)
		}
		hops := -1
		if cm != nil {
			dst, _ = netip.AddrFromSlice(cm.Dst)
			hops = cm.HopLimit
		}
		return Decode(c.buf[:n], src, dst, hops)
	}
	h, p, _, err := c.v4.ReadFrom(c.buf)
	if err != nil {
		return nil, err
	}
	src, _ := netip.AddrFromSlice(h.Src.To4())
	dst, _ := netip.AddrFromSlice(h.Dst.To4())
	if h.Flags&ipv4.MoreFragments != 0 || h.FragOff != 0 {
		return nil, discard(CauseLength, "fragment from %v", src)
	}
	return Decode(p, src, dst, h.TTL)
}
