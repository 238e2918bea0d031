package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/directorlb/director/director"
	"github.com/directorlb/director/director/api"
	"github.com/directorlb/director/director/config"
	"github.com/directorlb/director/director/fakedp"
	"github.com/directorlb/director/director/neigh"
	"github.com/directorlb/director/loader"
	"github.com/rs/zerolog"
)

// fakeResolver answers every address with a MAC made from it, from Run's
// goroutine, as the real resolver does.
type fakeResolver struct {
	onChange neigh.ChangeFunc
	ch       chan netip.Addr
}

func (r *fakeResolver) Add(a netip.Addr)    { r.ch <- a }
func (r *fakeResolver) Remove(a netip.Addr) {}
func (r *fakeResolver) Run(ctx context.Context) error {
	for {
		select {
		case a := <-r.ch:
			r.onChange(a, macOf(a), "")
		case <-ctx.Done():
			return nil
		}
	}
}

func macOf(a netip.Addr) net.HardwareAddr {
	b := a.As16()
	return net.HardwareAddr{0x02, 0xaa, b[12], b[13], b[14], b[15]}
}

const baseConfig = `
interfaces:
  - name: eth0
control_socket: %s
vips:
  - name: web
    address: 10.99.0.100
    port: 80
    protocol: tcp
    check: {type: none}
    reals:
      - address: 10.99.0.11
      - address: 10.99.0.12
      - address: 10.99.0.13
`

// harness runs agents over one fake dataplane, as restarts over pinned maps.
type harness struct {
	t      *testing.T
	dir    string
	cfg    string
	socket string
	dp     *fakedp.Dataplane
	stop   func()
	client *api.Client
}

func newHarness(t *testing.T) *harness {
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, cfg: filepath.Join(dir, "director.yaml"), socket: filepath.Join(dir, "d.sock"),
		dp: fakedp.New(loader.Sizes{})}
	h.writeConfig(fmt.Sprintf(baseConfig, h.socket))
	h.client = api.NewClient(h.socket)
	t.Cleanup(func() {
		if h.stop != nil {
			h.stop()
		}
		for _, v := range h.dp.Violations {
			t.Error(v)
		}
	})
	return h
}

func (h *harness) writeConfig(s string) {
	h.t.Helper()
	if err := os.WriteFile(h.cfg, []byte(strings.TrimPrefix(s, "\n")), 0o600); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) options() Options {
	return Options{
		ConfigPath: h.cfg,
		Log:        zerolog.Nop(),
		Links:      config.StaticLinks{"eth0": {netip.MustParsePrefix("10.99.0.0/24")}},
		OpenDataplane: func(config.Interface, *config.Config, zerolog.Logger) (Dataplane, error) {
			return h.dp, nil
		},
		NewResolver: func(_ string, onChange neigh.ChangeFunc, _ zerolog.Logger) (Resolver, error) {
			return &fakeResolver{onChange: onChange, ch: make(chan netip.Addr, 1024)}, nil
		},
		NoVRRP: true,
	}
}

// start runs an agent until the harness stops it or the test ends.
func (h *harness) start() {
	h.t.Helper()
	a, err := New(h.options())
	if err != nil {
		h.t.Fatalf("new agent: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	h.stop = func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("run: %v", err)
		}
		h.stop = nil
	}
	h.waitReals("web", func(rs []api.Real) bool {
		for _, r := range rs {
			if r.MAC == "" {
				return false
			}
		}
		return len(rs) > 0
	})
}

func (h *harness) reals(vip string) map[string]api.Real {
	h.t.Helper()
	rs, err := h.client.Reals(context.Background(), vip)
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]api.Real{}
	for _, r := range rs {
		r.Since, r.Latency, r.LastCheck, r.CheckStatus, r.CheckCode = time.Time{}, 0, "", "", 0
		out[r.Address] = r
	}
	return out
}

