package l7

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// recorder is a server that counts the bytes it received.
type recorder struct {
	*testServer
	bytes atomic.Int64
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return recvCountingConn{c, l.n}, nil
}

type recvCountingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c recvCountingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func startRecorder(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{testServer: &testServer{name: "rec"}}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		w.Header().Set("X-Seen-Body", string(b))
	}))
	r.srv.Listener = countingListener{r.srv.Listener, &r.bytes}
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

// rawRequest sends raw bytes on a new connection and returns the
// response and, if checkClose, whether the connection was closed after
// it.
func rawRequest(t *testing.T, addr, raw string, checkClose bool) (*http.Response, bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !checkClose {
		return resp, false
	}
	// Closed with unread data the connection is reset, not ended.
	_, err = br.ReadByte()
	return resp, err == io.EOF || errors.Is(err, syscall.ECONNRESET)
}

func TestRequestSmuggling(t *testing.T) {
	rec := startRecorder(t)
	_, addr := startFrontend(t, FrontendConfig{}, rec.testServer)
	const post = "POST / HTTP/1.1\r\nHost: x\r\n"
	for _, tt := range []struct {
		name, req string
		fasthttp  bool // fasthttp's parser refuses it by itself
	}{
		{"CL then TE", post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"TE then CL", post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", false},
		{"two CLs", post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", true},
		{"CL list", post + "Content-Length: 5, 6\r\n\r\nhello!", true},
		{"CL sign", post + "Content-Length: +5\r\n\r\nhello", true},
		{"TE identity", post + "Transfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello", false},
		{"TE gzip, chunked", post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", true},
		{"TE chunked, gzip", post + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", true},
		{"TE twice", post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
		{"TE xchunked", post + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", true},
		{"chunk size not hex", post + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", false},
		{"chunk size negative", post + "Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", false},
		{"chunk size overflow", post + "Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", false},
		{"chunk data too long", post + "Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", false},
		{"obs-fold space", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n", false},
		{"obs-fold tab", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\tTransfer-Encoding: chunked\r\n\r\n", false},
		{"space before colon CL", post + "Content-Length : 5\r\n\r\nhello", false},
		{"space before colon TE", post + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", false},
		{"space in name", "GET / HTTP/1.1\r\nHost: x\r\nX A: 1\r\n\r\n", false},
		{"bare LF", "GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n", false},
		{"bare CR in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", true},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", true},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := rec.bytes.Load()
			resp, closed := rawRequest(t, addr, tt.req, true)
			if resp.StatusCode != http.StatusBadRequest || !closed {
				t.Errorf("status %d, closed %v; want 400 and closed", resp.StatusCode, closed)
			}
			if got := rec.bytes.Load() - before; got != 0 {
				t.Errorf("the server received %d bytes", got)
			}
			// Whether the engine alone refuses it, for the record in
			// checkHeader's comment.
			var h fasthttp.RequestHeader
			h.DisableNormalizing()
			err := h.Read(bufio.NewReader(strings.NewReader(tt.req)))
			if refused := err != nil; refused != tt.fasthttp && !strings.Contains(tt.name, "chunk") {
				t.Errorf("fasthttp refuses it: %v (%v), the table says %v", refused, err, tt.fasthttp)
			}
		})
	}

	// The same framings done right reach the server.
	for _, req := range []string{
		post + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		post + "transfer-encoding:  CHUNKED \r\n\r\n5;ext=1\r\nhello\r\n0\r\n\r\n",
		post + "Content-Length: 5\r\n\r\nhello",
	} {
		resp, _ := rawRequest(t, addr, req, false)
		if resp.StatusCode != 200 || resp.Header.Get("X-Seen-Body") != "hello" {
			t.Errorf("%q: status %d, server saw %q", req, resp.StatusCode, resp.Header.Get("X-Seen-Body"))
		}
	}
}

// FuzzCheckHeader runs header sections through fasthttp's parser and
// checkHeader: no panics, and what both accept, net/http's stricter
// parser reads with the same framing.
func FuzzCheckHeader(f *testing.F) {
	for _, s := range []string{
		"Host: x\r\nContent-Length: 5\r\n\r\n",
		"Host: x\r\nTransfer-Encoding: chunked\r\n\r\n",
		"Host: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"Host: x\r\nX-A: 1\r\n folded\r\n\r\n",
		"Host: x\r\nContent-Length : 5\r\n\r\n",
		"Host: x\nX: 1\r\n\r\n",
		"Host: x\r\nTransfer-Encoding: identity\r\n\r\n",
		"Host: x\r\nHost: y\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, hdr []byte) {
		if checkHeader(hdr) != nil {
			return
		}
		req := append([]byte("POST / HTTP/1.1\r\n"), hdr...)
		var h fasthttp.RequestHeader
		h.DisableNormalizing()
		if err := h.Read(bufio.NewReader(bytes.NewReader(req))); err != nil {
			return
		}
		if checkHeader(h.RawHeaders()) != nil {
			return
		}
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(req)))
		if err != nil {
			// net/http refuses some things both accept (header
			// values with odd bytes, a missing Host); the framing is
			// what matters.
			return
		}
		chunked := len(r.TransferEncoding) > 0
		if chunked != (h.ContentLength() == -1) {
			t.Fatalf("%q: net/http chunked %v, fasthttp Content-Length %d", hdr, chunked, h.ContentLength())
		}
		if !chunked && r.ContentLength != int64(max(h.ContentLength(), 0)) {
			t.Fatalf("%q: net/http Content-Length %d, fasthttp %d", hdr, r.ContentLength, h.ContentLength())
		}
	})
}
