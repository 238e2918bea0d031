package neigh

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Defaults for Config's zero values.
const (
	DefaultRefreshInterval = 2 * time.Second
	DefaultProbeTimeout    = 500 * time.Millisecond
	DefaultMaxMisses       = 3
)

// ChangeFunc receives every change of answer for a watched address: mac is
// the new MAC, or nil when the address is unresolved, for cause. It is
// called from Run's goroutine, one call at a time, and must not block long.
type ChangeFunc func(addr netip.Addr, mac net.HardwareAddr, cause string)

// Config configures a Resolver.
type Config struct {
	// Interface is the name of the interface the real servers are on, in
	// the network namespace Run runs in.
	Interface string
	// RefreshInterval is how often a resolved address is probed again
	// (jittered by ±20%), and how often an unresolved one is retried.
	// It bounds the time to notice a moved MAC when the kernel hears
	// nothing. Default DefaultRefreshInterval.
	RefreshInterval time.Duration
	// ProbeTimeout is how long a probe waits for its reply. Default
	// DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// MaxMisses unanswered probes in a row make an address unresolved.
	// Default DefaultMaxMisses.
	MaxMisses int
	// OnChange, if set, is told of every change of answer.
	OnChange ChangeFunc
	// Logger receives the resolver's logs; the zero Logger discards them.
	Logger zerolog.Logger
}

// Resolver follows the MAC addresses of a set of IPv4 and IPv6 addresses
// on one interface. Add, Remove and Lookup may be called at any time from
// any goroutine; changes are reported while Run runs.
type Resolver struct {
	cfg     Config
	log     zerolog.Logger
	wakeC   chan struct{}
	running atomic.Bool

	mu      sync.Mutex
	t       *tracker
	pending []change // answers settled by Add, reported by Run
}

// New returns a Resolver for cfg.Interface. It opens nothing: Run does.
func New(cfg Config) (*Resolver, error) {
	if cfg.Interface == "" {
		return nil, errors.New("neigh: no interface")
	}
	if cfg.RefreshInterval < 0 || cfg.ProbeTimeout < 0 || cfg.MaxMisses < 0 {
		return nil, fmt.Errorf("neigh: negative refresh interval, probe timeout or max misses")
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	if cfg.ProbeTimeout == 0 {
		cfg.ProbeTimeout = DefaultProbeTimeout
	}
	if cfg.MaxMisses == 0 {
		cfg.MaxMisses = DefaultMaxMisses
	}
	return &Resolver{
		cfg:   cfg,
		log:   cfg.Logger.With().Str("interface", cfg.Interface).Logger(),
		wakeC: make(chan struct{}, 1),
		t: newTracker(params{
			refresh:   cfg.RefreshInterval,
			timeout:   cfg.ProbeTimeout,
			maxMisses: cfg.MaxMisses,
			jitter:    jitter,
		}),
	}, nil
}

// jitter returns d ±20%, so that probes of many reals spread out.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d*8/10 + time.Duration(rand.Int64N(int64(d)*4/10+1))
}

// Add starts watching addr (IPv4, or IPv6; an IPv4-mapped address counts as
// IPv4 and a zone is ignored). Adding a watched address does nothing.
func (r *Resolver) Add(addr netip.Addr) {
	if !addr.IsValid() {
		return
	}
	r.mu.Lock()
	r.pending = append(r.pending, r.t.add(addr, time.Now())...)
	r.mu.Unlock()
	r.wake()
}

// Remove stops watching addr. Nothing is reported for it any more.
func (r *Resolver) Remove(addr netip.Addr) {
	r.mu.Lock()
	r.t.remove(addr)
	r.mu.Unlock()
	r.wake()
}

// Lookup returns the current answer for addr: its MAC, or nil and the
// cause (CauseResolving before the first answer). ok is false if addr is
// not watched.
func (r *Resolver) Lookup(addr netip.Addr) (mac net.HardwareAddr, cause string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.t.lookup(addr)
}

func (r *Resolver) wake() {
	select {
	case r.wakeC <- struct{}{}:
	default:
	}
}

// report logs changes and hands them to OnChange.
func (r *Resolver) report(changes []change) {
	for _, c := range changes {
		if c.mac != nil {
			r.log.Info().Stringer("addr", c.addr).Stringer("mac", c.mac).Msg("neighbour resolved")
		} else {
			r.log.Warn().Stringer("addr", c.addr).Str("cause", c.cause).Msg("neighbour unresolved")
		}
		if r.cfg.OnChange != nil {
			r.cfg.OnChange(c.addr, c.mac, c.cause)
		}
	}
}

// Run resolves the watched addresses until ctx is done, then closes
// everything it opened and returns nil. It fails at once if the interface
// does not exist or netlink cannot be used.
//
// Every socket is opened (and reopened, when the interface comes back) on
// Run's goroutine, in the network namespace of its OS thread: to resolve
// inside another namespace, run it on a thread locked in that namespace.
// Run may not be called twice at the same time.
func (r *Resolver) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("neigh: Run is already running")
	}
	defer r.running.Store(false)

	s, err := r.start()
	if err != nil {
		return err
	}
	defer s.close()
	s.loop(ctx)
	return nil
}
