package health

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultUserAgent is sent by HTTP checks unless HTTPConfig.UserAgent is set.
const DefaultUserAgent = "director-healthcheck/1"

// DefaultMaxBody is how much of the body an HTTP check reads when looking
// for ExpectBody, like HAProxy's tune.chksize.
const DefaultMaxBody = 16 << 10

// HTTPConfig describes an HTTP or HTTPS check (HAProxy "option httpchk" and
// "http-check expect", keepalived HTTP_GET/SSL_GET).
type HTTPConfig struct {
	// Addr is the backend's "host:port"; the check connects there whatever
	// Host says. Required.
	Addr string
	// TLS makes this an HTTPS check.
	TLS bool
	// Method is "GET" (the default) or "HEAD".
	Method string
	// Path is the request target, starting with "/", query allowed.
	// Default "/".
	Path string
	// Host is the Host header. Default: Addr.
	Host string
	// Header holds extra request headers. User-Agent, Host and Connection
	// are set by the checker.
	Header http.Header
	// Expect is the set of passing status codes. Default DefaultExpect
	// (200-399). Redirects are never followed: a 302 is judged as a 302.
	Expect StatusSet
	// ExpectBody, if set, must occur in the first MaxBody bytes of the body.
	ExpectBody string
	// MaxBody bounds how much body is read. Default DefaultMaxBody.
	MaxBody int64
	// ServerName is the TLS SNI and the name the certificate is verified
	// against. Default: the host part of Host if it is a name, else none
	// (the certificate must then carry Addr's IP).
	ServerName string
	// InsecureSkipVerify skips certificate verification.
	InsecureSkipVerify bool
	// RootCAs verifies the server certificate; nil means the system pool.
	RootCAs *x509.CertPool
	// UserAgent overrides DefaultUserAgent.
	UserAgent string
}

// HTTPChecker performs HTTP(S) checks. Every check opens a fresh
// connection and asks the server to close it ("Connection: close"); no
// proxy from the environment is used; redirects are not followed.
type HTTPChecker struct {
	url        string
	method     string
	host       string
	header     http.Header
	expect     StatusSet
	expectBody []byte
	maxBody    int64
	transport  *http.Transport
}

// NewHTTPChecker validates cfg and returns a checker.
func NewHTTPChecker(cfg HTTPConfig) (*HTTPChecker, error) {
	if err := validateAddr(cfg.Addr); err != nil {
		return nil, err
	}
	c := &HTTPChecker{
		method:     cfg.Method,
		host:       cfg.Host,
		expect:     cfg.Expect,
		expectBody: []byte(cfg.ExpectBody),
		maxBody:    cfg.MaxBody,
		header:     cfg.Header.Clone(),
	}
	switch c.method {
	case "":
		c.method = http.MethodGet
	case http.MethodGet, http.MethodHead:
	default:
		return nil, fmt.Errorf("health: http check of %s: method %q: want GET or HEAD", cfg.Addr, cfg.Method)
	}
	if c.method == http.MethodHead && cfg.ExpectBody != "" {
		return nil, fmt.Errorf("health: http check of %s: HEAD has no body to match %q against", cfg.Addr, cfg.ExpectBody)
	}
	path := cfg.Path
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("health: http check of %s: path %q must start with /", cfg.Addr, path)
	}
	scheme := "http"
	if cfg.TLS {
		scheme = "https"
	}
	u, err := url.Parse(scheme + "://" + cfg.Addr + path)
	if err != nil {
		return nil, fmt.Errorf("health: http check of %s: path %q: %w", cfg.Addr, path, err)
	}
	c.url = u.String()
	if len(c.expect) == 0 {
		c.expect = DefaultExpect
	}
	if c.maxBody < 0 {
		return nil, fmt.Errorf("health: http check of %s: negative MaxBody %d", cfg.Addr, cfg.MaxBody)
	}
	if c.maxBody == 0 {
		c.maxBody = DefaultMaxBody
	}
	if c.header == nil {
		c.header = make(http.Header)
	}
	ua := cfg.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	c.header.Set("User-Agent", ua)
	c.header.Del("Connection")
	c.header.Del("Host")

	var tlsConf *tls.Config
	if cfg.TLS {
		tlsConf = &tls.Config{
			ServerName:         cfg.ServerName,
			InsecureSkipVerify: cfg.InsecureSkipVerify,
			RootCAs:            cfg.RootCAs,
			MinVersion:         tls.VersionTLS12,
		}
		if tlsConf.ServerName == "" && cfg.Host != "" {
			if h := hostOnly(cfg.Host); net.ParseIP(h) == nil {
				tlsConf.ServerName = h
			}
		}
	}
	dialer := &net.Dialer{KeepAlive: -1}
	c.transport = &http.Transport{
		Proxy:                  nil, // never a proxy from the environment
		DialContext:            dialer.DialContext,
		TLSClientConfig:        tlsConf,
		DisableKeepAlives:      true,
		DisableCompression:     true, // match ExpectBody against the bytes sent
		MaxResponseHeaderBytes: 64 << 10,
		TLSNextProto:           map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only
	}
	return c, nil
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// String describes the checker, e.g. "http GET http://10.0.0.1:80/healthz".
func (c *HTTPChecker) String() string { return "http " + c.method + " " + c.url }

