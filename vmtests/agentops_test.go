package vmtests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/vishvananda/netlink"

	"github.com/directorlb/director/director/api"
	"github.com/directorlb/director/vmtests/topo"
)

// What an operator does with a running agent besides traffic: the ctl
// binary with good and bad input, the time a change takes to reach the
// dataplane, the Prometheus metrics, and a real server whose MAC changes.

// ctlRun runs `director ctl` against the agent and returns its output and
// exit code.
func (a *agentRun) ctlRun(ctx context.Context, args ...string) (string, int) {
	cmd := exec.CommandContext(ctx, a.bin, append([]string{"ctl", "--socket", a.ctlSocket()}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out.String(), exit.ExitCode()
	}
	if err != nil {
		a.t.Fatalf("ctl %v: %v", args, err)
	}
	return out.String(), 0
}

func (a *agentRun) ctlSocket() string { return filepath.Join(filepath.Dir(a.config), "director.sock") }

func testCtlCLI(ctx context.Context, t *testing.T, top *topo.Topology, a *agentRun, vip string) {
	out, code := a.ctlRun(ctx, "status")
	if code != 0 || !strings.Contains(out, "reals up") || !strings.Contains(out, "XDP generic") {
		t.Errorf("ctl status: exit %d\n%s", code, out)
	}
	out, code = a.ctlRun(ctx, "vip", "list")
	if code != 0 || !strings.Contains(out, "web") || !strings.Contains(out, "10.99.0.100:80/tcp") {
		t.Errorf("ctl vip list: exit %d\n%s", code, out)
	}
	out, code = a.ctlRun(ctx, "--json", "real", "list", vip)
	var cli []api.Real
	if err := json.Unmarshal([]byte(out), &cli); code != 0 || err != nil {
		t.Fatalf("ctl --json real list: exit %d, %v\n%s", code, err, out)
	}
	apiReals, err := a.ctl.Reals(ctx, vip)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(stripTimes(cli)), mustJSON(stripTimes(apiReals)); a != b {
		t.Errorf("ctl --json real list differs from the API:\n%s\n%s", a, b)
	}

	rs1 := top.Host("rs1").Addr4().String()
	bad := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"real", "add", "nosuch", "10.99.0.60"}, 1, "not found"},
		{[]string{"real", "add", vip, "10.99.0.999"}, 2, "not an IP address"},
		{[]string{"real", "add", vip, rs1}, 1, "already exists"},
		{[]string{"real", "add", vip, "192.0.2.7"}, 1, "subnet"},
		{[]string{"real", "weight", vip, rs1, "300"}, 1, "weight"},
		{[]string{"real", "weight", vip, rs1, "x"}, 2, "not a number"},
		{[]string{"real", "drain", vip, "10.99.0.61"}, 1, "not found"},
		{[]string{"real", "remove", vip}, 2, "usage"},
	}
	for _, b := range bad {
		before, _ := a.ctl.Reals(ctx, vip)
		out, code := a.ctlRun(ctx, b.args...)
		if code != b.code || !strings.Contains(out, b.want) {
			t.Errorf("ctl %s: exit %d, %q; want exit %d and %q", strings.Join(b.args, " "), code, strings.TrimSpace(out), b.code, b.want)
		}
		after, _ := a.ctl.Reals(ctx, vip)
		if mustJSON(stripTimes(before)) != mustJSON(stripTimes(after)) {
			t.Errorf("ctl %s changed the reals", strings.Join(b.args, " "))
		}
	}
	// No agent: exit 3 and a message that says so.
	cmd := exec.CommandContext(ctx, a.bin, "ctl", "--socket", filepath.Join(t.TempDir(), "none.sock"), "status")
	msg, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(string(msg), "agent running") {
		t.Errorf("ctl without an agent: %v, %q", err, msg)
	}
}

// testChangeLatency times ctl changes: the API answers once the change is
// in the dataplane's maps, so the round trip bounds the time a change
// takes to reach it. Reported, not asserted: this machine is shared.
func testChangeLatency(ctx context.Context, t *testing.T, top *topo.Topology, a *agentRun, vip string) {
	rs1 := top.Host("rs1").Addr4()
	var apiTimes, cliTimes []time.Duration
	for i := 0; i < 20; i++ {
		w := uint32(1 + i%2)
		start := time.Now()
		if err := a.ctl.SetWeight(ctx, vip, rs1, w); err != nil {
			t.Fatal(err)
		}
		apiTimes = append(apiTimes, time.Since(start))
		start = time.Now()
		if out, code := a.ctlRun(ctx, "real", "weight", vip, rs1.String(), fmt.Sprint(3-w)); code != 0 {
			t.Fatalf("ctl real weight: %d %s", code, out)
		}
		cliTimes = append(cliTimes, time.Since(start))
	}
	if err := a.ctl.SetWeight(ctx, vip, rs1, 1); err != nil {
		t.Fatal(err)
	}
	slices.Sort(apiTimes)
	slices.Sort(cliTimes)
	t.Logf("ctl change to the dataplane (weight: a Maglev rebuild and table swap): API round trip median %v max %v; `director ctl` process median %v max %v (20 each)",
		apiTimes[10].Round(10*time.Microsecond), apiTimes[19].Round(10*time.Microsecond),
		cliTimes[10].Round(10*time.Microsecond), cliTimes[19].Round(10*time.Microsecond))
}

