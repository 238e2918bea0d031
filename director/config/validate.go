package config

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/directorlb/director/director"
	"github.com/directorlb/director/director/health"
	"github.com/directorlb/director/director/maglev"
	"github.com/directorlb/director/loader"
	"github.com/directorlb/director/vrrp"
)

// required reports o if it was not given at all.
func required[T any](r *report, o opt[T]) bool {
	if o.absent() {
		r.errorf(o.pos, "required")
	}
	return o.set
}

// pick returns the last value set in os, or def.
func pick[T any](def T, os ...opt[T]) T {
	for i := len(os) - 1; i >= 0; i-- {
		if os[i].set {
			return os[i].v
		}
	}
	return def
}

type validator struct {
	*report
	raw   *rawConfig
	links Links
	kind  kind
	cfg   *Config
	// ifaces: position of each interface by name.
	ifaces map[string]pos
	// prefixes: the subnets of each interface, once read; nil if unreadable.
	prefixes map[string][]netip.Prefix
}

func validate(r *report, raw *rawConfig, file string, links Links, k kind) *Config {
	v := &validator{report: r, raw: raw, links: links, kind: k, cfg: &Config{File: file},
		ifaces: map[string]pos{}, prefixes: map[string][]netip.Prefix{}}
	if k == forL7 {
		v.l7Only()
	}
	v.top(file)
	v.vips()
	v.vrrps()
	// A VIP of mode local goes to this host's stack: to the l7 section's
	// frontend that binds it, or to another local server (an nginx).
	v.cfg.L7 = v.l7(raw.l7)
	v.stats()
	return v.cfg
}

// l7Only rejects, for `director l7`, the sections only the agent runs, and
// requires the l7 section.
func (v *validator) l7Only() {
	raw := v.raw
	for _, o := range []struct {
		given bool
		p     pos
		key   string
	}{
		{raw.interfaces.set || raw.interfaces.bad, raw.interfaces.pos, "interfaces"},
		{raw.vipsList.set || raw.vipsList.bad, raw.vipsList.pos, "vips"},
		{len(raw.vrrps) > 0, raw.pos.key("vrrp"), "vrrp"},
		{raw.hashSeed.set, raw.hashSeed.pos, "hash_seed"},
		{raw.checkDefaults != nil, raw.pos.key("check_defaults"), "check_defaults"},
	} {
		if o.given {
			v.errorf(o.p, "%s is the agent's (director run), not director l7's", o.key)
		}
	}
	if raw.l7 == nil {
		v.errorf(raw.pos.key("l7"), "required: director l7 runs the l7 section")
	}
}

func (v *validator) top(file string) {
	raw, c := v.raw, v.cfg
	if v.kind == forAgent && (raw.interfaces.absent() || (raw.interfaces.set && len(raw.ifaces) == 0)) {
		v.errorf(raw.interfaces.pos, "at least one interface is needed")
	}
	for _, ri := range raw.ifaces {
		if !required(v.report, ri.name) {
			continue
		}
		name := ri.name.v
		if err := checkIfaceName(name); err != "" {
			v.errorf(ri.name.pos, "%q %s", name, err)
			continue
		}
		if first, dup := v.ifaces[name]; dup {
			v.errorf(ri.name.pos, "%q is also %s (line %d)", name, first.path, first.line)
			continue
		}
		v.ifaces[name] = ri.name.pos
		c.Interfaces = append(c.Interfaces, Interface{Name: name, XDPMode: ri.xdpMode.or(loader.ModeAuto)})
	}

	c.ControlSocket = v.path(raw.controlSocket, DefaultControlSocket)
	c.StateFile = v.path(raw.stateFile, file+DefaultStateSuffix)
	if c.StateFile == filepath.Clean(file) {
		v.errorf(raw.stateFile.pos, "is the configuration file itself")
	}

	if raw.metrics.set && required(v.report, raw.metrics.v.address) {
		a := raw.metrics.v.address
		ap, err := netip.ParseAddrPort(a.v)
		switch {
		case err != nil || ap.Addr().Zone() != "":
			v.errorf(a.pos, "%q: want address:port, e.g. 127.0.0.1:9110 or [::]:9110", a.v)
		case ap.Port() == 0:
			v.errorf(a.pos, "%q: port 0", a.v)
		default:
			c.Metrics = ap
		}
	}
	c.HashSeed = uint32(raw.hashSeed.or(0))

	s := raw.sizes
	c.Sizes = loader.Sizes{
		RingSize:    uint32(s.ringSize.or(loader.DefaultRingSize)),
		FlowEntries: uint32(s.flowEntries.or(loader.DefaultFlowEntries)),
		MaxVIPs:     uint32(s.maxVIPs.or(loader.DefaultMaxVIPs)),
		MaxReals:    uint32(s.maxReals.or(loader.DefaultMaxReals)),
	}
	if s.ringSize.set && !maglev.IsPrime(c.Sizes.RingSize) {
		v.errorf(s.ringSize.pos, "%d is not a prime", c.Sizes.RingSize)
	}
	if d := raw.checkDefaults; d != nil {
		v.checkLevel(d, TCPCheck)
	}
}

