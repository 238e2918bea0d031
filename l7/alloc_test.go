package l7

import (
	"bytes"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// TestServeAllocs checks the steady state of the proxy path: a keep-alive
// request through a warm connection pool allocates nothing.
func TestServeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	addr := startCannedServer(t)
	for _, tt := range []struct {
		name   string
		cookie *CookieConfig
		sent   string
	}{
		{"sticky", &CookieConfig{Name: "SRV"}, "SRV=a; other=1"},
		{"insert", &CookieConfig{Name: "SRV"}, ""},
		{"insert dated", &CookieConfig{Name: "SRV", MaxIdle: time.Hour, MaxLife: time.Hour}, "other=1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			be, err := NewBackend(BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: addr}},
				ForwardFor: true, Cookie: tt.cookie})
			if err != nil {
				t.Fatal(err)
			}
			defer be.Close()
			// The handler's client connection, as the frontend wraps it.
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
				ctx.Request.SetRequestURI("/")
				ctx.Request.Header.SetHost("x")
				if tt.sent != "" {
					ctx.Request.Header.Set("Cookie", tt.sent)
				}
				be.Serve(&ctx)
				if ctx.Response.StatusCode() != 200 {
					t.Fatalf("status %d", ctx.Response.StatusCode())
				}
			}
			run()
			if n := testing.AllocsPerRun(200, run); n > 0 {
				t.Errorf("%.1f allocations per request, want 0", n)
			}
		})
	}
}

// TestChunkedRequestAllocs checks that the framer's checks of a chunked
// request and its forwarding allocate nothing: a body in the header's packet, held and
// checked when the handler resumes the framer, and a body that comes
// after the header, checked as the transport reads it.
func TestChunkedRequestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	// The transport sends the body as one chunk and the last chunk.
	addr := startCannedServerEnd(t, "\r\n0\r\n\r\n")
	be, err := NewBackend(BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: addr}}})
	if err != nil {
		t.Fatal(err)
	}
	_, feAddr := serveFrontend(t, FrontendConfig{Name: "fe", Backend: be, Logger: zerolog.Nop()})
	c, response := cannedClient(t, feAddr)
	head := []byte("POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	body := []byte("5;a=b\r\nhello\r\n6 ; q=\"x y\"\r\n world\r\n0\r\nX-T: 1\r\n\r\n")
	whole := append(append([]byte(nil), head...), body...)
	for _, split := range []bool{false, true} {
		run := func() {
			if split {
				c.Write(head)
				time.Sleep(50 * time.Microsecond)
				c.Write(body)
			} else if _, err := c.Write(whole); err != nil {
				t.Fatal(err)
			}
			if r := response(); !bytes.HasPrefix(r, []byte("HTTP/1.1 200")) {
				t.Fatalf("response %q", r)
			}
		}
		for range 10 {
			run()
		}
		// fasthttp allocates one: acquireRequestStream's bytes.Reader,
		// for every request body it streams.
		if n := testing.AllocsPerRun(200, run); n > 1 {
			t.Errorf("split %v: %.2f allocations per request, want 1", split, n)
		}
	}
}

// cannedClient connects to a frontend in front of a canned server and
// returns the connection and a function that reads one canned response
// into a buffer it reuses, so that reading allocates nothing.
func cannedClient(t *testing.T, feAddr string) (net.Conn, func() []byte) {
	t.Helper()
	c, err := net.Dial("tcp", feAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	buf := make([]byte, 4096)
	return c, func() []byte {
		n := 0
		for !bytes.HasSuffix(buf[:n], []byte("hello")) {
			m, err := c.Read(buf[n:])
			if err != nil {
				t.Fatal(err)
			}
			n += m
		}
		return buf[:n]
	}
}

// startCannedServer answers every request (without body) with the same
// response and allocates nothing per request, so that AllocsPerRun counts
// the proxy only.
func startCannedServer(t *testing.T) string {
	t.Helper()
	return startCannedServerEnd(t, "\r\n\r\n")
}

// startCannedServerEnd is startCannedServer for requests that end with
// end.
func startCannedServerEnd(t *testing.T, end string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				n := 0
				for {
					m, err := c.Read(buf[n:])
					if err != nil {
						return
					}
					n += m
					for {
						i := bytes.Index(buf[:n], []byte(end))
						if i < 0 {
							break
						}
						if _, err := c.Write(resp); err != nil {
							return
						}
						n = copy(buf, buf[i+len(end):n])
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestLoopAllocs checks the event loops' steady state: a keep-alive
// request through a frontend, with a cookie inserted and
// X-Forwarded-For, allocates nothing.
func TestLoopAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	addr := startCannedServer(t)
	be, err := NewBackend(BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: addr}},
		ForwardFor: true, Cookie: &CookieConfig{Name: "SRV", NoCache: true}})
	if err != nil {
		t.Fatal(err)
	}
	_, feAddr := serveFrontend(t, FrontendConfig{Name: "fe", Backend: be, Logger: zerolog.Nop()})
	c, response := cannedClient(t, feAddr)
	req := []byte("GET /x HTTP/1.1\r\nHost: x\r\nCookie: other=1\r\n\r\n")
	run := func() {
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		if r := response(); !bytes.HasPrefix(r, []byte("HTTP/1.1 200")) || !bytes.Contains(r, []byte("Set-Cookie: SRV=a")) {
			t.Fatalf("response %q", r)
		}
	}
	for range 10 {
		run()
	}
	if n := testing.AllocsPerRun(500, run); n > 0 {
		t.Errorf("%.2f allocations per request, want 0", n)
	}
}
