package l7

import (
	"bytes"
	"errors"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

var (
	hdrConnection = "Connection"
	hdrXFF        = "X-Forwarded-For"
	hdrXFP        = "X-Forwarded-Proto"
	hdrSetCookie  = []byte("Set-Cookie")
	// hopRequest and hopResponse are the headers that concern one
	// connection only (RFC 9110 section 7.6.1), besides Connection and
	// those it names, that can occur in requests and responses.
	// Transfer-Encoding is absent: the engine frames bodies itself.
	// Expect is answered by the frontend, which sends 100 Continue.
	hopRequest  = []string{"Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade", "Expect"}
	hopResponse = []string{"Keep-Alive", "Proxy-Authenticate", "Trailer", "Upgrade"}
)

// Serve proxies the request in ctx to a server of the backend and puts the
// server's response in ctx.
func (b *Backend) Serve(ctx *fasthttp.RequestCtx) { b.serve(ctx, nil) }

// serve is Serve with the frontend's record of the request (nil: none),
// kept up to date for the access log and the counters.
func (b *Backend) serve(ctx *fasthttp.RequestCtx, tx *txn) {
	now := ctx.Time()
	if now.IsZero() {
		now = time.Now()
	}
	sec := now.Unix()
	b.st.enter(sec)
	srv := b.proxy(ctx, tx, sec)
	b.done(ctx.Response.StatusCode(), srv, tx)
}

// outbound is a request on its way to a server: what prepare found in
// it, for the choice of server and for the response.
type outbound struct {
	srv     *server // the live server the cookie names, or nil
	cs      cookieState
	key     []byte // the hash key of hashing policies, if needed
	upgrade []byte // the Upgrade header of an upgrade request
	tc      *timeoutConn
}

// proxy does Serve's work and returns the server whose response is in
// ctx, or nil if the response is the proxy's own (an error).
func (b *Backend) proxy(ctx *fasthttp.RequestCtx, tx *txn, sec int64) *server {
	req, resp := &ctx.Request, &ctx.Response
	var o outbound
	b.prepare(ctx, tx, &o)

	// Send, retrying connection failures: on the same server, or on
	// another with Redispatch.
	var avoid []*server
	var err error
	srv := o.srv
	var assigned *server
	for try := 0; ; try++ {
		if srv == nil {
			if srv = b.pick(avoid, o.key); srv == nil {
				b.noServer(tx)
				ctx.Error("503 Service Unavailable: no server is available", fasthttp.StatusServiceUnavailable)
				return nil
			}
		}
		if srv != assigned {
			b.assign(srv, tx, sec)
			assigned = srv
		}
		err = srv.do(req, resp, tx)
		if err == nil || !isConnectError(err) || try >= b.cfg.Retries {
			break
		}
		b.retry(srv, tx, b.cfg.Redispatch)
		if b.cfg.Redispatch {
			avoid = append(avoid, srv)
			srv, o.cs.had = nil, false
		}
	}
	if err != nil {
		resp.Reset()
		var be *clientBodyError
		b.failed(srv, err, tx)
		switch {
		case errors.As(err, &be):
			reject(ctx, clientBodyStatus(err))
		default:
			serverError(ctx, err)
		}
		return nil
	}

	if o.upgrade != nil && resp.StatusCode() == fasthttp.StatusSwitchingProtocols {
		if st, ok := req.UserValue(tunnelKey{}).(serverTunnel); ok {
			b.upgrade(ctx, o.tc, st)
			return srv
		}
	}
	b.respond(req, resp, srv, &o, tx)
	return srv
}

// prepare reads the request's cookie and rewrites the request for the
// server: hop-by-hop headers out, the forwarding headers in.
func (b *Backend) prepare(ctx *fasthttp.RequestCtx, tx *txn, o *outbound) {
	req := &ctx.Request
	// Stickiness: a valid cookie naming a live server routes to it.
	if b.cfg.Cookie != nil {
		o.srv = b.cookieRequest(req, &o.cs)
	}
	tc := clientConn(ctx.Conn())
	o.tc = tc
	if b.cfg.ForwardedHost || b.cfg.Forwarded {
		b.forwarded(ctx, tc) // before HTTP/1.0 requests get a Host
	}
	tx.setRequestCookie(b.requestCookie(o.cs.sticky, o.srv, o.cs.now))

	// The client's Connection: close concerns its connection only; the
	// engine noted it before calling Serve and closes after the response.
	req.Header.ResetConnectionClose()
	if !req.Header.IsHTTP11() {
		// Keep the server connection alive for HTTP/1.0 clients too;
		// HTTP/1.1 requires a Host: the address the client reached.
		req.Header.SetProtocol("HTTP/1.1")
		if len(req.Header.Host()) == 0 {
			req.Header.SetHost(ctx.LocalAddr().String())
		}
	}
	// An upgrade (WebSocket) keeps its Upgrade header, the one hop-by-hop
	// header that is forwarded.
	if isUpgrade(&req.Header) {
		o.upgrade = append(o.upgrade, req.Header.Peek(hdrUpgrade)...)
	}
	stripRequestHop(&req.Header)
	if o.upgrade != nil {
		req.Header.Set(hdrConnection, "Upgrade")
		req.Header.SetBytesV(hdrUpgrade, o.upgrade)
	}
	if b.cfg.ForwardFor {
		var ip []byte
		if tc != nil {
			ip = tc.ip()
		} else {
			ip = appendIP(nil, ctx.RemoteAddr())
		}
		if len(ip) > 0 {
			req.Header.AddBytesV(hdrXFF, ip)
		}
		if ctx.IsTLS() {
			req.Header.Set(hdrXFP, "https")
		} else {
			req.Header.Set(hdrXFP, "http")
		}
	}
	if o.srv == nil && b.bal.hash() != hashNone {
		o.key = b.bal.hashKey(req.Header.RequestURI(), func() []byte {
			if tc != nil {
				return tc.ip()
			}
			return appendIP(nil, ctx.RemoteAddr())
		})
	}
}

// respond rewrites the response of srv for the client: hop-by-hop
// headers out, the Server header and the cookie as configured.
func (b *Backend) respond(req *fasthttp.Request, resp *fasthttp.Response, srv *server, o *outbound, tx *txn) {
	// The server's Connection: close ended the server connection only.
	resp.Header.ResetConnectionClose()
	stripResponseHop(&resp.Header)
	if b.cfg.HideServer {
		resp.Header.SetServer("")
	} else if b.cfg.ServerHeader != "" {
		resp.Header.SetServer(b.cfg.ServerHeader)
	}
	if b.cfg.Cookie != nil {
		b.cookieResponse(req, resp, srv, &o.cs, o.tc, tx)
	}
}

// serverError answers a request whose server failed with err.
func serverError(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout):
		ctx.Error("504 Gateway Timeout", fasthttp.StatusGatewayTimeout)
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		ctx.Error("503 Service Unavailable", fasthttp.StatusServiceUnavailable)
	default:
		ctx.Error("502 Bad Gateway", fasthttp.StatusBadGateway)
	}
}

