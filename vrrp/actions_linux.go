package vrrp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NetActions adds and removes VIPs with netlink and announces them with
// gratuitous ARP (IPv4) or unsolicited neighbour advertisements (IPv6).
type NetActions struct {
	Interface string
	VIPs      []netip.Prefix
}

// NewNetActions returns the actions of an instance.
func NewNetActions(cfg Config) *NetActions {
	return &NetActions{Interface: cfg.Interface, VIPs: cfg.VIPs}
}

// infiniteLifetime is the kernel's INFINITY_LIFE_TIME.
const infiniteLifetime = int(^uint32(0))

func (a *NetActions) addr(p netip.Prefix) *netlink.Addr {
	ad := &netlink.Addr{IPNet: &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}}
	if p.Addr().Is6() {
		ad.Flags = unix.IFA_F_NODAD // usable at once, as keepalived does
		// Deprecated (preferred lifetime 0, valid forever): the VIP still
		// receives, but is never picked as the source of the node's own
		// connections. Otherwise RFC 6724's longest-match rule, which Linux
		// caps at each address's prefix length, prefers a /128 VIP over the
		// node's /64 address, and a health check to a real server would
		// leave from the VIP, which the real holds on lo: its answer never
		// comes back.
		ad.PreferedLft, ad.ValidLft = 0, infiniteLifetime
	}
	return ad
}

// AddVIPs implements Actions.
func (a *NetActions) AddVIPs() error {
	link, err := netlink.LinkByName(a.Interface)
	if err != nil {
		return fmt.Errorf("vrrp: link %s: %w", a.Interface, err)
	}
	var errs []error
	for _, p := range a.VIPs {
		if err := netlink.AddrAdd(link, a.addr(p)); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("vrrp: add %v to %s: %w", p, a.Interface, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveVIPs implements Actions. Addresses that are not there are fine.
func (a *NetActions) RemoveVIPs() error {
	link, err := netlink.LinkByName(a.Interface)
	if err != nil {
		return fmt.Errorf("vrrp: link %s: %w", a.Interface, err)
	}
	var errs []error
	for _, p := range a.VIPs {
		err := netlink.AddrDel(link, a.addr(p))
		if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("vrrp: remove %v from %s: %w", p, a.Interface, err))
		}
	}
	return errors.Join(errs...)
}

// Announce implements Actions.
func (a *NetActions) Announce(n int) error {
	ifi, err := net.InterfaceByName(a.Interface)
	if err != nil {
		return fmt.Errorf("vrrp: interface %s: %w", a.Interface, err)
	}
	var v4, v6 []netip.Addr
	for _, p := range a.VIPs {
		if p.Addr().Is4() {
			v4 = append(v4, p.Addr())
		} else {
			v6 = append(v6, p.Addr())
		}
	}
	var errs []error
	if len(v4) > 0 {
		errs = append(errs, gratuitousARP(ifi, v4, n))
	}
	if len(v6) > 0 {
		errs = append(errs, unsolicitedNA(ifi, v6, n))
	}
	return errors.Join(errs...)
}

func gratuitousARP(ifi *net.Interface, ips []netip.Addr, n int) error {
	pc, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, nil)
	if err != nil {
		return fmt.Errorf("vrrp: ARP socket on %s: %w", ifi.Name, err)
	}
	c, err := arp.New(ifi, pc)
	if err != nil {
		pc.Close()
		return fmt.Errorf("vrrp: ARP client on %s: %w", ifi.Name, err)
	}
	defer c.Close()
	for range n {
		for _, ip := range ips {
			// A request for the VIP from the VIP to everybody: every
			// neighbour with an entry updates it.
			p, err := arp.NewPacket(arp.OperationRequest, ifi.HardwareAddr, ip, ethernet.Broadcast, ip)
			if err != nil {
				return err
			}
			if err := c.WriteTo(p, ethernet.Broadcast); err != nil {
				return fmt.Errorf("vrrp: gratuitous ARP for %v on %s: %w", ip, ifi.Name, err)
			}
		}
	}
	return nil
}

var allNodes = netip.MustParseAddr("ff02::1")

func unsolicitedNA(ifi *net.Interface, ips []netip.Addr, n int) error {
	c, _, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		return fmt.Errorf("vrrp: NDP socket on %s: %w", ifi.Name, err)
	}
	defer c.Close()
	for range n {
		for _, ip := range ips {
			m := &ndp.NeighborAdvertisement{
				Override:      true,
				TargetAddress: ip,
				Options: []ndp.Option{&ndp.LinkLayerAddress{
					Direction: ndp.Target, Addr: ifi.HardwareAddr,
				}},
			}
			if err := c.WriteTo(m, nil, allNodes); err != nil {
				return fmt.Errorf("vrrp: neighbour advertisement for %v on %s: %w", ip, ifi.Name, err)
			}
		}
	}
	return nil
}
