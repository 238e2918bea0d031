package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/directorlb/director/director"
	"github.com/directorlb/director/director/api"
	"github.com/directorlb/director/director/config"
	"github.com/directorlb/director/loader"
)

var _ api.Ops = (*Agent)(nil)

// lookupVIP finds a VIP by name or by address (10.0.0.1:80/tcp). a.mu held.
func (a *Agent) lookupVIP(s string) (string, *vipState, error) {
	if vs, ok := a.vips[s]; ok {
		return s, vs, nil
	}
	for name, vs := range a.vips {
		if vs.cfg.Key.String() == s {
			return name, vs, nil
		}
	}
	return "", nil, fmt.Errorf("%w: no VIP %q", api.ErrNotFound, s)
}

// Status implements api.Ops.
func (a *Agent) Status(ctx context.Context) (api.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := api.Status{Node: a.opts.Node, Version: a.opts.Version, StartedAt: a.started,
		Config: a.cfg.File, VIPs: len(a.vips), Packets: map[string]uint64{}}
	for _, ifc := range a.sortedIfaces() {
		ls, err := ifc.dp.Status()
		if err != nil {
			return st, err
		}
		st.Interfaces = append(st.Interfaces, api.Interface{Name: ifc.name, Mode: ls.Mode.String(),
			ProgramID: ls.ProgramID, LinkID: ls.LinkID})
		stats, err := ifc.dp.Stats()
		if err != nil {
			return st, err
		}
		for r, v := range stats {
			st.Packets[r.String()] += v
		}
		for _, s := range ifc.bal.Services() {
			for _, r := range s.Reals {
				if r.Sorry {
					continue
				}
				st.Reals++
				if r.State == loader.RealUp {
					st.RealsUp++
				}
			}
		}
	}
	for _, v := range a.vrrps {
		vs := v.Status()
		c := vs.Counters
		in := api.VRRPInstance{Name: vs.Name, State: vs.State.String(), Priority: int(vs.Priority),
			Base: int(vs.BasePriority), Since: vs.Since, VRID: int(vs.VRID), AdvertInterval: vs.MasterInterval,
			FailingTracks: vs.FailingChecks,
			Counters: api.VRRPCounters{AdvertsSent: c.AdvertsSent, AdvertsReceived: c.AdvertsReceived,
				Priority0Sent: c.Priority0Sent, Priority0Received: c.Priority0Received, BecameMaster: c.BecameMaster,
				Transitions: c.Transitions, SendErrors: c.SendErrors, ActionErrors: c.ActionErrors}}
		for cause, n := range c.Discards {
			if n > 0 {
				if in.Counters.Discards == nil {
					in.Counters.Discards = map[string]uint64{}
				}
				in.Counters.Discards[cause] = n
			}
		}
		if vs.MasterAddr.IsValid() {
			in.Master = vs.MasterAddr.String()
		}
		st.VRRP = append(st.VRRP, in)
	}
	return st, nil
}

