package vmtests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/directorlb/director/director"
	"github.com/directorlb/director/loader"
	"github.com/directorlb/director/vmtests/topo"
	"github.com/directorlb/director/vmtests/web"
)

// The dataplane alone, on a real topology: the XDP program attached to the
// director's interface by the loader, driven by the balancer, between real
// clients and real servers.

// lb is a director host's dataplane and balancer.
type lb struct {
	dp  *loader.Dataplane
	bal *director.Balancer
	top *topo.Topology
}

func startLB(t *testing.T, top *topo.Topology, dir *topo.Host, mode topo.XDPMode) *lb {
	t.Helper()
	root := fmt.Sprintf("/sys/fs/bpf/%s-%s", top.Prefix, dir.Name)
	t.Cleanup(func() {
		if err := loader.Teardown(root, dir.Iface); err != nil {
			t.Errorf("teardown: %v", err)
		}
		os.RemoveAll(root)
	})
	m := loader.ModeGeneric
	if mode == topo.XDPNative {
		m = loader.ModeNative
	}
	var dp *loader.Dataplane
	err := dir.Do(func() error {
		var err error
		dp, err = loader.Open(loader.Config{Interface: dir.Iface, Mode: m, PinRoot: root,
			Sizes: loader.Sizes{FlowEntries: 65536, MaxVIPs: 16, MaxReals: 64}})
		return err
	})
	if err != nil {
		t.Fatalf("open dataplane on %s: %v", dir, err)
	}
	t.Cleanup(func() { dp.Close() })
	bal, err := director.NewBalancer(dp)
	if err != nil {
		t.Fatal(err)
	}
	return &lb{dp: dp, bal: bal, top: top}
}

// service puts a VIP on the balancer with the given real servers.
func (l *lb) service(t *testing.T, k loader.VIPKey, reals ...*topo.Host) {
	t.Helper()
	if err := l.bal.AddService(director.ServiceSpec{Key: k}); err != nil {
		t.Fatal(err)
	}
	for _, r := range reals {
		l.addReal(t, k, r)
	}
}

func (l *lb) addReal(t *testing.T, k loader.VIPKey, r *topo.Host) {
	t.Helper()
	addr := r.Addr4()
	if k.Addr.Is6() {
		addr = r.Addr6()
	}
	if err := l.bal.AddReal(k, director.RealSpec{Addr: addr, Weight: 1, MAC: r.MAC, Healthy: true}); err != nil {
		t.Fatal(err)
	}
}

func (l *lb) stats(t *testing.T) map[loader.Reason]uint64 {
	t.Helper()
	s, err := l.dp.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// spread runs n short HTTP connections (no keep-alive) from the given
// client addresses to url, 8 at a time, and counts the answering servers.
func spread(ctx context.Context, t *testing.T, hosts []*topo.Host, n int, url string) map[string]int {
	t.Helper()
	type src struct {
		h    *topo.Host
		addr netip.Addr
		c    *http.Client
	}
	var srcs []src
	v6 := strings.Contains(url, "[")
	for _, h := range hosts {
		addrs := h.Addrs4
		if v6 {
			addrs = h.Addrs6
		}
		for _, a := range addrs {
			c := h.HTTPClient(a)
			c.Transport.(*http.Transport).DisableKeepAlives = true
			srcs = append(srcs, src{h, a, c})
		}
	}
	var (
		mu     sync.Mutex
		counts = map[string]int{}
		errs   []string
		wg     sync.WaitGroup
		next   = make(chan int)
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				s := srcs[i%len(srcs)]
				who, err := whoAmI(ctx, s.c, url)
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Sprintf("from %s: %v", s.addr, err))
				} else {
					counts[who.Server]++
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d requests failed, first: %s", len(errs), n, errs[0])
	}
	return counts
}

func whoAmI(ctx context.Context, c *http.Client, url string) (web.WhoAmI, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return web.WhoAmI{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return web.WhoAmI{}, err
	}
	defer resp.Body.Close()
	var who web.WhoAmI
	if resp.StatusCode != http.StatusOK {
		return who, fmt.Errorf("status %s", resp.Status)
	}
	return who, json.NewDecoder(resp.Body).Decode(&who)
}

