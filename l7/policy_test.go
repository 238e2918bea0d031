package l7

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"
)

// appServer is a loopback server for the policy, cookie and header
// tests. It answers with its name and reports what it saw: X-Seen-Cookie,
// X-Seen-XFH, X-Seen-Fwd. Query parameters make it act:
//
//	setcookie=V  add "Set-Cookie: V"
//	hold=1       wait until release is closed, counted in held
type appServer struct {
	name    string
	srv     *http.Server
	addr    string
	held    atomic.Int64
	release chan struct{}
}

func startApp(t *testing.T, name string) *appServer {
	t.Helper()
	a := &appServer{name: name, release: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.addr = ln.Addr().String()
	a.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Server", "app/1.0")
		h.Set("X-Seen-Cookie", r.Header.Get("Cookie"))
		h.Set("X-Seen-XFH", r.Header.Get("X-Forwarded-Host"))
		h.Set("X-Seen-Fwd", strings.Join(r.Header.Values("Forwarded"), ", "))
		q := r.URL.Query()
		for _, v := range q["setcookie"] {
			h.Add("Set-Cookie", v)
		}
		if q.Get("hold") != "" {
			a.held.Add(1)
			select {
			case <-a.release:
			case <-r.Context().Done():
			}
			a.held.Add(-1)
		}
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, name)
	})}
	go a.srv.Serve(ln)
	t.Cleanup(func() {
		a.releaseAll()
		a.srv.Close()
	})
	return a
}

var releaseMu sync.Mutex

func (a *appServer) releaseAll() {
	releaseMu.Lock()
	defer releaseMu.Unlock()
	select {
	case <-a.release:
	default:
		close(a.release)
	}
}

func apps(as ...*appServer) []ServerConfig {
	var s []ServerConfig
	for _, a := range as {
		s = append(s, ServerConfig{Name: a.name, Addr: a.addr})
	}
	return s
}

func weighted(s []ServerConfig, w ...int) []ServerConfig {
	for i := range s {
		s[i].Weight = w[i]
	}
	return s
}

// clientFrom returns an HTTP client whose connections come from the
// loopback address ip, so that the proxy sees distinct clients.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// counts sends n requests, the i-th to url+path(i), and counts the
// servers that answered.
func counts(t *testing.T, c *http.Client, url string, n int, path func(i int) string) map[string]int {
	t.Helper()
	m := map[string]int{}
	for i := range n {
		r := get(t, c, url+path(i))
		if r.status != 200 {
			t.Fatalf("request %d: status %d", i, r.status)
		}
		m[r.server]++
	}
	return m
}

