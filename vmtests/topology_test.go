package vmtests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/directorlb/director/vmtests/topo"
	"github.com/directorlb/director/vmtests/web"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// TestDRTopology builds 2 clients (cl1 with three addresses), one director
// prepared for native XDP and 3 real servers, and checks what the director's
// tests will rely on.
func TestDRTopology(t *testing.T) {
	spec := topo.DRSpec(2, 1, 3)
	spec.Hosts[0].Addrs = 3
	spec.XDPMode = topo.XDPNative
	top := topo.NewT(t, spec)
	ctx := topo.Context(t, 30*time.Second)
	dir := top.Host("dir1")
	vip4, vip6 := top.VIP4(), top.VIP6()

	t.Run("addresses and sysctls", func(t *testing.T) {
		for _, h := range top.Hosts() {
			for _, a := range append(append([]netip.Addr(nil), h.Addrs4...), h.Addrs6...) {
				if ok, err := h.HasAddr(h.Iface, a); err != nil || !ok {
					t.Errorf("%s: %s on %s: %v %v", h, a, h.Iface, ok, err)
				}
			}
		}
		for _, v := range top.VIPs() {
			if ok, err := dir.HasAddr(dir.Iface, v); err != nil || !ok {
				t.Errorf("director: VIP %s on %s: %v %v", v, dir.Iface, ok, err)
			}
			for _, rs := range top.Reals() {
				if ok, err := rs.HasAddr("lo", v); err != nil || !ok {
					t.Errorf("%s: VIP %s on lo: %v %v", rs, v, ok, err)
				}
				if ok, _ := rs.HasAddr(rs.Iface, v); ok {
					t.Errorf("%s: VIP %s on %s, want only on lo", rs, v, rs.Iface)
				}
			}
			for _, cl := range top.Clients() {
				if ok, _ := cl.HasAddr("lo", v); ok {
					t.Errorf("%s has VIP %s", cl, v)
				}
			}
		}
		for _, rs := range top.Reals() {
			for _, dev := range []string{"all", rs.Iface} {
				for key, want := range map[string]string{"arp_ignore": "1", "arp_announce": "2"} {
					k := fmt.Sprintf("net.ipv4.conf.%s.%s", dev, key)
					if got, err := rs.Sysctl(k); err != nil || got != want {
						t.Errorf("%s: %s = %q (%v), want %s", rs, k, got, err, want)
					}
				}
			}
		}
		if got, _ := dir.Sysctl("net.ipv4.conf.all.arp_ignore"); got != "0" {
			t.Errorf("director: arp_ignore = %s, want the default 0", got)
		}
	})

	t.Run("native XDP prerequisites", func(t *testing.T) {
		sw, err := top.Switch.Netlink()
		if err != nil {
			t.Fatal(err)
		}
		defer sw.Close()
		for _, h := range top.Hosts() {
			l, err := sw.LinkByName(h.Peer)
			if err != nil {
				t.Fatalf("%s: peer %s: %v", h, h.Peer, err)
			}
			if l.Attrs().MasterIndex == 0 {
				t.Errorf("%s: peer %s not on the bridge", h, h.Peer)
			}
			xdp := l.Attrs().Xdp
			attached := xdp != nil && xdp.Attached && xdp.AttachMode == nl.XDP_ATTACHED_DRV
			if attached != (h.Role == topo.RoleDirector) {
				t.Errorf("%s: peer %s XDP %+v, want native program only on directors' peers", h, h.Peer, xdp)
			}
			if on, err := h.TXChecksum(); err != nil || on {
				t.Errorf("%s: TX checksum offload on=%v (%v), want off", h, on, err)
			}
		}
		if _, err := exec.LookPath("ethtool"); err == nil {
			out, err := top.Host("cl1").Run(ctx, "ethtool", "-k", "eth0")
			if err != nil || !bytes.Contains(out, []byte("tx-checksumming: off")) {
				t.Errorf("ethtool -k in cl1: %v\n%s", err, out)
			}
		}
	})

	webs := map[string]*topo.WebServer{}
	for _, rs := range top.Reals() {
		w, err := top.StartWebserver(ctx, rs)
		if err != nil {
			t.Fatal(err)
		}
		webs[rs.Name] = w
	}

	t.Run("HTTP from every client address to every real", func(t *testing.T) {
		for _, cl := range top.Clients() {
			for i := range cl.Addrs4 {
				for _, src := range []netip.Addr{cl.Addrs4[i], cl.Addrs6[i]} {
					for _, rs := range top.Reals() {
						dst := rs.Addr4()
						if src.Is6() {
							dst = rs.Addr6()
						}
						url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(dst, topo.WebPort))
						who := getWhoAmI(t, cl, src, url)
						remote, _ := netip.ParseAddrPort(who.Remote)
						if who.Server != rs.Name || remote.Addr() != src {
							t.Errorf("%s from %s: %+v, want server %s and remote %s", url, src, who, rs, src)
						}
					}
				}
			}
		}
	})

	t.Run("curl", func(t *testing.T) {
		if _, err := exec.LookPath("curl"); err != nil {
			t.Skip("no curl")
		}
		cl := top.Host("cl1")
		src := cl.Addrs4[2]
		out, err := cl.Curl(ctx, "-f", "-H", "X-Forwarded-For: 192.0.2.7", "--interface", src.String(),
			fmt.Sprintf("http://%s:%d/", top.Host("rs2").Addr4(), topo.WebPort))
		if err != nil {
			t.Fatal(err)
		}
		var who web.WhoAmI
		if err := json.Unmarshal(out, &who); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if who.Server != "rs2" || !strings.HasPrefix(who.Remote, src.String()+":") || who.XFF != "192.0.2.7" {
			t.Errorf("curl: %+v, want rs2, remote %s, xff 192.0.2.7", who, src)
		}
	})

	t.Run("webserver endpoints", func(t *testing.T) {
		cl, rs := top.Host("cl2"), top.Host("rs3")
		base := fmt.Sprintf("http://%s:%d", rs.Addr4(), topo.WebPort)
		check := func(want int) {
			t.Helper()
			code, body, err := cl.Get(ctx, netip.Addr{}, base+"/check.txt")
			if err != nil || code != want {
				t.Errorf("check.txt = %d %q %v, want %d", code, body, err, want)
			}
		}
		check(200)
		if err := webs["rs3"].SetHealthy(false); err != nil {
			t.Fatal(err)
		}
		check(503)
		if err := webs["rs3"].SetHealthy(true); err != nil {
			t.Fatal(err)
		}
		check(200)
		if err := webs["rs3"].Signal(syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		if err := topo.WaitFor(ctx, 5*time.Second, "check.txt down after SIGUSR1", func() (bool, error) {
			code, _, err := cl.Get(ctx, netip.Addr{}, base+"/check.txt")
			return code == 503, err
		}); err != nil {
			t.Error(err)
		}
		webs["rs3"].Signal(syscall.SIGUSR2)

		start := time.Now()
		code, body, err := cl.Get(ctx, netip.Addr{}, base+"/bytes?n=40000&rate=200000")
		if d := time.Since(start); err != nil || code != 200 || len(body) != 40000 || d < 150*time.Millisecond {
			t.Errorf("/bytes: %d, %d bytes, %v in %v; want 40000 bytes in about 200ms", code, len(body), err, d)
		}

		c, err := cl.Dial(ctx, "tcp", fmt.Sprintf("[%s]:%d", rs.Addr6(), topo.EchoPort))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		greet, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(greet, "server=rs3 remote=["+cl.Addr6().String()+"]:") {
			t.Errorf("echo greeting %q %v", greet, err)
		}
		fmt.Fprintf(c, "ping\n")
		if echo, err := br.ReadString('\n'); err != nil || echo != "ping\n" {
			t.Errorf("echo %q %v", echo, err)
		}
	})

	t.Run("ARP for the VIP: only the director answers", func(t *testing.T) {
		cl := top.Host("cl1")
		probe := func() []net.HardwareAddr {
			t.Helper()
			macs, err := cl.ARPProbe(vip4, 300*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			return macs
		}
		if macs := probe(); len(macs) != 1 || macs[0].String() != dir.MAC.String() {
			t.Errorf("ARP replies for %s: %v, want only the director's %s", vip4, macs, dir.MAC)
		}
		// Control: without arp_ignore rs1 answers too, so the probe can tell.
		rs1 := top.Host("rs1")
		for _, dev := range []string{"all", rs1.Iface} {
			if err := rs1.SetSysctl("net.ipv4.conf."+dev+".arp_ignore", "0"); err != nil {
				t.Fatal(err)
			}
		}
		if macs := probe(); !containsMAC(macs, rs1.MAC) {
			t.Errorf("with arp_ignore=0 on rs1, ARP replies %v lack rs1's %s", macs, rs1.MAC)
		}
		for _, dev := range []string{"all", rs1.Iface} {
			if err := rs1.SetSysctl("net.ipv4.conf."+dev+".arp_ignore", "1"); err != nil {
				t.Fatal(err)
			}
		}
		if macs := probe(); len(macs) != 1 || macs[0].String() != dir.MAC.String() {
			t.Errorf("after restoring arp_ignore: %v, want only %s", macs, dir.MAC)
		}
	})

	t.Run("neighbour entries for the VIPs point at the director", func(t *testing.T) {
		cl := top.Host("cl2")
		for _, v := range []netip.Addr{vip4, vip6} {
			// The director has no listener: the attempt is refused, but
			// resolves the VIP's address first.
			c, err := cl.Dial(ctx, "tcp", netip.AddrPortFrom(v, topo.WebPort).String())
			if err == nil {
				c.Close()
			}
			mac, state, err := cl.Neighbor(v)
			if err != nil || mac.String() != dir.MAC.String() {
				t.Errorf("%s: neighbour %s (state %#x, %v), want director %s", v, mac, state, err, dir.MAC)
			}
		}
	})

	t.Run("no thread left in a host namespace", func(t *testing.T) {
		var inside unix.Stat_t
		if err := top.Host("rs1").Do(func() error { return unix.Stat("/proc/thread-self/ns/net", &inside) }); err != nil {
			t.Fatal(err)
		}
		var want unix.Stat_t
		if err := unix.Stat(top.Host("rs1").NSPath, &want); err != nil || want.Ino != inside.Ino {
			t.Fatalf("Do ran in netns inode %d, want %d (%v)", inside.Ino, want.Ino, err)
		}
		assertThreadsInRootNS(t)
	})
}

func getWhoAmI(t *testing.T, h *topo.Host, src netip.Addr, url string) web.WhoAmI {
	t.Helper()
	code, body, err := h.Get(topo.Context(t, 5*time.Second), src, url)
	if err != nil || code != http.StatusOK {
		t.Fatalf("%s: GET %s from %s: %d %v %s", h, url, src, code, err, body)
	}
	var who web.WhoAmI
	if err := json.Unmarshal(body, &who); err != nil {
		t.Fatalf("%s: %v: %s", url, err, body)
	}
	return who
}

func containsMAC(macs []net.HardwareAddr, m net.HardwareAddr) bool {
	for _, x := range macs {
		if bytes.Equal(x, m) {
			return true
		}
	}
	return false
}

// assertThreadsInRootNS checks every thread of the test binary is in the
// namespace of its main thread.
func assertThreadsInRootNS(t *testing.T) {
	t.Helper()
	var root unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", os.Getpid()), &root); err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		var st unix.Stat_t
		if unix.Stat("/proc/self/task/"+task.Name()+"/ns/net", &st) == nil && st.Ino != root.Ino {
			comm, _ := os.ReadFile("/proc/self/task/" + task.Name() + "/comm")
			t.Errorf("thread %s (%s) is in netns %d, not the root's %d", task.Name(), strings.TrimSpace(string(comm)), st.Ino, root.Ino)
		}
	}
}

