package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/directorlb/director/director/health"
)

func TestL7Good(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir, "www")
	src := `
control_socket: proxy.sock
l7:
  threads: 1
  engine: goroutines
  frontends:
    - name: www
      bind: [":80", "10.99.0.100:443"]
      tls: { certificates: [{ cert: www.pem, key: www.key }] }
      maxconn: 1000
      timeouts: { client: 20s, http_request: 5s, http_keep_alive: 2s, tunnel: 1h }
      max_header_size: 8192
      max_body_size: 1048576
      access_log: true
      rules:
        - { path_end: /favicon.ico, return: { status: 404 } }
        - { host: Static.Example.com, path_beg: /img, use_backend: static }
        - { header: X-Canary, value: "1", use_backend: static }
        - { path_beg: /ping, return: { status: 200, body: pong } }
      default_backend: web
  backends:
    - name: web
      cookie: { name: SRV, nocache: true, httponly: true, secure: true, domain: [example.com], attr: [SameSite=Lax], maxidle: 30m, maxlife: 8h }
      forwardfor: true
      forwarded: true
      retries: 0
      redispatch: true
      timeouts: { connect: 1s, server: 10s, queue: 2s }
      maxconn: 100
      hide_server: true
      check: { type: http, path: /check.txt, expect_status: "200-299" }
      servers:
        - { name: web1, address: "10.99.0.80:80", weight: 3 }
        - { name: web2, address: "10.99.0.81:8080", cookie: w2 }
    - name: static
      balance: url_param
      url_param: user
      cookie: { name: PHPSESSID, mode: prefix }
      servers:
        - { name: s1, address: "[fd00:99::90]:80" }
`
	path := filepath.Join(dir, "proxy.yaml")
	cfg, err := ParseL7(path, doc(src))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ControlSocket != filepath.Join(dir, "proxy.sock") {
		t.Errorf("control socket %q", cfg.ControlSocket)
	}
	if cfg.L7.Threads != 1 || cfg.L7.Engine != "goroutines" {
		t.Errorf("threads %d, engine %q, want 1, goroutines", cfg.L7.Threads, cfg.L7.Engine)
	}
	fe := cfg.L7.Frontends[0]
	wantFE := L7Frontend{
		Name: "www", Bind: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:80"), netip.MustParseAddrPort("10.99.0.100:443")},
		TLS:     []TLSCert{{Cert: filepath.Join(dir, "www.pem"), Key: filepath.Join(dir, "www.key")}},
		MaxConn: 1000, ClientTimeout: 20 * time.Second, RequestTimeout: 5 * time.Second, KeepAliveTimeout: 2 * time.Second,
		TunnelTimeout: time.Hour, MaxHeaderSize: 8192, MaxBodySize: 1 << 20, AccessLog: true,
		Rules: []L7Rule{
			{PathEnd: "/favicon.ico", Return: &L7Return{Status: 404}},
			{Host: "static.example.com", PathBeg: "/img", Backend: "static"},
			{Header: "X-Canary", HeaderValue: "1", Backend: "static"},
			{PathBeg: "/ping", Return: &L7Return{Status: 200, Body: "pong", ContentType: "text/plain"}},
		},
		DefaultBackend: "web",
	}
	if !reflect.DeepEqual(fe, wantFE) {
		t.Errorf("frontend:\n%+v\nwant\n%+v", fe, wantFE)
	}
	web := cfg.L7.Backends[0]
	if web.Balance != "roundrobin" || web.Retries != 0 || !web.Redispatch || !web.ForwardFor || !web.Forwarded ||
		web.ConnectTimeout != time.Second || web.MaxConn != 100 || !web.Checked || !web.HideServer {
		t.Errorf("backend web: %+v", web)
	}
	wantCookie := &L7Cookie{Name: "SRV", Mode: "insert", Indirect: true, NoCache: true, HTTPOnly: true, Secure: true,
		Domains: []string{"example.com"}, Attrs: []string{"SameSite=Lax"}, MaxIdle: 30 * time.Minute, MaxLife: 8 * time.Hour}
	if !reflect.DeepEqual(web.Cookie, wantCookie) {
		t.Errorf("cookie %+v", web.Cookie)
	}
	s1, s2 := web.Servers[0], web.Servers[1]
	if s1.Weight != 3 || s1.Cookie != "web1" || s2.Weight != 1 || s2.Cookie != "w2" {
		t.Errorf("servers %+v %+v", s1, s2)
	}
	if s2.Check.Type != HTTPCheck || s2.Check.Target != netip.MustParseAddrPort("10.99.0.81:8080") ||
		s2.Check.HTTP.Path != "/check.txt" || s2.Check.Rise != health.DefaultRise || s2.Check.Fall != health.DefaultFall ||
		s2.Check.Interval != health.DefaultInterval {
		t.Errorf("check %+v", s2.Check)
	}
	st := cfg.L7.Backends[1]
	if st.Balance != "url_param" || st.URLParam != "user" || st.Cookie.Mode != "prefix" || st.Checked ||
		st.Servers[0].Addr != netip.MustParseAddrPort("[fd00:99::90]:80") {
		t.Errorf("backend static: %+v", st)
	}

	// The agent takes the section too, beside its VIPs.
	agent := `
interfaces: [{name: eth0}]
vips:
  - { name: web, address: 10.99.0.100, port: 80, mode: local }
l7:
  frontends: [{ name: www, bind: ["10.99.0.100:80"], default_backend: web }]
  backends: [{ name: web, servers: [{ name: web1, address: "10.99.0.80:80" }] }]
`
	if cfg := parse(t, agent); cfg.L7 == nil || cfg.L7.Frontends[0].MaxHeaderSize != DefaultL7MaxHeaderSize || cfg.L7.Backends[0].Retries != DefaultL7Retries {
		t.Errorf("agent's l7: %+v", cfg.L7)
	}
}

