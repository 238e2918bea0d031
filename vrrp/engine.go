package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// State is a VRRP state (RFC 5798 §6.4; RFC 9568 calls Master "Active").
type State int

// States.
const (
	StateInit State = iota
	StateBackup
	StateMaster
	StateFault
)

func (s State) String() string {
	switch s {
	case StateInit:
		return "INIT"
	case StateBackup:
		return "BACKUP"
	case StateMaster:
		return "MASTER"
	case StateFault:
		return "FAULT"
	}
	return "UNKNOWN"
}

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *State) UnmarshalText(b []byte) error {
	for c := StateInit; c <= StateFault; c++ {
		if c.String() == string(b) {
			*s = c
			return nil
		}
	}
	return fmt.Errorf("vrrp: unknown state %q", b)
}

// Conn sends and receives adverts of one instance.
type Conn interface {
	// Send sends the advert to the group or to every peer, filling in the
	// IP header fields.
	Send(a *Advert) error
	// Recv returns the next decoded advert, or a *DiscardError for one that
	// failed decoding; any other error ends receiving.
	Recv() (*Advert, error)
	// LocalAddr is the primary address adverts are sent from.
	LocalAddr() netip.Addr
	Close() error
}

// Clock tells the time. Tests use a fake.
type Clock interface {
	Now() time.Time
}

// Actions change the host when the state changes.
type Actions interface {
	AddVIPs() error
	RemoveVIPs() error
	// Announce sends n gratuitous ARPs (IPv4) or unsolicited neighbour
	// advertisements (IPv6) for every VIP.
	Announce(n int) error
}

// Notifier is told about every transition. StateInit after the start means
// the instance stopped.
type Notifier interface {
	Notify(instance string, s State, priority uint8)
}

// Counters count what an instance saw and did.
type Counters struct {
	AdvertsSent       uint64            `json:"adverts_sent"`
	AdvertsReceived   uint64            `json:"adverts_received"` // valid ones
	Priority0Sent     uint64            `json:"priority0_sent"`
	Priority0Received uint64            `json:"priority0_received"`
	BecameMaster      uint64            `json:"became_master"`
	Transitions       uint64            `json:"transitions"`
	AddrMismatch      uint64            `json:"addr_mismatch"` // valid adverts listing other VIPs
	SendErrors        uint64            `json:"send_errors"`
	ActionErrors      uint64            `json:"action_errors"`
	Discards          map[string]uint64 `json:"discards"` // by Cause name
}

// Status is a snapshot of an instance for `ctl status` and metrics.
type Status struct {
	Name  string `json:"name"`
	VRID  uint8  `json:"vrid"`
	State State  `json:"state"`
	// Priority is the effective priority, after tracking weights.
	Priority     uint8 `json:"priority"`
	BasePriority uint8 `json:"base_priority"`
	// MasterAddr is the current master's primary address, if known.
	MasterAddr     netip.Addr    `json:"master_addr"`
	MasterInterval time.Duration `json:"master_interval"`
	Since          time.Time     `json:"since"`
	FailingChecks  []string      `json:"failing_checks,omitempty"`
	Counters       Counters      `json:"counters"`
}

// Env is what an Engine talks to.
type Env struct {
	Conn     Conn
	Clock    Clock
	Actions  Actions
	Notifier Notifier // may be nil
	Logger   zerolog.Logger
}

// logEvery is how often one kind of repeated problem is logged.
const logEvery = 10 * time.Second

// Engine is the VRRP state machine of one instance. It does nothing by
// itself: its owner calls Start, Receive, Discard, SetCheck, Tick (when the
// time returned by Next has come) and Stop. It is safe for concurrent use.
type Engine struct {
	mu     sync.Mutex
	cfg    Config
	params Params
	env    Env
	log    zerolog.Logger
	local  netip.Addr
	addrs  []netip.Addr

	state     State
	since     time.Time
	prio      uint8 // effective
	weights   map[string]int
	failing   map[string]bool
	masterAI  time.Duration // Master_Adver_Interval
	master    netip.Addr
	downAt    time.Time // Master_Down_Timer; zero when not armed
	adverAt   time.Time // Adver_Timer; zero when not armed
	garpAt    time.Time // second GARP burst
	refreshAt time.Time // GARP refresh
	preemptAt time.Time // lower-priority adverts are accepted until then

	c        Counters
	discards [numCauses]uint64
	limits   map[string]*limit
}

