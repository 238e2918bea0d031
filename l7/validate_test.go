package l7

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// recorder is a server that counts the bytes and requests it received
// and says what body it saw: X-Seen-Body (up to 1 KB), X-Seen-Len and
// X-Seen-Sum (SHA-256).
type recorder struct {
	*testServer
	bytes atomic.Int64
	reqs  atomic.Int64
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
		r.reqs.Add(1)
		b, _ := io.ReadAll(req.Body)
		if len(b) <= 1<<10 {
			w.Header().Set("X-Seen-Body", string(b))
		}
		w.Header().Set("X-Seen-Len", strconv.Itoa(len(b)))
		w.Header().Set("X-Seen-Sum", fmt.Sprintf("%x", sha256.Sum256(b)))
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
	c := sendRaw(t, addr, raw)
	defer c.Close()
	return readAnswer(t, bufio.NewReader(c), checkClose)
}

// sendRaw sends raw bytes on a new connection (dialRaw's) and returns
// the connection.
func sendRaw(t *testing.T, addr, raw string) net.Conn {
	t.Helper()
	c := dialRaw(t, addr)
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return c
}

// dialRaw opens a connection with a 10 s deadline, closed when the test
// ends if not before.
func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// readAnswer reads a response from br and, if checkClose, whether the
// connection was closed after it.
func readAnswer(t *testing.T, br *bufio.Reader, checkClose bool) (*http.Response, bool) {
	t.Helper()
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
	const te = "Transfer-Encoding: chunked\r\n\r\n"
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
		// What fasthttp reads leniently in a chunked body; the framer
		// refuses it (framing.go).
		{"chunk size junk", post + te + "5zz\r\nhello\r\n0\r\n\r\n", false},
		{"chunk size space", post + te + "5 \r\nhello\r\n0\r\n\r\n", false},
		{"chunk size space junk", post + te + "5 zz\r\nhello\r\n0\r\n\r\n", false},
		{"chunk size bare LF", post + te + "5\nhello\r\n0\r\n\r\n", false},
		{"chunk size CR without LF", post + te + "5\rhello\r\n0\r\n\r\n", false},
		{"chunk size 0x", post + te + "0x5\r\nhello\r\n0\r\n\r\n", false},
		{"chunk size plus", post + te + "+5\r\nhello\r\n0\r\n\r\n", false},
		{"chunk size 17 digits", post + te + "00000000000000005\r\nhello\r\n0\r\n\r\n", false},
		{"chunk ext bare LF", post + te + "5;a=b\nhello\r\n0\r\n\r\n", false},
		{"chunk ext empty value", post + te + "5;a=\r\nhello\r\n0\r\n\r\n", false},
		{"chunk ext unterminated quote", post + te + "5;a=\"b\r\nhello\r\n0\r\n\r\n", false},
		{"chunk data LF only", post + te + "5\r\nhello\n0\r\n\r\n", false},
		{"chunk data no CRLF", post + te + "5\r\nhello0\r\n\r\n", false},
		{"chunk second size junk", post + te + "5\r\nhello\r\n5zz\r\nworld\r\n0\r\n\r\n", false},
		{"chunk last bare LF", post + te + "5\r\nhello\r\n0\n\r\n", false},
		{"chunk trailer bare LF", post + te + "5\r\nhello\r\n0\r\nX: y\n\r\n", false},
		{"chunk trailer end bare LF", post + te + "5\r\nhello\r\n0\r\n\n", false},
		{"chunk trailer obs-fold", post + te + "5\r\nhello\r\n0\r\nX: y\r\n z\r\n\r\n", false},
		{"obs-fold space", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n", false},
		{"obs-fold tab", "GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\tTransfer-Encoding: chunked\r\n\r\n", false},
		{"space before colon CL", post + "Content-Length : 5\r\n\r\nhello", false},
		{"space before colon TE", post + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", false},
		{"space in name", "GET / HTTP/1.1\r\nHost: x\r\nX A: 1\r\n\r\n", false},
		{"bare LF", "GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n", false},
		{"request line bare LF", "GET / HTTP/1.1\nHost: x\r\n\r\n", false},
		{"request line bare LF, no headers", "GET / HTTP/1.1\n\r\n", false},
		{"leading bare LF", "\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"header end bare LF", "GET / HTTP/1.1\r\nHost: x\r\n\n", true},
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
			if strings.HasPrefix(tt.name, "chunk") {
				// The same with the body coming a byte at a time: the
				// framer meets the error on a read of the body stream,
				// not in what it held before the handler.
				before := rec.bytes.Load()
				resp, closed := slowRequest(t, addr, tt.req, strings.Index(tt.req, "\r\n\r\n")+4, true)
				if resp.StatusCode != http.StatusBadRequest || !closed {
					t.Errorf("byte by byte: status %d, closed %v; want 400 and closed", resp.StatusCode, closed)
				}
				if got := rec.bytes.Load() - before; got != 0 {
					t.Errorf("byte by byte: the server received %d bytes", got)
				}
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

// slowRequest sends raw[:split] and then the rest a byte at a time, until
// a response comes, and returns it and, if checkClose, whether the
// connection was closed after it.
func slowRequest(t *testing.T, addr, raw string, split int, checkClose bool) (*http.Response, bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	answered := func() bool {
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		_, err := br.Peek(1)
		var ne net.Error
		return !errors.As(err, &ne) || !ne.Timeout()
	}
	if _, err := io.WriteString(c, raw[:split]); err != nil {
		t.Fatal(err)
	}
	for i := split; i < len(raw) && !answered(); i++ {
		if _, err := io.WriteString(c, raw[i:i+1]); err != nil {
			break // closed: the response is there to read
		}
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return readAnswer(t, br, checkClose)
}

// TestChunkedBodiesForwarded checks that well-formed chunked bodies, with
// extensions, trailers, many chunks, in one piece or a byte at a time,
// reach the server with the same data.
func TestChunkedBodiesForwarded(t *testing.T) {
	rec := startRecorder(t)
	_, addr := startFrontend(t, FrontendConfig{}, rec.testServer)
	const head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, tt := range chunkedCases {
		if !tt.valid || tt.name == "16 digits" { // fasthttp reads at most 15
			continue
		}
		for _, slow := range []bool{false, true} {
			var resp *http.Response
			if slow {
				resp, _ = slowRequest(t, addr, head+tt.body, len(head), false)
			} else {
				resp, _ = rawRequest(t, addr, head+tt.body, false)
			}
			if resp.StatusCode != 200 || resp.Header.Get("X-Seen-Sum") != fmt.Sprintf("%x", sha256.Sum256([]byte(tt.data))) {
				t.Errorf("%s (byte by byte %v): status %d, server saw %q, want %q",
					tt.name, slow, resp.StatusCode, resp.Header.Get("X-Seen-Body"), tt.data)
			}
		}
	}

	// A large body, streamed: chunks of random sizes and contents, with
	// extensions, sent in one piece and in small writes.
	rnd := rand.New(rand.NewPCG(1, 2))
	var raw bytes.Buffer
	var data []byte
	raw.WriteString(head)
	for len(data) < 1<<20 {
		n := 1 + rnd.IntN(40<<10)
		chunk := make([]byte, n)
		for i := range chunk {
			chunk[i] = "\r\nab0;"[rnd.IntN(6)]
		}
		fmt.Fprintf(&raw, "%X", n)
		if rnd.IntN(3) == 0 {
			raw.WriteString(" ; ext=\"v\\\"\" ;x")
		}
		raw.WriteString("\r\n")
		raw.Write(chunk)
		raw.WriteString("\r\n")
		data = append(data, chunk...)
	}
	raw.WriteString("0\r\nX-T: 1\r\n\r\n")
	want := fmt.Sprintf("%x", sha256.Sum256(data))
	for _, piece := range []int{0, 700} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		go func() {
			b := raw.Bytes()
			for len(b) > 0 {
				k := len(b)
				if piece > 0 {
					k = min(1+rnd.IntN(piece), k)
				}
				if _, err := c.Write(b[:k]); err != nil {
					return
				}
				b = b[k:]
			}
		}()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		c.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Seen-Len") != strconv.Itoa(len(data)) || resp.Header.Get("X-Seen-Sum") != want {
			t.Errorf("large body in pieces of up to %d: status %d, server saw %s bytes", piece, resp.StatusCode, resp.Header.Get("X-Seen-Len"))
		}
	}
}

// TestRequestSmugglingTLS checks that the framer sees the plaintext of
// TLS connections.
func TestRequestSmugglingTLS(t *testing.T) {
	rec := startRecorder(t)
	_, addr := startFrontend(t, FrontendConfig{TLS: &TLSConfig{Certs: []CertFile{writeCert(t, t.TempDir(), "site", "site.test")}}},
		rec.testServer)
	const chunked = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, tt := range []struct {
		req  string
		code int
	}{
		{"GET / HTTP/1.1\nHost: x\r\n\r\n", 400},
		{chunked + "5zz\r\nhello\r\n0\r\n\r\n", 400},
		{chunked + "5;a=b\r\nhello\r\n0\r\n\r\n", 200},
	} {
		before := rec.bytes.Load()
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "site.test", InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, tt.req)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatalf("%q: %v", tt.req, err)
		}
		if resp.StatusCode != tt.code {
			t.Errorf("%q: status %d, want %d", tt.req, resp.StatusCode, tt.code)
		}
		if got := rec.bytes.Load() - before; tt.code == 400 && got != 0 {
			t.Errorf("%q: the server received %d bytes", tt.req, got)
		}
	}
}

// TestPipelinedMalformed checks a malformed request that comes in the
// same read as good ones: they are answered, it is refused and the server
// never sees it.
func TestPipelinedMalformed(t *testing.T) {
	rec := startRecorder(t)
	_, addr := startFrontend(t, FrontendConfig{}, rec.testServer)
	const get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	const chunked = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, tt := range []struct {
		name, req string
		good      int // requests answered before the bad one
	}{
		{"bare LF after a GET", get + "GET /x HTTP/1.1\nHost: x\r\n\r\n", 1},
		{"bare LF after a chunked body", chunked + "5\r\nhello\r\n0\r\n\r\nGET /x HTTP/1.1\nHost: x\r\n\r\n", 1},
		{"bad chunk after a chunked body", chunked + "5\r\nhello\r\n0\r\n\r\n" + chunked + "5zz\r\nhello\r\n0\r\n\r\n", 1},
		{"bad chunk after two GETs", get + get + chunked + "5 z\r\nhello\r\n0\r\n\r\n", 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := rec.reqs.Load()
			c := sendRaw(t, addr, tt.req)
			defer c.Close()
			br := bufio.NewReader(c)
			for i := 0; i <= tt.good; i++ {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("response %d: %v", i+1, err)
				}
				io.Copy(io.Discard, resp.Body)
				if want := map[bool]int{true: 200, false: 400}[i < tt.good]; resp.StatusCode != want {
					t.Errorf("response %d: status %d, want %d", i+1, resp.StatusCode, want)
				}
			}
			if _, err := br.ReadByte(); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("the connection stayed open: %v", err)
			}
			if got := rec.reqs.Load() - before; got != int64(tt.good) {
				t.Errorf("the server received %d requests, want %d", got, tt.good)
			}
		})
	}
}

