package l7

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/directorlb/director/director/health"
)

// Backend is a pool of servers with its balancing, stickiness, header and
// retry policies. Its Serve method proxies one request; a Frontend calls
// it. A Backend is safe for concurrent use.
type Backend struct {
	cfg     BackendConfig
	servers []*server
	byKey   map[string]*server // health key -> server
	byCK    map[string]*server // cookie value -> server

	bal        balanceSpec
	policy     policy
	cookieName []byte

	st backendStats // stats.go
}

type server struct {
	name   string
	addr   string
	cookie string
	// setCookie is the whole Set-Cookie value when the cookie carries no
	// dates, built once.
	setCookie []byte
	// seed is a hash of the name, for the hashing policies.
	seed uint64
	// cfgWeight is the configured weight; weight the current one, which
	// SetWeight changes. A drained server has drain set, weight kept.
	cfgWeight int
	weight    atomic.Int32
	drain     atomic.Bool
	// maint is the operator's maintenance, apart from up (the checks'
	// verdict) so that a check coming back does not end it.
	maint   atomic.Bool
	up      atomic.Bool
	checked bool // for the check columns of Stats
	hc      *fasthttp.HostClient
	st      serverStats // stats.go
}

// serving reports whether s may get requests at all: up and not in
// maintenance. A drained server is serving, for its sticky clients.
func (s *server) serving() bool { return s.up.Load() && !s.maint.Load() }

// connectError marks a failure to connect to a server: nothing was sent,
// so the request can be retried anywhere, whatever its method. took is
// how long the attempt lasted.
type connectError struct {
	err  error
	took time.Duration
}

