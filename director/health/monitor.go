package health

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Defaults for Target fields left zero. Interval, rise and fall are
// HAProxy's; the timeout defaults to the interval, as HAProxy's
// "timeout check" does.
const (
	DefaultInterval = 2 * time.Second
	DefaultRise     = 2
	DefaultFall     = 3
	// DefaultJitter is the fraction by which each interval is randomly
	// lengthened or shortened.
	DefaultJitter = 0.05
)

// Errors returned by Monitor methods, wrapped with the target's key.
var (
	ErrExists   = errors.New("target already exists")
	ErrNotFound = errors.New("target not found")
	ErrStopped  = errors.New("monitor stopped")
	ErrRunning  = errors.New("monitor already running")
)

// Target is one thing to check and how.
type Target struct {
	// Key identifies the target, e.g. "web/10.0.0.1:80". Required.
	Key string
	// Checker performs the checks. Required.
	Checker Checker
	// Interval between the end of a check and the start of the next one
	// (HAProxy "inter", keepalived "delay_loop"). Default DefaultInterval.
	Interval time.Duration
	// Timeout of one check. Default: Interval.
	Timeout time.Duration
	// FastInterval, if set, replaces Interval while the target is
	// transitional: up but failing, or down but passing (HAProxy
	// "fastinter").
	FastInterval time.Duration
	// DownInterval, if set, replaces Interval while the target is down
	// and not passing (HAProxy "downinter").
	DownInterval time.Duration
	// Rise is the number of consecutive passing checks that bring a down
	// target up. Default DefaultRise.
	Rise int
	// Fall is the number of consecutive failing checks that bring an up
	// target down. Default DefaultFall.
	Fall int
	// StartDown starts the target down, to come up after Rise passing
	// checks (keepalived "alpha"). By default a target starts up.
	StartDown bool
}

func (t Target) normalize() (Target, error) {
	if t.Key == "" {
		return t, errors.New("health: target with empty key")
	}
	if t.Checker == nil {
		return t, fmt.Errorf("health: target %q: no checker", t.Key)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"interval", t.Interval}, {"timeout", t.Timeout}, {"fast interval", t.FastInterval}, {"down interval", t.DownInterval}} {
		if d.v < 0 {
			return t, fmt.Errorf("health: target %q: negative %s %v", t.Key, d.name, d.v)
		}
	}
	if t.Rise < 0 || t.Fall < 0 {
		return t, fmt.Errorf("health: target %q: negative rise %d or fall %d", t.Key, t.Rise, t.Fall)
	}
	if t.Interval == 0 {
		t.Interval = DefaultInterval
	}
	if t.Timeout == 0 {
		t.Timeout = t.Interval
	}
	if t.Rise == 0 {
		t.Rise = DefaultRise
	}
	if t.Fall == 0 {
		t.Fall = DefaultFall
	}
	return t, nil
}

// Event reports a state change of a target.
type Event struct {
	Key     string
	From    State
	To      State
	Cause   Cause         // cause of the result that tipped the state
	Latency time.Duration // latency of that result
	Time    time.Time     // when the result was recorded, on the Monitor's clock
}

// Status is a snapshot of a target.
type Status struct {
	Key   string
	State State
	// Since is the time of the last state change, or when the target was
	// added if it has not changed.
	Since time.Time
	// Cause is the cause of the last state change; CauseNone if none yet.
	Cause Cause
	// Last is the latest check result; zero before the first check.
	Last Result
	// LastCheck is when the latest check started; zero before the first.
	LastCheck time.Time
	// Successes and Failures are the current runs of consecutive passing
	// and failing checks.
	Successes, Failures int
	// Checks counts completed checks.
	Checks uint64
	// Layer is the layer of the target's checker, which names the
	// results in HAProxy's words (CheckStatus).
	Layer Layer
}

// Rand is a source of uniformly distributed numbers in [0, 1), such as a
// *math/rand/v2.Rand. The Monitor serializes calls to it.
type Rand interface {
	Float64() float64
}

type globalRand struct{}

func (globalRand) Float64() float64 { return rand.Float64() }

// Config configures a Monitor. The zero value is usable: real clock,
// random jitter, no logging, no callback.
type Config struct {
	// Logger receives a line per transition (warn for down, info for up)
	// and one per check at debug level.
	Logger zerolog.Logger
	// Clock defaults to SystemClock().
	Clock Clock
	// Rand drives jitter; defaults to math/rand/v2's global source.
	Rand Rand
	// Jitter is the fraction of an interval by which each interval is
	// randomly lengthened or shortened. 0 means DefaultJitter; negative
	// means none. At most 0.5. The first check of a target is always at a
	// random offset within its interval.
	Jitter float64
	// OnTransition, if set, is called for every state change, from the
	// target's goroutine, after the Status reflects the change. It may call
	// the Monitor's methods. While it runs, that target is not checked.
	OnTransition func(Event)
}

