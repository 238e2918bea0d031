package l7

import (
	"crypto/tls"
	"net"
	"sync"
	"time"
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
	if l.sem != nil {
		select {
		case l.sem <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		if l.sem != nil {
			<-l.sem
		}
		return nil, err
	}
	if l.sem != nil {
		c = &limitConn{Conn: c, sem: l.sem}
	}
	f := l.f
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
		return &tlsConn{Conn: tls.Server(tc, f.tlsConfig), tc: tc}, nil
	}
	tc.framed = true
	return tc, nil
}

func (l *listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitConn gives its listener's slot back when closed.
type limitConn struct {
	net.Conn
	sem  chan struct{}
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.sem })
	return err
}
