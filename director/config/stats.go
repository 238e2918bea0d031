package config

import (
	"net/netip"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Stats is the stats page (package director/stats): HAProxy's stats page for
// the whole director, served on its own address.
type Stats struct {
	// Address is where the page is served, e.g. 127.0.0.1:8404.
	Address netip.AddrPort
	// URI is the page's path (DefaultStatsURI); ";csv" and ";json" after
	// it give the same data for scripts.
	URI string
	// Refresh is how often the page reloads itself; 0: never.
	Refresh time.Duration
	// Realm is the basic-auth realm.
	Realm       string
	HideVersion bool
	ShowNode    bool
	// Users may read the page; those with Admin may drain, enable, set
	// weights and put reals in maintenance from it. At least one.
	Users []StatsUser
	// TLSCert and TLSKey are PEM files (both or neither): the page is
	// served over HTTPS when set.
	TLSCert, TLSKey string
}

// StatsUser is a user of the stats page (HTTP basic auth).
type StatsUser struct {
	Name, Password string
	Admin          bool
}

// Defaults of the stats section.
const (
	DefaultStatsURI     = "/stats"
	DefaultStatsRefresh = 10 * time.Second
	DefaultStatsRealm   = "director stats"
)

type rawStats struct {
	pos
	address     opt[string]
	uri         opt[string]
	refresh     opt[time.Duration]
	realm       opt[string]
	hideVersion opt[bool]
	showNode    opt[bool]
	usersList   opt[struct{}]
	users       []rawStatsUser
	tls         *rawStatsTLS
}

type rawStatsUser struct {
	pos
	name, password opt[string]
	admin          opt[bool]
}

type rawStatsTLS struct {
	pos
	cert, key opt[string]
}

func parseStats(w *walker, n *yaml.Node, p pos) *rawStats {
	f := w.mapping(n, p, "address", "uri", "refresh", "realm", "hide_version", "show_node", "users", "tls")
	if f == nil {
		return nil
	}
	s := &rawStats{
		pos:         f.pos,
		address:     f.str("address"),
		uri:         f.str("uri"),
		refresh:     f.duration("refresh", false),
		realm:       f.str("realm"),
		hideVersion: f.boolean("hide_version"),
		showNode:    f.boolean("show_node"),
	}
	s.usersList = f.list("users", func(n *yaml.Node, p pos) {
		if g := w.mapping(n, p, "name", "password", "admin"); g != nil {
			s.users = append(s.users, rawStatsUser{pos: g.pos, name: g.str("name"),
				password: g.str("password"), admin: g.boolean("admin")})
		}
	})
	if tn, tp := f.at("tls"); tn != nil {
		if g := w.mapping(tn, tp, "cert", "key"); g != nil {
			s.tls = &rawStatsTLS{pos: g.pos, cert: g.str("cert"), key: g.str("key")}
		}
	}
	return s
}

// stats validates the stats section, if any.
func (v *validator) stats() {
	rs := v.raw.stats
	if rs == nil {
		return
	}
	s := &Stats{
		URI:         rs.uri.or(DefaultStatsURI),
		Refresh:     rs.refresh.or(DefaultStatsRefresh),
		Realm:       rs.realm.or(DefaultStatsRealm),
		HideVersion: rs.hideVersion.or(false),
		ShowNode:    rs.showNode.or(false),
	}
	if required(v.report, rs.address) {
		ap, err := netip.ParseAddrPort(rs.address.v)
		switch {
		case err != nil || ap.Addr().Zone() != "":
			v.errorf(rs.address.pos, "%q: want address:port, e.g. 127.0.0.1:8404 or [::]:8404", rs.address.v)
		case ap.Port() == 0:
			v.errorf(rs.address.pos, "%q: port 0", rs.address.v)
		default:
			s.Address = ap
		}
	}
	if u := rs.uri; u.set && (!strings.HasPrefix(u.v, "/") || strings.ContainsAny(u.v, ";?# \t\n%")) {
		v.errorf(u.pos, "%q: want a path starting with /, without ; ? # %% or spaces", u.v)
	}
	if r := rs.realm; r.set && (r.v == "" || strings.ContainsAny(r.v, "\"\\\n")) {
		v.errorf(r.pos, "%q: want a non-empty realm without quotes or backslashes", r.v)
	}
	if rs.usersList.absent() || (rs.usersList.set && len(rs.users) == 0) {
		v.errorf(rs.usersList.pos, "at least one user is needed: the page shows and changes the whole director")
	}
	names := map[string]pos{}
	for _, ru := range rs.users {
		okName, okPass := required(v.report, ru.name), required(v.report, ru.password)
		switch {
		case !okName:
		case ru.name.v == "" || strings.ContainsAny(ru.name.v, ":\n"):
			v.errorf(ru.name.pos, "%q: want a non-empty name without a colon", ru.name.v)
			okName = false
		default:
			if first, dup := names[ru.name.v]; dup {
				v.errorf(ru.name.pos, "%q is also %s (line %d)", ru.name.v, first.path, first.line)
				okName = false
			} else {
				names[ru.name.v] = ru.name.pos
			}
		}
		if okPass && ru.password.v == "" {
			v.errorf(ru.password.pos, "empty password")
			okPass = false
		}
		if okName && okPass {
			s.Users = append(s.Users, StatsUser{Name: ru.name.v, Password: ru.password.v, Admin: ru.admin.or(false)})
		}
	}
	if t := rs.tls; t != nil {
		path := func(o opt[string]) string {
			if !required(v.report, o) {
				return ""
			}
			return v.path(o, "")
		}
		s.TLSCert, s.TLSKey = path(t.cert), path(t.key)
	}
	v.cfg.Stats = s
}
