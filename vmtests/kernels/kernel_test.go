package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestSeriesPattern(t *testing.T) {
	match := map[string][]string{
		"6.1":  {"linux-image-6.1.0-56-amd64", "linux-image-6.1.0-100-amd64"},
		"6.12": {"linux-image-6.12.117+deb12-amd64", "linux-image-6.12.90+deb12.1-amd64", "linux-image-6.12.38+deb13-amd64"},
		"5.10": {"linux-image-5.10.0-46-amd64"},
	}
	noMatch := map[string][]string{
		"6.1": {
			"linux-image-6.1.0-56-amd64-unsigned", "linux-image-6.1.0-56-cloud-amd64",
			"linux-image-6.1.0-56-rt-amd64", "linux-image-6.1.0-56-amd64-dbg",
			"linux-image-6.12.117+deb12-amd64", "linux-image-amd64", "linux-image-6.10.0-1-amd64",
		},
		"6.12": {"linux-image-6.12-amd64", "linux-image-6.12.117+deb12-cloud-amd64", "linux-image-6.12.117+deb12-amd64-unsigned", "linux-image-6.1.0-56-amd64"},
	}
	for series, names := range match {
		for _, n := range names {
			if !seriesPattern(series).MatchString(n) {
				t.Errorf("%s should match %s", series, n)
			}
		}
	}
	for series, names := range noMatch {
		for _, n := range names {
			if seriesPattern(series).MatchString(n) {
				t.Errorf("%s should not match %s", series, n)
			}
		}
	}
}

func TestParseKernelSpec(t *testing.T) {
	s, err := parseKernelSpec("6.12")
	if err != nil || s.pattern == nil || s.deb != "" {
		t.Fatalf("6.12: %+v %v", s, err)
	}
	s, err = parseKernelSpec("linux-image-6.1.0-50-amd64")
	if err != nil || !s.pattern.MatchString("linux-image-6.1.0-50-amd64") || s.pattern.MatchString("linux-image-6.1.0-50-amd64-unsigned") {
		t.Fatalf("package name: %+v %v", s, err)
	}
	s, err = parseKernelSpec("/tmp/linux-image-x_1_amd64.deb")
	if err != nil || s.deb == "" || s.name != "linux-image-x_1_amd64" {
		t.Fatalf(".deb: %+v %v", s, err)
	}
	for _, bad := range []string{"latest", "6", "6.1.0", ""} {
		if _, err := parseKernelSpec(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/drivers/net/veth.ko":           "veth",
		"kernel/drivers/net/veth.ko.xz":        "veth",
		"kernel/net/ipv6/ip6_tunnel.ko.zst":    "ip6_tunnel",
		"kernel/drivers/net/wireguard.ko.gz":   "wireguard",
		"kernel/fs/nls/nls-cp437.ko":           "nls_cp437",
		"kernel/net/sched/sch_ingress.ko.xz\n": "sch_ingress",
	} {
		if got := moduleName(strings.TrimSpace(in)); got != want {
			t.Errorf("moduleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseModinfoDepends(t *testing.T) {
	modinfo := []byte("license=GPL\x00depends=ip_tunnel,tunnel4\x00retpoline=Y\x00name=ipip\x00\x00")
	if got, want := parseModinfoDepends(modinfo), []string{"ip_tunnel", "tunnel4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := parseModinfoDepends([]byte("depends=\x00name=veth\x00")); len(got) != 0 {
		t.Errorf("no deps: got %v", got)
	}
}

func TestLoadOrder(t *testing.T) {
	deps := map[string][]string{
		"ipip":      {"ip_tunnel", "tunnel4"},
		"ip_tunnel": {},
		"tunnel4":   {},
		"veth":      {},
		"cls_bpf":   {},
	}
	idx := &moduleIndex{
		paths:   map[string]string{},
		builtin: map[string]bool{"cls_bpf": true, "sch_ingress": true},
		depends: func(name string) ([]string, error) { return deps[name], nil },
	}
	for n := range deps {
		idx.paths[n] = "kernel/" + n + ".ko"
	}
	got, err := idx.loadOrder([]string{"veth", "ipip", "cls-bpf", "sch_ingress", "ip_tunnel"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"veth", "ip_tunnel", "tunnel4", "ipip"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := idx.loadOrder([]string{"nonexistent"}); err == nil || !strings.Contains(err.Error(), "nonexistent") {
		t.Errorf("missing module: got %v", err)
	}
}