// TestGenericMode: generic mode needs nothing on the peers, and leaves the
// veths' TX checksum offload alone.
func TestGenericMode(t *testing.T) {
	top := topo.NewT(t, topo.DRSpec(1, 1, 1))
	sw, err := top.Switch.Netlink()
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	for _, h := range top.Hosts() {
		l, err := sw.LinkByName(h.Peer)
		if err != nil {
			t.Fatal(err)
		}
		if x := l.Attrs().Xdp; x != nil && x.Attached {
			t.Errorf("%s: XDP on peer in generic mode: %+v", h, x)
		}
		if on, err := h.TXChecksum(); err != nil || !on {
			t.Errorf("%s: TX checksum on=%v (%v), want the veth default (on)", h, on, err)
		}
	}
	if top.XDPMode().Flags() != nl.XDP_FLAGS_SKB_MODE {
		t.Errorf("generic flags %#x", top.XDPMode().Flags())
	}
}

// TestProxySpec: the proxy tier is configuration: proxies are DR real
// servers, web servers plain hosts.
func TestProxySpec(t *testing.T) {
	top := topo.NewT(t, topo.ProxySpec(1, 1, 2, 3))
	if len(top.Reals()) != 2 || len(top.Servers()) != 3 {
		t.Fatalf("reals %v servers %v", top.Reals(), top.Servers())
	}
	if ok, err := top.Host("px2").HasAddr("lo", top.VIP4()); err != nil || !ok {
		t.Errorf("px2: VIP on lo: %v %v", ok, err)
	}
	if ok, _ := top.Host("web1").HasAddr("lo", top.VIP4()); ok {
		t.Errorf("web1 has the VIP")
	}
	ctx := topo.Context(t, 20*time.Second)
	if _, err := top.StartWebserver(ctx, top.Host("web3")); err != nil {
		t.Fatal(err)
	}
	who := getWhoAmI(t, top.Host("px1"), netip.Addr{}, fmt.Sprintf("http://%s/", top.Host("web3").Addr4()))
	if who.Server != "web3" {
		t.Errorf("px1 -> web3: %+v", who)
	}
}
