// Package tier runs the l7 section of a director configuration: it builds
// the l7 package's backends and frontends from it, listens on the bind
// addresses, checks the servers with director/health, and reloads a new
// section without closing a listener or cutting a request in flight.
//
// `director l7` runs a Tier on its own, the agent runs one beside the XDP
// tier for its VIPs of mode local.
package tier

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/directorlb/director/director/config"
	"github.com/directorlb/director/director/health"
	"github.com/directorlb/director/l7"
)

// shutdownGrace is how long requests in flight may take to finish when a
// frontend is replaced or the tier stops.
const shutdownGrace = 10 * time.Second

// Tier is a running l7 section.
type Tier struct {
	log   zerolog.Logger
	procs int // the threads of a section that does not say

	mu        sync.Mutex
	cfg       *config.L7
	listeners map[netip.AddrPort]*handover
	frontends map[string]*running
	backends  []*l7.Backend
	mon       *health.Monitor
	stopMon   context.CancelFunc
	monDone   chan struct{}
	wg        sync.WaitGroup
}

// running is a frontend serving its listeners.
type running struct {
	fe    *l7.Frontend
	binds []netip.AddrPort
}

// New builds the tier from cfg and starts serving; nothing is left open
// on error.
func New(cfg *config.L7, log zerolog.Logger) (*Tier, error) {
	t := &Tier{log: log, procs: defaultThreads(), listeners: map[netip.AddrPort]*handover{}, frontends: map[string]*running{}}
	if err := t.apply(cfg); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// Reload replaces the running section with cfg: listeners that stay are
// kept (no connection refused during the swap), new ones are opened,
// removed ones closed, and every frontend is rebuilt, its predecessor
// finishing the requests it has. Servers that stay, by backend and server
// name, keep what operators set on them (see l7.Backend.KeepAdmin); a
// server the new section drops loses it, and comes back as configured if
// a later reload brings it back. On error the running section is left as
// it was.
func (t *Tier) Reload(cfg *config.L7) error { return t.apply(cfg) }

func (t *Tier) apply(cfg *config.L7) error {
	t.mu.Lock()
	defer t.mu.Unlock()

	backends := map[string]*l7.Backend{}
	var all []*l7.Backend
	for _, bc := range cfg.Backends {
		b, err := l7.NewBackend(backendConfig(bc))
		if err != nil {
			return fmt.Errorf("backend %s: %w", bc.Name, err)
		}
		// Under t.mu, which the operators' changes take too: none
		// lands on the old backend after this copy.
		if old := t.backend(bc.Name); old != nil {
			b.KeepAdmin(old)
		}
		backends[bc.Name] = b
		all = append(all, b)
	}
	mon, err := t.monitor(cfg, all)
	if err != nil {
		return err
	}
	threads := cfg.Threads
	if threads <= 0 {
		threads = t.procs
	}
	fronts := map[string]*l7.Frontend{}
	for _, fc := range cfg.Frontends {
		fcfg := frontendConfig(fc, backends, t.log)
		fcfg.Engine = cfg.Engine
		fcfg.Loops = threads
		fe, err := l7.NewFrontend(fcfg)
		if err != nil {
			return fmt.Errorf("frontend %s: %w", fc.Name, err)
		}
		fronts[fc.Name] = fe
	}
	// Open the new listeners before touching the running ones.
	opened := map[netip.AddrPort]*handover{}
	for _, fc := range cfg.Frontends {
		for _, b := range fc.Bind {
			if _, ok := t.listeners[b]; ok {
				continue
			}
			ln, err := listen(b)
			if err != nil {
				for _, h := range opened {
					h.ln.Close()
				}
				return fmt.Errorf("frontend %s: %w", fc.Name, err)
			}
			opened[b] = &handover{ln: ln}
		}
	}

	// Commit: stop the old frontends' accepting, hand their listeners
	// over, then let them finish.
	old := t.frontends
	for _, r := range old {
		for _, b := range r.binds {
			t.listeners[b].pause()
		}
	}
	for b, h := range opened {
		t.listeners[b] = h
	}
	// Before the frontends start: their event loops are one per thread.
	applyThreads(threads, cfg.Engine, t.log)
	keep := map[netip.AddrPort]bool{}
	t.frontends = map[string]*running{}
	for _, fc := range cfg.Frontends {
		r := &running{fe: fronts[fc.Name], binds: fc.Bind}
		t.frontends[fc.Name] = r
		for _, b := range fc.Bind {
			keep[b] = true
			h := t.listeners[b]
			t.wg.Add(1)
			go func() {
				defer t.wg.Done()
				if err := r.fe.Serve(h.session()); err != nil && !errors.Is(err, errPaused) {
					t.log.Error().Err(err).Str("frontend", fc.Name).Stringer("bind", b).Msg("serve")
				}
			}()
		}
	}
	for b, h := range t.listeners {
		if !keep[b] {
			h.ln.Close()
			delete(t.listeners, b)
		}
	}
	oldBackends, oldStop, oldDone := t.backends, t.stopMon, t.monDone
	t.backends, t.cfg, t.mon = all, cfg, mon
	ctx, cancel := context.WithCancel(context.Background())
	t.stopMon, t.monDone = cancel, make(chan struct{})
	go func(done chan struct{}) {
		defer close(done)
		mon.Run(ctx)
	}(t.monDone)
	if oldStop != nil {
		oldStop()
		<-oldDone
	}
	// The old frontends finish their requests, then their backends' idle
	// server connections close.
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		for _, r := range old {
			r.fe.Shutdown(ctx)
		}
		for _, b := range oldBackends {
			b.Close()
		}
	}()
	t.log.Info().Int("frontends", len(cfg.Frontends)).Int("backends", len(cfg.Backends)).Msg("l7 tier running")
	return nil
}