// Check sends one request on a fresh connection and judges the answer.
func (c *HTTPChecker) Check(ctx context.Context) Result {
	start := time.Now()
	// The trace hooks may run on the transport's goroutines, even after
	// RoundTrip has returned on a timeout.
	var (
		mu                            sync.Mutex
		handshakeErr                  error
		connected, gotConn, gotAnswer bool
	)
	trace := &httptrace.ClientTrace{
		ConnectDone: func(_, _ string, err error) {
			mu.Lock()
			defer mu.Unlock()
			connected = connected || err == nil
		},
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				handshakeErr = err
			}
		},
		GotConn: func(httptrace.GotConnInfo) {
			mu.Lock()
			defer mu.Unlock()
			gotConn = true
		},
		GotFirstResponseByte: func() {
			mu.Lock()
			defer mu.Unlock()
			gotAnswer = true
		},
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), c.method, c.url, nil)
	if err != nil {
		return Fail(Cause{Kind: CauseError, Detail: err.Error(), Err: err}, time.Since(start))
	}
	req.Header = c.header.Clone()
	if c.host != "" {
		req.Host = c.host
	}
	req.Close = true

	// RoundTrip, not a Client: a RoundTripper never follows redirects.
	resp, err := c.transport.RoundTrip(req)
	if err != nil {
		cause := causeOf(ctx, err)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case cause.Kind == CauseTimeout && !connected:
			// HAProxy tells a connect timeout (L4TOUT) from a
			// response one (L7TOUT).
			cause.Detail = DetailConnecting
		case cause.Kind == CauseTimeout || cause.Kind == CauseCanceled:
		case handshakeErr != nil:
			cause = Cause{Kind: CauseTLS, Detail: handshakeErr.Error(), Err: handshakeErr}
		case cause.Kind == CauseError && gotConn && !gotAnswer:
			// The server hung up before answering; net/http reports
			// this with unexported errors ("server closed idle
			// connection").
			cause = Cause{Kind: CauseClosed, Err: err}
		}
		return Fail(cause, time.Since(start))
	}
	defer resp.Body.Close()

	if !c.expect.Contains(resp.StatusCode) {
		return Fail(Cause{Kind: CauseStatus, Code: resp.StatusCode}, time.Since(start))
	}
	if len(c.expectBody) > 0 {
		body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody))
		if !bytes.Contains(body, c.expectBody) {
			latency := time.Since(start)
			if err != nil {
				return Fail(causeOf(ctx, err), latency)
			}
			return Fail(Cause{
				Kind:   CauseBody,
				Code:   resp.StatusCode,
				Detail: fmt.Sprintf("%q not in the first %d bytes", c.expectBody, len(body)),
			}, latency)
		}
	}
	r := Pass(time.Since(start))
	r.Cause.Code = resp.StatusCode
	r.Cause.Detail = "status " + strconv.Itoa(resp.StatusCode)
	return r
}
