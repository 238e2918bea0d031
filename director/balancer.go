// Package director is the agent's core: it turns services and reals, their
// health and the operator's commands into dataplane state.
package director

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/directorlb/director/director/maglev"
	"github.com/directorlb/director/loader"
)

// Dataplane is what the balancer needs of the XDP program.
// *loader.Dataplane implements it; tests use a fake.
type Dataplane interface {
	SetVIP(k loader.VIPKey, v loader.VIP) error
	RemoveVIP(k loader.VIPKey) error
	SetReal(id uint32, r loader.Real) error
	SetRealState(id uint32, s loader.RealState) error
	RemoveReal(id uint32) error
	SetTable(vipID uint32, table []uint32) error
	VIPs() (map[loader.VIPKey]loader.VIP, error)
	Reals() (map[uint32]loader.Real, error)
	Sizes() loader.Sizes
}

// AllDownPolicy is what a VIP does when none of its reals may take traffic.
type AllDownPolicy int

const (
	// KeepLast keeps sending to the reals that took traffic last (default,
	// like keepalived's inhibit_on_failure): when every check fails at once
	// the checks are more likely wrong than every server.
	KeepLast AllDownPolicy = iota
	// Drop drops the VIP's packets.
	Drop
	// Sorry sends everything to the VIP's sorry server.
	Sorry
)

// ServiceSpec is a VIP as the balancer runs it.
type ServiceSpec struct {
	Key     loader.VIPKey
	Source  bool // source-address affinity instead of the 5-tuple
	Local   bool // hand to the local stack (L7 tier)
	AllDown AllDownPolicy
	// SorryServer takes the traffic under the Sorry policy.
	SorryServer netip.Addr
}

// RealStatus is the balancer's view of one real.
type RealStatus struct {
	Addr    netip.Addr
	ID      uint32
	Weight  uint32 // configured weight
	Drained bool   // drained by the operator: weight 0 until enabled
	Maint   bool   // in maintenance by the operator: down until enabled
	Healthy bool   // the health checks' verdict
	MAC     net.HardwareAddr
	State   loader.RealState // what the dataplane does with it now
	Sorry   bool             // the VIP's sorry server
}

// Balancer owns the ids of VIPs and reals and keeps the dataplane in step:
// each change rebuilds the VIP's Maglev table and writes the maps in an
// order that never lets a packet meet a state that is half old, half new
// (a real is enabled before the table names it, and leaves the table before
// it is disabled).
type Balancer struct {
	mu       sync.Mutex
	dp       Dataplane
	ringSize uint32
	services map[loader.VIPKey]*service
	vipIDs   idPool
	realIDs  idPool
	// adopted: ids found in the dataplane at start, claimed by the config.
	adoptedVIPs  map[loader.VIPKey]loader.VIP
	adoptedReals map[realKey]adoptedReal
}

type adoptedReal struct {
	id    uint32
	state loader.RealState
	mac   net.HardwareAddr
}

type realKey struct {
	vipID uint32
	addr  netip.Addr
}

type service struct {
	spec  ServiceSpec
	id    uint32
	reals map[netip.Addr]*real
	sorry *real
	// the backends of the installed table, to skip rebuilding it when
	// nothing that shapes it changed
	installed []maglev.Backend
	hasTable  bool
	// leaving reals were retired: out of the table, their flows kept
	// until the deadline, then freed by Reap.
	leaving map[netip.Addr]*leaving
}

type leaving struct {
	r     *real
	until time.Time
}

type real struct {
	addr    netip.Addr
	id      uint32
	weight  uint32
	drained bool
	maint   bool
	healthy bool
	mac     net.HardwareAddr
	state   loader.RealState
	// written is the MAC last written to the dataplane.
	written net.HardwareAddr
}

