package vmtests

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/directorlb/director/vmtests/topo"
)

// The lighttpd seed's cluster with director in every role: a director
// pair in DR mode in front of two `director l7` proxies (the VIP on their
// lo) in front of three web servers; and the same with the HTTP tier on
// the director itself (mode local).

// session is one user: a source address and a cookie jar; each request
// is a new connection, so a new flow the director may send to either
// proxy.
type session struct {
	src    netip.Addr
	client *http.Client
	server string // the web server it is stuck to
}

func newSessions(t *testing.T, cl *topo.Host) []*session {
	var ss []*session
	for _, src := range cl.Addrs4 {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		c := cl.HTTPClient(src)
		c.Jar = jar
		ss = append(ss, &session{src: src, client: c})
	}
	return ss
}

// requests sends n requests on the session and checks that each is
// answered, by one web server, which saw the client's address in
// X-Forwarded-For. It returns that server.
func (s *session) requests(ctx context.Context, t *testing.T, url string, n int) string {
	t.Helper()
	servers := map[string]int{}
	for i := 0; i < n; i++ {
		who, err := whoAmI(ctx, s.client, url)
		if err != nil {
			t.Fatalf("session %v: request %d: %v", s.src, i, err)
		}
		if who.XFF != s.src.String() {
			t.Fatalf("session %v: X-Forwarded-For %q at %s", s.src, who.XFF, who.Server)
		}
		servers[who.Server]++
	}
	if len(servers) != 1 {
		t.Fatalf("session %v was not sticky over %d requests: %v", s.src, n, servers)
	}
	for name := range servers {
		return name
	}
	return ""
}

// startProxy runs `director l7` on h with configs/proxy.yaml and waits
// until it answers on h's own address.
func startProxy(ctx context.Context, t *testing.T, h *topo.Host) *topo.Process {
	t.Helper()
	bin, err := topo.GoBuild("github.com/directorlb/director/cmd/director")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "proxy.yaml")
	src, err := os.ReadFile(filepath.Join("..", "configs", "proxy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	src = append(src, fmt.Sprintf("\ncontrol_socket: %s\n", filepath.Join(dir, "director.sock"))...)
	if err := os.WriteFile(cfg, src, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := h.Start(topo.ProcSpec{Name: "director-l7", Path: bin, Args: []string{"l7", "--config", cfg}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(h.Addr4(), topo.WebPort))
	if err := h.WaitHTTP(ctx, url); err != nil {
		t.Fatalf("%v\n%s", err, p.Log())
	}
	return p
}

// statsCSV reads a stats page's ;csv from h (user admin of the example
// configs) as HAProxy tooling does: rows by "pxname/svname", each a map of
// column to value.
func statsCSV(ctx context.Context, t *testing.T, h *topo.Host, url string) map[string]map[string]string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", "director")
	resp, err := h.HTTPClient(netip.Addr{}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(body), "# "))).ReadAll()
	if err != nil || resp.StatusCode != 200 || len(recs) == 0 {
		t.Fatalf("%s: %d %v\n%s", url, resp.StatusCode, err, body)
	}
	rows := map[string]map[string]string{}
	for _, r := range recs[1:] {
		row := map[string]string{}
		for i, c := range recs[0] {
			if i < len(r) {
				row[c] = r[i]
			}
		}
		rows[row["pxname"]+"/"+row["svname"]] = row
	}
	return rows
}

