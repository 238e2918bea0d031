package l7

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// The access log has a line per request with the fields of HAProxy's
// httplog (configuration manual, 8.2.3), as JSON keys:
//
//	client_ip, client_port  the client's address
//	accept_date             when the request's first byte came (HAProxy's %tr)
//	frontend_name           the Frontend's name
//	backend_name            the Backend's, or the frontend's for a request
//	                        the frontend answered itself
//	server_name             the server that served it (or was tried last),
//	                        "<NOSRV>" if none
//	TR Tw Tc Tr Ta          milliseconds, -1 for what did not happen (8.4):
//	                        TR the request headers, Tw the wait for a
//	                        connection slot, Tc the connect (0 on a reused
//	                        connection), Tr the server's answer up to its
//	                        headers, Ta the whole request, the response's
//	                        last byte included
//	status_code             the status sent to the client
//	bytes_read              the bytes sent to the client
//	termination_state       4 letters (8.5): who ended it (C client, S
//	                        server, P proxy, c and s their timeouts, -
//	                        normally), at which phase (R request, Q queue,
//	                        C connect, H response headers, D data, -), the
//	                        request's cookie (N none, I invalid, D down
//	                        server, V valid, E past maxidle, O past maxlife)
//	                        and what became of it in the response (N
//	                        nothing, I inserted, U updated); "-" without
//	                        cookies
//	retries                 connection retries
//	http_request            the request line, cut at 1024 bytes, or
//	                        "<BADREQ>" if it could not be parsed
//
// A line is written when the response has gone out, so Ta covers it; the
// timers are taken only when the access log is on.

// maxRequestLine is HAProxy's default tune.http.logurilen.
const maxRequestLine = 1024

// dateLayout is RFC 3339 with milliseconds.
const dateLayout = "2006-01-02T15:04:05.000Z07:00"

// Where a connection's current request is.
const (
	txIdle   = iota // between requests
	txActive        // the request is being read or served
	txServed        // the response is being sent
)

// txn is what the access log and the counters need to know of a request:
// when it started, which backend and server took it, its timers, how it
// ended; and of its connection, the bytes read and written. The frontend
// keeps one per client connection (in its timeoutConn, from a pool), which
// the engine serves one request at a time, so nothing is allocated per
// request. Its methods may be called on a nil txn and then do nothing.
type txn struct {
	f     *Frontend
	conn  *timeoutConn // nil: a txn for one request, on another kind of connection
	timed bool         // take the times: the access log is on

	ip           []byte
	port         int
	nr, nw       int64 // bytes read from and written to the client
	doneR, doneW int64 // those already counted
	rerr, werr   error // the first read and write errors

	state      int
	start      time.Time     // first byte of the request
	headers    time.Time     // the request's headers were in
	t1         time.Time     // a server connection was there
	tw, tc, tr time.Duration // -1: did not happen
	be         *Backend
	srv        *server
	fromServer bool // the response is srv's
	gotHeaders bool // the server's response headers came
	sentBody   bool // the request's body was read to its end and sent
	status     int
	retries    int
	ts         [4]byte // termination state; 0: not set yet
	line       []byte  // request line
	buf        []byte
}

var txnPool = sync.Pool{New: func() any { return new(txn) }}

func newTxn(f *Frontend, tc *timeoutConn) *txn {
	tx := txnPool.Get().(*txn)
	tx.f, tx.conn, tx.timed = f, tc, f.access != nil
	tx.nr, tx.nw, tx.doneR, tx.doneW = 0, 0, 0, 0
	tx.state, tx.port = txIdle, 0
	tx.ip = tx.ip[:0]
	if tc != nil {
		tx.ip = tc.ip()
		if a, ok := tc.RemoteAddr().(*net.TCPAddr); ok {
			tx.port = a.Port
		}
	}
	return tx
}

func (tx *txn) release() {
	if tx.conn != nil {
		tx.ip = nil // the connection's
	}
	tx.f, tx.conn, tx.be, tx.srv, tx.rerr, tx.werr = nil, nil, nil, nil, nil, nil
	txnPool.Put(tx)
}

// read and wrote count the client connection's I/O.
func (tx *txn) read(n int, err error) {
	tx.nr += int64(n)
	if err != nil && tx.rerr == nil {
		tx.rerr = err
	}
}