// NewBalancer adopts what dp already holds (an agent restarted over pinned
// maps): a VIP or real the config names again keeps its id, so the
// connection table's flows stay valid. Call Prune once the config is applied
// to drop what it no longer names.
func NewBalancer(dp Dataplane) (*Balancer, error) {
	sz := dp.Sizes()
	b := &Balancer{
		dp:           dp,
		ringSize:     sz.RingSize,
		services:     make(map[loader.VIPKey]*service),
		vipIDs:       newIDPool(sz.MaxVIPs),
		realIDs:      newIDPool(sz.MaxReals),
		adoptedVIPs:  make(map[loader.VIPKey]loader.VIP),
		adoptedReals: make(map[realKey]adoptedReal),
	}
	vips, err := dp.VIPs()
	if err != nil {
		return nil, fmt.Errorf("adopt VIPs: %w", err)
	}
	for k, v := range vips {
		b.adoptedVIPs[k] = v
		b.vipIDs.take(v.ID)
	}
	reals, err := dp.Reals()
	if err != nil {
		return nil, fmt.Errorf("adopt reals: %w", err)
	}
	for id, r := range reals {
		b.adoptedReals[realKey{r.VIPID, r.Addr}] = adoptedReal{id, r.State, r.MAC}
		b.realIDs.take(id)
	}
	return b, nil
}

// Prune removes from the dataplane the VIPs and reals found there at start
// that no service claimed: first every claimed VIP gets a table built from
// its claimed reals, then unclaimed VIPs go, then unclaimed reals, so no
// table ever names a removed real.
//
// An unclaimed real of a claimed VIP that still carries flows is retired
// until graceUntil rather than removed, so a real taken out of the config
// while the agent was down still lets its connections finish.
func (b *Balancer) Prune(graceUntil time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for _, s := range b.services {
		errs = append(errs, b.apply(s))
	}
	for k, v := range b.adoptedVIPs {
		errs = append(errs, b.dp.RemoveVIP(k))
		b.vipIDs.put(v.ID)
		delete(b.adoptedVIPs, k)
	}
	byID := make(map[uint32]*service, len(b.services))
	for _, s := range b.services {
		byID[s.id] = s
	}
	for k, a := range b.adoptedReals {
		delete(b.adoptedReals, k)
		if s := byID[k.vipID]; s != nil && a.state != loader.RealDown && graceUntil.After(time.Time{}) {
			r := &real{addr: k.addr, id: a.id, mac: a.mac, state: a.state, healthy: true}
			if a.state == loader.RealUp {
				errs = append(errs, b.setState(s, r, loader.RealDrain))
			}
			if s.leaving == nil {
				s.leaving = make(map[netip.Addr]*leaving)
			}
			s.leaving[k.addr] = &leaving{r: r, until: graceUntil}
			continue
		}
		errs = append(errs, b.dp.RemoveReal(a.id))
		b.realIDs.put(a.id)
	}
	return errors.Join(errs...)
}

// Adopted tells what the dataplane held for a real when the balancer
// started, before the config claimed it: a restarted agent starts the real's
// health checks in that state rather than assuming up.
func (b *Balancer) Adopted(k loader.VIPKey, addr netip.Addr) (loader.RealState, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.adoptedVIPs[k]
	if !ok {
		return 0, false
	}
	a, ok := b.adoptedReals[realKey{v.ID, addr}]
	return a.state, ok
}

var (
	// ErrUnknownVIP: no such service.
	ErrUnknownVIP = errors.New("unknown VIP")
	// ErrUnknownReal: no such real in the service.
	ErrUnknownReal = errors.New("unknown real")
	// ErrExists: the VIP or real is there already.
	ErrExists = errors.New("already exists")
	// ErrFull: no id left for a VIP or real.
	ErrFull = errors.New("no room left")
)

// MaxWeight bounds a real's weight (HAProxy's bound).
const MaxWeight = 256

func vipFlags(s ServiceSpec) loader.VIPFlags {
	var f loader.VIPFlags
	if s.Source {
		f |= loader.VIPSourceHash
	}
	if s.Local {
		f |= loader.VIPLocal
	}
	return f
}

