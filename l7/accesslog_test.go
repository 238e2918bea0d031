package l7

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// logLine is an access log line as JSON.
type logLine struct {
	ClientIP    string `json:"client_ip"`
	ClientPort  int    `json:"client_port"`
	AcceptDate  string `json:"accept_date"`
	Frontend    string `json:"frontend_name"`
	Backend     string `json:"backend_name"`
	Server      string `json:"server_name"`
	TR          int64  `json:"TR"`
	Tw          int64  `json:"Tw"`
	Tc          int64  `json:"Tc"`
	Tr          int64  `json:"Tr"`
	Ta          int64  `json:"Ta"`
	Status      int    `json:"status_code"`
	Bytes       int64  `json:"bytes_read"`
	Termination string `json:"termination_state"`
	Retries     int    `json:"retries"`
	Request     string `json:"http_request"`
}

// lineBuffer collects log lines written concurrently.
type lineBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lineBuffer) lines(t *testing.T) []logLine {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var ls []logLine
	for _, l := range bytes.Split(bytes.TrimSpace(b.buf.Bytes()), []byte{'\n'}) {
		if len(l) == 0 {
			continue
		}
		var ll logLine
		if err := json.Unmarshal(l, &ll); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		ls = append(ls, ll)
	}
	return ls
}

// next waits for the log line after the n read so far: it is written once
// the response has gone out, which may be after the client has it.
func (b *lineBuffer) next(t *testing.T, n *int) logLine {
	t.Helper()
	var ls []logLine
	waitFor(t, "log line", func() bool { ls = b.lines(t); return len(ls) > *n })
	*n++
	return ls[*n-1]
}

// startLoggedProxy is startProxy with an access log.
func startLoggedProxy(t *testing.T, cfg BackendConfig) (*Backend, *Frontend, string, *lineBuffer) {
	t.Helper()
	be, err := NewBackend(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lb := &lineBuffer{}
	access := zerolog.New(lb)
	fe, addr := serveFrontend(t, FrontendConfig{Name: "fe", Backend: be, Logger: zerolog.Nop(), AccessLog: &access})
	return be, fe, "http://" + addr, lb
}

// checkTimers checks what holds of any line: the timers that did not
// happen are -1, the others add up to at most Ta.
func checkTimers(t *testing.T, l logLine) {
	t.Helper()
	sum := int64(0)
	for _, v := range []int64{l.TR, l.Tw, l.Tc, l.Tr} {
		if v < -1 {
			t.Errorf("timer %d < -1 in %+v", v, l)
		}
		sum += max(v, 0)
	}
	if l.Ta < sum {
		t.Errorf("Ta %d < TR+Tw+Tc+Tr %d in %+v", l.Ta, sum, l)
	}
}

func TestAccessLog(t *testing.T) {
	a, b := startServer(t, "a"), startServer(t, "b")
	be, _, url, lb := startLoggedProxy(t, BackendConfig{Name: "web", Servers: servers(a, b),
		Cookie: &CookieConfig{Name: "SRV"}})
	var local string
	cl := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			local = c.LocalAddr().String()
		}
		return c, err
	}}}
	n := 0

	before := time.Now().Truncate(time.Millisecond)
	r := get(t, cl, url+"/path?q=1")
	l := lb.next(t, &n)
	checkTimers(t, l)
	host, port, _ := net.SplitHostPort(local)
	if l.ClientIP != host || strconv.Itoa(l.ClientPort) != port {
		t.Errorf("client %s:%d, want %s", l.ClientIP, l.ClientPort, local)
	}
	if d, err := time.Parse(dateLayout, l.AcceptDate); err != nil || d.Before(before) || d.After(time.Now()) {
		t.Errorf("accept_date %q (%v) not between %v and now", l.AcceptDate, err, before)
	}
	if l.Frontend != "fe" || l.Backend != "web" || l.Server != r.server || l.Status != 200 || l.Retries != 0 {
		t.Errorf("line %+v, want fe web/%s 200", l, r.server)
	}
	if l.Request != "GET /path?q=1 HTTP/1.1" {
		t.Errorf("http_request %q", l.Request)
	}
	// No cookie, one inserted; a new server connection.
	if l.Termination != "--NI" || l.TR < 0 || l.Tw < 0 || l.Tc < 0 || l.Tr < 0 {
		t.Errorf("first request: %+v, want --NI and all timers", l)
	}
	if l.Bytes <= int64(len(r.server)) {
		t.Errorf("bytes_read %d, less than the body", l.Bytes)
	}

	// The valid cookie, again and again: nothing inserted. The second
	// request to the same server reuses its connection: Tc is 0.
	for i := range 2 {
		get(t, cl, url, "Cookie", "SRV="+r.server)
		l = lb.next(t, &n)
		checkTimers(t, l)
		if l.Termination != "--VN" || l.Server != r.server {
			t.Errorf("sticky request: %+v, want --VN to %s", l, r.server)
		}
		if i == 1 && l.Tc != 0 {
			t.Errorf("reused server connection: Tc %d, want 0", l.Tc)
		}
	}

	// An unknown server's cookie: invalid, replaced.
	get(t, cl, url, "Cookie", "SRV=zz")
	if l = lb.next(t, &n); l.Termination != "--II" {
		t.Errorf("unknown cookie: %q, want --II", l.Termination)
	}

	// A down server's cookie: sent elsewhere, a new cookie inserted.
	if err := be.SetUp("b", false); err != nil {
		t.Fatal(err)
	}
	get(t, cl, url, "Cookie", "SRV=b")
	if l = lb.next(t, &n); l.Termination != "--DI" || l.Server != "a" {
		t.Errorf("down server's cookie: %+v, want --DI to a", l)
	}

	// No live server at all.
	if err := be.SetUp("a", false); err != nil {
		t.Fatal(err)
	}
	get(t, cl, url)
	l = lb.next(t, &n)
	checkTimers(t, l)
	if l.Termination != "SCNN" || l.Status != 503 || l.Server != "<NOSRV>" || l.Tw != -1 || l.Tc != -1 || l.Tr != -1 {
		t.Errorf("no server: %+v, want SCNN 503 <NOSRV> -1/-1/-1", l)
	}
}