func (h *harness) waitReals(vip string, cond func([]api.Real) bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rs, err := h.client.Reals(context.Background(), vip)
		if err == nil && cond(rs) {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("reals of %s never got there: %v %v", vip, rs, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func share(dp *fakedp.Dataplane, addr string) int {
	k := loader.VIPKey{Addr: netip.MustParseAddr("10.99.0.100"), Port: 80, Proto: loader.TCP}
	return dp.Share(k)[netip.MustParseAddr(addr)]
}

func TestCtlChangesReachTheDataplaneAndSurviveRestart(t *testing.T) {
	h := newHarness(t)
	h.start()
	ctx := context.Background()
	rs := h.reals("web")
	if len(rs) != 3 || rs["10.99.0.11"].State != "up" {
		t.Fatalf("reals at start: %v", rs)
	}

	two := uint32(2)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(h.client.AddReal(ctx, "web", netip.MustParseAddr("10.99.0.14"), &two))
	must(h.client.DrainReal(ctx, "10.99.0.100:80/tcp", netip.MustParseAddr("10.99.0.11")))
	must(h.client.SetWeight(ctx, "web", netip.MustParseAddr("10.99.0.12"), 3))
	must(h.client.RemoveReal(ctx, "web", netip.MustParseAddr("10.99.0.13")))

	// Each change is in the dataplane when the call returns.
	rs = h.reals("web")
	if len(rs) != 3 || rs["10.99.0.11"].State != "drain" || rs["10.99.0.12"].Weight != 3 || rs["10.99.0.14"].Weight != 2 {
		t.Fatalf("after changes: %v", rs)
	}
	if share(h.dp, "10.99.0.11") != 0 || share(h.dp, "10.99.0.13") != 0 || share(h.dp, "10.99.0.14") == 0 {
		t.Fatalf("table: %v", h.dp.Share(loader.VIPKey{Addr: netip.MustParseAddr("10.99.0.100"), Port: 80, Proto: loader.TCP}))
	}
	if s12, s14 := share(h.dp, "10.99.0.12"), share(h.dp, "10.99.0.14"); s12*2 < s14*3-10 || s12*2 > s14*3+10 {
		t.Fatalf("weights 3:2 gave %d:%d slots", s12, s14)
	}
	realsBefore, _ := h.dp.Reals()

	// Restart: the changes come back from the state file, on the same ids.
	h.stop()
	h.start()
	if got := h.reals("web"); fmt.Sprint(got) != fmt.Sprint(rs) {
		t.Fatalf("after restart:\n%v\nwant\n%v", got, rs)
	}
	realsAfter, _ := h.dp.Reals()
	if fmt.Sprint(realsAfter) != fmt.Sprint(realsBefore) {
		t.Fatalf("dataplane reals changed across restart:\n%v\n%v", realsBefore, realsAfter)
	}

	// Undo: enable, add back the removed config real.
	must(h.client.EnableReal(ctx, "web", netip.MustParseAddr("10.99.0.11")))
	must(h.client.AddReal(ctx, "web", netip.MustParseAddr("10.99.0.13"), nil))
	if rs := h.reals("web"); len(rs) != 4 || rs["10.99.0.11"].State != "up" {
		t.Fatalf("after undo: %v", rs)
	}
}

func TestCtlBadInputChangesNothing(t *testing.T) {
	h := newHarness(t)
	h.start()
	ctx := context.Background()
	before := fmt.Sprint(h.reals("web"))
	stateBefore, _ := os.ReadFile(h.cfg + ".state")
	w300, w1 := uint32(300), uint32(1)
	cases := []struct {
		name string
		err  error
		is   error
	}{
		{"unknown VIP", h.client.DrainReal(ctx, "nope", netip.MustParseAddr("10.99.0.11")), api.ErrNotFound},
		{"unknown real", h.client.DrainReal(ctx, "web", netip.MustParseAddr("10.99.0.99")), api.ErrNotFound},
		{"duplicate real", h.client.AddReal(ctx, "web", netip.MustParseAddr("10.99.0.11"), &w1), api.ErrConflict},
		{"weight out of range", h.client.SetWeight(ctx, "web", netip.MustParseAddr("10.99.0.11"), 300), api.ErrInvalid},
		{"weight out of range on add", h.client.AddReal(ctx, "web", netip.MustParseAddr("10.99.0.20"), &w300), api.ErrInvalid},
		{"not on a connected subnet", h.client.AddReal(ctx, "web", netip.MustParseAddr("192.0.2.7"), &w1), api.ErrInvalid},
		{"other family", h.client.AddReal(ctx, "web", netip.MustParseAddr("fd00::7"), &w1), api.ErrInvalid},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.is) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.is)
		}
	}
	if after := fmt.Sprint(h.reals("web")); after != before {
		t.Fatalf("bad input changed reals:\n%s\n%s", before, after)
	}
	if stateAfter, _ := os.ReadFile(h.cfg + ".state"); string(stateAfter) != string(stateBefore) {
		t.Fatalf("bad input changed the state file: %q", stateAfter)
	}
}

