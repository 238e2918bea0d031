package l7

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestResponseStreaming(t *testing.T) {
	release := make(chan struct{})
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/events": // unknown length, sent in pieces
			io.WriteString(w, "first\n")
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			io.WriteString(w, "second\n")
		case "/big":
			w.Header().Set("Content-Length", fmt.Sprint(4*BodyBuffer))
			w.Write(bytes.Repeat([]byte("b"), 4*BodyBuffer))
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		case "/notmodified":
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	_, url := startProxy(t, BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: srv.Listener.Addr().String()}}})
	cl := &http.Client{}

	// The first piece reaches the client while the server still holds
	// the rest: the body streams.
	resp, err := cl.Get(url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first piece: %q, %v", line, err)
	}
	close(release)
	rest, err := io.ReadAll(br)
	resp.Body.Close()
	if err != nil || string(rest) != "second\n" {
		t.Fatalf("rest: %q, %v", rest, err)
	}

	// Streamed and buffered bodies read to their end leave the server
	// connection reusable; bodiless statuses have no body.
	for _, tt := range []struct {
		path   string
		method string
		status int
		size   int
	}{
		{"/big", "GET", 200, 4 * BodyBuffer},
		{"/", "GET", 200, 5},
		{"/", "HEAD", 200, 0},
		{"/nocontent", "GET", 204, 0},
		{"/notmodified", "GET", 304, 0},
		{"/big", "GET", 200, 4 * BodyBuffer},
	} {
		req, _ := http.NewRequest(tt.method, url+tt.path, nil)
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.method, tt.path, err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tt.status || n != int64(tt.size) {
			t.Errorf("%s %s: status %d, %d bytes, %v; want %d, %d bytes", tt.method, tt.path, resp.StatusCode, n, err, tt.status, tt.size)
		}
		if tt.method == "HEAD" && resp.ContentLength != 5 {
			t.Errorf("HEAD: Content-Length %d, want 5", resp.ContentLength)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d server connections, want 1", n)
	}

	// A client that leaves in the middle of a large body: the half-read
	// server connection is closed, not reused; the next request works.
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := io.ReadFull(c, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	for range 3 {
		r := get(t, cl, url+"/")
		if r.status != 200 || r.server != "hello" {
			t.Fatalf("after an abandoned stream: status %d, body %q", r.status, r.server)
		}
	}
}

// rawServer answers each connection's first request with resp, then
// closes the connection.
func rawServer(t *testing.T, resp string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, resp)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestResponseFraming(t *testing.T) {
	tests := []struct {
		name   string
		resp   string
		status int
		body   string
		broken bool // the client must see a truncated or failed body
	}{
		{"until close", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it", 200, "all of it", false},
		{"http/1.0 until close", "HTTP/1.0 200 OK\r\n\r\nold style", 200, "old style", false},
		{"chunked with trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Sum: 1\r\n\r\n", 200, "abcdefg", false},
		{"100 continue first", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, "ok", false},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 200, "", true},
		{"short fixed body", "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nshort", 200, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := rawServer(t, tt.resp)
			_, url := startProxy(t, BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: addr}}})
			cl := &http.Client{Timeout: 5 * time.Second}
			resp, err := cl.Get(url)
			if err != nil {
				if tt.broken {
					return // failed before the headers: the client knows
				}
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tt.broken {
				if err == nil && resp.StatusCode == tt.status && len(body) > 0 && !strings.Contains(string(body), "short") {
					t.Errorf("broken response passed as whole: %q", body)
				}
				if err == nil && string(body) == "short" {
					t.Errorf("truncated body passed as complete")
				}
				return
			}
			if err != nil || resp.StatusCode != tt.status || string(body) != tt.body {
				t.Errorf("status %d body %q err %v; want %d %q", resp.StatusCode, body, err, tt.status, tt.body)
			}
		})
	}
}
