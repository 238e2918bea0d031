package l7

import (
	"time"

	"golang.org/x/sys/unix"
)

// A loop that always finds events when it calls epoll_wait never
// sleeps, and the kernel may let it run out its whole time slice, a
// millisecond or more: a client or server thread woken on its CPU by
// one of its writes waits all that time for the CPU, though the loop
// had answered it at once. perf sched on the 2-core bench (the
// loop, wrk and nginx sharing the cores) showed exactly that at the
// tail: the loop running 2.15 ms without a break while the wrk thread
// it had just written to waited 2.16 ms on its run queue, and the
// other CPU idle part of that time. So a loop that has run yieldAfter
// without sleeping gives its CPU up once (sched_yield): whoever waits
// for the CPU runs, and the loop comes back after it. With nobody
// waiting, sched_yield returns at once; it costs one syscall per
// yieldAfter of continuous work.
const yieldAfter = 300 * time.Microsecond

// sleptOver is how long an epoll_wait must have taken for the loop to
// count as having let others run: it slept, or it lost the CPU inside
// the call. A wait that returns at once takes a microsecond or two.
const sleptOver = 30 * time.Microsecond

// cpuShare decides when a loop yields its CPU.
type cpuShare struct {
	busySince time.Time // the loop has not let go of its CPU since

	// For tests: nil is sched_yield and time.Now.
	yield func()
	clock func() time.Time
}

// waited takes the start and the end of an epoll_wait and returns the
// time the loop goes on at: end, or later if it yielded.
func (s *cpuShare) waited(start, end time.Time) time.Time {
	if end.Sub(start) > sleptOver || s.busySince.IsZero() {
		s.busySince = end
		return end
	}
	if end.Sub(s.busySince) < yieldAfter {
		return end
	}
	var now time.Time
	if s.yield != nil {
		s.yield()
		now = s.clock()
	} else {
		unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
		now = time.Now()
	}
	s.busySince = now
	return now
}
