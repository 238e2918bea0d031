package l7

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/directorlb/director/director/health"
)

// serverStatus returns the stats line of a backend's server.
func serverStatus(t *testing.T, be *Backend, name string) Stats {
	t.Helper()
	for _, s := range be.Stats().Servers {
		if s.SvName == name {
			return s
		}
	}
	t.Fatalf("no server %s in the stats", name)
	return Stats{}
}

// Maintenance takes a server out even for the clients stuck to it; a
// health event does not bring it back, ready does.
func TestMaintLoopback(t *testing.T) {
	a, b, c := startServer(t, "a"), startServer(t, "b"), startServer(t, "c")
	be, url := startProxy(t, BackendConfig{Name: "web", Servers: servers(a, b, c), Cookie: &CookieConfig{Name: "SRV"}})
	cl := &http.Client{}
	if r := get(t, cl, url, "Cookie", "SRV=b"); r.server != "b" {
		t.Fatalf("sticky to b: went to %s", r.server)
	}
	if err := be.SetMaint("b", true); err != nil {
		t.Fatal(err)
	}
	if err := be.SetMaint("zz", true); err == nil {
		t.Error("SetMaint of an unknown server")
	}
	// b's sticky clients move and stick anew; new clients never get b.
	r := get(t, cl, url, "Cookie", "SRV=b")
	if r.server == "b" || r.setCookie != "SRV="+r.server+"; path=/" {
		t.Fatalf("b in maintenance: cookie b went to %s, Set-Cookie %q", r.server, r.setCookie)
	}
	for range 6 {
		if r := get(t, cl, url); r.server == "b" {
			t.Fatal("new client sent to b in maintenance")
		}
	}
	bs := be.Stats()
	if s := serverStatus(t, be, "b"); s.Status != "MAINT" || bs.Act != 2 || bs.Weight != 2 || bs.Status != "UP" {
		t.Errorf("stats: b %s, backend act %d weight %d %s", s.Status, bs.Act, bs.Weight, bs.Status)
	}

	// The checks go on: b failing and coming back leaves it in
	// maintenance, and a drain under maintenance does not end it.
	for _, to := range []health.State{health.StateDown, health.StateUp} {
		if !be.Observe(health.Event{Key: "web/b", To: to}) {
			t.Fatal("the backend does not take its server's event")
		}
	}
	be.SetDrain("b", true)
	if !be.Up("b") || serverStatus(t, be, "b").Status != "MAINT" {
		t.Fatalf("after a health event: up %v, %s", be.Up("b"), serverStatus(t, be, "b").Status)
	}
	if r := get(t, cl, url, "Cookie", "SRV=b"); r.server == "b" {
		t.Fatal("b back up by its check while in maintenance")
	}

	// Ready: both admin states cleared, b takes its sticky clients and
	// new ones again.
	if err := be.SetAdmin("b", ServerAdmin{Weight: 1}); err != nil {
		t.Fatal(err)
	}
	if r := get(t, cl, url, "Cookie", "SRV=b"); r.server != "b" || r.setCookie != "" {
		t.Fatalf("ready: cookie b went to %s, Set-Cookie %q", r.server, r.setCookie)
	}
	if got := counts(t, cl, url, 6, func(int) string { return "/" }); got["b"] != 2 {
		t.Errorf("b ready: %v", got)
	}
	if s := serverStatus(t, be, "b"); s.Status != "no check" || s.ChkDown != 1 {
		t.Errorf("b ready: %s, chkdown %d", s.Status, s.ChkDown)
	}

	// All in maintenance: the backend is down and answers 503 itself.
	for _, n := range []string{"a", "b", "c"} {
		be.SetMaint(n, true)
	}
	if r := get(t, cl, url, "Cookie", "SRV=a"); r.status != http.StatusServiceUnavailable || be.Stats().Status != "DOWN" {
		t.Errorf("all in maintenance: %d from %q, backend %s", r.status, r.server, be.Stats().Status)
	}
}

