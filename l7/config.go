package l7

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/directorlb/director/director/health"
)

// Defaults for BackendConfig fields left zero, HAProxy's where it has one.
const (
	DefaultRetries        = 3 // HAProxy "retries"
	DefaultConnectTimeout = 5 * time.Second
	DefaultServerTimeout  = 30 * time.Second
	DefaultMaxConns       = 4096 // per server, like a server's "maxconn"
	DefaultQueueTimeout   = 5 * time.Second
	DefaultWeight         = 1
	// IdleServerConn is how long an idle server connection is kept.
	IdleServerConn = 10 * time.Second
	MaxWeight      = 256 // HAProxy's limit
)

// BackendConfig is a pool of servers and the policies applied to the
// requests sent to it: HAProxy's "backend" section.
type BackendConfig struct {
	// Name identifies the backend in logs and health-check keys. Required.
	Name string
	// Servers are balanced by Balance. At least one.
	Servers []ServerConfig
	// Balance is the balancing algorithm, HAProxy's "balance": one of the
	// Balance constants with its argument, if any ("uri whole",
	// "url_param userid", "random(2)"). Default BalanceRoundRobin.
	Balance string
	// Cookie, if set, makes sessions sticky with a cookie (HAProxy
	// "cookie NAME insert indirect", "prefix", "rewrite").
	Cookie *CookieConfig
	// ForwardFor appends the client's address to X-Forwarded-For and
	// sets X-Forwarded-Proto (HAProxy "option forwardfor").
	ForwardFor bool
	// ForwardedHost sets X-Forwarded-Host to the Host the client sent.
	ForwardedHost bool
	// Forwarded adds an RFC 7239 Forwarded element with for=, proto= and
	// host= (HAProxy "option forwarded").
	Forwarded bool
	// ServerHeader, if set, replaces the Server header of responses;
	// HideServer removes it.
	ServerHeader string
	HideServer   bool
	// Retries is how many times a request whose connection to a server
	// failed is tried again (HAProxy "retries"). 0 means DefaultRetries;
	// negative means none.
	Retries int
	// Redispatch sends every retry to another live server, and lets a
	// sticky request leave its server when it is down (HAProxy "option
	// redispatch"). Without it retries stay on the same server.
	Redispatch bool
	// ConnectTimeout bounds a connection to a server.
	ConnectTimeout time.Duration
	// ServerTimeout bounds writing a request to a server and reading its
	// response (HAProxy "timeout server").
	ServerTimeout time.Duration
	// MaxConns bounds the connections to each server; requests beyond
	// it wait up to QueueTimeout for one (HAProxy "maxconn", "timeout
	// queue").
	MaxConns     int
	QueueTimeout time.Duration
	// Check, if set, checks every server actively through
	// director/health.
	Check *CheckConfig
}

// ServerConfig is one server of a backend.
type ServerConfig struct {
	// Name is unique in the backend. Required.
	Name string
	// Addr is "host:port". Required.
	Addr string
	// Weight is 1..MaxWeight; 0 means DefaultWeight.
	Weight int
	// Cookie is the value of the sticky cookie naming this server.
	// Default: Name.
	Cookie string
	// Checked says that a caller that runs its own health.Monitor (see
	// SetMonitor) checks the server: Stats shows its check columns, and
	// "no check" otherwise. A BackendConfig.Check checks every server.
	Checked bool
}

// Cookie modes, the modes of HAProxy's "cookie" keyword.
const (
	// CookieInsert: the proxy inserts a cookie naming the server into
	// responses to clients that did not send a valid one.
	CookieInsert = "insert"
	// CookiePrefix: the cookie is the application's own (a session
	// cookie such as JSESSIONID); the proxy prefixes the value the
	// server sets with "<server cookie>~" and strips the prefix from
	// requests before the server sees them.
	CookiePrefix = "prefix"
	// CookieRewrite: the server sets the cookie with any value, which
	// the proxy replaces with the server's cookie value.
	CookieRewrite = "rewrite"
)

// CookieConfig configures cookie stickiness (HAProxy "cookie NAME
// [insert|prefix|rewrite] [indirect] [nocache] [postonly] [preserve]
// [httponly] [secure] [domain D]* [maxidle T] [maxlife T] [attr A]*").
// A request with a cookie naming a live server goes to that server, also
// when the server is drained (weight 0); a cookie naming a server that is
// down or unknown sends the request to a live server, which in insert
// mode sticks the client to it with a new cookie.
type CookieConfig struct {
	Name string // required, e.g. "SRV" or, for prefix, "JSESSIONID"
	// Mode is CookieInsert (default), CookiePrefix or CookieRewrite.
	Mode string
	// NoIndirect keeps the cookie in requests to the server in insert
	// mode (HAProxy's insert without "indirect"; insert is indirect by
	// default here, so that servers never see it).
	NoIndirect bool
	// NoCache adds "Cache-Control: private" to a cacheable response that
	// gets a cookie, so that no shared cache stores it.
	NoCache bool
	// PostOnly inserts the cookie only into responses to POST requests.
	PostOnly bool
	// Preserve leaves a cookie of this name that the server set itself
	// alone, and inserts none then (to end a session at logout, say);
	// otherwise the server's cookie of that name is replaced.
	Preserve bool
	// MaxIdle and MaxLife, when set, put dates in the cookie in HAProxy's
	// format "srv|LAST|FIRST" and ignore a cookie whose LAST is older than
	// MaxIdle or whose FIRST is older than MaxLife.
	MaxIdle, MaxLife time.Duration
	// Domain, and each of Domains, adds a "domain" attribute, as
	// HAProxy's repeated "domain" does.
	Domain           string
	Domains          []string
	HTTPOnly, Secure bool
	// Attrs are added as they are, e.g. "SameSite=Strict".
	Attrs []string
}

