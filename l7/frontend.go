package l7

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

// Defaults for FrontendConfig fields left zero.
const (
	DefaultClientTimeout = 30 * time.Second // HAProxy "timeout client"
	// BodyBuffer is how much of a request or response body is read
	// before the message is forwarded: smaller bodies go in one piece,
	// larger ones and those of unknown length are streamed.
	BodyBuffer = 64 << 10
	// DefaultMaxHeaderSize bounds a request's line and headers: HAProxy's
	// tune.bufsize.
	DefaultMaxHeaderSize = 16 << 10
	DefaultTunnelTimeout = time.Hour // HAProxy "timeout tunnel" as commonly set
)

// FrontendConfig is a listener's side: HAProxy's "frontend" section with
// its rules and default backend.
type FrontendConfig struct {
	Name string
	// Backend is the default backend: it takes the requests that no rule
	// matches. Required without Rules.
	Backend *Backend
	// Rules, tried in order, send requests to other backends or answer
	// them (router.go).
	Rules []Rule
	// ClientTimeout is the client side's inactivity timeout (HAProxy
	// "timeout client"): a read or write that makes no progress for that
	// long ends the connection, and so does an idle keep-alive connection.
	ClientTimeout time.Duration
	// RequestTimeout bounds the arrival of a request's header, and of a
	// body of up to BodyBuffer bytes that is read before forwarding
	// (HAProxy "timeout http-request"): from the connection's start for
	// its first request (the TLS handshake included), from the first byte
	// for later ones. A client that is too slow gets 408 and the
	// connection is closed. 0: only ClientTimeout applies.
	RequestTimeout time.Duration
	// KeepAliveTimeout bounds the wait for the next request on a
	// keep-alive connection (HAProxy "timeout http-keep-alive"); the
	// connection is closed silently. 0: RequestTimeout if set, else
	// ClientTimeout. On HTTP/2 connections it is the idle timeout.
	KeepAliveTimeout time.Duration
	// TunnelTimeout is the inactivity timeout of an upgraded (WebSocket)
	// connection, on both sides: it ends when neither side has sent
	// anything for that long (HAProxy "timeout tunnel"). 0:
	// DefaultTunnelTimeout.
	TunnelTimeout time.Duration
	// MaxHeaderSize bounds the request line and headers; a larger one
	// gets 431. 0: DefaultMaxHeaderSize.
	MaxHeaderSize int
	// MaxBodySize bounds a request body: a larger Content-Length gets 413
	// before anything is forwarded, a chunked body that grows beyond it
	// is cut off (413 if no response was sent yet). 0: no limit.
	MaxBodySize int64
	// MaxConns bounds the connections of each listener (HAProxy
	// "maxconn"): beyond it, new connections wait in the kernel's accept
	// backlog until one closes. 0: no limit.
	MaxConns int
	// TLS, if set, terminates TLS on the listeners, with ALPN "h2" and
	// "http/1.1": HTTP/2 connections are served by golang.org/x/net/http2
	// and sent to the same backend over HTTP/1.1.
	TLS *TLSConfig
	// Logger receives connection-level errors.
	Logger zerolog.Logger
	// AccessLog, if set, receives a line per request at info level, with
	// HAProxy's httplog fields (accesslog.go).
	AccessLog *zerolog.Logger
	// Engine chooses how plain HTTP is served: EngineLoops (the default)
	// or EngineGoroutines. TLS listeners use the goroutine engine.
	Engine string
	// Loops is how many event loops serve (HAProxy's nbthread), each on
	// a thread of its own. 0: one per P, runtime.GOMAXPROCS. The process
	// does best with a P more than its loops: see Procs.
	Loops int
}

// Procs is the GOMAXPROCS for a process whose frontends serve with n
// threads (HAProxy's nbthread) on engine: with the event loops, a P more
// than the loops, for the rest of the process (accepting, checks, the
// goroutine engine, the ctl API). A loop asleep in epoll_wait is in a
// syscall with its P, and while no P is idle Go's sysmon takes that P
// back after 20 µs and starts a spinning thread to find work for it,
// every time a loop sleeps: on 2 cores shared with wrk and nginx, 10k
// sysmon wake-ups a second and 4-13% of a core in those threads. An idle
// P tells the runtime nobody waits for one.
func Procs(n int, engine string) int {
	if engine == EngineGoroutines {
		return n
	}
	return n + 1
}

// Engines of a frontend.
const (
	// EngineLoops serves plain HTTP/1.1 on event loops, one per thread
	// (loop.go), and hands what they do not take to the goroutine
	// engine.
	EngineLoops = "loops"
	// EngineGoroutines serves every connection on a goroutine of its own
	// (fasthttp).
	EngineGoroutines = "goroutines"
)

