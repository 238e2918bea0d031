package l7

import (
	"bytes"
	"net"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// Framing of a response body from a server.
const (
	bodyNone    = iota // HEAD, 204, 304
	bodyFixed          // Content-Length
	bodyChunked        // chunked, passed on as it is, checked
	bodyClose          // up to the server's close
)

// srvConn is a loop's connection to a server.
type srvConn struct {
	timed
	l          *evLoop
	fd         int
	s          *server
	be         *Backend
	cli        *cliConn // the client whose request it serves; nil when idle
	in         []byte   // the response header so far
	out        []byte   // the request
	sent       int
	connecting bool
	start      time.Time
	reused     bool
	rd         readiness
	paused     bool // the client's output is full
	gotHead    bool
	mode       uint8
	left       int64
	chunks     chunkScanner
	keep       bool
	pending    bool // the request waits for the end of the loop's round
}

// serverConn returns a connection to s: an idle one of the loop's unless
// fresh, else a new one, which may still be connecting.
func (l *evLoop) serverConn(s *server, be *Backend, fresh bool) (*srvConn, error) {
	if !fresh {
		idle := l.idle[s]
		for len(idle) > 0 {
			sc := idle[len(idle)-1]
			idle = idle[:len(idle)-1]
			if !sc.closed {
				l.idle[s] = idle
				sc.be = be
				return sc, nil
			}
		}
		l.idle[s] = idle
	}
	sa := l.addrs[s]
	if sa == nil {
		a, err := net.ResolveTCPAddr("tcp", s.addr)
		if err != nil {
			return nil, &connectError{err: err}
		}
		if ip4 := a.IP.To4(); ip4 != nil {
			sa4 := &unix.SockaddrInet4{Port: a.Port}
			copy(sa4.Addr[:], ip4)
			sa = sa4
		} else {
			sa6 := &unix.SockaddrInet6{Port: a.Port}
			copy(sa6.Addr[:], a.IP.To16())
			sa = sa6
		}
		l.addrs[s] = sa
	}
	family := unix.AF_INET
	if _, ok := sa.(*unix.SockaddrInet6); ok {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, &connectError{err: osError("socket", err)}
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	sc := &srvConn{l: l, fd: fd, s: s, be: be, start: l.now}
	sc.timed = timed{idx: -1, c: sc}
	err = unix.Connect(fd, sa)
	switch {
	case err == nil:
	case err == unix.EINPROGRESS:
		sc.connecting = true
	default:
		unix.Close(fd)
		return nil, &connectError{err: osError("dial", err)}
	}
	if err := l.register(fd, sc); err != nil {
		unix.Close(fd)
		return nil, &connectError{err: osError("epoll", err)}
	}
	if sc.connecting {
		l.arm(&sc.timed, be.cfg.ConnectTimeout)
	}
	return sc, nil
}

// send sends the request b (the client's, kept until it is answered).
func (sc *srvConn) send(b []byte) {
	sc.out, sc.sent = b, 0
	sc.gotHead, sc.in = false, sc.in[:0]
	if sc.connecting {
		return
	}
	sc.connected(0)
	if !sc.l.round {
		sc.flushOut()
		return
	}
	queueOnce(&sc.pending, &sc.l.toSrv, sc)
}

// connected notes the connection in the client's txn: took is the
// connect, 0 for a reused connection.
func (sc *srvConn) connected(took time.Duration) {
	c := sc.cli
	tx := c.tc.tx
	if tx.timing() {
		tx.t1 = sc.l.now
		tx.tw = max(tx.tw, 0) + max(tx.t1.Sub(c.t0)-took, 0)
		tx.tc = took
	}
}

func (sc *srvConn) flushOut() {
	for sc.sent < len(sc.out) {
		n, err := unix.Write(sc.fd, sc.out[sc.sent:])
		if n > 0 {
			sc.sent += n
		}
		switch {
		case err == nil:
		case isAgain(err):
			sc.l.arm(&sc.timed, sc.be.cfg.ServerTimeout)
			return
		case err == unix.EINTR:
		default:
			sc.failed(osError("write", err))
			return
		}
	}
	sc.l.arm(&sc.timed, sc.be.cfg.ServerTimeout)
	if sc.rd.ready {
		sc.read()
	}
}

func (sc *srvConn) event(ev uint32) {
	if sc.connecting {
		if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		took := sc.l.now.Sub(sc.start)
		if errno, err := unix.GetsockoptInt(sc.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || errno != 0 {
			if err == nil {
				err = unix.Errno(errno)
			}
			c := sc.cli
			sc.cli = nil
			sc.close()
			if c != nil {
				c.srv = nil
				c.connectFailed(&connectError{err: osError("dial", err), took: took})
			}
			return
		}
		sc.connecting = false
		if sc.cli != nil {
			sc.connected(took)
			sc.flushOut()
		}
		if sc.closed {
			return
		}
	} else if ev&unix.EPOLLOUT != 0 && sc.sent < len(sc.out) && sc.cli != nil {
		sc.flushOut()
		if sc.closed {
			return
		}
	}
	if sc.rd.event(ev) && !sc.paused {
		sc.read()
	}
}

// read reads the server's response, or the close of an idle connection.
func (sc *srvConn) read() {
	l := sc.l
	for sc.rd.ready && !sc.paused && !sc.closed {
		if sc.cli == nil {
			// Idle: the server closed it, or sent what no request
			// asked for.
			sc.close()
			return
		}
		n, err := unix.Read(sc.fd, l.buf)
		sc.rd.read(n, len(l.buf), err)
		switch {
		case n > 0:
			l.arm(&sc.timed, sc.be.cfg.ServerTimeout)
			sc.data(l.buf[:n])
		case isAgain(err), err == unix.EINTR:
		case n == 0 && err == nil:
			sc.ended(errServerClosed)
			return
		default:
			sc.ended(osError("read", err))
			return
		}
	}
}

// data takes bytes of the response.
func (sc *srvConn) data(p []byte) {
	if sc.gotHead {
		sc.body(p)
		return
	}
	sc.in = append(sc.in, p...)
	for !sc.gotHead {
		end := headEnd(sc.in)
		if end < 0 {
			if len(sc.in) > max(sc.l.f.cfg.MaxHeaderSize, DefaultMaxHeaderSize) {
				sc.failed(fasthttp.ErrBodyTooLarge)
			}
			return
		}
		if !sc.head(sc.in[:end]) {
			return
		}
		if !sc.gotHead { // an interim response, dropped
			sc.in = sc.in[:copy(sc.in, sc.in[end:])]
			continue
		}
		rest := sc.in[end:]
		sc.in = sc.in[:0]
		sc.body(rest)
	}
}

// headEnd returns the length of the header section at the start of b,
// up to the empty line that ends it (CRLF or a bare LF), -1 if it is not
// all there. It looks at the line ends only, and no further than that
// empty line: the body after it is not read.
func headEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		switch {
		case i < len(b) && b[i] == '\n':
			return i + 1
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			return i + 2
		}
	}
}

// head parses the response header h and sends the client its rewritten
// version; false if the response is malformed.
func (sc *srvConn) head(h []byte) bool {
	l, c := sc.l, sc.cli
	resp := &c.ctx.Response
	resp.Reset()
	resp.Header.DisableNormalizing()
	resp.Header.SetNoDefaultContentType(true)
	l.rd.Reset(h)
	l.br.Reset(&l.rd)
	if err := resp.Header.Read(l.br); err != nil {
		sc.failed(err)
		return false
	}
	code := resp.StatusCode()
	if code == fasthttp.StatusSwitchingProtocols {
		sc.failed(errServerClosed) // no upgrade was asked for
		return false
	}
	if code >= 100 && code < 200 {
		return true // interim (100 Continue, 103 Early Hints): not forwarded
	}
	sc.gotHead = true
	tx := c.tc.tx
	tx.headersIn()
	sc.keep = !resp.Header.ConnectionClose()
	cl := resp.Header.ContentLength()
	switch {
	case c.ctx.Request.Header.IsHead() || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified:
		sc.mode = bodyNone
		resp.SkipBody = true
	case cl >= 0:
		sc.mode, sc.left = bodyFixed, int64(cl)
	case cl == -1:
		sc.mode, sc.chunks = bodyChunked, chunkScanner{}
		if c.http10 {
			// An HTTP/1.0 client knows no chunks: it gets the data,
			// delimited by the close.
			c.closeAfter = true
			resp.Header.Del("Transfer-Encoding")
		}
	default:
		sc.mode, sc.keep = bodyClose, false
		if c.http10 {
			c.closeAfter = true
		} else {
			// An HTTP/1.1 client keeps its connection: the body goes
			// to it in chunks, as the goroutine engine sends it.
			resp.Header.SetContentLength(-1)
		}
	}
	c.be.respond(&c.ctx.Request, resp, c.target, &c.o, tx)
	if c.closeAfter {
		resp.Header.SetConnectionClose()
	}
	c.responseStarts(c.target)
	c.out = appendResponseHead(c.out, &resp.Header)
	return true
}

// body passes p, bytes of the response body, to the client.
func (sc *srvConn) body(p []byte) {
	c := sc.cli
	done := false
	switch sc.mode {
	case bodyNone:
		done = true
		if len(p) > 0 {
			sc.keep = false
		}
	case bodyFixed:
		k := int(min(int64(len(p)), sc.left))
		c.out = append(c.out, p[:k]...)
		sc.left -= int64(k)
		if sc.left == 0 {
			done = true
			if k < len(p) {
				sc.keep = false // more than the response
			}
		}
	case bodyChunked:
		var k int
		var err error
		if c.http10 {
			k, err = sc.chunks.scan(p, &c.out) // the data only
		} else {
			k, err = sc.chunks.scan(p, nil)
			c.out = append(c.out, p[:k]...)
		}
		if err != nil {
			c.tc.tx.serverAborted(err)
			c.abort()
			return
		}
		if sc.chunks.done() {
			done = true
			if k < len(p) {
				sc.keep = false
			}
		}
	default:
		if c.http10 {
			c.out = append(c.out, p...)
		} else if len(p) > 0 {
			c.out = strconv.AppendInt(c.out, int64(len(p)), 16)
			c.out = append(c.out, "\r\n"...)
			c.out = append(c.out, p...)
			c.out = append(c.out, "\r\n"...)
		}
	}
	if done {
		sc.complete()
		return
	}
	if len(c.out) > loopOutMax {
		sc.paused = true
	}
	c.writeLater()
}

// resume reads the server again once the client took its output.
func (sc *srvConn) resume() {
	sc.paused = false
	if sc.rd.ready {
		sc.read()
	}
}

// complete ends the response: the connection goes back to the idle ones
// if it can serve another request.
func (sc *srvConn) complete() {
	c := sc.cli
	sc.cli = nil
	if sc.keep && !sc.closed && !sc.l.stopping {
		sc.idleNow()
	} else {
		sc.close()
	}
	c.responseEnds()
}

func (sc *srvConn) idleNow() {
	l := sc.l
	sc.reused, sc.out, sc.sent, sc.paused = true, nil, 0, false
	sc.in = sc.in[:0]
	l.arm(&sc.timed, IdleServerConn)
	l.idle[sc.s] = append(l.idle[sc.s], sc)
	if sc.rd.ready {
		sc.read() // already closed by the server?
	}
}

// ended handles the end of the server's side, by close or error.
func (sc *srvConn) ended(err error) {
	if sc.gotHead && sc.mode == bodyClose {
		sc.keep = false
		if c := sc.cli; c != nil && !c.http10 {
			c.out = append(c.out, "0\r\n\r\n"...)
		}
		sc.complete()
		return
	}
	sc.failed(err)
}

// failed handles a failure of the server connection during a request.
func (sc *srvConn) failed(err error) {
	c := sc.cli
	sc.cli = nil
	sc.close()
	if c == nil {
		return
	}
	c.srv = nil
	if sc.gotHead {
		// Part of the response is out: the client's connection ends.
		c.tc.tx.serverAborted(err)
		c.abort()
		return
	}
	if sc.reused && len(sc.in) == 0 && c.attempts < maxAttempts && retryStale(&c.ctx.Request, err) {
		// A keep-alive connection the server had closed: again on a
		// new one.
		c.try()
		return
	}
	c.serverFailed(err)
}

func (sc *srvConn) expire() {
	switch {
	case sc.cli == nil:
		sc.close() // idle long enough
	case sc.connecting:
		c := sc.cli
		sc.cli = nil
		sc.close()
		c.srv = nil
		c.connectFailed(&connectError{err: fasthttp.ErrDialTimeout, took: sc.l.now.Sub(sc.start)})
	default:
		sc.failed(fasthttp.ErrTimeout)
	}
}

func (sc *srvConn) close() {
	if sc.closed {
		return
	}
	sc.closed = true
	sc.l.unregister(sc.fd, &sc.timed)
	sc.fd = -1
}