// AddService starts a VIP with no reals. Until reals are added its packets
// are dropped (or, for a local VIP, handed to the stack).
func (b *Balancer) AddService(spec ServiceSpec) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.services[spec.Key]; ok {
		return fmt.Errorf("VIP %v: %w", spec.Key, ErrExists)
	}
	id, adopted := b.adoptedVIPs[spec.Key]
	vipID := id.ID
	if adopted {
		delete(b.adoptedVIPs, spec.Key)
	} else {
		var ok bool
		if vipID, ok = b.vipIDs.get(); !ok {
			return fmt.Errorf("VIP %v: %w (max %d VIPs)", spec.Key, ErrFull, b.dp.Sizes().MaxVIPs)
		}
	}
	if err := b.dp.SetVIP(spec.Key, loader.VIP{ID: vipID, Flags: vipFlags(spec)}); err != nil {
		if !adopted {
			b.vipIDs.put(vipID)
		}
		return err
	}
	b.services[spec.Key] = &service{spec: spec, id: vipID, reals: make(map[netip.Addr]*real)}
	return nil
}

// UpdateService changes a VIP's scheduling, mode and all-down policy in place.
func (b *Balancer) UpdateService(spec ServiceSpec) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.services[spec.Key]
	if !ok {
		return fmt.Errorf("VIP %v: %w", spec.Key, ErrUnknownVIP)
	}
	if vipFlags(s.spec) != vipFlags(spec) {
		if err := b.dp.SetVIP(spec.Key, loader.VIP{ID: s.id, Flags: vipFlags(spec)}); err != nil {
			return err
		}
	}
	s.spec = spec
	return b.apply(s)
}

// RemoveService stops a VIP: its packets go to the stack again.
func (b *Balancer) RemoveService(k loader.VIPKey) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.services[k]
	if !ok {
		return fmt.Errorf("VIP %v: %w", k, ErrUnknownVIP)
	}
	if err := b.dp.RemoveVIP(k); err != nil {
		return err
	}
	var errs []error
	for _, r := range s.allReals() {
		errs = append(errs, b.dp.RemoveReal(r.id))
		b.realIDs.put(r.id)
	}
	for _, lv := range s.leaving {
		errs = append(errs, b.dp.RemoveReal(lv.r.id))
		b.realIDs.put(lv.r.id)
	}
	b.vipIDs.put(s.id)
	delete(b.services, k)
	return errors.Join(errs...)
}

func (s *service) allReals() []*real {
	out := make([]*real, 0, len(s.reals)+1)
	for _, r := range s.reals {
		out = append(out, r)
	}
	if s.sorry != nil {
		out = append(out, s.sorry)
	}
	return out
}

// RealSpec is a real as configured.
type RealSpec struct {
	Addr   netip.Addr
	Weight uint32
	// MAC, when known; a real without one takes no traffic until
	// SetMAC gives it one.
	MAC net.HardwareAddr
	// Healthy is the state it starts in (HAProxy and keepalived start
	// reals up).
	Healthy bool
	// Sorry marks the VIP's sorry server: it takes traffic only under
	// the Sorry all-down policy.
	Sorry bool
}

// AddReal adds a real to a VIP.
func (b *Balancer) AddReal(k loader.VIPKey, spec RealSpec) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.services[k]
	if !ok {
		return fmt.Errorf("VIP %v: %w", k, ErrUnknownVIP)
	}
	if !spec.Addr.IsValid() || spec.Addr.Is4() != k.Addr.Is4() {
		return fmt.Errorf("real %v: not an address of the VIP's family", spec.Addr)
	}
	if spec.Weight > MaxWeight {
		return fmt.Errorf("real %v: weight %d out of range 0-%d", spec.Addr, spec.Weight, MaxWeight)
	}
	if _, dup := s.reals[spec.Addr]; dup || (s.sorry != nil && s.sorry.addr == spec.Addr) {
		return fmt.Errorf("real %v of VIP %v: %w", spec.Addr, k, ErrExists)
	}
	if spec.Sorry && s.sorry != nil {
		return fmt.Errorf("VIP %v has a sorry server already: %w", k, ErrExists)
	}
	if lv, ok := s.leaving[spec.Addr]; ok && !spec.Sorry {
		// Back before it was freed: same id, its flows carry on.
		delete(s.leaving, spec.Addr)
		r := lv.r
		r.weight, r.healthy, r.drained = spec.Weight, spec.Healthy, false
		if spec.MAC != nil {
			r.mac = slices.Clone(spec.MAC)
		}
		s.reals[spec.Addr] = r
		return b.apply(s)
	}
	rk := realKey{s.id, spec.Addr}
	r := &real{addr: spec.Addr, weight: spec.Weight, healthy: spec.Healthy, mac: spec.MAC, state: loader.RealDown}
	a, adopted := b.adoptedReals[rk]
	if adopted {
		// It may be carrying flows and named by the live table: it keeps
		// its state until apply has rebuilt the table.
		delete(b.adoptedReals, rk)
		r.id, r.state = a.id, a.state
		if r.mac == nil && a.state != loader.RealDown {
			r.mac = a.mac // until the resolver answers
		}
	} else if r.id, ok = b.realIDs.get(); !ok {
		return fmt.Errorf("real %v: %w (max %d reals)", spec.Addr, ErrFull, b.dp.Sizes().MaxReals)
	}
	id := r.id
	if err := b.writeReal(s, r); err != nil {
		if !adopted {
			b.realIDs.put(id)
		}
		return err
	}
	if spec.Sorry {
		s.sorry = r
	} else {
		s.reals[spec.Addr] = r
	}
	return b.apply(s)
}

