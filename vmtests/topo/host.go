package topo

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
)

// Host is one network namespace with one interface on the bridge.
type Host struct {
	Name string
	Role Role
	// NetNS is the namespace's name (`ip netns exec <NetNS> ...`) and NSPath
	// its path under /run/netns.
	NetNS, NSPath string
	// Iface is the interface inside the namespace; Peer is its veth peer on
	// the bridge, in the switch namespace.
	Iface, Peer string
	// MAC of Iface and PeerMAC of Peer (locally administered,
	// 02:99:00:00:00:<n> and 02:98:00:00:00:<n> for primary address .n).
	MAC, PeerMAC net.HardwareAddr
	// Addrs4 and Addrs6 are the addresses on Iface, primary first.
	Addrs4, Addrs6 []netip.Addr

	topo *Topology
}

// Addr4 is the primary IPv4 address.
func (h *Host) Addr4() netip.Addr { return h.Addrs4[0] }

// Addr6 is the primary IPv6 address.
func (h *Host) Addr6() netip.Addr { return h.Addrs6[0] }

func (h *Host) String() string { return h.Name }

// Do runs fn on an OS thread inside h's namespace; the thread is restored
// (or ends) afterwards and the caller's thread never moves. fn must not lock
// or unlock the OS thread, and goroutines it starts run outside the
// namespace. Sockets and netlink handles created in fn stay in the
// namespace and may be used anywhere afterwards.
func (h *Host) Do(fn func() error) error {
	return inNetNS(h.NSPath, fn)
}

// Netlink returns a netlink handle bound to h's namespace; the caller
// deletes it (Handle.Close).
func (h *Host) Netlink() (*netlink.Handle, error) {
	var nh *netlink.Handle
	err := h.Do(func() (err error) {
		nh, err = netlink.NewHandle()
		return err
	})
	return nh, err
}

func sysctlPath(key string) string {
	if !strings.Contains(key, "/") {
		key = strings.ReplaceAll(key, ".", "/")
	}
	return filepath.Join("/proc/sys", key)
}

// Sysctl reads a sysctl in h's namespace; key is "net.ipv4.conf.all.arp_ignore"
// or "net/ipv4/conf/eth0/arp_ignore".
func (h *Host) Sysctl(key string) (string, error) {
	var v string
	err := h.Do(func() error {
		b, err := os.ReadFile(sysctlPath(key))
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}

// SetSysctl writes a sysctl in h's namespace.
func (h *Host) SetSysctl(key, value string) error {
	return h.Do(func() error { return writeSysctl(key, value) })
}

func writeSysctl(key, value string) error {
	if err := os.WriteFile(sysctlPath(key), []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// literal checks that addr is ip:port with a literal IP: resolving names
// would run on other goroutines, outside the namespace.
func literal(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("address %q: use a literal IP inside a namespace", addr)
	}
	return nil
}

// DialTimeout bounds every dial from a host.
const DialTimeout = 5 * time.Second

// DialFrom connects from h's namespace, from source address src if valid,
// to addr (a literal ip:port). network is "tcp", "tcp4", "udp", ...
func (h *Host) DialFrom(ctx context.Context, src netip.Addr, network, addr string) (net.Conn, error) {
	if err := literal(addr); err != nil {
		return nil, err
	}
	// Bounded even without a deadline: the dial holds a locked thread in
	// the namespace until it ends, and http.Transport lets a dial go on
	// after its request was cancelled.
	d := net.Dialer{FallbackDelay: -1, Timeout: DialTimeout}
	if src.IsValid() {
		if strings.HasPrefix(network, "udp") {
			d.LocalAddr = &net.UDPAddr{IP: src.AsSlice()}
		} else {
			d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
		}
	}
	var c net.Conn
	err := h.Do(func() (err error) {
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.Name, err)
	}
	return c, nil
}

// Dial connects from h's namespace to addr (a literal ip:port).
func (h *Host) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return h.DialFrom(ctx, netip.Addr{}, network, addr)
}

// Listen listens in h's namespace (addr is a literal ip:port or :port).
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	if err := literal(addr); err != nil {
		return nil, err
	}
	var l net.Listener
	err := h.Do(func() (err error) {
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// HTTPClient returns an HTTP client whose connections are made from h's
// namespace, from source address src if valid. Keep-alives are off: every
// request is a new connection (a new flow for the director). URLs must use
// literal IPs. A dial outlives a cancelled request (net/http's behaviour) up
// to DialTimeout; use DialFrom with a short context to probe for a failure.
func (h *Host) HTTPClient(src netip.Addr) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return h.DialFrom(ctx, src, network, addr)
			},
			DisableKeepAlives: true,
			Proxy:             nil,
		},
	}
}

