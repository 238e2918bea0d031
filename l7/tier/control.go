package tier

import (
	"context"
	"fmt"

	"github.com/directorlb/director/director/api"
	"github.com/directorlb/director/director/stats"
	"github.com/directorlb/director/l7"
)

// Control is the tier's side of a node's control API (api.L7Ops) and of
// its stats page (stats.L7Source): `director l7` and the agent embed it,
// so that both answer alike. Running returns the tier that runs now, nil
// when there is none (an agent whose config has no l7 section).
// Persist, if set, keeps the servers' admin state after each change (the
// state file): a change it cannot keep is undone and fails. It must not
// wait on anything that waits on the tier.
type Control struct {
	Running func() *Tier
	Persist func([]api.L7ServerState) error
}

var (
	_ api.L7Ops      = Control{}
	_ stats.L7Source = Control{}
)

var errNoTier = fmt.Errorf("%w: no L7 tier runs here: the config has no l7 section", api.ErrNotFound)

func (c Control) tier() (*Tier, error) {
	if c.Running != nil {
		if t := c.Running(); t != nil {
			return t, nil
		}
	}
	return nil, errNoTier
}

// L7Stats implements stats.L7Source: nothing without a tier.
func (c Control) L7Stats(ctx context.Context) ([]stats.Proxy, error) {
	t, err := c.tier()
	if err != nil {
		return nil, nil
	}
	return t.L7Stats(ctx)
}

// L7Servers implements api.L7Ops: every server of every backend, in the
// config's order.
func (c Control) L7Servers(context.Context) ([]api.L7Server, error) {
	t, err := c.tier()
	if err != nil {
		return nil, err
	}
	return t.servers(), nil
}

// DrainL7Server implements api.L7Ops.
func (c Control) DrainL7Server(_ context.Context, backend, server string) error {
	return c.change(backend, server, func(a *l7.ServerAdmin) { a.Drain = true })
}

// MaintL7Server implements api.L7Ops.
func (c Control) MaintL7Server(_ context.Context, backend, server string, on bool) error {
	return c.change(backend, server, func(a *l7.ServerAdmin) { a.Maint = on })
}

// EnableL7Server implements api.L7Ops: HAProxy's "ready" ends drain and
// maintenance and leaves the weight.
func (c Control) EnableL7Server(_ context.Context, backend, server string) error {
	return c.change(backend, server, func(a *l7.ServerAdmin) { a.Drain, a.Maint = false, false })
}

// SetL7Weight implements api.L7Ops.
func (c Control) SetL7Weight(_ context.Context, backend, server string, weight uint32) error {
	if weight > l7.MaxWeight {
		return fmt.Errorf("%w: weight %d out of range 0-%d", api.ErrInvalid, weight, l7.MaxWeight)
	}
	return c.change(backend, server, func(a *l7.ServerAdmin) { a.Weight = int(weight) })
}

func (c Control) change(backend, server string, set func(*l7.ServerAdmin)) error {
	t, err := c.tier()
	if err != nil {
		return err
	}
	return t.changeServer(backend, server, set, c.Persist)
}

// changeServer applies an operator's change to a server's admin state and
// persists the result, all or nothing. It holds t.mu, as a reload does
// while it carries the admin state over: a change lands before the copy
// or on the new backend, and persist sees the servers as they will be.
func (t *Tier) changeServer(backend, server string, set func(*l7.ServerAdmin), persist func([]api.L7ServerState) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.backend(backend)
	if b == nil {
		return fmt.Errorf("%w: no L7 backend %q", api.ErrNotFound, backend)
	}
	a, err := b.Admin(server)
	if err != nil {
		return fmt.Errorf("%w: L7 backend %s has no server %q", api.ErrNotFound, backend, server)
	}
	old := a
	set(&a)
	// The state file first: a change it cannot take never reaches the
	// traffic.
	if persist != nil {
		if err := persist(t.adminWith(backend, server, a)); err != nil {
			return fmt.Errorf("L7 server %s/%s left as it was: %w", backend, server, err)
		}
	}
	if err := b.SetAdmin(server, a); err != nil {
		if persist != nil {
			_ = persist(t.adminWith(backend, server, old)) // what runs; a restart checks the weight again
		}
		return fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	return nil
}

// Admin lists the servers an operator changed, as Persist gets them.
func (t *Tier) Admin() []api.L7ServerState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.adminLocked()
}

// adminLocked lists the servers an operator changed: drained, in
// maintenance or weighted apart from the config. t.mu is held.
func (t *Tier) adminLocked() []api.L7ServerState {
	return t.adminWith("", "", l7.ServerAdmin{})
}

// adminWith is adminLocked with server of backend set to a. t.mu is held.
func (t *Tier) adminWith(backend, server string, a l7.ServerAdmin) []api.L7ServerState {
	var out []api.L7ServerState
	for _, b := range t.backends {
		for _, s := range b.Stats().Servers {
			sa, err := b.Admin(s.SvName)
			if err != nil {
				continue
			}
			if s.PxName == backend && s.SvName == server {
				sa = a
			}
			cw, _ := b.ConfiguredWeight(s.SvName)
			if sa.Drain || sa.Maint || sa.Weight != cw {
				out = append(out, api.L7ServerState{Backend: s.PxName, Server: s.SvName, Drain: sa.Drain, Maint: sa.Maint,
					Weight: uint32(max(sa.Weight, 0)), ConfigWeight: uint32(max(cw, 0))})
			}
		}
	}
	return out
}

// Restore gives the servers the admin state a state file kept (Persist's)
// when the tier starts, by the rule a reload follows (l7.Backend.KeepAdmin).
// It returns the servers the config no longer has, whose state is dropped.
func (t *Tier) Restore(states []api.L7ServerState) (gone []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, st := range states {
		name := st.Backend + "/" + st.Server
		b := t.backend(st.Backend)
		if b == nil {
			gone = append(gone, name)
			continue
		}
		a := l7.ServerAdmin{Drain: st.Drain, Maint: st.Maint, Weight: int(st.Weight)}
		if err := b.RestoreAdmin(st.Server, a, int(st.ConfigWeight)); err != nil {
			gone = append(gone, name)
		}
	}
	return gone
}

// servers lists the running servers for ctl.
func (t *Tier) servers() []api.L7Server {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := []api.L7Server{}
	for _, b := range t.backends {
		for _, s := range b.Stats().Servers {
			a, _ := b.Admin(s.SvName) // from the same backend
			out = append(out, api.L7Server{Backend: s.PxName, Server: s.SvName, Address: s.Addr, State: s.Status,
				Weight: uint32(max(s.Weight, 0)), Drained: a.Drain, Maint: a.Maint, Healthy: b.Up(s.SvName),
				SessCur: s.SCur, SessTotal: s.STot,
				CheckStatus: s.CheckStatus, CheckCode: s.CheckCode, CheckDesc: s.CheckDesc})
		}
	}
	return out
}
