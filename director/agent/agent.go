// Package agent turns a config file into a running director: it loads the
// dataplane on each interface, checks the real servers, follows their MACs,
// keeps the maps in step, runs VRRP and answers `director ctl`.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/directorlb/director/director"
	"github.com/directorlb/director/director/api"
	"github.com/directorlb/director/director/config"
	"github.com/directorlb/director/director/health"
	"github.com/directorlb/director/director/neigh"
	"github.com/directorlb/director/l7/tier"
	"github.com/directorlb/director/loader"
	"github.com/directorlb/director/vrrp"
	"github.com/rs/zerolog"
)

// Dataplane is one interface's XDP program as the agent uses it.
// *loader.Dataplane implements it.
type Dataplane interface {
	director.Dataplane
	VIPCounters(id uint32) (loader.Counters, error)
	RealCounters(id uint32) (loader.Counters, error)
	Stats() (map[loader.Reason]uint64, error)
	Status() (loader.Status, error)
	Close() error
}

// Resolver finds the MACs of an interface's reals. *neigh.Resolver
// implements it.
type Resolver interface {
	Add(addr netip.Addr)
	Remove(addr netip.Addr)
	Run(ctx context.Context) error
}

// Options say how to build an agent. The defaults are the real parts;
// tests replace them.
type Options struct {
	ConfigPath string
	Version    string
	Node       string // node name in status; the hostname by default
	Log        zerolog.Logger
	Links      config.Links // config.SystemLinks by default
	// OpenDataplane loads the XDP program on an interface.
	OpenDataplane func(iface config.Interface, cfg *config.Config, log zerolog.Logger) (Dataplane, error)
	// NewResolver makes an interface's MAC resolver; onChange reports.
	NewResolver func(iface string, onChange neigh.ChangeFunc, log zerolog.Logger) (Resolver, error)
	// Clock for health checks; the system clock by default.
	Clock health.Clock
	// NoVRRP leaves the config's VRRP instances out (tests).
	NoVRRP bool
	// PinRoot is the bpffs folder for pins; loader.DefaultPinRoot if empty.
	PinRoot string
}

func (o *Options) defaults() {
	if o.Links == nil {
		o.Links = config.SystemLinks{}
	}
	if o.OpenDataplane == nil {
		o.OpenDataplane = func(ifc config.Interface, cfg *config.Config, log zerolog.Logger) (Dataplane, error) {
			return loader.Open(loader.Config{Interface: ifc.Name, Mode: ifc.XDPMode, PinRoot: o.PinRoot,
				Sizes: cfg.Sizes, Seed: cfg.HashSeed, Logger: log})
		}
	}
	if o.NewResolver == nil {
		o.NewResolver = func(iface string, onChange neigh.ChangeFunc, log zerolog.Logger) (Resolver, error) {
			return neigh.New(neigh.Config{Interface: iface, OnChange: onChange, Logger: log})
		}
	}
	if o.Clock == nil {
		o.Clock = health.SystemClock()
	}
	if o.Node == "" {
		o.Node, _ = os.Hostname()
	}
}

// Agent is a running director.
type Agent struct {
	opts    Options
	log     zerolog.Logger
	started time.Time

	// state is the state file: over's VIPs and the HTTP tier's servers.
	state *director.StateFile

	mu     sync.Mutex // guards everything below, and orders changes
	cfg    *config.Config
	over   director.Overrides
	ifaces map[string]*iface
	vips   map[string]*vipState // by name
	mon    *health.Monitor
	vrrps  []*vrrp.Instance
	reload chan chan error
	// l7 is the HTTP tier of the config's l7 section, nil without one.
	l7 *tier.Tier
	// Control answers ctl's L7 operations and the stats page's L7 part
	// with whichever tier runs at the time.
	tier.Control
}

type iface struct {
	name string
	dp   Dataplane
	bal  *director.Balancer
	res  Resolver
	// macs are the resolver's answers: a real's MAC, or why there is none.
	macs map[netip.Addr]macState
}

type macState struct {
	mac   net.HardwareAddr
	cause string
}

// vipState is a VIP as applied: its config and its reals' checks.
type vipState struct {
	cfg   config.VIP
	reals map[netip.Addr]*realState
}

type realState struct {
	weight  uint32
	drained bool
	maint   bool
	check   config.Check
	// the health verdict's history, for ctl and the stats page
	since time.Time
	cause string
}

