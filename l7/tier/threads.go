package tier

import (
	"os"
	"runtime"
	"strconv"

	"github.com/directorlb/director/l7"
	"github.com/rs/zerolog"
)

// applyThreads sets Go's GOMAXPROCS for n threads serving (HAProxy's
// nbthread), the frontends' event loops. It is the process's setting: a
// process runs one tier. Unlike nbthread it applies on a reload too.
//
// The event loops get one P more than they are, for the rest of the
// process (accepting, checks, the goroutine engine, the ctl API). A loop
// asleep in epoll_wait is in a syscall with its P, and while no P is idle
// Go's sysmon takes that P back after 20 µs and starts a spinning thread
// to find work for it, every time a loop sleeps: on 2 cores shared with
// wrk and nginx, 10k sysmon wake-ups a second and 4-13% of a core in
// those threads. An idle P tells the runtime nobody waits for one.
//
// On a small machine shared with busy clients or servers one thread can
// do better than one per core (see l7/doc.go).
func applyThreads(n int, engine string, log zerolog.Logger) {
	procs := n
	if engine != l7.EngineGoroutines {
		procs = n + 1
	}
	if prev := runtime.GOMAXPROCS(procs); prev != procs {
		log.Info().Int("threads", n).Int("gomaxprocs", procs).Int("was", prev).Msg("threads set")
	}
}

// defaultThreads is the threads of a section that does not say: Go's
// default GOMAXPROCS, one per core the process may use, or the
// GOMAXPROCS environment variable; not what an earlier tier of the
// process set.
func defaultThreads() int {
	if n, err := strconv.Atoi(os.Getenv("GOMAXPROCS")); err == nil && n > 0 {
		return n
	}
	runtime.SetDefaultGOMAXPROCS()
	return runtime.GOMAXPROCS(0)
}
