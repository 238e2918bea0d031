package l7

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// shapeServer answers in the shapes a response can take on the wire:
// /fixed a Content-Length body, /chunked chunks, /close a body delimited
// by the close, /none 204, /big 2 MB with a Content-Length, /slow the
// fixed body after 300 ms.
func shapeServer(t *testing.T) (addr string, big []byte) {
	t.Helper()
	big = make([]byte, 2<<20)
	r := rand.NewChaCha8([32]byte{7})
	r.Read(big)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen-Body", string(body))
		w.Header().Set("X-Seen-XFF", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Seen-Cookie", r.Header.Get("Cookie"))
		switch r.URL.Path {
		case "/fixed":
			io.WriteString(w, strings.Repeat("f", 100))
		case "/slow":
			time.Sleep(300 * time.Millisecond)
			io.WriteString(w, "slow")
		case "/chunked":
			for i := range 20 {
				fmt.Fprintf(w, "chunk %d %s\n", i, strings.Repeat("c", i*100))
				w.(http.Flusher).Flush()
			}
		case "/close":
			hj, _, _ := w.(http.Hijacker).Hijack()
			io.WriteString(hj, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close")
			hj.Close()
		case "/none":
			w.WriteHeader(http.StatusNoContent)
		case "/big":
			w.Write(big)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), big
}

// shapeFrontend serves addr with engine: roundrobin, cookie insert,
// forwardfor, the Server header hidden.
func shapeFrontend(t *testing.T, addr, engine string) string {
	t.Helper()
	be, err := NewBackend(BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: addr}},
		ForwardFor: true, HideServer: true, Cookie: &CookieConfig{Name: "SRV", NoCache: true}})
	if err != nil {
		t.Fatal(err)
	}
	_, fa := serveFrontend(t, FrontendConfig{Name: "fe", Backend: be, Logger: zerolog.Nop(), Engine: engine})
	return fa
}

// exchange sends raw on a new connection and reads the responses to the
// methods given, then whether the connection was closed after them.
func exchange(t *testing.T, addr, raw string, methods ...string) ([]*http.Response, [][]byte, bool) {
	t.Helper()
	c := sendRaw(t, addr, raw)
	defer c.Close()
	br := bufio.NewReader(c)
	var resps []*http.Response
	var bodies [][]byte
	for _, m := range methods {
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("%q: response %d: %v", raw, len(resps), err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%q: body %d: %v", raw, len(resps), err)
		}
		resps = append(resps, resp)
		bodies = append(bodies, body)
	}
	// A connection the last response says is closing gets time to
	// close on a busy machine; one kept open is given 300 ms to show
	// that it is not closing.
	wait := 300 * time.Millisecond
	if n := len(resps); n > 0 && resps[n-1].Close {
		wait = 3 * time.Second
	}
	c.SetReadDeadline(time.Now().Add(wait))
	_, err := br.ReadByte()
	closed := err == io.EOF
	return resps, bodies, closed
}

// describe is a response as the client sees it, without its Date.
func describe(resp *http.Response, body []byte, closed bool) string {
	var keys []string
	for k := range resp.Header {
		if k != "Date" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %v close=%v closed=%v\n", resp.Status, resp.TransferEncoding, resp.Close, closed)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(resp.Header[k], " | "))
	}
	fmt.Fprintf(&b, "body %d bytes %x", len(body), sha256.Sum256(body))
	return b.String()
}