func TestTwoTier(t *testing.T) {
	spec := topo.ProxySpec(1, 2, 2, 3)
	spec.XDPMode = topo.XDPGeneric
	for i := range spec.Hosts {
		switch spec.Hosts[i].Role {
		case topo.RoleDirector:
			spec.Hosts[i].NoVIP = true // VRRP puts it on the master
		case topo.RoleClient:
			spec.Hosts[i].Addrs = 4
		}
	}
	top := topo.NewT(t, spec)
	ctx := topo.Context(t, 4*time.Minute)
	webs := map[string]*topo.WebServer{}
	for _, h := range top.Servers() {
		w, err := top.StartWebserver(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		webs[h.Name] = w
	}
	proxies := map[string]*topo.Process{}
	for _, h := range top.Reals() {
		proxies[h.Name] = startProxy(ctx, t, h)
	}
	dir1, dir2 := top.Host("dir1"), top.Host("dir2")
	a1 := startAgent(t, top, dir1, "two-tier.yaml")
	startAgent(t, top, dir2, "two-tier-backup.yaml")
	err := topo.WaitFor(ctx, 15*time.Second, "dir1 holding the VIP", func() (bool, error) {
		return dir1.HasAddr(dir1.Iface, top.VIP4())
	})
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(top.VIP4(), topo.WebPort))
	sessions := newSessions(t, top.Clients()[0])

	t.Run("sticky end to end over both proxies", func(t *testing.T) {
		stuck := map[string]int{}
		for _, s := range sessions {
			s.server = s.requests(ctx, t, url, 100)
			stuck[s.server]++
		}
		reals, err := a1.ctl.Reals(ctx, "proxies")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reals {
			if r.NewFlows == 0 {
				t.Errorf("proxy %s carried no flow: %+v", r.Address, reals)
			}
		}
		t.Logf("%d sessions of 100 requests (a new connection each), stuck to %v; proxies' new flows %d and %d",
			len(sessions), stuck, reals[0].NewFlows, reals[1].NewFlows)

		// Each proxy's stats page, as HAProxy tooling reads it.
		total := 0
		for _, name := range []string{"px1", "px2"} {
			px := top.Host(name)
			rows := statsCSV(ctx, t, px, fmt.Sprintf("http://%s:8404/stats;csv", px.Addr4()))
			for _, want := range []string{"www/FRONTEND", "web/web1", "web/web2", "web/web3", "web/BACKEND"} {
				if rows[want] == nil {
					t.Errorf("%s stats;csv has no %s row: %v", name, want, rows)
				}
			}
			n, _ := strconv.Atoi(rows["www/FRONTEND"]["req_tot"])
			total += n
		}
		if total < 400 {
			t.Errorf("the proxies' frontends counted %d requests, want >= 400", total)
		}
		t.Logf("the proxies' stats pages count %d requests on their frontends", total)
	})

	t.Run("a proxy killed", func(t *testing.T) {
		px1 := top.Host("px1")
		start := time.Now()
		if err := proxies["px1"].Kill(); err != nil {
			t.Fatal(err)
		}
		err := topo.WaitFor(ctx, 20*time.Second, "px1 marked down", func() (bool, error) {
			reals, err := a1.ctl.Reals(ctx, "proxies")
			if err != nil {
				return false, err
			}
			for _, r := range reals {
				if r.Address == px1.Addr4().String() {
					return r.State == "down", nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("px1 killed: the director's check took it out after %v (tcp, inter 2s fall 3)", time.Since(start).Round(time.Millisecond))
		// Every session goes on through px2, on its own web server: the
		// cookie names the web server, not the proxy.
		for _, s := range sessions {
			if got := s.requests(ctx, t, url, 50); got != s.server {
				t.Errorf("session %v moved from %s to %s", s.src, s.server, got)
			}
		}
	})

	t.Run("a web server killed", func(t *testing.T) {
		victim := sessions[0].server
		if err := webs[victim].Kill(); err != nil {
			t.Fatal(err)
		}
		// At once, before any check notices: the proxy's connection is
		// refused, it redispatches and re-sticks the session.
		for _, s := range sessions {
			got := s.requests(ctx, t, url, 50)
			if s.server == victim && got == victim {
				t.Errorf("session %v still on the killed %s", s.src, victim)
			}
			if s.server != victim && got != s.server {
				t.Errorf("session %v moved from %s to %s though its server lives", s.src, s.server, got)
			}
			if s.server == victim {
				t.Logf("session %v: %s killed, redispatched and re-stuck to %s", s.src, victim, got)
			}
			s.server = got
		}
	})
}

func TestLocalMode(t *testing.T) {
	spec := topo.ProxySpec(1, 1, 0, 3)
	spec.XDPMode = topo.XDPGeneric
	spec.Hosts[0].Addrs = 4
	top := topo.NewT(t, spec)
	ctx := topo.Context(t, 3*time.Minute)
	webs := map[string]*topo.WebServer{}
	for _, h := range top.Servers() {
		w, err := top.StartWebserver(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		webs[h.Name] = w
	}
	a := startAgent(t, top, top.Directors()[0], "local.yaml")
	url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(top.VIP4(), topo.WebPort))
	sessions := newSessions(t, top.Clients()[0])
	stuck := map[string]int{}
	for _, s := range sessions {
		s.server = s.requests(ctx, t, url, 100)
		stuck[s.server]++
	}
	st, err := a.ctl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Packets["pass_local"] == 0 {
		t.Errorf("XDP passed no packet of the local VIP to the stack: %v", st.Packets)
	}
	t.Logf("mode local: %d sessions of 100 requests stuck to %v; XDP pass_local %d", len(sessions), stuck, st.Packets["pass_local"])
	// The agent's stats page shows its HTTP tier.
	d := top.Directors()[0]
	rows := statsCSV(ctx, t, d, "http://127.0.0.1:8404/stats;csv")
	if n, _ := strconv.Atoi(rows["www/FRONTEND"]["req_tot"]); n < 400 || rows["web/web1"] == nil || rows["web/BACKEND"] == nil {
		t.Errorf("the agent's stats;csv: www/FRONTEND %v, web rows %v %v", rows["www/FRONTEND"], rows["web/web1"], rows["web/BACKEND"])
	}
	victim := sessions[0].server
	if err := webs[victim].Kill(); err != nil {
		t.Fatal(err)
	}
	for _, s := range sessions {
		got := s.requests(ctx, t, url, 30)
		if (s.server == victim) == (got == s.server) {
			t.Errorf("session %v: %s -> %s after %s was killed", s.src, s.server, got, victim)
		}
	}
}
