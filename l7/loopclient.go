package l7

import (
	"bytes"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// Phases of a loop's client connection.
const (
	cIdle    = iota // between requests
	cHeader         // a request is arriving
	cServing        // the request is with a server
	cSending        // the response is out or going out; the server is done
)

// cliConn is a client connection of a loop.
type cliConn struct {
	timed
	l      *evLoop
	fd     int
	nc     newConn
	tc     *timeoutConn // the per-connection state the shared logic reads
	ctx    fasthttp.RequestCtx
	in     []byte // read and not consumed yet
	out    []byte // to write
	phase  uint8
	rd     readiness
	http10 bool // the request is HTTP/1.0
	// closeAfter: close once the response is out (the client asked, or
	// the response is delimited by the close, or the loop stops).
	closeAfter bool
	started    bool // a request came on the connection already
	// busy: read or process is on the stack; what ends a request then
	// leaves the next one to them.
	busy bool
	// pending: a write waits for the end of the loop's round.
	pending bool

	// The request with a server.
	be       *Backend
	o        outbound
	srv      *srvConn
	target   *server
	assigned *server
	avoid    []*server
	tries    int // connection retries
	attempts int // sends after a stale keep-alive connection
	sec      int64
	reqOut   []byte // the request as sent, kept for a retry
	t0       time.Time
}

// loopAddr is the addresses of a loop's connection, for the logic that
// asks a net.Conn for them.
type loopAddr struct {
	net.Conn // nil: only the address methods are used
	remote   net.Addr
	local    net.Addr
}

func (a *loopAddr) RemoteAddr() net.Addr { return a.remote }
func (a *loopAddr) LocalAddr() net.Addr  { return a.local }

func (l *evLoop) addClient(nc newConn) {
	f := l.f
	c := &cliConn{l: l, fd: nc.fd, nc: nc}
	c.timed = timed{idx: -1, c: c}
	c.tc = newTimeoutConn(&loopAddr{remote: nc.remote, local: nc.local}, 0)
	c.ctx.Init2(c.tc, logAdapter{f.log}, false)
	c.ctx.Request.Header.DisableNormalizing()
	c.ctx.Response.Header.DisableNormalizing()
	if err := l.register(nc.fd, c); err != nil {
		unix.Close(nc.fd)
		l.clients.Add(-1)
		nc.release()
		return
	}
	f.st.enter(l.now.Unix())
	c.tc.tx = newTxn(f, c.tc)
	c.phase = cIdle
	// The first request is timed from the connection's start.
	if d := f.cfg.RequestTimeout; d > 0 {
		l.arm(&c.timed, d)
	} else {
		l.arm(&c.timed, c.idleTimeout())
	}
	c.rd.ready = true
	c.read()
}

// unread reports whether bytes wait in the socket that the loop has not
// read: their event comes in the next round.
func (c *cliConn) unread() bool {
	var b [1]byte
	n, _, err := unix.Recvfrom(c.fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err == nil && n > 0
}

func (c *cliConn) idleTimeout() time.Duration {
	if d := c.l.f.cfg.KeepAliveTimeout; d > 0 {
		return d
	}
	return c.l.f.cfg.ClientTimeout
}

func (c *cliConn) event(ev uint32) {
	if ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 && c.phase == cSending {
		// The client is gone: no point in going on.
		c.tc.tx.wrote(0, osError("write", unix.EPIPE))
		c.abort()
		return
	}
	if ev&unix.EPOLLOUT != 0 && len(c.out) > 0 {
		c.flush()
		if c.closed {
			return
		}
	}
	if c.rd.event(ev) && c.phase <= cHeader {
		c.read()
	}
}

// read reads what the client sent, while a request is awaited.
func (c *cliConn) read() {
	l := c.l
	was := c.busy
	c.busy = true
	defer func() { c.busy = was }()
	for c.rd.ready && !c.closed && c.phase <= cHeader {
		n, err := unix.Read(c.fd, l.buf)
		c.rd.read(n, len(l.buf), err)
		if n > 0 {
			c.tc.tx.read(n, nil)
		}
		switch {
		case n > 0:
			if len(c.in) == 0 {
				c.process(l.buf[:n], true)
			} else {
				c.in = append(c.in, l.buf[:n]...)
				c.process(c.in, false)
			}
		case isAgain(err), err == unix.EINTR:
		default:
			// The client closed, or the connection failed.
			if err != nil {
				c.tc.tx.read(0, osError("read", err))
			}
			c.close()
			return
		}
	}
}

// process serves the requests in data: l.buf (shared) or c.in. What is
// left of it goes to c.in.
func (c *cliConn) process(data []byte, shared bool) {
	f := c.l.f
	was := c.busy
	c.busy = true
	defer func() { c.busy = was }()
	for len(data) > 0 && c.phase <= cHeader && !c.closed {
		if c.phase == cIdle {
			c.phase = cHeader
			c.tc.tx.begin(c.l.now)
			if d := f.cfg.RequestTimeout; d > 0 && c.started {
				c.l.arm(&c.timed, d)
			}
			c.started = true
			if f.cfg.RequestTimeout == 0 {
				c.l.arm(&c.timed, f.cfg.ClientTimeout)
			}
		} else if f.cfg.RequestTimeout == 0 {
			c.l.arm(&c.timed, f.cfg.ClientTimeout)
		}
		n, ok := c.request(data)
		if !ok {
			break // more is needed, or the connection went elsewhere
		}
		data = data[n:]
	}
	if c.closed || c.fd < 0 {
		return
	}
	if len(data) == 0 {
		c.in = c.in[:0]
		return
	}
	if shared || &data[0] != &c.in[0] {
		c.in = append(c.in[:0], data...)
	}
}

// request starts the request at the start of data and returns its length,
// or ok false if it is not all there yet or the connection left the loop.
func (c *cliConn) request(data []byte) (int, bool) {
	f := c.l.f
	// Empty lines before a request line are skipped (RFC 9112 2.2).
	skip := 0
	for len(data) >= skip+2 && data[skip] == '\r' && data[skip+1] == '\n' {
		skip += 2
	}
	if skip < len(data) && (data[skip] == '\r' || data[skip] == '\n') && len(data) > skip+1 {
		c.handoff(data) // a bare CR or LF: the framing checks answer
		return 0, false
	}
	end := headEnd(data[skip:])
	if end < 0 {
		if len(data) > f.cfg.MaxHeaderSize {
			// Too large: the goroutine engine answers 431.
			c.handoff(data)
		}
		return 0, false
	}
	head := data[skip : skip+end]
	if len(head) > f.cfg.MaxHeaderSize || !crlfOnly(head) {
		c.handoff(data)
		return 0, false
	}
	req := &c.ctx.Request
	req.Reset()
	req.Header.DisableNormalizing()
	l := c.l
	l.rd.Reset(head)
	l.br.Reset(&l.rd)
	if err := req.Header.Read(l.br); err != nil {
		c.handoff(data)
		return 0, false
	}
	h := &req.Header
	cl := h.ContentLength()
	be := f.route(req)
	switch {
	case be == nil, h.IsConnect(), cl == -1, cl > BodyBuffer,
		len(h.Peek("Expect")) > 0, len(h.Peek(hdrUpgrade)) > 0,
		len(h.Peek("Transfer-Encoding")) > 0, checkHeader(h.RawHeaders()) != nil,
		f.maxBody > 0 && int64(cl) > f.maxBody, be.full():
		// Not the common request: the goroutine engine takes it and
		// the connection, with its checks and answers.
		c.handoff(data)
		return 0, false
	}
	total := skip + len(head)
	if cl > 0 {
		if len(data) < total+cl {
			return 0, false // the body is on its way
		}
		req.SetBodyRaw(data[total : total+cl])
		total += cl
	}
	c.http10 = !h.IsHTTP11()
	c.closeAfter = c.closeAfter || h.ConnectionClose()
	c.serve(be)
	return total, true
}

// crlfOnly reports whether every LF of a header section follows a CR.
func crlfOnly(b []byte) bool {
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return true
		}
		if i == 0 || b[i-1] != '\r' {
			return false
		}
		b = b[i+1:]
	}
}