func TestBalanceLoopback(t *testing.T) {
	a, b, c := startApp(t, "a"), startApp(t, "b"), startApp(t, "c")
	cl := &http.Client{}
	fixed := func(p string) func(int) string { return func(int) string { return p } }

	t.Run("static-rr", func(t *testing.T) {
		be, url := startProxy(t, BackendConfig{Name: "web", Balance: "static-rr", Servers: weighted(apps(a, b, c), 1, 1, 2)})
		if got := counts(t, cl, url, 8, fixed("/")); got["a"] != 2 || got["b"] != 2 || got["c"] != 4 {
			t.Errorf("weights 1,1,2: %v", got)
		}
		if err := be.SetWeight("b", 0); err != nil {
			t.Fatal(err)
		}
		if err := be.SetWeight("b", 3); err == nil {
			t.Error("static-rr accepted a new weight")
		}
		if got := counts(t, cl, url, 6, fixed("/")); got["a"] != 2 || got["b"] != 0 || got["c"] != 4 {
			t.Errorf("b at weight 0: %v", got)
		}
	})
	t.Run("roundrobin weights at run time", func(t *testing.T) {
		be, url := startProxy(t, BackendConfig{Name: "web", Servers: apps(a, b, c)})
		if err := be.SetWeight("c", 2); err != nil {
			t.Fatal(err)
		}
		if got := counts(t, cl, url, 8, fixed("/")); got["a"] != 2 || got["b"] != 2 || got["c"] != 4 {
			t.Errorf("c at weight 2: %v", got)
		}
		if be.Weight("c") != 2 {
			t.Errorf("Weight(c) = %d", be.Weight("c"))
		}
	})
	t.Run("source", func(t *testing.T) {
		_, url := startProxy(t, BackendConfig{Name: "web", Balance: "source", Servers: apps(a, b, c)})
		seen := map[string]int{}
		for i := 2; i < 32; i++ {
			ip := fmt.Sprintf("127.0.0.%d", i)
			got := counts(t, clientFrom(ip), url, 3, func(i int) string { return fmt.Sprintf("/%d", i) })
			if len(got) != 1 {
				t.Fatalf("client %s went to %v, want one server", ip, got)
			}
			for s := range got {
				seen[s]++
			}
		}
		if len(seen) != 3 {
			t.Errorf("30 clients on %v, want all three servers used", seen)
		}
		t.Logf("30 clients: %v", seen)
	})
	t.Run("uri", func(t *testing.T) {
		_, url := startProxy(t, BackendConfig{Name: "web", Balance: "uri", Servers: apps(a, b, c)})
		if got := counts(t, cl, url, 6, func(i int) string { return fmt.Sprintf("/same?q=%d", i) }); len(got) != 1 {
			t.Errorf("one path, queries differing: %v, want one server", got)
		}
		got := counts(t, cl, url, 60, func(i int) string { return fmt.Sprintf("/p%d", i) })
		if len(got) != 3 {
			t.Errorf("60 paths on %v, want all three servers", got)
		}
		t.Logf("60 paths: %v", got)
	})
	t.Run("uri whole", func(t *testing.T) {
		_, url := startProxy(t, BackendConfig{Name: "web", Balance: "uri whole", Servers: apps(a, b, c)})
		if got := counts(t, cl, url, 60, func(i int) string { return fmt.Sprintf("/same?q=%d", i) }); len(got) != 3 {
			t.Errorf("one path, 60 queries: %v, want all three servers", got)
		}
	})
	t.Run("url_param", func(t *testing.T) {
		_, url := startProxy(t, BackendConfig{Name: "web", Balance: "url_param user", Servers: apps(a, b, c)})
		for _, u := range []string{"ann", "bob", "joe"} {
			if got := counts(t, cl, url, 4, func(i int) string { return fmt.Sprintf("/x%d?a=1&user=%s", i, u) }); len(got) != 1 {
				t.Errorf("user %s: %v, want one server", u, got)
			}
		}
		// Without the parameter: roundrobin.
		if got := counts(t, cl, url, 6, fixed("/?other=1")); got["a"] != 2 || got["b"] != 2 || got["c"] != 2 {
			t.Errorf("no parameter: %v, want roundrobin", got)
		}
	})
	t.Run("leastconn", func(t *testing.T) {
		a, b, c := startApp(t, "a"), startApp(t, "b"), startApp(t, "c")
		_, url := startProxy(t, BackendConfig{Name: "web", Balance: "leastconn", Servers: apps(a, b, c)})
		// Three requests held, one at a time: each goes to a server
		// with none in flight.
		var wg sync.WaitGroup
		defer wg.Wait()
		defer func() {
			for _, s := range []*appServer{a, b, c} {
				s.releaseAll()
			}
		}()
		for n := range int64(3) {
			wg.Add(1)
			go func() { defer wg.Done(); http.Get(url + "/?hold=1") }()
			waitFor(t, "a held request", func() bool { return a.held.Load()+b.held.Load()+c.held.Load() == n+1 })
		}
		if a.held.Load() != 1 || b.held.Load() != 1 || c.held.Load() != 1 {
			t.Fatalf("held requests: a %d, b %d, c %d; want one each", a.held.Load(), b.held.Load(), c.held.Load())
		}
		// Equally loaded: they take turns.
		if got := counts(t, cl, url, 30, fixed("/")); got["a"] != 10 || got["b"] != 10 || got["c"] != 10 {
			t.Errorf("equal loads: %v, want 10 each", got)
		}
		// c's request done: c is the least loaded and takes them all.
		c.releaseAll()
		waitFor(t, "c idle", func() bool { return c.held.Load() == 0 })
		if got := counts(t, cl, url, 5, fixed("/")); got["c"] != 5 {
			t.Errorf("c least loaded: %v, want all on c", got)
		}
	})
	t.Run("random(2) avoids the busy", func(t *testing.T) {
		a, b := startApp(t, "a"), startApp(t, "b")
		be, url2 := startProxy(t, BackendConfig{Name: "web", Balance: "random(2)", Servers: apps(a, b)})
		var wg sync.WaitGroup
		defer wg.Wait()
		defer a.releaseAll()
		// Four requests held on a, sent while b is down.
		be.SetUp("b", false)
		for range 4 {
			wg.Add(1)
			go func() { defer wg.Done(); http.Get(url2 + "/?hold=1") }()
		}
		waitFor(t, "four held on a", func() bool { return a.held.Load() == 4 })
		be.SetUp("b", true)
		// a has 4 in flight, b none: a wins only when both draws are a.
		got := counts(t, cl, url2, 40, fixed("/"))
		if got["a"] > 20 {
			t.Errorf("busy a got %d of 40 requests", got["a"])
		}
		t.Logf("a busy with 4: %v", got)
	})
}

