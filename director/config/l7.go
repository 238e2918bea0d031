package config

import (
	"crypto/tls"
	"net/netip"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The l7 section: the HTTP tier's frontends and backends, in HAProxy's
// terms. `director l7 --config FILE` runs a file with this section alone;
// the agent runs it beside the XDP tier for its VIPs of mode local.

// L7 is the HTTP tier's configuration.
type L7 struct {
	// Threads is how many threads serve (HAProxy's nbthread): the event
	// loops, Go's GOMAXPROCS being one more (l7.Procs); 0: Go's default,
	// one per core.
	Threads int
	// Engine serves plain HTTP: "loops" (the default), an event loop per
	// thread, as HAProxy; "goroutines", a goroutine per connection.
	Engine    string
	Frontends []L7Frontend
	Backends  []L7Backend
}

// Engines of the tier.
var engines = map[string]string{"loops": "loops", "goroutines": "goroutines"}

// Balance algorithms of a backend (HAProxy's "balance").
var balances = map[string]string{
	"roundrobin": "roundrobin", "static-rr": "static-rr", "leastconn": "leastconn", "source": "source",
	"uri": "uri", "url_param": "url_param", "random": "random",
}

// Cookie modes (HAProxy's "cookie NAME insert|prefix|rewrite").
var cookieModes = map[string]string{"insert": "insert", "prefix": "prefix", "rewrite": "rewrite"}

// Defaults of the l7 section, HAProxy's where it has one.
const (
	DefaultL7Retries = 3
	// DefaultL7MaxHeaderSize is HAProxy's tune.bufsize.
	DefaultL7MaxHeaderSize = 16 << 10
)

// L7Frontend is a listener: HAProxy's "frontend" with its "bind" lines,
// its rules ("use_backend ... if", "http-request return") and its
// "default_backend".
type L7Frontend struct {
	Name string
	// Bind are the addresses listened on; an unspecified address
	// (0.0.0.0, ::) listens on every address. Addresses need not be local
	// yet (IP_FREEBIND): a VRRP backup binds the VIP it does not hold.
	Bind []netip.AddrPort
	// TLS certificates (PEM files, the first the default), chosen by SNI;
	// none: plain HTTP.
	TLS []TLSCert
	// MaxConn bounds the listener's connections; 0: no bound.
	MaxConn int
	// Timeouts: client (inactivity), http_request (whole request header),
	// http_keep_alive (idle between requests), tunnel (WebSocket); zero:
	// the tier's default.
	ClientTimeout, RequestTimeout, KeepAliveTimeout, TunnelTimeout time.Duration
	// MaxHeaderSize and MaxBodySize in bytes; MaxBodySize 0: no bound.
	MaxHeaderSize, MaxBodySize int
	// AccessLog logs a line per request (HAProxy's httplog).
	AccessLog bool
	// Rules in file order; the first that matches decides.
	Rules          []L7Rule
	DefaultBackend string
}

// TLSCert is a certificate and its key, PEM files.
type TLSCert struct{ Cert, Key string }

// L7Rule sends the requests it matches to a backend or answers them
// itself. Its conditions are ANDed; at least one is given.
type L7Rule struct {
	Host    string // the Host header, without port, case-insensitive
	PathBeg string
	PathEnd string
	// Header and HeaderValue: the header has this value.
	Header, HeaderValue string
	Backend             string    // use_backend
	Return              *L7Return // or answer with this
}

// L7Return is a fixed answer (HAProxy's "http-request return").
type L7Return struct {
	Status      int
	Body        string
	ContentType string
}

// L7Backend is a pool of servers and its policies: HAProxy's "backend".
type L7Backend struct {
	Name string
	// Balance is one of roundrobin (default), static-rr, leastconn,
	// source, uri, url_param, random; URLParam names the parameter of
	// url_param.
	Balance  string
	URLParam string
	Cookie   *L7Cookie
	// ForwardFor appends X-Forwarded-For and sets X-Forwarded-Proto and
	// X-Forwarded-Host; Forwarded adds RFC 7239's header.
	ForwardFor, Forwarded bool
	// Retries of a failed connection (0: none); Redispatch sends them, and
	// sticky requests of a down server, to another server.
	Retries    int
	Redispatch bool
	// Timeouts: connect, server (inactivity), queue (waiting for a
	// connection slot); zero: the tier's default.
	ConnectTimeout, ServerTimeout, QueueTimeout time.Duration
	// MaxConn bounds each server's connections; 0: the tier's default.
	MaxConn int
	// ServerHeader replaces the servers' Server header; HideServer removes
	// it.
	ServerHeader string
	HideServer   bool
	// Checked: every server has Check set.
	Checked bool
	Servers []L7Server
}

// L7Server is one server of a backend.
type L7Server struct {
	Name   string
	Addr   netip.AddrPort
	Weight int
	// Cookie is the sticky cookie's value naming this server; default
	// Name.
	Cookie string
	Check  Check
}

// L7Cookie is HAProxy's "cookie" line.
type L7Cookie struct {
	Name string
	// Mode is insert (default), prefix or rewrite.
	Mode                                                    string
	Indirect, NoCache, PostOnly, Preserve, HTTPOnly, Secure bool
	Domains, Attrs                                          []string
	MaxIdle, MaxLife                                        time.Duration
}

type rawL7 struct {
	pos
	threads   opt[int64]
	engine    opt[string]
	frontends []rawFrontend
	backends  []rawBackend
}

type rawFrontend struct {
	pos
	name                               opt[string]
	bind                               []opt[netip.AddrPort]
	bindList                           opt[struct{}]
	tls                                []rawCert
	maxConn                            opt[int64]
	client, request, keepAlive, tunnel opt[time.Duration]
	maxHeader, maxBody                 opt[int64]
	accessLog                          opt[bool]
	rules                              []rawRule
	defaultBackend                     opt[string]
}

type rawCert struct {
	pos
	cert, key opt[string]
}

type rawRule struct {
	pos
	host, pathBeg, pathEnd, header, value, backend opt[string]
	ret                                            *rawReturn
}

type rawReturn struct {
	pos
	status            opt[int64]
	body, contentType opt[string]
}

type rawBackend struct {
	pos
	name, balance, urlParam, serverHeader opt[string]
	hideServer                            opt[bool]
	cookie                                *rawCookie
	forwardFor, forwarded, redispatch     opt[bool]
	retries, maxConn                      opt[int64]
	connect, server, queue                opt[time.Duration]
	check                                 *rawCheck
	servers                               []rawServer
	serversList                           opt[struct{}]
}

type rawServer struct {
	pos
	name, cookie opt[string]
	addr         opt[netip.AddrPort]
	weight       opt[int64]
}

type rawCookie struct {
	pos
	name, mode                                              opt[string]
	indirect, noCache, postOnly, preserve, httpOnly, secure opt[bool]
	domains, attrs                                          opt[[]string]
	maxIdle, maxLife                                        opt[time.Duration]
}

func parseL7(w *walker, n *yaml.Node, p pos) *rawL7 {
	f := w.mapping(n, p, "threads", "engine", "frontends", "backends")
	if f == nil {
		return nil
	}
	l := &rawL7{pos: f.pos, threads: f.integer("threads", 1, 4096), engine: enum(f, "engine", engines)}
	f.list("frontends", func(n *yaml.Node, p pos) {
		if fe := parseFrontend(w, n, p); fe != nil {
			l.frontends = append(l.frontends, *fe)
		}
	})
	f.list("backends", func(n *yaml.Node, p pos) {
		if be := parseBackend(w, n, p); be != nil {
			l.backends = append(l.backends, *be)
		}
	})
	return l
}

func parseFrontend(w *walker, n *yaml.Node, p pos) *rawFrontend {
	f := w.mapping(n, p, "name", "bind", "tls", "maxconn", "timeouts", "max_header_size", "max_body_size",
		"access_log", "rules", "default_backend")
	if f == nil {
		return nil
	}
	fe := &rawFrontend{pos: f.pos, name: f.str("name"), maxConn: f.integer("maxconn", 0, 1<<24),
		maxHeader: f.integer("max_header_size", 1024, 1<<20), maxBody: f.integer("max_body_size", 0, 1<<40),
		accessLog: f.boolean("access_log"), defaultBackend: f.str("default_backend")}
	fe.bindList = f.list("bind", func(n *yaml.Node, p pos) {
		fe.bind = append(fe.bind, parseAddrPort(w, n, p, true))
	})
	if tn, tp := f.at("tls"); tn != nil {
		if g := w.mapping(tn, tp, "certificates"); g != nil {
			g.list("certificates", func(n *yaml.Node, p pos) {
				if c := w.mapping(n, p, "cert", "key"); c != nil {
					fe.tls = append(fe.tls, rawCert{pos: c.pos, cert: c.str("cert"), key: c.str("key")})
				}
			})
		}
	}
	if tn, tp := f.at("timeouts"); tn != nil {
		if g := w.mapping(tn, tp, "client", "http_request", "http_keep_alive", "tunnel"); g != nil {
			fe.client, fe.request = g.duration("client", true), g.duration("http_request", true)
			fe.keepAlive, fe.tunnel = g.duration("http_keep_alive", true), g.duration("tunnel", true)
		}
	}
	f.list("rules", func(n *yaml.Node, p pos) {
		g := w.mapping(n, p, "host", "path_beg", "path_end", "header", "value", "use_backend", "return")
		if g == nil {
			return
		}
		r := rawRule{pos: g.pos, host: g.str("host"), pathBeg: g.str("path_beg"), pathEnd: g.str("path_end"),
			header: g.str("header"), value: g.str("value"), backend: g.str("use_backend")}
		if rn, rp := g.at("return"); rn != nil {
			if h := w.mapping(rn, rp, "status", "body", "content_type"); h != nil {
				r.ret = &rawReturn{pos: h.pos, status: h.integer("status", 100, 599), body: h.str("body"),
					contentType: h.str("content_type")}
			}
		}
		fe.rules = append(fe.rules, r)
	})
	return fe
}

func parseBackend(w *walker, n *yaml.Node, p pos) *rawBackend {
	f := w.mapping(n, p, "name", "balance", "url_param", "cookie", "forwardfor", "forwarded", "retries",
		"redispatch", "timeouts", "maxconn", "server_header", "hide_server", "check", "servers")
	if f == nil {
		return nil
	}
	be := &rawBackend{pos: f.pos, name: f.str("name"), balance: enum(f, "balance", balances),
		urlParam: f.str("url_param"), forwardFor: f.boolean("forwardfor"), forwarded: f.boolean("forwarded"),
		retries: f.integer("retries", 0, 100), redispatch: f.boolean("redispatch"), maxConn: f.integer("maxconn", 1, 1<<20),
		serverHeader: f.str("server_header"), hideServer: f.boolean("hide_server")}
	if cn, cp := f.at("cookie"); cn != nil {
		if g := w.mapping(cn, cp, "name", "mode", "indirect", "nocache", "postonly", "preserve", "httponly",
			"secure", "domain", "attr", "maxidle", "maxlife"); g != nil {
			be.cookie = &rawCookie{pos: g.pos, name: g.str("name"), mode: enum(g, "mode", cookieModes),
				indirect: g.boolean("indirect"), noCache: g.boolean("nocache"), postOnly: g.boolean("postonly"),
				preserve: g.boolean("preserve"), httpOnly: g.boolean("httponly"), secure: g.boolean("secure"),
				domains: g.argv("domain"), attrs: g.argv("attr"),
				maxIdle: g.duration("maxidle", true), maxLife: g.duration("maxlife", true)}
		}
	}
	if tn, tp := f.at("timeouts"); tn != nil {
		if g := w.mapping(tn, tp, "connect", "server", "queue"); g != nil {
			be.connect, be.server, be.queue = g.duration("connect", true), g.duration("server", true), g.duration("queue", true)
		}
	}
	if cn, cp := f.at("check"); cn != nil {
		be.check = parseCheck(w, cn, cp)
	}
	be.serversList = f.list("servers", func(n *yaml.Node, p pos) {
		g := w.mapping(n, p, "name", "address", "weight", "cookie")
		if g == nil {
			return
		}
		s := rawServer{pos: g.pos, name: g.str("name"), weight: g.integer("weight", 0, 256), cookie: g.str("cookie")}
		if an, ap := g.at("address"); an != nil {
			s.addr = parseAddrPort(w, an, ap, false)
		} else {
			s.addr.pos = ap
		}
		be.servers = append(be.servers, s)
	})
	return be
}

// parseAddrPort reads "ADDR:PORT" ("[v6]:PORT"); with wildcard, ":PORT" too,
// for every address.
func parseAddrPort(w *walker, n *yaml.Node, p pos, wildcard bool) (o opt[netip.AddrPort]) {
	o.pos = p
	o.pos.line = n.Line
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		w.errorf(o.pos, "want ADDRESS:PORT, not %s", describe(n))
		o.bad = true
		return o
	}
	s := n.Value
	if wildcard && strings.HasPrefix(s, ":") {
		s = "0.0.0.0" + s
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
		w.errorf(o.pos, "%q is not ADDRESS:PORT", n.Value)
		o.bad = true
		return o
	}
	o.v, o.set = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
	return o
}

