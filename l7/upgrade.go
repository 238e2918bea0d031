package l7

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

var hdrUpgrade = "Upgrade"

// tunnelKey is the request's user value under which the transport leaves
// the server connection of a 101 Switching Protocols answer.
type tunnelKey struct{}

// serverTunnel is the server's side of an upgraded connection, taken out
// of the pool: what the server sent after its 101 is buffered in reader.
// closeTunnel closes the connection and gives its slot back.
type serverTunnel interface {
	conn() net.Conn
	reader() *bufio.Reader
	closeTunnel()
}

type tunnel[C interface{ Conn() net.Conn }] struct {
	t  *transport[C]
	cc C
	br *bufio.Reader
}

func (s *tunnel[C]) conn() net.Conn        { return s.cc.Conn() }
func (s *tunnel[C]) reader() *bufio.Reader { return s.br }
func (s *tunnel[C]) closeTunnel() {
	s.t.hc.ReleaseReader(s.br)
	s.t.close(s.cc)
}

// isUpgrade reports whether a request asks to switch protocols
// (WebSocket): Connection names "upgrade" and Upgrade says to what.
func isUpgrade(h *fasthttp.RequestHeader) bool {
	return len(h.Peek(hdrUpgrade)) > 0 && h.ConnectionUpgrade()
}

// splice copies both ways between the client, whose connection the engine
// has hijacked (hj reads what the engine had buffered first), and the
// server, until either side closes or neither sends anything for timeout
// (HAProxy's "timeout tunnel": activity either way keeps both sides
// open). It closes both connections.
func splice(hj, client net.Conn, ctc *timeoutConn, srv serverTunnel, timeout time.Duration) {
	sc := srv.conn()
	// Both connections are now read and written by two goroutines, one
	// each way: no more yielding, phases or per-side timeouts.
	if ctc != nil {
		ctc.yield, ctc.wrote, ctc.phased = false, false, false
		ctc.timeout, ctc.slack = timeout, timeout/4
	}
	if stc, ok := sc.(*timeoutConn); ok {
		stc.timeout, stc.slack = timeout, timeout/4
	}
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	pipe := func(dst io.Writer, src io.Reader) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				last.Store(time.Now().UnixNano())
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() &&
					time.Since(time.Unix(0, last.Load())) < timeout {
					continue // the other way was active: read on
				}
				return
			}
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		pipe(sc, hj)
		sc.Close()
		client.Close()
	}()
	go func() {
		defer wg.Done()
		pipe(hj, srv.reader())
		sc.Close()
		client.Close()
	}()
	wg.Wait()
	srv.closeTunnel()
}

// clientBodyError is a failure to read the request body from the client
// while forwarding it: the client's fault, answered with 400, 408 or 413,
// not the server's.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "reading request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// bodyLimitKey is the request's user value, an *int64, that bounds a
// chunked request body (FrontendConfig.MaxBodySize).
type bodyLimitKey struct{}

var errBodyLimit = errors.New("request body larger than the limit")

// clientBodyStatus is the answer to a clientBodyError.
func clientBodyStatus(err error) int {
	var ne net.Error
	switch {
	case errors.Is(err, errBodyLimit):
		return fasthttp.StatusRequestEntityTooLarge
	case errors.As(err, &ne) && ne.Timeout():
		return fasthttp.StatusRequestTimeout
	}
	return fasthttp.StatusBadRequest
}