// New loads the config and the dataplane and applies the config (and the
// operator's overrides kept in the state file). Forwarding starts here; Run
// starts checks, resolvers, ctl, metrics and VRRP.
func New(opts Options) (*Agent, error) {
	opts.defaults()
	cfg, err := config.Load(opts.ConfigPath, opts.Links)
	if err != nil {
		return nil, err
	}
	over, err := director.LoadOverrides(cfg.StateFile)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		opts:    opts,
		log:     opts.Log,
		started: time.Now(),
		cfg:     cfg,
		over:    over,
		state:   director.NewStateFile(cfg.StateFile, over),
		ifaces:  make(map[string]*iface),
		vips:    make(map[string]*vipState),
		reload:  make(chan chan error),
	}
	a.Control = tier.Control{Running: a.runningL7, Persist: a.state.SaveL7}
	a.mon, err = health.NewMonitor(health.Config{
		Logger:       opts.Log.With().Str("component", "health").Logger(),
		Clock:        opts.Clock,
		OnTransition: a.onHealth,
	})
	if err != nil {
		return nil, err
	}
	for _, ifc := range cfg.Interfaces {
		if err := a.openInterface(ifc); err != nil {
			a.closeDataplanes()
			return nil, err
		}
	}
	a.mu.Lock()
	err = a.apply(a.desired(cfg, over))
	a.mu.Unlock()
	if err != nil {
		a.closeDataplanes()
		return nil, err
	}
	for _, ifc := range a.ifaces {
		if err := ifc.bal.Prune(time.Now().Add(RemoveGrace)); err != nil {
			a.log.Warn().Err(err).Str("interface", ifc.name).Msg("removing state the config no longer names")
		}
	}
	return a, nil
}

func (a *Agent) openInterface(ifc config.Interface) error {
	log := a.log.With().Str("interface", ifc.Name).Logger()
	dp, err := a.opts.OpenDataplane(ifc, a.cfg, log)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifc.Name, err)
	}
	bal, err := director.NewBalancer(dp)
	if err != nil {
		dp.Close()
		return fmt.Errorf("interface %s: %w", ifc.Name, err)
	}
	st := &iface{name: ifc.Name, dp: dp, bal: bal, macs: make(map[netip.Addr]macState)}
	res, err := a.opts.NewResolver(ifc.Name, func(addr netip.Addr, mac net.HardwareAddr, cause string) {
		a.onMAC(st, addr, mac, cause)
	}, log.With().Str("component", "neigh").Logger())
	if err != nil {
		dp.Close()
		return fmt.Errorf("interface %s: %w", ifc.Name, err)
	}
	st.res = res
	a.ifaces[ifc.Name] = st
	return nil
}

func (a *Agent) closeDataplanes() {
	for _, ifc := range a.ifaces {
		if err := ifc.dp.Close(); err != nil {
			a.log.Warn().Err(err).Str("interface", ifc.name).Msg("close dataplane")
		}
	}
}

// Run runs checks, resolvers, the control socket, metrics and VRRP until
// ctx ends. The XDP program and its maps stay pinned: forwarding goes on
// after the agent exits, and a restarted agent re-adopts them.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	spawn := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}

	spawn("health checks", a.mon.Run)
	spawn("reaper", func(ctx context.Context) error {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case now := <-t.C:
				a.mu.Lock()
				for _, ifc := range a.ifaces {
					if err := ifc.bal.Reap(now); err != nil {
						a.log.Warn().Err(err).Str("interface", ifc.name).Msg("free retired reals")
					}
				}
				a.mu.Unlock()
			}
		}
	})
	for _, ifc := range a.ifaces {
		spawn("resolver "+ifc.name, ifc.res.Run)
	}
	l, err := api.Listen(a.cfg.ControlSocket)
	if err != nil {
		return err
	}
	defer os.Remove(a.cfg.ControlSocket)
	spawn("control socket", func(ctx context.Context) error {
		return api.Serve(ctx, l, api.Handler(a, a.log.With().Str("component", "ctl").Logger()))
	})
	if a.cfg.Metrics.IsValid() {
		ml, err := net.Listen("tcp", a.cfg.Metrics.String())
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", director.MetricsHandler(a, a.log.With().Str("component", "metrics").Logger()))
		spawn("metrics", func(ctx context.Context) error { return api.Serve(ctx, ml, mux) })
	}
	if a.cfg.L7 != nil {
		// The HTTP tier for the VIPs of mode local, listening before VRRP
		// makes this node master.
		t, err := tier.New(a.cfg.L7, a.log.With().Str("component", "l7").Logger())
		if err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("l7: %w", err)
		}
		for _, s := range t.Restore(a.over.L7) {
			a.log.Warn().Str("server", s).Msg("state file: the l7 section has no such server; its saved state is dropped")
		}
		a.mu.Lock()
		a.l7 = t
		a.mu.Unlock()
	}
	// The tier running at the end, which a reload may have started.
	defer func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.l7 != nil {
			a.l7.Close()
			a.l7 = nil
		}
	}()
	if err := a.startStats(spawn); err != nil {
		cancel()
		wg.Wait()
		return err
	}
	if !a.opts.NoVRRP {
		if err := a.startVRRP(ctx, spawn); err != nil {
			cancel()
			wg.Wait()
			return err
		}
	}
	a.log.Info().Str("config", a.cfg.File).Int("vips", len(a.vips)).Msg("director running")

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case reply := <-a.reload:
			reply <- a.doReload()
		case err := <-errc:
			runErr = err
			break loop
		}
	}
	cancel()
	wg.Wait()
	a.closeDataplanes()
	return runErr
}