func (a *Agent) sortedIfaces() []*iface {
	out := make([]*iface, 0, len(a.ifaces))
	for _, i := range a.ifaces {
		out = append(out, i)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (a *Agent) service(vs *vipState) (director.ServiceStatus, bool) {
	return a.ifaces[vs.cfg.Interface].bal.Service(vs.cfg.Key)
}

// VIPs implements api.Ops.
func (a *Agent) VIPs(ctx context.Context) ([]api.VIP, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	names := make([]string, 0, len(a.vips))
	for n := range a.vips {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]api.VIP, 0, len(names))
	for _, name := range names {
		vs := a.vips[name]
		v := api.VIP{Name: name, Address: vs.cfg.Key.String(), Interface: vs.cfg.Interface,
			Scheduler: vs.cfg.Scheduler.String(), Mode: vs.cfg.Mode.String(), AllDown: allDownName(vs.cfg.AllDown)}
		if s, ok := a.service(vs); ok {
			c, err := a.ifaces[vs.cfg.Interface].dp.VIPCounters(s.ID)
			if err != nil {
				return nil, err
			}
			v.Counters = api.Counters{Packets: c.Packets, Bytes: c.Bytes, NewFlows: c.NewFlows}
			for _, r := range s.Reals {
				if r.Sorry {
					continue
				}
				v.Reals++
				if r.State == loader.RealUp {
					v.RealsUp++
				}
			}
		}
		out = append(out, v)
	}
	return out, nil
}

func allDownName(p director.AllDownPolicy) string {
	switch p {
	case director.Drop:
		return "drop"
	case director.Sorry:
		return "sorry"
	}
	return "keep"
}

// Reals implements api.Ops.
func (a *Agent) Reals(ctx context.Context, vip string) ([]api.Real, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	name, vs, err := a.lookupVIP(vip)
	if err != nil {
		return nil, err
	}
	ifc := a.ifaces[vs.cfg.Interface]
	s, _ := a.service(vs)
	out := make([]api.Real, 0, len(s.Reals))
	for _, r := range s.Reals {
		ar := api.Real{VIP: name, Address: r.Addr.String(), State: r.State.String(), Weight: r.Weight,
			Drained: r.Drained, Maint: r.Maint, Healthy: r.Healthy, Sorry: r.Sorry}
		if r.Maint {
			ar.State = "maint"
		}
		if r.MAC != nil {
			ar.MAC = r.MAC.String()
		}
		c, err := ifc.dp.RealCounters(r.ID)
		if err != nil {
			return nil, err
		}
		ar.Counters = api.Counters{Packets: c.Packets, Bytes: c.Bytes, NewFlows: c.NewFlows}
		if rs := vs.reals[r.Addr]; rs != nil {
			ar.Since, ar.Cause = rs.since, rs.cause
		}
		if hs, ok := a.mon.Status(healthKey(name, r.Addr)); ok {
			if hs.Checks > 0 {
				ar.LastCheck = hs.Last.Cause.String()
				ar.Latency = hs.Last.Latency
			}
			ar.CheckStatus, ar.CheckCode = hs.CheckStatus()
			if ar.Since.IsZero() {
				ar.Since = hs.Since
			}
		}
		if m, ok := ifc.macs[r.Addr]; ok && m.mac == nil {
			ar.Cause = "unresolved: " + m.cause
		}
		out = append(out, ar)
	}
	return out, nil
}

// change applies an operator's change: edit the overrides, apply them, keep
// them in the state file. If any step fails, the old overrides are put back
// and applied again, and the error is returned: nothing changed.
func (a *Agent) change(vip string, addr netip.Addr, mustExist bool, edit func(o *director.Overrides, name string, vs *vipState, inConfig bool) error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	name, vs, err := a.lookupVIP(vip)
	if err != nil {
		return err
	}
	if vs.cfg.Mode == config.Local {
		return fmt.Errorf("%w: VIP %s is local (served by the L7 tier): it has no reals here", api.ErrInvalid, name)
	}
	if exists := vs.reals[addr] != nil; mustExist && !exists {
		return fmt.Errorf("%w: VIP %s has no real %v", api.ErrNotFound, name, addr)
	}
	_, inConfig := vs.cfg.Real(addr)
	var was realState
	if rs := vs.reals[addr]; rs != nil {
		was = *rs
	}
	next := a.over.Clone()
	if err := edit(&next, name, vs, inConfig); err != nil {
		return err
	}
	if err := a.apply(a.desired(a.cfg, next)); err != nil {
		return errors.Join(mapErr(err), a.apply(a.desired(a.cfg, a.over)))
	}
	if err := a.state.SaveVIPs(next); err != nil {
		return errors.Join(err, a.apply(a.desired(a.cfg, a.over)))
	}
	a.over = next
	if rs := vs.reals[addr]; rs != nil && (rs.drained != was.drained || rs.maint != was.maint) {
		rs.since, rs.cause = time.Now(), operatorCause(rs)
	}
	return nil
}

// operatorCause is the cause shown for a real the operator drained, put in
// maintenance or made ready.
func operatorCause(rs *realState) string {
	switch {
	case rs.maint:
		return "maint (operator)"
	case rs.drained:
		return "drain (operator)"
	}
	return "ready (operator)"
}

func mapErr(err error) error {
	switch {
	case errors.Is(err, director.ErrUnknownVIP), errors.Is(err, director.ErrUnknownReal):
		return fmt.Errorf("%w: %v", api.ErrNotFound, err)
	case errors.Is(err, director.ErrExists):
		return fmt.Errorf("%w: %v", api.ErrConflict, err)
	}
	return err
}

func checkWeight(w uint32) error {
	if w > director.MaxWeight {
		return fmt.Errorf("%w: weight %d out of range 0-%d", api.ErrInvalid, w, director.MaxWeight)
	}
	return nil
}

// AddReal implements api.Ops.
func (a *Agent) AddReal(ctx context.Context, vip string, addr netip.Addr, weight *uint32) error {
	w := uint32(config.DefaultWeight)
	if weight != nil {
		w = *weight
	}
	if err := checkWeight(w); err != nil {
		return err
	}
	return a.change(vip, addr, false, func(o *director.Overrides, name string, vs *vipState, inConfig bool) error {
		if vs.reals[addr] != nil {
			return fmt.Errorf("%w: VIP %s has real %v already", api.ErrConflict, name, addr)
		}
		if addr.Is4() != vs.cfg.Key.Addr.Is4() {
			return fmt.Errorf("%w: %v is not of VIP %s's address family", api.ErrInvalid, addr, name)
		}
		if err := a.adjacent(vs.cfg.Interface, addr); err != nil {
			return err
		}
		o.Add(name, addr.String(), w, inConfig)
		return nil
	})
}

// adjacent: direct routing reaches only reals on a directly connected
// subnet of the interface.
func (a *Agent) adjacent(iface string, addr netip.Addr) error {
	prefixes, err := a.opts.Links.Prefixes(iface)
	if err != nil {
		return err
	}
	if err := config.OnLink(prefixes, iface, addr); err != nil {
		return fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	return nil
}

// RemoveReal implements api.Ops.
func (a *Agent) RemoveReal(ctx context.Context, vip string, addr netip.Addr) error {
	return a.change(vip, addr, true, func(o *director.Overrides, name string, _ *vipState, inConfig bool) error {
		o.Remove(name, addr.String(), inConfig)
		return nil
	})
}

// DrainReal implements api.Ops.
func (a *Agent) DrainReal(ctx context.Context, vip string, addr netip.Addr) error {
	return a.change(vip, addr, true, func(o *director.Overrides, name string, _ *vipState, _ bool) error {
		o.SetDrained(name, addr.String(), true)
		return nil
	})
}

// EnableReal implements api.Ops: it undoes drain and maintenance.
func (a *Agent) EnableReal(ctx context.Context, vip string, addr netip.Addr) error {
	return a.change(vip, addr, true, func(o *director.Overrides, name string, _ *vipState, _ bool) error {
		o.SetDrained(name, addr.String(), false)
		o.SetMaint(name, addr.String(), false)
		return nil
	})
}

// MaintReal implements api.Ops.
func (a *Agent) MaintReal(ctx context.Context, vip string, addr netip.Addr, on bool) error {
	return a.change(vip, addr, true, func(o *director.Overrides, name string, _ *vipState, _ bool) error {
		o.SetMaint(name, addr.String(), on)
		return nil
	})
}

// SetWeight implements api.Ops.
func (a *Agent) SetWeight(ctx context.Context, vip string, addr netip.Addr, weight uint32) error {
	if err := checkWeight(weight); err != nil {
		return err
	}
	return a.change(vip, addr, true, func(o *director.Overrides, name string, _ *vipState, inConfig bool) error {
		o.SetWeight(name, addr.String(), weight, inConfig)
		return nil
	})
}
