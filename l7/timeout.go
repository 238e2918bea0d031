package l7

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"time"
)

// timeoutConn gives a connection HAProxy's kind of timeout: inactivity,
// that is every Read and Write must make progress within timeout. It
// replaces the engine's per-request deadlines, which cost two timer
// updates in the runtime per request and side (5% of the CPU per request
// in profiles), with lazy ones: the socket's deadline is pushed forward
// only once it is within slack of running out, so a busy keep-alive
// connection touches its timers a few times per timeout instead of on
// every request. The effective timeout is between timeout-slack and
// timeout.
//
// The engine's own SetDeadline calls are ignored. A timeoutConn is used
// by one goroutine at a time for reading and one for writing, as the
// engine does.
//
// On the client side it also carries per-connection state for the
// handler, which the engine runs for one request of a connection at a
// time: the client's address as X-Forwarded-For wants it, formatted once,
// a scratch buffer, and the framer that checks the requests' raw framing
// (framing.go). On the server side it can hold a request back and send it
// with sendAndAwait.
type timeoutConn struct {
	net.Conn
	timeout, slack time.Duration // no timeout if 0
	rdl, wdl       time.Time     // deadlines set on the socket

	clientIP []byte // formatted on first use
	scratch  []byte
	// tx is the frontend's record of the connection's current request
	// (accesslog.go): it counts the bytes and notes I/O errors.
	tx *txn
	// yield: let other goroutines run between a write and the next read,
	// see Read. wrote: the last operation was a write.
	yield, wrote bool
	// awaited: sendAndAwait has just set the read deadline.
	awaited bool

	// Client side, when the frontend has a request or keep-alive
	// timeout (phased): the phase of the connection, and the deadline of
	// the idle or header phase once armed (zero before). The frontend's
	// handler moves the phase to phaseBody when a request has arrived and
	// to phaseIdle when it is answered; a byte read while idle starts the
	// header phase.
	phased                bool
	cphase                uint8
	reqTimeout, kaTimeout time.Duration
	phaseDL               time.Time
	// tunnelTimeout replaces timeout once the connection is upgraded.
	tunnelTimeout time.Duration
	// req checks the raw requests of a client connection; framed: Read
	// feeds it (plain HTTP; with TLS, tlsConn.Read feeds it the
	// plaintext).
	req    framer
	framed bool

	// Server side: while capture is set, writes are collected in out
	// (up to captureLimit) for sendAndAwait.
	raw     syscall.RawConn // nil if the connection has no file descriptor
	step    func(fd uintptr) bool
	capture bool
	out     []byte
	sent    int
	phase   int
	sendErr error
	// dialTook is how long the connection took to establish, until the
	// first request on it reads it (Tc).
	dialTook time.Duration
}

// captureLimit bounds a request held back for sendAndAwait; a larger one
// is written as it comes.
const captureLimit = 16 << 10

// Phases of a client connection with request or keep-alive timeouts.
const (
	phaseHeader = iota // a request is arriving: reqTimeout bounds it
	phaseIdle          // waiting for the next request: kaTimeout
	phaseBody          // in the handler: inactivity only
)

func newTimeoutConn(c net.Conn, timeout time.Duration) *timeoutConn {
	return &timeoutConn{Conn: c, timeout: timeout, slack: timeout / 4}
}

// newServerConn wraps a connection to a server, ready for sendAndAwait.
func newServerConn(c net.Conn, timeout time.Duration) *timeoutConn {
	tc := newTimeoutConn(c, timeout)
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			tc.raw = raw
			tc.step = tc.rawStep
		}
	}
	return tc
}

// ip returns the peer's IP address as text, or nil if it has none.
func (c *timeoutConn) ip() []byte {
	if c.clientIP == nil {
		c.clientIP = appendIP(nil, c.RemoteAddr())
	}
	return c.clientIP
}

func appendIP(dst []byte, a net.Addr) []byte {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap().AppendTo(dst)
		}
	}
	return dst
}

// touch pushes the read (or write) deadline forward when less than
// timeout-slack of it is left: most calls change nothing and make no
// system call.
func (c *timeoutConn) touch(read bool) error {
	if c.timeout == 0 {
		return nil
	}
	now := time.Now()
	dl := &c.wdl
	if read {
		dl = &c.rdl
	}
	if dl.Sub(now) >= c.timeout-c.slack {
		return nil
	}
	*dl = now.Add(c.timeout)
	if read {
		return c.Conn.SetReadDeadline(*dl)
	}
	return c.Conn.SetWriteDeadline(*dl)
}

// Read reads and, on a plain client connection, lets the framer check
// what was read before the engine parses it.
func (c *timeoutConn) Read(b []byte) (int, error) {
	if !c.framed {
		return c.read(b)
	}
	if err := c.req.failed(); err != nil {
		return 0, err
	}
	n, err := c.read(b)
	return c.req.read(b, n, err)
}