// path is the file path o gives, relative to the config file's folder,
// or def if o is not given; an empty path is an error.
func (v *validator) path(o opt[string], def string) string {
	if !o.set {
		return def
	}
	if o.v == "" {
		v.errorf(o.pos, "empty path")
		return def
	}
	if filepath.IsAbs(o.v) {
		return filepath.Clean(o.v)
	}
	return filepath.Join(filepath.Dir(v.cfg.File), o.v)
}

// checkIfaceName returns what is wrong with an interface name, or "".
func checkIfaceName(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > 15:
		return "is longer than 15 bytes"
	case strings.ContainsAny(name, "/: \t\n") || name == "." || name == "..":
		return "is not an interface name"
	}
	return ""
}

// prefixesOf returns the subnets directly connected to iface; ok is false if
// they cannot be known (no Links, or reading them failed: reported once).
func (v *validator) prefixesOf(iface string, p pos) ([]netip.Prefix, bool) {
	if v.links == nil {
		return nil, false
	}
	if ps, done := v.prefixes[iface]; done {
		return ps, ps != nil
	}
	ps, err := v.links.Prefixes(iface)
	if err != nil {
		if ip, ok := v.ifaces[iface]; ok {
			p = ip
		}
		v.errorf(p, "%q: %v", iface, err)
		v.prefixes[iface] = nil
		return nil, false
	}
	out := make([]netip.Prefix, 0, len(ps))
	for _, pf := range ps {
		out = append(out, pf.Masked())
	}
	v.prefixes[iface] = out
	return out, true
}

// onLink reports a, a real or sorry server, if it is in no subnet of iface.
func (v *validator) onLink(a opt[netip.Addr], iface string) {
	ps, ok := v.prefixesOf(iface, a.pos)
	if !ok {
		return
	}
	if err := OnLink(ps, iface, a.v); err != nil {
		v.errorf(a.pos, "%v", err)
	}
}

// OnLink says why a cannot be a real of a VIP on iface when it is in none of
// iface's directly connected subnets, prefixes: direct routing rewrites MACs
// only, so the real must be on the same link. nil when it is.
func OnLink(prefixes []netip.Prefix, iface string, a netip.Addr) error {
	var names []string
	for _, p := range prefixes {
		if p.Contains(a) {
			return nil
		}
		if p.Addr().Is4() == a.Is4() {
			names = append(names, p.Masked().String())
		}
	}
	have := "it has none of this family"
	if len(names) > 0 {
		have = "its subnets: " + strings.Join(names, ", ")
	}
	return fmt.Errorf("%v is in no subnet directly connected to %s (%s); direct routing needs the real on the same link",
		a, iface, have)
}

