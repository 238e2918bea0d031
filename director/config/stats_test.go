package config

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const statsBase = `
interfaces: [{name: eth0}]
vips:
  - address: 10.99.0.100
    port: 80
    reals: [{address: 10.99.0.50}]
`

func TestStats(t *testing.T) {
	cfg := parse(t, statsBase+`
stats:
  address: 127.0.0.1:8404
  uri: /haproxy
  refresh: 5s
  realm: lb1
  hide_version: true
  show_node: true
  users:
    - {name: admin, password: s3cret, admin: true}
    - {name: viewer, password: "view"}
  tls: {cert: tls/stats.crt, key: /etc/director/stats.key}
`)
	want := &Stats{
		Address: netip.MustParseAddrPort("127.0.0.1:8404"), URI: "/haproxy", Refresh: 5 * time.Second,
		Realm: "lb1", HideVersion: true, ShowNode: true,
		Users:   []StatsUser{{"admin", "s3cret", true}, {"viewer", "view", false}},
		TLSCert: "tls/stats.crt", TLSKey: "/etc/director/stats.key",
	}
	if !reflect.DeepEqual(cfg.Stats, want) {
		t.Errorf("stats %+v\nwant  %+v", cfg.Stats, want)
	}

	cfg = parse(t, statsBase+`
stats:
  address: "[::1]:8404"
  users: [{name: ops, password: x}]
`)
	want = &Stats{Address: netip.MustParseAddrPort("[::1]:8404"), URI: DefaultStatsURI, Refresh: DefaultStatsRefresh,
		Realm: DefaultStatsRealm, Users: []StatsUser{{Name: "ops", Password: "x"}}}
	if !reflect.DeepEqual(cfg.Stats, want) {
		t.Errorf("defaults %+v\nwant     %+v", cfg.Stats, want)
	}
	if parse(t, statsBase).Stats != nil {
		t.Error("stats without a stats section")
	}

	// A change of the section needs a restart.
	other := parse(t, statsBase+`
stats:
  address: "[::1]:8404"
  users: [{name: ops, password: y}]
`)
	if d := Compare(cfg, other); !slices.Equal(d.Restart, []string{"stats"}) {
		t.Errorf("restart %v", d.Restart)
	}
}

func TestStatsBad(t *testing.T) {
	for _, c := range []struct {
		name, src string
		want      []string
	}{
		{"no address, no users", `
stats:
  uri: /s
`, []string{
			`director.yaml:7: stats.address: required`,
			`director.yaml:7: stats.users: at least one user is needed: the page shows and changes the whole director`,
		}},
		{"bad values", `
stats:
  address: localhost:80
  uri: stats;csv
  refresh: -1s
  realm: 'a"b'
  hide_version: yes
  users:
    - {name: "a:b", password: x}
    - {name: ok, password: ""}
    - {name: ok2}
    - {name: ok2, password: y, admin: 1}
    - {name: ok2, password: z, role: admin}
  tls: {cert: a.crt}
`, []string{
			`director.yaml:7: stats.address: "localhost:80": want address:port, e.g. 127.0.0.1:8404 or [::]:8404`,
			`director.yaml:8: stats.uri: "stats;csv": want a path starting with /, without ; ? # % or spaces`,
			`director.yaml:9: stats.refresh: negative duration -1s`,
			`director.yaml:10: stats.realm: "a\"b": want a non-empty realm without quotes or backslashes`,
			`director.yaml:11: stats.hide_version: want true or false, not "yes"`,
			`director.yaml:13: stats.users[0].name: "a:b": want a non-empty name without a colon`,
			`director.yaml:14: stats.users[1].password: empty password`,
			`director.yaml:15: stats.users[2].password: required`,
			`director.yaml:16: stats.users[3].admin: want true or false, not "1"`,
			`director.yaml:16: stats.users[3].name: "ok2" is also stats.users[2].name (line 15)`,
			`director.yaml:17: stats.users[4].role: unknown key`,
			`director.yaml:17: stats.users[4].name: "ok2" is also stats.users[2].name (line 15)`,
			`director.yaml:18: stats.tls.key: required`,
		}},
		{"empty users", `
stats: {address: "127.0.0.1:8404", users: []}
`, []string{`director.yaml:6: stats.users: at least one user is needed: the page shows and changes the whole director`}},
		{"unknown key", `
stats: {address: "127.0.0.1:8404", users: [{name: a, password: b}], auth: x}
`, []string{`director.yaml:6: stats.auth: unknown key`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("director.yaml", doc(statsBase+strings.TrimPrefix(c.src, "\n")), topoLinks)
			if err == nil {
				t.Fatal("no error")
			}
			if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, c.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}
