package vmtests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/directorlb/director/director/api"
	"github.com/directorlb/director/loader"
	"github.com/directorlb/director/vmtests/topo"
)

// The agent as users run it: `director run` in the director's namespace
// with a config from configs/, real web servers, real clients.

// agentRun is a director agent process and its control client.
type agentRun struct {
	t       *testing.T
	top     *topo.Topology
	host    *topo.Host
	bin     string
	config  string
	proc    *topo.Process
	ctl     *api.Client
	pinRoot string
}

// startAgent runs `director run` on host with the example config name,
// made to use a private control socket and state file, after the edits
// (functions of the config's text).
func startAgent(t *testing.T, top *topo.Topology, host *topo.Host, example string, edits ...func(string) string) *agentRun {
	t.Helper()
	bin, err := topo.GoBuild("github.com/directorlb/director/cmd/director")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join("..", "configs", example))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	socket := filepath.Join(dir, "director.sock")
	cfg := filepath.Join(dir, example)
	body := string(src)
	for _, e := range edits {
		body = e(body)
	}
	body += fmt.Sprintf("\ncontrol_socket: %s\n", socket)
	// The metrics port is per network namespace: no clash between runs.
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	root := fmt.Sprintf("/sys/fs/bpf/%s-%s", top.Prefix, host.Name)
	a := &agentRun{t: t, top: top, host: host, bin: bin, config: cfg, ctl: api.NewClient(socket), pinRoot: root}
	t.Cleanup(func() {
		if a.proc != nil {
			a.proc.Stop(5 * time.Second)
		}
		host.Do(func() error { return loader.Teardown(root, host.Iface) })
		os.RemoveAll(root)
	})
	a.start()
	return a
}

func (a *agentRun) start() {
	a.t.Helper()
	p, err := a.host.Start(topo.ProcSpec{Name: "director", Path: a.bin, Args: []string{"--log-level", "debug", "run", "--config", a.config, "--pin-root", a.pinRoot}})
	if err != nil {
		a.t.Fatal(err)
	}
	a.proc = p
	ctx := topo.Context(a.t, 20*time.Second)
	err = topo.WaitFor(ctx, 20*time.Second, "agent answers ctl with every real up", func() (bool, error) {
		if p.Exited() {
			return false, topo.Permanent(fmt.Errorf("agent exited: %v\n%s", p.Err(), p.Log()))
		}
		vips, err := a.ctl.VIPs(ctx)
		if err != nil || len(vips) == 0 {
			return false, nil
		}
		for _, v := range vips {
			if v.Mode == "l4" && v.RealsUp != v.Reals {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		a.t.Fatalf("%v\n%s", err, p.Log())
	}
}

// load sends requests without pause from the client, each on a new
// connection, until stop; it counts answers per server and failures.
type load struct {
	mu       sync.Mutex
	answers  []answer
	failures []failure
	total    atomic.Int64
	stop     chan struct{}
	done     chan struct{}
}

// answer is one request: when it started and who answered.
type answer struct {
	start  time.Time
	server string
}

type failure struct {
	start time.Time
	err   string
}

func startLoad(ctx context.Context, h *topo.Host, url string, workers int) *load {
	l := &load{stop: make(chan struct{}), done: make(chan struct{})}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := h.HTTPClient(h.Addrs4[w%len(h.Addrs4)])
			c.Transport.(*http.Transport).DisableKeepAlives = true
			c.Timeout = 5 * time.Second
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				start := time.Now()
				who, err := whoAmI(ctx, c, url)
				l.mu.Lock()
				if err != nil {
					l.failures = append(l.failures, failure{start, err.Error()})
				} else {
					l.answers = append(l.answers, answer{start, who.Server})
				}
				l.mu.Unlock()
				l.total.Add(1)
			}
		}(w)
	}
	go func() { wg.Wait(); close(l.done) }()
	return l
}

// since counts, per server, the requests that started at or after t, and
// lists those of them that failed.
func (l *load) since(t time.Time) (map[string]int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := map[string]int{}
	for _, a := range l.answers {
		if !a.start.Before(t) {
			s[a.server]++
		}
	}
	var failed []string
	for _, f := range l.failures {
		if !f.start.Before(t) {
			failed = append(failed, f.err)
		}
	}
	return s, failed
}

func (l *load) finish(t time.Time) (map[string]int, []string) {
	close(l.stop)
	<-l.done
	return l.since(t)
}

