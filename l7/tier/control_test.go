package tier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/directorlb/director/director/api"
)

// adminSection is a section with backend web of the given servers, each
// checked by HTTP, sticky by cookie.
func adminSection(port int, servers ...*httptest.Server) string {
	s := fmt.Sprintf(`
l7:
  frontends:
    - name: www
      bind: ["127.0.0.1:%d"]
      default_backend: web
  backends:
    - name: web
      cookie: { name: SRV }
      check: { type: http, path: /check.txt, interval: 50ms, rise: 1, fall: 1 }
      servers:
`, port)
	return s + serverLines(servers...)
}

// serverLines lists the servers of a backend section as s0, s1...
func serverLines(servers ...*httptest.Server) string {
	var s string
	for i, srv := range servers {
		s += fmt.Sprintf("        - { name: s%d, address: %q }\n", i, srv.Listener.Addr().String())
	}
	return s
}

func serverOf(t *testing.T, c Control, name string) api.L7Server {
	t.Helper()
	ss, err := c.L7Servers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		if s.Server == name {
			return s
		}
	}
	t.Fatalf("no server %s: %+v", name, ss)
	return api.L7Server{}
}

// What operators set on servers stays across a reload, by backend and
// server name; a server the reload drops loses it.
func TestAdminSurvivesReload(t *testing.T) {
	a, _ := webServer(t, "a")
	b, _ := webServer(t, "b")
	c, _ := webServer(t, "c")
	port := freePort(t)
	tr, err := New(load(t, adminSection(port, a, b, c)), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctl := Control{Running: func() *Tier { return tr }}
	ctx := context.Background()
	// The HTTP checks show as HAProxy's layer 7 ones.
	deadline := time.Now().Add(5 * time.Second)
	for s := serverOf(t, ctl, "s0"); s.CheckStatus != "L7OK" || s.State != "UP" || s.CheckCode != 200; s = serverOf(t, ctl, "s0") {
		if time.Now().After(deadline) {
			t.Fatalf("s0 never checked: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, err := range []error{ctl.MaintL7Server(ctx, "web", "s1", true), ctl.SetL7Weight(ctx, "web", "s0", 3),
		ctl.DrainL7Server(ctx, "web", "s2")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Bad changes change nothing.
	before := fmt.Sprint(ctl.L7Servers(ctx))
	for _, c := range []struct {
		err error
		is  error
	}{
		{ctl.DrainL7Server(ctx, "nosuch", "s0"), api.ErrNotFound},
		{ctl.MaintL7Server(ctx, "web", "s9", true), api.ErrNotFound},
		{ctl.SetL7Weight(ctx, "web", "s0", 257), api.ErrInvalid},
		{ctl.SetL7Weight(ctx, "web", "s0", 1<<32-1), api.ErrInvalid},
	} {
		if !errors.Is(c.err, c.is) {
			t.Errorf("%v, want %v", c.err, c.is)
		}
	}
	if after := fmt.Sprint(ctl.L7Servers(ctx)); after != before {
		t.Errorf("bad changes changed the servers:\n%s\n%s", before, after)
	}

	// Reload without s2: s0 and s1 keep their state.
	if err := tr.Reload(load(t, adminSection(port, a, b))); err != nil {
		t.Fatal(err)
	}
	if s0, s1 := serverOf(t, ctl, "s0"), serverOf(t, ctl, "s1"); s0.Weight != 3 || s0.State == "MAINT" || s1.State != "MAINT" || !s1.Maint {
		t.Errorf("after the reload: %+v\n%+v", s0, s1)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for range 4 {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.AddCookie(&http.Cookie{Name: "SRV", Value: "s1"})
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Set-Cookie"); got != "SRV=s0; path=/" {
			t.Fatalf("a client of s1, in maintenance, after the reload: Set-Cookie %q", got)
		}
	}
	// s2 back: as configured, its drain forgotten with it.
	if err := tr.Reload(load(t, adminSection(port, a, b, c))); err != nil {
		t.Fatal(err)
	}
	if s2 := serverOf(t, ctl, "s2"); s2.Drained || s2.Weight != 1 {
		t.Errorf("s2 back: %+v", s2)
	}

	// A node without a tier says so.
	none := Control{Running: func() *Tier { return nil }}
	if _, err := none.L7Servers(ctx); !errors.Is(err, api.ErrNotFound) || err.Error() != "not found: no L7 tier runs here: the config has no l7 section" {
		t.Errorf("without a tier: %v", err)
	}
	if err := none.DrainL7Server(ctx, "web", "s0"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("drain without a tier: %v", err)
	}
	if rows, err := none.L7Stats(ctx); rows != nil || err != nil {
		t.Errorf("stats without a tier: %v %v", rows, err)
	}
}