// Frontend serves HTTP/1.1 with keep-alive on listeners and sends every
// request to its backend, or where its rules say.
type Frontend struct {
	cfg       FrontendConfig
	srv       *fasthttp.Server
	dispatch  func(*fasthttp.RequestCtx, *txn) // the rules' or the backend's
	route     func(*fasthttp.Request) *Backend // where dispatch sends a request
	certs     *certStore                       // nil without TLS
	tlsConfig *tls.Config
	h2        *h2Server
	log       zerolog.Logger
	// maxBody is cfg.MaxBodySize, addressable for the request's user
	// value that carries it to the transport.
	maxBody int64
	name    string
	access  *zerolog.Logger
	st      frontendStats // stats.go
	// held pools the framers' buffers (framing.go): a connection needs
	// one only while a client has sent ahead of its handler.
	held sync.Pool // *heldBuf

	// The event loops, started by the first Serve, and the listener
	// through which they hand connections to the goroutine engine.
	loopsOnce sync.Once
	loops     *loopEngine
	loopsErr  error
	handed    *chanListener
	lnMu      sync.Mutex
	lns       []net.Listener // Serve's, closed by Shutdown
}

// NewFrontend returns a frontend.
func NewFrontend(cfg FrontendConfig) (*Frontend, error) {
	handler, route, err := cfg.handler()
	if err != nil {
		return nil, err
	}
	switch cfg.Engine {
	case "", EngineLoops, EngineGoroutines:
	default:
		return nil, fmt.Errorf("frontend %s: engine %q: want %s or %s", cfg.Name, cfg.Engine, EngineLoops, EngineGoroutines)
	}
	if cfg.ClientTimeout == 0 {
		cfg.ClientTimeout = DefaultClientTimeout
	}
	if cfg.KeepAliveTimeout == 0 {
		cfg.KeepAliveTimeout = cfg.RequestTimeout
	}
	if cfg.TunnelTimeout == 0 {
		cfg.TunnelTimeout = DefaultTunnelTimeout
	}
	if cfg.MaxHeaderSize == 0 {
		cfg.MaxHeaderSize = DefaultMaxHeaderSize
	}
	if cfg.ClientTimeout < 0 || cfg.RequestTimeout < 0 || cfg.KeepAliveTimeout < 0 || cfg.TunnelTimeout < 0 ||
		cfg.MaxHeaderSize < 0 || cfg.MaxBodySize < 0 || cfg.MaxConns < 0 {
		return nil, errors.New("frontend " + cfg.Name + ": negative timeout or limit")
	}
	log := cfg.Logger.With().Str("frontend", cfg.Name).Logger()
	f := &Frontend{cfg: cfg, dispatch: handler, route: route, log: log, maxBody: cfg.MaxBodySize, name: cfg.Name, access: cfg.AccessLog}
	if cfg.TLS != nil {
		certs, err := newCertStore(cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("frontend %s: %w", cfg.Name, err)
		}
		f.certs, f.tlsConfig = certs, certs.config()
	}
	f.srv = &fasthttp.Server{
		Handler:      f.handle,
		ErrorHandler: f.requestError,
		ConnState:    f.connState,
		// The request line and headers must fit the read buffer, or
		// fasthttp answers ErrSmallBuffer: 431.
		ReadBufferSize: cfg.MaxHeaderSize,
		// No ReadTimeout, WriteTimeout or IdleTimeout: timeoutConn keeps
		// ClientTimeout at a fraction of their cost.
		StreamRequestBody:             true,
		MaxRequestBodySize:            BodyBuffer,
		DisableHeaderNamesNormalizing: true,
		DisablePreParseMultipartForm:  true,
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		NoDefaultContentType:          true,
		CloseOnShutdown:               true,
		Logger:                        logAdapter{log},
	}
	if f.certs != nil {
		f.setupH2()
	}
	return f, nil
}

// Serve accepts connections on ln until Shutdown or ln fails.
func (f *Frontend) Serve(ln net.Listener) error {
	if f.certs != nil || f.cfg.Engine == EngineGoroutines {
		return f.srv.Serve(f.newListener(ln))
	}
	e, err := f.startLoops(ln.Addr())
	if err != nil {
		return err
	}
	l := f.newListener(ln)
	f.lnMu.Lock()
	f.lns = append(f.lns, l)
	f.lnMu.Unlock()
	for {
		c, release, err := l.acceptSlot()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		nc, err := loopConnOf(c, release)
		if err != nil {
			// Not a socket the loops can take: the goroutine engine
			// serves it.
			f.handed.give(&handedConn{Conn: c, release: release})
			continue
		}
		e.add(nc)
	}
}

