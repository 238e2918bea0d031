package l7

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"
)

// Rule sends the requests it matches to a backend, or answers them
// itself: HAProxy's "use_backend B if ACL" and "http-request return
// status N if ACL". The conditions set in a rule must all hold; a list of
// values in one condition matches when any of them does, as the patterns
// of an HAProxy ACL. A rule without conditions matches every request.
type Rule struct {
	// Name identifies the rule in errors.
	Name string
	// Host matches the Host header, exactly, case-insensitively, the
	// port ignored on both sides (hdr(host) -i, without port).
	Host []string
	// PathPrefix and PathSuffix match the path, the request target
	// without query, as received (path_beg, path_end).
	PathPrefix []string
	PathSuffix []string
	// Header are conditions on other headers, all of which must hold.
	Header []HeaderMatch

	// Backend receives the requests the rule matches; or Return, if set
	// instead, answers them.
	Backend *Backend
	Return  *Return
}

// HeaderMatch is a condition on a request header: HAProxy's hdr(Name)
// with "-m str" (Value equals one of the header's comma-separated
// values) or, with Contains, "-m sub" (the whole value contains Value).
// Every occurrence of the header is looked at.
type HeaderMatch struct {
	Name       string
	Value      string
	Contains   bool
	IgnoreCase bool
}

// Return is a fixed answer (HAProxy "http-request return").
type Return struct {
	Status      int // 200..599; 0 means 200
	ContentType string
	Body        string
}

// Router dispatches a frontend's requests by its rules; requests no rule
// matches go to the default backend, or get 503 without one, as in
// HAProxy without default_backend.
type Router struct {
	rules []rule
	def   *Backend
}

type rule struct {
	host    [][]byte // lower case, without port
	prefix  [][]byte
	suffix  [][]byte
	header  []headerMatch
	backend *Backend
	status  int
	ctype   []byte
	body    []byte
}

type headerMatch struct {
	name                 []byte
	value                []byte
	contains, ignoreCase bool
}

// NewRouter validates rules and returns their router, with def as the
// default backend (may be nil).
func NewRouter(def *Backend, rules []Rule) (*Router, error) {
	r := &Router{def: def}
	for i, ru := range rules {
		name := ru.Name
		if name == "" {
			name = fmt.Sprint(i)
		}
		x, err := ru.compile()
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", name, err)
		}
		r.rules = append(r.rules, x)
	}
	return r, nil
}

func (ru *Rule) compile() (rule, error) {
	var x rule
	switch {
	case ru.Backend == nil && ru.Return == nil:
		return x, errors.New("no backend and no return")
	case ru.Backend != nil && ru.Return != nil:
		return x, errors.New("both a backend and a return")
	}
	for _, h := range ru.Host {
		h = strings.ToLower(string(stripPort([]byte(h))))
		if h == "" {
			return x, errors.New("empty host")
		}
		x.host = append(x.host, []byte(h))
	}
	for _, p := range ru.PathPrefix {
		if p == "" {
			return x, errors.New("empty path prefix")
		}
		x.prefix = append(x.prefix, []byte(p))
	}
	for _, p := range ru.PathSuffix {
		if p == "" {
			return x, errors.New("empty path suffix")
		}
		x.suffix = append(x.suffix, []byte(p))
	}
	for _, h := range ru.Header {
		if h.Name == "" || strings.ContainsAny(h.Name, ": \t\r\n") {
			return x, fmt.Errorf("header: bad name %q", h.Name)
		}
		x.header = append(x.header, headerMatch{name: []byte(h.Name), value: []byte(h.Value), contains: h.Contains, ignoreCase: h.IgnoreCase})
	}
	x.backend = ru.Backend
	if ret := ru.Return; ret != nil {
		x.status = ret.Status
		if x.status == 0 {
			x.status = fasthttp.StatusOK
		}
		if x.status < 200 || x.status > 599 {
			return x, fmt.Errorf("return: status %d not in 200..599", ret.Status)
		}
		if strings.ContainsAny(ret.ContentType, "\r\n") {
			return x, fmt.Errorf("return: bad content type %q", ret.ContentType)
		}
		x.ctype, x.body = []byte(ret.ContentType), []byte(ret.Body)
	}
	return x, nil
}

// Serve sends the request in ctx where the first matching rule says.
func (r *Router) Serve(ctx *fasthttp.RequestCtx) { r.serve(ctx, nil) }