func TestDrainLoopback(t *testing.T) {
	a, b, c := startApp(t, "a"), startApp(t, "b"), startApp(t, "c")
	be, url := startProxy(t, BackendConfig{Name: "web", Servers: apps(a, b, c), Cookie: &CookieConfig{Name: "SRV"}})
	cl := &http.Client{}
	if err := be.SetDrain("b", true); err != nil {
		t.Fatal(err)
	}
	if err := be.SetDrain("zz", true); err == nil {
		t.Error("SetDrain of an unknown server")
	}
	// New clients never reach b; b's sticky clients stay.
	for range 6 {
		if r := get(t, cl, url); r.server == "b" {
			t.Fatal("new client sent to drained b")
		}
	}
	for range 3 {
		if r := get(t, cl, url, "Cookie", "SRV=b"); r.server != "b" || r.setCookie != "" {
			t.Fatalf("sticky client of drained b: went to %s, Set-Cookie %q", r.server, r.setCookie)
		}
	}
	// Down: sticky clients move and are stuck again; back up and
	// undrained, b takes new clients again.
	be.SetUp("b", false)
	r := get(t, cl, url, "Cookie", "SRV=b")
	if r.server == "b" || r.setCookie != "SRV="+r.server+"; path=/" {
		t.Fatalf("b down: went to %s, Set-Cookie %q", r.server, r.setCookie)
	}
	be.SetUp("b", true)
	be.SetDrain("b", false)
	if got := counts(t, cl, url, 6, func(int) string { return "/" }); got["b"] != 2 {
		t.Errorf("b undrained: %v", got)
	}
}

// TestPolicyAllocs checks that no balancing algorithm allocates on the
// request path.
func TestPolicyAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	addr := startCannedServer(t)
	for _, balance := range []string{"static-rr", "leastconn", "source", "uri", "url_param u", "random"} {
		t.Run(balance, func(t *testing.T) {
			be, err := NewBackend(BackendConfig{Name: "web", Balance: balance,
				Servers: []ServerConfig{{Name: "a", Addr: addr}, {Name: "b", Addr: addr, Weight: 2}}})
			if err != nil {
				t.Fatal(err)
			}
			defer be.Close()
			allocsPerServe(t, be.Serve, addr, "/p?u=joe", nil)
		})
	}
}

// allocsPerServe runs requests for uri through h on a warm, wrapped client
// connection and fails if one allocates. hdr are header name, value
// pairs.
func allocsPerServe(t *testing.T, h func(*fasthttp.RequestCtx), addr, uri string, hdr []string) {
	t.Helper()
	client, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var ctx fasthttp.RequestCtx
	ctx.Init2(newTimeoutConn(client, 0), nil, false)
	run := func() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod(http.MethodGet)
		ctx.Request.SetRequestURI(uri)
		ctx.Request.Header.SetHost("x")
		for i := 0; i+1 < len(hdr); i += 2 {
			ctx.Request.Header.Set(hdr[i], hdr[i+1])
		}
		h(&ctx)
		if ctx.Response.StatusCode() != 200 {
			t.Fatalf("status %d", ctx.Response.StatusCode())
		}
	}
	run()
	if n := testing.AllocsPerRun(200, run); n > 0 {
		t.Errorf("%.1f allocations per request, want 0", n)
	}
}
