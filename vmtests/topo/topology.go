package topo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/rs/zerolog"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Topology is a running set of namespaces on one bridge. Create it with New
// (or NewT in tests) and end it with Close.
type Topology struct {
	// Prefix is this run's unique name prefix (FamilyPrefix + 4 characters,
	// the first a digit).
	Prefix string
	// Switch is the namespace holding the bridge and every host's veth peer;
	// it has no addresses.
	Switch *Host
	// Bridge is the bridge's name in the switch namespace.
	Bridge string

	spec    Spec
	hosts   []*Host
	byName  map[string]*Host
	log     zerolog.Logger
	logDir  string
	tempDir bool // logDir is ours to remove

	mu        sync.Mutex
	procs     []*Process
	closed    bool
	closeErr  error
	closeOnce sync.Once
}

// New builds the topology described by spec. ctx bounds the setup only;
// the topology lives until Close. Stale objects of killed earlier runs are
// removed first. On error everything made so far is removed.
func New(ctx context.Context, spec Spec) (*Topology, error) {
	p, err := makePlan(spec)
	if err != nil {
		return nil, err
	}
	spec = p.spec
	log := zerolog.Nop()
	if spec.Log != nil {
		log = *spec.Log
	}

	unlock, err := lockState()
	if err != nil {
		return nil, fmt.Errorf("topology: %w", err)
	}
	if err := cleanStaleLocked(log); err != nil {
		log.Warn().Err(err).Msg("stale cleanup incomplete")
	}
	prefix, err := newPrefix()
	if err != nil {
		unlock()
		return nil, fmt.Errorf("topology: %w", err)
	}
	t := &Topology{
		Prefix: prefix,
		Bridge: prefix + "-br",
		spec:   spec,
		byName: map[string]*Host{},
		log:    log.With().Str("topo", prefix).Logger(),
		logDir: spec.LogDir,
	}
	m := marker{Prefix: prefix, Pid: os.Getpid(), Start: self().start}
	if t.logDir == "" {
		if t.logDir, err = makeTempDir("logs"); err != nil {
			unlock()
			return nil, fmt.Errorf("topology: %w", err)
		}
		t.tempDir = true
		m.TempDirs = append(m.TempDirs, t.logDir)
	} else if err := os.MkdirAll(t.logDir, 0o755); err != nil {
		unlock()
		return nil, fmt.Errorf("topology: %w", err)
	}
	err = writeMarker(m)
	unlock()
	if err != nil {
		if t.tempDir {
			os.RemoveAll(t.logDir)
		}
		return nil, fmt.Errorf("topology: write marker: %w", err)
	}
	register(t)

	if err := t.build(ctx, p); err != nil {
		return nil, errors.Join(fmt.Errorf("topology %s: %w", prefix, err), t.Close())
	}
	t.log.Debug().Int("hosts", len(t.hosts)).Str("xdp", spec.XDPMode.String()).Msg("topology up")
	return t, nil
}

func (t *Topology) build(ctx context.Context, p *plan) error {
	sw, err := t.newNS("sw")
	if err != nil {
		return err
	}
	t.Switch = sw
	var brIndex int
	err = sw.Do(func() error {
		for _, k := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"} {
			if err := writeSysctl(k, "1"); err != nil {
				return err
			}
		}
		if err := linkUp("lo"); err != nil {
			return err
		}
		off := false
		br := &netlink.Bridge{
			LinkAttrs:         netlink.LinkAttrs{Name: t.Bridge, HardwareAddr: net.HardwareAddr{0x02, 0x97, 0, 0, 0, 1}},
			MulticastSnooping: &off,
		}
		if err := netlink.LinkAdd(br); err != nil {
			return fmt.Errorf("add bridge: %w", err)
		}
		if err := netlink.LinkSetUp(br); err != nil {
			return err
		}
		l, err := netlink.LinkByName(t.Bridge)
		if err != nil {
			return err
		}
		brIndex = l.Attrs().Index
		return nil
	})
	if err != nil {
		return fmt.Errorf("switch: %w", err)
	}

	for _, hp := range p.hosts {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := t.addHost(hp, brIndex); err != nil {
			return fmt.Errorf("host %s: %w", hp.Name, err)
		}
	}
	for _, hp := range p.hosts {
		if err := t.addRoutes(t.byName[hp.Name], hp.Routes); err != nil {
			return fmt.Errorf("host %s: %w", hp.Name, err)
		}
	}
	return nil
}

func (t *Topology) newNS(name string) (*Host, error) {
	ns := t.Prefix + "-" + name
	path, err := createNetNS(ns)
	if err != nil {
		return nil, err
	}
	return &Host{Name: name, NetNS: ns, NSPath: path, topo: t}, nil
}

func linkUp(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(l)
}

func addAddr(link netlink.Link, a netip.Prefix) error { return addAddrLft(link, a, false) }