// Retire takes a real out of its VIP gracefully: out of the table at once,
// so it gets no new flows, while its existing flows go on until the
// deadline, when Reap frees it (their connections finish instead of being
// reset). A real that takes no flows anyway is removed at once.
func (b *Balancer) Retire(k loader.VIPKey, addr netip.Addr, until time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, r, err := b.lookup(k, addr)
	if err != nil {
		return err
	}
	if r == s.sorry || r.state == loader.RealDown {
		return b.remove(s, r)
	}
	delete(s.reals, addr)
	if err := b.apply(s); err != nil {
		s.reals[addr] = r
		return errors.Join(err, b.apply(s))
	}
	if r.state == loader.RealUp {
		if err := b.setState(s, r, loader.RealDrain); err != nil {
			return err
		}
	}
	if s.leaving == nil {
		s.leaving = make(map[netip.Addr]*leaving)
	}
	s.leaving[addr] = &leaving{r: r, until: until}
	return nil
}

// Reap frees the retired reals whose deadline has passed.
func (b *Balancer) Reap(now time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for _, s := range b.services {
		for addr, lv := range s.leaving {
			if now.Before(lv.until) {
				continue
			}
			delete(s.leaving, addr)
			errs = append(errs, b.dp.RemoveReal(lv.r.id))
			b.realIDs.put(lv.r.id)
		}
	}
	return errors.Join(errs...)
}

// RemoveReal takes a real out of its VIP at once. Its flows are re-picked.
func (b *Balancer) RemoveReal(k loader.VIPKey, addr netip.Addr) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, r, err := b.lookup(k, addr)
	if err != nil {
		return err
	}
	return b.remove(s, r)
}

// remove takes r out of s's table, then out of the dataplane. b.mu held.
func (b *Balancer) remove(s *service, r *real) error {
	if r == s.sorry {
		s.sorry = nil
	} else {
		delete(s.reals, r.addr)
	}
	if err := b.apply(s); err != nil {
		return err
	}
	if err := b.dp.RemoveReal(r.id); err != nil {
		return err
	}
	b.realIDs.put(r.id)
	return nil
}

func (b *Balancer) lookup(k loader.VIPKey, addr netip.Addr) (*service, *real, error) {
	s, ok := b.services[k]
	if !ok {
		return nil, nil, fmt.Errorf("VIP %v: %w", k, ErrUnknownVIP)
	}
	if r, ok := s.reals[addr]; ok {
		return s, r, nil
	}
	if s.sorry != nil && s.sorry.addr == addr {
		return s, s.sorry, nil
	}
	return nil, nil, fmt.Errorf("real %v of VIP %v: %w", addr, k, ErrUnknownReal)
}