func TestReload(t *testing.T) {
	h := newHarness(t)
	h.start()
	ctx := context.Background()
	before := fmt.Sprint(h.reals("web"))

	// An invalid file: the error names file, line and key; nothing changes.
	h.writeConfig(fmt.Sprintf(baseConfig, h.socket) + "    bogus: 1\n")
	err := h.client.Reload(ctx)
	if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "director.yaml:") || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("invalid reload: %v", err)
	}
	if after := fmt.Sprint(h.reals("web")); after != before {
		t.Fatalf("an invalid reload changed reals:\n%s\n%s", before, after)
	}

	// A valid one: a real leaves, a VIP arrives; the others are untouched.
	ids, _ := h.dp.Reals()
	next := strings.Replace(fmt.Sprintf(baseConfig, h.socket), "      - address: 10.99.0.13\n", "", 1) + `
  - name: dns
    address: 10.99.0.101
    port: 53
    protocol: udp
    check: {type: none}
    reals:
      - address: 10.99.0.11
`
	h.writeConfig(next)
	if err := h.client.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	vips, err := h.client.VIPs(ctx)
	if err != nil || len(vips) != 2 {
		t.Fatalf("VIPs after reload: %v %v", vips, err)
	}
	rs := h.reals("web")
	if len(rs) != 2 {
		t.Fatalf("web after reload: %v", rs)
	}
	after, _ := h.dp.Reals()
	for id, r := range ids {
		if r.Addr == netip.MustParseAddr("10.99.0.13") {
			continue
		}
		if after[id].Addr != r.Addr || after[id].VIPID != r.VIPID {
			t.Fatalf("reload moved real %d: %v -> %v", id, r, after[id])
		}
	}
}

func TestStartRefusesBadConfig(t *testing.T) {
	h := newHarness(t)
	h.writeConfig(fmt.Sprintf(baseConfig, h.socket) + "      - address: 10.99.0.11\n")
	_, err := New(h.options())
	if err == nil || !strings.Contains(err.Error(), "director.yaml:") {
		t.Fatalf("duplicate real: %v", err)
	}
	if vips, _ := h.dp.VIPs(); len(vips) != 0 {
		t.Fatalf("a refused config touched the dataplane: %v", vips)
	}
}

func TestCtlMaint(t *testing.T) {
	h := newHarness(t)
	h.start()
	ctx := context.Background()
	rs11 := netip.MustParseAddr("10.99.0.11")
	k := loader.VIPKey{Addr: netip.MustParseAddr("10.99.0.100"), Port: 80, Proto: loader.TCP}
	idOf := func() uint32 {
		rs, _ := h.dp.Reals()
		for id, r := range rs {
			if r.Addr == rs11 {
				return id
			}
		}
		t.Fatal("10.99.0.11 not in the dataplane")
		return 0
	}

	// Maintenance: no traffic at all, existing flows cut: down in the
	// dataplane, "maint" for ctl, with the operator as the cause.
	if err := h.client.MaintReal(ctx, "web", rs11, true); err != nil {
		t.Fatal(err)
	}
	r := h.reals("web")["10.99.0.11"]
	if r.State != "maint" || !r.Maint || r.Cause != "maint (operator)" {
		t.Fatalf("real in maintenance: %+v", r)
	}
	if dr, _ := h.dp.Real(idOf()); dr.State != loader.RealDown || h.dp.Share(k)[rs11] != 0 {
		t.Fatalf("dataplane: %+v, share %v", dr, h.dp.Share(k))
	}
	st, err := h.client.Status(ctx)
	if err != nil || st.RealsUp != 2 {
		t.Fatalf("status: %+v %v", st, err)
	}

	// Kept across a restart, in the state file.
	h.stop()
	h.start()
	if r := h.reals("web")["10.99.0.11"]; r.State != "maint" {
		t.Fatalf("after restart: %+v", r)
	}

	// Drain under maintenance stays down; maint off leaves it draining;
	// enable clears both.
	if err := h.client.DrainReal(ctx, "web", rs11); err != nil {
		t.Fatal(err)
	}
	if r := h.reals("web")["10.99.0.11"]; r.State != "maint" || !r.Drained {
		t.Fatalf("drained in maintenance: %+v", r)
	}
	if err := h.client.MaintReal(ctx, "web", rs11, false); err != nil {
		t.Fatal(err)
	}
	if r := h.reals("web")["10.99.0.11"]; r.State != "drain" || r.Maint {
		t.Fatalf("out of maintenance, drained: %+v", r)
	}
	if err := h.client.MaintReal(ctx, "web", rs11, true); err != nil {
		t.Fatal(err)
	}
	if err := h.client.EnableReal(ctx, "web", rs11); err != nil {
		t.Fatal(err)
	}
	if r := h.reals("web")["10.99.0.11"]; r.State != "up" || r.Maint || r.Drained || r.Cause != "ready (operator)" {
		t.Fatalf("enabled: %+v", r)
	}
	if h.dp.Share(k)[rs11] == 0 {
		t.Fatalf("enabled real not in the table: %v", h.dp.Share(k))
	}
	if b, _ := os.ReadFile(h.cfg + ".state"); strings.Contains(string(b), "10.99.0.11") {
		t.Fatalf("state file still names the real: %s", b)
	}
	if err := h.client.MaintReal(ctx, "web", netip.MustParseAddr("10.99.0.99"), true); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("maint of an unknown real: %v", err)
	}
}