func (v *validator) l7(raw *rawL7) *L7 {
	if raw == nil {
		return nil
	}
	l := &L7{Threads: int(raw.threads.v), Engine: raw.engine.or("loops")}
	backends := map[string]pos{}
	for i := range raw.backends {
		be, ok := v.l7Backend(&raw.backends[i])
		if first, dup := backends[be.Name]; dup && raw.backends[i].name.set {
			v.errorf(raw.backends[i].name.pos, "%q is also %s (line %d)", be.Name, first.path, first.line)
			continue
		}
		if ok {
			backends[be.Name] = raw.backends[i].name.pos
			l.Backends = append(l.Backends, be)
		}
	}
	names := map[string]pos{}
	binds := map[netip.AddrPort]pos{}
	for i := range raw.frontends {
		rf := &raw.frontends[i]
		fe, ok := v.l7Frontend(rf, raw.backends, backends)
		if first, dup := names[fe.Name]; dup && rf.name.set {
			v.errorf(rf.name.pos, "%q is also %s (line %d)", fe.Name, first.path, first.line)
			continue
		}
		names[fe.Name] = rf.name.pos
		if !ok {
			continue
		}
		for j, b := range fe.Bind {
			if first, dup := binds[b]; dup {
				v.errorf(rf.bind[j].pos, "%v is also bound at %s (line %d)", b, first.path, first.line)
			}
			binds[b] = rf.bind[j].pos
		}
		l.Frontends = append(l.Frontends, fe)
	}
	if len(raw.frontends) == 0 {
		v.errorf(raw.pos.key("frontends"), "at least one frontend is needed")
	}
	return l
}

