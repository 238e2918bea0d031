package neigh

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// CauseResolving is the cause Lookup gives for an address that has neither
// been resolved nor given up on yet. It is never reported to the callback.
const CauseResolving = "resolving"

// change is one answer to report: mac nil means unresolved, for cause.
type change struct {
	addr  netip.Addr
	mac   net.HardwareAddr
	cause string
}

// params are the tracker's timing rules.
type params struct {
	refresh   time.Duration // probe period while an answer stands
	timeout   time.Duration // wait for a reply before counting a miss
	maxMisses int           // consecutive misses that make an address unresolved
	// jitter spreads a refresh period; nil means none.
	jitter func(time.Duration) time.Duration
}

// entry is the state of one watched address.
type entry struct {
	mac     net.HardwareAddr // nil: unresolved
	cause   string           // why unresolved; "" when resolved
	decided bool             // an answer was reported (or would have been)

	misses   int       // consecutive unanswered probes
	awaiting bool      // a probe is out, waiting until deadline
	deadline time.Time // end of the outstanding probe's wait
	next     time.Time // when to send the next probe
}

// kernelNeigh is what the kernel's table says about one address.
type kernelNeigh struct {
	state int // NUD_* bits
	mac   net.HardwareAddr
}

// tracker is the resolver's logic, without I/O or clocks: every step is
// given the current time and returns the changes to report. It is not safe
// for concurrent use.
type tracker struct {
	p       params
	entries map[netip.Addr]*entry
	kernel  map[netip.Addr]kernelNeigh // the kernel's entries on our interface
	down    string                     // non-empty: the interface is unusable, for this cause
}

func newTracker(p params) *tracker {
	return &tracker{
		p:       p,
		entries: make(map[netip.Addr]*entry),
		kernel:  make(map[netip.Addr]kernelNeigh),
	}
}