type limit struct {
	last       time.Time
	suppressed int
}

// NewEngine returns an engine in StateInit. cfg must have passed Validate.
func NewEngine(cfg Config, env Env) *Engine {
	e := &Engine{
		cfg:     cfg,
		params:  cfg.params(),
		env:     env,
		log:     env.Logger.With().Str("instance", cfg.Name).Uint8("vrid", cfg.VRID).Logger(),
		local:   env.Conn.LocalAddr(),
		weights: map[string]int{},
		failing: map[string]bool{},
		limits:  map[string]*limit{},
	}
	for _, p := range cfg.VIPs {
		e.addrs = append(e.addrs, p.Addr())
	}
	for _, t := range cfg.Tracks {
		e.weights[t.Check.Name()] = t.Weight
	}
	e.prio = e.effectivePriority()
	e.masterAI = cfg.AdvertInterval
	e.since = env.Clock.Now()
	return e
}

// skew is Skew_Time for the current Master_Adver_Interval.
func (e *Engine) skew() time.Duration {
	return time.Duration(256-int(e.prio)) * e.masterAI / 256
}

// masterDown is Master_Down_Interval.
func (e *Engine) masterDown() time.Duration {
	return 3*e.masterAI + e.skew()
}

func (e *Engine) effectivePriority() uint8 {
	p := int(e.cfg.Priority)
	for n, bad := range e.failing {
		if bad {
			p -= e.weights[n]
		}
	}
	if p < 1 {
		p = 1
	}
	return uint8(p)
}

func (e *Engine) faulted() bool {
	for n, bad := range e.failing {
		if bad && e.weights[n] == 0 {
			return true
		}
	}
	return false
}

// Start runs the Initialize state (RFC 5798 §6.4.1). VIPs a killed earlier
// run left behind are removed first.
func (e *Engine) Start() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.act("remove VIPs", e.env.Actions.RemoveVIPs)
	e.leaveInit()
}

func (e *Engine) leaveInit() {
	now := e.env.Clock.Now()
	e.preemptAt = now.Add(e.cfg.PreemptDelay)
	e.masterAI = e.cfg.AdvertInterval
	switch {
	case e.faulted():
		e.setState(StateFault)
	case e.prio == 255:
		e.becomeMaster()
	default:
		e.becomeBackup(e.cfg.AdvertInterval, e.masterDown())
	}
}

// Stop leaves the current state for Initialize: a master sends a priority-0
// advert so a backup takes over after Skew_Time, and the VIPs are removed.
func (e *Engine) Stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state == StateMaster {
		e.send(0)
	}
	e.act("remove VIPs", e.env.Actions.RemoveVIPs)
	e.stopTimers()
	e.master = netip.Addr{}
	e.setState(StateInit)
}

func (e *Engine) stopTimers() {
	e.downAt, e.adverAt, e.garpAt, e.refreshAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
}

// Next returns when Tick must next be called; zero if no timer is armed.
func (e *Engine) Next() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	var n time.Time
	for _, t := range []time.Time{e.downAt, e.adverAt, e.garpAt, e.refreshAt} {
		if !t.IsZero() && (n.IsZero() || t.Before(n)) {
			n = t
		}
	}
	return n
}

// Tick fires the timers that are due.
func (e *Engine) Tick() {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.env.Clock.Now()
	due := func(t time.Time) bool { return !t.IsZero() && !now.Before(t) }
	switch e.state {
	case StateBackup:
		if due(e.downAt) {
			e.log.Info().Stringer("last_master", addrStringer(e.master)).Msg("master down timer expired")
			e.becomeMaster()
		}
	case StateMaster:
		if due(e.adverAt) {
			e.send(e.prio)
			e.adverAt = now.Add(e.cfg.AdvertInterval)
		}
		if due(e.garpAt) {
			e.garpAt = time.Time{}
			e.announce()
		}
		if due(e.refreshAt) {
			e.refreshAt = now.Add(e.cfg.GARPRefresh)
			e.announce()
		}
	}
}