func (v *validator) vips() {
	raw, c := v.raw, v.cfg
	keys := map[loader.VIPKey]pos{}
	names := map[string]pos{}
	nreals := 0
	for i := range raw.vips {
		rv := &raw.vips[i]
		vip, ok := v.vip(rv)
		if !ok {
			continue
		}
		if first, dup := keys[vip.Key]; dup {
			v.errorf(rv.address.pos, "%v is also %s (line %d)", vip.Key, first.path, first.line)
			continue
		}
		keys[vip.Key] = rv.pos
		if first, dup := names[vip.Name]; dup {
			v.errorf(rv.name.pos, "%q is also the name of %s (line %d)", vip.Name, first.path, first.line)
			continue
		}
		names[vip.Name] = rv.pos
		nreals += len(vip.Reals)
		if vip.SorryServer.IsValid() {
			nreals++
		}
		c.VIPs = append(c.VIPs, vip)
	}
	if len(c.VIPs) > int(c.Sizes.MaxVIPs) {
		v.errorf(raw.vipsList.pos, "%d VIPs, more than sizes.max_vips (%d)", len(c.VIPs), c.Sizes.MaxVIPs)
	}
	if nreals > int(c.Sizes.MaxReals) {
		v.errorf(raw.vipsList.pos, "%d reals and sorry servers, more than sizes.max_reals (%d)", nreals, c.Sizes.MaxReals)
	}
}

// vip validates one VIP; ok is false if it has no valid key. The rest is
// checked all the same, to report every problem at once.
func (v *validator) vip(rv *rawVIP) (VIP, bool) {
	haveAddr := required(v.report, rv.address)
	if rv.port.absent() {
		v.errorf(rv.port.pos, "required: a port number, or all")
	}
	ok := haveAddr && rv.port.set
	vip := VIP{
		Key:       loader.VIPKey{Addr: rv.address.v, Port: uint16(rv.port.v), Proto: rv.protocol.or(loader.TCP)},
		Scheduler: rv.scheduler.or(Maglev),
		Mode:      rv.mode.or(L4),
		AllDown:   rv.onAllDown.or(director.KeepLast),
	}
	vip.Name = rv.name.or(vip.Key.String())
	if rv.name.set && strings.TrimSpace(rv.name.v) == "" {
		v.errorf(rv.name.pos, "empty name")
	}

	switch {
	case rv.iface.set:
		if _, known := v.ifaces[rv.iface.v]; !known {
			v.errorf(rv.iface.pos, "%q is not in interfaces", rv.iface.v)
		}
		vip.Interface = rv.iface.v
	case len(v.cfg.Interfaces) == 1:
		vip.Interface = v.cfg.Interfaces[0].Name
	case len(v.cfg.Interfaces) > 1 && !rv.iface.bad:
		v.errorf(rv.iface.pos, "required when there are several interfaces")
	}
	_, knownIface := v.ifaces[vip.Interface]

	if vip.Mode == Local {
		for _, o := range []struct {
			given bool
			pos
		}{{!rv.realsList.absent(), rv.realsList.pos}, {!rv.onAllDown.absent(), rv.onAllDown.pos}, {!rv.sorryServer.absent(), rv.sorryServer.pos}} {
			if o.given {
				v.errorf(o.pos, "a local VIP has no reals: it is handed to this host's stack")
			}
		}
		if rv.check != nil {
			v.errorf(rv.check.pos, "a local VIP has no reals to check")
		}
		return vip, ok
	}

	if rv.realsList.absent() || (rv.realsList.set && len(rv.reals) == 0) {
		v.errorf(rv.realsList.pos, "at least one real is needed")
	}
	family := func(a opt[netip.Addr]) bool {
		if !haveAddr {
			return true
		}
		if a.v.Is4() != vip.Key.Addr.Is4() {
			v.errorf(a.pos, "%v is not of the VIP's family", a.v)
			return false
		}
		if a.v == vip.Key.Addr {
			v.errorf(a.pos, "%v is the VIP itself", a.v)
			return false
		}
		return true
	}
	switch {
	case vip.AllDown == director.Sorry && rv.sorryServer.absent():
		v.errorf(rv.sorryServer.pos, "required with on_all_down: sorry")
	case vip.AllDown != director.Sorry && rv.sorryServer.set:
		v.errorf(rv.sorryServer.pos, "only with on_all_down: sorry")
	case rv.sorryServer.set && family(rv.sorryServer):
		vip.SorryServer = rv.sorryServer.v
		if knownIface {
			v.onLink(rv.sorryServer, vip.Interface)
		}
	}

	if rv.check != nil {
		v.checkLevel(rv.check, pick(TCPCheck, v.defaultsType()))
	}
	seen := map[netip.Addr]pos{}
	problems := map[string]bool{} // reported at the VIP level
	for i := range rv.reals {
		rr := &rv.reals[i]
		if !required(v.report, rr.address) {
			continue
		}
		a := rr.address
		if !family(a) {
			continue
		}
		if first, dup := seen[a.v]; dup {
			v.errorf(a.pos, "%v is also %s (line %d)", a.v, first.path, first.line)
			continue
		}
		if a.v == vip.SorryServer {
			v.errorf(a.pos, "%v is also the sorry server", a.v)
			continue
		}
		seen[a.v] = rr.pos
		if knownIface {
			v.onLink(a, vip.Interface)
		}
		real := Real{Addr: a.v, Weight: uint32(rr.weight.or(DefaultWeight))}
		real.Check = v.realCheck(v.raw.checkDefaults, rv, rr, real.Addr, problems)
		vip.Reals = append(vip.Reals, real)
	}
	return vip, ok
}

