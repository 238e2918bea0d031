package config

import (
	"math"
	"net/netip"
	"time"

	"github.com/directorlb/director/director"
	"github.com/directorlb/director/director/health"
	"github.com/directorlb/director/loader"
	"gopkg.in/yaml.v3"
)

// The raw configuration: what the file says, each value typed and checked
// on its own, with its position. validate.go checks how the values fit
// together and builds the Config.

type rawConfig struct {
	pos
	interfaces    opt[struct{}]
	ifaces        []rawInterface
	controlSocket opt[string]
	stateFile     opt[string]
	metrics       opt[rawMetrics]
	hashSeed      opt[int64]
	sizes         rawSizes
	checkDefaults *rawCheck
	vipsList      opt[struct{}]
	vips          []rawVIP
	vrrps         []rawVRRP
	l7            *rawL7
	stats         *rawStats
}

type rawInterface struct {
	pos
	name    opt[string]
	xdpMode opt[loader.AttachMode]
}

type rawMetrics struct {
	address opt[string]
}

type rawSizes struct {
	ringSize, flowEntries, maxVIPs, maxReals opt[int64]
}

type rawVIP struct {
	pos
	name        opt[string]
	address     opt[netip.Addr]
	port        opt[int64] // 0: all ports
	protocol    opt[loader.Proto]
	scheduler   opt[Scheduler]
	mode        opt[Mode]
	iface       opt[string]
	onAllDown   opt[director.AllDownPolicy]
	sorryServer opt[netip.Addr]
	check       *rawCheck
	realsList   opt[struct{}]
	reals       []rawReal
}

type rawReal struct {
	pos
	address opt[netip.Addr]
	weight  opt[int64]
	check   *rawCheck
}

type rawCheck struct {
	pos
	typ          opt[CheckType]
	interval     opt[time.Duration]
	timeout      opt[time.Duration]
	fastInterval opt[time.Duration]
	downInterval opt[time.Duration]
	rise, fall   opt[int64]
	startDown    opt[bool]
	port         opt[int64]
	// http and https
	method     opt[string]
	path       opt[string]
	host       opt[string]
	expect     opt[health.StatusSet]
	expectBody opt[string]
	// https
	serverName opt[string]
	insecure   opt[bool]
	// command
	command opt[[]string]
}

type rawVRRP struct {
	pos
	keys             map[string]int // line of each key given
	name             opt[string]
	iface            opt[string]
	vrid             opt[int64]
	version          opt[int64]
	priority         opt[int64]
	advertInterval   opt[time.Duration]
	virtualAddresses opt[struct{}]
	vips             []opt[netip.Prefix]
	authPass         opt[string]
	unicastSrcIP     opt[netip.Addr]
	unicastPeers     opt[[]opt[netip.Addr]]
	nopreempt        opt[bool]
	preemptDelay     opt[time.Duration]
	garpRepeat       opt[int64]
	garpDelay        opt[time.Duration]
	garpRefresh      opt[time.Duration]
	trackIfaces      []rawTrackIface
	trackScripts     []rawTrackScript
	trackAgent       *rawTrackAgent
	notify           opt[[]string]
	notifyTimeout    opt[time.Duration]
}

type rawTrackIface struct {
	pos
	name   opt[string]
	weight opt[int64]
}

type rawTrackScript struct {
	pos
	name     opt[string]
	command  opt[[]string]
	interval opt[time.Duration]
	timeout  opt[time.Duration]
	weight   opt[int64]
	rise     opt[int64]
	fall     opt[int64]
}

type rawTrackAgent struct {
	pos
	weight opt[int64]
}

var (
	xdpModes = map[string]loader.AttachMode{
		"auto": loader.ModeAuto, "native": loader.ModeNative, "generic": loader.ModeGeneric,
	}
	protocols  = map[string]loader.Proto{"tcp": loader.TCP, "udp": loader.UDP}
	schedulers = map[string]Scheduler{"maglev": Maglev, "source": Source}
	modes      = map[string]Mode{"l4": L4, "local": Local}
	policies   = map[string]director.AllDownPolicy{
		"keep": director.KeepLast, "drop": director.Drop, "sorry": director.Sorry,
	}
	checkTypes = map[string]CheckType{
		"none": NoCheck, "tcp": TCPCheck, "http": HTTPCheck, "https": HTTPSCheck, "command": CommandCheck,
	}
)

// weight bounds of tracks: keepalived's, negative lowers the priority.
const minTrackWeight, maxTrackWeight = -254, 254