func TestL7Bad(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad.pem"), []byte("not a certificate"), 0o600)
	cases := []struct {
		name, src string
		want      []string
	}{
		{"no section", `
metrics: { address: "127.0.0.1:9111" }
`, []string{`proxy.yaml:1: l7: required: director l7 runs the l7 section`}},
		{"agent's sections", `
interfaces: [{name: eth0}]
vips: []
hash_seed: 1
l7:
  frontends: [{ name: www, bind: [":80"], default_backend: web }]
  backends: [{ name: web, servers: [{ name: w, address: "10.0.0.1:80" }] }]
`, []string{
			`proxy.yaml:1: interfaces: interfaces is the agent's (director run), not director l7's`,
			`proxy.yaml:2: vips: vips is the agent's (director run), not director l7's`,
			`proxy.yaml:3: hash_seed: hash_seed is the agent's (director run), not director l7's`}},
		{"frontend problems", `
l7:
  frontends:
    - name: www
      bind: ["10.0.0.1", ":0", "www:80"]
      rules:
        - { use_backend: web }
        - { path_beg: img, use_backend: nosuch }
        - { host: a, use_backend: web, return: { status: 404 } }
        - { header: X-A, use_backend: web }
        - { host: b }
        - { host: c, return: { body: x } }
      default_backend: nosuch
    - name: www
      bind: [":8080"]
      tls: { certificates: [{ cert: bad.pem, key: bad.pem }, { cert: x.pem }] }
      default_backend: web
    - { name: other, bind: ["0.0.0.0:8080"], default_backend: web, maxconn: -1, timeouts: { client: 0s } }
  backends: [{ name: web, servers: [{ name: w, address: "10.0.0.1:80" }] }]
`, []string{
			`proxy.yaml:4: l7.frontends[0].bind[0]: "10.0.0.1" is not ADDRESS:PORT`,
			`proxy.yaml:4: l7.frontends[0].bind[1]: ":0" is not ADDRESS:PORT`,
			`proxy.yaml:4: l7.frontends[0].bind[2]: "www:80" is not ADDRESS:PORT`,
			`proxy.yaml:6: l7.frontends[0].rules[0]: a rule needs a condition: host, path_beg, path_end or header`,
			`proxy.yaml:7: l7.frontends[0].rules[1].path_beg: "img" must start with /`,
			`proxy.yaml:7: l7.frontends[0].rules[1].use_backend: no backend "nosuch"`,
			`proxy.yaml:8: l7.frontends[0].rules[2]: use_backend or return, not both`,
			`proxy.yaml:9: l7.frontends[0].rules[3]: header and value go together`,
			`proxy.yaml:10: l7.frontends[0].rules[4]: a rule needs use_backend or return`,
			`proxy.yaml:11: l7.frontends[0].rules[5].return.status: required`,
			`proxy.yaml:12: l7.frontends[0].default_backend: no backend "nosuch"`,
			`proxy.yaml:13: l7.frontends[1].name: "www" is also l7.frontends[0].name (line 3)`,
			`proxy.yaml:15: l7.frontends[1].tls.certificates[0].cert: tls: failed to find any PEM data in certificate input`,
			`proxy.yaml:15: l7.frontends[1].tls.certificates[1].key: required`,
			`proxy.yaml:17: l7.frontends[2].maxconn: -1 out of range 0..16777216`,
			`proxy.yaml:17: l7.frontends[2].timeouts.client: must be more than 0`,
		}},
		{"threads", `
l7:
  threads: 0
  frontends: [{ name: www, bind: [":80"], default_backend: web }]
  backends: [{ name: web, servers: [{ name: w, address: "10.0.0.1:80" }] }]
`, []string{`proxy.yaml:2: l7.threads: 0 out of range 1..4096`}},
		{"engine", `
l7:
  engine: threads
  frontends: [{ name: www, bind: [":80"], default_backend: web }]
  backends: [{ name: web, servers: [{ name: w, address: "10.0.0.1:80" }] }]
`, []string{`proxy.yaml:2: l7.engine: "threads": want goroutines, loops`}},
		{"backend problems", `
l7:
  frontends: [{ name: www, bind: [":80"], default_backend: web }]
  backends:
    - name: web
      balance: url_param
      hide_server: true
      server_header: x
      cookie: { name: "S R V", mode: prefix, nocache: true, maxidle: 1m, attr: ["a;b"] }
      servers:
        - { name: w, address: "10.0.0.1:80" }
        - { name: w, address: "10.0.0.2:80", cookie: "a|b" }
        - { name: x, address: "10.0.0.3:80", cookie: w }
        - { name: y }
    - { name: web, balance: hash, url_param: u, servers: [] }
`, []string{
			`proxy.yaml:4: l7.backends[0].url_param: required by balance url_param`,
			`proxy.yaml:7: l7.backends[0].server_header: hide_server removes the header this sets`,
			`proxy.yaml:8: l7.backends[0].cookie.name: "S R V" is not a cookie name`,
			`proxy.yaml:8: l7.backends[0].cookie.nocache: only for mode insert`,
			`proxy.yaml:8: l7.backends[0].cookie.maxidle: only for mode insert`,
			`proxy.yaml:8: l7.backends[0].cookie.attr: "a;b": an attribute may not contain ';' or a line break`,
			`proxy.yaml:11: l7.backends[0].servers[1].name: "w" is also l7.backends[0].servers[0].name (line 10)`,
			`proxy.yaml:11: l7.backends[0].servers[1].cookie: "a|b" is not a valid cookie value`,
			`proxy.yaml:12: l7.backends[0].servers[2].cookie: cookie "w" is also l7.backends[0].servers[0]'s (line 10)`,
			`proxy.yaml:13: l7.backends[0].servers[3].address: required`,
			`proxy.yaml:14: l7.backends[1].balance: "hash": want leastconn, random, roundrobin, source, static-rr, uri, url_param`,
			`proxy.yaml:14: l7.backends[1].url_param: only for balance url_param`,
			`proxy.yaml:14: l7.backends[1].servers: at least one server is needed`,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseL7(filepath.Join(dir, "proxy.yaml"), doc(c.src))
			if err == nil {
				t.Fatalf("no error: %+v", cfg)
			}
			got := strings.Split(strings.ReplaceAll(err.Error(), dir+"/", ""), "\n")
			if !slices.Equal(got, c.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

// writeCert writes a self-signed certificate for name as name.pem and
// name.key in dir.
func writeCert(t *testing.T, dir, name string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}
