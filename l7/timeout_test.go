package l7

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestTimeoutConnInactivity(t *testing.T) {
	a, _ := tcpPair(t)
	c := newTimeoutConn(a, 200*time.Millisecond)
	// The engine's own deadlines are ignored.
	if err := c.SetReadDeadline(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read from a silent peer: %v, want a timeout", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
		t.Errorf("timed out after %v, want 150-200ms", d)
	}
}

func TestTimeoutConnActivityExtends(t *testing.T) {
	a, b := tcpPair(t)
	c := newTimeoutConn(a, 200*time.Millisecond)
	go func() {
		for range 10 {
			time.Sleep(50 * time.Millisecond)
			b.Write([]byte("x"))
		}
	}()
	// 10 reads over 500ms, each within the timeout of the previous one.
	buf := make([]byte, 1)
	for i := range 10 {
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
}

func TestSendAndAwait(t *testing.T) {
	a, b := tcpPair(t)
	c := newServerConn(a, 5*time.Second)
	if c.raw == nil {
		t.Fatal("no raw connection on a TCP connection")
	}
	for _, size := range []int{10, captureLimit, captureLimit + 1, 1 << 20} {
		req := bytes.Repeat([]byte("r"), size)
		got := make(chan []byte, 1)
		go func() {
			buf := make([]byte, size)
			if _, err := io.ReadFull(b, buf); err != nil {
				got <- nil
				return
			}
			got <- buf
			b.Write([]byte("answer"))
		}()
		c.startCapture()
		if _, err := c.Write(req); err != nil {
			t.Fatalf("size %d: write: %v", size, err)
		}
		if err := c.sendAndAwait(); err != nil {
			t.Fatalf("size %d: sendAndAwait: %v", size, err)
		}
		if g := <-got; !bytes.Equal(g, req) {
			t.Fatalf("size %d: the server got %d bytes, want the request", size, len(g))
		}
		ans := make([]byte, 6)
		if _, err := io.ReadFull(c, ans); err != nil || string(ans) != "answer" {
			t.Fatalf("size %d: answer %q, %v", size, ans, err)
		}
	}
}

func TestClientIdleTimeout(t *testing.T) {
	a := startServer(t, "a")
	be, err := NewBackend(BackendConfig{Name: "web", Servers: servers(a)})
	if err != nil {
		t.Fatal(err)
	}
	_, addr := serveFrontend(t, FrontendConfig{Name: "fe", Backend: be, ClientTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	start := time.Now()
	all, err := io.ReadAll(c) // until the proxy closes the idle connection
	if err != nil || !strings.Contains(string(all), "200 OK") {
		t.Fatalf("%q, %v", all, err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 3*time.Second {
		t.Errorf("idle connection closed after %v, want about 200ms", d)
	}
}
