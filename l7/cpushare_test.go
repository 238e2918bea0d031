package l7

import (
	"testing"
	"time"
)

// fakeCPU drives a cpuShare on a fake clock: a loop round takes work,
// an epoll_wait takes wait, a yield takes yielded.
type fakeCPU struct {
	now    time.Time
	yields int
	s      cpuShare
}

func newFakeCPU(yielded time.Duration) *fakeCPU {
	f := &fakeCPU{now: time.Unix(1000, 0)}
	f.s.yield = func() { f.yields++; f.now = f.now.Add(yielded) }
	f.s.clock = func() time.Time { return f.now }
	return f
}

// run runs rounds of work, each after an epoll_wait of wait, for d.
func (f *fakeCPU) run(d, work, wait time.Duration) {
	end := f.now.Add(d)
	for f.now.Before(end) {
		start := f.now
		f.now = f.now.Add(wait)
		if got := f.s.waited(start, f.now); got != f.now {
			panic("waited returned another time than the clock's")
		}
		f.now = f.now.Add(work)
	}
}

func TestCPUShareYieldsWhenNeverSleeping(t *testing.T) {
	f := newFakeCPU(50 * time.Microsecond)
	// 10 ms of rounds of 20 µs whose epoll_wait never sleeps: about one
	// yield per yieldAfter of work.
	f.run(10*time.Millisecond, 20*time.Microsecond, time.Microsecond)
	want := int(10 * time.Millisecond / (yieldAfter + 50*time.Microsecond))
	if f.yields < want-3 || f.yields > want+3 {
		t.Fatalf("%d yields in 10 ms of busy rounds, want about %d", f.yields, want)
	}
}

func TestCPUShareNoYieldWhenSleeping(t *testing.T) {
	f := newFakeCPU(50 * time.Microsecond)
	// Every epoll_wait sleeps: others had the CPU, nothing to give.
	f.run(10*time.Millisecond, 100*time.Microsecond, sleptOver+time.Microsecond)
	if f.yields != 0 {
		t.Fatalf("%d yields though every epoll_wait slept", f.yields)
	}
	// A sleep now and then, more often than yieldAfter: no yield either.
	end := f.now.Add(10 * time.Millisecond)
	for i := 0; f.now.Before(end); i++ {
		wait := time.Microsecond
		if i%5 == 0 {
			wait = time.Millisecond
		}
		f.run(time.Nanosecond, 40*time.Microsecond, wait)
	}
	if f.yields != 0 {
		t.Fatalf("%d yields though the loop slept every 200 µs", f.yields)
	}
}

func TestCPUShareOneRoundLongerThanBudget(t *testing.T) {
	f := newFakeCPU(10 * time.Microsecond)
	// One round of 1 ms: the next epoll_wait yields once, not once per
	// 300 µs it overran.
	f.run(time.Nanosecond, time.Millisecond, time.Microsecond)
	f.run(time.Nanosecond, time.Microsecond, time.Microsecond)
	if f.yields != 1 {
		t.Fatalf("%d yields after one long round, want 1", f.yields)
	}
}
