package health_test

import (
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/directorlb/director/director/health"
)

// backend is an HTTP server recording what health checks send it.
type backend struct {
	*httptest.Server
	mu        sync.Mutex
	requests  []*http.Request // headers and TLS state only
	redirects atomic.Int32    // hits on the redirect target
	conns     atomic.Int32    // new connections accepted
}

func newBackend(t *testing.T, useTLS bool) *backend {
	t.Helper()
	b := &backend{}
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "all healthy\n") })
	mux.HandleFunc("/503", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/204", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, _ *http.Request) {
		b.redirects.Add(1)
		http.Error(w, "followed a redirect", http.StatusInternalServerError)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, strings.Repeat("x", 100)+"marker")
	})
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.requests = append(b.requests, r.Clone(r.Context()))
		b.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	b.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are expected
	b.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.conns.Add(1)
		}
	}
	if useTLS {
		b.StartTLS()
	} else {
		b.Start()
	}
	t.Cleanup(b.Close)
	return b
}

func (b *backend) addr() string { return b.Listener.Addr().String() }

func (b *backend) lastRequest(t *testing.T) *http.Request {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.requests) == 0 {
		t.Fatal("backend received no request")
	}
	return b.requests[len(b.requests)-1]
}

func mustStatusSet(t *testing.T, s string) health.StatusSet {
	t.Helper()
	set, err := health.ParseStatusSet(s)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestHTTPCheck(t *testing.T) {
	b := newBackend(t, false)
	tests := []struct {
		name      string
		cfg       health.HTTPConfig
		wantOK    bool
		wantCause string
	}{
		{name: "200 by default", cfg: health.HTTPConfig{Path: "/ok"}, wantOK: true, wantCause: "ok: status 200"},
		{name: "503", cfg: health.HTTPConfig{Path: "/503"}, wantCause: "status 503"},
		{name: "503 expected", cfg: health.HTTPConfig{Path: "/503", Expect: mustStatusSet(t, "500-599")}, wantOK: true, wantCause: "ok: status 503"},
		{name: "404 outside default range", cfg: health.HTTPConfig{Path: "/missing"}, wantCause: "status 404"},
		{name: "204 in list", cfg: health.HTTPConfig{Path: "/204", Expect: mustStatusSet(t, "200,204")}, wantOK: true, wantCause: "ok: status 204"},
		{name: "204 not in list", cfg: health.HTTPConfig{Path: "/204", Expect: mustStatusSet(t, "200")}, wantCause: "status 204"},
		{name: "302 in default range, not followed", cfg: health.HTTPConfig{Path: "/redirect"}, wantOK: true, wantCause: "ok: status 302"},
		{name: "302 not expected, not followed", cfg: health.HTTPConfig{Path: "/redirect", Expect: mustStatusSet(t, "200-299")}, wantCause: "status 302"},
		{name: "body matches", cfg: health.HTTPConfig{Path: "/ok", ExpectBody: "healthy"}, wantOK: true, wantCause: "ok: status 200"},
		{name: "body mismatch", cfg: health.HTTPConfig{Path: "/ok", ExpectBody: "sick"},
			wantCause: `body mismatch: "sick" not in the first 12 bytes`},
		{name: "body beyond the bound", cfg: health.HTTPConfig{Path: "/big", ExpectBody: "marker", MaxBody: 50},
			wantCause: `body mismatch: "marker" not in the first 50 bytes`},
		{name: "body within the default bound", cfg: health.HTTPConfig{Path: "/big", ExpectBody: "marker"}, wantOK: true, wantCause: "ok: status 200"},
		{name: "status checked before body", cfg: health.HTTPConfig{Path: "/503", ExpectBody: "maintenance"}, wantCause: "status 503"},
		{name: "HEAD", cfg: health.HTTPConfig{Method: http.MethodHead, Path: "/ok"}, wantOK: true, wantCause: "ok: status 200"},
		{name: "HEAD 503", cfg: health.HTTPConfig{Method: http.MethodHead, Path: "/503"}, wantCause: "status 503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Addr = b.addr()
			c, err := health.NewHTTPChecker(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			res := c.Check(checkCtx(t, generousTimeout))
			if res.OK != tt.wantOK || res.Cause.String() != tt.wantCause {
				t.Errorf("Check = ok %v, cause %q (err %v), want ok %v, cause %q", res.OK, res.Cause, res.Cause.Err, tt.wantOK, tt.wantCause)
			}
			if want := tt.cfg.Method; want != "" && b.lastRequest(t).Method != want {
				t.Errorf("backend saw method %s, want %s", b.lastRequest(t).Method, want)
			}
		})
	}
	if n := b.redirects.Load(); n != 0 {
		t.Errorf("redirect target hit %d times, want 0", n)
	}
}

func TestHTTPCheckRequest(t *testing.T) {
	b := newBackend(t, false)
	c, err := health.NewHTTPChecker(health.HTTPConfig{
		Addr:   b.addr(),
		Path:   "/ok?from=director",
		Host:   "www.example.com",
		Header: http.Header{"X-Check": {"1"}, "Connection": {"keep-alive"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	const checks = 3
	for range checks {
		if res := c.Check(checkCtx(t, generousTimeout)); !res.OK {
			t.Fatalf("Check failed: %v", res.Cause)
		}
	}
	r := b.lastRequest(t)
	if r.Host != "www.example.com" {
		t.Errorf("Host = %q, want www.example.com", r.Host)
	}
	if r.URL.RequestURI() != "/ok?from=director" {
		t.Errorf("request URI = %q, want /ok?from=director", r.URL.RequestURI())
	}
	if r.Method != http.MethodGet {
		t.Errorf("method = %s, want GET", r.Method)
	}
	if ua := r.UserAgent(); ua != health.DefaultUserAgent {
		t.Errorf("User-Agent = %q, want %q", ua, health.DefaultUserAgent)
	}
	if !r.Close {
		t.Error("request without Connection: close")
	}
	if r.Header.Get("X-Check") != "1" {
		t.Errorf("X-Check = %q, want 1", r.Header.Get("X-Check"))
	}
	if ae := r.Header.Get("Accept-Encoding"); ae != "" {
		t.Errorf("Accept-Encoding = %q, want none", ae)
	}
	if n := b.conns.Load(); n != checks {
		t.Errorf("backend accepted %d connections for %d checks, want one each", n, checks)
	}
}

func TestHTTPCheckUserAgent(t *testing.T) {
	b := newBackend(t, false)
	c, err := health.NewHTTPChecker(health.HTTPConfig{Addr: b.addr(), Path: "/ok", UserAgent: "director-test"})
	if err != nil {
		t.Fatal(err)
	}
	if res := c.Check(checkCtx(t, generousTimeout)); !res.OK {
		t.Fatalf("Check failed: %v", res.Cause)
	}
	if ua := b.lastRequest(t).UserAgent(); ua != "director-test" {
		t.Errorf("User-Agent = %q, want director-test", ua)
	}
}

func TestHTTPSCheck(t *testing.T) {
	b := newBackend(t, true)
	plain := newBackend(t, false)
	roots := x509.NewCertPool()
	roots.AddCert(b.Certificate()) // valid for example.com and 127.0.0.1

	tests := []struct {
		name     string
		cfg      health.HTTPConfig
		want     health.CauseKind
		wantSNI  string // "-" to skip the check
		wantCode int
	}{
		{name: "skip verify", cfg: health.HTTPConfig{InsecureSkipVerify: true}, want: health.CauseOK, wantSNI: ""},
		{name: "unknown authority", cfg: health.HTTPConfig{}, want: health.CauseTLS, wantSNI: "-"},
		{name: "verified against the IP", cfg: health.HTTPConfig{RootCAs: roots}, want: health.CauseOK, wantSNI: ""},
		{name: "SNI", cfg: health.HTTPConfig{RootCAs: roots, ServerName: "example.com"}, want: health.CauseOK, wantSNI: "example.com"},
		{name: "SNI from Host", cfg: health.HTTPConfig{RootCAs: roots, Host: "example.com:8443"}, want: health.CauseOK, wantSNI: "example.com"},
		{name: "SNI skip verify", cfg: health.HTTPConfig{InsecureSkipVerify: true, ServerName: "other.test"}, want: health.CauseOK, wantSNI: "other.test"},
		{name: "name mismatch", cfg: health.HTTPConfig{RootCAs: roots, ServerName: "other.test"}, want: health.CauseTLS, wantSNI: "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Addr, tt.cfg.TLS, tt.cfg.Path = b.addr(), true, "/ok"
			c, err := health.NewHTTPChecker(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			res := c.Check(checkCtx(t, generousTimeout))
			if res.Cause.Kind != tt.want || res.OK != (tt.want == health.CauseOK) {
				t.Fatalf("Check = ok %v, cause %q, want %v", res.OK, res.Cause, tt.want)
			}
			if tt.wantSNI != "-" {
				if sni := b.lastRequest(t).TLS.ServerName; sni != tt.wantSNI {
					t.Errorf("server saw SNI %q, want %q", sni, tt.wantSNI)
				}
			}
		})
	}

	t.Run("https to a plain server", func(t *testing.T) {
		c, err := health.NewHTTPChecker(health.HTTPConfig{Addr: plain.addr(), TLS: true, InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		if res := c.Check(checkCtx(t, generousTimeout)); res.Cause.Kind != health.CauseTLS {
			t.Errorf("Check = ok %v, cause %q, want a TLS error", res.OK, res.Cause)
		}
	})
	t.Run("http to a TLS server", func(t *testing.T) {
		c, err := health.NewHTTPChecker(health.HTTPConfig{Addr: b.addr()})
		if err != nil {
			t.Fatal(err)
		}
		if res := c.Check(checkCtx(t, generousTimeout)); res.Cause.String() != "status 400" {
			t.Errorf("Check = ok %v, cause %q, want status 400", res.OK, res.Cause)
		}
	})
}

// silentListener accepts connections and never answers; with hangUp it
// closes each connection at once instead.
func silentListener(t *testing.T, hangUp bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if hangUp {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestHTTPCheckFailures(t *testing.T) {
	tests := []struct {
		name    string
		addr    string
		tls     bool
		timeout bool
		want    []health.CauseKind // any of
	}{
		{name: "accepts and never answers", addr: silentListener(t, false), timeout: true, want: []health.CauseKind{health.CauseTimeout}},
		{name: "TLS handshake never answered", addr: silentListener(t, false), tls: true, timeout: true, want: []health.CauseKind{health.CauseTimeout}},
		{name: "refused", addr: closedAddr(t), want: []health.CauseKind{health.CauseRefused}},
		// Whether the close or the request comes first is up to the
		// scheduler: the check sees EOF or a reset.
		{name: "accepts and hangs up", addr: silentListener(t, true), want: []health.CauseKind{health.CauseClosed, health.CauseReset}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := health.NewHTTPChecker(health.HTTPConfig{Addr: tt.addr, TLS: tt.tls, InsecureSkipVerify: true})
			if err != nil {
				t.Fatal(err)
			}
			d := generousTimeout
			if tt.timeout {
				d = shortTimeout
			}
			res := c.Check(checkCtx(t, d))
			found := false
			for _, k := range tt.want {
				found = found || res.Cause.Kind == k
			}
			if res.OK || !found {
				t.Errorf("Check = ok %v, cause %q (err %v), want one of %v", res.OK, res.Cause, res.Cause.Err, tt.want)
			}
		})
	}
}

func TestNewHTTPCheckerInvalid(t *testing.T) {
	tests := []struct {
		name string
		cfg  health.HTTPConfig
	}{
		{"no address", health.HTTPConfig{}},
		{"address without port", health.HTTPConfig{Addr: "127.0.0.1"}},
		{"POST", health.HTTPConfig{Addr: "127.0.0.1:80", Method: http.MethodPost}},
		{"HEAD with a body to match", health.HTTPConfig{Addr: "127.0.0.1:80", Method: http.MethodHead, ExpectBody: "ok"}},
		{"relative path", health.HTTPConfig{Addr: "127.0.0.1:80", Path: "health"}},
		{"negative MaxBody", health.HTTPConfig{Addr: "127.0.0.1:80", MaxBody: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := health.NewHTTPChecker(tt.cfg); err == nil {
				t.Error("NewHTTPChecker succeeded, want an error")
			}
		})
	}
}

func TestHTTPCheckerString(t *testing.T) {
	c, err := health.NewHTTPChecker(health.HTTPConfig{Addr: "10.0.0.1:443", TLS: true, Method: http.MethodHead, Path: "/healthz"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.String(), "http HEAD https://10.0.0.1:443/healthz"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// fullListener returns a loopback address whose listener never accepts and
// whose accept queue is full: the kernel drops new SYNs, so a connection
// attempt times out before it is made.
func fullListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, shortTimeout)
		if err != nil {
			return addr // the queue is full
		}
		t.Cleanup(func() { c.Close() })
		if i == 16 {
			t.Skip("the kernel keeps accepting connections into a listen(0) queue")
		}
	}
}

// A timeout before the connection is made says so (HAProxy's L4TOUT), one
// waiting for the answer does not (L7TOUT).
func TestHTTPCheckTimeoutPhase(t *testing.T) {
	for _, tt := range []struct {
		name, addr, detail string
	}{
		{"connecting", fullListener(t), health.DetailConnecting},
		{"answering", silentListener(t, false), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := health.NewHTTPChecker(health.HTTPConfig{Addr: tt.addr})
			if err != nil {
				t.Fatal(err)
			}
			res := c.Check(checkCtx(t, shortTimeout))
			if res.Cause.Kind != health.CauseTimeout || res.Cause.Detail != tt.detail {
				t.Errorf("cause %q (%v), want a timeout with detail %q", res.Cause, res.Cause.Err, tt.detail)
			}
		})
	}
}