// TestEnginesAgree sends the same requests to both engines: the client
// gets the same responses, byte for byte but for the Date.
func TestEnginesAgree(t *testing.T) {
	addr, _ := shapeServer(t)
	loops := shapeFrontend(t, addr, EngineLoops)
	gor := shapeFrontend(t, addr, EngineGoroutines)
	for _, tt := range []struct {
		name, raw string
		methods   []string
		// loops, if set, checks the loops' response where the engines
		// differ on purpose: the goroutine engine is wrong there.
		loops func(*http.Response) error
	}{
		{"fixed", "GET /fixed HTTP/1.1\r\nHost: x\r\n\r\n", []string{"GET"}, nil},
		{"head", "HEAD /fixed HTTP/1.1\r\nHost: x\r\n\r\n", []string{"HEAD"}, nil},
		{"chunked", "GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n", []string{"GET"}, nil},
		{"chunked to HTTP/1.0", "GET /chunked HTTP/1.0\r\n\r\n", []string{"GET"}, func(r *http.Response) error {
			if len(r.TransferEncoding) > 0 || !r.Close { // RFC 9112 6.1
				return fmt.Errorf("chunks to an HTTP/1.0 client (%v), close %v", r.TransferEncoding, r.Close)
			}
			return nil
		}},
		{"HTTP/1.0 keep-alive", "GET /fixed HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", []string{"GET"}, nil},
		{"close-delimited", "GET /close HTTP/1.1\r\nHost: x\r\n\r\n", []string{"GET"}, nil},
		{"204", "GET /none HTTP/1.1\r\nHost: x\r\n\r\n", []string{"GET"}, func(r *http.Response) error {
			if ct := r.Header.Get("Content-Type"); ct != "" {
				return fmt.Errorf("Content-Type %q on a 204 the server sent without", ct)
			}
			return nil
		}},
		{"404", "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n", []string{"GET"}, nil},
		{"post", "POST /fixed HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", []string{"POST"}, nil},
		{"client close", "GET /fixed HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", []string{"GET"}, nil},
		{"sticky", "GET /fixed HTTP/1.1\r\nHost: x\r\nCookie: SRV=a; app=1\r\n\r\n", []string{"GET"}, nil},
		{"pipelined", "GET /fixed HTTP/1.1\r\nHost: x\r\n\r\nGET /chunked HTTP/1.1\r\nHost: x\r\n\r\nHEAD /fixed HTTP/1.1\r\nHost: x\r\n\r\n",
			[]string{"GET", "GET", "HEAD"}, nil},
		{"handed over mid-connection", "GET /fixed HTTP/1.1\r\nHost: x\r\n\r\n" +
			"POST /fixed HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
			"GET /fixed HTTP/1.1\r\nHost: x\r\n\r\n", []string{"GET", "POST", "GET"}, nil},
		{"expect", "POST /fixed HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi", []string{"POST"}, nil},
		{"smuggling", "POST /fixed HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []string{"POST"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rl, bl, cl := exchange(t, loops, tt.raw, tt.methods...)
			rg, bg, cg := exchange(t, gor, tt.raw, tt.methods...)
			for i := range rl {
				if tt.loops != nil {
					if err := tt.loops(rl[i]); err != nil {
						t.Error(err)
					}
					if !bytes.Equal(bl[i], bg[i]) {
						t.Errorf("bodies differ: %q, %q", bl[i], bg[i])
					}
					continue
				}
				a, b := describe(rl[i], bl[i], cl), describe(rg[i], bg[i], cg)
				if a != b {
					t.Errorf("response %d differs:\nloops:\n%s\ngoroutines:\n%s", i, a, b)
				}
			}
		})
	}
}

// TestLoopSlowClient sends a 2 MB body to a client that reads slowly at
// first: the loop holds the server back and the body arrives whole; the
// server connection serves the next request.
func TestLoopSlowClient(t *testing.T) {
	for _, engine := range []string{EngineLoops, EngineGoroutines} {
		t.Run(engine, func(t *testing.T) { slowClient(t, engine) })
	}
}

