package config

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/directorlb/director/director"
	"github.com/directorlb/director/director/health"
	"github.com/directorlb/director/loader"
	"github.com/directorlb/director/vrrp"
)

// doc drops the newline after the opening backquote, so that line 1 is the
// first line of the text.
func doc(s string) []byte { return []byte(strings.TrimPrefix(s, "\n")) }

func parse(t *testing.T, src string) *Config {
	t.Helper()
	cfg, err := Parse("director.yaml", doc(src), topoLinks)
	if err != nil {
		t.Fatalf("unexpected error:\n%v", err)
	}
	return cfg
}

// badCases are files with problems and the exact errors they give.
var badCases = []struct {
	name  string
	src   string
	links Links // default topoLinks
	want  []string
}{
	// The file as a whole.
	{"empty", ``, nil, []string{`director.yaml:1: empty file`}},
	{"syntax", `
interfaces: [{name: eth0}]
vips: [
`, nil, []string{`director.yaml:2: did not find expected node content`}},
	{"tab indent", `
interfaces:
	- name: eth0
`, nil, []string{`director.yaml:2: found character that cannot start any token`}},
	{"two documents", `
interfaces: [{name: eth0}]
---
interfaces: [{name: eth1}]
`, nil, []string{`director.yaml:2: more than one YAML document`}},
	{"not utf-8", "interfaces: [{name: eth0}]\nvips: \xff\n", nil, []string{`director.yaml:2: not valid UTF-8`}},
	{"unknown anchor", `
interfaces: [{name: eth0}]
vips:
  - address: 10.99.0.100
    port: 80
    reals: *pool
`, nil, []string{`director.yaml:5: unknown anchor 'pool' referenced`}},
	{"not a mapping", `
- eth0
`, nil, []string{`director.yaml:1: want a mapping, not a list`}},

	// Strict keys.
	{"unknown key", `
interfaces: [{name: eth0}]
vip:
  - address: 10.99.0.100
`, nil, []string{`director.yaml:2: vip: unknown key (did you mean "vips"?)`}},
	{"unknown nested key", `
interfaces: [{name: eth0}]
vips:
  - address: 10.99.0.100
    port: 80
    reals:
      - address: 10.99.0.50
        wieght: 2
    check: {type: http, uri: /}
`, nil, []string{
		`director.yaml:7: vips[0].reals[0].wieght: unknown key (did you mean "weight"?)`,
		`director.yaml:8: vips[0].check.uri: unknown key`,
	}},
	{"key twice", `
interfaces: [{name: eth0}]
vips:
  - address: 10.99.0.100
    port: 80
    port: 81
    reals: [{address: 10.99.0.50}]
`, nil, []string{`director.yaml:5: vips[0].port: given twice (first at line 4)`}},
	{"merge key", `
interfaces: [{name: eth0}]
vips:
  - <<: {port: 80}
    address: 10.99.0.100
    reals: [{address: 10.99.0.50}]
`, nil, []string{
		`director.yaml:3: vips[0].<<: merge keys are not supported`,
		`director.yaml:3: vips[0].port: required: a port number, or all`,
	}},

	// Interfaces.
	{"no interfaces", `
vips:
  - address: 10.99.0.100
    port: 80
    reals: [{address: 10.99.0.50}]
`, nil, []string{`director.yaml:1: interfaces: at least one interface is needed`}},
	{"bad interfaces", `
interfaces:
  - name: eth0
    xdp_mode: turbo
  - name: eth0
  - xdp_mode: native
  - name: a/b
vips:
  - address: 10.99.0.100
    port: 80
    reals: [{address: 10.99.0.50}]
`, nil, []string{
		`director.yaml:3: interfaces[0].xdp_mode: "turbo": want auto, generic, native`,
		`director.yaml:4: interfaces[1].name: "eth0" is also interfaces[0].name (line 2)`,
		`director.yaml:5: interfaces[2].name: required`,
		`director.yaml:6: interfaces[3].name: "a/b" is not an interface name`,
	}},
	{"interface unknown to the host", `
interfaces: [{name: eth9}]
vips:
  - address: 10.99.0.100
    port: 80
    reals: [{address: 10.99.0.50}]
`, nil, []string{`director.yaml:1: interfaces[0].name: "eth9": no such interface`}},
	{"VIP interface", `
interfaces: [{name: eth0}, {name: eth1}]
vips:
  - address: 10.99.0.100
    port: 80
    reals: [{address: 10.99.0.50}]
  - address: 10.99.0.101
    port: 80
    interface: eth2
    reals: [{address: 10.99.0.50}]
`, StaticLinks{"eth0": topoLinks["eth0"], "eth1": nil}, []string{
		`director.yaml:3: vips[0].interface: required when there are several interfaces`,
		`director.yaml:8: vips[1].interface: "eth2" is not in interfaces`,
	}},

	// VIPs.
	{"bad addresses", `
interfaces: [{name: eth0}]
vips:
  - address: 10.99.0.300
    port: 80
    reals:
      - address: 10.99.0.50
      - address: ::ffff:10.99.0.51
      - address: fe80::1%eth0
      - address: 0.0.0.0
      - address: [10.99.0.52]
  - address: 10.99.0.101
    port: 80
    sorry_server: 10.99.0
    on_all_down: sorry
    reals: [{address: 10.99.0.50}]
`, nil, []string{
		`director.yaml:3: vips[0].address: "10.99.0.300" is not an IP address`,
		`director.yaml:7: vips[0].reals[1].address: "::ffff:10.99.0.51": write IPv4-mapped addresses as IPv4`,
		`director.yaml:8: vips[0].reals[2].address: "fe80::1%eth0": zones are not supported`,
		`director.yaml:9: vips[0].reals[3].address: "0.0.0.0" is not a unicast address`,
		`director.yaml:10: vips[0].reals[4].address: want an IP address, not a list`,
		`director.yaml:13: vips[1].sorry_server: "10.99.0" is not an IP address`,
	}},
	{"port", `
interfaces: [{name: eth0}]
vips:
  - address: 10.99.0.100
    reals: [{address: 10.99.0.50}]
  - address: 10.99.0.101
    port: http
    reals: [{address: 10.99.0.50}]
  - address: 10.99.0.102
    port: 65536
    reals: [{address: 10.99.0.50}]
  - address: 10.99.0.103
    port: "80"
    reals: [{address: 10.99.0.50}]
`, nil, []string{
		`director.yaml:3: vips[0].port: required: a port number, or all`,
		`director.yaml:6: vips[1].port: "http": want a port number or all`,
		`director.yaml:9: vips[2].port: 65536 out of range 0..65535`,
		`director.yaml:12: vips[3].port: "80": want a port number or all`,
	}},
	{"enums", `
interfaces: [{name: eth0}]
vips:
  - address: 10.99.0.100
    port: 80
    protocol: sctp
    scheduler: rr
    mode: nat
    on_all_down: fallback
    reals: [{address: 10.99.0.50}]
`, nil, []string{
		`director.yaml:5: vips[0].protocol: "sctp": want tcp, udp`,
		`director.yaml:6: vips[0].scheduler: "rr": want maglev, source`,
		`director.yaml:7: vips[0].mode: "nat": want l4, local`,
		`director.yaml:8: vips[0].on_all_down: "fallback": want drop, keep, sorry`,
	}},
	{"VIP without reals", `
interfaces: [{name: eth0}]
vips:
  - address: 10.99.0.100
    port: 80
  - address: 10.99.0.101
    port: 80
    reals: []
  - address: 10.99.0.102
    port: 80
    reals:
`, nil, []string{
		`director.yaml:3: vips[0].reals: at least one real is needed`,
		`director.yaml:7: vips[1].reals: at least one real is needed`,
		`director.yaml:10: vips[2].reals: at least one real is needed`,
	}},
	{"duplicate VIPs", `
interfaces: [{name: eth0}]
vips:
  - name: web
    address: 10.99.0.100
    port: 80
    reals: [{address: 10.99.0.50}]
  - name: web2
    address: 10.99.0.100
    port: 80
    protocol: tcp
    reals: [{address: 10.99.0.50}]
  - name: web
    address: 10.99.0.100
    port: 80
    protocol: udp
    reals: [{address: 10.99.0.50}]
`, nil, []string{
		`director.yaml:8: vips[1].address: 10.99.0.100:80/tcp is also vips[0] (line 3)`,
		`director.yaml:12: vips[2].name: "web" is also the name of vips[0] (line 3)`,
	}},
	{"reals", `
interfaces: [{name: eth0}]
vips:
  - address: 10.99.0.100
    port: 80
    reals:
      - address: 10.99.0.50
      - {address: 10.99.0.50, weight: 2}
      - address: fd00:99::50
      - address: 10.99.0.100
      - weight: 1
      - {address: 10.99.0.51, weight: 257}
      - {address: 10.99.0.52, weight: -1}
`, nil, []string{
		`director.yaml:7: vips[0].reals[1].address: 10.99.0.50 is also vips[0].reals[0] (line 6)`,
		`director.yaml:8: vips[0].reals[2].address: fd00:99::50 is not of the VIP's family`,
		`director.yaml:9: vips[0].reals[3].address: 10.99.0.100 is the VIP itself`,
		`director.yaml:10: vips[0].reals[4].address: required`,
		`director.yaml:11: vips[0].reals[5].weight: 257 out of range 0..256`,
		`director.yaml:12: vips[0].reals[6].weight: -1 out of range 0..256`,
	}},
	{"real off the link", `
interfaces: [{name: eth0}]
vips:
  - address: 10.99.0.100
    port: 80
    reals:
      - address: 10.99.1.50
  - address: 2001:db8::100
    port: 80
    reals:
      - address: 2001:db8::50
`, StaticLinks{"eth0": {netip.MustParsePrefix("10.99.0.2/24")}}, []string{
		`director.yaml:6: vips[0].reals[0].address: 10.99.1.50 is in no subnet directly connected to eth0 (its subnets: 10.99.0.0/24); direct routing needs the real on the same link`,
		`director.yaml:10: vips[1].reals[0].address: 2001:db8::50 is in no subnet directly connected to eth0 (it has none of this family); direct routing needs the real on the same link`,
	}},
	{"all-down policy", `
interfaces: [{name: eth0}]
vips:
  - address: 10.99.0.100
    port: 80
    on_all_down: sorry
    reals: [{address: 10.99.0.50}]
  - address: 10.99.0.101
    port: 80
    on_all_down: drop
    sorry_server: 10.99.0.60
    reals: [{address: 10.99.0.50}]
  - address: 10.99.0.102
    port: 80
    on_all_down: sorry
    sorry_server: 10.98.0.60
    reals: [{address: 10.99.0.50}]
  - address: 10.99.0.103
    port: 80
    on_all_down: sorry
    sorry_server: 10.99.0.50
    reals: [{address: 10.99.0.50}]
`, nil, []string{
		`director.yaml:3: vips[0].sorry_server: required with on_all_down: sorry`,
		`director.yaml:10: vips[1].sorry_server: only with on_all_down: sorry`,
		`director.yaml:15: vips[2].sorry_server: 10.98.0.60 is in no subnet directly connected to eth0 (its subnets: 10.99.0.0/24); direct routing needs the real on the same link`,
		`director.yaml:21: vips[3].reals[0].address: 10.99.0.50 is also the sorry server`,
	}},
	{"local VIP with reals", `
interfaces: [{name: eth0}]
vips:
  - address: 10.99.0.100
    port: 443
    mode: local
    on_all_down: drop
    check: {type: tcp}
    reals: [{address: 10.99.0.50}]
`, nil, []string{
		`director.yaml:6: vips[0].on_all_down: a local VIP has no reals: it is handed to this host's stack`,
		`director.yaml:7: vips[0].check: a local VIP has no reals to check`,
		`director.yaml:8: vips[0].reals: a local VIP has no reals: it is handed to this host's stack`,
	}},

	// Checks.
	{"check interval zero", `
interfaces: [{name: eth0}]
check_defaults: {timeout: 0s}
vips:
  - address: 10.99.0.100
    port: 80
    check:
      interval: 0s
      fast_interval: 2
      rise: 0
    reals: [{address: 10.99.0.50}]
`, nil, []string{
		`director.yaml:2: check_defaults.timeout: must be more than 0`,
		`director.yaml:7: vips[0].check.interval: must be more than 0`,
		`director.yaml:8: vips[0].check.fast_interval: want a duration such as 2s or 500ms, not "2"`,
		`director.yaml:9: vips[0].check.rise: 0 out of range 1..1000`,
	}},
	{"check keys of another type", `
interfaces: [{name: eth0}]
check_defaults: {type: tcp, path: /}
vips:
  - address: 10.99.0.100
    port: 80
    check: {type: http, path: /check.txt, server_name: www, command: [x]}
    reals:
      - address: 10.99.0.50
        check: {type: tcp, expect_status: "200"}
      - address: 10.99.0.51
        check: {expect_body: ok}
`, nil, []string{
		`director.yaml:2: check_defaults.path: only for http and https checks, this one is tcp`,
		`director.yaml:6: vips[0].check.server_name: only for https checks, this one is http`,
		`director.yaml:6: vips[0].check.command: only for command checks, this one is http`,
		`director.yaml:9: vips[0].reals[0].check.expect_status: only for http and https checks, this one is tcp`,
	}},
	{"check values", `
interfaces: [{name: eth0}]
vips:
  - address: 10.99.0.100
    port: 80
    check: {type: smtp, method: POST, path: check.txt, expect_status: "2xx", start_down: maybe, port: 0}
    reals: [{address: 10.99.0.50}]
  - address: 10.99.0.101
    port: 80
    check: {type: http, method: HEAD, expect_body: OK}
    reals: [{address: 10.99.0.50}, {address: 10.99.0.51}]
`, nil, []string{
		`director.yaml:5: vips[0].check.type: "smtp": want command, http, https, none, tcp`,
		`director.yaml:5: vips[0].check.start_down: want true or false, not "maybe"`,
		`director.yaml:5: vips[0].check.port: 0 out of range 1..65535`,
		`director.yaml:5: vips[0].check.method: "POST": want GET, HEAD`,
		`director.yaml:5: vips[0].check.path: "check.txt" must start with /`,
		`director.yaml:5: vips[0].check.expect_status: status set "2xx": status code "2xx" is not a 3-digit number`,
		`director.yaml:9: vips[1].check.expect_body: a HEAD response has no body`,
	}},
	{"check port of an all-ports VIP", `
interfaces: [{name: eth0}]
check_defaults: {type: tcp}
vips:
  - address: 10.99.0.100
    port: all
    reals: [{address: 10.99.0.50}, {address: 10.99.0.51}]
  - address: 10.99.0.101
    port: 0
    check: {type: http}
    reals:
      - address: 10.99.0.50
      - {address: 10.99.0.51, check: {port: 8080}}
      - {address: 10.99.0.52, check: {rise: 3}}
`, nil, []string{
		`director.yaml:4: vips[0].check.port: required: the VIP serves every port`,
		`director.yaml:9: vips[1].check.port: required: the VIP serves every port`,
		`director.yaml:13: vips[1].reals[2].check.port: required: the VIP serves every port`,
	}},
	{"command check", `
interfaces: [{name: eth0}]
vips:
  - address: 10.99.0.100
    port: 80
    check: {type: command}
    reals: [{address: 10.99.0.50}]
  - address: 10.99.0.101
    port: 80
    check: {type: command, command: /bin/check}
    reals: [{address: 10.99.0.50}]
  - address: 10.99.0.102
    port: 80
    check: {type: command, command: []}
    reals: [{address: 10.99.0.50}]
  - address: 10.99.0.103
    port: 80
    check: {type: command, command: ["", x]}
    reals: [{address: 10.99.0.50}]
`, nil, []string{
		`director.yaml:5: vips[0].check.command: required for a command check`,
		`director.yaml:9: vips[1].check.command: want a list: [program, arguments...], not "/bin/check"`,
		`director.yaml:13: vips[2].check.command: empty command`,
		`director.yaml:17: vips[3].check.command: empty program name`,
	}},

	// Top-level settings.
	{"top-level values", `
interfaces: [{name: eth0}]
control_socket: ""
state_file: director.yaml
metrics: {address: "localhost:9110"}
hash_seed: 4294967296
sizes: {ring_size: 65536, flow_entries: 100, max_vips: 0, max_reals: 2000000}
vips:
  - address: 10.99.0.100
    port: 80
    reals: [{address: 10.99.0.50}]
`, nil, []string{
		`director.yaml:2: control_socket: empty path`,
		`director.yaml:3: state_file: is the configuration file itself`,
		`director.yaml:4: metrics.address: "localhost:9110": want address:port, e.g. 127.0.0.1:9110 or [::]:9110`,
		`director.yaml:5: hash_seed: 4294967296 out of range 0..4294967295`,
		`director.yaml:6: sizes.flow_entries: 100 out of range 1024..4294967295`,
		`director.yaml:6: sizes.max_vips: 0 out of range 1..65536`,
		`director.yaml:6: sizes.max_reals: 2000000 out of range 1..1048576`,
		`director.yaml:6: sizes.ring_size: 65536 is not a prime`,
	}},
	{"more than the maps hold", `
interfaces: [{name: eth0}]
sizes: {max_vips: 1, max_reals: 2}
vips:
  - address: 10.99.0.100
    port: 80
    reals: [{address: 10.99.0.50}, {address: 10.99.0.51}]
  - address: 10.99.0.101
    port: 80
    reals: [{address: 10.99.0.50}]
`, nil, []string{
		`director.yaml:4: vips: 2 VIPs, more than sizes.max_vips (1)`,
		`director.yaml:4: vips: 3 reals and sorry servers, more than sizes.max_reals (2)`,
	}},

	// VRRP.
	{"vrrp, as vrrp validates it", `
interfaces: [{name: eth0}]
vips:
  - address: 10.99.0.100
    port: 80
    reals: [{address: 10.99.0.50}]
vrrp:
  - name: v2
    virtual_router_id: 51
    version: 2
    advert_interval: 1500ms
    virtual_addresses: [10.99.0.100/32]
  - name: v3
    virtual_router_id: 52
    auth_pass: secret
    virtual_addresses: [10.99.0.100]
  - name: v6
    virtual_router_id: 53
    version: 2
    virtual_addresses: [fd00:99::100]
  - name: mixed
    virtual_router_id: 54
    virtual_addresses: [10.99.0.100, fd00:99::100]
  - name: peers
    virtual_router_id: 55
    virtual_addresses: [10.99.0.100]
    unicast_peers: [fd00:99::3]
  - name: none
    virtual_router_id: 56
  - virtual_router_id: 57
    virtual_addresses: [10.99.0.100]
`, nil, []string{
		`director.yaml:10: vrrp[0].advert_interval: 1.5s, VRRPv2 needs 1..255 whole seconds`,
		`director.yaml:14: vrrp[1].auth_pass: VRRPv3 has no authentication`,
		`director.yaml:18: vrrp[2].version: VRRPv2 is IPv4 only, use version 3 for fd00:99::100/128`,
		`director.yaml:22: vrrp[3].virtual_addresses: fd00:99::100/128: all addresses must be of one family`,
		`director.yaml:26: vrrp[4].unicast_peers: fd00:99::3 is not an address of the VIPs' family`,
		`director.yaml:27: vrrp[5].virtual_addresses: at least one address is needed`,
		`director.yaml:29: vrrp[6].name: must be set`,
	}},
	{"vrrp, ours", `
interfaces: [{name: eth0}, {name: eth1}]
vips:
  - address: 10.99.0.100
    port: 80
    interface: eth0
    reals: [{address: 10.99.0.50}]
vrrp:
  - name: VI_1
    interface: eth0
    virtual_router_id: 51
    virtual_addresses: [10.99.0.100/32]
    track_interfaces: [{name: eth0}, {name: eth1, weight: -10}, {name: eth0, weight: -20}]
  - name: VI_1
    interface: eth0
    virtual_router_id: 52
    virtual_addresses: [10.99.0.100/32]
  - name: VI_2
    interface: eth0
    virtual_router_id: 51
    virtual_addresses: [10.99.0.101/32]
  - name: VI_3
    virtual_router_id: 53
    virtual_addresses: [10.99.0.100/33, 10.99.0.101]
    track_scripts: [{command: [/bin/true], weight: 20}]
    track_agent: {weight: 10}
    garp_master_repeat: -1
`, StaticLinks{"eth0": topoLinks["eth0"], "eth1": nil}, []string{
		`director.yaml:12: vrrp[0].track_interfaces[2]: duplicate name "interface:eth0"`,
		`director.yaml:13: vrrp[1].name: "VI_1" is also the name of vrrp[0] (line 8)`,
		`director.yaml:19: vrrp[2].virtual_router_id: 51 on eth0 is also vrrp[0] (line 8)`,
		`director.yaml:23: vrrp[3].virtual_addresses[0]: "10.99.0.100/33" is not an address or address/prefix`,
		`director.yaml:24: vrrp[3].track_scripts[0].weight: 20: a failing track lowers the priority by -weight; positive weights are not supported`,
		`director.yaml:25: vrrp[3].track_agent.weight: 10: a failing track lowers the priority by -weight; positive weights are not supported`,
		`director.yaml:26: vrrp[3].garp_master_repeat: -1 out of range 0..10000`,
	}},
}