func (v *validator) defaultsType() opt[CheckType] {
	if d := v.raw.checkDefaults; d != nil {
		return d.typ
	}
	return opt[CheckType]{}
}

// typedKeys lists a check's keys that belong to some types only.
func (c *rawCheck) typedKeys() []struct {
	key   string
	given bool
	pos
} {
	type k = struct {
		key   string
		given bool
		pos
	}
	g := func(set, bad bool) bool { return set || bad }
	return []k{
		{"method", g(c.method.set, c.method.bad), c.method.pos},
		{"path", g(c.path.set, c.path.bad), c.path.pos},
		{"host", g(c.host.set, c.host.bad), c.host.pos},
		{"expect_status", g(c.expect.set, c.expect.bad), c.expect.pos},
		{"expect_body", g(c.expectBody.set, c.expectBody.bad), c.expectBody.pos},
		{"server_name", g(c.serverName.set, c.serverName.bad), c.serverName.pos},
		{"insecure_skip_verify", g(c.insecure.set, c.insecure.bad), c.insecure.pos},
		{"command", g(c.command.set, c.command.bad), c.command.pos},
	}
}

// checkLevel reports the keys of c that do not belong to its type: its own,
// or the one it inherits.
func (v *validator) checkLevel(c *rawCheck, inherited CheckType) {
	t := c.typ.or(inherited)
	if c.typ.bad {
		return
	}
	for _, k := range c.typedKeys() {
		if k.given && !slices.Contains(typeKeys[k.key], t) {
			var names []string
			for _, tt := range typeKeys[k.key] {
				names = append(names, tt.String())
			}
			v.errorf(k.pos, "only for %s checks, this one is %v", strings.Join(names, " and "), t)
		}
	}
}