// monitor makes a health monitor for the backends' checked servers, keyed
// "backend/server" as the l7 package's backends know them; its
// transitions mark the servers up and down.
func (t *Tier) monitor(cfg *config.L7, backends []*l7.Backend) (*health.Monitor, error) {
	m, err := health.NewMonitor(health.Config{
		Logger: t.log.With().Str("component", "l7-health").Logger(),
		OnTransition: func(ev health.Event) {
			for _, b := range backends {
				if b.Observe(ev) {
					return
				}
			}
		},
	})
	if err != nil {
		return nil, err
	}
	for _, b := range backends {
		b.SetMonitor(m) // the check columns of its stats
	}
	for _, bc := range cfg.Backends {
		for _, s := range bc.Servers {
			tg, ok, err := s.Check.HealthTarget(bc.Name + "/" + s.Name)
			if err != nil {
				return nil, fmt.Errorf("backend %s: server %s: check: %w", bc.Name, s.Name, err)
			}
			if !ok {
				continue
			}
			if err := m.Add(tg); err != nil {
				return nil, fmt.Errorf("backend %s: %w", bc.Name, err)
			}
		}
	}
	return m, nil
}

// backend returns the running backend named name, nil if none. t.mu is
// held.
func (t *Tier) backend(name string) *l7.Backend {
	for _, b := range t.backends {
		if b.Name() == name {
			return b
		}
	}
	return nil
}

// Backends returns the running backends, for stats and operators.
func (t *Tier) Backends() []*l7.Backend {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*l7.Backend(nil), t.backends...)
}

// Stats returns HAProxy's show-stat lines of the running section: each
// frontend, then each backend's servers and its BACKEND line.
func (t *Tier) Stats() []l7.Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	var rows []l7.Stats
	for _, fc := range t.cfg.Frontends {
		if r := t.frontends[fc.Name]; r != nil {
			rows = append(rows, r.fe.Stats())
		}
	}
	for _, b := range t.backends {
		rows = append(rows, b.Stats().Rows()...)
	}
	return rows
}

// Health returns the health status of a backend's server ("backend/server").
func (t *Tier) Health(key string) (health.Status, bool) {
	t.mu.Lock()
	m := t.mon
	t.mu.Unlock()
	if m == nil {
		return health.Status{}, false
	}
	return m.Status(key)
}

// Close stops listening, lets requests in flight finish for a while and
// stops the health checks.
func (t *Tier) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, h := range t.listeners {
		h.ln.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	for _, r := range t.frontends {
		r.fe.Shutdown(ctx)
	}
	if t.stopMon != nil {
		t.stopMon()
		<-t.monDone
	}
	for _, b := range t.backends {
		b.Close()
	}
	t.listeners, t.frontends = map[netip.AddrPort]*handover{}, map[string]*running{}
	t.wg.Wait() // the Serve loops and the retiring of reloaded frontends
	return nil
}

// listen opens a TCP listener on b with IP_FREEBIND, so that a VIP this
// node does not hold yet (a VRRP backup) can be bound.
func listen(b netip.AddrPort) (*net.TCPListener, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if b.Addr().Is4() {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_FREEBIND, 1)
			} else {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IPV6, ipv6Freebind, 1)
			}
		})
		if err != nil {
			return err
		}
		return os.NewSyscallError("setsockopt IP_FREEBIND", serr)
	}}
	network := "tcp4"
	if b.Addr().Is6() {
		network = "tcp6"
	}
	ln, err := lc.Listen(context.Background(), network, b.String())
	if err != nil {
		return nil, err
	}
	return ln.(*net.TCPListener), nil
}

// IPV6_FREEBIND, from linux/in6.h.
const ipv6Freebind = 78
