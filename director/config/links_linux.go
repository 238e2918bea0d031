package config

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// SystemLinks reads interfaces' subnets from the kernel, in the current
// network namespace.
type SystemLinks struct{}

// Prefixes implements Links: the subnets of iface's addresses.
func (SystemLinks) Prefixes(iface string) ([]netip.Prefix, error) {
	l, err := netlink.LinkByName(iface)
	if err != nil {
		return nil, fmt.Errorf("no such interface: %w", err)
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		ones, bits := a.Mask.Size()
		if ip.Is4() && bits == 128 {
			ones -= 96
		}
		out = append(out, netip.PrefixFrom(ip, ones).Masked())
	}
	return out, nil
}
