package vmtests

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/directorlb/director/vmtests/topo"
	"golang.org/x/sys/unix"
)

func TestProcesses(t *testing.T) {
	top := topo.NewT(t, topo.DRSpec(1, 0, 1))
	h := top.Host("rs1")
	ctx := topo.Context(t, 20*time.Second)
	var nsStat unix.Stat_t
	if err := unix.Stat(h.NSPath, &nsStat); err != nil {
		t.Fatal(err)
	}

	t.Run("start, output, namespace, SIGKILL", func(t *testing.T) {
		p, err := h.StartCmd("sh", "/bin/sh", "-c", "echo out; echo err >&2; exec sleep 60")
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WaitLog(ctx, "out\nerr\n"); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", p.Pid()), &st); err != nil || st.Ino != nsStat.Ino {
			t.Errorf("process in netns %d, want %s's %d (%v)", st.Ino, h, nsStat.Ino, err)
		}
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
		if !p.Exited() || p.ExitSignal() != syscall.SIGKILL {
			t.Errorf("after Kill: %v, signal %v", p, p.ExitSignal())
		}
	})

	t.Run("stop: SIGTERM handled", func(t *testing.T) {
		p, err := h.StartCmd("graceful", "/bin/sh", "-c", `trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done`)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WaitLog(ctx, "ready"); err != nil {
			t.Fatal(err)
		}
		if err := p.Stop(2 * time.Second); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if !strings.Contains(p.Log(), "bye") || p.ExitSignal() != 0 {
			t.Errorf("not a clean exit: %v, signal %v, log %q", p, p.ExitSignal(), p.Log())
		}
	})

	t.Run("stop: SIGTERM ignored, then SIGKILL", func(t *testing.T) {
		p, err := h.StartCmd("stubborn", "/bin/sh", "-c", `trap '' TERM; echo ready; exec sleep 60`)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WaitLog(ctx, "ready"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := p.Stop(200 * time.Millisecond); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if d := time.Since(start); p.ExitSignal() != syscall.SIGKILL || d < 200*time.Millisecond || d > 2*time.Second {
			t.Errorf("escalation: signal %v after %v", p.ExitSignal(), d)
		}
	})

	t.Run("WaitLog fails fast when the process dies", func(t *testing.T) {
		p, err := h.StartCmd("dies", "/bin/sh", "-c", "echo oops; exit 3")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = p.WaitLog(ctx, "never printed")
		if err == nil || !strings.Contains(err.Error(), "oops") || time.Since(start) > 5*time.Second {
			t.Errorf("WaitLog = %v", err)
		}
	})

	t.Run("run to completion", func(t *testing.T) {
		out, err := h.Run(ctx, "readlink", "/proc/self/ns/net")
		if want := fmt.Sprintf("net:[%d]", nsStat.Ino); err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("readlink in %s: %q %v, want %s", h, out, err, want)
		}
		short := topo.Context(t, 200*time.Millisecond)
		start := time.Now()
		if _, err := h.Run(short, "sleep", "10"); err == nil || time.Since(start) > 3*time.Second {
			t.Errorf("Run past its context: %v after %v", err, time.Since(start))
		}
		if _, err := h.Run(ctx, "false"); err == nil || !strings.Contains(err.Error(), "rs1: false") {
			t.Errorf("failing command: %v", err)
		}
	})

	t.Run("Do re-raises panics and restores the thread", func(t *testing.T) {
		func() {
			defer func() {
				if v := recover(); v != "boom" {
					t.Errorf("recovered %v, want boom", v)
				}
			}()
			_ = h.Do(func() error { panic("boom") })
		}()
		assertThreadsInRootNS(t)
	})

	t.Run("log report and stop all", func(t *testing.T) {
		p, err := h.StartCmd("left", "/bin/sh", "-c", "echo still here; exec sleep 60")
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WaitLog(ctx, "still here"); err != nil {
			t.Fatal(err)
		}
		top.StopAll()
		if !p.Exited() {
			t.Errorf("%v not stopped", p)
		}
		rep := top.LogReport(1000)
		for _, s := range []string{"rs1/sh", "rs1/dies", "(exited on its own)", "oops", "still here"} {
			if !strings.Contains(rep, s) {
				t.Errorf("log report lacks %q:\n%s", s, rep)
			}
		}
		if _, err := os.Stat(p.LogPath); err != nil {
			t.Error(err)
		}
	})
}