func TestStatsPageServed(t *testing.T) {
	h := newHarness(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	h.writeConfig(fmt.Sprintf(baseConfig, h.socket) + fmt.Sprintf(`
stats:
  address: %s
  users: [{name: admin, password: pw, admin: true}]
`, addr))
	h.start()
	get := func(path string, auth bool) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		if auth {
			req.SetBasicAuth("admin", "pw")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/stats", false); code != http.StatusUnauthorized {
		t.Fatalf("without credentials: %d", code)
	}
	code, body := get("/stats;csv", true)
	if code != 200 || !strings.Contains(body, "\nweb,10.99.0.11,") || !strings.Contains(body, "\nweb,BACKEND,") {
		t.Fatalf("csv: %d %s", code, body)
	}
}

// The agent answers the L7 operations for its HTTP tier, keeps their
// effect across a reload, and says so when it has no tier.
func TestL7ServerOps(t *testing.T) {
	h := newHarness(t)
	h.start()
	ctx := context.Background()
	if _, err := h.client.L7Servers(ctx); !errors.Is(err, api.ErrNotFound) || !strings.Contains(err.Error(), "no l7 section") {
		t.Fatalf("without an l7 section: %v", err)
	}
	if err := h.client.DrainL7Server(ctx, "app", "s1"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("drain without an l7 section: %v", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bind := l.Addr().String()
	l.Close()
	// withServers writes the config with an l7 section whose backend app
	// has these servers.
	withServers := func(servers ...string) {
		l7 := fmt.Sprintf("l7:\n  frontends:\n    - { name: www, bind: [%q], default_backend: app }\n  backends:\n    - name: app\n      servers:\n", bind)
		for _, s := range servers {
			l7 += fmt.Sprintf("        - { name: %s, address: \"127.0.0.1:%s\" }\n", s, s[1:])
		}
		h.writeConfig(fmt.Sprintf(baseConfig, h.socket) + "\n" + l7)
	}
	withServers("s1", "s2")
	if err := h.client.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		t.Helper()
		ss, err := h.client.L7Servers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range ss {
			out = append(out, fmt.Sprintf("%s/%s %s %d", s.Backend, s.Server, s.State, s.Weight))
		}
		return strings.Join(out, ", ")
	}
	if err := h.client.MaintL7Server(ctx, "app", "s1", true); err != nil {
		t.Fatal(err)
	}
	if err := h.client.SetL7Weight(ctx, "app", "s2", 4); err != nil {
		t.Fatal(err)
	}
	want := "app/s1 MAINT 1, app/s2 no check 4"
	if got := state(); got != want {
		t.Fatalf("after the changes: %s, want %s", got, want)
	}
	if err := h.client.SetL7Weight(ctx, "app", "s2", 300); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("weight 300: %v", err)
	}
	if err := h.client.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := state(); got != want {
		t.Errorf("after a reload: %s, want %s", got, want)
	}

	// Both tiers' changes share the state file and survive a restart.
	if err := h.client.DrainReal(ctx, "web", netip.MustParseAddr("10.99.0.11")); err != nil {
		t.Fatal(err)
	}
	h.stop()
	h.start()
	if got := state(); got != want {
		t.Errorf("after a restart: %s, want %s", got, want)
	}
	if r := h.reals("web")["10.99.0.11"]; r.State != "drain" {
		t.Errorf("the drained real after a restart: %s", r.State)
	}
	// A reload without the server drops its state from the file too.
	withServers("s2")
	if err := h.client.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	saved, err := director.LoadOverrides(director.StatePath(h.cfg))
	if err != nil {
		t.Fatal(err)
	}
	if len(saved.L7) != 1 || saved.L7[0].Server != "s2" || saved.L7[0].Weight != 4 || len(saved.VIPs["web"].Drained) != 1 {
		t.Errorf("state file after the reload: %+v", saved)
	}
}