// addVIP adds a director's VIP as the VRRP master does: an IPv6 one
// deprecated, so that it is never the source of the director's own
// connections (health checks to reals that hold the VIP on lo).
func addVIP(link netlink.Link, a netip.Prefix) error { return addAddrLft(link, a, true) }

func addAddrLft(link netlink.Link, a netip.Prefix, deprecated bool) error {
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}}
	if a.Addr().Is6() {
		addr.Flags = unix.IFA_F_NODAD
		if deprecated {
			addr.PreferedLft, addr.ValidLft = 0, int(^uint32(0))
		}
	}
	if err := netlink.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("add %s to %s: %w", a, link.Attrs().Name, err)
	}
	return nil
}

func (t *Topology) addHost(hp hostPlan, brIndex int) error {
	h, err := t.newNS(hp.Name)
	if err != nil {
		return err
	}
	h.Role = hp.Role
	h.Iface = t.spec.Iface
	h.Peer = t.Prefix + "-" + hp.Name
	h.MAC, h.PeerMAC = hp.mac, hp.peerMAC
	h.Addrs4, h.Addrs6 = hp.addrs4, hp.addrs6
	t.hosts = append(t.hosts, h)
	t.byName[h.Name] = h

	// Before the veth exists, so the interface inherits these.
	err = h.Do(func() error {
		for _, k := range []string{"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"} {
			if err := writeSysctl(k, "0"); err != nil {
				return err
			}
		}
		return linkUp("lo")
	})
	if err != nil {
		return err
	}

	nsh, err := netns.GetFromPath(h.NSPath)
	if err != nil {
		return err
	}
	defer nsh.Close()
	native := t.spec.XDPMode == XDPNative
	err = t.Switch.Do(func() error {
		veth := &netlink.Veth{
			LinkAttrs:        netlink.LinkAttrs{Name: h.Peer, HardwareAddr: h.PeerMAC, MasterIndex: brIndex},
			PeerName:         h.Iface,
			PeerHardwareAddr: h.MAC,
			PeerNamespace:    netlink.NsFd(nsh),
		}
		if err := netlink.LinkAdd(veth); err != nil {
			return fmt.Errorf("add veth %s/%s: %w", h.Peer, h.Iface, err)
		}
		peer, err := netlink.LinkByName(h.Peer)
		if err != nil {
			return err
		}
		if native && h.Role == RoleDirector {
			// XDP_TX on the director's veth lands in this peer's receive
			// queue, which only exists while the peer runs NAPI: an XDP
			// program on the peer turns it on.
			prog, err := PassProgram()
			if err != nil {
				return err
			}
			defer prog.Close()
			if err := netlink.LinkSetXdpFdWithFlags(peer, prog.FD(), XDPNative.Flags()); err != nil {
				return fmt.Errorf("attach XDP_PASS to %s: %w", h.Peer, err)
			}
		}
		return netlink.LinkSetUp(peer)
	})
	if err != nil {
		return err
	}

	return h.Do(func() error {
		link, err := netlink.LinkByName(h.Iface)
		if err != nil {
			return err
		}
		for i := range h.Addrs4 {
			if err := addAddr(link, netip.PrefixFrom(h.Addrs4[i], t.spec.Subnet4.Bits())); err != nil {
				return err
			}
			if err := addAddr(link, netip.PrefixFrom(h.Addrs6[i], t.spec.Subnet6.Bits())); err != nil {
				return err
			}
		}
		if native || t.spec.TXChecksumOff {
			// Native XDP on veth drops the skb's checksum-partial state, so a
			// sender must fill its checksums in itself.
			if err := setTXChecksum(h.Iface, false); err != nil {
				return err
			}
		}
		switch {
		case h.Role == RoleReal:
			if err := t.setupReal(h, hp.NoVIP); err != nil {
				return err
			}
		case h.Role == RoleDirector && !hp.NoVIP:
			for _, v := range t.spec.VIPs {
				if err := addVIP(link, netip.PrefixFrom(v, v.BitLen())); err != nil {
					return err
				}
			}
		}
		return netlink.LinkSetUp(link)
	})
}

// setupReal makes h a direct-routing real server; runs inside h.
func (t *Topology) setupReal(h *Host, noVIP bool) error {
	for _, dev := range []string{"all", h.Iface} {
		if err := writeSysctl("net/ipv4/conf/"+dev+"/arp_ignore", "1"); err != nil {
			return err
		}
		if err := writeSysctl("net/ipv4/conf/"+dev+"/arp_announce", "2"); err != nil {
			return err
		}
	}
	if noVIP {
		return nil
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	for _, v := range t.spec.VIPs {
		if err := addAddr(lo, netip.PrefixFrom(v, v.BitLen())); err != nil {
			return err
		}
	}
	return nil
}

func (t *Topology) addRoutes(h *Host, routes []Route) error {
	if len(routes) == 0 {
		return nil
	}
	return h.Do(func() error {
		link, err := netlink.LinkByName(h.Iface)
		if err != nil {
			return err
		}
		for _, r := range routes {
			via := t.byName[r.Via]
			gw := via.Addr4()
			if r.Dst.Addr().Is6() {
				gw = via.Addr6()
			}
			rt := &netlink.Route{
				LinkIndex: link.Attrs().Index,
				Dst:       &net.IPNet{IP: r.Dst.Masked().Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), r.Dst.Addr().BitLen())},
				Gw:        gw.AsSlice(),
			}
			if err := netlink.RouteAdd(rt); err != nil {
				return fmt.Errorf("route %s via %s: %w", r.Dst, gw, err)
			}
		}
		return nil
	})
}

