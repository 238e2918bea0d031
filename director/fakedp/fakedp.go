// Package fakedp is an in-memory dataplane for tests of the agent's logic.
// After every write it checks the invariant the real program relies on:
// each table slot names a real of that VIP that is up. A write sequence that
// would let a packet meet a half-applied change fails the test.
package fakedp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/directorlb/director/loader"
)

// Dataplane implements director.Dataplane in memory.
type Dataplane struct {
	mu     sync.Mutex
	sizes  loader.Sizes
	vips   map[loader.VIPKey]loader.VIP
	reals  map[uint32]loader.Real
	tables map[uint32][]uint32
	// Fail, when set, is consulted before each write; an error it returns
	// is returned by the write, which then changes nothing.
	Fail func(op string) error
	// Violations collects invariant breaches seen after writes.
	Violations []string
	// Ops counts writes by name.
	Ops map[string]int
}

// New returns an empty dataplane of the given sizes (a small ring if zero).
func New(sizes loader.Sizes) *Dataplane {
	if sizes.RingSize == 0 {
		sizes.RingSize = 251
	}
	if sizes.MaxVIPs == 0 {
		sizes.MaxVIPs = 64
	}
	if sizes.MaxReals == 0 {
		sizes.MaxReals = 256
	}
	return &Dataplane{
		sizes:  sizes,
		vips:   make(map[loader.VIPKey]loader.VIP),
		reals:  make(map[uint32]loader.Real),
		tables: make(map[uint32][]uint32),
		Ops:    make(map[string]int),
	}
}

func (d *Dataplane) write(op string, f func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.Fail != nil {
		if err := d.Fail(op); err != nil {
			return err
		}
	}
	if err := f(); err != nil {
		return err
	}
	d.Ops[op]++
	d.check(op)
	return nil
}

func (d *Dataplane) check(op string) {
	for k, v := range d.vips {
		for i, id := range d.tables[v.ID] {
			if id == loader.NoReal {
				continue
			}
			r, ok := d.reals[id]
			if !ok || r.VIPID != v.ID || r.State != loader.RealUp {
				d.Violations = append(d.Violations, fmt.Sprintf("after %s: VIP %v slot %d names real %d (%+v, set %v)",
					op, k, i, id, r, ok))
				return
			}
		}
	}
}

// Sizes implements director.Dataplane.
func (d *Dataplane) Sizes() loader.Sizes { return d.sizes }

// SetVIP implements director.Dataplane.
func (d *Dataplane) SetVIP(k loader.VIPKey, v loader.VIP) error {
	return d.write("SetVIP", func() error {
		if v.ID >= d.sizes.MaxVIPs {
			return fmt.Errorf("VIP id %d out of range", v.ID)
		}
		d.vips[k] = v
		return nil
	})
}

// RemoveVIP implements director.Dataplane.
func (d *Dataplane) RemoveVIP(k loader.VIPKey) error {
	return d.write("RemoveVIP", func() error {
		v, ok := d.vips[k]
		if !ok {
			return fmt.Errorf("VIP %v: not set", k)
		}
		delete(d.vips, k)
		delete(d.tables, v.ID)
		return nil
	})
}

// SetReal implements director.Dataplane.
func (d *Dataplane) SetReal(id uint32, r loader.Real) error {
	return d.write("SetReal", func() error {
		if id >= d.sizes.MaxReals {
			return fmt.Errorf("real id %d out of range", id)
		}
		if len(r.MAC) != 6 {
			return errors.New("bad MAC")
		}
		r.MAC = slices.Clone(r.MAC)
		d.reals[id] = r
		return nil
	})
}

// SetRealState implements director.Dataplane.
func (d *Dataplane) SetRealState(id uint32, s loader.RealState) error {
	return d.write("SetRealState", func() error {
		r, ok := d.reals[id]
		if !ok {
			return fmt.Errorf("real %d is not set", id)
		}
		r.State = s
		d.reals[id] = r
		return nil
	})
}

// RemoveReal implements director.Dataplane.
func (d *Dataplane) RemoveReal(id uint32) error {
	return d.write("RemoveReal", func() error {
		delete(d.reals, id)
		return nil
	})
}

// SetTable implements director.Dataplane.
func (d *Dataplane) SetTable(vipID uint32, table []uint32) error {
	return d.write("SetTable", func() error {
		if uint32(len(table)) != d.sizes.RingSize {
			return fmt.Errorf("table of %d entries, want %d", len(table), d.sizes.RingSize)
		}
		d.tables[vipID] = slices.Clone(table)
		return nil
	})
}

// VIPs implements director.Dataplane.
func (d *Dataplane) VIPs() (map[loader.VIPKey]loader.VIP, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[loader.VIPKey]loader.VIP, len(d.vips))
	for k, v := range d.vips {
		out[k] = v
	}
	return out, nil
}

// Reals implements director.Dataplane.
func (d *Dataplane) Reals() (map[uint32]loader.Real, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[uint32]loader.Real, len(d.reals))
	for k, v := range d.reals {
		out[k] = v
	}
	return out, nil
}

// Table returns a copy of a VIP's table.
func (d *Dataplane) Table(vipID uint32) []uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.tables[vipID])
}

// Share counts the table slots of each real of a VIP, by address.
func (d *Dataplane) Share(k loader.VIPKey) map[netip.Addr]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[netip.Addr]int{}
	v, ok := d.vips[k]
	if !ok {
		return out
	}
	for _, id := range d.tables[v.ID] {
		if id == loader.NoReal {
			out[netip.Addr{}]++
			continue
		}
		out[d.reals[id].Addr]++
	}
	return out
}

// Real returns the real under id.
func (d *Dataplane) Real(id uint32) (loader.Real, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.reals[id]
	return r, ok
}

// VIPCounters returns zero counters: the fake forwards nothing.
func (d *Dataplane) VIPCounters(uint32) (loader.Counters, error) { return loader.Counters{}, nil }

// RealCounters returns zero counters.
func (d *Dataplane) RealCounters(uint32) (loader.Counters, error) { return loader.Counters{}, nil }

// Stats returns zero counters for every reason.
func (d *Dataplane) Stats() (map[loader.Reason]uint64, error) {
	out := make(map[loader.Reason]uint64)
	for _, r := range loader.Reasons() {
		out[r] = 0
	}
	return out, nil
}

// Status reports a native attachment with made-up ids.
func (d *Dataplane) Status() (loader.Status, error) {
	return loader.Status{Mode: loader.ModeNative, ProgramID: 1, LinkID: 1}, nil
}

// Close does nothing: the fake's state outlives an agent, as pinned maps do.
func (d *Dataplane) Close() error { return nil }
