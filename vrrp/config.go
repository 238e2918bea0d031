package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Config is one VRRP instance, named after keepalived's vrrp_instance keys.
type Config struct {
	Name      string // instance name, passed to notify commands
	Interface string // interface adverts are sent on and VIPs added to
	VRID      uint8  // virtual_router_id, 1..255
	Version   int    // 2 or 3; 0 means 3
	// Priority is 1..255; 255 means the address owner. 0 means 100.
	Priority uint8
	// AdvertInterval is advert_int: whole seconds for VRRPv2, a multiple of
	// 10ms up to 40.95s for VRRPv3. 0 means 1s.
	AdvertInterval time.Duration
	// VIPs are the virtual addresses with their prefix length, all of one
	// family. IPv6 needs VRRPv3.
	VIPs []netip.Prefix
	// AuthPass is VRRPv2 auth_type PASS's auth_pass (at most 8 bytes);
	// empty means no authentication.
	AuthPass string

	// Unicast sends adverts to Peers instead of the multicast group
	// (unicast_peer). Peers must not be empty then.
	Unicast bool
	Peers   []netip.Addr
	// SourceAddr is unicast_src_ip. Unset: the interface's primary address
	// (IPv4) or its link-local address (IPv6).
	SourceAddr netip.Addr

	NoPreempt    bool          // nopreempt; preempt is the default
	PreemptDelay time.Duration // preempt_delay

	// GARPRepeat is garp_master_repeat: gratuitous ARPs / unsolicited NAs
	// per VIP sent on becoming master. 0 means 5; negative means none.
	GARPRepeat int
	// GARPDelay is garp_master_delay: a second burst this long after
	// becoming master. 0 means 5s; negative means none.
	GARPDelay time.Duration
	// GARPRefresh is garp_master_refresh: a burst this often while master.
	// 0 means never.
	GARPRefresh time.Duration

	// Tracks lower the priority by their weight while failing; a failing
	// track with weight 0 forces FAULT.
	Tracks []Track

	// Notify is a command run on every transition with the arguments
	// "INSTANCE" <name> <MASTER|BACKUP|FAULT|STOP> <priority> appended,
	// as keepalived's notify does. Empty means none.
	Notify []string
	// NotifyTimeout bounds each notify command; 0 means 10s.
	NotifyTimeout time.Duration
}

// Defaults.
const (
	DefaultPriority       = 100
	DefaultAdvertInterval = time.Second
	DefaultGARPRepeat     = 5
	DefaultGARPDelay      = 5 * time.Second
	DefaultNotifyTimeout  = 10 * time.Second
)

// ConfigError names the instance and key that are wrong.
type ConfigError struct {
	Instance, Key, Msg string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("vrrp instance %q: %s: %s", e.Instance, e.Key, e.Msg)
}

// Validate checks the configuration and returns it with defaults filled in.
func (c Config) Validate() (Config, error) {
	bad := func(key, format string, args ...any) (Config, error) {
		return Config{}, &ConfigError{Instance: c.Name, Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	if c.Name == "" {
		return bad("name", "must be set")
	}
	if c.Interface == "" {
		return bad("interface", "must be set")
	}
	if c.VRID == 0 {
		return bad("virtual_router_id", "must be 1..255")
	}
	if c.Version == 0 {
		c.Version = 3
	}
	if c.Version != 2 && c.Version != 3 {
		return bad("version", "%d, must be 2 or 3", c.Version)
	}
	if c.Priority == 0 {
		c.Priority = DefaultPriority
	}
	if c.AdvertInterval == 0 {
		c.AdvertInterval = DefaultAdvertInterval
	}
	switch c.Version {
	case 2:
		if c.AdvertInterval%time.Second != 0 || c.AdvertInterval < time.Second || c.AdvertInterval > 255*time.Second {
			return bad("advert_int", "%v, VRRPv2 needs 1..255 whole seconds", c.AdvertInterval)
		}
	case 3:
		if c.AdvertInterval%(10*time.Millisecond) != 0 || c.AdvertInterval < 10*time.Millisecond || c.AdvertInterval > maxV3Ticks*10*time.Millisecond {
			return bad("advert_int", "%v, VRRPv3 needs a multiple of 10ms, 10ms..40.95s", c.AdvertInterval)
		}
		if c.AuthPass != "" {
			return bad("auth_pass", "VRRPv3 has no authentication")
		}
	}
	if len(c.AuthPass) > authDataLen {
		return bad("auth_pass", "longer than %d bytes", authDataLen)
	}
	if len(c.VIPs) == 0 {
		return bad("virtual_ipaddress", "at least one address is needed")
	}
	if len(c.VIPs) > maxAddrCount {
		return bad("virtual_ipaddress", "%d addresses, at most %d", len(c.VIPs), maxAddrCount)
	}
	v6 := c.VIPs[0].Addr().Is6()
	for _, p := range c.VIPs {
		if !p.IsValid() || p.Addr().Is4In6() {
			return bad("virtual_ipaddress", "%v is not a valid address/prefix", p)
		}
		if p.Addr().Is6() != v6 {
			return bad("virtual_ipaddress", "%v: all addresses must be of one family", p)
		}
	}
	if v6 && c.Version == 2 {
		return bad("version", "VRRPv2 is IPv4 only, use version 3 for %v", c.VIPs[0])
	}
	if c.Unicast && len(c.Peers) == 0 {
		return bad("unicast_peer", "unicast mode with no peers")
	}
	if !c.Unicast && len(c.Peers) > 0 {
		return bad("unicast_peer", "peers listed but unicast mode is off")
	}
	for _, p := range c.Peers {
		if !p.IsValid() || p.Is6() != v6 {
			return bad("unicast_peer", "%v is not an address of the VIPs' family", p)
		}
	}
	if c.SourceAddr.IsValid() && c.SourceAddr.Is6() != v6 {
		return bad("unicast_src_ip", "%v is not of the VIPs' family", c.SourceAddr)
	}
	if c.PreemptDelay < 0 {
		return bad("preempt_delay", "negative")
	}
	if c.GARPRepeat == 0 {
		c.GARPRepeat = DefaultGARPRepeat
	}
	if c.GARPDelay == 0 {
		c.GARPDelay = DefaultGARPDelay
	}
	if c.GARPRefresh < 0 {
		return bad("garp_master_refresh", "negative")
	}
	if c.NotifyTimeout == 0 {
		c.NotifyTimeout = DefaultNotifyTimeout
	}
	names := map[string]bool{}
	for i, t := range c.Tracks {
		if t.Check == nil {
			return bad(fmt.Sprintf("track[%d]", i), "no check")
		}
		if t.Weight < 0 || t.Weight > 254 {
			return bad(fmt.Sprintf("track[%d]", i), "weight %d, must be 0..254", t.Weight)
		}
		n := t.Check.Name()
		if names[n] {
			return bad(fmt.Sprintf("track[%d]", i), "duplicate name %q", n)
		}
		names[n] = true
	}
	return c, nil
}

// IPv6 reports whether the instance is an IPv6 one.
func (c Config) IPv6() bool { return len(c.VIPs) > 0 && c.VIPs[0].Addr().Is6() }

// params are what received adverts are checked against.
func (c Config) params() Params {
	p := Params{Version: c.Version, VRID: c.VRID, Interval: c.AdvertInterval}
	if c.Version == 2 && c.AuthPass != "" {
		p.AuthType = AuthPass
		p.Auth = AuthData(c.AuthPass)
	}
	return p
}

var errNoSource = errors.New("vrrp: no source address")
