package tier

import (
	"runtime"
	"testing"

	"github.com/directorlb/director/l7"
	"github.com/rs/zerolog"
)

func TestApplyThreadsSpareP(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	for _, c := range []struct {
		n      int
		engine string
		want   int
	}{
		{1, l7.EngineLoops, 2},
		{2, "", 3}, // the default engine is the loops'
		{2, l7.EngineGoroutines, 2},
	} {
		applyThreads(c.n, c.engine, zerolog.Nop())
		if got := runtime.GOMAXPROCS(0); got != c.want {
			t.Errorf("%d threads, engine %q: GOMAXPROCS %d, want %d", c.n, c.engine, got, c.want)
		}
	}
	t.Setenv("GOMAXPROCS", "3")
	if got := defaultThreads(); got != 3 {
		t.Errorf("defaultThreads with GOMAXPROCS=3: %d", got)
	}
}
