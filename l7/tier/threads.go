package tier

import (
	"runtime"

	"github.com/rs/zerolog"
)

// applyThreads sets how many cores run Go code at once (HAProxy's
// nbthread), if the section says. It is the process's setting: a process
// runs one tier. Unlike nbthread it applies on a reload too.
//
// The default, one per core, suits a machine of its own. On a small
// machine shared with busy clients or servers one thread can do better:
// on 2 cores shared with wrk and nginx, l7/bench measured a lower p99
// with 1 than with 2 (see l7/doc.go, Runtime settings).
func applyThreads(n int, log zerolog.Logger) {
	if n <= 0 || runtime.GOMAXPROCS(0) == n {
		return
	}
	prev := runtime.GOMAXPROCS(n)
	log.Info().Int("threads", n).Int("was", prev).Msg("threads set")
}