// Spec is the topology's spec with defaults filled in.
func (t *Topology) Spec() Spec { return t.spec }

// XDPMode is the attach mode the topology was prepared for.
func (t *Topology) XDPMode() XDPMode { return t.spec.XDPMode }

// VIPs are the virtual addresses.
func (t *Topology) VIPs() []netip.Addr { return t.spec.VIPs }

// VIP4 is the first IPv4 VIP (zero if none).
func (t *Topology) VIP4() netip.Addr { return firstVIP(t.spec.VIPs, true) }

// VIP6 is the first IPv6 VIP (zero if none).
func (t *Topology) VIP6() netip.Addr { return firstVIP(t.spec.VIPs, false) }

func firstVIP(vs []netip.Addr, v4 bool) netip.Addr {
	for _, v := range vs {
		if v.Is4() == v4 {
			return v
		}
	}
	return netip.Addr{}
}

// Host returns the host called name, or nil.
func (t *Topology) Host(name string) *Host { return t.byName[name] }

// Hosts returns the hosts with the given roles (all hosts if none), in
// spec order.
func (t *Topology) Hosts(roles ...Role) []*Host {
	var hs []*Host
	for _, h := range t.hosts {
		if len(roles) == 0 || contains(roles, h.Role) {
			hs = append(hs, h)
		}
	}
	return hs
}

func contains(rs []Role, r Role) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// Clients, Directors, Reals and Servers are Hosts of one role.
func (t *Topology) Clients() []*Host   { return t.Hosts(RoleClient) }
func (t *Topology) Directors() []*Host { return t.Hosts(RoleDirector) }
func (t *Topology) Reals() []*Host     { return t.Hosts(RoleReal) }
func (t *Topology) Servers() []*Host   { return t.Hosts(RoleServer) }

// LogDir holds the processes' log files.
func (t *Topology) LogDir() string { return t.logDir }

func (t *Topology) addProcess(p *Process) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.procs = append(t.procs, p)
}

// Processes lists every process started in the topology.
func (t *Topology) Processes() []*Process {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*Process(nil), t.procs...)
}

// StopAll stops every process still running (SIGTERM, then SIGKILL after
// Spec.StopTimeout), all at once.
func (t *Topology) StopAll() {
	var wg sync.WaitGroup
	for _, p := range t.Processes() {
		if p.Exited() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Stop(0); err != nil {
				t.log.Debug().Err(err).Str("proc", p.String()).Msg("stop")
			}
		}()
	}
	wg.Wait()
}

// LogReport describes every process and the last maxBytes of its log, for
// a failed test's output.
func (t *Topology) LogReport(maxBytes int) string {
	var b strings.Builder
	for _, p := range t.Processes() {
		p.mu.Lock()
		stopped := p.stopped
		p.mu.Unlock()
		note := ""
		if p.Exited() && !stopped {
			note = " (exited on its own)"
		}
		fmt.Fprintf(&b, "=== %s%s, log %s\n%s\n", p, note, p.LogPath, tail(p.Log(), maxBytes))
	}
	return b.String()
}

// Close stops every process, deletes every namespace (their veths and the
// bridge go with them), kills anything left in them, and removes the log
// directory (unless Spec.LogDir was given) and the run's marker. It is safe
// to call more than once and from several goroutines.
func (t *Topology) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.closed = true
		t.mu.Unlock()
		t.StopAll()
		var errs []error
		for i := len(t.hosts) - 1; i >= 0; i-- {
			errs = append(errs, deleteNetNS(t.hosts[i].NSPath))
		}
		if t.Switch != nil {
			errs = append(errs, deleteNetNS(t.Switch.NSPath))
		}
		if t.tempDir {
			errs = append(errs, os.RemoveAll(t.logDir))
		}
		// Namespaces of ours that never became hosts (failed setup).
		if left, _ := filepath.Glob(filepath.Join(netnsDir, t.Prefix+"-*")); len(left) > 0 {
			for _, p := range left {
				errs = append(errs, deleteNetNS(p))
			}
		}
		if unlock, err := lockState(); err != nil {
			errs = append(errs, err)
		} else {
			if err := os.Remove(markerPath(t.Prefix)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			unlock()
		}
		unregister(t)
		t.closeErr = errors.Join(errs...)
		t.log.Debug().Err(t.closeErr).Msg("topology closed")
	})
	return t.closeErr
}