func (e *connectError) Error() string { return "connect: " + e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// NewBackend validates cfg and returns a backend whose servers are all up
// until health checks say otherwise.
func NewBackend(cfg BackendConfig) (*Backend, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Servers = append([]ServerConfig(nil), cfg.Servers...)
	if cfg.Retries == 0 {
		cfg.Retries = DefaultRetries
	} else if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.ServerTimeout == 0 {
		cfg.ServerTimeout = DefaultServerTimeout
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.QueueTimeout == 0 {
		cfg.QueueTimeout = DefaultQueueTimeout
	}
	b := &Backend{cfg: cfg, byKey: map[string]*server{}, byCK: map[string]*server{}}
	b.bal, _ = parseBalance(cfg.Balance) // validated
	if cfg.Cookie != nil {
		b.cookieName = []byte(cfg.Cookie.Name)
	}
	weights := make([]int, len(cfg.Servers))
	for i, sc := range cfg.Servers {
		s := &server{name: sc.Name, addr: sc.Addr, cookie: sc.Cookie, seed: mix64(hashBytes([]byte(sc.Name))),
			checked: cfg.Check != nil || sc.Checked}
		if s.cookie == "" {
			s.cookie = sc.Name
		}
		if cfg.Cookie != nil && (cfg.Cookie.Mode == "" || cfg.Cookie.Mode == CookieInsert) {
			s.setCookie = cfg.Cookie.appendSetCookie(nil, s.cookie, 0, 0)
		}
		weights[i] = sc.Weight
		if weights[i] == 0 {
			weights[i] = DefaultWeight
		}
		s.cfgWeight = weights[i]
		s.weight.Store(int32(weights[i]))
		s.up.Store(true)
		s.hc = b.hostClient(sc.Addr)
		b.servers = append(b.servers, s)
		b.byKey[b.healthKey(s.name)] = s
		b.byCK[s.cookie] = s
	}
	b.policy = newPolicy(b.bal, weights)
	b.initStats(time.Now())
	return b, nil
}

func (b *Backend) hostClient(addr string) *fasthttp.HostClient {
	d := &net.Dialer{Timeout: b.cfg.ConnectTimeout}
	hc := &fasthttp.HostClient{
		Addr: addr,
		Dial: func(addr string) (net.Conn, error) {
			start := time.Now()
			c, err := d.Dial("tcp", addr)
			if err != nil {
				return nil, &connectError{err, time.Since(start)}
			}
			tc := newServerConn(c, b.cfg.ServerTimeout)
			tc.dialTook = time.Since(start)
			return tc, nil
		},
		// An idempotent request that met a keep-alive connection the
		// server had closed is retried by the client on another
		// connection; a failure to connect comes back to Serve, which
		// applies retries and redispatch.
		RetryIfErr: func(req *fasthttp.Request, _ int, err error) (bool, bool) {
			return false, retryStale(req, err)
		},
		MaxConns:           b.cfg.MaxConns,
		MaxConnWaitTimeout: b.cfg.QueueTimeout,
		// Idle server connections are closed after a while, as HAProxy's
		// pool-purge-delay does, before a server's own keep-alive timeout
		// closes them under a request that cannot be retried (POST).
		MaxIdleConnDuration: IdleServerConn,
		// ServerTimeout is an inactivity timeout kept by timeoutConn.
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
	}
	hc.Transport = newTransport(hc, hc.AcquireConn, hc.ReleaseConn, hc.CloseConn)
	return hc
}

// retryStale reports whether a request that met a keep-alive connection
// the server had closed may be sent again on another connection.
func retryStale(req *fasthttp.Request, err error) bool {
	stale := errors.Is(err, io.EOF) || errors.Is(err, fasthttp.ErrConnectionClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	return stale && (req.Header.IsGet() || req.Header.IsHead())
}

func (b *Backend) healthKey(server string) string { return b.cfg.Name + "/" + server }

// Name returns the backend's name.
func (b *Backend) Name() string { return b.cfg.Name }

// server returns the server named name.
func (b *Backend) server(name string) (*server, error) {
	s, ok := b.byKey[b.healthKey(name)]
	if !ok {
		return nil, fmt.Errorf("backend %s: server %s: %w", b.cfg.Name, name, health.ErrNotFound)
	}
	return s, nil
}

// SetUp marks a server up or down, as a health check or an operator
// does. A down server gets no new requests; sticky clients of it go to a
// live server and stick there.
func (b *Backend) SetUp(server string, up bool) error {
	s, err := b.server(server)
	if err != nil {
		return err
	}
	b.setUp(s, up, time.Now())
	return nil
}

// SetWeight changes a server's weight at run time, as HAProxy's "set
// weight" does: 0..MaxWeight, where 0 drains the server (see SetDrain).
// With static-rr only 0 and the configured weight are accepted: its map
// is built once.
func (b *Backend) SetWeight(server string, w int) error {
	s, err := b.server(server)
	if err != nil {
		return err
	}
	if err := b.checkWeight(s, w); err != nil {
		return err
	}
	s.weight.Store(int32(w))
	return nil
}

func (b *Backend) checkWeight(s *server, w int) error {
	if w < 0 || w > MaxWeight {
		return fmt.Errorf("backend %s: server %s: weight %d not in 0..%d", b.cfg.Name, s.name, w, MaxWeight)
	}
	if b.bal.algo == BalanceStaticRR && w != 0 && w != s.cfgWeight {
		return fmt.Errorf("backend %s: server %s: static-rr takes weight 0 or %d only", b.cfg.Name, s.name, s.cfgWeight)
	}
	return nil
}

// Weight returns a server's current weight, 0 if it is unknown.
func (b *Backend) Weight(server string) int {
	if s, err := b.server(server); err == nil {
		return int(s.weight.Load())
	}
	return 0
}

// SetDrain drains a server or ends its draining, as HAProxy's drain
// state: a drained server gets no new clients, but clients stuck to it
// by a cookie stay, until it is down.
func (b *Backend) SetDrain(server string, drain bool) error {
	s, err := b.server(server)
	if err != nil {
		return err
	}
	s.drain.Store(drain)
	return nil
}

// SetMaint puts a server in maintenance or takes it out, as HAProxy's
// "set server state maint" and "ready" do: in maintenance it gets no
// request at all, and its sticky clients go to another server, which in
// insert mode sticks them anew. Its checks go on, but their verdict
// applies only once it is out: a server that comes back up stays in
// maintenance.
func (b *Backend) SetMaint(server string, on bool) error {
	s, err := b.server(server)
	if err != nil {
		return err
	}
	b.changeState(s, time.Now(), func() { s.maint.Store(on) })
	return nil
}

// Up reports whether a server is up by its checks (or SetUp), whatever
// an operator set.
func (b *Backend) Up(server string) bool {
	s, err := b.server(server)
	return err == nil && s.up.Load()
}

// ServerAdmin is the operator's part of a server's state, apart from the
// checks' verdict: HAProxy's admin states and the weight "set weight"
// left.
type ServerAdmin struct {
	Drain  bool
	Maint  bool
	Weight int
}

// Admin returns what operators set on a server.
func (b *Backend) Admin(server string) (ServerAdmin, error) {
	s, err := b.server(server)
	if err != nil {
		return ServerAdmin{}, err
	}
	return s.admin(), nil
}

func (s *server) admin() ServerAdmin {
	return ServerAdmin{Drain: s.drain.Load(), Maint: s.maint.Load(), Weight: int(s.weight.Load())}
}

// SetAdmin sets all of a server's admin state, or nothing if the weight
// is not one SetWeight takes.
func (b *Backend) SetAdmin(server string, a ServerAdmin) error {
	s, err := b.server(server)
	if err != nil {
		return err
	}
	if err := b.checkWeight(s, a.Weight); err != nil {
		return err
	}
	b.setAdmin(s, a)
	return nil
}

func (b *Backend) setAdmin(s *server, a ServerAdmin) {
	s.weight.Store(int32(a.Weight))
	s.drain.Store(a.Drain)
	b.changeState(s, time.Now(), func() { s.maint.Store(a.Maint) })
}

// KeepAdmin gives b's servers the admin state of the servers of the same
// name in old, the backend b replaces, as HAProxy's server-state-file
// does across a reload. A runtime weight is kept only while the
// configured weight is the same in both (HAProxy's rule: a weight changed
// in the file wins), and only if b's balancing takes it. A server of b
// that old lacks starts as configured; one of old that b lacks is gone
// with its state, and starts afresh should a later reload bring it back.
func (b *Backend) KeepAdmin(old *Backend) {
	for _, s := range b.servers {
		o, err := old.server(s.name)
		if err != nil {
			continue
		}
		b.keepAdmin(s, o.admin(), o.cfgWeight)
	}
}

// RestoreAdmin gives a server the admin state a, saved when the config
// gave it the weight cfgWeight, by KeepAdmin's rule for the weight: a
// state file read at start carries a server's state across a restart as
// KeepAdmin does across a reload.
func (b *Backend) RestoreAdmin(server string, a ServerAdmin, cfgWeight int) error {
	s, err := b.server(server)
	if err != nil {
		return err
	}
	b.keepAdmin(s, a, cfgWeight)
	return nil
}

func (b *Backend) keepAdmin(s *server, a ServerAdmin, cfgWeight int) {
	if cfgWeight != s.cfgWeight || b.checkWeight(s, a.Weight) != nil {
		a.Weight = s.cfgWeight
	}
	b.setAdmin(s, a)
}

// ConfiguredWeight is the weight the config gives a server.
func (b *Backend) ConfiguredWeight(server string) (int, error) {
	s, err := b.server(server)
	if err != nil {
		return 0, err
	}
	return s.cfgWeight, nil
}

// Targets returns the health-check targets of the backend's servers,
// keyed "backend/server", or none if the backend has no CheckConfig.
func (b *Backend) Targets() ([]health.Target, error) {
	c := b.cfg.Check
	if c == nil {
		return nil, nil
	}
	var ts []health.Target
	for _, s := range b.servers {
		var ck health.Checker
		if c.HTTP != nil {
			hc := *c.HTTP
			hc.Addr = s.addr
			h, err := health.NewHTTPChecker(hc)
			if err != nil {
				return nil, fmt.Errorf("backend %s: server %s: check: %w", b.cfg.Name, s.name, err)
			}
			ck = h
		} else {
			t, err := health.NewTCPChecker(s.addr)
			if err != nil {
				return nil, fmt.Errorf("backend %s: server %s: check: %w", b.cfg.Name, s.name, err)
			}
			ck = t
		}
		ts = append(ts, health.Target{
			Key: b.healthKey(s.name), Checker: ck,
			Interval: c.Interval, Timeout: c.Timeout, FastInterval: c.FastInterval, DownInterval: c.DownInterval,
			Rise: c.Rise, Fall: c.Fall,
		})
	}
	return ts, nil
}

// Observe applies a health event to the server it names. It reports
// whether the event was this backend's.
func (b *Backend) Observe(ev health.Event) bool {
	s, ok := b.byKey[ev.Key]
	if !ok {
		return false
	}
	b.setUp(s, ev.To == health.StateUp, time.Now())
	return true
}

// pick returns a server for a new session by the backend's policy,
// skipping those in avoid, or nil if none is left. key is the request's
// hash key, if the policy hashes.
func (b *Backend) pick(avoid []*server, key []byte) *server {
	return b.policy.pick(b.servers, avoid, key)
}

// full reports whether a server has as many requests as its maxconn:
// the goroutine engine queues the ones that come then.
func (b *Backend) full() bool {
	for _, s := range b.servers {
		if s.load() >= int64(b.cfg.MaxConns) {
			return true
		}
	}
	return false
}

// Close closes the idle connections to the servers.
func (b *Backend) Close() {
	for _, s := range b.servers {
		s.hc.CloseIdleConnections()
	}
}

func (b *Backend) String() string {
	names := make([]string, len(b.servers))
	for i, s := range b.servers {
		names[i] = s.name + "=" + s.addr
	}
	return "backend " + b.cfg.Name + " [" + strings.Join(names, " ") + "]"
}