func (tx *txn) wrote(n int, err error) {
	tx.nw += int64(n)
	if err != nil && tx.werr == nil {
		tx.werr = err
	}
}

// begin starts a request whose first byte came at now (zero if untimed).
func (tx *txn) begin(now time.Time) {
	if tx.state != txIdle {
		tx.finish()
	}
	tx.state = txActive
	tx.start, tx.headers, tx.t1 = now, time.Time{}, time.Time{}
	tx.tw, tx.tc, tx.tr = -1, -1, -1
	tx.be, tx.srv, tx.fromServer, tx.gotHeaders, tx.sentBody = nil, nil, false, false, false
	tx.status, tx.retries = 0, 0
	tx.ts = [4]byte{}
	tx.line = tx.line[:0]
}

// request notes the request's line once its headers are in, or
// HAProxy's "<BADREQ>" if h is nil: they could not be parsed.
func (tx *txn) request(h *fasthttp.RequestHeader) {
	if !tx.timed {
		return
	}
	if h == nil {
		tx.line = append(tx.line[:0], "<BADREQ>"...)
		return
	}
	l := appendCapped(tx.line[:0], h.Method())
	l = appendCapped(l, []byte{' '})
	l = appendCapped(l, h.RequestURI())
	l = appendCapped(l, []byte{' '})
	tx.line = appendCapped(l, h.Protocol())
}

func appendCapped(dst, b []byte) []byte {
	if n := maxRequestLine - len(dst); len(b) > n {
		b = b[:max(n, 0)]
	}
	return append(dst, b...)
}

func (tx *txn) timing() bool { return tx != nil && tx.timed }

// connectFailed notes a failure to get a server connection, from t0.
func (tx *txn) connectFailed(t0 time.Time, err error) {
	if !tx.timing() {
		return
	}
	d := time.Since(t0)
	var ce *connectError
	if errors.As(err, &ce) {
		d -= ce.took
	}
	tx.tw = max(tx.tw, 0) + max(d, 0)
	tx.tc = -1
}

// connected notes a server connection got since t0: the time waiting in
// the queue and, for a new connection, the connect.
func (tx *txn) connected(t0 time.Time, sc *timeoutConn) {
	if !tx.timing() {
		return
	}
	tx.t1 = time.Now()
	var took time.Duration
	if sc != nil {
		took, sc.dialTook = sc.dialTook, 0
	}
	tx.tw = max(tx.tw, 0) + max(tx.t1.Sub(t0)-took, 0)
	tx.tc = took
}

// headersIn notes the server's response headers.
func (tx *txn) headersIn() {
	if tx == nil {
		return
	}
	tx.gotHeaders = true
	if tx.timed {
		tx.tr = time.Since(tx.t1)
	}
}

// forStream returns tx for a response body read after the handler
// returns, or nil if tx lives only as long as the handler.
func (tx *txn) forStream() *txn {
	if tx == nil || tx.conn == nil {
		return nil
	}
	return tx
}

// setTerm sets the first two letters of the termination state, unless
// an earlier event set them.
func (tx *txn) setTerm(who, phase byte) {
	if tx != nil && tx.ts[0] == 0 {
		tx.ts[0], tx.ts[1] = who, phase
	}
}

func (tx *txn) setRequestCookie(c byte) {
	if tx != nil {
		tx.ts[2] = c
	}
}

// setResponseCookieLetter notes what happened to the server's own cookie:
// P provided (preserved), R rewritten (prefix, rewrite modes).
func (tx *txn) setResponseCookieLetter(c byte) {
	if tx != nil {
		tx.ts[3] = c
	}
}

func (tx *txn) setResponseCookie(updated bool) {
	if tx != nil {
		tx.ts[3] = 'I'
		if updated {
			tx.ts[3] = 'U'
		}
	}
}

// requestCookie is the termination state's letter for the request's
// sticky cookie; srv is the live server it designates, if any.
func (b *Backend) requestCookie(c stickyCookie, srv *server, now uint32) byte {
	cc := b.cfg.Cookie
	switch {
	case cc == nil:
		return '-'
	case srv != nil:
		return 'V'
	case len(c.server) == 0:
		return 'N'
	case c.expired(now, cc.MaxIdle, 0):
		return 'E'
	case c.expired(now, 0, cc.MaxLife):
		return 'O'
	case b.byCK[string(c.server)] != nil:
		return 'D'
	}
	return 'I'
}

