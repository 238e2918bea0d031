package health

import (
	"fmt"
	"strconv"
)

// State is a target's health.
type State uint8

// States. StateUnknown is the zero value and never the state of a
// configured target.
const (
	StateUnknown State = iota
	StateUp
	StateDown
)

// String returns "up", "down" or "unknown".
func (s State) String() string {
	switch s {
	case StateUp:
		return "up"
	case StateDown:
		return "down"
	case StateUnknown:
		return "unknown"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Machine is the rise/fall state machine of one target, driven one result
// at a time: an up target goes down after fall consecutive failures, a down
// target comes up after rise consecutive successes. A success resets the
// failure count and vice versa, so a flapping backend with rise, fall > 1
// stays where it is.
//
// HAProxy documents rise/fall this way; its implementation keeps a single
// health counter that a success moves up and a failure moves down, so
// there an interleaved success only delays a fall by one check. Machine
// follows the documented, keepalived-like behaviour: a success resets the
// failure run.
//
// Machine is not safe for concurrent use; it does no I/O and knows no time.
type Machine struct {
	rise, fall int
	state      State
	successes  int
	failures   int
}

// NewMachine returns a machine in the initial state, StateUp (HAProxy's and
// keepalived's default) or StateDown (keepalived's "alpha": a target must
// pass rise checks before it gets traffic).
func NewMachine(rise, fall int, initial State) (*Machine, error) {
	if initial != StateUp && initial != StateDown {
		return nil, fmt.Errorf("health: initial state %v: want up or down", initial)
	}
	m := &Machine{state: initial}
	if err := m.Reconfigure(rise, fall); err != nil {
		return nil, err
	}
	return m, nil
}

// Reconfigure changes rise and fall, keeping the state and the current
// runs of successes and failures: if the new fall is already reached, the
// next failure brings the target down.
func (m *Machine) Reconfigure(rise, fall int) error {
	if rise < 1 || fall < 1 {
		return fmt.Errorf("health: rise %d, fall %d: both must be at least 1", rise, fall)
	}
	m.rise, m.fall = rise, fall
	return nil
}

// Observe feeds one check result. It returns the state after the result
// and whether the result changed it.
func (m *Machine) Observe(ok bool) (to State, changed bool) {
	if ok {
		m.successes++
		m.failures = 0
		if m.state == StateDown && m.successes >= m.rise {
			m.state = StateUp
			return m.state, true
		}
		return m.state, false
	}
	m.failures++
	m.successes = 0
	if m.state == StateUp && m.failures >= m.fall {
		m.state = StateDown
		return m.state, true
	}
	return m.state, false
}

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Successes returns the number of consecutive passing results.
func (m *Machine) Successes() int { return m.successes }

// Failures returns the number of consecutive failing results.
func (m *Machine) Failures() int { return m.failures }

// Rise returns the configured rise.
func (m *Machine) Rise() int { return m.rise }

// Fall returns the configured fall.
func (m *Machine) Fall() int { return m.fall }

// Transitional reports whether the latest results disagree with the state:
// an up target that has started failing or a down target that has started
// passing. HAProxy checks at "fastinter" then.
func (m *Machine) Transitional() bool {
	return (m.state == StateUp && m.failures > 0) || (m.state == StateDown && m.successes > 0)
}