// Monitor checks many targets, each on its own schedule, and reports state
// changes. Targets may be added, updated and removed at any time. A check
// never overlaps the previous check of the same target, including across
// Remove and Add of the same key.
type Monitor struct {
	log          zerolog.Logger
	clock        Clock
	jitter       float64
	onTransition func(Event)

	randMu sync.Mutex
	rand   Rand

	mu       sync.Mutex
	phase    phase
	ctx      context.Context // Run's context, once running
	targets  map[string]*runner
	draining map[string]<-chan struct{} // done channels of removed, still running runners
	wg       sync.WaitGroup
}

type phase uint8

const (
	phaseIdle phase = iota
	phaseRunning
	phaseStopped
)

// NewMonitor returns a monitor; targets are checked once Run is called.
func NewMonitor(cfg Config) (*Monitor, error) {
	m := &Monitor{
		log:          cfg.Logger,
		clock:        cfg.Clock,
		rand:         cfg.Rand,
		jitter:       cfg.Jitter,
		onTransition: cfg.OnTransition,
		targets:      make(map[string]*runner),
		draining:     make(map[string]<-chan struct{}),
	}
	if m.clock == nil {
		m.clock = SystemClock()
	}
	if m.rand == nil {
		m.rand = globalRand{}
	}
	switch {
	case m.jitter == 0:
		m.jitter = DefaultJitter
	case m.jitter < 0:
		m.jitter = 0
	case m.jitter > 0.5:
		return nil, fmt.Errorf("health: jitter %v: at most 0.5", cfg.Jitter)
	}
	return m, nil
}

// Run checks the targets until ctx is cancelled, then stops every check,
// waits for all goroutines to finish and returns nil. A Monitor runs once:
// after Run returns, Add and Run return ErrStopped.
func (m *Monitor) Run(ctx context.Context) error {
	m.mu.Lock()
	switch m.phase {
	case phaseRunning:
		m.mu.Unlock()
		return ErrRunning
	case phaseStopped:
		m.mu.Unlock()
		return ErrStopped
	}
	m.phase = phaseRunning
	m.ctx = ctx
	for _, r := range m.targets {
		m.startLocked(r)
	}
	n := len(m.targets)
	m.mu.Unlock()
	m.log.Debug().Int("targets", n).Msg("health monitor started")

	<-ctx.Done()

	m.mu.Lock()
	m.phase = phaseStopped
	m.mu.Unlock()
	m.wg.Wait()
	m.log.Debug().Msg("health monitor stopped")
	return nil
}

// Add adds a target. Its first check comes at a random offset within its
// interval.
func (m *Monitor) Add(t Target) error {
	t, err := t.normalize()
	if err != nil {
		return err
	}
	initial := StateUp
	if t.StartDown {
		initial = StateDown
	}
	mach, err := NewMachine(t.Rise, t.Fall, initial)
	if err != nil {
		return fmt.Errorf("health: target %q: %w", t.Key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.phase == phaseStopped {
		return fmt.Errorf("health: add %q: %w", t.Key, ErrStopped)
	}
	if _, ok := m.targets[t.Key]; ok {
		return fmt.Errorf("health: add %q: %w", t.Key, ErrExists)
	}
	r := &runner{
		m:       m,
		key:     t.Key,
		log:     m.log.With().Str("target", t.Key).Logger(),
		done:    make(chan struct{}),
		updated: make(chan struct{}, 1),
		prev:    m.draining[t.Key],
		target:  t,
		machine: mach,
		status:  Status{Key: t.Key, State: initial, Since: m.clock.Now()},
	}
	delete(m.draining, t.Key)
	m.targets[t.Key] = r
	if m.phase == phaseRunning {
		m.startLocked(r)
	}
	return nil
}

// Update replaces a target's configuration (matched by Key). The state and
// the current runs of successes and failures are kept; StartDown is
// ignored. A check in progress completes with the old checker; the next
// check comes no later than it was due and no later than one new interval
// from now.
func (m *Monitor) Update(t Target) error {
	t, err := t.normalize()
	if err != nil {
		return err
	}
	m.mu.Lock()
	r, ok := m.targets[t.Key]
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("health: update %q: %w", t.Key, ErrNotFound)
	}
	r.mu.Lock()
	err = r.machine.Reconfigure(t.Rise, t.Fall)
	if err == nil {
		r.target = t
	}
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("health: update %q: %w", t.Key, err)
	}
	select {
	case r.updated <- struct{}{}:
	default:
	}
	return nil
}

// Remove stops checking a target. A check in progress is cancelled and its
// result dropped; Remove does not wait for it. An event from a check that
// completed concurrently with Remove may still be delivered.
func (m *Monitor) Remove(key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.targets[key]
	if !ok {
		return fmt.Errorf("health: remove %q: %w", key, ErrNotFound)
	}
	delete(m.targets, key)
	if r.cancel != nil {
		r.cancel()
		m.draining[key] = r.done
	}
	return nil
}

// Status returns a snapshot of one target.
func (m *Monitor) Status(key string) (Status, bool) {
	m.mu.Lock()
	r, ok := m.targets[key]
	m.mu.Unlock()
	if !ok {
		return Status{}, false
	}
	return r.snapshot(), true
}

