package tier

import (
	"os"
	"runtime"
	"strconv"

	"github.com/directorlb/director/l7"
	"github.com/rs/zerolog"
)

// applyThreads sets Go's GOMAXPROCS for n threads serving (HAProxy's
// nbthread), the frontends' event loops: l7.Procs, a P more than the
// loops. It is the process's setting: a process runs one tier. Unlike
// nbthread it applies on a reload too.
//
// On a small machine shared with busy clients or servers one thread can
// do better than one per core (see l7/doc.go).
func applyThreads(n int, engine string, log zerolog.Logger) {
	procs := l7.Procs(n, engine)
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
