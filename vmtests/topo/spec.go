package topo

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"time"

	"github.com/rs/zerolog"
	"github.com/vishvananda/netlink/nl"
)

// Role says what a host is for; it decides which pool its addresses come
// from and what the harness configures on it.
type Role string

const (
	// RoleClient sends traffic to the VIP. It may have several addresses
	// (HostSpec.Addrs) so tests can spread flows by source address.
	RoleClient Role = "client"
	// RoleDirector is the load balancer: the VIPs on its interface (as a VRRP
	// master would add them, unless HostSpec.NoVIP), and in native XDP mode an
	// XDP_PASS program on its bridge-side veth peer.
	RoleDirector Role = "director"
	// RoleReal is a real server in direct-routing mode: the VIPs on lo
	// (/32 and /128), arp_ignore=1 and arp_announce=2 on all and its
	// interface. L7 proxies behind the director are real servers too.
	RoleReal Role = "real"
	// RoleServer is a plain host without VIPs, e.g. a web server behind the
	// proxy tier.
	RoleServer Role = "server"
)

// XDPMode is the attach mode the director's tests will use. The harness only
// prepares the prerequisites of that mode; it never attaches the director's
// own program.
type XDPMode int

const (
	// XDPGeneric (xdpgeneric, skb mode) needs nothing from the harness.
	XDPGeneric XDPMode = iota
	// XDPNative (xdpdrv) on veth needs an XDP program on the bridge-side peer
	// of every director and TX checksum offload off on every sender
	// (see /work/shared/notes/veth-xdp.md).
	XDPNative
)

func (m XDPMode) String() string {
	switch m {
	case XDPGeneric:
		return "generic"
	case XDPNative:
		return "native"
	}
	return fmt.Sprintf("XDPMode(%d)", int(m))
}

// Flags returns the netlink XDP attach flags for the mode
// (XDP_FLAGS_SKB_MODE or XDP_FLAGS_DRV_MODE).
func (m XDPMode) Flags() int {
	if m == XDPNative {
		return nl.XDP_FLAGS_DRV_MODE
	}
	return nl.XDP_FLAGS_SKB_MODE
}

// Route is an extra route on a host: Dst via the address (of Dst's family)
// of the host named Via.
type Route struct {
	Dst netip.Prefix
	Via string
}

// HostSpec describes one host (one network namespace with one veth on the
// bridge).
type HostSpec struct {
	// Name is short: 1 to 8 characters [a-z0-9], unique in the topology. It
	// names the namespace (<prefix>-<name>) and the bridge port
	// (<prefix>-<name>, at most 15 characters).
	Name string
	Role Role
	// Addrs is how many IPv4 and IPv6 addresses the host gets on its
	// interface (default 1). The first is the primary.
	Addrs int
	// NoVIP skips the VIPs on this director or real server (e.g. a VRRP pair
	// whose agent adds the VIP itself).
	NoVIP bool
	// Routes are extra routes, e.g. to VIPs outside the bridge's subnets.
	Routes []Route
}

// Spec describes a topology. The zero value of each field has a useful
// default; see DRSpec and ProxySpec for ready-made ones.
type Spec struct {
	Hosts []HostSpec
	// XDPMode the director's tests will use (default generic).
	XDPMode XDPMode
	// TXChecksumOff turns TX checksum offload off on every host's interface
	// even in generic mode (native mode always does).
	TXChecksumOff bool
	// VIPs, default 10.99.0.100 and fd00:99::100.
	VIPs []netip.Addr
	// Subnet4 and Subnet6 are the bridge's subnets, default 10.99.0.0/24 and
	// fd00:99::/64. Host n gets <Subnet4>.n and <Subnet6>::n (n written in
	// decimal digits, so 10.99.0.21 pairs with fd00:99::21).
	Subnet4, Subnet6 netip.Prefix
	// Iface is the name of each host's interface inside its namespace
	// (default eth0). Names inside a per-run namespace cannot collide.
	Iface string
	// LogDir keeps process logs there (not removed by Close). Default: a
	// temporary directory removed by Close.
	LogDir string
	// StopTimeout is how long stopping a process waits after SIGTERM before
	// SIGKILL, in StopAll and Close (default DefaultStopTimeout).
	StopTimeout time.Duration
	// Log receives the harness's own progress messages (default: none).
	Log *zerolog.Logger
}

// DRSpec is the usual direct-routing topology: clients cl1.., directors
// dir1.., real servers rs1...
func DRSpec(clients, directors, reals int) Spec {
	var s Spec
	s.Hosts = append(s.Hosts, numbered("cl", RoleClient, clients)...)
	s.Hosts = append(s.Hosts, numbered("dir", RoleDirector, directors)...)
	s.Hosts = append(s.Hosts, numbered("rs", RoleReal, reals)...)
	return s
}

// ProxySpec is the proxy tier: clients, directors, L7 proxies px1.. with the
// VIPs on lo (real servers of the director) and web servers web1.. behind
// them.
func ProxySpec(clients, directors, proxies, webs int) Spec {
	var s Spec
	s.Hosts = append(s.Hosts, numbered("cl", RoleClient, clients)...)
	s.Hosts = append(s.Hosts, numbered("dir", RoleDirector, directors)...)
	s.Hosts = append(s.Hosts, numbered("px", RoleReal, proxies)...)
	s.Hosts = append(s.Hosts, numbered("web", RoleServer, webs)...)
	return s
}