// Statuses returns a snapshot of every target, sorted by key.
func (m *Monitor) Statuses() []Status {
	m.mu.Lock()
	rs := make([]*runner, 0, len(m.targets))
	for _, r := range m.targets {
		rs = append(rs, r)
	}
	m.mu.Unlock()
	out := make([]Status, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.snapshot())
	}
	slices.SortFunc(out, func(a, b Status) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

func (m *Monitor) startLocked(r *runner) {
	ctx, cancel := context.WithCancel(m.ctx)
	r.cancel = cancel
	m.wg.Add(1)
	go r.run(ctx)
}

func (m *Monitor) float64() float64 {
	m.randMu.Lock()
	defer m.randMu.Unlock()
	return m.rand.Float64()
}

// firstDelay is a random offset in [0, d): targets added together do not
// check in lockstep.
func (m *Monitor) firstDelay(d time.Duration) time.Duration {
	return time.Duration(m.float64() * float64(d))
}

// jittered returns d lengthened or shortened by up to m.jitter of itself.
func (m *Monitor) jittered(d time.Duration) time.Duration {
	if m.jitter == 0 {
		return d
	}
	return d + time.Duration((2*m.float64()-1)*m.jitter*float64(d))
}

// runner runs the checks of one target in its own goroutine.
type runner struct {
	m       *Monitor
	key     string
	log     zerolog.Logger
	cancel  context.CancelFunc // set by startLocked under m.mu
	done    chan struct{}      // closed when run returns
	prev    <-chan struct{}    // done of the removed runner with the same key, if any
	updated chan struct{}      // a pending Update, capacity 1

	mu      sync.Mutex // guards the fields below
	target  Target
	machine *Machine
	status  Status
}

func (r *runner) snapshot() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status
	s.Layer = layerOf(r.target.Checker)
	return s
}

// interval picks the interval for the current state (inter, fastinter or
// downinter).
func (r *runner) interval() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.target
	switch {
	case r.machine.Transitional() && t.FastInterval > 0:
		return t.FastInterval
	case r.machine.State() == StateDown && t.DownInterval > 0:
		return t.DownInterval
	}
	return t.Interval
}

func (r *runner) run(ctx context.Context) {
	m := r.m
	defer m.wg.Done()
	defer func() {
		close(r.done)
		m.mu.Lock()
		if m.draining[r.key] == r.done {
			delete(m.draining, r.key)
		}
		m.mu.Unlock()
	}()
	if r.prev != nil {
		// The same key was removed and added again; let the old
		// goroutine's check finish first.
		select {
		case <-r.prev:
		case <-ctx.Done():
			return
		}
	}
	delay := m.firstDelay(r.interval())
	for {
		due := m.clock.Now().Add(delay)
		timer := m.clock.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-r.updated:
			timer.Stop()
			delay = min(max(due.Sub(m.clock.Now()), 0), m.jittered(r.interval()))
			continue
		case <-timer.C():
		}
		r.check(ctx)
		if ctx.Err() != nil {
			return
		}
		delay = m.jittered(r.interval())
	}
}

// check runs one check and records its result, unless ctx was cancelled
// meanwhile.
func (r *runner) check(ctx context.Context) {
	m := r.m
	r.mu.Lock()
	checker, timeout := r.target.Checker, r.target.Timeout
	r.mu.Unlock()

	start := m.clock.Now()
	cctx, cancel := m.clock.WithTimeout(ctx, timeout)
	res := safeCheck(cctx, checker)
	cancel()
	if ctx.Err() != nil {
		return
	}
	now := m.clock.Now()
	if res.Latency == 0 {
		res.Latency = now.Sub(start)
	}

	r.mu.Lock()
	from := r.machine.State()
	to, changed := r.machine.Observe(res.OK)
	st := &r.status
	st.State = to
	st.Last = res
	st.LastCheck = start
	st.Successes = r.machine.Successes()
	st.Failures = r.machine.Failures()
	st.Checks++
	if changed {
		st.Since = now
		st.Cause = res.Cause
	}
	rise, fall := r.machine.Rise(), r.machine.Fall()
	successes, failures := st.Successes, st.Failures
	r.mu.Unlock()

	r.log.Debug().Bool("ok", res.OK).Stringer("cause", res.Cause).Dur("latency", res.Latency).
		Int("successes", successes).Int("failures", failures).Msg("health check")
	if !changed {
		return
	}
	lev := r.log.Info()
	if to == StateDown {
		lev = r.log.Warn()
	}
	lev.Stringer("from", from).Stringer("to", to).Stringer("cause", res.Cause).
		Dur("latency", res.Latency).Int("rise", rise).Int("fall", fall).
		Msgf("target %s", to)
	if m.onTransition != nil {
		m.onTransition(Event{Key: r.key, From: from, To: to, Cause: res.Cause, Latency: res.Latency, Time: now})
	}
}

// safeCheck turns a panicking checker into a failed result rather than a
// crashed agent.
func safeCheck(ctx context.Context, c Checker) (res Result) {
	defer func() {
		if p := recover(); p != nil {
			res = Fail(Cause{Kind: CauseError, Detail: fmt.Sprintf("checker panicked: %v", p)}, 0)
		}
	}()
	return c.Check(ctx)
}
