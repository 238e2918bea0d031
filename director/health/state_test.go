package health_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/directorlb/director/director/health"
)

// step is a transition seen while feeding results: after result i the
// state became to.
type step struct {
	i  int
	to health.State
}

func TestMachine(t *testing.T) {
	up, down := health.StateUp, health.StateDown
	tests := []struct {
		name       string
		rise, fall int
		initial    health.State
		results    string // '+' pass, '-' fail
		want       []step
		final      health.State
		succ, fail int
	}{
		{name: "up stays up on passes", rise: 2, fall: 3, initial: up, results: "+++", final: up, succ: 3},
		{name: "up survives fall-1 failures", rise: 2, fall: 3, initial: up, results: "--", final: up, fail: 2},
		{name: "up goes down on fall failures", rise: 2, fall: 3, initial: up, results: "---", want: []step{{2, down}}, final: down, fail: 3},
		{name: "fall 1 goes down at once", rise: 2, fall: 1, initial: up, results: "-", want: []step{{0, down}}, final: down, fail: 1},
		{name: "a pass resets the failure run", rise: 2, fall: 3, initial: up, results: "--+--", final: up, fail: 2},
		{name: "failures after a reset count from zero", rise: 2, fall: 3, initial: up, results: "--+---", want: []step{{5, down}}, final: down, fail: 3},
		{name: "down stays down on failures", rise: 2, fall: 3, initial: down, results: "----", final: down, fail: 4},
		{name: "start down needs rise passes", rise: 2, fall: 3, initial: down, results: "+", final: down, succ: 1},
		{name: "start down comes up after rise", rise: 2, fall: 3, initial: down, results: "++", want: []step{{1, up}}, final: up, succ: 2},
		{name: "rise 1 comes up at once", rise: 1, fall: 3, initial: down, results: "+", want: []step{{0, up}}, final: up, succ: 1},
		{name: "a failure resets the pass run", rise: 3, fall: 1, initial: down, results: "++-++", final: down, succ: 2},
		{name: "full cycle", rise: 2, fall: 3, initial: up, results: "---++---", want: []step{{2, down}, {4, up}, {7, down}}, final: down, fail: 3},
		{name: "flapping from up never falls", rise: 2, fall: 2, initial: up, results: "-+-+-+-+", final: up, succ: 1},
		{name: "flapping from down never rises", rise: 2, fall: 2, initial: down, results: "+-+-+-+-", final: down, fail: 1},
		{name: "flapping with rise=fall=1 follows every result", rise: 1, fall: 1, initial: up, results: "-+-+",
			want: []step{{0, down}, {1, up}, {2, down}, {3, up}}, final: up, succ: 1},
		{name: "passes past rise do not retrigger", rise: 2, fall: 2, initial: down, results: "+++++", want: []step{{1, up}}, final: up, succ: 5},
		{name: "failures past fall do not retrigger", rise: 2, fall: 2, initial: up, results: "-----", want: []step{{1, down}}, final: down, fail: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := health.NewMachine(tt.rise, tt.fall, tt.initial)
			if err != nil {
				t.Fatal(err)
			}
			var got []step
			for i, r := range tt.results {
				from := m.State()
				to, changed := m.Observe(r == '+')
				if changed {
					if to == from {
						t.Errorf("result %d: changed but state stayed %v", i, to)
					}
					got = append(got, step{i, to})
				} else if to != from {
					t.Errorf("result %d: state %v -> %v without a change", i, from, to)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("transitions = %v, want %v", got, tt.want)
			}
			if m.State() != tt.final {
				t.Errorf("final state = %v, want %v", m.State(), tt.final)
			}
			if m.Successes() != tt.succ || m.Failures() != tt.fail {
				t.Errorf("successes, failures = %d, %d, want %d, %d", m.Successes(), m.Failures(), tt.succ, tt.fail)
			}
		})
	}
}

func TestNewMachineInvalid(t *testing.T) {
	tests := []struct {
		rise, fall int
		initial    health.State
	}{
		{0, 1, health.StateUp},
		{1, 0, health.StateUp},
		{-1, 3, health.StateDown},
		{2, 3, health.StateUnknown},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("rise=%d,fall=%d,%v", tt.rise, tt.fall, tt.initial), func(t *testing.T) {
			if _, err := health.NewMachine(tt.rise, tt.fall, tt.initial); err == nil {
				t.Error("NewMachine succeeded, want an error")
			}
		})
	}
}

func TestMachineReconfigureKeepsStateAndRuns(t *testing.T) {
	m, err := health.NewMachine(2, 5, health.StateUp)
	if err != nil {
		t.Fatal(err)
	}
	m.Observe(false)
	m.Observe(false)
	if err := m.Reconfigure(2, 2); err != nil {
		t.Fatal(err)
	}
	if m.State() != health.StateUp || m.Failures() != 2 {
		t.Fatalf("after reconfigure: %v with %d failures, want up with 2", m.State(), m.Failures())
	}
	// Two failures already meet the new fall; the next one tips it.
	if to, changed := m.Observe(false); !changed || to != health.StateDown {
		t.Errorf("Observe(false) = %v, %v, want down, true", to, changed)
	}
	if err := m.Reconfigure(0, 1); err == nil {
		t.Error("Reconfigure(0, 1) succeeded, want an error")
	}
}

func TestMachineTransitional(t *testing.T) {
	m, err := health.NewMachine(2, 2, health.StateUp)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		ok   bool
		want bool
	}{
		{true, false},  // up, passing
		{false, true},  // up, started failing
		{false, false}, // down now
		{true, true},   // down, started passing
		{true, false},  // up again
	}
	for i, c := range checks {
		m.Observe(c.ok)
		if got := m.Transitional(); got != c.want {
			t.Errorf("after result %d (%v, state %v): Transitional = %v, want %v", i, c.ok, m.State(), got, c.want)
		}
	}
}
