package topo

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// live holds the topologies not yet closed, for CloseOnSignal.
var live struct {
	sync.Mutex
	m map[*Topology]struct{}
}

func register(t *Topology) {
	live.Lock()
	defer live.Unlock()
	if live.m == nil {
		live.m = map[*Topology]struct{}{}
	}
	live.m[t] = struct{}{}
}

func unregister(t *Topology) {
	live.Lock()
	defer live.Unlock()
	delete(live.m, t)
}

// CloseAll closes every topology of this process that is still open.
func CloseAll() {
	live.Lock()
	ts := make([]*Topology, 0, len(live.m))
	for t := range live.m {
		ts = append(ts, t)
	}
	live.Unlock()
	var wg sync.WaitGroup
	for _, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = t.Close()
		}()
	}
	wg.Wait()
}

var signalOnce sync.Once

// CloseOnSignal makes the first SIGINT or SIGTERM close every open topology
// and then end the process as that signal would have. NewT calls it; a
// main() may call it too, or watch signals itself and call Close.
func CloseOnSignal() {
	signalOnce.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			sig := <-ch
			CloseAll()
			signal.Reset(sig)
			_ = syscall.Kill(os.Getpid(), sig.(syscall.Signal))
			// The signal arrives asynchronously; exit by hand only if the
			// process survives it.
			time.Sleep(time.Second)
			os.Exit(128 + int(sig.(syscall.Signal)))
		}()
	})
}