// serve is Serve with the frontend's record of the request, for the
// access log and the counters.
func (r *Router) serve(ctx *fasthttp.RequestCtx, tx *txn) {
	req := &ctx.Request
	for i := range r.rules {
		ru := &r.rules[i]
		if !ru.match(req) {
			continue
		}
		if ru.backend != nil {
			ru.backend.serve(ctx, tx)
			return
		}
		ctx.Response.Reset()
		ctx.Response.SetStatusCode(ru.status)
		if len(ru.ctype) > 0 {
			ctx.Response.Header.SetContentTypeBytes(ru.ctype)
		}
		ctx.Response.SetBody(ru.body)
		return
	}
	if r.def == nil {
		ctx.Error("503 Service Unavailable: no backend", fasthttp.StatusServiceUnavailable)
		return
	}
	r.def.serve(ctx, tx)
}

// route returns the backend the request goes to, or nil if a rule
// answers it or there is no backend.
func (r *Router) route(req *fasthttp.Request) *Backend {
	for i := range r.rules {
		if ru := &r.rules[i]; ru.match(req) {
			return ru.backend
		}
	}
	return r.def
}

func (ru *rule) match(req *fasthttp.Request) bool {
	if len(ru.host) > 0 && !matchAny(ru.host, stripPort(req.Header.Host()), bytes.EqualFold) {
		return false
	}
	if len(ru.prefix) > 0 || len(ru.suffix) > 0 {
		path := cutQuery(stripAuthority(req.Header.RequestURI()))
		if len(ru.prefix) > 0 && !matchAny(ru.prefix, path, bytes.HasPrefix) {
			return false
		}
		if len(ru.suffix) > 0 && !matchAny(ru.suffix, path, bytes.HasSuffix) {
			return false
		}
	}
	for i := range ru.header {
		if !ru.header[i].match(&req.Header) {
			return false
		}
	}
	return true
}

// matchAny reports whether f(v, p) holds for a pattern p of ps.
func matchAny(ps [][]byte, v []byte, f func(v, p []byte) bool) bool {
	for _, p := range ps {
		if f(v, p) {
			return true
		}
	}
	return false
}

func (m *headerMatch) match(h *fasthttp.RequestHeader) bool {
	for k, v := range h.All() {
		if bytes.EqualFold(k, m.name) && m.matchValue(v) {
			return true
		}
	}
	return false
}

func (m *headerMatch) matchValue(v []byte) bool {
	eq := bytes.Equal
	if m.ignoreCase {
		eq = bytes.EqualFold
	}
	if m.contains {
		if !m.ignoreCase {
			return bytes.Contains(v, m.value)
		}
		for i := 0; i+len(m.value) <= len(v); i++ {
			if bytes.EqualFold(v[i:i+len(m.value)], m.value) {
				return true
			}
		}
		return false
	}
	for len(v) > 0 {
		var e []byte
		e, v, _ = bytes.Cut(v, []byte{','})
		if eq(bytes.TrimSpace(e), m.value) {
			return true
		}
	}
	return false
}

// stripPort returns host without its port: "example.com:8080" gives
// "example.com", "[2001:db8::1]:80" gives "[2001:db8::1]".
func stripPort(host []byte) []byte {
	if len(host) > 0 && host[0] == '[' {
		if i := bytes.IndexByte(host, ']'); i >= 0 {
			return host[:i+1]
		}
		return host
	}
	if i := bytes.LastIndexByte(host, ':'); i >= 0 && bytes.IndexByte(host[:i], ':') < 0 {
		return host[:i]
	}
	return host
}

// handler returns the frontend's request handler, its backend's Serve
// when it has no rules, a Router's otherwise; and the function that says
// which backend a request goes to (nil: none, the handler answers).
func (cfg *FrontendConfig) handler() (func(*fasthttp.RequestCtx, *txn), func(*fasthttp.Request) *Backend, error) {
	if len(cfg.Rules) == 0 {
		if cfg.Backend == nil {
			return nil, nil, errors.New("frontend " + cfg.Name + ": no backend")
		}
		be := cfg.Backend
		return be.serve, func(*fasthttp.Request) *Backend { return be }, nil
	}
	r, err := NewRouter(cfg.Backend, cfg.Rules)
	if err != nil {
		return nil, nil, fmt.Errorf("frontend %s: %w", cfg.Name, err)
	}
	return r.serve, r.route, nil
}