// upgrade answers 101 to the client and splices its connection to the
// server's.
func (b *Backend) upgrade(ctx *fasthttp.RequestCtx, tc *timeoutConn, st serverTunnel) {
	h := &ctx.Response.Header
	proto := append([]byte(nil), h.Peek(hdrUpgrade)...)
	h.ResetConnectionClose()
	stripResponseHop(h)
	h.Set(hdrConnection, "Upgrade")
	h.SetBytesV(hdrUpgrade, proto)
	timeout := DefaultTunnelTimeout
	if tc != nil && tc.tunnelTimeout > 0 {
		timeout = tc.tunnelTimeout
	}
	if tc != nil {
		// From now on the client sends another protocol.
		tc.req.stop()
	}
	client := ctx.Conn()
	ctx.Hijack(func(hj net.Conn) { splice(hj, client, tc, st, timeout) })
}

func isConnectError(err error) bool {
	var ce *connectError
	return errors.As(err, &ce)
}

// stripRequestHop removes the hop-by-hop headers: the fixed list and
// those the Connection header names.
func stripRequestHop(h *fasthttp.RequestHeader) {
	if v := h.Peek(hdrConnection); len(v) > 0 {
		forEachToken(v, func(t []byte) { h.DelBytes(t) })
		h.Del(hdrConnection)
	}
	for _, k := range hopRequest {
		h.Del(k)
	}
}

func stripResponseHop(h *fasthttp.ResponseHeader) {
	if v := h.Peek(hdrConnection); len(v) > 0 {
		forEachToken(v, func(t []byte) { h.DelBytes(t) })
		h.Del(hdrConnection)
	}
	for _, k := range hopResponse {
		h.Del(k)
	}
}

func forEachToken(v []byte, f func([]byte)) {
	for len(v) > 0 {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte{','})
		t = bytes.TrimSpace(t)
		if len(t) > 0 && !bytes.EqualFold(t, []byte("close")) && !bytes.EqualFold(t, []byte("keep-alive")) {
			f(t)
		}
	}
}

// cacheable approximates HAProxy's test for "nocache": a response a shared
// cache could store, that is one that says how fresh it is and does not
// already forbid it.
func cacheable(resp *fasthttp.Response) bool {
	cc := resp.Header.Peek("Cache-Control")
	if len(cc) > 0 {
		l := bytes.ToLower(cc)
		if bytes.Contains(l, []byte("private")) || bytes.Contains(l, []byte("no-cache")) || bytes.Contains(l, []byte("no-store")) {
			return false
		}
		if bytes.Contains(l, []byte("public")) || bytes.Contains(l, []byte("max-age")) {
			return true
		}
	}
	return len(resp.Header.Peek("Expires")) > 0 || len(resp.Header.Peek("Last-Modified")) > 0
}
