package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/directorlb/director/director/config"
	"github.com/directorlb/director/loader"
	"github.com/directorlb/director/vrrp"
)

// startVRRP runs the config's VRRP instances. a.mu is not held.
func (a *Agent) startVRRP(ctx context.Context, spawn func(string, func(context.Context) error)) error {
	for _, in := range a.cfg.VRRP {
		inst, err := vrrp.New(in.Build(agentHealth{a}), a.log.With().Str("component", "vrrp").Str("instance", in.Name).Logger())
		if err != nil {
			return fmt.Errorf("vrrp %s: %w", in.Name, err)
		}
		a.mu.Lock()
		a.vrrps = append(a.vrrps, inst)
		a.mu.Unlock()
		spawn("vrrp "+in.Name, inst.Run)
	}
	return nil
}

// agentHealth is the agent's own health as VRRP tracks it (keepalived's
// track_script on "is my load balancer working"): every dataplane attached
// and every L4 VIP with at least one real up.
type agentHealth struct{ a *Agent }

func (agentHealth) Name() string { return "agent" }

func (h agentHealth) Watch(ctx context.Context, report func(bool)) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		report(h.a.healthy())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *Agent) healthy() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ifc := range a.ifaces {
		if st, err := ifc.dp.Status(); err != nil || st.LinkID == 0 {
			return false
		}
	}
	for _, vs := range a.vips {
		if vs.cfg.Mode == config.Local {
			continue
		}
		s, ok := a.service(vs)
		if !ok {
			return false
		}
		// The checks' verdict, not the dataplane state: under the
		// keep-last policy failed reals still take traffic.
		up := false
		for _, r := range s.Reals {
			up = up || (!r.Sorry && r.Healthy && r.MAC != nil && r.State != loader.RealDown)
		}
		if !up {
			return false
		}
	}
	return true
}
