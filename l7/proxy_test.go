package l7

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/directorlb/director/director/health"
)

// testServer is a real HTTP server on loopback that answers with its name
// and reports what it received in response headers.
type testServer struct {
	name    string
	srv     *httptest.Server
	conns   atomic.Int64 // connections accepted
	healthy atomic.Bool
}

func startServer(t *testing.T, name string) *testServer {
	t.Helper()
	ts := &testServer{name: name}
	ts.healthy.Store(true)
	ts.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			if !ts.healthy.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		h := w.Header()
		h.Set("X-Seen-XFF", strings.Join(r.Header.Values("X-Forwarded-For"), ", "))
		h.Set("X-Seen-XFP", r.Header.Get("X-Forwarded-Proto"))
		h.Set("X-Seen-Cookie", r.Header.Get("Cookie"))
		var hop []string
		for _, k := range []string{"Connection", "Keep-Alive", "Te", "Upgrade", "Proxy-Connection", "X-Conn-Named"} {
			if r.Header.Get(k) != "" {
				hop = append(hop, k)
			}
		}
		h.Set("X-Seen-Hop", strings.Join(hop, ","))
		if r.URL.Query().Get("hop") != "" {
			h.Set("Connection", "X-Resp-Named")
			h.Set("X-Resp-Named", "1")
			h.Set("Keep-Alive", "timeout=5")
		}
		if r.URL.Query().Get("cacheable") != "" {
			h.Set("Cache-Control", "max-age=60")
		}
		body, _ := io.ReadAll(r.Body)
		h.Set("X-Seen-Body", string(body))
		io.WriteString(w, name)
	}))
	ts.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			ts.conns.Add(1)
		}
	}
	ts.srv.Start()
	t.Cleanup(ts.srv.Close)
	return ts
}

func (ts *testServer) addr() string { return ts.srv.Listener.Addr().String() }

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

