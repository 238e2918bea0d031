//lint:file-ignore SA1019 http2.Server.ServeConn is the one API that serves a connection the engine has accepted and handshaken; net/http has none.

package l7

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
)

// HTTP/2 over TLS: connections that negotiated "h2" leave the fasthttp
// engine for golang.org/x/net/http2, whose net/http handler converts each
// request to a fasthttp one, sends it through the same dispatch as
// HTTP/1.1 (to the servers over HTTP/1.1) and converts the response back.

// h2ConnKey is the context key of a stream's h2Conn.
type h2ConnKey struct{}

// h2Conn stands for an HTTP/2 connection in the RequestCtx of each of its
// streams: it gives the addresses and the TLS state (so that IsTLS is
// true), and no per-connection state, since streams run concurrently.
type h2Conn struct{ *tls.Conn }

var h2ctxs sync.Pool // *fasthttp.RequestCtx

// h2Server serves a frontend's HTTP/2 connections.
type h2Server struct {
	srv  *http2.Server
	base *http.Server // its Shutdown sends GOAWAY to the connections
}

func (f *Frontend) setupH2() {
	idle := f.cfg.KeepAliveTimeout
	if idle == 0 {
		idle = f.cfg.ClientTimeout
	}
	h := &h2Server{
		srv: &http2.Server{IdleTimeout: idle},
		base: &http.Server{
			Handler:        http.HandlerFunc(f.serveH2),
			MaxHeaderBytes: f.cfg.MaxHeaderSize,
		},
	}
	// Registers the HTTP/2 connections for base.Shutdown.
	_ = http2.ConfigureServer(h.base, h.srv)
	f.h2 = h
	f.srv.NextProto("h2", f.serveH2Conn)
}

// serveH2Conn serves a connection that negotiated "h2". The server reads
// and writes it from two goroutines: the timeoutConn under it stops
// yielding and keeps its inactivity timeout only.
func (f *Frontend) serveH2Conn(c net.Conn) error {
	tl, ok := c.(*tlsConn)
	if !ok {
		return nil
	}
	tl.tc.yield, tl.tc.wrote, tl.tc.phased = false, false, false
	tl.tc.req.stop() // http2 frames its messages itself
	ctx := context.WithValue(context.Background(), h2ConnKey{}, &h2Conn{tl.Conn})
	f.h2.srv.ServeConn(c, &http2.ServeConnOpts{Context: ctx, BaseConfig: f.h2.base, Handler: f.h2.base.Handler})
	return nil
}

// hopH2 are the request headers that HTTP/2 forbids or that the engine
// sets itself.
var hopH2 = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Transfer-Encoding": true, "Upgrade": true, "Content-Length": true, "Host": true,
}

func (f *Frontend) serveH2(w http.ResponseWriter, r *http.Request) {
	hc, _ := r.Context().Value(h2ConnKey{}).(*h2Conn)
	if hc == nil {
		http.Error(w, "no connection", http.StatusInternalServerError)
		return
	}
	if f.maxBody > 0 && r.ContentLength > f.maxBody {
		http.Error(w, fasthttp.StatusMessage(http.StatusRequestEntityTooLarge), http.StatusRequestEntityTooLarge)
		return
	}
	ctx, _ := h2ctxs.Get().(*fasthttp.RequestCtx)
	if ctx == nil {
		ctx = new(fasthttp.RequestCtx)
	}
	ctx.Init2(hc, logAdapter{f.log}, false)
	defer func() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		h2ctxs.Put(ctx)
	}()

	req := &ctx.Request
	req.Header.DisableNormalizing()
	req.Header.SetMethod(r.Method)
	req.Header.SetRequestURI(r.RequestURI)
	req.Header.SetHost(r.Host)
	for k, vs := range r.Header {
		if hopH2[k] {
			continue
		}
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	switch cl := r.ContentLength; {
	case cl == 0 || r.Body == nil || r.Body == http.NoBody:
	case cl > 0 && cl <= BodyBuffer:
		body := make([]byte, cl)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			http.Error(w, fasthttp.StatusMessage(http.StatusBadRequest), http.StatusBadRequest)
			return
		}
		req.SetBodyRaw(body)
	default: // larger or of unknown length: streamed, chunked if unknown
		req.SetBodyStream(r.Body, int(cl))
		if cl < 0 && f.maxBody > 0 {
			ctx.SetUserValue(bodyLimitKey{}, &f.maxBody)
		}
	}

	f.serveRequest(ctx)

	resp := &ctx.Response
	h := w.Header()
	for k, v := range resp.Header.All() {
		switch string(k) {
		case "Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Content-Length", "Proxy-Connection":
			continue
		}
		h.Add(string(k), string(v))
	}
	code := resp.StatusCode()
	noBody := r.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	if resp.IsBodyStream() {
		if cl := resp.Header.ContentLength(); cl >= 0 {
			h.Set("Content-Length", strconv.Itoa(cl))
		}
		w.WriteHeader(code)
		if !noBody {
			_, _ = io.Copy(w, resp.BodyStream())
		}
		_ = resp.CloseBodyStream()
		return
	}
	body := resp.Body()
	if !noBody {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(code)
	if !noBody {
		_, _ = w.Write(body)
	}
}