// serverAborted notes that the server failed while sending the body.
func (tx *txn) serverAborted(err error) {
	if tx == nil || tx.ts[0] != 0 {
		return
	}
	tx.setTerm(cause(err, 'S'), 'D')
	if tx.be != nil {
		tx.be.st.srvAbrt.Add(1)
		tx.be.st.eresp.Add(1)
	}
	if tx.srv != nil && tx.fromServer {
		tx.srv.st.srvAbrt.Add(1)
		tx.srv.st.eresp.Add(1)
	}
}

// cause returns who, or its timeout letter (lower case) if err is a
// timeout.
func cause(err error, who byte) byte {
	if isTimeout(err) {
		return who | 0x20
	}
	return who
}

// isTimeout reports a timeout: a net.Error's or fasthttp's ErrTimeout,
// which has only the Timeout method.
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

func clientCause(err error) byte { return cause(err, 'C') }

// finish ends the request once its response is out (or the connection
// closed): it counts the bytes and writes the log line.
func (tx *txn) finish() {
	if tx.state == txIdle {
		return
	}
	var end time.Time
	if tx.timed {
		end = time.Now()
	}
	in, out := tx.nr-tx.doneR, tx.nw-tx.doneW
	tx.doneR, tx.doneW = tx.nr, tx.nw
	if tx.ts[0] == 0 {
		switch {
		case tx.werr != nil:
			tx.ts[0], tx.ts[1] = clientCause(tx.werr), 'D'
			if tx.be != nil {
				tx.be.st.cliAbrt.Add(1)
			}
			if tx.srv != nil && tx.fromServer {
				tx.srv.st.cliAbrt.Add(1)
			}
		case tx.state == txActive: // the client left before the request was in
			tx.ts[0], tx.ts[1] = clientCause(tx.rerr), 'R'
			tx.f.st.ereq.Add(1)
		default:
			tx.ts[0], tx.ts[1] = '-', '-'
		}
	}
	tx.f.st.bin.Add(uint64(in))
	tx.f.st.bout.Add(uint64(out))
	if be := tx.be; be != nil {
		be.st.bin.Add(uint64(in))
		be.st.bout.Add(uint64(out))
		if tx.srv != nil && tx.fromServer {
			tx.srv.st.bin.Add(uint64(in))
			tx.srv.st.bout.Add(uint64(out))
		}
	}
	if tx.timed {
		tx.log(end, out)
	}
	tx.state = txIdle
}

func (tx *txn) log(end time.Time, bytes int64) {
	e := tx.f.access.Info()
	if e == nil {
		return
	}
	be, srv := tx.f.name, "<NOSRV>"
	cookies := byte('-')
	if tx.be != nil {
		be = tx.be.cfg.Name
		if tx.be.cfg.Cookie != nil {
			cookies = 'N'
		}
	}
	if tx.srv != nil {
		srv = tx.srv.name
	}
	for i := 2; i < 4; i++ {
		if tx.ts[i] == 0 {
			tx.ts[i] = cookies
		}
	}
	status := tx.status
	if status == 0 {
		status = -1
	}
	tx.buf = tx.start.AppendFormat(tx.buf[:0], dateLayout)
	e.Bytes("client_ip", tx.ip).Int("client_port", tx.port).Bytes("accept_date", tx.buf).
		Str("frontend_name", tx.f.name).Str("backend_name", be).Str("server_name", srv).
		Int64("TR", millis(tx.headers.Sub(tx.start), !tx.headers.IsZero())).
		Int64("Tw", millis(tx.tw, true)).Int64("Tc", millis(tx.tc, true)).Int64("Tr", millis(tx.tr, true)).
		Int64("Ta", millis(end.Sub(tx.start), true)).
		Int("status_code", status).Int64("bytes_read", bytes).
		Bytes("termination_state", tx.ts[:]).Int("retries", tx.retries).
		Bytes("http_request", tx.line).Send()
}

// millis is d in milliseconds, -1 if it did not happen.
func millis(d time.Duration, happened bool) int64 {
	if !happened || d < 0 {
		return -1
	}
	return d.Milliseconds()
}