func parseRoot(w *walker, n *yaml.Node) *rawConfig {
	f := w.mapping(n, pos{}, "interfaces", "control_socket", "state_file", "metrics",
		"hash_seed", "sizes", "check_defaults", "vips", "vrrp", "l7", "stats")
	if f == nil {
		return nil
	}
	c := &rawConfig{pos: f.pos}
	c.interfaces = f.list("interfaces", func(n *yaml.Node, p pos) {
		if g := w.mapping(n, p, "name", "xdp_mode"); g != nil {
			c.ifaces = append(c.ifaces, rawInterface{pos: g.pos, name: g.str("name"), xdpMode: enum(g, "xdp_mode", xdpModes)})
		}
	})
	c.controlSocket = f.str("control_socket")
	c.stateFile = f.str("state_file")
	if n, p := f.at("metrics"); n != nil {
		c.metrics.pos = p
		if g := w.mapping(n, p, "address"); g != nil {
			c.metrics.v.address = g.str("address")
			c.metrics.set = true
		} else {
			c.metrics.bad = true
		}
	}
	c.hashSeed = f.integer("hash_seed", 0, math.MaxUint32)
	if n, p := f.at("sizes"); n != nil {
		if g := w.mapping(n, p, "ring_size", "flow_entries", "max_vips", "max_reals"); g != nil {
			c.sizes = rawSizes{
				ringSize:    g.integer("ring_size", 3, math.MaxUint32),
				flowEntries: g.integer("flow_entries", 1024, math.MaxUint32),
				maxVIPs:     g.integer("max_vips", 1, 1<<16),
				maxReals:    g.integer("max_reals", 1, 1<<20),
			}
		}
	}
	if n, p := f.at("check_defaults"); n != nil {
		c.checkDefaults = parseCheck(w, n, p)
	}
	c.vipsList = f.list("vips", func(n *yaml.Node, p pos) {
		if v := parseVIP(w, n, p); v != nil {
			c.vips = append(c.vips, *v)
		}
	})
	f.list("vrrp", func(n *yaml.Node, p pos) {
		if v := parseVRRP(w, n, p); v != nil {
			c.vrrps = append(c.vrrps, *v)
		}
	})
	if n, p := f.at("l7"); n != nil {
		c.l7 = parseL7(w, n, p)
	}
	if n, p := f.at("stats"); n != nil {
		c.stats = parseStats(w, n, p)
	}
	return c
}

func parseVIP(w *walker, n *yaml.Node, p pos) *rawVIP {
	f := w.mapping(n, p, "name", "address", "port", "protocol", "scheduler", "mode",
		"interface", "on_all_down", "sorry_server", "check", "reals")
	if f == nil {
		return nil
	}
	v := &rawVIP{
		pos:         f.pos,
		name:        f.str("name"),
		address:     f.addr("address"),
		protocol:    enum(f, "protocol", protocols),
		scheduler:   enum(f, "scheduler", schedulers),
		mode:        enum(f, "mode", modes),
		iface:       f.str("interface"),
		onAllDown:   enum(f, "on_all_down", policies),
		sorryServer: f.addr("sorry_server"),
	}
	if pn, pp := f.at("port"); pn != nil && pn.Kind == yaml.ScalarNode && pn.Tag != "!!int" {
		v.port.pos = pp
		if pn.Value == "all" {
			v.port.set = true
		} else {
			w.errorf(pp, "%s: want a port number or all", describe(pn))
			v.port.bad = true
		}
	} else {
		v.port = f.integer("port", 0, 65535)
	}
	if cn, cp := f.at("check"); cn != nil {
		v.check = parseCheck(w, cn, cp)
	}
	v.realsList = f.list("reals", func(n *yaml.Node, p pos) {
		g := w.mapping(n, p, "address", "weight", "check")
		if g == nil {
			return
		}
		r := rawReal{pos: g.pos, address: g.addr("address"), weight: g.integer("weight", 0, director.MaxWeight)}
		if cn, cp := g.at("check"); cn != nil {
			r.check = parseCheck(w, cn, cp)
		}
		v.reals = append(v.reals, r)
	})
	return v
}

var checkKeys = []string{
	"type", "interval", "timeout", "fast_interval", "down_interval", "rise", "fall", "start_down", "port",
	"method", "path", "host", "expect_status", "expect_body", "server_name", "insecure_skip_verify",
	"command",
}

// Keys that belong to some check types only.
var typeKeys = map[string][]CheckType{
	"method":               {HTTPCheck, HTTPSCheck},
	"path":                 {HTTPCheck, HTTPSCheck},
	"host":                 {HTTPCheck, HTTPSCheck},
	"expect_status":        {HTTPCheck, HTTPSCheck},
	"expect_body":          {HTTPCheck, HTTPSCheck},
	"server_name":          {HTTPSCheck},
	"insecure_skip_verify": {HTTPSCheck},
	"command":              {CommandCheck},
}