// realCheck merges the checks that apply to a real: built-in defaults,
// check_defaults, the VIP's, the real's own. A problem of the merged check
// is reported at the real's own check if it has one, else once at the VIP's.
func (v *validator) realCheck(defaults *rawCheck, rv *rawVIP, rr *rawReal, addr netip.Addr, problems map[string]bool) Check {
	var levels []*rawCheck
	for _, c := range []*rawCheck{defaults, rv.check, rr.check} {
		if c != nil {
			levels = append(levels, c)
		}
	}
	if len(levels) == 0 {
		return Check{}
	}
	var inherited CheckType = TCPCheck
	if rr.check != nil {
		prev := TCPCheck
		for _, c := range levels[:len(levels)-1] {
			prev = c.typ.or(prev)
		}
		inherited = prev
		v.checkLevel(rr.check, inherited)
	}
	typ := TCPCheck
	for _, c := range levels {
		typ = c.typ.or(typ)
	}
	// Keys of other types are dropped: a real whose check is a tcp one
	// ignores the VIP's path. checkLevel reported those given at a level
	// of another type.
	var (
		port                          = opt[int64]{}
		method, path, host, body, sni opt[string]
		expect                        opt[health.StatusSet]
		insecure                      opt[bool]
		command                       opt[[]string]
		commandBad                    bool
		chk                           Check
	)
	for _, c := range levels {
		chk.Interval = c.interval.or(chk.Interval)
		chk.Timeout = c.timeout.or(chk.Timeout)
		chk.FastInterval = c.fastInterval.or(chk.FastInterval)
		chk.DownInterval = c.downInterval.or(chk.DownInterval)
		chk.Rise = int(c.rise.or(int64(chk.Rise)))
		chk.Fall = int(c.fall.or(int64(chk.Fall)))
		chk.StartDown = c.startDown.or(chk.StartDown)
		if c.port.set {
			port = c.port
		}
		for _, p := range []struct{ dst, src *opt[string] }{
			{&method, &c.method}, {&path, &c.path}, {&host, &c.host}, {&body, &c.expectBody}, {&sni, &c.serverName},
		} {
			if p.src.set {
				*p.dst = *p.src
			}
		}
		if c.expect.set {
			expect = c.expect
		}
		if c.insecure.set {
			insecure = c.insecure
		}
		if c.command.set {
			command = c.command
		}
		commandBad = commandBad || c.command.bad
	}
	chk.Type = typ
	if typ == NoCheck {
		return Check{}
	}
	if chk.Interval == 0 {
		chk.Interval = health.DefaultInterval
	}
	if chk.Timeout == 0 {
		chk.Timeout = chk.Interval
	}
	if chk.Rise == 0 {
		chk.Rise = health.DefaultRise
	}
	if chk.Fall == 0 {
		chk.Fall = health.DefaultFall
	}
	p := rv.port.v
	if port.set {
		p = port.v
	}
	chk.Target = netip.AddrPortFrom(addr, uint16(p))

	at := func(key, format string, args ...any) {
		var where pos
		switch {
		case rr.check != nil:
			where = rr.check.pos.key(key)
		case rv.check != nil:
			where = rv.check.pos.key(key)
		default:
			where = rv.pos.key("check").key(key)
		}
		if rr.check == nil {
			k := where.path + "\x00" + format
			if problems[k] {
				return
			}
			problems[k] = true
		}
		v.errorf(where, format, args...)
	}
	switch typ {
	case TCPCheck, HTTPCheck, HTTPSCheck:
		if p == 0 {
			at("port", "required: the VIP serves every port")
		}
	}
	switch typ {
	case HTTPCheck, HTTPSCheck:
		chk.HTTP = HTTPCheckSpec{
			Method:     method.or("GET"),
			Path:       path.or("/"),
			Host:       host.v,
			Expect:     expect.or(health.DefaultExpect),
			ExpectBody: body.v,
		}
		if typ == HTTPSCheck {
			chk.HTTP.ServerName, chk.HTTP.InsecureSkipVerify = sni.v, insecure.v
		}
		if chk.HTTP.Method == "HEAD" && chk.HTTP.ExpectBody != "" {
			at("expect_body", "a HEAD response has no body")
		}
	case CommandCheck:
		if !command.set && !commandBad {
			at("command", "required for a command check")
		}
		chk.Command = command.v
	}
	return chk
}