// within: each of the names got about n/len(names) requests: within 5
// standard deviations of the binomial count a fair hash of random source
// ports gives (±75 of 333 for 1,000 requests over three servers, ±41 of
// 100 for 300). A ±25% bound was only 3 deviations at 300 requests, and
// failed in CI with nothing wrong (126 of 300).
func within(t *testing.T, counts map[string]int, n int, names ...string) {
	t.Helper()
	p := 1 / float64(len(names))
	want := float64(n) * p
	tol := 5 * math.Sqrt(float64(n)*p*(1-p))
	total := 0
	for _, name := range names {
		if c := float64(counts[name]); math.Abs(c-want) > tol {
			t.Errorf("%s answered %d of %d requests, want %.0f ±%.0f: %v", name, counts[name], n, want, tol, counts)
		}
		total += counts[name]
	}
	if total != n {
		t.Errorf("requests answered by others: %v", counts)
	}
}

func forModes(t *testing.T, run func(t *testing.T, mode topo.XDPMode)) {
	for _, mode := range []topo.XDPMode{topo.XDPGeneric, topo.XDPNative} {
		t.Run(mode.String(), func(t *testing.T) { run(t, mode) })
	}
}

// 1,000 short connections from six client addresses spread over three real
// servers, whose answers go straight to the clients.
func TestDataplaneSpread(t *testing.T) {
	forModes(t, func(t *testing.T, mode topo.XDPMode) {
		spec := topo.DRSpec(2, 1, 3)
		spec.XDPMode = mode
		for i := range spec.Hosts {
			if spec.Hosts[i].Role == topo.RoleClient {
				spec.Hosts[i].Addrs = 3
			}
		}
		top := topo.NewT(t, spec)
		ctx := topo.Context(t, 90*time.Second)
		reals := top.Reals()
		for _, r := range reals {
			if _, err := top.StartWebserver(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		l := startLB(t, top, top.Directors()[0], mode)
		k4 := loader.VIPKey{Addr: top.VIP4(), Port: topo.WebPort, Proto: loader.TCP}
		k6 := loader.VIPKey{Addr: top.VIP6(), Port: topo.WebPort, Proto: loader.TCP}
		l.service(t, k4, reals...)
		l.service(t, k6, reals...)

		before := l.stats(t)
		const n = 1000
		url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(top.VIP4(), topo.WebPort))
		within(t, spread(ctx, t, top.Clients(), n, url), n, "rs1", "rs2", "rs3")
		after := l.stats(t)

		// Every request went through XDP_TX; no reply passed the
		// director: a reply would reach its XDP program as IP traffic to
		// a client, counted as pass_not_vip.
		if tx := after[loader.TX] - before[loader.TX]; tx < 4*n {
			t.Errorf("%d packets forwarded for %d connections, want at least %d", tx, n, 4*n)
		}
		if nv := after[loader.PassNotVIP] - before[loader.PassNotVIP]; nv > n/20 {
			t.Errorf("%d packets to non-VIP addresses reached the director: replies are not direct", nv)
		}
		// A client may reuse a source port for a later connection: that
		// 5-tuple finds its earlier entry (and the same real), so a few
		// connections are no new flow.
		if nf := after[loader.CTMiss] - before[loader.CTMiss]; nf < n*9/10 {
			t.Errorf("%d new flows for %d connections", nf, n)
		}
		t.Logf("%s: %d connections, %d packets forwarded, %d non-VIP packets seen",
			mode, n, after[loader.TX]-before[loader.TX], after[loader.PassNotVIP]-before[loader.PassNotVIP])

		const n6 = 300
		url6 := fmt.Sprintf("http://%s/", netip.AddrPortFrom(top.VIP6(), topo.WebPort))
		within(t, spread(ctx, t, top.Clients(), n6, url6), n6, "rs1", "rs2", "rs3")
	})
}

// echoConn is a long-lived TCP connection to a real's echo port, through
// the VIP.
type echoConn struct {
	c      net.Conn
	r      *bufio.Reader
	server string
}

func dialEcho(ctx context.Context, h *topo.Host, src netip.Addr, vip netip.Addr) (*echoConn, error) {
	c, err := h.DialFrom(ctx, src, "tcp", netip.AddrPortFrom(vip, topo.EchoPort).String())
	if err != nil {
		return nil, err
	}
	e := &echoConn{c: c, r: bufio.NewReader(c)}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	greeting, err := e.r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	for _, f := range strings.Fields(greeting) {
		if s, ok := strings.CutPrefix(f, "server="); ok {
			e.server = s
		}
	}
	return e, nil
}

func (e *echoConn) roundTrip(msg string) error {
	e.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(e.c, msg+"\n"); err != nil {
		return err
	}
	got, err := e.r.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(got) != msg {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

// Long-lived connections keep their real when a fourth real joins and the
// table moves a quarter of its slots to it; new connections reach it.
// Then a real is removed: its new flows go elsewhere.
func TestDataplaneTableChanges(t *testing.T) {
	forModes(t, func(t *testing.T, mode topo.XDPMode) {
		spec := topo.DRSpec(1, 1, 4)
		spec.XDPMode = mode
		spec.Hosts[0].Addrs = 4
		top := topo.NewT(t, spec)
		ctx := topo.Context(t, 90*time.Second)
		reals := top.Reals()
		for _, r := range reals {
			if _, err := top.StartWebserver(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		l := startLB(t, top, top.Directors()[0], mode)
		k := loader.VIPKey{Addr: top.VIP4(), Port: 0, Proto: loader.TCP} // every port: web and echo
		l.service(t, k, reals[:3]...)
		cl := top.Clients()[0]

		// 40 streams from four source addresses.
		var streams []*echoConn
		for i := 0; i < 40; i++ {
			e, err := dialEcho(ctx, cl, cl.Addrs4[i%len(cl.Addrs4)], top.VIP4())
			if err != nil {
				t.Fatalf("stream %d: %v", i, err)
			}
			defer e.c.Close()
			if e.server == "rs4" {
				t.Fatalf("stream %d reached rs4 before it joined", i)
			}
			streams = append(streams, e)
		}

		l.addReal(t, k, reals[3])
		// The test means something only if the new table sends some of
		// these flows elsewhere: count the streams whose table slot moved.
		moved := 0
		svc, _ := l.bal.Service(k)
		table, err := l.dp.Table(svc.ID)
		if err != nil {
			t.Fatal(err)
		}
		rs4ID := loader.NoReal
		for _, r := range svc.Reals {
			if r.Addr == reals[3].Addr4() {
				rs4ID = r.ID
			}
		}
		for _, e := range streams {
			la := netip.MustParseAddrPort(e.c.LocalAddr().String())
			f := loader.Flow{Src: la.Addr(), Dst: top.VIP4(), SrcPort: la.Port(), DstPort: topo.EchoPort, Proto: loader.TCP}
			if table[loader.FlowHash(f, 0, false)%uint32(len(table))] == rs4ID {
				moved++
			}
		}
		if moved == 0 {
			t.Fatal("no stream's slot moved to rs4: the test would prove nothing")
		}
		for i, e := range streams {
			if err := e.roundTrip(fmt.Sprintf("after rs4 joined %d", i)); err != nil {
				t.Fatalf("stream %d (on %s) broke when rs4 joined: %v", i, e.server, err)
			}
		}
		t.Logf("%s: %d of %d streams' slots moved to rs4; all kept their real", mode, moved, len(streams))

		url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(top.VIP4(), topo.WebPort))
		counts := spread(ctx, t, []*topo.Host{cl}, 400, url)
		within(t, counts, 400, "rs1", "rs2", "rs3", "rs4")

		// rs1 removed: nothing new reaches it, nothing fails.
		if err := l.bal.RemoveReal(k, reals[0].Addr4()); err != nil {
			t.Fatal(err)
		}
		counts = spread(ctx, t, []*topo.Host{cl}, 300, url)
		within(t, counts, 300, "rs2", "rs3", "rs4")
		// The streams of the other reals are untouched.
		for i, e := range streams {
			if e.server == "rs1" {
				continue
			}
			if err := e.roundTrip(fmt.Sprintf("after rs1 left %d", i)); err != nil {
				t.Fatalf("stream %d (on %s) broke when rs1 left: %v", i, e.server, err)
			}
		}
	})
}