// canon is the form addresses are keyed by: IPv4-mapped IPv6 addresses
// become IPv4, zones are dropped (there is one interface).
func canon(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// missCause is the cause given after n unanswered probes for addr.
func missCause(addr netip.Addr, n int) string {
	if addr.Is4() {
		return fmt.Sprintf("no ARP reply after %d tries", n)
	}
	return fmt.Sprintf("no neighbour advertisement after %d tries", n)
}

func (t *tracker) refreshAfter(now time.Time) time.Time {
	d := t.p.refresh
	if t.p.jitter != nil {
		d = t.p.jitter(d)
	}
	return now.Add(d)
}

// resolve sets e's answer to mac and says whether that is a change.
func (t *tracker) resolve(addr netip.Addr, e *entry, mac net.HardwareAddr) []change {
	if e.decided && e.mac != nil && bytes.Equal(e.mac, mac) {
		return nil
	}
	e.mac, e.cause, e.decided = slices.Clone(mac), "", true
	return []change{{addr: addr, mac: slices.Clone(mac)}}
}

// unresolve sets e's answer to unresolved for cause and says whether that is
// a change.
func (t *tracker) unresolve(addr netip.Addr, e *entry, cause string) []change {
	if e.decided && e.mac == nil && e.cause == cause {
		return nil
	}
	e.mac, e.cause, e.decided = nil, cause, true
	return []change{{addr: addr, cause: cause}}
}

// add starts watching addr. What the kernel already knows for sure
// (REACHABLE, PERMANENT, NOARP) answers at once; a probe is due now anyway.
func (t *tracker) add(addr netip.Addr, now time.Time) []change {
	addr = canon(addr)
	if _, ok := t.entries[addr]; ok {
		return nil
	}
	e := &entry{cause: CauseResolving, next: now}
	t.entries[addr] = e
	if t.down != "" {
		return t.unresolve(addr, e, t.down)
	}
	if k, ok := t.kernel[addr]; ok && confirmed(k.state) && validMAC(k.mac) {
		return t.resolve(addr, e, k.mac)
	}
	return nil
}

// resetKernel forgets the kernel's entries (the interface changed).
func (t *tracker) resetKernel() { clear(t.kernel) }

// remove stops watching addr; nothing is reported.
func (t *tracker) remove(addr netip.Addr) {
	delete(t.entries, canon(addr))
}

// lookup returns the current answer for addr.
func (t *tracker) lookup(addr netip.Addr) (net.HardwareAddr, string, bool) {
	e, ok := t.entries[canon(addr)]
	if !ok {
		return nil, "", false
	}
	return slices.Clone(e.mac), e.cause, true
}

// due returns the addresses to probe now, sorted. None while the interface
// is down.
func (t *tracker) due(now time.Time) []netip.Addr {
	if t.down != "" {
		return nil
	}
	var out []netip.Addr
	for a, e := range t.entries {
		if !e.awaiting && !now.Before(e.next) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// sent records that a probe for addr went out at now.
func (t *tracker) sent(addr netip.Addr, now time.Time) {
	if e, ok := t.entries[canon(addr)]; ok {
		e.awaiting, e.deadline = true, now.Add(t.p.timeout)
	}
}

// sendFailed records that a probe for addr could not be sent, for cause: it
// counts as a miss (with that cause once the misses add up), and the next
// try waits a probe timeout.
func (t *tracker) sendFailed(addr netip.Addr, now time.Time, cause string) []change {
	addr = canon(addr)
	e, ok := t.entries[addr]
	if !ok {
		return nil
	}
	e.awaiting = false
	return t.miss(addr, e, cause, now, now.Add(t.p.timeout))
}

// miss counts one unanswered probe and schedules the next one at retryAt
// while the misses do not yet add up, after a refresh period once the
// address is given up on. cause "" means the usual missCause.
func (t *tracker) miss(addr netip.Addr, e *entry, cause string, now, retryAt time.Time) []change {
	e.misses++
	if e.misses < t.p.maxMisses {
		e.next = retryAt
		return nil
	}
	e.next = t.refreshAfter(now)
	if cause == "" {
		cause = missCause(addr, t.p.maxMisses)
	}
	return t.unresolve(addr, e, cause)
}

// expire turns the probes whose wait is over into misses.
func (t *tracker) expire(now time.Time) []change {
	var out []change
	for _, addr := range t.sorted() {
		e := t.entries[addr]
		if e.awaiting && !now.Before(e.deadline) {
			e.awaiting = false
			out = append(out, t.miss(addr, e, "", now, now)...)
		}
	}
	return out
}

// reply records that addr answered a probe (or announced itself) with mac.
func (t *tracker) reply(addr netip.Addr, mac net.HardwareAddr, now time.Time) []change {
	addr = canon(addr)
	e, ok := t.entries[addr]
	if !ok || t.down != "" || !validMAC(mac) {
		return nil
	}
	e.misses, e.awaiting = 0, false
	e.next = t.refreshAfter(now)
	return t.resolve(addr, e, mac)
}

// kernelUpdate records a neighbour-table entry (or its removal). fromDump
// says it comes from the initial listing rather than a live notification.
//
// Evidence is taken from the kernel only when it is fresh: a confirmed
// state (REACHABLE, PERMANENT, NOARP), or, in a live notification, a new
// entry or a new link-layer address in STALE/DELAY/PROBE. A FAILED or
// INCOMPLETE entry makes a probe due at once.
func (t *tracker) kernelUpdate(addr netip.Addr, k kernelNeigh, deleted, fromDump bool, now time.Time) []change {
	addr = canon(addr)
	prev, known := t.kernel[addr]
	if deleted {
		delete(t.kernel, addr)
		return nil
	}
	t.kernel[addr] = kernelNeigh{state: k.state, mac: slices.Clone(k.mac)}

	e, ok := t.entries[addr]
	if !ok || t.down != "" {
		return nil
	}
	switch {
	case k.state&(unix.NUD_FAILED|unix.NUD_INCOMPLETE) != 0:
		if !e.awaiting && now.Before(e.next) {
			e.next = now
		}
		return nil
	case !validMAC(k.mac):
		return nil
	case confirmed(k.state):
	case k.state&(unix.NUD_STALE|unix.NUD_DELAY|unix.NUD_PROBE) != 0:
		if fromDump || (known && bytes.Equal(prev.mac, k.mac)) {
			return nil // nothing new: the probes will tell
		}
	default:
		return nil
	}
	e.misses = 0
	return t.resolve(addr, e, k.mac)
}

// linkDown makes every address unresolved for cause and stops probing.
func (t *tracker) linkDown(cause string) []change {
	t.down = cause
	var out []change
	for _, addr := range t.sorted() {
		e := t.entries[addr]
		e.awaiting, e.misses = false, 0
		out = append(out, t.unresolve(addr, e, cause)...)
	}
	return out
}

// linkUp resumes probing: every address is due now. Answers stay as they
// are until a probe settles them.
func (t *tracker) linkUp(now time.Time) {
	t.down = ""
	for _, e := range t.entries {
		e.awaiting, e.misses, e.next = false, 0, now
	}
}

// wake returns when the tracker next needs a step (expire or due), and false
// if nothing is pending.
func (t *tracker) wake() (time.Time, bool) {
	if t.down != "" {
		return time.Time{}, false
	}
	var at time.Time
	found := false
	for _, e := range t.entries {
		w := e.next
		if e.awaiting {
			w = e.deadline
		}
		if !found || w.Before(at) {
			at, found = w, true
		}
	}
	return at, found
}

func (t *tracker) sorted() []netip.Addr {
	out := make([]netip.Addr, 0, len(t.entries))
	for a := range t.entries {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// confirmed reports whether a kernel state vouches for its lladdr by itself.
func confirmed(state int) bool {
	return state&(unix.NUD_REACHABLE|unix.NUD_PERMANENT|unix.NUD_NOARP) != 0
}

// validMAC rejects missing, all-zero and multicast/broadcast addresses.
func validMAC(mac net.HardwareAddr) bool {
	if len(mac) != 6 || mac[0]&1 != 0 {
		return false
	}
	for _, b := range mac {
		if b != 0 {
			return true
		}
	}
	return false
}
