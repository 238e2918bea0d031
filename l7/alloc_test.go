package l7

import (
	"bytes"
	"net"
	"net/http"
	"testing"
	"time"

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

// startCannedServer answers every request (without body) with the same
// response and allocates nothing per request, so that AllocsPerRun counts
// the proxy only.
func startCannedServer(t *testing.T) string {
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
						i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						if _, err := c.Write(resp); err != nil {
							return
						}
						n = copy(buf, buf[i+4:n])
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