// serve starts the request in c.ctx on backend be, as the goroutine
// engine's serveRequest and Backend.serve do.
func (c *cliConn) serve(be *Backend) {
	l, f := c.l, c.l.f
	tx := c.tc.tx
	sec := l.now.Unix()
	f.st.reqTot.Add(1)
	f.st.reqRate.add(sec)
	tx.headers = l.now
	tx.request(&c.ctx.Request.Header)
	c.phase = cServing
	c.timed.dl = 0
	be.st.enter(sec)
	c.be, c.sec = be, sec
	c.o = outbound{}
	be.prepare(&c.ctx, tx, &c.o)
	c.target, c.assigned, c.avoid, c.tries, c.attempts = c.o.srv, nil, c.avoid[:0], 0, 0
	r := &c.ctx.Request
	c.reqOut = r.Header.AppendBytes(c.reqOut[:0])
	c.reqOut = append(c.reqOut, r.Body()...)
	c.try()
}

// try sends the request to a server: the cookie's, or one the backend
// picks.
func (c *cliConn) try() {
	be, tx := c.be, c.tc.tx
	if c.target == nil {
		if c.target = be.pick(c.avoid, c.o.key); c.target == nil {
			be.noServer(tx)
			c.ctx.Error("503 Service Unavailable: no server is available", fasthttp.StatusServiceUnavailable)
			c.own()
			return
		}
	}
	if c.target != c.assigned {
		be.assign(c.target, tx, c.sec)
		c.assigned = c.target
	}
	if tx.timing() {
		c.t0 = c.l.now
	}
	c.attempts++
	sc, err := c.l.serverConn(c.target, be, c.attempts > 1)
	if err != nil {
		c.connectFailed(err)
		return
	}
	c.srv, sc.cli = sc, c
	sc.send(c.reqOut)
}