// waitRequests waits until n more requests were answered.
func (l *load) waitRequests(t *testing.T, n int64) {
	t.Helper()
	target := l.total.Load() + n
	ctx := topo.Context(t, 30*time.Second)
	if err := topo.WaitFor(ctx, 30*time.Second, fmt.Sprintf("%d requests", n), func() (bool, error) {
		return l.total.Load() >= target, nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestAgentSingleDirector(t *testing.T) {
	spec := topo.DRSpec(1, 1, 3)
	spec.XDPMode = topo.XDPGeneric // as configs/single.yaml asks
	spec.Hosts[0].Addrs = 4
	top := topo.NewT(t, spec)
	ctx := topo.Context(t, 3*time.Minute)
	webs := map[string]*topo.WebServer{}
	for _, r := range top.Reals() {
		w, err := top.StartWebserver(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		webs[r.Name] = w
	}
	a := startAgent(t, top, top.Directors()[0], "single.yaml")
	cl := top.Clients()[0]
	url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(top.VIP4(), topo.WebPort))
	vip := "web"

	t.Run("spread", func(t *testing.T) {
		within(t, spread(ctx, t, []*topo.Host{cl}, 600, url), 600, "rs1", "rs2", "rs3")
	})

	t.Run("IPv6 reals pass their checks", func(t *testing.T) {
		// The director's IPv6 VIP is deprecated on its interface (as VRRP
		// adds it), so checks leave from its own address: from the VIP,
		// which the reals hold on lo, no answer would come back.
		err := topo.WaitFor(ctx, 15*time.Second, "web6's reals checked ok", func() (bool, error) {
			reals, err := a.ctl.Reals(ctx, "web6")
			if err != nil || len(reals) != 3 {
				return false, err
			}
			for _, r := range reals {
				if r.State != "up" || !strings.HasPrefix(r.LastCheck, "ok") || r.CheckStatus != "L7OK" || r.CheckCode != 200 {
					return false, fmt.Errorf("%s: %s, last check %q (%s %d)", r.Address, r.State, r.LastCheck, r.CheckStatus, r.CheckCode)
				}
			}
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a failing web server leaves within the fall window", func(t *testing.T) {
		l := startLoad(ctx, cl, url, 4)
		l.waitRequests(t, 200)
		rs2 := top.Host("rs2")
		start := time.Now()
		if err := webs["rs2"].SetHealthy(false); err != nil { // /check.txt answers 503
			t.Fatal(err)
		}
		err := topo.WaitFor(ctx, 30*time.Second, "rs2 marked down", func() (bool, error) {
			reals, err := a.ctl.Reals(ctx, vip)
			if err != nil {
				return false, err
			}
			for _, r := range reals {
				if r.Address == rs2.Addr4().String() {
					return r.State == "down", nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		down := time.Now()
		detect := down.Sub(start)
		l.waitRequests(t, 300)
		// A connection in flight to rs2 when it is marked down is
		// re-picked and reset (a down real loses its flows); every
		// request started after that must succeed.
		servers, failures := l.finish(down)
		if servers["rs2"] != 0 {
			t.Errorf("rs2 answered %d requests after it was marked down: %v", servers["rs2"], servers)
		}
		if len(failures) > 0 {
			t.Errorf("%d requests failed, first: %s", len(failures), failures[0])
		}
		reals, _ := a.ctl.Reals(ctx, vip)
		for _, r := range reals {
			if r.Address == rs2.Addr4().String() && (!strings.Contains(r.Cause, "503") || r.CheckStatus != "L7STS" || r.CheckCode != 503) {
				t.Errorf("rs2's cause is %q, check status %s %d; want the status, L7STS 503", r.Cause, r.CheckStatus, r.CheckCode)
			}
		}
		// single.yaml: inter 2s, fall 5: about 8-10 s to go down.
		t.Logf("rs2 failing its check was taken out after %v", detect.Round(time.Millisecond))
		if err := webs["rs2"].SetHealthy(true); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ctl drain and remove under traffic", func(t *testing.T) {
		err := topo.WaitFor(ctx, 30*time.Second, "rs2 back up", func() (bool, error) {
			vips, err := a.ctl.VIPs(ctx)
			return err == nil && len(vips) > 0 && vips[0].RealsUp == 3, err
		})
		if err != nil {
			t.Fatal(err)
		}
		l := startLoad(ctx, cl, url, 4)
		l.waitRequests(t, 100)
		rs1 := top.Host("rs1").Addr4()
		if err := a.ctl.DrainReal(ctx, vip, rs1); err != nil {
			t.Fatal(err)
		}
		drained := time.Now()
		r0, _ := a.ctl.Reals(ctx, vip)
		l.waitRequests(t, 300)
		servers, _ := l.since(drained)
		r1, _ := a.ctl.Reals(ctx, vip)
		// No new flow picked rs1 from the table either (a SYN reusing a
		// drained flow's 5-tuple is picked afresh).
		if r0[0].Address != rs1.String() || r1[0].NewFlows != r0[0].NewFlows {
			t.Errorf("drained %s: new flows %d -> %d", r0[0].Address, r0[0].NewFlows, r1[0].NewFlows)
		}
		if servers["rs1"] != 0 {
			t.Errorf("drained rs1 got %d new connections: %v", servers["rs1"], servers)
		}
		if err := a.ctl.RemoveReal(ctx, vip, top.Host("rs3").Addr4()); err != nil {
			t.Fatal(err)
		}
		removed := time.Now()
		l.waitRequests(t, 300)
		servers, _ = l.finish(removed)
		if servers["rs3"] != 0 || servers["rs1"] != 0 {
			t.Errorf("after drain rs1 and remove rs3: %v", servers)
		}
		// Drain and graceful removal fail no request at all.
		_, failures := l.since(time.Time{})
		if len(failures) > 0 {
			t.Errorf("%d requests failed, first: %s", len(failures), failures[0])
		}
		for _, op := range []func() error{
			func() error { return a.ctl.EnableReal(ctx, vip, rs1) },
			func() error { return a.ctl.AddReal(ctx, vip, top.Host("rs3").Addr4(), nil) },
		} {
			if err := op(); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("agent killed and restarted under traffic", func(t *testing.T) {
		l := startLoad(ctx, cl, url, 4)
		l.waitRequests(t, 100)
		if err := a.proc.Kill(); err != nil {
			t.Fatal(err)
		}
		a.proc.Wait(ctx)
		l.waitRequests(t, 200) // forwarding goes on with no agent
		a.start()
		l.waitRequests(t, 200)
		servers, failures := l.finish(time.Time{})
		if len(failures) > 0 {
			t.Errorf("%d of %d requests failed across the kill and restart, first: %s", len(failures), l.total.Load(), failures[0])
		}
		t.Logf("%d requests across SIGKILL and restart, answered by %v", l.total.Load(), servers)
	})

	t.Run("ctl binary, good and bad input", func(t *testing.T) { testCtlCLI(ctx, t, top, a, vip) })
	t.Run("ctl change latency", func(t *testing.T) { testChangeLatency(ctx, t, top, a, vip) })
	t.Run("metrics", func(t *testing.T) { testMetrics(ctx, t, a, vip) })

	t.Run("reload with an invalid file changes nothing", func(t *testing.T) {
		before, _ := a.ctl.Reals(ctx, vip)
		good, _ := os.ReadFile(a.config)
		if err := os.WriteFile(a.config, append(good, []byte("\nbogus_key: 1\n")...), 0o600); err != nil {
			t.Fatal(err)
		}
		err := a.ctl.Reload(ctx)
		if err == nil || !strings.Contains(err.Error(), "bogus_key") {
			t.Fatalf("reload of an invalid file: %v", err)
		}
		// SIGHUP too.
		if err := a.proc.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		if err := a.proc.WaitLog(ctx, "SIGHUP reload"); err != nil {
			t.Fatal(err)
		}
		after, _ := a.ctl.Reals(ctx, vip)
		b1, _ := json.Marshal(stripTimes(before))
		b2, _ := json.Marshal(stripTimes(after))
		if string(b1) != string(b2) {
			t.Fatalf("reals changed:\n%s\n%s", b1, b2)
		}
		os.WriteFile(a.config, good, 0o600)
	})

	t.Run("a real's MAC changes", func(t *testing.T) { testMACChange(ctx, t, top, a, vip, url) })
}

func stripTimes(rs []api.Real) []api.Real {
	out := make([]api.Real, len(rs))
	for i, r := range rs {
		r.Since, r.Latency, r.LastCheck, r.Counters = time.Time{}, 0, "", api.Counters{}
		r.CheckStatus, r.CheckCode = "", 0
		out[i] = r
	}
	return out
}