// parseCheck reads a check mapping; nil if it is not one.
func parseCheck(w *walker, n *yaml.Node, p pos) *rawCheck {
	f := w.mapping(n, p, checkKeys...)
	if f == nil {
		return nil
	}
	c := &rawCheck{
		pos:          f.pos,
		typ:          enum(f, "type", checkTypes),
		interval:     f.duration("interval", true),
		timeout:      f.duration("timeout", true),
		fastInterval: f.duration("fast_interval", true),
		downInterval: f.duration("down_interval", true),
		rise:         f.integer("rise", 1, 1000),
		fall:         f.integer("fall", 1, 1000),
		startDown:    f.boolean("start_down"),
		port:         f.integer("port", 1, 65535),
		method:       enum(f, "method", map[string]string{"GET": "GET", "HEAD": "HEAD"}),
		path:         f.str("path"),
		host:         f.str("host"),
		expectBody:   f.str("expect_body"),
		serverName:   f.str("server_name"),
		insecure:     f.boolean("insecure_skip_verify"),
		command:      f.argv("command"),
	}
	if c.path.set && (c.path.v == "" || c.path.v[0] != '/') {
		w.errorf(c.path.pos, "%q must start with /", c.path.v)
		c.path.set, c.path.bad = false, true
	}
	es := f.str("expect_status")
	c.expect.pos, c.expect.bad = es.pos, es.bad
	if es.set {
		set, err := health.ParseStatusSet(es.v)
		if err != nil {
			w.errorf(es.pos, "%s", trimHealth(err))
			c.expect.bad = true
		} else {
			c.expect.v, c.expect.set = set, true
		}
	}
	return c
}

func trimHealth(err error) string {
	s := err.Error()
	const prefix = "health: "
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):]
	}
	return s
}

func parseVRRP(w *walker, n *yaml.Node, p pos) *rawVRRP {
	f := w.mapping(n, p, "name", "interface", "virtual_router_id", "version", "priority",
		"advert_interval", "virtual_addresses", "auth_pass", "unicast_src_ip", "unicast_peers",
		"nopreempt", "preempt_delay", "garp_master_repeat", "garp_master_delay", "garp_master_refresh",
		"track_interfaces", "track_scripts", "track_agent", "notify", "notify_timeout")
	if f == nil {
		return nil
	}
	v := &rawVRRP{
		pos:            f.pos,
		keys:           f.keys,
		name:           f.str("name"),
		iface:          f.str("interface"),
		vrid:           f.integer("virtual_router_id", 1, 255),
		version:        f.integer("version", 2, 3),
		priority:       f.integer("priority", 1, 255),
		advertInterval: f.duration("advert_interval", true),
		authPass:       f.str("auth_pass"),
		unicastSrcIP:   f.addr("unicast_src_ip"),
		unicastPeers:   f.addrList("unicast_peers"),
		nopreempt:      f.boolean("nopreempt"),
		preemptDelay:   f.duration("preempt_delay", false),
		garpRepeat:     f.integer("garp_master_repeat", 0, 10000),
		garpDelay:      f.duration("garp_master_delay", false),
		garpRefresh:    f.duration("garp_master_refresh", false),
		notify:         f.argv("notify"),
		notifyTimeout:  f.duration("notify_timeout", true),
	}
	vipsBad := false
	v.virtualAddresses = f.list("virtual_addresses", func(n *yaml.Node, p pos) {
		if n = w.deref(n); n == nil {
			vipsBad = true
			return
		}
		if n.Kind != yaml.ScalarNode || isNull(n) {
			w.errorf(p, "want an address or address/prefix, not %s", describe(n))
			vipsBad = true
			return
		}
		o := opt[netip.Prefix]{pos: p}
		if a, err := netip.ParseAddr(n.Value); err == nil && a.Zone() == "" {
			o.v, o.set = netip.PrefixFrom(a, a.BitLen()), true
		} else if pf, err := netip.ParsePrefix(n.Value); err == nil {
			o.v, o.set = pf, true
		} else {
			w.errorf(p, "%q is not an address or address/prefix", n.Value)
			vipsBad = true
			return
		}
		v.vips = append(v.vips, o)
	})
	if vipsBad {
		v.virtualAddresses.set, v.virtualAddresses.bad = false, true
	}
	f.list("track_interfaces", func(n *yaml.Node, p pos) {
		if g := w.mapping(n, p, "name", "weight"); g != nil {
			v.trackIfaces = append(v.trackIfaces, rawTrackIface{pos: g.pos, name: g.str("name"),
				weight: g.integer("weight", minTrackWeight, maxTrackWeight)})
		}
	})
	f.list("track_scripts", func(n *yaml.Node, p pos) {
		g := w.mapping(n, p, "name", "command", "interval", "timeout", "weight", "rise", "fall")
		if g == nil {
			return
		}
		v.trackScripts = append(v.trackScripts, rawTrackScript{
			pos:      g.pos,
			name:     g.str("name"),
			command:  g.argv("command"),
			interval: g.duration("interval", true),
			timeout:  g.duration("timeout", true),
			weight:   g.integer("weight", minTrackWeight, maxTrackWeight),
			rise:     g.integer("rise", 1, 1000),
			fall:     g.integer("fall", 1, 1000),
		})
	})
	if an, ap := f.at("track_agent"); an != nil {
		if g := w.mapping(an, ap, "weight"); g != nil {
			v.trackAgent = &rawTrackAgent{pos: g.pos, weight: g.integer("weight", minTrackWeight, maxTrackWeight)}
		}
	}
	return v
}
