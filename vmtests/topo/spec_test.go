package topo

import (
	"net/netip"
	"strings"
	"testing"
)

func TestPlanAddresses(t *testing.T) {
	s := DRSpec(2, 1, 3)
	s.Hosts[0].Addrs = 3
	p, err := makePlan(s)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"cl1":  {"10.99.0.10", "fd00:99::10", "10.99.0.11", "fd00:99::11", "10.99.0.12", "fd00:99::12"},
		"cl2":  {"10.99.0.13", "fd00:99::13"},
		"dir1": {"10.99.0.2", "fd00:99::2"},
		"rs1":  {"10.99.0.50", "fd00:99::50"},
		"rs3":  {"10.99.0.52", "fd00:99::52"},
	}
	macs := map[string]string{"cl1": "02:99:00:00:00:0a", "dir1": "02:99:00:00:00:02", "rs3": "02:99:00:00:00:34"}
	for _, h := range p.hosts {
		if w, ok := want[h.Name]; ok {
			var got []string
			for i := range h.addrs4 {
				got = append(got, h.addrs4[i].String(), h.addrs6[i].String())
			}
			if strings.Join(got, " ") != strings.Join(w, " ") {
				t.Errorf("%s: addresses %v, want %v", h.Name, got, w)
			}
		}
		if w, ok := macs[h.Name]; ok && h.mac.String() != w {
			t.Errorf("%s: MAC %s, want %s", h.Name, h.mac, w)
		}
	}
	if got := p.spec.VIPs; len(got) != 2 || got[0] != netip.MustParseAddr("10.99.0.100") || got[1] != netip.MustParseAddr("fd00:99::100") {
		t.Errorf("default VIPs %v", got)
	}
}

func TestPlanErrors(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"no hosts", Spec{}, "no hosts"},
		{"bad name", Spec{Hosts: []HostSpec{{Name: "Client-1", Role: RoleClient}}}, `name "Client-1"`},
		{"long name", Spec{Hosts: []HostSpec{{Name: "director1", Role: RoleDirector}}}, "1 to 8 characters"},
		{"duplicate", Spec{Hosts: []HostSpec{{Name: "a", Role: RoleClient}, {Name: "a", Role: RoleReal}}}, `"a": duplicate`},
		{"unknown role", Spec{Hosts: []HostSpec{{Name: "a", Role: "router"}}}, `unknown role "router"`},
		{"pool exhausted", DRSpec(0, 9, 0), "only addresses .2 to .9"},
		{"bad route", Spec{Hosts: []HostSpec{{Name: "a", Role: RoleClient, Routes: []Route{{Dst: netip.MustParsePrefix("10.1.0.0/16"), Via: "gw"}}}}}, `unknown host "gw"`},
		{"bad subnet", Spec{Hosts: DRSpec(1, 0, 0).Hosts, Subnet4: netip.MustParsePrefix("10.0.0.0/16")}, "want an IPv4 /24"},
		{"bad mode", Spec{Hosts: DRSpec(1, 0, 0).Hosts, XDPMode: 7}, "unknown XDP mode 7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := makePlan(tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("makePlan = %v, want error containing %q", err, tc.want)
			}
		})
	}
}