// agentCheck stands for the agent's own health while vrrp validates an
// instance: its name must be unique among the tracks.
type agentCheck struct{}

func (agentCheck) Name() string                         { return "agent" }
func (agentCheck) Watch(context.Context, func(ok bool)) {}
func (v *validator) ifaceDefault() (string, bool) {
	if len(v.cfg.Interfaces) == 1 {
		return v.cfg.Interfaces[0].Name, true
	}
	return "", false
}

// vrrpKeys maps the keys vrrp.ConfigError names to ours.
var vrrpKeys = map[string]string{
	"advert_int":        "advert_interval",
	"virtual_ipaddress": "virtual_addresses",
	"unicast_peer":      "unicast_peers",
}

func (v *validator) vrrps() {
	names := map[string]pos{}
	type router struct {
		iface string
		vrid  int64
		v6    bool
	}
	routers := map[router]pos{}
	for i := range v.raw.vrrps {
		rv := &v.raw.vrrps[i]
		inst, ok := v.vrrp(rv)
		dup := false
		if rv.name.set {
			if first, seen := names[rv.name.v]; seen {
				v.errorf(rv.name.pos, "%q is also the name of %s (line %d)", rv.name.v, first.path, first.line)
				dup = true
			} else {
				names[rv.name.v] = rv.pos
			}
		}
		iface := rv.iface.v
		if !rv.iface.set {
			iface, _ = v.ifaceDefault()
		}
		if rv.vrid.set && len(rv.vips) > 0 {
			rk := router{iface, rv.vrid.v, rv.vips[0].v.Addr().Is6()}
			if first, seen := routers[rk]; seen {
				v.errorf(rv.vrid.pos, "%d on %s is also %s (line %d)", rv.vrid.v, iface, first.path, first.line)
				dup = true
			} else {
				routers[rk] = rv.pos
			}
		}
		if ok && !dup {
			v.cfg.VRRP = append(v.cfg.VRRP, inst)
		}
	}
}

// trackWeight turns a keepalived weight (negative: lower the priority by
// that much while failing; 0: FAULT) into vrrp's.
func (v *validator) trackWeight(o opt[int64]) (int, bool) {
	if o.set && o.v > 0 {
		v.errorf(o.pos, "%d: a failing track lowers the priority by -weight; positive weights are not supported", o.v)
		return 0, false
	}
	return int(-o.v), !o.bad
}