// connectFailed handles a failure to connect to c.target: retried, on
// another server with Redispatch, as many times as Retries says.
func (c *cliConn) connectFailed(err error) {
	be, tx := c.be, c.tc.tx
	tx.connectFailed(c.t0, err)
	if c.tries < be.cfg.Retries {
		c.tries++
		be.retry(c.target, tx, be.cfg.Redispatch)
		if be.cfg.Redispatch {
			c.avoid = append(c.avoid, c.target)
			c.target, c.o.cs.had = nil, false
			c.assigned = nil
		}
		c.attempts = 0
		c.try()
		return
	}
	c.serverFailed(err)
}

// serverFailed answers a request whose server failed before its response
// headers came.
func (c *cliConn) serverFailed(err error) {
	c.srv = nil
	c.ctx.Response.Reset()
	c.be.failed(c.target, err, c.tc.tx)
	serverError(&c.ctx, err)
	c.own()
}

// own sends the proxy's own response, in c.ctx.
func (c *cliConn) own() {
	c.responseStarts(nil)
	c.appendAnswer()
	c.responseEnds()
}

// appendAnswer appends the proxy's own response in c.ctx to c.out.
func (c *cliConn) appendAnswer() {
	resp := &c.ctx.Response
	resp.Header.SetNoDefaultContentType(true)
	if c.closeAfter {
		resp.Header.SetConnectionClose()
	}
	resp.Header.SetContentLength(len(resp.Body()))
	c.out = appendResponseHead(c.out, &resp.Header)
	c.out = append(c.out, resp.Body()...)
}

// responseStarts counts a response as the goroutine engine does once its
// handler returns.
func (c *cliConn) responseStarts(srv *server) {
	tx, code := c.tc.tx, c.ctx.Response.StatusCode()
	c.be.done(code, srv, tx)
	tx.status = code
	tx.state = txServed
	c.l.f.st.status(code)
	c.phase = cSending
}

// responseEnds is called when the server is done: the rest of the
// response is in c.out.
func (c *cliConn) responseEnds() {
	c.srv = nil
	c.writeLater()
}

// writeLater writes c.out at the end of the loop's round, or now outside
// of one.
func (c *cliConn) writeLater() {
	if !c.l.round {
		c.flush()
		return
	}
	queueOnce(&c.pending, &c.l.toCli, c)
}

// flush writes c.out; once it is all out after the server is done, the
// request is over.
func (c *cliConn) flush() {
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if n > 0 {
			c.tc.tx.wrote(n, nil)
			c.out = c.out[:copy(c.out, c.out[n:])]
		}
		switch {
		case err == nil:
		case isAgain(err):
			// EPOLLOUT brings the rest; the client must take it
			// within its timeout.
			if n > 0 || c.timed.dl == 0 {
				c.l.arm(&c.timed, c.l.f.cfg.ClientTimeout)
			}
			return
		case err == unix.EINTR:
		default:
			c.tc.tx.wrote(0, osError("write", err))
			c.abort()
			return
		}
	}
	if c.phase == cSending {
		c.timed.dl = 0
	}
	if c.srv != nil {
		if c.srv.paused {
			c.srv.resume()
		}
		return
	}
	if c.phase == cSending {
		c.requestDone()
	}
}