// Discard counts an advert the connection could not decode.
func (e *Engine) Discard(err error) {
	c, ok := CauseOf(err)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.discard(c, err)
}

func (e *Engine) discard(c Cause, err error) {
	e.discards[c]++
	if n, ok := e.allow("discard/" + c.String()); ok {
		e.log.Warn().Err(err).Str("cause", c.String()).Int("suppressed", n).Msg("advert discarded")
	}
}

// allow rate-limits logs of one kind; it returns how many were suppressed
// since the last one logged.
func (e *Engine) allow(key string) (int, bool) {
	now := e.env.Clock.Now()
	l := e.limits[key]
	if l == nil {
		l = &limit{}
		e.limits[key] = l
	} else if now.Sub(l.last) < logEvery {
		l.suppressed++
		return 0, false
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return n, true
}

// Receive processes a decoded advert (RFC 5798 §6.4.2, §6.4.3).
func (e *Engine) Receive(a *Advert) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if a.Src == e.local {
		return // our own, looped back
	}
	if err := e.params.Check(a); err != nil {
		c, _ := CauseOf(err)
		e.discard(c, err)
		return
	}
	e.c.AdvertsReceived++
	if a.Priority == 0 {
		e.c.Priority0Received++
	} else if !sameAddrs(a.Addrs, e.addrs) {
		e.c.AddrMismatch++
		if n, ok := e.allow("addr-mismatch"); ok {
			e.log.Warn().Stringer("from", a.Src).Int("suppressed", n).Msg("advert lists other virtual addresses")
		}
	}
	now := e.env.Clock.Now()
	switch e.state {
	case StateBackup:
		if a.Priority == 0 {
			e.log.Info().Stringer("from", a.Src).Msg("master stepped down (priority 0)")
			e.downAt = now.Add(e.skew())
			return
		}
		if e.cfg.NoPreempt || a.Priority >= e.prio || now.Before(e.preemptAt) {
			if e.cfg.Version == 3 {
				e.masterAI = a.Interval
			}
			e.master = a.Src
			e.downAt = now.Add(e.masterDown())
		}
		// Else: a lower priority master we preempt when the timer fires.
	case StateMaster:
		switch {
		case a.Priority == 0:
			e.send(e.prio)
			e.adverAt = now.Add(e.cfg.AdvertInterval)
		case a.Priority > e.prio || (a.Priority == e.prio && addrGreater(a.Src, e.local)):
			e.log.Info().Stringer("from", a.Src).Uint8("their_priority", a.Priority).Msg("higher priority master")
			e.act("remove VIPs", e.env.Actions.RemoveVIPs)
			interval := e.cfg.AdvertInterval
			if e.cfg.Version == 3 {
				interval = a.Interval
			}
			e.master = a.Src
			e.masterAI = interval
			e.becomeBackup(interval, 3*interval+e.skew())
		default:
			// A lower priority master: a split brain healing. Assert
			// ourselves and refresh the neighbours' caches.
			if n, ok := e.allow("lower-priority"); ok {
				e.log.Info().Stringer("from", a.Src).Uint8("their_priority", a.Priority).Int("suppressed", n).Msg("lower priority advert, asserting master")
			}
			e.send(e.prio)
			e.adverAt = now.Add(e.cfg.AdvertInterval)
			e.announce()
		}
	}
}

// SetCheck records a tracked input's result and reacts to the priority or
// fault change it causes.
func (e *Engine) SetCheck(name string, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, known := e.weights[name]; !known || e.failing[name] == !ok {
		return
	}
	e.failing[name] = !ok
	e.log.Info().Str("check", name).Bool("ok", ok).Msg("tracked check changed")
	old := e.prio
	e.prio = e.effectivePriority()
	switch {
	case e.state == StateFault && !e.faulted():
		e.leaveInit()
	case (e.state == StateBackup || e.state == StateMaster) && e.faulted():
		if e.state == StateMaster {
			e.send(0)
		}
		e.act("remove VIPs", e.env.Actions.RemoveVIPs)
		e.stopTimers()
		e.master = netip.Addr{}
		e.setState(StateFault)
	case e.prio != old && e.state == StateMaster:
		e.send(e.prio)
		e.adverAt = e.env.Clock.Now().Add(e.cfg.AdvertInterval)
	}
}