func TestAccessLogExpiredCookies(t *testing.T) {
	a := startServer(t, "a")
	_, _, url, lb := startLoggedProxy(t, BackendConfig{Name: "web", Servers: servers(a),
		Cookie: &CookieConfig{Name: "SRV", MaxIdle: time.Hour, MaxLife: 24 * time.Hour}})
	now := cookieDate(time.Now())
	old := string(appendDate(nil, now-3*24*3600/4)) // 3 days ago
	recent := string(appendDate(nil, now-1))        // 4 seconds ago
	n := 0
	for _, tt := range []struct{ cookie, want string }{
		{"a|" + recent + "|" + recent, "--VU"}, // valid, its date refreshed
		{"a|" + old + "|" + recent, "--EI"},    // last seen too long ago
		{"a|" + recent + "|" + old, "--OI"},    // first seen too long ago
	} {
		get(t, &http.Client{}, url, "Cookie", "SRV="+tt.cookie)
		if l := lb.next(t, &n); l.Termination != tt.want {
			t.Errorf("cookie %s: %q, want %q", tt.cookie, l.Termination, tt.want)
		}
	}
}

func TestAccessLogServerFailures(t *testing.T) {
	t.Run("connect", func(t *testing.T) {
		be, _, url, lb := startLoggedProxy(t, BackendConfig{Name: "web",
			Servers: []ServerConfig{{Name: "dead", Addr: deadAddr(t)}}, Retries: 2})
		r := get(t, &http.Client{}, url)
		n := 0
		l := lb.next(t, &n)
		checkTimers(t, l)
		if l.Termination != "SC--" || l.Status != r.status || l.Server != "dead" || l.Retries != 2 ||
			l.Tw < 0 || l.Tc != -1 || l.Tr != -1 {
			t.Errorf("connect failure: %+v, want SC-- to dead, 2 retries, Tc and Tr -1", l)
		}
		s := be.Stats()
		if s.ECon != 1 || s.WRetr != 2 || s.Servers[0].ECon != 1 || s.Servers[0].WRetr != 2 {
			t.Errorf("connect failure: econ %d/%d, wretr %d/%d, want 1 and 2",
				s.ECon, s.Servers[0].ECon, s.WRetr, s.Servers[0].WRetr)
		}
	})
	t.Run("server timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		be, _, url, lb := startLoggedProxy(t, BackendConfig{Name: "web",
			Servers: []ServerConfig{{Name: "a", Addr: srv.Listener.Addr().String()}}, ServerTimeout: 100 * time.Millisecond})
		get(t, &http.Client{}, url)
		n := 0
		l := lb.next(t, &n)
		checkTimers(t, l)
		// The timeout is an inactivity timeout of at least 3/4 of it.
		if l.Termination != "sH--" || l.Status != 504 || l.Tc < 0 || l.Tr != -1 || l.Ta < 75 {
			t.Errorf("server timeout: %+v, want sH-- 504, Tr -1, Ta at least the timeout", l)
		}
		if s := be.Stats(); s.EResp != 1 || s.Servers[0].EResp != 1 {
			t.Errorf("server timeout: eresp %d/%d, want 1", s.EResp, s.Servers[0].EResp)
		}
	})
	t.Run("server abort in body", func(t *testing.T) {
		// A body larger than BodyBuffer is streamed; the server stops
		// after a few bytes of it.
		addr := rawServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nshort")
		be, _, url, lb := startLoggedProxy(t, BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: addr}}})
		resp, err := http.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		n := 0
		l := lb.next(t, &n)
		checkTimers(t, l)
		if l.Termination != "SD--" || l.Status != 200 || l.Tr < 0 {
			t.Errorf("server abort: %+v, want SD-- 200", l)
		}
		if s := be.Stats(); s.SrvAbrt != 1 || s.EResp != 1 || s.Servers[0].SrvAbrt != 1 {
			t.Errorf("server abort: srv_abrt %d/%d, eresp %d", s.SrvAbrt, s.Servers[0].SrvAbrt, s.EResp)
		}
	})
}