func numbered(prefix string, role Role, n int) []HostSpec {
	hs := make([]HostSpec, 0, n)
	for i := 1; i <= n; i++ {
		hs = append(hs, HostSpec{Name: fmt.Sprintf("%s%d", prefix, i), Role: role})
	}
	return hs
}

// Address pools: the last octet (and the IPv6 interface id, same digits) of
// each role's addresses.
var pools = map[Role][2]int{
	RoleDirector: {2, 9},
	RoleClient:   {10, 49},
	RoleReal:     {50, 79},
	RoleServer:   {80, 99},
}

var hostNameRE = regexp.MustCompile(`^[a-z0-9]{1,8}$`)

// plan is a validated spec with every address and MAC decided.
type plan struct {
	spec  Spec
	hosts []hostPlan
}

type hostPlan struct {
	HostSpec
	addrs4, addrs6 []netip.Addr
	mac, peerMAC   net.HardwareAddr
}

func (s Spec) withDefaults() Spec {
	if len(s.VIPs) == 0 {
		s.VIPs = []netip.Addr{netip.MustParseAddr("10.99.0.100"), netip.MustParseAddr("fd00:99::100")}
	}
	if !s.Subnet4.IsValid() {
		s.Subnet4 = netip.MustParsePrefix("10.99.0.0/24")
	}
	if !s.Subnet6.IsValid() {
		s.Subnet6 = netip.MustParsePrefix("fd00:99::/64")
	}
	if s.StopTimeout <= 0 {
		s.StopTimeout = DefaultStopTimeout
	}
	if s.Iface == "" {
		s.Iface = "eth0"
	}
	return s
}

// makePlan validates the spec and assigns addresses and MACs.
func makePlan(s Spec) (*plan, error) {
	s = s.withDefaults()
	if s.XDPMode != XDPGeneric && s.XDPMode != XDPNative {
		return nil, fmt.Errorf("spec: unknown XDP mode %d", int(s.XDPMode))
	}
	if !s.Subnet4.Addr().Is4() || s.Subnet4.Bits() != 24 {
		return nil, fmt.Errorf("spec: Subnet4 %s: want an IPv4 /24", s.Subnet4)
	}
	if !s.Subnet6.Addr().Is6() || s.Subnet6.Bits() != 64 {
		return nil, fmt.Errorf("spec: Subnet6 %s: want an IPv6 /64", s.Subnet6)
	}
	if len(s.Iface) > 15 {
		return nil, fmt.Errorf("spec: Iface %q: longer than 15 characters", s.Iface)
	}
	for _, v := range s.VIPs {
		if !v.IsValid() {
			return nil, fmt.Errorf("spec: invalid VIP")
		}
	}
	if len(s.Hosts) == 0 {
		return nil, fmt.Errorf("spec: no hosts")
	}
	p := &plan{spec: s}
	next := map[Role]int{}
	names := map[string]bool{}
	for i, h := range s.Hosts {
		if !hostNameRE.MatchString(h.Name) {
			return nil, fmt.Errorf("spec: host %d: name %q: want 1 to 8 characters [a-z0-9]", i, h.Name)
		}
		if names[h.Name] {
			return nil, fmt.Errorf("spec: host %q: duplicate name", h.Name)
		}
		names[h.Name] = true
		pool, ok := pools[h.Role]
		if !ok {
			return nil, fmt.Errorf("spec: host %q: unknown role %q", h.Name, h.Role)
		}
		if h.Addrs == 0 {
			h.Addrs = 1
		}
		if h.Addrs < 0 {
			return nil, fmt.Errorf("spec: host %q: Addrs %d < 0", h.Name, h.Addrs)
		}
		hp := hostPlan{HostSpec: h}
		for range h.Addrs {
			n := pool[0] + next[h.Role]
			if n > pool[1] {
				return nil, fmt.Errorf("spec: host %q: role %s has only addresses .%d to .%d", h.Name, h.Role, pool[0], pool[1])
			}
			next[h.Role]++
			hp.addrs4 = append(hp.addrs4, hostAddr4(s.Subnet4, n))
			hp.addrs6 = append(hp.addrs6, hostAddr6(s.Subnet6, n))
		}
		n := byte(hp.addrs4[0].As4()[3])
		hp.mac = net.HardwareAddr{0x02, 0x99, 0, 0, 0, n}
		hp.peerMAC = net.HardwareAddr{0x02, 0x98, 0, 0, 0, n}
		p.hosts = append(p.hosts, hp)
	}
	for _, hp := range p.hosts {
		for _, r := range hp.Routes {
			if !r.Dst.IsValid() {
				return nil, fmt.Errorf("spec: host %q: route with invalid destination", hp.Name)
			}
			if !names[r.Via] {
				return nil, fmt.Errorf("spec: host %q: route to %s via unknown host %q", hp.Name, r.Dst, r.Via)
			}
		}
	}
	return p, nil
}

func hostAddr4(subnet netip.Prefix, n int) netip.Addr {
	a := subnet.Addr().As4()
	a[3] = byte(n)
	return netip.AddrFrom4(a)
}

// hostAddr6 returns subnet::<n in decimal digits>, read as hex: 21 -> ::21.
func hostAddr6(subnet netip.Prefix, n int) netip.Addr {
	var id uint16
	for _, d := range fmt.Sprint(n) {
		id = id<<4 | uint16(d-'0')
	}
	a := subnet.Addr().As16()
	for i := 8; i < 14; i++ {
		a[i] = 0
	}
	a[14], a[15] = byte(id>>8), byte(id)
	return netip.AddrFrom16(a)
}