func (v *validator) l7Frontend(rf *rawFrontend, rawBackends []rawBackend, backends map[string]pos) (L7Frontend, bool) {
	ok := required(v.report, rf.name)
	fe := L7Frontend{Name: rf.name.v, MaxConn: int(rf.maxConn.v),
		ClientTimeout: rf.client.v, RequestTimeout: rf.request.v, KeepAliveTimeout: rf.keepAlive.v, TunnelTimeout: rf.tunnel.v,
		MaxHeaderSize: int(rf.maxHeader.or(DefaultL7MaxHeaderSize)), MaxBodySize: int(rf.maxBody.v),
		AccessLog: rf.accessLog.v, DefaultBackend: rf.defaultBackend.v}
	if len(rf.bind) == 0 && !rf.bindList.bad {
		v.errorf(rf.pos.key("bind"), "at least one address is needed")
		ok = false
	}
	for _, b := range rf.bind {
		ok = ok && b.set
		fe.Bind = append(fe.Bind, b.v)
	}
	for _, c := range rf.tls {
		if !required(v.report, c.cert) || !required(v.report, c.key) {
			ok = false
			continue
		}
		tc := TLSCert{Cert: v.path(c.cert, ""), Key: v.path(c.key, "")}
		if tc.Cert == "" || tc.Key == "" {
			ok = false
		} else if _, err := tls.LoadX509KeyPair(tc.Cert, tc.Key); err != nil {
			v.errorf(c.cert.pos, "%v", err)
			ok = false
		}
		fe.TLS = append(fe.TLS, tc)
	}
	backendRef := func(o opt[string]) {
		if _, found := backends[o.v]; !found && o.set {
			known := false
			for _, b := range rawBackends {
				known = known || b.name.v == o.v
			}
			if !known { // a backend that failed validation was reported already
				v.errorf(o.pos, "no backend %q", o.v)
			}
			ok = false
		}
	}
	if required(v.report, rf.defaultBackend) {
		backendRef(rf.defaultBackend)
	} else {
		ok = false
	}
	for _, rr := range rf.rules {
		r := L7Rule{Host: strings.ToLower(rr.host.v), PathBeg: rr.pathBeg.v, PathEnd: rr.pathEnd.v,
			Header: rr.header.v, HeaderValue: rr.value.v, Backend: rr.backend.v}
		if !rr.host.set && !rr.pathBeg.set && !rr.pathEnd.set && !rr.header.set {
			v.errorf(rr.pos, "a rule needs a condition: host, path_beg, path_end or header")
			ok = false
		}
		if rr.header.set != rr.value.set {
			v.errorf(rr.pos, "header and value go together")
			ok = false
		}
		if rr.pathBeg.set && !strings.HasPrefix(rr.pathBeg.v, "/") {
			v.errorf(rr.pathBeg.pos, "%q must start with /", rr.pathBeg.v)
			ok = false
		}
		switch {
		case rr.backend.set && rr.ret != nil:
			v.errorf(rr.pos, "use_backend or return, not both")
			ok = false
		case rr.backend.set:
			backendRef(rr.backend)
		case rr.ret != nil:
			if !required(v.report, rr.ret.status) {
				ok = false
			}
			r.Return = &L7Return{Status: int(rr.ret.status.v), Body: rr.ret.body.v, ContentType: rr.ret.contentType.v}
			if r.Return.Body != "" && r.Return.ContentType == "" {
				r.Return.ContentType = "text/plain"
			}
		default:
			v.errorf(rr.pos, "a rule needs use_backend or return")
			ok = false
		}
		fe.Rules = append(fe.Rules, r)
	}
	return fe, ok
}

