package vrrp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	v6 := netip.MustParsePrefix("fd00::1/64")
	tests := []struct {
		name string
		mod  func(*Config)
		err  string // empty: valid
	}{
		{"defaults", func(c *Config) {}, ""},
		{"no name", func(c *Config) { c.Name = "" }, `instance "": name: must be set`},
		{"no interface", func(c *Config) { c.Interface = "" }, "interface: must be set"},
		{"vrid 0", func(c *Config) { c.VRID = 0 }, "virtual_router_id"},
		{"version 4", func(c *Config) { c.Version = 4 }, "version: 4"},
		{"v2 sub-second", func(c *Config) { c.Version = 2; c.AdvertInterval = 500 * time.Millisecond }, "advert_int"},
		{"v3 5ms", func(c *Config) { c.AdvertInterval = 5 * time.Millisecond }, "advert_int"},
		{"v3 100ms", func(c *Config) { c.AdvertInterval = 100 * time.Millisecond }, ""},
		{"v3 auth", func(c *Config) { c.AuthPass = "x" }, "auth_pass: VRRPv3"},
		{"v2 long pass", func(c *Config) { c.Version = 2; c.AuthPass = "123456789" }, "auth_pass: longer"},
		{"v2 pass", func(c *Config) { c.Version = 2; c.AuthPass = "12345678" }, ""},
		{"no vips", func(c *Config) { c.VIPs = nil }, "virtual_ipaddress"},
		{"mixed vips", func(c *Config) { c.VIPs = append(c.VIPs, v6) }, "one family"},
		{"v2 ipv6", func(c *Config) { c.Version = 2; c.VIPs = []netip.Prefix{v6} }, "VRRPv2 is IPv4 only"},
		{"unicast no peers", func(c *Config) { c.Unicast = true }, "unicast_peer: unicast mode with no peers"},
		{"peers without unicast", func(c *Config) { c.Peers = []netip.Addr{netip.MustParseAddr("10.0.0.2")} }, "unicast mode is off"},
		{"peer family", func(c *Config) { c.Unicast = true; c.Peers = []netip.Addr{netip.MustParseAddr("fd00::2")} }, "unicast_peer"},
		{"source family", func(c *Config) { c.SourceAddr = netip.MustParseAddr("fd00::2") }, "unicast_src_ip"},
		{"track nil", func(c *Config) { c.Tracks = []Track{{}} }, "track[0]: no check"},
		{"track weight", func(c *Config) { c.Tracks = []Track{{Check: fakeCheck("a"), Weight: 300}} }, "weight 300"},
		{"track dup", func(c *Config) { c.Tracks = []Track{{Check: fakeCheck("a")}, {Check: fakeCheck("a")}} }, "duplicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig()
			tt.mod(&c)
			got, err := c.Validate()
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got.Version == 0 || got.Priority == 0 || got.AdvertInterval == 0 || got.GARPRepeat == 0 {
					t.Fatalf("defaults not filled: %+v", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
}