// Reload re-reads the config file (SIGHUP, `ctl reload`) and applies only
// the difference. An invalid file is rejected with its error and changes
// nothing.
func (a *Agent) Reload(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case a.reload <- reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *Agent) doReload() error {
	next, err := config.Load(a.opts.ConfigPath, a.opts.Links)
	if err != nil {
		a.log.Error().Err(err).Msg("reload rejected: the running config stays")
		return fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if d := config.Compare(a.cfg, next); len(d.Restart) > 0 {
		err := fmt.Errorf("%w: changing %v needs an agent restart; the running config stays", api.ErrInvalid, d.Restart)
		a.log.Error().Err(err).Msg("reload rejected")
		return err
	}
	undoL7, err := a.reloadL7(next.L7)
	if err != nil {
		a.log.Error().Err(err).Msg("reload rejected: the running config stays")
		return fmt.Errorf("%w: l7: %v", api.ErrInvalid, err)
	}
	if err := a.apply(a.desired(next, a.over)); err != nil {
		a.log.Error().Err(err).Msg("reload failed part way; state re-applied from the old config")
		rerr := a.apply(a.desired(a.cfg, a.over))
		return errors.Join(err, rerr, undoL7())
	}
	a.cfg = next
	a.saveL7()
	a.log.Info().Int("vips", len(a.vips)).Msg("config reloaded")
	return nil
}

// runningL7 is the HTTP tier that runs now, nil if none. A reload that
// replaces the tier (the l7 section added or removed) drops what
// operators set on the old one.
func (a *Agent) runningL7() *tier.Tier {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.l7
}

// saveL7 writes the HTTP tier's servers' admin state to the state file
// after a reload, which drops the state of servers the config no longer
// has (and all of it when the tier is replaced). The reload stands if
// the write fails: the file then holds more than runs, and a restart
// restores only what the config still names. a.mu is held.
func (a *Agent) saveL7() {
	var st []api.L7ServerState
	if a.l7 != nil {
		st = a.l7.Admin()
	}
	if err := a.state.SaveL7(st); err != nil {
		a.log.Error().Err(err).Msg("state file: the l7 servers' state after the reload")
	}
}

// reloadL7 brings the HTTP tier to cfg (nil: none), all or nothing, and
// returns how to bring it back. a.mu is held.
func (a *Agent) reloadL7(cfg *config.L7) (undo func() error, err error) {
	old := a.cfg.L7
	log := a.log.With().Str("component", "l7").Logger()
	switch {
	case a.l7 == nil && cfg == nil:
		return func() error { return nil }, nil
	case a.l7 == nil:
		t, err := tier.New(cfg, log)
		if err != nil {
			return nil, err
		}
		a.l7 = t
		return func() error { a.l7.Close(); a.l7 = nil; return nil }, nil
	case cfg == nil:
		a.l7.Close()
		a.l7 = nil
		return func() error {
			t, err := tier.New(old, log)
			a.l7 = t
			return err
		}, nil
	default:
		if err := a.l7.Reload(cfg); err != nil {
			return nil, err
		}
		return func() error { return a.l7.Reload(old) }, nil
	}
}

// RemoveGrace is how long a real removed from a VIP (by ctl, a reload, or
// while the agent was down) keeps its existing flows: it takes no new ones
// at once, and its open connections get this long to finish.
const RemoveGrace = time.Minute

// healthKey names a real's check in the monitor.
func healthKey(vip string, addr netip.Addr) string { return vip + "|" + addr.String() }