// requestDone ends a request whose response is all out.
func (c *cliConn) requestDone() {
	tx := c.tc.tx
	tx.finish()
	c.be, c.target, c.assigned = nil, nil, nil
	if len(c.out) > 0 {
		return
	}
	if c.closeAfter || c.l.stopping {
		c.close()
		return
	}
	c.phase = cIdle
	c.l.arm(&c.timed, c.idleTimeout())
	if c.busy {
		return // read or process goes on with what follows
	}
	if len(c.in) > 0 {
		// Pipelined requests.
		c.process(c.in, false)
	}
	if c.rd.ready {
		c.read()
	}
}

// expire is the client's timeout.
func (c *cliConn) expire() {
	switch c.phase {
	case cIdle:
		c.close() // an idle keep-alive connection goes silently
	case cHeader:
		c.ctx.Request.Header.Reset()
		c.ctx.Response.Reset()
		reject(&c.ctx, fasthttp.StatusRequestTimeout)
		c.l.f.rejected(&c.ctx, 'c', 'R', true)
		c.closeAfter = true
		c.appendAnswer()
		c.phase = cSending
		c.flush()
	default:
		// The client takes no more of the response.
		c.tc.tx.wrote(0, errLoopTimeout{"client"})
		c.abort()
	}
}

// abort ends the connection, with the request whose response is going
// out and its server connection. (A client that leaves while its request
// is with a server is noticed when the response cannot be written, as in
// the goroutine engine.)
func (c *cliConn) abort() {
	c.close()
}

func (c *cliConn) close() {
	if c.closed {
		return
	}
	if sc := c.srv; sc != nil {
		c.srv = nil
		sc.cli = nil
		sc.close()
	}
	c.closed = true
	// The count first: a client that sees the close finds the loop's
	// count of clients down already, and so does its next connection.
	c.leave()
	c.l.unregister(c.fd, &c.timed)
	c.fd = -1
	c.nc.release()
}

// leave ends the connection's accounting, as the goroutine engine's
// StateClosed does.
func (c *cliConn) leave() {
	f := c.l.f
	c.l.clients.Add(-1)
	f.st.leave()
	if tx := c.tc.tx; tx != nil {
		c.tc.tx = nil
		tx.finish()
		f.st.bin.Add(uint64(tx.nr - tx.doneR))
		f.st.bout.Add(uint64(tx.nw - tx.doneW))
		tx.release()
	}
}

// handoff gives the connection to the goroutine engine, which reads data
// (what was read of the current request and after it) first.
func (c *cliConn) handoff(data []byte) {
	l := c.l
	pre := append([]byte(nil), data...)
	file := os.NewFile(uintptr(c.fd), "client")
	nc, err := net.FileConn(file) // a duplicate of the descriptor
	l.detach(c.fd, &c.timed)
	file.Close()
	c.fd = -1
	if tx := c.tc.tx; tx != nil {
		// The other engine reads it again and counts it then.
		tx.state = txIdle
		tx.nr -= int64(len(pre))
	}
	c.leave()
	if err != nil {
		l.f.log.Debug().Err(err).Msg("handing a connection over")
		c.nc.release()
		return
	}
	go l.f.handed.give(&handedConn{Conn: nc, pre: pre, release: c.nc.release})
}

// appendResponseHead appends the response header h as the client gets it:
// HTTP/1.1, its fields as they are (the server's Date, no default
// Content-Type).
func appendResponseHead(dst []byte, h *fasthttp.ResponseHeader) []byte {
	code := h.StatusCode()
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, ' ')
	if msg := h.StatusMessage(); len(msg) > 0 {
		dst = append(dst, msg...)
	} else {
		dst = append(dst, fasthttp.StatusMessage(code)...)
	}
	dst = append(dst, "\r\n"...)
	for k, v := range h.All() {
		dst = append(dst, k...)
		dst = append(dst, ": "...)
		dst = append(dst, v...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}
