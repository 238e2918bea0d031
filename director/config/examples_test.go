package config

import (
	"net/netip"
	"path/filepath"
	"testing"
)

// topoLinks is what a director of vmtests/topo sees on its interface.
var topoLinks = StaticLinks{"eth0": {
	netip.MustParsePrefix("10.99.0.0/24"),
	netip.MustParsePrefix("fd00:99::/64"),
}}

// TestExamples loads every file in configs/ and builds every health check
// they describe.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no example configurations found")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if filepath.Base(f) == "proxy.yaml" { // director l7's
				cfg, err := LoadL7(f)
				if err != nil {
					t.Fatal(err)
				}
				for _, b := range cfg.L7.Backends {
					for _, s := range b.Servers {
						if _, _, err := s.Check.HealthTarget(b.Name + "/" + s.Name); err != nil {
							t.Errorf("%s/%s: %v", b.Name, s.Name, err)
						}
					}
				}
				return
			}
			cfg, err := Load(f, topoLinks)
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.VIPs) == 0 {
				t.Error("no VIPs")
			}
			for _, v := range cfg.VIPs {
				for _, r := range v.Reals {
					if _, _, err := r.Check.HealthTarget(v.HealthKey(r)); err != nil {
						t.Errorf("%s: %v", v.HealthKey(r), err)
					}
				}
			}
			for _, in := range cfg.VRRP {
				if _, err := in.Build(agentCheck{}).Validate(); err != nil {
					t.Errorf("vrrp %s: %v", in.Name, err)
				}
			}
		})
	}
}