func slowClient(t *testing.T, engine string) {
	addr, big := shapeServer(t)
	fa := shapeFrontend(t, addr, engine)
	c, err := net.Dial("tcp", fa)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(64 << 10)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /fixed HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReaderSize(c, 1024)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the proxy's output fills
	var got bytes.Buffer
	buf := make([]byte, 1024)
	for i := 0; i < 50; i++ { // 50 KB slowly
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	io.Copy(&got, resp.Body)
	if !bytes.Equal(got.Bytes(), big) {
		t.Fatalf("got %d bytes, want the server's %d", got.Len(), len(big))
	}
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if len(body) != 100 {
		t.Errorf("next response: %d bytes", len(body))
	}
}

// TestLoopShutdown: a request in progress is answered; a keep-alive
// connection between requests is closed; a connection accepted before
// the stop whose first request comes after it is served, then closed;
// one that never sends is let go after firstRequestGrace; and Shutdown
// returns.
func TestLoopShutdown(t *testing.T) {
	addr, _ := shapeServer(t)
	be, err := NewBackend(BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: addr}}})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	fe, err := NewFrontend(FrontendConfig{Name: "fe", Backend: be, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- fe.Serve(ln) }()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	kept, fresh, silent, busy := dial(), dial(), dial(), dial()
	keptR := bufio.NewReader(kept)
	io.WriteString(kept, "GET /fixed HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(keptR, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(100 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	shut := make(chan error, 1)
	go func() { shut <- fe.Shutdown(ctx) }()
	// The listener closes as the stop begins.
	for {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Since(start) > 3*time.Second {
			t.Fatal("the listener stays open")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the loops see the stop
	io.WriteString(fresh, "GET /fixed HTTP/1.1\r\nHost: x\r\n\r\n")

	all, err := io.ReadAll(fresh)
	if err != nil || !bytes.HasPrefix(all, []byte("HTTP/1.1 200")) || !bytes.Contains(all, []byte("Connection: close")) {
		t.Errorf("first request after the stop: %q, %v", all, err)
	}
	all, err = io.ReadAll(busy)
	if err != nil || !bytes.HasSuffix(all, []byte("slow")) || !bytes.Contains(all, []byte("Connection: close")) {
		t.Errorf("request in progress: %q, %v", all, err)
	}
	if n, err := keptR.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("keep-alive connection between requests: read %d, %v; want EOF", n, err)
	}
	if n, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("connection without a request: read %d, %v; want EOF", n, err)
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	if d := time.Since(start); d < firstRequestGrace || d > 4*time.Second {
		t.Errorf("shutdown took %v; the grace for a first request is %v", d, firstRequestGrace)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Error("Serve did not return")
	}
}

// TestTimerHeap moves deadlines up and down and removes entries: each
// fires in the millisecond its last deadline falls in, and only once.
func TestTimerHeap(t *testing.T) {
	start := time.Unix(1000, 0)
	l := &evLoop{now: start}
	firedAt := map[int]int64{}
	ts := make([]*timed, 50)
	for i := range ts {
		ts[i] = &timed{idx: -1}
		ts[i].c = expireFunc(func() {
			if _, ok := firedAt[i]; ok {
				t.Errorf("timer %d fired twice", i)
			}
			firedAt[i] = l.now.UnixNano()
		})
	}
	r := rand.New(rand.NewPCG(1, 2))
	want := map[int]int64{}
	for range 500 {
		i := r.IntN(len(ts))
		if r.IntN(5) == 0 {
			l.timers.remove(ts[i])
			ts[i].dl = 0
			delete(want, i)
			continue
		}
		l.arm(ts[i], time.Duration(1+r.IntN(1000))*time.Millisecond)
		want[i] = ts[i].dl
	}
	for l.now.Before(start.Add(2 * time.Second)) {
		l.now = l.now.Add(time.Millisecond)
		l.expireTimers()
	}
	if len(firedAt) != len(want) {
		t.Fatalf("%d fired, want %d", len(firedAt), len(want))
	}
	for i, at := range firedAt {
		if dl := want[i]; at < dl || at >= dl+int64(time.Millisecond) {
			t.Errorf("timer %d fired at %d, deadline %d", i, at, dl)
		}
	}
	if len(l.timers) != 0 {
		t.Errorf("%d entries left", len(l.timers))
	}
}

type expireFunc func()

func (f expireFunc) event(uint32) {}
func (f expireFunc) expire()      { f() }
