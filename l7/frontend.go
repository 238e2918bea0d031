package l7

import (
	"context"
	"errors"
	"net"
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
)

// FrontendConfig is a listener's side: HAProxy's "frontend" section with
// a default backend.
type FrontendConfig struct {
	Name    string
	Backend *Backend // required
	// ClientTimeout is the client side's inactivity timeout (HAProxy
	// "timeout client"): a read or write that makes no progress for that
	// long ends the connection, and so does an idle keep-alive connection.
	ClientTimeout time.Duration
	// Logger receives connection-level errors.
	Logger zerolog.Logger
	// AccessLog, if set, receives a line per request at info level, with
	// HAProxy's httplog fields (accesslog.go).
	AccessLog *zerolog.Logger
}

// Frontend serves HTTP/1.1 with keep-alive on listeners and sends every
// request to its backend.
type Frontend struct {
	srv     *fasthttp.Server
	timeout time.Duration
	name    string
	be      *Backend
	access  *zerolog.Logger
	st      frontendStats // stats.go
}

// NewFrontend returns a frontend.
func NewFrontend(cfg FrontendConfig) (*Frontend, error) {
	if cfg.Backend == nil {
		return nil, errors.New("frontend " + cfg.Name + ": no backend")
	}
	if cfg.ClientTimeout == 0 {
		cfg.ClientTimeout = DefaultClientTimeout
	}
	log := cfg.Logger.With().Str("frontend", cfg.Name).Logger()
	f := &Frontend{timeout: cfg.ClientTimeout, name: cfg.Name, be: cfg.Backend, access: cfg.AccessLog}
	f.srv = &fasthttp.Server{
		Handler:      f.serve,
		ErrorHandler: f.requestError,
		ConnState:    f.connState,
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
	return f, nil
}

// Serve accepts connections on ln until Shutdown or ln fails.
func (f *Frontend) Serve(ln net.Listener) error {
	return f.srv.Serve(timeoutListener{ln, f.timeout})
}

// Shutdown stops accepting, lets requests in progress finish and closes
// idle connections, until ctx is done.
func (f *Frontend) Shutdown(ctx context.Context) error { return f.srv.ShutdownWithContext(ctx) }

type logAdapter struct{ l zerolog.Logger }

func (a logAdapter) Printf(format string, args ...any) { a.l.Debug().Msgf(format, args...) }