// update changes one real and re-applies its VIP, restoring the real if the
// dataplane refuses.
func (b *Balancer) update(k loader.VIPKey, addr netip.Addr, change func(r *real) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, r, err := b.lookup(k, addr)
	if err != nil {
		return err
	}
	saved := *r
	if err := change(r); err != nil {
		return err
	}
	if err := b.apply(s); err != nil {
		*r = saved
		return errors.Join(err, b.apply(s))
	}
	return nil
}

// SetWeight sets a real's weight; 0 drains it.
func (b *Balancer) SetWeight(k loader.VIPKey, addr netip.Addr, w uint32) error {
	if w > MaxWeight {
		return fmt.Errorf("weight %d out of range 0-%d", w, MaxWeight)
	}
	return b.update(k, addr, func(r *real) error { r.weight = w; return nil })
}

// Drain stops new flows to a real; its existing flows finish.
func (b *Balancer) Drain(k loader.VIPKey, addr netip.Addr) error {
	return b.update(k, addr, func(r *real) error { r.drained = true; return nil })
}

// Enable undoes Drain.
func (b *Balancer) Enable(k loader.VIPKey, addr netip.Addr) error {
	return b.update(k, addr, func(r *real) error { r.drained = false; return nil })
}

// SetMaint puts a real in maintenance (on) or takes it out. In maintenance
// it is down whatever its health: out of the table, its flows re-picked,
// and never kept by the KeepLast policy.
func (b *Balancer) SetMaint(k loader.VIPKey, addr netip.Addr, on bool) error {
	return b.update(k, addr, func(r *real) error { r.maint = on; return nil })
}

// SetHealth records a health-check verdict. A real going down loses its
// flows; coming back it rejoins the table.
func (b *Balancer) SetHealth(k loader.VIPKey, addr netip.Addr, healthy bool) error {
	return b.update(k, addr, func(r *real) error { r.healthy = healthy; return nil })
}

// SetMAC records where a real is (its neighbour entry). nil: unresolved,
// the real takes no traffic.
func (b *Balancer) SetMAC(k loader.VIPKey, addr netip.Addr, mac net.HardwareAddr) error {
	return b.update(k, addr, func(r *real) error {
		if mac != nil && len(mac) != 6 {
			return fmt.Errorf("real %v: %v is not an Ethernet address", addr, mac)
		}
		r.mac = slices.Clone(mac)
		return nil
	})
}

// usable: may take new flows.
func (r *real) usable() bool {
	return r.healthy && r.mac != nil && !r.drained && !r.maint && r.weight > 0
}

// apply computes the table and real states the service should have and
// writes the difference in a safe order.
func (b *Balancer) apply(s *service) error {
	var backends []maglev.Backend
	want := make(map[*real]loader.RealState, len(s.reals)+1)
	for _, r := range s.reals {
		switch {
		case r.usable():
			backends = append(backends, maglev.Backend{ID: r.id, Name: r.addr.String(), Weight: r.weight})
			want[r] = loader.RealUp
		case r.healthy && r.mac != nil && !r.maint:
			want[r] = loader.RealDrain // drained or weight 0: existing flows finish
		default:
			want[r] = loader.RealDown
		}
	}
	if s.sorry != nil {
		want[s.sorry] = loader.RealDown
	}
	if len(backends) == 0 {
		switch s.spec.AllDown {
		case KeepLast:
			// Keep the last table, less reals removed since, and the
			// reals it names usable.
			for _, be := range s.installed {
				for _, r := range s.reals {
					if r.id == be.ID && r.mac != nil && !r.maint {
						backends = append(backends, be)
						want[r] = loader.RealUp
					}
				}
			}
		case Sorry:
			if sr := s.sorry; sr != nil && sr.mac != nil {
				backends = []maglev.Backend{{ID: sr.id, Name: sr.addr.String(), Weight: 1}}
				want[sr] = loader.RealUp
			}
		}
	}

	// Reals gaining rights first: up before the table names them.
	for r, st := range want {
		if rank(st) > rank(r.state) {
			if err := b.setState(s, r, st); err != nil {
				return err
			}
		}
	}
	// A real that keeps its rights but got a new MAC (a replaced NIC, a
	// moved VM) is rewritten in place: one atomic map update.
	for r, st := range want {
		if st == r.state && st != loader.RealDown && !bytes.Equal(r.mac, r.written) {
			if err := b.writeReal(s, r); err != nil {
				return err
			}
		}
	}
	// Reals come from a map, in no fixed order: sort, so that a change
	// that shapes nothing (a no-op weight, a check that stays up) does not
	// rebuild and rewrite the table.
	slices.SortFunc(backends, func(a, b maglev.Backend) int { return cmp.Compare(a.ID, b.ID) })
	if !s.hasTable || !slices.Equal(backends, s.installed) {
		table, err := maglev.Build(backends, b.ringSize)
		if err != nil {
			return fmt.Errorf("build table of VIP %v: %w", s.spec.Key, err)
		}
		if err := b.dp.SetTable(s.id, table); err != nil {
			return err
		}
		s.installed = slices.Clone(backends)
		s.hasTable = true
	}
	// Reals losing rights last: out of the table before they are disabled.
	for r, st := range want {
		if rank(st) < rank(r.state) {
			if err := b.setState(s, r, st); err != nil {
				return err
			}
		}
	}
	return nil
}