// CheckConfig describes the active health check of every server of a
// backend. With HTTP nil the check is a TCP connect.
type CheckConfig struct {
	// HTTP is the template of an HTTP check; its Addr is each server's.
	HTTP *health.HTTPConfig
	// Interval, Timeout, FastInterval, DownInterval, Rise, Fall are as in
	// health.Target.
	Interval, Timeout, FastInterval, DownInterval time.Duration
	Rise, Fall                                    int
}

func (c *BackendConfig) validate() error {
	if c.Name == "" {
		return errors.New("backend: name is required")
	}
	if len(c.Servers) == 0 {
		return fmt.Errorf("backend %s: no servers", c.Name)
	}
	names := map[string]bool{}
	cookies := map[string]string{}
	for i := range c.Servers {
		s := &c.Servers[i]
		if s.Name == "" {
			return fmt.Errorf("backend %s: server %d: name is required", c.Name, i)
		}
		if names[s.Name] {
			return fmt.Errorf("backend %s: server %s: duplicate name", c.Name, s.Name)
		}
		names[s.Name] = true
		if _, _, err := net.SplitHostPort(s.Addr); err != nil {
			return fmt.Errorf("backend %s: server %s: addr %q: %w", c.Name, s.Name, s.Addr, err)
		}
		if s.Weight < 0 || s.Weight > MaxWeight {
			return fmt.Errorf("backend %s: server %s: weight %d not in 0..%d", c.Name, s.Name, s.Weight, MaxWeight)
		}
		ck := s.Cookie
		if ck == "" {
			ck = s.Name
		}
		if !validCookieValue(ck) {
			return fmt.Errorf("backend %s: server %s: cookie %q: not a valid cookie value", c.Name, s.Name, ck)
		}
		if other, dup := cookies[ck]; dup {
			return fmt.Errorf("backend %s: servers %s and %s: same cookie %q", c.Name, other, s.Name, ck)
		}
		cookies[ck] = s.Name
	}
	if _, err := parseBalance(c.Balance); err != nil {
		return fmt.Errorf("backend %s: balance: %w", c.Name, err)
	}
	if c.Cookie != nil {
		if err := c.Cookie.validate(); err != nil {
			return fmt.Errorf("backend %s: cookie: %w", c.Name, err)
		}
		if c.Cookie.Mode == CookiePrefix {
			for _, s := range c.Servers {
				if strings.Contains(s.Cookie, "~") || s.Cookie == "" && strings.Contains(s.Name, "~") {
					return fmt.Errorf("backend %s: server %s: cookie: no '~' in prefix mode", c.Name, s.Name)
				}
			}
		}
	}
	if strings.ContainsAny(c.ServerHeader, "\r\n") {
		return fmt.Errorf("backend %s: server header: bad value %q", c.Name, c.ServerHeader)
	}
	if c.ConnectTimeout < 0 || c.ServerTimeout < 0 || c.QueueTimeout < 0 || c.MaxConns < 0 {
		return fmt.Errorf("backend %s: negative timeout or maxconns", c.Name)
	}
	return nil
}

// validCookieValue accepts RFC 6265 cookie-octets, without the '|' that
// separates the dates.
func validCookieValue(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= 0x20 || c >= 0x7f || c == '"' || c == ',' || c == ';' || c == '\\' || c == '|' {
			return false
		}
	}
	return true
}

func (cc *CookieConfig) validate() error {
	if cc.Name == "" || strings.ContainsAny(cc.Name, "=;, \t\"") {
		return fmt.Errorf("bad name %q", cc.Name)
	}
	if cc.MaxIdle < 0 || cc.MaxLife < 0 {
		return errors.New("negative maxidle or maxlife")
	}
	switch cc.Mode {
	case "", CookieInsert:
	case CookiePrefix, CookieRewrite:
		// HAProxy's own restrictions: these concern inserted cookies.
		if cc.NoIndirect || cc.PostOnly || cc.Preserve || cc.MaxIdle > 0 || cc.MaxLife > 0 ||
			cc.Domain != "" || len(cc.Domains) > 0 || cc.HTTPOnly || cc.Secure || len(cc.Attrs) > 0 {
			return fmt.Errorf("%s: noindirect, postonly, preserve, maxidle, maxlife, domain, httponly, secure and attr need insert mode", cc.Mode)
		}
	default:
		return fmt.Errorf("unknown mode %q", cc.Mode)
	}
	for i, d := range append([]string{cc.Domain}, cc.Domains...) {
		if i > 0 && d == "" || strings.ContainsAny(d, ";, \t\r\n\"") {
			return fmt.Errorf("bad domain %q", d)
		}
	}
	for _, a := range cc.Attrs {
		if a == "" || strings.ContainsAny(a, ";\r\n") || strings.ContainsFunc(a, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return fmt.Errorf("bad attr %q", a)
		}
	}
	return nil
}