func TestBad(t *testing.T) {
	for _, c := range badCases {
		t.Run(c.name, func(t *testing.T) {
			links := c.links
			if links == nil {
				links = topoLinks
			}
			cfg, err := Parse("director.yaml", doc(c.src), links)
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("config %+v along with the error", cfg)
			}
			got := strings.Split(err.Error(), "\n")
			if !slices.Equal(got, c.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			if n := len(Errors(err)); n != len(got) {
				t.Errorf("Errors() has %d errors, the text %d lines", n, len(got))
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	cfg := parse(t, `
interfaces: [{name: eth0}]
vips:
  - address: 10.99.0.100
    port: 80
    reals: [{address: 10.99.0.50}]
`)
	want := Config{
		File:          "director.yaml",
		Interfaces:    []Interface{{Name: "eth0", XDPMode: loader.ModeAuto}},
		ControlSocket: DefaultControlSocket,
		StateFile:     "director.yaml.state",
		Sizes: loader.Sizes{RingSize: loader.DefaultRingSize, FlowEntries: loader.DefaultFlowEntries,
			MaxVIPs: loader.DefaultMaxVIPs, MaxReals: loader.DefaultMaxReals},
		VIPs: []VIP{{
			Name:      "10.99.0.100:80/tcp",
			Key:       loader.VIPKey{Addr: netip.MustParseAddr("10.99.0.100"), Port: 80, Proto: loader.TCP},
			Interface: "eth0",
			Scheduler: Maglev,
			Mode:      L4,
			AllDown:   director.KeepLast,
			Reals:     []Real{{Addr: netip.MustParseAddr("10.99.0.50"), Weight: 1}},
		}},
	}
	if !equalConfig(cfg, &want) {
		t.Errorf("got  %+v\nwant %+v", *cfg, want)
	}
	if got := cfg.VIPs[0].Reals[0].Spec(); !reflect.DeepEqual(got, director.RealSpec{Addr: netip.MustParseAddr("10.99.0.50"), Weight: 1, Healthy: true}) {
		t.Errorf("real spec %+v", got)
	}
	if _, ok, err := cfg.VIPs[0].Reals[0].Check.HealthTarget("x"); ok || err != nil {
		t.Errorf("a real without any check has a health target (%v)", err)
	}
}

func equalConfig(a, b *Config) bool {
	if a.File != b.File || !slices.Equal(a.Interfaces, b.Interfaces) || a.ControlSocket != b.ControlSocket ||
		a.StateFile != b.StateFile || a.Metrics != b.Metrics || a.HashSeed != b.HashSeed || a.Sizes != b.Sizes ||
		len(a.VIPs) != len(b.VIPs) || len(a.VRRP) != len(b.VRRP) {
		return false
	}
	for i := range a.VIPs {
		if !a.VIPs[i].Equal(&b.VIPs[i]) {
			return false
		}
	}
	return true
}

func TestGood(t *testing.T) {
	v4 := netip.MustParseAddr
	for _, c := range []struct {
		name  string
		src   string
		check func(t *testing.T, c *Config)
	}{
		{"top level", `
interfaces:
  - {name: eth0, xdp_mode: native}
  - {name: eth1, xdp_mode: generic}
control_socket: run/ctl.sock
state_file: /var/lib/director/state
metrics: {address: "[::]:9110"}
hash_seed: 0xdeadbeef
sizes: {ring_size: 251, flow_entries: 1024, max_vips: 4, max_reals: 16}
vips:
  - address: 10.99.0.100
    port: 80
    interface: eth1
    reals: [{address: 10.99.0.50}]
`, func(t *testing.T, c *Config) {
			if want := []Interface{{"eth0", loader.ModeNative}, {"eth1", loader.ModeGeneric}}; !slices.Equal(c.Interfaces, want) {
				t.Errorf("interfaces %v", c.Interfaces)
			}
			if c.ControlSocket != "/etc/director/run/ctl.sock" || c.StateFile != "/var/lib/director/state" {
				t.Errorf("paths %q %q", c.ControlSocket, c.StateFile)
			}
			if c.Metrics != netip.MustParseAddrPort("[::]:9110") || c.HashSeed != 0xdeadbeef {
				t.Errorf("metrics %v seed %#x", c.Metrics, c.HashSeed)
			}
			if c.Sizes != (loader.Sizes{RingSize: 251, FlowEntries: 1024, MaxVIPs: 4, MaxReals: 16}) {
				t.Errorf("sizes %+v", c.Sizes)
			}
			if c.VIPs[0].Interface != "eth1" {
				t.Errorf("VIP on %q", c.VIPs[0].Interface)
			}
		}},
		{"VIP settings", `
interfaces: [{name: eth0}]
vips:
  - name: dns
    address: fd00:99::100
    port: all
    protocol: udp
    scheduler: source
    on_all_down: sorry
    sorry_server: fd00:99::60
    reals: [{address: fd00:99::50, weight: 0}, {address: fd00:99::51, weight: 256}]
  - name: l7
    address: 10.99.0.100
    port: 443
    mode: local
`, func(t *testing.T, c *Config) {
			dns, l7 := &c.VIPs[0], &c.VIPs[1]
			wantSpec := director.ServiceSpec{
				Key:    loader.VIPKey{Addr: v4("fd00:99::100"), Port: 0, Proto: loader.UDP},
				Source: true, AllDown: director.Sorry, SorryServer: v4("fd00:99::60"),
			}
			if dns.ServiceSpec() != wantSpec {
				t.Errorf("spec %+v", dns.ServiceSpec())
			}
			if s, ok := dns.SorrySpec(); !ok || !reflect.DeepEqual(s, director.RealSpec{Addr: v4("fd00:99::60"), Weight: 1, Healthy: true, Sorry: true}) {
				t.Errorf("sorry %+v %v", s, ok)
			}
			if dns.Reals[0].Weight != 0 || dns.Reals[1].Weight != 256 {
				t.Errorf("weights %+v", dns.Reals)
			}
			if l7.ServiceSpec() != (director.ServiceSpec{Key: loader.VIPKey{Addr: v4("10.99.0.100"), Port: 443, Proto: loader.TCP}, Local: true}) {
				t.Errorf("local spec %+v", l7.ServiceSpec())
			}
			if len(l7.Reals) != 0 {
				t.Errorf("local VIP has reals")
			}
			if _, ok := c.VIP(dns.Key); !ok {
				t.Errorf("VIP(%v) not found", dns.Key)
			}
		}},
		{"aliases", `
interfaces: [{name: eth0}]
vips:
  - address: 10.99.0.100
    port: 80
    check: &web {type: http, path: /check.txt}
    reals: &pool
      - address: 10.99.0.50
      - address: 10.99.0.51
  - address: 10.99.0.100
    port: 8080
    check: *web
    reals: *pool
`, func(t *testing.T, c *Config) {
			if len(c.VIPs) != 2 || len(c.VIPs[1].Reals) != 2 || c.VIPs[1].Reals[1].Check.Target != netip.MustParseAddrPort("10.99.0.51:8080") {
				t.Errorf("VIPs %+v", c.VIPs)
			}
		}},
		{"null values are absent", `
interfaces: [{name: eth0, xdp_mode: }]
metrics:
vips:
  - address: 10.99.0.100
    port: 80
    check: ~
    reals: [{address: 10.99.0.50, weight: null}]
`, func(t *testing.T, c *Config) {
			if c.Metrics.IsValid() || c.VIPs[0].Reals[0].Weight != 1 || c.VIPs[0].Reals[0].Check.Type != NoCheck {
				t.Errorf("%+v", c)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			links := StaticLinks{"eth0": topoLinks["eth0"], "eth1": topoLinks["eth0"]}
			cfg, err := Parse("/etc/director/director.yaml", doc(c.src), links)
			if err != nil {
				t.Fatalf("unexpected error:\n%v", err)
			}
			c.check(t, cfg)
		})
	}
}

func TestCheckMerge(t *testing.T) {
	cfg := parse(t, `
interfaces: [{name: eth0}]
check_defaults: {interval: 5s, rise: 3, fall: 4}
vips:
  - address: 10.99.0.100
    port: 80
    check:
      type: http
      path: /check.txt
      host: www.example.com
      expect_status: 200,204
      interval: 2s
    reals:
      - address: 10.99.0.50
      - address: 10.99.0.51
        check: {port: 8080, fall: 9, expect_body: OK, start_down: true}
      - address: 10.99.0.52
        check: {type: tcp, timeout: 500ms}
      - address: 10.99.0.53
        check: {type: none}
      - address: 10.99.0.54
        check: {type: https, server_name: www.example.com, insecure_skip_verify: true}
      - address: 10.99.0.55
        check: {type: command, command: [/bin/chk, --deep]}
  - address: 10.99.0.101
    port: all
    reals:
      - address: 10.99.0.50
        check: {type: command, command: [/bin/chk]}
`)
	http := HTTPCheckSpec{Method: "GET", Path: "/check.txt", Host: "www.example.com",
		Expect: health.StatusSet{{Lo: 200, Hi: 200}, {Lo: 204, Hi: 204}}}
	base := Check{Type: HTTPCheck, Interval: 2 * time.Second, Timeout: 2 * time.Second, Rise: 3, Fall: 4, HTTP: http}
	at := func(a string, port uint16) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr(a), port) }
	with := func(f func(c *Check)) Check {
		c := base
		f(&c)
		return c
	}
	want := []Check{
		with(func(c *Check) { c.Target = at("10.99.0.50", 80) }),
		with(func(c *Check) {
			c.Target, c.Fall, c.StartDown = at("10.99.0.51", 8080), 9, true
			c.HTTP.ExpectBody = "OK"
		}),
		// The VIP's http keys are dropped: the real's check is a tcp one.
		{Type: TCPCheck, Target: at("10.99.0.52", 80), Interval: 2 * time.Second, Timeout: 500 * time.Millisecond, Rise: 3, Fall: 4},
		{},
		with(func(c *Check) {
			c.Type, c.Target = HTTPSCheck, at("10.99.0.54", 80)
			c.HTTP.ServerName, c.HTTP.InsecureSkipVerify = "www.example.com", true
		}),
		{Type: CommandCheck, Target: at("10.99.0.55", 80), Interval: 2 * time.Second, Timeout: 2 * time.Second,
			Rise: 3, Fall: 4, Command: []string{"/bin/chk", "--deep"}},
	}
	for i, r := range cfg.VIPs[0].Reals {
		if !r.Check.Equal(want[i]) {
			t.Errorf("real %v: check\n%+v\nwant\n%+v", r.Addr, r.Check, want[i])
		}
		if _, _, err := r.Check.HealthTarget(cfg.VIPs[0].HealthKey(r)); err != nil {
			t.Errorf("real %v: %v", r.Addr, err)
		}
	}
	if got := cfg.VIPs[0].Reals[1].Spec(); got.Healthy {
		t.Errorf("a real whose check starts down starts healthy")
	}
	// A command check of an all-ports VIP needs no port.
	r := cfg.VIPs[1].Reals[0]
	if r.Check.Target != at("10.99.0.50", 0) {
		t.Errorf("target %v", r.Check.Target)
	}
	tg, ok, err := r.Check.HealthTarget("k")
	if !ok || err != nil || tg.Rise != 3 || tg.Interval != 5*time.Second || tg.Timeout != 5*time.Second {
		t.Errorf("health target %+v %v %v", tg, ok, err)
	}
}

func TestVRRP(t *testing.T) {
	cfg := parse(t, `
interfaces: [{name: eth0}]
vips:
  - address: 10.99.0.100
    port: 80
    reals: [{address: 10.99.0.50}]
vrrp:
  - name: VI_1
    virtual_router_id: 51
    version: 2
    priority: 150
    advert_interval: 2s
    virtual_addresses: [10.99.0.100/24, 10.99.0.101]
    auth_pass: "1234"
    unicast_src_ip: 10.99.0.2
    unicast_peers: [10.99.0.3]
    nopreempt: true
    preempt_delay: 30s
    garp_master_repeat: 0
    garp_master_delay: 0
    garp_master_refresh: 1m
    track_interfaces: [{name: eth0}, {name: eth1, weight: -10}]
    track_scripts:
      - {name: chk, command: [/bin/chk, a], interval: 3s, timeout: 1s, weight: -20, rise: 2, fall: 3}
    track_agent: {weight: -50}
    notify: [/bin/notify, x]
    notify_timeout: 5s
  - name: VI_6
    interface: eth0
    virtual_router_id: 51
    virtual_addresses: [fd00:99::100]
`)
	want := vrrp.Config{
		Name: "VI_1", Interface: "eth0", VRID: 51, Version: 2, Priority: 150, AdvertInterval: 2 * time.Second,
		VIPs:     []netip.Prefix{netip.MustParsePrefix("10.99.0.100/24"), netip.MustParsePrefix("10.99.0.101/32")},
		AuthPass: "1234", Unicast: true, Peers: []netip.Addr{netip.MustParseAddr("10.99.0.3")},
		SourceAddr: netip.MustParseAddr("10.99.0.2"), NoPreempt: true, PreemptDelay: 30 * time.Second,
		GARPRepeat: -1, GARPDelay: -1, GARPRefresh: time.Minute,
		Tracks: []vrrp.Track{
			{Check: vrrp.InterfaceCheck{Interface: "eth0"}, Weight: 0},
			{Check: vrrp.InterfaceCheck{Interface: "eth1"}, Weight: 10},
			{Check: vrrp.CommandCheck{CheckName: "chk", Command: []string{"/bin/chk", "a"}, Interval: 3 * time.Second,
				Timeout: time.Second, Rise: 2, Fall: 3}, Weight: 20},
		},
		Notify: []string{"/bin/notify", "x"}, NotifyTimeout: 5 * time.Second,
	}
	in := cfg.VRRP[0]
	if !in.TrackAgent || in.AgentWeight != 50 {
		t.Errorf("agent track %v %d", in.TrackAgent, in.AgentWeight)
	}
	if !reflect.DeepEqual(in.Config, want) {
		t.Errorf("got  %+v\nwant %+v", in.Config, want)
	}
	built := in.Build(agentCheck{})
	if n := len(built.Tracks); n != 4 || built.Tracks[3] != (vrrp.Track{Check: agentCheck{}, Weight: 50}) {
		t.Errorf("built tracks %+v", built.Tracks)
	}
	if len(in.Tracks) != 3 {
		t.Errorf("Build changed the instance's tracks")
	}
	// Defaults come from vrrp's Validate.
	v6 := cfg.VRRP[1].Config
	if v6.Version != 3 || v6.Priority != vrrp.DefaultPriority || v6.AdvertInterval != vrrp.DefaultAdvertInterval ||
		v6.GARPRepeat != vrrp.DefaultGARPRepeat || v6.GARPDelay != vrrp.DefaultGARPDelay || v6.Unicast || cfg.VRRP[1].TrackAgent {
		t.Errorf("defaults %+v", v6)
	}
}

func TestNoLinks(t *testing.T) {
	// Without Links the subnet check is skipped: a file can be checked away
	// from its host.
	_, err := Parse("director.yaml", doc(`
interfaces: [{name: eth9}]
vips:
  - address: 192.0.2.100
    port: 80
    reals: [{address: 198.51.100.1}]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
}

func TestErrors(t *testing.T) {
	_, err := Parse("d.yaml", doc(`
interfaces: [{name: eth0}]
vips:
  - address: 10.99.0.100
    port: 80
    reals: [{address: 10.99.0.50}, {address: 10.99.0.50}]
bogus: 1
`), topoLinks)
	want := []*Error{
		{File: "d.yaml", Line: 5, Key: "vips[0].reals[1].address", Msg: "10.99.0.50 is also vips[0].reals[0] (line 5)"},
		{File: "d.yaml", Line: 6, Key: "bogus", Msg: "unknown key"},
	}
	got := Errors(err)
	if len(got) != len(want) {
		t.Fatalf("got %v", err)
	}
	for i := range got {
		if *got[i] != *want[i] {
			t.Errorf("error %d: %+v, want %+v", i, *got[i], *want[i])
		}
	}
}

func TestCompare(t *testing.T) {
	old := parse(t, `
interfaces: [{name: eth0}]
vips:
  - name: web
    address: 10.99.0.100
    port: 80
    reals: [{address: 10.99.0.50}, {address: 10.99.0.51}, {address: 10.99.0.52}]
  - name: gone
    address: 10.99.0.101
    port: 80
    reals: [{address: 10.99.0.50}]
  - name: same
    address: 10.99.0.102
    port: 80
    reals: [{address: 10.99.0.50}]
vrrp:
  - {name: VI_1, virtual_router_id: 1, virtual_addresses: [10.99.0.100]}
  - {name: VI_2, virtual_router_id: 2, virtual_addresses: [10.99.0.101]}
`)
	if d := Compare(old, old); !d.Empty() {
		t.Errorf("a config differs from itself: %+v", d)
	}
	next := parse(t, `
interfaces: [{name: eth0}]
hash_seed: 1
vips:
  - name: same
    address: 10.99.0.102
    port: 80
    reals: [{address: 10.99.0.50}]
  - name: web
    address: 10.99.0.100
    port: 80
    scheduler: source
    reals: [{address: 10.99.0.53}, {address: 10.99.0.52, weight: 2}, {address: 10.99.0.51}]
  - name: new
    address: 10.99.0.103
    port: 80
    reals: [{address: 10.99.0.50}]
vrrp:
  - {name: VI_1, virtual_router_id: 1, virtual_addresses: [10.99.0.100], priority: 150}
  - {name: VI_3, virtual_router_id: 3, virtual_addresses: [10.99.0.101]}
`)
	a := netip.MustParseAddr
	key := func(s string) loader.VIPKey { return loader.VIPKey{Addr: a(s), Port: 80, Proto: loader.TCP} }
	want := Diff{
		AddedVIPs:   []loader.VIPKey{key("10.99.0.103")},
		RemovedVIPs: []loader.VIPKey{key("10.99.0.101")},
		ChangedVIPs: []VIPDiff{{
			Key:          key("10.99.0.100"),
			Service:      true,
			AddedReals:   []netip.Addr{a("10.99.0.53")},
			RemovedReals: []netip.Addr{a("10.99.0.50")},
			ChangedReals: []netip.Addr{a("10.99.0.52")},
		}},
		Restart:     []string{"hash_seed"},
		AddedVRRP:   []string{"VI_3"},
		RemovedVRRP: []string{"VI_2"},
		ChangedVRRP: []string{"VI_1"},
	}
	if d := Compare(old, next); !reflect.DeepEqual(d, want) {
		t.Errorf("diff\n%+v\nwant\n%+v", d, want)
	}
}
