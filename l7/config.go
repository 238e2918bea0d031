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
	// Servers are balanced by smooth weighted roundrobin. At least one.
	Servers []ServerConfig
	// Cookie, if set, makes sessions sticky with an inserted cookie
	// (HAProxy "cookie NAME insert indirect").
	Cookie *CookieConfig
	// ForwardFor appends the client's address to X-Forwarded-For and
	// sets X-Forwarded-Proto (HAProxy "option forwardfor").
	ForwardFor bool
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
}

// CookieConfig configures cookie insertion (HAProxy "cookie NAME insert
// indirect [nocache] [maxidle] [maxlife] [domain] [httponly] [secure]").
// The server's cookie is inserted into responses to requests that did not
// carry a valid one, and removed from requests before they reach the
// server ("indirect").
type CookieConfig struct {
	Name string // required, e.g. "SRV"
	// NoCache adds "Cache-Control: private" to a cacheable response that
	// gets a cookie, so that no shared cache stores it.
	NoCache bool
	// MaxIdle and MaxLife, when set, put dates in the cookie in HAProxy's
	// format "srv|LAST|FIRST" and ignore a cookie whose LAST is older than
	// MaxIdle or whose FIRST is older than MaxLife.
	MaxIdle, MaxLife time.Duration
	Domain           string
	HTTPOnly, Secure bool
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
	if c.Cookie != nil {
		if c.Cookie.Name == "" || strings.ContainsAny(c.Cookie.Name, "=;, \t\"") {
			return fmt.Errorf("backend %s: cookie: bad name %q", c.Name, c.Cookie.Name)
		}
		if c.Cookie.MaxIdle < 0 || c.Cookie.MaxLife < 0 {
			return fmt.Errorf("backend %s: cookie: negative maxidle or maxlife", c.Name)
		}
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
