// Package config reads the agent's configuration: one YAML file, parsed
// strictly, then validated into the types the agent runs (netip addresses,
// time.Duration, loader.VIPKey, director.ServiceSpec and RealSpec, a merged
// health check per real, vrrp.Config validated by vrrp itself).
//
// Parsing is strict: an unknown key, a key given twice, a value of the wrong
// type is an error. Every problem is reported, not only the first, each as
// "file:line: key.path: message" (see Error); a file with any problem gives
// no Config, so the agent does not start, and on reload keeps the config it
// runs.
//
// Parse works on the file's bytes alone, but for one check: a real (or
// sorry server) must be in a subnet directly connected to its VIP's
// interface, for direct routing only rewrites the destination MAC. Those
// subnets come from a Links: SystemLinks asks the kernel, StaticLinks is a
// fixed table; nil skips the check.
//
// # The file
//
//	interfaces:                 # required, at least one
//	  - name: eth0
//	    xdp_mode: auto          # auto | native | generic
//	control_socket: /run/director/director.sock
//	state_file: <config>.state  # ctl's changes; relative paths are taken
//	                            # relative to the config file's directory
//	metrics: { address: "127.0.0.1:9110" }  # absent: no metrics
//	hash_seed: 0                # 0..2^32-1; equal on both directors of a pair
//	sizes:                      # the maps' dimensions, fixed at creation
//	  ring_size: 65537          # a prime
//	  flow_entries: 1000000     # >= 1024
//	  max_vips: 512             # 1..65536
//	  max_reals: 4096           # 1..1048576 (reals and sorry servers)
//	check_defaults: <check>     # under every VIP's check
//	vips:
//	  - name: web               # default: the key, "10.99.0.100:80/tcp"
//	    address: 10.99.0.100    # required
//	    port: 80                # required: 0..65535, 0 or all: every port
//	    protocol: tcp           # tcp | udp
//	    scheduler: maglev       # maglev | source
//	    mode: l4                # l4 | local (handed to the L7 tier here; no
//	                            # reals, check, on_all_down or sorry_server)
//	    interface: eth0         # required if there are several interfaces
//	    on_all_down: keep       # keep | drop | sorry
//	    sorry_server: 10.99.0.99   # with on_all_down: sorry only, on the link
//	    check: <check>
//	    reals:                  # l4: at least one; unique addresses of the
//	      - address: 10.99.0.11 # VIP's family, on the interface's link
//	        weight: 1           # 0..256
//	        check: <check>      # merged over the VIP's
//	vrrp:
//	  - name: VI_1              # required, unique
//	    interface: eth0         # default: the only interface
//	    virtual_router_id: 51   # required, 1..255
//	    version: 3              # 2 | 3
//	    priority: 100           # 1..255
//	    advert_interval: 1s
//	    virtual_addresses: [10.99.0.100/32]   # one family; a bare address is /32, /128
//	    auth_pass: ""           # VRRPv2 only
//	    unicast_src_ip: 10.99.0.2
//	    unicast_peers: [10.99.0.3]   # unicast when not empty
//	    nopreempt: false
//	    preempt_delay: 0s
//	    garp_master_repeat: 5   # 0: none
//	    garp_master_delay: 5s   # 0: none
//	    garp_master_refresh: 0s # 0: never
//	    track_interfaces: [{ name: eth0, weight: 0 }]
//	    track_scripts: [{ name: chk, command: [/bin/chk, arg], interval: 1s,
//	                      timeout: 1s, weight: -20, rise: 1, fall: 1 }]
//	    track_agent: { weight: -60 }   # the agent's own health
//	    notify: [/usr/local/bin/notify]
//	    notify_timeout: 10s
//	stats:                      # the stats page; absent: none
//	  address: 127.0.0.1:8404   # required
//	  uri: /stats               # a path; URI;csv and URI;json for scripts
//	  refresh: 10s              # 0: the page does not reload itself
//	  realm: director stats     # basic-auth realm
//	  hide_version: false
//	  show_node: false
//	  users:                    # required, at least one, unique names
//	    - { name: admin, password: secret, admin: true }
//	  tls: { cert: stats.crt, key: stats.key }   # both; relative: beside the file
//
// Track weights are keepalived's: a failing track lowers the priority by
// -weight; 0 puts the instance in FAULT.
//
// A <check> is
//
//	type: tcp                   # none | tcp | http | https | command
//	interval: 2s                # > 0
//	timeout: 2s                 # default: the interval
//	fast_interval: 1s           # default: the interval
//	down_interval: 5s           # default: the interval
//	rise: 2                     # 1..1000
//	fall: 3                     # 1..1000
//	start_down: false           # keepalived's alpha
//	port: 80                    # default: the VIP's; required if that is 0
//	method: GET                 # http, https: GET | HEAD
//	path: /                     # http, https
//	host: www.example.com       # http, https: the Host header
//	expect_status: "200-399"    # http, https
//	expect_body: ""             # http, https (not with HEAD)
//	server_name: ""             # https: SNI and the name verified
//	insecure_skip_verify: false # https
//	command: [/bin/chk, arg]    # command: argv, no shell; gets DIRECTOR_TARGET
//
// A real's check is merged key by key: the built-in defaults, then
// check_defaults, then the VIP's check, then the real's own; keys that do
// not belong to the resulting type are dropped (a real whose check is a tcp
// one ignores the VIP's path). A key is an error where it is given under a
// check of another type. A VIP with no check anywhere has its reals taken as
// always up; type none turns checks off for a VIP or a real.
//
// A null value (key: or key: ~) is the same as leaving the key out. Anchors
// and aliases work; merge keys (<<) are not supported.
package config
