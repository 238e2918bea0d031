package tier

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/directorlb/director/director/config"
)

func webServer(t *testing.T, name string) (*httptest.Server, *atomic.Bool) {
	t.Helper()
	healthy := &atomic.Bool{}
	healthy.Store(true)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/check.txt" && !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, name)
	}))
	t.Cleanup(s.Close)
	return s, healthy
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func load(t *testing.T, src string) *config.L7 {
	t.Helper()
	path := filepath.Join(t.TempDir(), "proxy.yaml")
	os.WriteFile(path, []byte(src), 0o600)
	cfg, err := config.LoadL7(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.L7
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(b), err
}

// The tier serves a configuration, takes a failing server out by its
// check, and reloads under load without a failed request.
func TestTierServeCheckReload(t *testing.T) {
	a, _ := webServer(t, "a")
	b, bHealthy := webServer(t, "b")
	c, _ := webServer(t, "c")
	port := freePort(t)
	section := func(servers ...*httptest.Server) string {
		return fmt.Sprintf(`
l7:
  frontends:
    - name: www
      bind: ["127.0.0.1:%d"]
      rules: [{ path_end: /favicon.ico, return: { status: 404, body: none } }]
      default_backend: web
  backends:
    - name: web
      check: { type: http, path: /check.txt, interval: 100ms, rise: 1, fall: 1 }
      servers:
`, port) + serverLines(servers...)
	}
	tr, err := New(load(t, section(a, b)), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	client := &http.Client{Timeout: 5 * time.Second}
	seen := map[string]int{}
	for i := 0; i < 20; i++ {
		who, err := get(client, url)
		if err != nil {
			t.Fatal(err)
		}
		seen[who]++
	}
	if seen["a"] != 10 || seen["b"] != 10 {
		t.Fatalf("roundrobin over a and b: %v", seen)
	}
	if body, err := get(client, url+"favicon.ico"); err == nil || body != "none" {
		t.Fatalf("favicon rule: %q %v", body, err)
	}

	// b fails its check: it leaves.
	bHealthy.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if st, ok := tr.Health("web/s1"); ok && st.State.String() == "down" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("b not marked down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; i < 10; i++ {
		if who, err := get(client, url); err != nil || who != "a" {
			t.Fatalf("with b down: %q %v", who, err)
		}
	}

	// Reload to a and c under load, on new and keep-alive connections.
	var (
		wg     sync.WaitGroup
		stop   atomic.Bool
		failed atomic.Int64
		total  atomic.Int64
		mu     sync.Mutex
		after  = map[string]int{}
	)
	reloaded := atomic.Bool{}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(keepAlive bool) {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: !keepAlive}}
			for !stop.Load() {
				who, err := get(c, url)
				total.Add(1)
				if err != nil {
					failed.Add(1)
					t.Logf("request failed: %v", err)
					continue
				}
				if reloaded.Load() {
					mu.Lock()
					after[who]++
					mu.Unlock()
				}
			}
		}(w%2 == 0)
	}
	time.Sleep(200 * time.Millisecond)
	if err := tr.Reload(load(t, section(a, c))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // keep-alive connections of the old frontend finish their request
	reloaded.Store(true)
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if failed.Load() > 0 {
		t.Errorf("%d of %d requests failed across the reload", failed.Load(), total.Load())
	}
	if after["c"] == 0 || after["b"] != 0 {
		t.Errorf("after the reload: %v", after)
	}
	t.Logf("%d requests across the reload, none failed; after it: %v", total.Load(), after)

	// The stats: a FRONTEND line, the servers and the BACKEND line.
	rows := tr.Stats()
	var names []string
	for _, r := range rows {
		names = append(names, r.PxName+"/"+r.SvName)
	}
	if len(rows) != 4 || rows[0].SvName != "FRONTEND" || rows[3].SvName != "BACKEND" || rows[0].ReqTot == 0 {
		t.Errorf("stats rows %v", names)
	}

	// A reload that cannot apply changes nothing.
	bad := load(t, section(a, c))
	bad.Frontends = append(bad.Frontends, config.L7Frontend{Name: "x", Bind: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:1")}, DefaultBackend: "nosuch"})
	if err := tr.Reload(bad); err == nil {
		t.Fatal("a frontend without its backend was accepted")
	}
	if who, err := get(client, url); err != nil || (who != "a" && who != "c") {
		t.Fatalf("after a failed reload: %q %v", who, err)
	}
}