// startLoops starts the event loops, one per thread, and the goroutine
// engine that serves what they hand over, once.
func (f *Frontend) startLoops(addr net.Addr) (*loopEngine, error) {
	f.loopsOnce.Do(func() {
		n := f.cfg.Loops
		if n <= 0 {
			n = runtime.GOMAXPROCS(0)
		}
		f.loops, f.loopsErr = newLoopEngine(f, n)
		if f.loopsErr != nil {
			return
		}
		f.handed = newChanListener(f, addr)
		go func() {
			if err := f.srv.Serve(f.handed); err != nil {
				f.log.Error().Err(err).Msg("serving handed connections")
			}
		}()
	})
	return f.loops, f.loopsErr
}

// Shutdown stops accepting, lets requests in progress finish and closes
// idle connections, until ctx is done. HTTP/2 connections get a GOAWAY
// and close when their streams are done.
func (f *Frontend) Shutdown(ctx context.Context) error {
	if f.h2 != nil {
		_ = f.h2.base.Shutdown(ctx) // tells the HTTP/2 connections only
	}
	f.loopsOnce.Do(func() {}) // no loops from now on
	f.lnMu.Lock()
	for _, l := range f.lns {
		l.Close()
	}
	f.lns = nil
	f.lnMu.Unlock()
	var err error
	if f.loops != nil {
		err = f.loops.shutdown(ctx)
	}
	return errors.Join(err, f.srv.ShutdownWithContext(ctx))
}

// Reload reads the TLS certificates and keys again and uses them for new
// connections; connections already open keep theirs. If any file fails to
// load, the certificates in use stay and the error says which.
func (f *Frontend) Reload() error {
	if f.certs == nil {
		return nil
	}
	if err := f.certs.reload(); err != nil {
		return fmt.Errorf("frontend %s: %w", f.cfg.Name, err)
	}
	return nil
}

// handle is the engine's handler: it checks the request, then hands it to
// the backend.
func (f *Frontend) handle(ctx *fasthttp.RequestCtx) {
	tc := clientConn(ctx.Conn())
	if tc != nil {
		tc.setPhase(phaseBody)
	}
	if f.admit(ctx, tc) {
		if f.certs != nil {
			// The servers speak plain HTTP: fasthttp's client refuses a
			// request whose URI says https.
			ctx.Request.URI().SetScheme("http")
		}
		f.serveRequest(ctx)
		if tc != nil && tc.tx != nil && !tc.tx.sentBody && ctx.Request.IsBodyStream() &&
			ctx.Request.Header.ContentLength() != 0 {
			// The body was not read to its end (the frontend answered
			// itself, or the server failed): the engine would read the
			// rest of it as the next request.
			ctx.SetConnectionClose()
		}
	}
	if tc != nil {
		tc.setPhase(phaseIdle)
	}
}

// admit rejects what must not reach a server: malformed framing (400,
// see checkHeader and, on the client connection tc, framer.resume) and
// bodies larger than MaxBodySize (413). A chunked body is counted and its
// end checked as it is forwarded: the transport finds the limit in the
// request's user value bodyLimitKey, the framer in framingKey.
func (f *Frontend) admit(ctx *fasthttp.RequestCtx, tc *timeoutConn) bool {
	h := &ctx.Request.Header
	err := checkHeader(h.RawHeaders())
	if err == nil && tc != nil {
		if err = tc.req.resume(h.ContentLength()); err == nil && h.ContentLength() == -1 {
			ctx.SetUserValue(framingKey{}, &tc.req)
		}
	}
	if err != nil {
		reject(ctx, fasthttp.StatusBadRequest)
		f.rejected(ctx, 'P', 'R', false)
		return false
	}
	if f.maxBody > 0 {
		switch cl := h.ContentLength(); {
		case int64(cl) > f.maxBody:
			reject(ctx, fasthttp.StatusRequestEntityTooLarge)
			f.rejected(ctx, 'P', 'R', false)
			return false
		case cl == -1:
			ctx.SetUserValue(bodyLimitKey{}, &f.maxBody)
		}
	}
	return true
}

// reject answers with an error status and closes the connection: after a
// bad request the rest of what the client sent cannot be trusted.
func reject(ctx *fasthttp.RequestCtx, code int) {
	ctx.Error(fasthttp.StatusMessage(code), code)
	ctx.SetConnectionClose()
}

type logAdapter struct{ l zerolog.Logger }

func (a logAdapter) Printf(format string, args ...any) { a.l.Debug().Msgf(format, args...) }