// Get fetches url from h (from src if valid) and returns the status code and
// body.
func (h *Host) Get(ctx context.Context, src netip.Addr, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := h.HTTPClient(src).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// WaitHTTP waits until GET url from h answers 200.
func (h *Host) WaitHTTP(ctx context.Context, url string) error {
	return WaitFor(ctx, 0, fmt.Sprintf("%s: GET %s = 200", h.Name, url), func() (bool, error) {
		code, body, err := h.Get(ctx, netip.Addr{}, url)
		if err != nil {
			return false, err
		}
		if code != http.StatusOK {
			return false, fmt.Errorf("status %d: %.200s", code, body)
		}
		return true, nil
	})
}

// WaitTCP waits until a TCP connection from h to addr succeeds.
func (h *Host) WaitTCP(ctx context.Context, addr string) error {
	return WaitFor(ctx, 0, fmt.Sprintf("%s: TCP connect to %s", h.Name, addr), func() (bool, error) {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		c, err := h.Dial(dctx, "tcp", addr)
		if err != nil {
			return false, err
		}
		c.Close()
		return true, nil
	})
}

// Neighbor returns the MAC of h's neighbour entry for ip on its interface
// (nil if none) and the entry's NUD state.
func (h *Host) Neighbor(ip netip.Addr) (net.HardwareAddr, int, error) {
	var mac net.HardwareAddr
	var state int
	err := h.Do(func() error {
		link, err := netlink.LinkByName(h.Iface)
		if err != nil {
			return err
		}
		family := netlink.FAMILY_V4
		if ip.Is6() {
			family = netlink.FAMILY_V6
		}
		ns, err := netlink.NeighList(link.Attrs().Index, family)
		if err != nil {
			return err
		}
		for _, n := range ns {
			if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == ip && len(n.HardwareAddr) > 0 {
				mac, state = n.HardwareAddr, n.State
			}
		}
		return nil
	})
	return mac, state, err
}

// ARPProbe broadcasts one ARP request for ip from h's interface and returns
// the distinct MACs that answered within wait.
func (h *Host) ARPProbe(ip netip.Addr, wait time.Duration) ([]net.HardwareAddr, error) {
	var macs []net.HardwareAddr
	err := h.Do(func() (err error) {
		macs, err = arpProbe(h.Iface, ip, wait)
		return err
	})
	return macs, err
}

// TXChecksum reports whether TX checksum offload is on for h's interface
// (`ethtool -k <iface>`: tx-checksumming).
func (h *Host) TXChecksum() (bool, error) {
	var on bool
	err := h.Do(func() (err error) {
		on, err = txChecksum(h.Iface)
		return err
	})
	return on, err
}

// HasAddr reports whether ip is configured on the named interface of h.
func (h *Host) HasAddr(ifname string, ip netip.Addr) (bool, error) {
	found := false
	err := h.Do(func() error {
		link, err := netlink.LinkByName(ifname)
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if x, ok := netip.AddrFromSlice(a.IP); ok && x.Unmap() == ip {
				found = true
			}
		}
		return nil
	})
	return found, err
}
