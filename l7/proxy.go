package l7

import (
	"bytes"
	"errors"
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

// proxy does Serve's work and returns the server whose response is in
// ctx, or nil if the response is the proxy's own (an error).
func (b *Backend) proxy(ctx *fasthttp.RequestCtx, tx *txn, sec int64) *server {
	req, resp := &ctx.Request, &ctx.Response
	cc := b.cfg.Cookie

	// Stickiness: a valid cookie naming a live server routes to it.
	var (
		srv       *server
		sticky    stickyCookie
		hadCookie bool
		now       uint32
	)
	if cc != nil {
		if cc.MaxIdle > 0 || cc.MaxLife > 0 {
			now = cookieDate(time.Now())
		}
		if v := req.Header.Cookie(cc.Name); len(v) > 0 {
			sticky = parseSticky(v)
			if !sticky.expired(now, cc.MaxIdle, cc.MaxLife) {
				if s := b.byCK[string(sticky.server)]; s != nil && s.up.Load() {
					srv, hadCookie = s, true
				}
			}
			req.Header.DelCookie(cc.Name) // "indirect": the server never sees it
		}
	}
	tx.setRequestCookie(b.requestCookie(sticky, srv, now))

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
	stripRequestHop(&req.Header)
	tc, _ := ctx.Conn().(*timeoutConn)
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

	// Send, retrying connection failures: on the same server, or on
	// another with Redispatch.
	var avoid []*server
	var err error
	var assigned *server
	for try := 0; ; try++ {
		if srv == nil {
			if srv = b.pick(avoid); srv == nil {
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
			srv, hadCookie = nil, false
		}
	}
	if err != nil {
		resp.Reset()
		b.failed(srv, err, tx)
		switch {
		case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout):
			ctx.Error("504 Gateway Timeout", fasthttp.StatusGatewayTimeout)
		case errors.Is(err, fasthttp.ErrNoFreeConns):
			ctx.Error("503 Service Unavailable", fasthttp.StatusServiceUnavailable)
		default:
			ctx.Error("502 Bad Gateway", fasthttp.StatusBadGateway)
		}
		return nil
	}

	// The server's Connection: close ended the server connection only.
	resp.Header.ResetConnectionClose()
	stripResponseHop(&resp.Header)

	if cc != nil {
		refresh := cc.MaxIdle > 0 && hadCookie && sticky.last != now
		if !hadCookie || refresh {
			tx.setResponseCookie(hadCookie)
			if now == 0 {
				resp.Header.AddBytesKV(hdrSetCookie, srv.setCookie)
			} else {
				first := uint32(0)
				if hadCookie {
					first = sticky.first
				}
				var buf []byte
				if tc != nil {
					buf = tc.scratch[:0]
				}
				buf = cc.appendSetCookie(buf, srv.cookie, now, first)
				resp.Header.AddBytesKV(hdrSetCookie, buf)
				if tc != nil {
					tc.scratch = buf
				}
			}
			if cc.NoCache && cacheable(resp) {
				resp.Header.Set("Cache-Control", "private")
			}
		}
	}
	return srv
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
