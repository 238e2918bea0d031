package tier

import (
	"github.com/rs/zerolog"

	"github.com/directorlb/director/director/config"
	"github.com/directorlb/director/l7"
)

// backendConfig is the l7 package's form of a configured backend. Health
// checks are the Tier's (see targets), from the configuration's own check
// syntax.
func backendConfig(c config.L7Backend) l7.BackendConfig {
	bc := l7.BackendConfig{
		Name:           c.Name,
		ForwardFor:     c.ForwardFor,
		Retries:        c.Retries,
		Redispatch:     c.Redispatch,
		ConnectTimeout: c.ConnectTimeout,
		ServerTimeout:  c.ServerTimeout,
		QueueTimeout:   c.QueueTimeout,
		MaxConns:       c.MaxConn,
	}
	if c.Retries == 0 {
		bc.Retries = -1 // the l7 package's "none"
	}
	for _, s := range c.Servers {
		bc.Servers = append(bc.Servers, l7.ServerConfig{Name: s.Name, Addr: s.Addr.String(), Weight: s.Weight, Cookie: s.Cookie})
	}
	if ck := c.Cookie; ck != nil {
		cc := &l7.CookieConfig{Name: ck.Name, NoCache: ck.NoCache, MaxIdle: ck.MaxIdle, MaxLife: ck.MaxLife,
			HTTPOnly: ck.HTTPOnly, Secure: ck.Secure}
		if len(ck.Domains) > 0 {
			cc.Domain = ck.Domains[0]
		}
		bc.Cookie = cc
	}
	return bc
}

func frontendConfig(c config.L7Frontend, backends map[string]*l7.Backend, log zerolog.Logger) l7.FrontendConfig {
	return l7.FrontendConfig{
		Name:          c.Name,
		Backend:       backends[c.DefaultBackend],
		ClientTimeout: c.ClientTimeout,
		Logger:        log,
	}
}