// read reads, first yielding to other goroutines if the connection has
// just written a response: a read right away mostly finds nothing yet and
// costs a system call that fails with EAGAIN before the goroutine waits,
// while on a busy proxy other goroutines have work, and by the time they
// are done the client's next request is often there.
func (c *timeoutConn) read(b []byte) (int, error) {
	if c.wrote {
		c.wrote = false
		runtime.Gosched()
	}
	if c.phased && c.cphase != phaseBody {
		if err := c.touchPhase(); err != nil {
			return 0, err
		}
		n, err := c.Conn.Read(b)
		if n > 0 && c.cphase == phaseIdle {
			c.cphase, c.phaseDL = phaseHeader, time.Time{}
		}
		return n, err
	}
	if c.awaited {
		// sendAndAwait has just pushed the deadline: no need to look
		// at the clock again.
		c.awaited = false
	} else if err := c.touch(true); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	if c.tx != nil {
		c.tx.read(n, err)
	}
	return n, err
}

// touchPhase sets the read deadline of the idle or header phase: the
// phase's own deadline, armed on the phase's first read, or the
// inactivity timeout if that is nearer. It costs a deadline update per
// phase, which is why connections without these timeouts skip it.
func (c *timeoutConn) touchPhase() error {
	now := time.Now()
	if c.phaseDL.IsZero() {
		d := c.reqTimeout
		if c.cphase == phaseIdle {
			d = c.kaTimeout
		}
		if d == 0 {
			return c.touch(true)
		}
		c.phaseDL = now.Add(d)
	}
	if c.timeout > 0 && now.Add(c.timeout).Before(c.phaseDL) {
		return c.touch(true)
	}
	if c.rdl.Equal(c.phaseDL) {
		return nil
	}
	c.rdl = c.phaseDL
	return c.Conn.SetReadDeadline(c.rdl)
}

// setPhase moves a phased client connection to phase p.
func (c *timeoutConn) setPhase(p uint8) {
	if c.phased {
		c.cphase, c.phaseDL = p, time.Time{}
	}
}

func (c *timeoutConn) Write(b []byte) (int, error) {
	if c.capture {
		if len(c.out)+len(b) <= captureLimit {
			c.out = append(c.out, b...)
			return len(b), nil
		}
		// Too large to hold back: write what was held, then go on.
		c.capture = false
		if len(c.out) > 0 {
			out := c.out
			c.out = c.out[:0]
			if _, err := c.Write(out); err != nil {
				return 0, err
			}
		}
	}
	if err := c.touch(false); err != nil {
		return 0, err
	}
	if c.yield {
		c.wrote = true
	}
	n, err := c.Conn.Write(b)
	if c.tx != nil {
		c.tx.wrote(n, err)
	}
	return n, err
}

// startCapture holds back what is written until sendAndAwait, if the
// connection can do that.
func (c *timeoutConn) startCapture() {
	if c.raw != nil {
		c.capture = true
		c.out = c.out[:0]
	}
}

// sendAndAwait writes the request held back since startCapture and waits
// until the connection is readable, which is when the server has answered.
//
// Reading right after writing, as a plain Write and Read do, costs a read
// that fails with EAGAIN before the goroutine waits: the server has not
// answered yet. HAProxy makes no such read: a short read tells it that
// the socket is drained, and it reads again only once epoll says so.
// Here the runtime's readiness flag for the socket is reset before the
// request goes out (RawConn.Read does that when it starts), the request
// is written from inside RawConn.Read, and the goroutine then waits for
// the answer without a read: one system call less per request. An answer
// that comes before the wait starts sets the flag, so it is not missed.
//
// If the request was too large to hold back, it is already written and
// sendAndAwait does nothing.
func (c *timeoutConn) sendAndAwait() error {
	if !c.capture {
		return nil
	}
	c.capture = false
	// The raw write does not block; a rest that the socket did not take
	// goes through Write, which keeps the write deadline.
	if err := c.touch(true); err != nil {
		return err
	}
	c.sent, c.phase, c.sendErr = 0, 0, nil
	err := c.raw.Read(c.step)
	if err == nil {
		err = c.sendErr
	}
	if err == nil && c.sent < len(c.out) {
		// The socket took only part of it: write the rest as usual.
		_, err = c.Write(c.out[c.sent:])
	}
	c.out = c.out[:0]
	c.awaited = err == nil
	return err
}

// rawStep is RawConn.Read's function: the first call writes the request
// and asks to wait; the second, when readable, ends the wait.
func (c *timeoutConn) rawStep(fd uintptr) bool {
	if c.phase > 0 {
		return true
	}
	c.phase = 1
	for c.sent < len(c.out) {
		n, err := syscall.Write(int(fd), c.out[c.sent:])
		if n > 0 {
			c.sent += n
		}
		switch {
		case err == nil:
		case errors.Is(err, syscall.EINTR):
		case errors.Is(err, syscall.EAGAIN):
			return true // sendAndAwait writes the rest
		default:
			c.sendErr = &net.OpError{Op: "write", Net: "tcp", Addr: c.RemoteAddr(), Err: err}
			return true
		}
	}
	return false
}

func (c *timeoutConn) SetDeadline(time.Time) error      { return nil }
func (c *timeoutConn) SetReadDeadline(time.Time) error  { return nil }
func (c *timeoutConn) SetWriteDeadline(time.Time) error { return nil }