func rank(s loader.RealState) int {
	switch s {
	case loader.RealUp:
		return 2
	case loader.RealDrain:
		return 1
	}
	return 0
}

func (b *Balancer) setState(s *service, r *real, st loader.RealState) error {
	r.state = st
	return b.writeReal(s, r)
}

// writeReal puts the real's address, MAC and state in the dataplane. An
// unresolved real gets a null MAC: its state is down, so it is never used.
func (b *Balancer) writeReal(s *service, r *real) error {
	mac := r.mac
	if mac == nil {
		mac = make(net.HardwareAddr, 6)
	}
	if err := b.dp.SetReal(r.id, loader.Real{VIPID: s.id, Addr: r.addr, MAC: mac, State: r.state}); err != nil {
		return err
	}
	r.written = slices.Clone(r.mac)
	return nil
}

// Services lists the VIPs with their reals, sorted.
func (b *Balancer) Services() []ServiceStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]ServiceStatus, 0, len(b.services))
	for _, s := range b.services {
		out = append(out, s.status())
	}
	slices.SortFunc(out, func(a, b ServiceStatus) int { return compareVIPKeys(a.Spec.Key, b.Spec.Key) })
	return out
}

// Service is one VIP with its reals.
func (b *Balancer) Service(k loader.VIPKey) (ServiceStatus, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.services[k]
	if !ok {
		return ServiceStatus{}, false
	}
	return s.status(), true
}

func (s *service) status() ServiceStatus {
	st := ServiceStatus{Spec: s.spec, ID: s.id}
	for _, r := range s.allReals() {
		st.Reals = append(st.Reals, RealStatus{
			Addr: r.addr, ID: r.id, Weight: r.weight, Drained: r.drained, Maint: r.maint, Healthy: r.healthy,
			MAC: slices.Clone(r.mac), State: r.state, Sorry: r == s.sorry,
		})
	}
	slices.SortFunc(st.Reals, func(a, b RealStatus) int { return a.Addr.Compare(b.Addr) })
	return st
}

// ServiceStatus is a VIP and its reals.
type ServiceStatus struct {
	Spec  ServiceSpec
	ID    uint32
	Reals []RealStatus
}

func compareVIPKeys(a, b loader.VIPKey) int {
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	if a.Port != b.Port {
		return int(a.Port) - int(b.Port)
	}
	return int(a.Proto) - int(b.Proto)
}

// idPool hands out the lowest free id.
type idPool struct {
	used []bool
}

func newIDPool(n uint32) idPool { return idPool{used: make([]bool, n)} }

func (p *idPool) get() (uint32, bool) {
	for i, u := range p.used {
		if !u {
			p.used[i] = true
			return uint32(i), true
		}
	}
	return 0, false
}

func (p *idPool) take(id uint32) {
	if int(id) < len(p.used) {
		p.used[id] = true
	}
}

func (p *idPool) put(id uint32) {
	if int(id) < len(p.used) {
		p.used[id] = false
	}
}
