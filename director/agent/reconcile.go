package agent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/directorlb/director/director"
	"github.com/directorlb/director/director/config"
	"github.com/directorlb/director/director/health"
	"github.com/directorlb/director/loader"
)

// desired is what the dataplane should hold: the config with the
// operator's overrides laid over it.
func (a *Agent) desired(cfg *config.Config, over director.Overrides) map[string]*vipState {
	out := make(map[string]*vipState, len(cfg.VIPs))
	for _, v := range cfg.VIPs {
		vs := &vipState{cfg: v, reals: make(map[netip.Addr]*realState, len(v.Reals))}
		o := over.VIPs[v.Name]
		for _, r := range v.Reals {
			rs := &realState{weight: r.Weight, check: r.Check}
			if o != nil {
				if inList(o.Removed, r.Addr) {
					continue
				}
				if w, ok := o.Weights[r.Addr.String()]; ok {
					rs.weight = w
				}
				rs.drained = inList(o.Drained, r.Addr)
				rs.maint = inList(o.Maint, r.Addr)
			}
			vs.reals[r.Addr] = rs
		}
		if o != nil {
			for s, w := range o.Added {
				addr, err := netip.ParseAddr(s)
				if err != nil || vs.reals[addr] != nil {
					continue
				}
				vs.reals[addr] = &realState{weight: w, check: checkFor(v, addr), drained: inList(o.Drained, addr),
					maint: inList(o.Maint, addr)}
			}
		}
		out[v.Name] = vs
	}
	return out
}

func inList(list []string, a netip.Addr) bool {
	for _, s := range list {
		if s == a.String() {
			return true
		}
	}
	return false
}

// checkFor is the check of a real the operator added: the VIP's check as its
// config reals have it, aimed at the new address.
func checkFor(v config.VIP, addr netip.Addr) config.Check {
	if len(v.Reals) == 0 {
		return config.Check{}
	}
	c := v.Reals[0].Check
	c.Target = netip.AddrPortFrom(addr, c.Target.Port())
	return c
}

// apply brings the running state to want, VIP by VIP, real by real; only
// what differs is touched, so established flows are never disturbed.
// a.mu is held.
func (a *Agent) apply(want map[string]*vipState) error {
	var errs []error
	for name, cur := range a.vips {
		w := want[name]
		if w == nil || w.cfg.Key != cur.cfg.Key || w.cfg.Interface != cur.cfg.Interface {
			errs = append(errs, a.removeVIP(name, cur))
		}
	}
	for name, w := range want {
		errs = append(errs, a.applyVIP(name, w))
	}
	return errors.Join(errs...)
}

func (a *Agent) applyVIP(name string, w *vipState) error {
	ifc := a.ifaces[w.cfg.Interface]
	if ifc == nil {
		return fmt.Errorf("VIP %s: interface %s is not loaded", name, w.cfg.Interface)
	}
	cur := a.vips[name]
	if cur == nil {
		if err := ifc.bal.AddService(w.cfg.ServiceSpec()); err != nil {
			return fmt.Errorf("VIP %s: %w", name, err)
		}
		cur = &vipState{cfg: w.cfg, reals: make(map[netip.Addr]*realState)}
		a.vips[name] = cur
		if s, ok := w.cfg.SorrySpec(); ok {
			s.MAC = ifc.macs[s.Addr].mac
			if err := ifc.bal.AddReal(w.cfg.Key, s); err != nil {
				return fmt.Errorf("VIP %s sorry server: %w", name, err)
			}
			ifc.res.Add(s.Addr)
		}
	} else if cur.cfg.ServiceSpec() != w.cfg.ServiceSpec() {
		if err := ifc.bal.UpdateService(w.cfg.ServiceSpec()); err != nil {
			return fmt.Errorf("VIP %s: %w", name, err)
		}
	}
	cur.cfg = w.cfg

	var errs []error
	for addr := range cur.reals {
		if w.reals[addr] == nil {
			errs = append(errs, a.removeReal(ifc, name, cur, addr))
		}
	}
	for addr, wr := range w.reals {
		cr := cur.reals[addr]
		if cr == nil {
			errs = append(errs, a.addReal(ifc, name, cur, addr, wr))
			continue
		}
		errs = append(errs, a.updateReal(ifc, name, cur, addr, cr, wr))
	}
	return errors.Join(errs...)
}

func (a *Agent) addReal(ifc *iface, name string, vs *vipState, addr netip.Addr, wr *realState) error {
	key := vs.cfg.Key
	healthy := !wr.check.StartDown
	if st, ok := ifc.bal.Adopted(key, addr); ok {
		// A restart: the real keeps the verdict the last agent left.
		healthy = st != loader.RealDown
	}
	spec := director.RealSpec{Addr: addr, Weight: wr.weight, MAC: ifc.macs[addr].mac, Healthy: healthy}
	if err := ifc.bal.AddReal(key, spec); err != nil {
		return fmt.Errorf("VIP %s real %v: %w", name, addr, err)
	}
	if wr.drained {
		if err := ifc.bal.Drain(key, addr); err != nil {
			return fmt.Errorf("VIP %s real %v: %w", name, addr, err)
		}
	}
	if wr.maint {
		if err := ifc.bal.SetMaint(key, addr, true); err != nil {
			return fmt.Errorf("VIP %s real %v: %w", name, addr, err)
		}
	}
	rs := &realState{weight: wr.weight, drained: wr.drained, maint: wr.maint, check: wr.check}
	if rs.drained || rs.maint {
		rs.since, rs.cause = time.Now(), operatorCause(rs)
	}
	vs.reals[addr] = rs
	ifc.res.Add(addr)
	return a.watch(name, addr, rs, !healthy)
}