// startProxy serves cfg on a loopback listener and returns the backend and
// the frontend's URL.
func startProxy(t *testing.T, cfg BackendConfig) (*Backend, string) {
	t.Helper()
	be, err := NewBackend(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, addr := serveFrontend(t, FrontendConfig{Name: "fe", Backend: be, Logger: zerolog.Nop()})
	return be, "http://" + addr
}

func servers(ts ...*testServer) []ServerConfig {
	var s []ServerConfig
	for _, x := range ts {
		s = append(s, ServerConfig{Name: x.name, Addr: x.addr()})
	}
	return s
}

type result struct {
	server    string
	setCookie string
	header    http.Header
	status    int
}

func get(t *testing.T, c *http.Client, url string, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{server: string(body), setCookie: resp.Header.Get("Set-Cookie"), header: resp.Header, status: resp.StatusCode}
}

func TestRoundRobinAndCookieInsert(t *testing.T) {
	a, b, c := startServer(t, "a"), startServer(t, "b"), startServer(t, "c")
	_, url := startProxy(t, BackendConfig{Name: "web", Servers: servers(a, b, c), Cookie: &CookieConfig{Name: "SRV", NoCache: true}})
	cl := &http.Client{}

	var order []string
	for range 6 {
		r := get(t, cl, url)
		order = append(order, r.server)
		if want := "SRV=" + r.server + "; path=/"; r.setCookie != want {
			t.Errorf("Set-Cookie %q, want %q", r.setCookie, want)
		}
		if cc := r.header.Get("Cache-Control"); cc != "" {
			t.Errorf("uncacheable response got Cache-Control %q", cc)
		}
	}
	if got := strings.Join(order, ""); got != "abcabc" {
		t.Errorf("roundrobin order %q, want abcabc", got)
	}

	// A valid cookie routes, is not re-inserted and never reaches the server.
	for range 3 {
		r := get(t, cl, url, "Cookie", "x=1; SRV=b; y=2")
		if r.server != "b" || r.setCookie != "" {
			t.Errorf("sticky request went to %q with Set-Cookie %q", r.server, r.setCookie)
		}
		if got := r.header.Get("X-Seen-Cookie"); got != "x=1; y=2" {
			t.Errorf("server saw Cookie %q, want the others only", got)
		}
	}
	// An unknown server's cookie is replaced.
	r := get(t, cl, url, "Cookie", "SRV=zz")
	if r.setCookie != "SRV="+r.server+"; path=/" {
		t.Errorf("unknown cookie: Set-Cookie %q for server %q", r.setCookie, r.server)
	}
	// nocache marks a cacheable response that gets a cookie private.
	r = get(t, cl, url+"/?cacheable=1")
	if cc := r.header.Get("Cache-Control"); cc != "private" {
		t.Errorf("cacheable response with cookie: Cache-Control %q, want private", cc)
	}
}

func TestCookieDates(t *testing.T) {
	a, b := startServer(t, "a"), startServer(t, "b")
	_, url := startProxy(t, BackendConfig{Name: "web", Servers: servers(a, b),
		Cookie: &CookieConfig{Name: "SRV", MaxIdle: time.Hour, MaxLife: 24 * time.Hour}})
	cl := &http.Client{}
	r := get(t, cl, url)
	v, _, _ := strings.Cut(strings.TrimPrefix(r.setCookie, "SRV="), ";")
	parts := strings.Split(v, "|")
	if len(parts) != 3 || parts[0] != r.server || len(parts[1]) != 5 || parts[1] != parts[2] {
		t.Fatalf("Set-Cookie %q: want srv|LAST|FIRST with LAST = FIRST", r.setCookie)
	}
	// The fresh cookie sticks.
	r2 := get(t, cl, url, "Cookie", "SRV="+v)
	if r2.server != r.server {
		t.Errorf("dated cookie for %s went to %s", r.server, r2.server)
	}
	// A cookie first seen two days ago is past maxlife: rebalanced and
	// re-dated.
	old := string(appendDate(nil, cookieDate(time.Now().Add(-48*time.Hour))))
	r3 := get(t, cl, url, "Cookie", "SRV="+r.server+"|"+parts[1]+"|"+old)
	if r3.setCookie == "" || strings.Contains(r3.setCookie, old) {
		t.Errorf("expired cookie: Set-Cookie %q", r3.setCookie)
	}
}

func TestForwardedHeadersAndHopByHop(t *testing.T) {
	a := startServer(t, "a")
	_, url := startProxy(t, BackendConfig{Name: "web", Servers: servers(a), ForwardFor: true})
	cl := &http.Client{}
	r := get(t, cl, url+"/?hop=1", "X-Forwarded-For", "192.0.2.7", "X-Forwarded-Proto", "https",
		"Connection", "keep-alive, X-Conn-Named", "X-Conn-Named", "1", "Keep-Alive", "timeout=9", "Te", "trailers")
	if got := r.header.Get("X-Seen-XFF"); got != "192.0.2.7, 127.0.0.1" {
		t.Errorf("server saw X-Forwarded-For %q, want the client's appended", got)
	}
	if got := r.header.Get("X-Seen-XFP"); got != "http" {
		t.Errorf("server saw X-Forwarded-Proto %q, want http", got)
	}
	if got := r.header.Get("X-Seen-Hop"); got != "" {
		t.Errorf("hop-by-hop request headers reached the server: %s", got)
	}
	for _, k := range []string{"X-Resp-Named", "Keep-Alive"} {
		if r.header.Get(k) != "" {
			t.Errorf("hop-by-hop response header %s reached the client", k)
		}
	}
}

func TestKeepAlive(t *testing.T) {
	a := startServer(t, "a")
	_, url := startProxy(t, BackendConfig{Name: "web", Servers: servers(a)})
	// One client connection carries many requests, and so does one
	// server connection.
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for i := range 50 {
		body := fmt.Sprintf("n=%d", i)
		fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on the same connection: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Close {
			t.Fatalf("request %d: proxy closes the connection", i)
		}
		if got := resp.Header.Get("X-Seen-Body"); got != body {
			t.Fatalf("request %d: server saw body %q", i, got)
		}
	}
	if n := a.conns.Load(); n != 1 {
		t.Errorf("%d server connections for 50 sequential requests, want 1", n)
	}

	// A client's Connection: close ends its connection, not the server's.
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !resp.Close {
		t.Error("Connection: close from the client not honoured")
	}
	if got := resp.Header.Get("X-Seen-Hop"); got != "" {
		t.Errorf("server saw %s", got)
	}
	// Closed: the next connection goes to the same event loop (the one
	// with the fewest), whose pool holds the server connection.
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Fatalf("waiting for the close: %v", err)
	}
	// HTTP/1.0 without keep-alive: answered, then closed.
	c2, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fmt.Fprintf(c2, "GET / HTTP/1.0\r\n\r\n")
	all, err := io.ReadAll(c2)
	if err != nil || !strings.Contains(string(all), "200 OK") || !strings.HasSuffix(string(all), "a") {
		t.Errorf("HTTP/1.0 request: %q, %v", all, err)
	}
	if n := a.conns.Load(); n != 1 {
		t.Errorf("%d server connections, want 1 still", n)
	}
}