func (e *Engine) becomeMaster() {
	now := e.env.Clock.Now()
	e.stopTimers()
	e.send(e.prio)
	e.act("add VIPs", e.env.Actions.AddVIPs)
	e.announce()
	e.adverAt = now.Add(e.cfg.AdvertInterval)
	if e.cfg.GARPDelay > 0 {
		e.garpAt = now.Add(e.cfg.GARPDelay)
	}
	if e.cfg.GARPRefresh > 0 {
		e.refreshAt = now.Add(e.cfg.GARPRefresh)
	}
	e.master = e.local
	e.masterAI = e.cfg.AdvertInterval
	e.c.BecameMaster++
	e.setState(StateMaster)
}

func (e *Engine) becomeBackup(interval, down time.Duration) {
	e.stopTimers()
	e.masterAI = interval
	e.downAt = e.env.Clock.Now().Add(down)
	e.setState(StateBackup)
}

func (e *Engine) setState(s State) {
	if s == e.state {
		return
	}
	e.log.Info().Stringer("from", e.state).Stringer("to", s).Uint8("priority", e.prio).Msg("transition")
	e.state = s
	e.since = e.env.Clock.Now()
	e.c.Transitions++
	if e.env.Notifier != nil {
		e.env.Notifier.Notify(e.cfg.Name, s, e.prio)
	}
}

func (e *Engine) announce() {
	if e.cfg.GARPRepeat > 0 {
		e.act("announce", func() error { return e.env.Actions.Announce(e.cfg.GARPRepeat) })
	}
}

func (e *Engine) act(what string, f func() error) {
	if err := f(); err != nil {
		e.c.ActionErrors++
		if n, ok := e.allow("action/" + what); ok {
			e.log.Error().Err(err).Int("suppressed", n).Msg(what)
		}
	}
}

func (e *Engine) send(prio uint8) {
	a := &Advert{
		Version:  e.cfg.Version,
		VRID:     e.cfg.VRID,
		Priority: prio,
		Interval: e.cfg.AdvertInterval,
		Addrs:    e.addrs,
		AuthType: e.params.AuthType,
		Auth:     e.params.Auth,
	}
	if err := e.env.Conn.Send(a); err != nil {
		e.c.SendErrors++
		if n, ok := e.allow("send"); ok {
			e.log.Error().Err(err).Int("suppressed", n).Msg("sending advert")
		}
		return
	}
	e.c.AdvertsSent++
	if prio == 0 {
		e.c.Priority0Sent++
	}
}

// Status returns a snapshot.
func (e *Engine) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.c
	c.Discards = make(map[string]uint64, numCauses)
	for i, n := range e.discards {
		c.Discards[Cause(i).String()] = n
	}
	s := Status{
		Name:           e.cfg.Name,
		VRID:           e.cfg.VRID,
		State:          e.state,
		Priority:       e.prio,
		BasePriority:   e.cfg.Priority,
		MasterAddr:     e.master,
		MasterInterval: e.masterAI,
		Since:          e.since,
		Counters:       c,
	}
	for n, bad := range e.failing {
		if bad {
			s.FailingChecks = append(s.FailingChecks, n)
		}
	}
	slices.Sort(s.FailingChecks)
	return s
}

func addrGreater(a, b netip.Addr) bool { return a.Compare(b) > 0 }

func sameAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	seen := make(map[netip.Addr]int, len(a))
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		if seen[x] == 0 {
			return false
		}
		seen[x]--
	}
	return true
}

type addrStringer netip.Addr

func (a addrStringer) String() string {
	if !netip.Addr(a).IsValid() {
		return ""
	}
	return netip.Addr(a).String()
}
