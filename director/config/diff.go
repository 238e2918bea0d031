package config

import (
	"net/netip"
	"reflect"

	"github.com/directorlb/director/loader"
)

// Diff is what a reload changes: the agent applies VIPs and reals
// incrementally (a VIP or real in both keeps its dataplane id, so its flows
// survive) and restarts what cannot change in place.
type Diff struct {
	AddedVIPs   []loader.VIPKey // in the new config only, in its order
	RemovedVIPs []loader.VIPKey // in the old config only, in its order
	ChangedVIPs []VIPDiff       // in both and different, in the new order
	// Restart names the top-level settings that changed and take effect
	// only when the agent restarts (interfaces, sizes, hash_seed, ...).
	Restart []string
	// VRRP instances, by name.
	AddedVRRP, RemovedVRRP, ChangedVRRP []string
}

// VIPDiff is how a VIP in both configs changed.
type VIPDiff struct {
	Key loader.VIPKey
	// Service: its ServiceSpec (scheduler, mode, all-down policy, sorry
	// server), name or interface changed.
	Service      bool
	AddedReals   []netip.Addr
	RemovedReals []netip.Addr
	// ChangedReals: weight or health check changed.
	ChangedReals []netip.Addr
}

// Empty reports whether nothing changed.
func (d Diff) Empty() bool {
	return len(d.AddedVIPs)+len(d.RemovedVIPs)+len(d.ChangedVIPs)+len(d.Restart)+
		len(d.AddedVRRP)+len(d.RemovedVRRP)+len(d.ChangedVRRP) == 0
}

// Compare returns what changes from old to next.
func Compare(old, next *Config) Diff {
	var d Diff
	restart := []struct {
		name string
		same bool
	}{
		{"interfaces", reflect.DeepEqual(old.Interfaces, next.Interfaces)},
		{"control_socket", old.ControlSocket == next.ControlSocket},
		{"state_file", old.StateFile == next.StateFile},
		{"metrics", old.Metrics == next.Metrics},
		{"hash_seed", old.HashSeed == next.HashSeed},
		{"sizes", old.Sizes == next.Sizes},
		{"stats", reflect.DeepEqual(old.Stats, next.Stats)},
	}
	for _, r := range restart {
		if !r.same {
			d.Restart = append(d.Restart, r.name)
		}
	}
	for i := range old.VIPs {
		if _, ok := next.VIP(old.VIPs[i].Key); !ok {
			d.RemovedVIPs = append(d.RemovedVIPs, old.VIPs[i].Key)
		}
	}
	for i := range next.VIPs {
		nv := &next.VIPs[i]
		ov, ok := old.VIP(nv.Key)
		if !ok {
			d.AddedVIPs = append(d.AddedVIPs, nv.Key)
			continue
		}
		if nv.Equal(ov) {
			continue
		}
		vd := VIPDiff{Key: nv.Key, Service: ov.ServiceSpec() != nv.ServiceSpec() ||
			ov.Name != nv.Name || ov.Interface != nv.Interface}
		for _, r := range ov.Reals {
			if _, ok := nv.Real(r.Addr); !ok {
				vd.RemovedReals = append(vd.RemovedReals, r.Addr)
			}
		}
		for _, r := range nv.Reals {
			or, ok := ov.Real(r.Addr)
			switch {
			case !ok:
				vd.AddedReals = append(vd.AddedReals, r.Addr)
			case !r.Equal(*or):
				vd.ChangedReals = append(vd.ChangedReals, r.Addr)
			}
		}
		d.ChangedVIPs = append(d.ChangedVIPs, vd)
	}
	vrrpByName := func(c *Config, name string) (VRRPInstance, bool) {
		for _, in := range c.VRRP {
			if in.Name == name {
				return in, true
			}
		}
		return VRRPInstance{}, false
	}
	for _, in := range old.VRRP {
		if _, ok := vrrpByName(next, in.Name); !ok {
			d.RemovedVRRP = append(d.RemovedVRRP, in.Name)
		}
	}
	for _, in := range next.VRRP {
		oi, ok := vrrpByName(old, in.Name)
		switch {
		case !ok:
			d.AddedVRRP = append(d.AddedVRRP, in.Name)
		case !reflect.DeepEqual(oi, in):
			d.ChangedVRRP = append(d.ChangedVRRP, in.Name)
		}
	}
	return d
}