// The frontend's side: fasthttp's ConnState hook follows connections and
// requests, the handler and the error handler see requests.

func (f *Frontend) connState(c net.Conn, st fasthttp.ConnState) {
	tc := clientConn(c)
	var tx *txn
	if tc != nil {
		tx = tc.tx
	}
	switch st {
	case fasthttp.StateNew:
		f.st.enter(time.Now().Unix())
		if tc != nil {
			tc.tx = newTxn(f, tc)
		}
	case fasthttp.StateActive:
		if tx != nil {
			var now time.Time
			if tx.timed {
				now = time.Now()
			}
			tx.begin(now)
		}
	case fasthttp.StateIdle:
		if tx != nil {
			tx.finish()
		}
	case fasthttp.StateClosed, fasthttp.StateHijacked:
		f.st.leave()
		if tx != nil {
			tc.tx = nil
			tx.finish()
			// Bytes of no request: a request cut short, a close.
			f.st.bin.Add(uint64(tx.nr - tx.doneR))
			f.st.bout.Add(uint64(tx.nw - tx.doneW))
			tx.release()
		}
	}
}

// serveRequest sends an admitted request where the frontend's rules say,
// keeping the counters and the log line.
func (f *Frontend) serveRequest(ctx *fasthttp.RequestCtx) {
	now := ctx.Time()
	f.st.reqTot.Add(1)
	f.st.reqRate.add(now.Unix())
	tc := clientConn(ctx.Conn())
	var tx *txn
	if tc != nil {
		tx = tc.tx
	}
	own := tx == nil
	if own {
		tx = newTxn(f, nil)
		if tx.timed {
			tx.ip = appendIP(tx.ip, ctx.RemoteAddr())
			if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
				tx.port = a.Port
			}
		}
	}
	if tx.state != txActive {
		tx.begin(now)
	}
	tx.headers = now
	tx.request(&ctx.Request.Header)

	f.dispatch(ctx, tx)

	tx.status = ctx.Response.StatusCode()
	tx.state = txServed
	f.st.status(tx.status)
	switch {
	case own:
		// No count of the connection's bytes: take the lengths.
		tx.nr = max(int64(ctx.Request.Header.ContentLength()), 0)
		tx.nw = max(int64(ctx.Response.Header.ContentLength()), 0)
		tx.finish()
		tx.release()
	case ctx.Hijacked():
		// The connection goes to another goroutine: let go of it now.
		tc.tx = nil
		tx.finish()
		tx.release()
	}
}

// requestError is the frontend's fasthttp ErrorHandler for a request it
// could not read: HAProxy's answers (431, 408, 413, else 400) with the
// connection closed, accounted for.
func (f *Frontend) requestError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	who := byte('P')
	switch {
	case errors.As(err, &small):
		reject(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge)
	case isTimeout(err):
		who = 'c'
		reject(ctx, fasthttp.StatusRequestTimeout)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		reject(ctx, fasthttp.StatusRequestEntityTooLarge)
	default:
		if errors.Is(err, io.ErrUnexpectedEOF) {
			who = 'C'
		}
		reject(ctx, fasthttp.StatusBadRequest)
	}
	// Only a body error leaves headers to log.
	f.rejected(ctx, who, 'R', !errors.Is(err, fasthttp.ErrBodyTooLarge))
}

// rejected accounts for a request the frontend answered itself with an
// error, ended by who at phase (termination state letters): the counters
// and the log line. badReq says that the request's headers could not be
// parsed.
func (f *Frontend) rejected(ctx *fasthttp.RequestCtx, who, phase byte, badReq bool) {
	code := ctx.Response.StatusCode()
	f.st.reqTot.Add(1)
	f.st.reqRate.add(time.Now().Unix())
	f.st.ereq.Add(1)
	f.st.status(code)
	tc := clientConn(ctx.Conn())
	if tc == nil || tc.tx == nil {
		return
	}
	tx := tc.tx
	if tx.state != txActive {
		tx.begin(ctx.ConnTime())
	}
	if badReq {
		tx.request(nil)
	} else {
		tx.request(&ctx.Request.Header)
	}
	tx.setTerm(who, phase)
	tx.status = code
	tx.state = txServed
}