func TestAccessLogTimers(t *testing.T) {
	const delay = 30 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		io.WriteString(w, "late")
	}))
	defer srv.Close()
	_, _, url, lb := startLoggedProxy(t, BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: srv.Listener.Addr().String()}}})
	get(t, &http.Client{}, url)
	n := 0
	l := lb.next(t, &n)
	checkTimers(t, l)
	// The server's delay is in Tr, and so in Ta.
	if l.Tr < delay.Milliseconds() || l.Ta < l.Tr {
		t.Errorf("timers %d/%d/%d/%d/%d, want Tr >= %d and Ta >= Tr", l.TR, l.Tw, l.Tc, l.Tr, l.Ta, delay.Milliseconds())
	}
}

func TestAccessLogClient(t *testing.T) {
	t.Run("bad request", func(t *testing.T) {
		a := startServer(t, "a")
		_, fe, url, lb := startLoggedProxy(t, BackendConfig{Name: "web", Servers: servers(a)})
		c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET\r\n\r\n") // no URI, no protocol
		resp, _ := io.ReadAll(c)
		if !bytes.HasPrefix(resp, []byte("HTTP/1.1 400")) {
			t.Errorf("bad request: response %q", resp)
		}
		n := 0
		l := lb.next(t, &n)
		checkTimers(t, l)
		if l.Termination != "PR--" || l.Status != 400 || l.Backend != "fe" || l.Server != "<NOSRV>" || l.TR != -1 ||
			l.Bytes != int64(len(resp)) || l.Request != "<BADREQ>" {
			t.Errorf("bad request: %+v, want PR-- 400 fe/<NOSRV>, TR -1, %d bytes", l, len(resp))
		}
		if s := fe.Stats(); s.EReq != 1 || s.HRsp4xx != 1 {
			t.Errorf("bad request: ereq %d, hrsp_4xx %d, want 1", s.EReq, s.HRsp4xx)
		}
	})
	t.Run("client abort in body", func(t *testing.T) {
		// A server that sends a body until the proxy closes.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			chunk := bytes.Repeat([]byte("x"), 64<<10)
			for {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}))
		defer srv.Close()
		be, _, url, lb := startLoggedProxy(t, BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: srv.Listener.Addr().String()}}})
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadFull(resp.Body, make([]byte, 1<<20))
		resp.Body.Close() // closes the connection: the body was not read to its end
		n := 0
		l := lb.next(t, &n)
		checkTimers(t, l)
		if l.Termination != "CD--" || l.Status != 200 || l.Bytes < 1<<20 {
			t.Errorf("client abort: %+v, want CD-- 200 and at least what was read", l)
		}
		if s := be.Stats(); s.CliAbrt != 1 || s.Servers[0].CliAbrt != 1 {
			t.Errorf("client abort: cli_abrt %d/%d, want 1", s.CliAbrt, s.Servers[0].CliAbrt)
		}
	})
}

// TestAccessLogAllocs checks that the frontend with its access log and
// counters allocates nothing per keep-alive request in steady state, end
// to end: a client that allocates nothing, the frontend, the backend and
// a server that allocates nothing.
func TestAccessLogAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	addr := startCannedServer(t)
	be, err := NewBackend(BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: addr}}, ForwardFor: true,
		Cookie: &CookieConfig{Name: "SRV"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		log  bool
	}{{"counters", false}, {"access log", true}} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := FrontendConfig{Name: "fe", Backend: be, Logger: zerolog.Nop()}
			if tt.log {
				l := zerolog.New(io.Discard).With().Timestamp().Logger()
				cfg.AccessLog = &l
			}
			fe, feAddr := serveFrontend(t, cfg)
			c, response := cannedClient(t, feAddr)
			req := []byte("GET /some/path?x=1 HTTP/1.1\r\nHost: x\r\nCookie: SRV=a\r\n\r\n")
			run := func() {
				if _, err := c.Write(req); err != nil {
					t.Fatal(err)
				}
				response()
			}
			for range 10 {
				run()
			}
			if n := testing.AllocsPerRun(200, run); n > 0 {
				t.Errorf("%.2f allocations per request, want 0", n)
			}
			if n := fe.Stats().ReqTot; n < 211 { // 10 + AllocsPerRun's warm-up and 200
				t.Errorf("the frontend counted %d requests: the client did not go through it", n)
			}
		})
	}
}