func (v *validator) l7Backend(rb *rawBackend) (L7Backend, bool) {
	ok := required(v.report, rb.name)
	be := L7Backend{Name: rb.name.v, Balance: rb.balance.or("roundrobin"), URLParam: rb.urlParam.v,
		ForwardFor: rb.forwardFor.v, Forwarded: rb.forwarded.v, Retries: int(rb.retries.or(DefaultL7Retries)),
		Redispatch: rb.redispatch.v, ConnectTimeout: rb.connect.v, ServerTimeout: rb.server.v, QueueTimeout: rb.queue.v,
		MaxConn: int(rb.maxConn.v), ServerHeader: rb.serverHeader.v, HideServer: rb.hideServer.v}
	if rb.hideServer.v && rb.serverHeader.set {
		v.errorf(rb.serverHeader.pos, "hide_server removes the header this sets")
		ok = false
	}
	if strings.ContainsAny(rb.serverHeader.v, "\r\n") {
		v.errorf(rb.serverHeader.pos, "a header value may not contain a line break")
		ok = false
	}
	if be.Balance == "url_param" && !rb.urlParam.set {
		v.errorf(rb.pos.key("url_param"), "required by balance url_param")
		ok = false
	}
	if rb.urlParam.set && be.Balance != "url_param" {
		v.errorf(rb.urlParam.pos, "only for balance url_param")
		ok = false
	}
	if c := rb.cookie; c != nil {
		ck := &L7Cookie{Name: c.name.v, Mode: c.mode.or("insert"), Indirect: c.indirect.or(true),
			NoCache: c.noCache.v, PostOnly: c.postOnly.v, Preserve: c.preserve.v, HTTPOnly: c.httpOnly.v,
			Secure: c.secure.v, Domains: c.domains.v, Attrs: c.attrs.v, MaxIdle: c.maxIdle.v, MaxLife: c.maxLife.v}
		if required(v.report, c.name) && (c.name.v == "" || strings.ContainsAny(c.name.v, "=;, \t\"")) {
			v.errorf(c.name.pos, "%q is not a cookie name", c.name.v)
			ok = false
		}
		if ck.Mode != "insert" {
			for _, o := range []opt[bool]{c.noCache, c.postOnly, c.preserve, c.httpOnly, c.secure, c.indirect} {
				if o.set {
					v.errorf(o.pos, "only for mode insert")
					ok = false
				}
			}
			for _, o := range []opt[time.Duration]{c.maxIdle, c.maxLife} {
				if o.set {
					v.errorf(o.pos, "only for mode insert")
					ok = false
				}
			}
		}
		for _, a := range ck.Attrs {
			if strings.ContainsAny(a, ";\r\n") {
				v.errorf(c.attrs.pos, "%q: an attribute may not contain ';' or a line break", a)
				ok = false
			}
		}
		be.Cookie = ck
	}
	if len(rb.servers) == 0 && !rb.serversList.bad {
		v.errorf(rb.pos.key("servers"), "at least one server is needed")
		ok = false
	}
	names, cookies := map[string]pos{}, map[string]pos{}
	problems := map[string]bool{}
	for _, rs := range rb.servers {
		if !required(v.report, rs.name) || !required(v.report, rs.addr) {
			ok = false
			continue
		}
		s := L7Server{Name: rs.name.v, Addr: rs.addr.v, Weight: int(rs.weight.or(DefaultWeight)), Cookie: rs.cookie.or(rs.name.v)}
		if first, dup := names[s.Name]; dup {
			v.errorf(rs.name.pos, "%q is also %s (line %d)", s.Name, first.path, first.line)
			ok = false
		}
		names[s.Name] = rs.name.pos
		if !validCookieValue(s.Cookie) {
			v.errorf(rs.pos.key("cookie"), "%q is not a valid cookie value", s.Cookie)
			ok = false
		} else if first, dup := cookies[s.Cookie]; dup {
			v.errorf(rs.pos.key("cookie"), "cookie %q is also %s's (line %d)", s.Cookie, first.path, first.line)
			ok = false
		}
		cookies[s.Cookie] = rs.pos
		if rb.check != nil {
			vip := &rawVIP{pos: rb.pos, port: opt[int64]{v: int64(s.Addr.Port()), set: true}, check: rb.check}
			s.Check = v.realCheck(nil, vip, &rawReal{}, s.Addr.Addr(), problems)
			be.Checked = s.Check.Type != NoCheck
		}
		be.Servers = append(be.Servers, s)
	}
	return be, ok
}

// validCookieValue accepts RFC 6265 cookie-octets, without the '|' of
// HAProxy's dates and the '~' of prefix mode.
func validCookieValue(s string) bool {
	if s == "" {
		return false
	}
	return !strings.ContainsFunc(s, func(c rune) bool {
		return c <= 0x20 || c >= 0x7f || slices.Contains([]rune{'"', ',', ';', '\\', '|', '~'}, c)
	})
}
