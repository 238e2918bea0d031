package l7

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// checkNoLeaks waits until the frontend has no open connection and no
// goroutine serves one, splices one or reads a server's body (the
// engine's idle workers may stay a while).
func checkNoLeaks(t *testing.T, fe *Frontend) {
	t.Helper()
	waitFor(t, "connections to close", func() bool { return fe.srv.GetOpenConnectionsCount() == 0 })
	buf := make([]byte, 1<<20)
	waitFor(t, "goroutines to end", func() bool {
		stacks := string(buf[:runtime.Stack(buf, true)])
		for _, f := range []string{"fasthttp.(*Server).serveConn", "l7.splice", "l7.(*Frontend).handle", "http2.(*serverConn)"} {
			if strings.Contains(stacks, f) {
				return false
			}
		}
		return true
	})
}

func TestRequestTimeouts(t *testing.T) {
	rec := startRecorder(t)
	fe, addr := startFrontend(t, FrontendConfig{RequestTimeout: 300 * time.Millisecond}, rec.testServer)

	t.Run("slowloris", func(t *testing.T) {
		// Half a header, then nothing: 408 and closed.
		resp, closed := rawRequest(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1", true)
		if resp.StatusCode != http.StatusRequestTimeout || !closed {
			t.Errorf("status %d, closed %v; want 408 and closed", resp.StatusCode, closed)
		}
	})
	t.Run("slowloris trickling", func(t *testing.T) {
		// A byte at a time keeps an inactivity timeout at bay, not the
		// request timeout.
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for _, b := range []byte("GET / HTTP/1.1\r\nHost: x\r\nX-Trickle: " + strings.Repeat("a", 1000)) {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
			}
		}()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("status %d, want 408", resp.StatusCode)
		}
	})
	t.Run("keep-alive", func(t *testing.T) {
		// After a response, an idle connection is closed without one.
		c := dialRaw(t, addr)
		br := bufio.NewReader(c)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if b, err := br.ReadByte(); err != io.EOF {
			t.Errorf("idle connection: read %q, %v; want it closed silently", b, err)
		}
	})
	if rec.bytes.Load() == 0 {
		t.Error("the keep-alive request did not reach the server")
	}
	checkNoLeaks(t, fe)
}

func TestSizeLimits(t *testing.T) {
	rec := startRecorder(t)
	fe, addr := startFrontend(t, FrontendConfig{MaxHeaderSize: 2048, MaxBodySize: 10}, rec.testServer)
	const post = "POST / HTTP/1.1\r\nHost: x\r\n"
	for _, tt := range []struct {
		name, req string
		want      int
	}{
		{"header too large", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 4096) + "\r\n\r\n", 431},
		{"content-length too large", post + "Content-Length: 11\r\n\r\nhello world", 413},
		// fasthttp reads up to 8 KB of a body before the handler.
		{"content-length far too large", post + "Content-Length: 1000000\r\n\r\n" + strings.Repeat("a", 8<<10), 413},
		{"chunked too large", post + "Transfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n", 413},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := rec.bytes.Load()
			resp, closed := rawRequest(t, addr, tt.req, true)
			if resp.StatusCode != tt.want || !closed {
				t.Errorf("status %d, closed %v; want %d and closed", resp.StatusCode, closed, tt.want)
			}
			if got := rec.bytes.Load() - before; got != 0 {
				t.Errorf("the server received %d bytes", got)
			}
		})
	}
	for _, req := range []string{
		post + "Content-Length: 10\r\n\r\nhelloworld",
		post + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n",
	} {
		resp, _ := rawRequest(t, addr, req, false)
		if resp.StatusCode != 200 || resp.Header.Get("X-Seen-Body") != "helloworld" {
			t.Errorf("%q: status %d, server saw %q", req, resp.StatusCode, resp.Header.Get("X-Seen-Body"))
		}
	}
	checkNoLeaks(t, fe)
}

// acceptCounter counts the connections a listener handed out.
type acceptCounter struct {
	net.Listener
	n atomic.Int64
}

func (l *acceptCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func TestMaxConns(t *testing.T) {
	a := startServer(t, "a")
	be, err := NewBackend(BackendConfig{Name: "web", Servers: servers(a)})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	fe, err := NewFrontend(FrontendConfig{Name: "fe", Backend: be, MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &acceptCounter{Listener: raw}
	go fe.Serve(ln)
	defer fe.Shutdown(t.Context())

	request := func(c net.Conn) (*http.Response, error) {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		return http.ReadResponse(bufio.NewReader(c), nil)
	}
	c1, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := request(c1); err != nil || resp.StatusCode != 200 {
		t.Fatalf("first connection: %v", err)
	}
	// The second connection is made (the kernel completes it) but waits
	// in the backlog: not accepted, not answered.
	c2, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := request(c2); err == nil {
		t.Fatal("second connection answered beyond MaxConns")
	}
	if n := ln.n.Load(); n != 1 {
		t.Fatalf("%d connections accepted, want 1", n)
	}
	// Once the first closes, the second is accepted and its request,
	// already sent, answered.
	c1.Close()
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("second connection after the first closed: %v", err)
	}
}
