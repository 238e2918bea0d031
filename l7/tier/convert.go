package tier

import (
	"fmt"

	"github.com/rs/zerolog"

	"github.com/directorlb/director/director/config"
	"github.com/directorlb/director/l7"
)

// backendConfig is the l7 package's form of a configured backend. Health
// checks are the Tier's (see monitor), from the configuration's own check
// syntax.
func backendConfig(c config.L7Backend) l7.BackendConfig {
	bc := l7.BackendConfig{
		Name:           c.Name,
		Balance:        balance(c),
		ForwardFor:     c.ForwardFor,
		ForwardedHost:  c.ForwardFor,
		Forwarded:      c.Forwarded,
		Retries:        c.Retries,
		Redispatch:     c.Redispatch,
		ConnectTimeout: c.ConnectTimeout,
		ServerTimeout:  c.ServerTimeout,
		QueueTimeout:   c.QueueTimeout,
		MaxConns:       c.MaxConn,
		ServerHeader:   c.ServerHeader,
		HideServer:     c.HideServer,
	}
	if c.Retries == 0 {
		bc.Retries = -1 // the l7 package's "none"
	}
	for _, s := range c.Servers {
		bc.Servers = append(bc.Servers, l7.ServerConfig{Name: s.Name, Addr: s.Addr.String(), Weight: s.Weight, Cookie: s.Cookie,
			Checked: s.Check.Type != config.NoCheck})
	}
	if ck := c.Cookie; ck != nil {
		bc.Cookie = &l7.CookieConfig{Name: ck.Name, Mode: ck.Mode, NoCache: ck.NoCache, MaxIdle: ck.MaxIdle, MaxLife: ck.MaxLife,
			HTTPOnly: ck.HTTPOnly, Secure: ck.Secure, PostOnly: ck.PostOnly, Preserve: ck.Preserve,
			NoIndirect: ck.Mode == "insert" && !ck.Indirect, Domains: ck.Domains, Attrs: ck.Attrs}
	}
	return bc
}

// balance is the l7 package's HAProxy-style "balance" line.
func balance(c config.L7Backend) string {
	switch c.Balance {
	case "url_param":
		return "url_param " + c.URLParam
	case "random":
		return "random(2)" // HAProxy's default draws
	}
	return c.Balance
}

func frontendConfig(c config.L7Frontend, backends map[string]*l7.Backend, log zerolog.Logger) l7.FrontendConfig {
	fc := l7.FrontendConfig{
		Name:             c.Name,
		Backend:          backends[c.DefaultBackend],
		ClientTimeout:    c.ClientTimeout,
		RequestTimeout:   c.RequestTimeout,
		KeepAliveTimeout: c.KeepAliveTimeout,
		TunnelTimeout:    c.TunnelTimeout,
		MaxHeaderSize:    c.MaxHeaderSize,
		MaxBodySize:      int64(c.MaxBodySize),
		MaxConns:         c.MaxConn,
		Logger:           log,
	}
	if c.AccessLog {
		access := log.With().Str("component", "access").Logger()
		fc.AccessLog = &access
	}
	if len(c.TLS) > 0 {
		fc.TLS = &l7.TLSConfig{}
		for _, ct := range c.TLS {
			fc.TLS.Certs = append(fc.TLS.Certs, l7.CertFile{CertFile: ct.Cert, KeyFile: ct.Key})
		}
	}
	for i, r := range c.Rules {
		rule := l7.Rule{Name: fmt.Sprintf("%s rule %d", c.Name, i+1), Backend: backends[r.Backend]}
		if r.Host != "" {
			rule.Host = []string{r.Host}
		}
		if r.PathBeg != "" {
			rule.PathPrefix = []string{r.PathBeg}
		}
		if r.PathEnd != "" {
			rule.PathSuffix = []string{r.PathEnd}
		}
		if r.Header != "" {
			rule.Header = []l7.HeaderMatch{{Name: r.Header, Value: r.HeaderValue}}
		}
		if r.Return != nil {
			rule.Backend = nil
			rule.Return = &l7.Return{Status: r.Return.Status, ContentType: r.Return.ContentType, Body: r.Return.Body}
		}
		fc.Rules = append(fc.Rules, rule)
	}
	return fc
}