func TestStickinessAcrossDownAndUp(t *testing.T) {
	a, b, c := startServer(t, "a"), startServer(t, "b"), startServer(t, "c")
	be, url := startProxy(t, BackendConfig{Name: "web", Servers: servers(a, b, c),
		Cookie: &CookieConfig{Name: "SRV"},
		Check:  &CheckConfig{HTTP: &health.HTTPConfig{Path: "/health"}, Interval: 20 * time.Millisecond, Rise: 1, Fall: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = CheckHealth(ctx, zerolog.Nop(), be) }()
	defer wg.Wait()
	defer cancel()
	cl := &http.Client{}

	if r := get(t, cl, url, "Cookie", "SRV=b"); r.server != "b" || r.setCookie != "" {
		t.Fatalf("sticky to b: went to %s, Set-Cookie %q", r.server, r.setCookie)
	}
	b.healthy.Store(false)
	waitFor(t, "b down", func() bool { return !be.Up("b") })

	// b's clients move to a live server and stick there.
	r := get(t, cl, url, "Cookie", "SRV=b")
	if r.server == "b" || r.setCookie != "SRV="+r.server+"; path=/" {
		t.Fatalf("b down: went to %s with Set-Cookie %q", r.server, r.setCookie)
	}
	moved := r.server
	for range 5 {
		if r := get(t, cl, url, "Cookie", "SRV="+moved); r.server != moved || r.setCookie != "" {
			t.Fatalf("re-stuck client: went to %s, Set-Cookie %q", r.server, r.setCookie)
		}
	}
	// New clients never get b.
	for range 6 {
		if r := get(t, cl, url); r.server == "b" {
			t.Fatal("new client sent to b while down")
		}
	}

	b.healthy.Store(true)
	waitFor(t, "b up", func() bool { return be.Up("b") })
	// The moved client stays where it is now; a client still holding b's
	// cookie goes back to b.
	if r := get(t, cl, url, "Cookie", "SRV="+moved); r.server != moved {
		t.Errorf("b back: moved client went to %s, want %s", r.server, moved)
	}
	if r := get(t, cl, url, "Cookie", "SRV=b"); r.server != "b" || r.setCookie != "" {
		t.Errorf("b back: cookie b went to %s, Set-Cookie %q", r.server, r.setCookie)
	}
}

func TestRedispatch(t *testing.T) {
	a := startServer(t, "a")
	dead := deadAddr(t)
	srvs := []ServerConfig{{Name: "dead", Addr: dead}, {Name: "a", Addr: a.addr()}}

	t.Run("redispatch", func(t *testing.T) {
		// No health checks: the dead server is believed up, so only the
		// retry on connect failure can save the requests.
		_, url := startProxy(t, BackendConfig{Name: "web", Servers: srvs, Cookie: &CookieConfig{Name: "SRV"}, Redispatch: true})
		cl := &http.Client{}
		for range 4 {
			if r := get(t, cl, url); r.status != 200 || r.server != "a" {
				t.Fatalf("status %d from %q, want 200 from a", r.status, r.server)
			}
		}
		// A client stuck to the dead server is moved and re-stuck.
		r := get(t, cl, url, "Cookie", "SRV=dead")
		if r.status != 200 || r.server != "a" || r.setCookie != "SRV=a; path=/" {
			t.Errorf("sticky to dead: status %d from %q, Set-Cookie %q", r.status, r.server, r.setCookie)
		}
	})
	t.Run("no redispatch", func(t *testing.T) {
		_, url := startProxy(t, BackendConfig{Name: "web", Servers: srvs, Cookie: &CookieConfig{Name: "SRV"}, Retries: 2})
		cl := &http.Client{}
		if r := get(t, cl, url, "Cookie", "SRV=dead"); r.status != http.StatusBadGateway {
			t.Errorf("sticky to dead without redispatch: status %d, want 502", r.status)
		}
	})
	t.Run("all down", func(t *testing.T) {
		be, url := startProxy(t, BackendConfig{Name: "web", Servers: servers(a)})
		if err := be.SetUp("a", false); err != nil {
			t.Fatal(err)
		}
		if r := get(t, &http.Client{}, url); r.status != http.StatusServiceUnavailable {
			t.Errorf("no live server: status %d, want 503", r.status)
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLargeBodies(t *testing.T) {
	const size = 8 << 20
	var gotLen atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		gotLen.Store(n)
		if r.URL.Query().Get("chunked") != "" {
			// No Content-Length: streamed, chunked.
			for i := 0; i < size/(64<<10); i++ {
				w.Write(bytes.Repeat([]byte{byte('a' + i%26)}, 64<<10))
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		w.Write(bytes.Repeat([]byte("x"), size))
	}))
	defer srv.Close()
	_, url := startProxy(t, BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: srv.Listener.Addr().String()}}})
	cl := &http.Client{}
	for _, q := range []string{"", "?chunked=1"} {
		body := bytes.Repeat([]byte("u"), size)
		resp, err := cl.Post(url+"/"+q, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != size {
			t.Errorf("%s: response body %d bytes, %v; want %d", q, n, err, size)
		}
		if got := gotLen.Load(); got != size {
			t.Errorf("%s: server got a %d-byte request body, want %d", q, got, size)
		}
	}
	// A request body of unknown length (chunked) streams too.
	pr, pw := io.Pipe()
	go func() {
		for range 64 {
			pw.Write(bytes.Repeat([]byte("c"), 64<<10))
		}
		pw.Close()
	}()
	resp, err := cl.Post(url+"/", "application/octet-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if got := gotLen.Load(); got != 64*(64<<10) {
		t.Errorf("chunked request body: server got %d bytes, want %d", got, 64*(64<<10))
	}
}

func TestServerTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	_, url := startProxy(t, BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: srv.Listener.Addr().String()}},
		ServerTimeout: 200 * time.Millisecond})
	start := time.Now()
	r := get(t, &http.Client{}, url)
	if r.status != http.StatusGatewayTimeout {
		t.Errorf("silent server: status %d, want 504", r.status)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 3*time.Second {
		t.Errorf("timed out after %v, want about 200ms", d)
	}
}

// serveFrontend runs a frontend made of cfg on a loopback listener until
// the test ends, then shuts it down and closes cfg.Backend; it returns the
// frontend and its address.
func serveFrontend(t *testing.T, cfg FrontendConfig) (*Frontend, string) {
	t.Helper()
	fe, err := NewFrontend(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = fe.Serve(ln); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = fe.Shutdown(ctx)
		<-done
		if cfg.Backend != nil {
			cfg.Backend.Close()
		}
	})
	return fe, ln.Addr().String()
}