// The stats show the current weight and HAProxy's state words.
func TestAdminStateInStats(t *testing.T) {
	be, err := NewBackend(BackendConfig{Name: "web", Servers: []ServerConfig{
		{Name: "a", Addr: "127.0.0.1:1", Weight: 2}, {Name: "b", Addr: "127.0.0.1:2", Checked: true}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := be.SetWeight("a", 7); err != nil {
		t.Fatal(err)
	}
	if s, bs := serverStatus(t, be, "a"), be.Stats(); s.Weight != 7 || s.Status != "no check" || bs.Weight != 8 {
		t.Errorf("weight 7: a %d %s, backend %d", s.Weight, s.Status, bs.Weight)
	}
	for _, c := range []struct {
		name  string
		do    func() error
		a, b  string
		total int
	}{
		{"a weight 0", func() error { return be.SetWeight("a", 0) }, "DRAIN", "UP", 1},
		{"b drained", func() error { return be.SetDrain("b", true) }, "DRAIN", "DRAIN", 0},
		{"b down", func() error { return be.SetUp("b", false) }, "DRAIN", "DOWN", 0},
		{"b in maintenance", func() error { return be.SetMaint("b", true) }, "DRAIN", "MAINT", 0},
		{"both ready", func() error {
			return errors.Join(be.SetAdmin("a", ServerAdmin{Weight: 3}), be.SetAdmin("b", ServerAdmin{Weight: 1}), be.SetUp("b", true))
		}, "no check", "UP", 4},
	} {
		if err := c.do(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		a, b, bs := serverStatus(t, be, "a"), serverStatus(t, be, "b"), be.Stats()
		if a.Status != c.a || b.Status != c.b || bs.Weight != c.total {
			t.Errorf("%s: a %s, b %s, backend weight %d; want %s %s %d", c.name, a.Status, b.Status, bs.Weight, c.a, c.b, c.total)
		}
	}
	if err := be.SetAdmin("a", ServerAdmin{Maint: true, Weight: 257}); err == nil || serverStatus(t, be, "a").Status == "MAINT" {
		t.Errorf("SetAdmin with weight 257: %v, a %s", err, serverStatus(t, be, "a").Status)
	}
}

// KeepAdmin carries the admin state over to the backend of a reload, by
// server name, as HAProxy's server-state-file does.
func TestKeepAdmin(t *testing.T) {
	old, err := NewBackend(BackendConfig{Name: "web", Servers: []ServerConfig{
		{Name: "a", Addr: "127.0.0.1:1"}, {Name: "b", Addr: "127.0.0.1:2"}, {Name: "c", Addr: "127.0.0.1:3", Weight: 2},
		{Name: "gone", Addr: "127.0.0.1:4"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{old.SetMaint("a", true), old.SetWeight("a", 5), old.SetDrain("b", true),
		old.SetWeight("c", 9), old.SetMaint("gone", true)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	// c's configured weight changes, d is new.
	next, err := NewBackend(BackendConfig{Name: "web", Servers: []ServerConfig{
		{Name: "a", Addr: "127.0.0.1:11"}, {Name: "b", Addr: "127.0.0.1:2"}, {Name: "c", Addr: "127.0.0.1:3", Weight: 4},
		{Name: "d", Addr: "127.0.0.1:5"}}})
	if err != nil {
		t.Fatal(err)
	}
	next.KeepAdmin(old)
	for name, want := range map[string]ServerAdmin{
		"a": {Maint: true, Weight: 5}, "b": {Drain: true, Weight: 1}, "c": {Weight: 4}, "d": {Weight: 1},
	} {
		if got, err := next.Admin(name); err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", name, got, err, want)
		}
	}
	if s := serverStatus(t, next, "a"); s.Status != "MAINT" || next.Stats().Act != 3 {
		t.Errorf("a after the reload: %s, backend act %d", s.Status, next.Stats().Act)
	}

	// A runtime weight static-rr does not take falls back to the
	// configured one.
	srr, err := NewBackend(BackendConfig{Name: "web", Balance: BalanceStaticRR, Servers: []ServerConfig{{Name: "a", Addr: "127.0.0.1:1"}}})
	if err != nil {
		t.Fatal(err)
	}
	srr.KeepAdmin(old)
	if got, _ := srr.Admin("a"); got != (ServerAdmin{Maint: true, Weight: 1}) {
		t.Errorf("static-rr: %+v", got)
	}
}

// The check columns of a server: HAProxy's check_status for its layer,
// the HTTP code, the duration; INI before the first check.
func TestCheckColumns(t *testing.T) {
	// The columns of a checked server: its code for HTTP only.
	var s Stats
	checkColumns(&s, health.Status{Checks: 1, Last: health.Result{OK: true, Cause: health.Cause{Kind: health.CauseOK, Code: 200},
		Latency: 3 * time.Millisecond}, Layer: health.Layer7})
	if s.CheckStatus != "L7OK" || s.CheckCode != 200 || s.CheckDuration != 3 || s.CheckDesc != "ok" {
		t.Errorf("HTTP check columns: %+v", s)
	}
	s = Stats{}
	checkColumns(&s, health.Status{Checks: 2, Last: health.Result{Cause: health.Cause{Kind: health.CauseRefused}}})
	if s.CheckStatus != "L4CON" || s.CheckCode != 0 || s.CheckDesc != "connection refused" {
		t.Errorf("TCP check columns: %+v", s)
	}
	s = Stats{}
	checkColumns(&s, health.Status{Layer: health.Layer7})
	if s.CheckStatus != "INI" || s.CheckDesc != "" {
		t.Errorf("columns before the first check: %+v", s)
	}
}