func testMetrics(ctx context.Context, t *testing.T, a *agentRun, vip string) {
	// Every real checked at least once since the agent (re)started.
	err := topo.WaitFor(ctx, 10*time.Second, "a check of every real", func() (bool, error) {
		reals, err := a.ctl.Reals(ctx, vip)
		if err != nil {
			return false, err
		}
		for _, r := range reals {
			if r.LastCheck == "" {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	vips, err := a.ctl.VIPs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	code, body, err := a.host.Get(ctx, netip.MustParseAddr("127.0.0.1"), "http://127.0.0.1:9110/metrics")
	if err != nil || code != 200 {
		t.Fatalf("metrics: %d %v", code, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		f := fams[name]
		if f == nil {
			return 0, false
		}
	metrics:
		for _, m := range f.Metric {
			for k, v := range labels {
				found := false
				for _, l := range m.Label {
					if l.GetName() == k && l.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			}
		}
		return 0, false
	}
	// Counters read at scrape time, after ctl's: at least as large.
	for name, min := range map[string]uint64{
		"director_vip_packets_total":   vips[0].Packets,
		"director_vip_bytes_total":     vips[0].Bytes,
		"director_vip_new_flows_total": vips[0].NewFlows,
	} {
		v, ok := value(name, map[string]string{"vip": vip})
		if !ok || v < float64(min) || v == 0 {
			t.Errorf("%s = %v (present %v), want >= %d and > 0", name, v, ok, min)
		}
	}
	reals, _ := a.ctl.Reals(ctx, vip)
	for _, r := range reals {
		l := map[string]string{"vip": vip, "real": r.Address}
		if v, ok := value("director_real_new_flows_total", l); !ok || v == 0 {
			t.Errorf("new flows of %s: %v %v", r.Address, v, ok)
		}
		if v, ok := value("director_real_state", map[string]string{"vip": vip, "real": r.Address, "state": r.State}); !ok || v != 1 {
			t.Errorf("state %s of %s: %v %v", r.State, r.Address, v, ok)
		}
		if v, ok := value("director_real_check_duration_seconds", l); !ok || v <= 0 || v > 5 {
			t.Errorf("check duration of %s: %v %v (ctl: last check %q, latency %v)", r.Address, v, ok, r.LastCheck, r.Latency)
		}
		if v, ok := value("director_real_weight", l); !ok || v != float64(r.Weight) {
			t.Errorf("weight of %s: %v %v, want %d", r.Address, v, ok, r.Weight)
		}
	}
	for _, name := range []string{"director_xdp_flow_table_hits_total", "director_xdp_flow_table_misses_total"} {
		if v, ok := value(name, nil); !ok || v == 0 {
			t.Errorf("%s = %v (present %v)", name, v, ok)
		}
	}
	for _, reason := range []string{"tx", "pass_not_vip", "drop_malformed", "pass_no_service"} {
		if _, ok := value("director_xdp_packets_total", map[string]string{"reason": reason}); !ok {
			t.Errorf("no director_xdp_packets_total{reason=%q}", reason)
		}
	}
	if v, ok := value("director_xdp_packets_total", map[string]string{"reason": "tx"}); !ok || v < float64(vips[0].Packets) {
		t.Errorf("tx packets %v < the VIP's %d", v, vips[0].Packets)
	}
	t.Logf("metrics: %d families, %d bytes; %s packets %v", len(fams), len(body), vip, model.SampleValue(vips[0].Packets))
}

// testMACChange gives a real server a new MAC, as a replaced NIC or a
// moved VM would, and measures how soon the agent follows it.
func testMACChange(ctx context.Context, t *testing.T, top *topo.Topology, a *agentRun, vip, url string) {
	rs3 := top.Host("rs3")
	mac := net.HardwareAddr{0x02, 0x99, 0x01, 0x00, 0x00, rs3.Addr4().As4()[3]}
	err := rs3.Do(func() error {
		l, err := netlink.LinkByName(rs3.Iface)
		if err != nil {
			return err
		}
		return netlink.LinkSetHardwareAddr(l, mac)
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := pollFor(ctx, 20*time.Second, func() (bool, error) {
		reals, err := a.ctl.Reals(ctx, vip)
		if err != nil {
			return false, err
		}
		for _, r := range reals {
			if r.Address == rs3.Addr4().String() {
				return r.MAC == mac.String() && r.State == "up", nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("the agent did not follow rs3's new MAC %s: %v", mac, err)
	}
	t.Logf("rs3's MAC changed to %s: in the dataplane after %v", mac, d.Round(time.Millisecond))
	// rs3 answers again through the VIP.
	cl := top.Clients()[0]
	counts := spread(ctx, t, []*topo.Host{cl}, 90, url)
	if counts["rs3"] == 0 {
		t.Errorf("rs3 answers nothing after its MAC change: %v", counts)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