// TestUnreadBodyCloses checks that a request the frontend answers without
// reading its body closes the connection: the rest of the body is not
// read as the next request.
func TestUnreadBodyCloses(t *testing.T) {
	rec := startRecorder(t)
	be, err := NewBackend(BackendConfig{Name: "web", Servers: servers(rec.testServer)})
	if err != nil {
		t.Fatal(err)
	}
	_, addr := serveFrontend(t, FrontendConfig{Name: "fe", Logger: zerolog.Nop(), Backend: be,
		Rules: []Rule{{PathPrefix: []string{"/ret"}, Return: &Return{Body: "ret"}}}})
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	// fasthttp reads up to 8 KB of a body before the handler.
	long := strings.Repeat("a", 8<<10) + smuggled
	for _, req := range []string{
		"POST /ret HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(long)) + "\r\n\r\n" + long,
		"POST /ret HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled),
	} {
		resp, closed := rawRequest(t, addr, req, true)
		if resp.StatusCode != 200 || !closed {
			t.Errorf("%.40q: status %d, closed %v; want 200 and closed", req, resp.StatusCode, closed)
		}
	}
	if n := rec.reqs.Load(); n != 0 {
		t.Errorf("the server received %d requests", n)
	}
	// A body the server read keeps the connection; one that is answered
	// unread after it on the same connection closes it.
	c := dialRaw(t, addr)
	br := bufio.NewReader(c)
	for i, path := range []string{"/x", "/y", "/ret"} {
		io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on the connection: %v", i+1, err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 || resp.Close != (path == "/ret") {
			t.Errorf("%s: status %d, close %v", path, resp.StatusCode, resp.Close)
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