// watch starts or restarts a real's health checks.
func (a *Agent) watch(vip string, addr netip.Addr, rs *realState, startDown bool) error {
	key := healthKey(vip, addr)
	_ = a.mon.Remove(key)
	t, ok, err := rs.check.HealthTarget(key)
	if err != nil || !ok {
		return err
	}
	t.StartDown = startDown
	if err := a.mon.Add(t); err != nil {
		return fmt.Errorf("health check of %v: %w", addr, err)
	}
	return nil
}

func (a *Agent) updateReal(ifc *iface, name string, vs *vipState, addr netip.Addr, cr, wr *realState) error {
	key := vs.cfg.Key
	if cr.weight != wr.weight {
		if err := ifc.bal.SetWeight(key, addr, wr.weight); err != nil {
			return err
		}
		cr.weight = wr.weight
	}
	if cr.drained != wr.drained {
		op := ifc.bal.Enable
		if wr.drained {
			op = ifc.bal.Drain
		}
		if err := op(key, addr); err != nil {
			return err
		}
		cr.drained = wr.drained
	}
	if cr.maint != wr.maint {
		if err := ifc.bal.SetMaint(key, addr, wr.maint); err != nil {
			return err
		}
		cr.maint = wr.maint
	}
	if !cr.check.Equal(wr.check) {
		cr.check = wr.check
		st, _ := a.mon.Status(healthKey(name, addr))
		return a.watch(name, addr, cr, st.State == health.StateDown)
	}
	return nil
}

// removeReal retires the real: no new flows from now, its open connections
// finish within RemoveGrace.
func (a *Agent) removeReal(ifc *iface, name string, vs *vipState, addr netip.Addr) error {
	_ = a.mon.Remove(healthKey(name, addr))
	delete(vs.reals, addr)
	err := ifc.bal.Retire(vs.cfg.Key, addr, time.Now().Add(RemoveGrace))
	a.forgetMAC(ifc, addr)
	return err
}

func (a *Agent) removeVIP(name string, vs *vipState) error {
	ifc := a.ifaces[vs.cfg.Interface]
	for addr := range vs.reals {
		_ = a.mon.Remove(healthKey(name, addr))
	}
	delete(a.vips, name)
	err := ifc.bal.RemoveService(vs.cfg.Key)
	for addr := range vs.reals {
		a.forgetMAC(ifc, addr)
	}
	if vs.cfg.SorryServer.IsValid() {
		a.forgetMAC(ifc, vs.cfg.SorryServer)
	}
	return err
}

// forgetMAC stops resolving addr when no VIP of ifc uses it any more.
func (a *Agent) forgetMAC(ifc *iface, addr netip.Addr) {
	for _, vs := range a.vips {
		if vs.cfg.Interface == ifc.name && (vs.reals[addr] != nil || vs.cfg.SorryServer == addr) {
			return
		}
	}
	ifc.res.Remove(addr)
	delete(ifc.macs, addr)
}

// onHealth takes a check's verdict to the dataplane at once.
func (a *Agent) onHealth(ev health.Event) {
	vip, addrS, ok := strings.Cut(ev.Key, "|")
	addr, err := netip.ParseAddr(addrS)
	if !ok || err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	vs := a.vips[vip]
	if vs == nil || vs.reals[addr] == nil {
		return // removed meanwhile
	}
	rs := vs.reals[addr]
	rs.since, rs.cause = ev.Time, ev.Cause.String()
	up := ev.To == health.StateUp
	if err := a.ifaces[vs.cfg.Interface].bal.SetHealth(vs.cfg.Key, addr, up); err != nil {
		a.log.Error().Err(err).Str("vip", vip).Stringer("real", addr).Msg("apply health verdict")
	}
}

// onMAC takes a resolver's answer to every VIP of the interface that has
// the real.
func (a *Agent) onMAC(ifc *iface, addr netip.Addr, mac net.HardwareAddr, cause string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ifc.macs[addr] = macState{mac: mac, cause: cause}
	ev := a.log.Info()
	if mac == nil {
		ev = a.log.Warn()
	}
	ev.Str("interface", ifc.name).Stringer("real", addr).Stringer("mac", mac).Str("cause", cause).Msg("real's MAC")
	for name, vs := range a.vips {
		if vs.cfg.Interface != ifc.name || (vs.reals[addr] == nil && vs.cfg.SorryServer != addr) {
			continue
		}
		if err := ifc.bal.SetMAC(vs.cfg.Key, addr, mac); err != nil {
			a.log.Error().Err(err).Str("vip", name).Stringer("real", addr).Msg("apply MAC")
		}
	}
}
