package l7

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// listener accepts a frontend's connections: at most maxConns at a time
// (HAProxy's "maxconn" of a bind line: beyond it, connections wait in the
// kernel's accept backlog until one closes), each wrapped in a
// timeoutConn and, with TLS, in a tlsConn.
type listener struct {
	net.Listener
	f    *Frontend
	sem  chan struct{} // nil: no limit
	done chan struct{}
	once sync.Once
}

func (f *Frontend) newListener(ln net.Listener) *listener {
	l := &listener{Listener: ln, f: f, done: make(chan struct{})}
	if f.cfg.MaxConns > 0 {
		l.sem = make(chan struct{}, f.cfg.MaxConns)
	}
	return l
}

func (l *listener) Accept() (net.Conn, error) {
	c, release, err := l.acceptSlot()
	if err != nil {
		return nil, err
	}
	if l.sem != nil {
		c = &limitConn{Conn: c, release: release}
	}
	return l.f.wrapClient(c), nil
}

// acceptSlot accepts a connection once the limit lets it, and returns it
// with the function that gives its slot back.
func (l *listener) acceptSlot() (net.Conn, func(), error) {
	if l.sem == nil {
		c, err := l.Listener.Accept()
		return c, func() {}, err
	}
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, nil, err
	}
	var once sync.Once
	return c, func() { once.Do(func() { <-l.sem }) }, nil
}

// wrapClient wraps a client connection for the goroutine engine: the
// timeouts, the framing checks and TLS.
func (f *Frontend) wrapClient(c net.Conn) net.Conn {
	tc := newTimeoutConn(c, f.cfg.ClientTimeout)
	tc.yield = true
	tc.tunnelTimeout = f.cfg.TunnelTimeout
	if f.cfg.RequestTimeout > 0 || f.cfg.KeepAliveTimeout > 0 {
		tc.phased = true
		tc.reqTimeout, tc.kaTimeout = f.cfg.RequestTimeout, f.cfg.KeepAliveTimeout
		if tc.reqTimeout > 0 {
			// The first request is timed from the connection's start,
			// the TLS handshake included.
			tc.phaseDL = time.Now().Add(tc.reqTimeout)
		}
	}
	// What the framer may hold ahead of a handler: the rest of the read
	// that ended the header section, and what the engine reads before
	// calling the handler (up to 8 KB of a body, in reads of up to a
	// buffer, or of chunkBuf when the transport reads a body into its
	// own buffer), with room to spare.
	tc.req.start(&f.held, 2*max(f.cfg.MaxHeaderSize, chunkBuf)+16<<10)
	if f.certs != nil {
		return newTLSConn(tc, f.tlsConfig)
	}
	tc.framed = true
	return tc
}

func (l *listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its listener's slot back when closed.
type limitConn struct {
	net.Conn
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// handedConn is a connection the event loop hands to the goroutine
// engine: it reads pre, what the loop had read, first, and gives the
// listener's slot back when closed.
type handedConn struct {
	net.Conn
	pre     []byte
	release func()
}

func (c *handedConn) Read(b []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(b, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

func (c *handedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// chanListener is the listener of the connections the event loops hand
// to the goroutine engine.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	f    *Frontend
}

func newChanListener(f *Frontend, addr net.Addr) *chanListener {
	return &chanListener{f: f, addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// give hands c over; it is closed if the listener is.
func (l *chanListener) give(c *handedConn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return l.f.wrapClient(c), nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// loopConnOf takes the socket of c, an accepted TCP connection, for an
// event loop: c's descriptor is duplicated and c closed.
func loopConnOf(c net.Conn, release func()) (newConn, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return newConn{}, errors.New("not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return newConn{}, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) {
		fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return newConn{}, err
	}
	if derr != nil {
		return newConn{}, derr
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return newConn{}, err
	}
	nc := newConn{fd: fd, release: release, remote: c.RemoteAddr(), local: c.LocalAddr()}
	c.Close()
	return nc, nil
}