func (v *validator) vrrp(rv *rawVRRP) (VRRPInstance, bool) {
	c := vrrp.Config{
		Name:           rv.name.v,
		Interface:      rv.iface.v,
		VRID:           uint8(rv.vrid.v),
		Version:        int(rv.version.v),
		Priority:       uint8(rv.priority.v),
		AdvertInterval: rv.advertInterval.v,
		AuthPass:       rv.authPass.v,
		SourceAddr:     rv.unicastSrcIP.v,
		NoPreempt:      rv.nopreempt.v,
		PreemptDelay:   rv.preemptDelay.v,
		GARPRefresh:    rv.garpRefresh.v,
		Notify:         rv.notify.v,
		NotifyTimeout:  rv.notifyTimeout.v,
	}
	// Every malformed value was reported already: vrrp's Validate sees
	// only the rest, so its first complaint is a new one.
	bad := false
	for _, b := range []bool{rv.name.bad, rv.iface.bad, rv.vrid.bad, rv.version.bad, rv.priority.bad,
		rv.advertInterval.bad, rv.authPass.bad, rv.unicastSrcIP.bad, rv.unicastPeers.bad, rv.nopreempt.bad,
		rv.preemptDelay.bad, rv.garpRepeat.bad, rv.garpDelay.bad, rv.garpRefresh.bad, rv.notify.bad,
		rv.notifyTimeout.bad, rv.virtualAddresses.bad} {
		bad = bad || b
	}
	if !rv.iface.set && !rv.iface.bad {
		if name, ok := v.ifaceDefault(); ok {
			c.Interface = name
		}
	}
	if c.Interface != "" {
		if err := checkIfaceName(c.Interface); err != "" {
			v.errorf(rv.iface.pos, "%q %s", c.Interface, err)
			bad = true
		} else if rv.iface.set {
			v.prefixesOf(c.Interface, rv.iface.pos)
		}
	}
	for _, p := range rv.vips {
		c.VIPs = append(c.VIPs, p.v)
	}
	for _, p := range rv.unicastPeers.v {
		c.Peers = append(c.Peers, p.v)
	}
	c.Unicast = len(c.Peers) > 0
	switch {
	case rv.garpRepeat.set && rv.garpRepeat.v == 0:
		c.GARPRepeat = -1
	default:
		c.GARPRepeat = int(rv.garpRepeat.v)
	}
	switch {
	case rv.garpDelay.set && rv.garpDelay.v == 0:
		c.GARPDelay = -1
	default:
		c.GARPDelay = rv.garpDelay.v
	}

	var trackPos []pos
	for _, t := range rv.trackIfaces {
		w, ok := v.trackWeight(t.weight)
		if !required(v.report, t.name) || !ok {
			bad = true
			continue
		}
		if e := checkIfaceName(t.name.v); e != "" {
			v.errorf(t.name.pos, "%q %s", t.name.v, e)
			bad = true
			continue
		}
		c.Tracks = append(c.Tracks, vrrp.Track{Check: vrrp.InterfaceCheck{Interface: t.name.v}, Weight: w})
		trackPos = append(trackPos, t.pos)
	}
	for _, t := range rv.trackScripts {
		w, ok := v.trackWeight(t.weight)
		if !required(v.report, t.command) || !ok || t.name.bad || t.interval.bad || t.timeout.bad || t.rise.bad || t.fall.bad {
			bad = true
			continue
		}
		c.Tracks = append(c.Tracks, vrrp.Track{Check: vrrp.CommandCheck{
			CheckName: t.name.v,
			Command:   t.command.v,
			Interval:  t.interval.v,
			Timeout:   t.timeout.v,
			Rise:      int(t.rise.v),
			Fall:      int(t.fall.v),
		}, Weight: w})
		trackPos = append(trackPos, t.pos)
	}
	inst := VRRPInstance{}
	if a := rv.trackAgent; a != nil {
		w, ok := v.trackWeight(a.weight)
		if !ok {
			bad = true
		}
		inst.TrackAgent, inst.AgentWeight = true, w
		c.Tracks = append(c.Tracks, vrrp.Track{Check: agentCheck{}, Weight: w})
		trackPos = append(trackPos, a.pos)
	}
	if bad {
		return VRRPInstance{}, false
	}
	valid, err := c.Validate()
	if err != nil {
		v.vrrpError(rv, trackPos, err)
		return VRRPInstance{}, false
	}
	if inst.TrackAgent {
		valid.Tracks = valid.Tracks[:len(valid.Tracks)-1]
	}
	inst.Config = valid
	return inst, true
}

// vrrpError reports an error of vrrp's Validate at the key it names.
func (v *validator) vrrpError(rv *rawVRRP, trackPos []pos, err error) {
	var ce *vrrp.ConfigError
	if !errors.As(err, &ce) {
		v.errorf(rv.pos, "%v", err)
		return
	}
	key := ce.Key
	if k, ok := vrrpKeys[key]; ok {
		key = k
	}
	if rest, ok := strings.CutPrefix(key, "track["); ok {
		if n, err := strconv.Atoi(strings.TrimSuffix(rest, "]")); err == nil && n >= 0 && n < len(trackPos) {
			v.errorf(trackPos[n], "%s", ce.Msg)
			return
		}
	}
	p := rv.pos.key(key)
	if l, ok := rv.keys[key]; ok {
		p.line = l
	}
	v.errorf(p, "%s", ce.Msg)
}
