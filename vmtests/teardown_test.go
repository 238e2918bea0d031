package vmtests

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/directorlb/director/vmtests/topo"
	"github.com/vishvananda/netlink"
)

func rootLinks(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	return names
}

func pidGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// A zombie waiting for its (new) parent to reap it is gone too.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// assertGone checks nothing of the run with this prefix is left.
func assertGone(t *testing.T, prefix string, paths []string, pids []int) {
	t.Helper()
	if m, _ := filepath.Glob(filepath.Join("/run/netns", prefix+"-*")); len(m) > 0 {
		t.Errorf("namespaces left: %v", m)
	}
	for _, p := range append([]string{filepath.Join(topo.StateDir, prefix+".json")}, paths...) {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left (%v)", p, err)
		}
	}
	err := topo.WaitFor(context.Background(), 5*time.Second, fmt.Sprintf("processes %v gone", pids), func() (bool, error) {
		for _, pid := range pids {
			if !pidGone(pid) {
				return false, fmt.Errorf("pid %d alive", pid)
			}
		}
		return true, nil
	})
	if err != nil {
		t.Error(err)
	}
}

func TestTeardown(t *testing.T) {
	topo.RequireRoot(t)
	before := rootLinks(t)
	ctx := topo.Context(t, 30*time.Second)
	spec := topo.DRSpec(1, 1, 2)
	spec.XDPMode = topo.XDPNative
	spec.StopTimeout = 300 * time.Millisecond // the sleeper ignores SIGTERM
	top, err := topo.New(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { top.Close() })
	web, err := top.StartWebserver(ctx, top.Host("rs1"))
	if err != nil {
		t.Fatal(err)
	}
	sleeper, err := top.Host("cl1").StartCmd("sleep", "/bin/sh", "-c", "trap '' TERM; exec sleep 60")
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join("/run/netns", top.Prefix+"-*")); len(m) != 5 {
		t.Errorf("namespaces %v, want 4 hosts and the switch", m)
	}
	logDir := top.LogDir()

	start := time.Now()
	if err := top.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Logf("Close took %v", time.Since(start))
	if err := top.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	assertGone(t, top.Prefix, []string{logDir}, []int{web.Pid(), sleeper.Pid()})
	if after := rootLinks(t); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("root namespace links changed: %v -> %v", before, after)
	}
	if _, err := top.Host("cl1").StartCmd("late", "/bin/true"); err == nil {
		t.Errorf("Start after Close worked")
	}
}

// helperRun is the child process of TestStaleCleanupAfterKilledRun
// (mode "killed-run") and TestSignalCleanup ("signal-run"): it builds a
// topology, starts a webserver and a process that escapes Pdeathsig, reports
// "READY <prefix> <logdir> <webserver pid> <orphan pid>" and waits for its
// end.
func helperRun(mode string) {
	if mode == "signal-run" {
		topo.CloseOnSignal()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fail := func(err error) {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	top, err := topo.New(ctx, topo.DRSpec(1, 1, 1))
	if err != nil {
		fail(err)
	}
	web, err := top.StartWebserver(ctx, top.Host("rs1"))
	if err != nil {
		fail(err)
	}
	orphan, err := top.Host("cl1").StartCmd("orphan", "/bin/sh", "-c", "sleep 60 & echo pid=$!; wait")
	if err == nil {
		err = orphan.WaitLog(ctx, "pid=")
	}
	if err != nil {
		fail(err)
	}
	orphanPid := strings.TrimSpace(strings.TrimPrefix(orphan.Log(), "pid="))
	fmt.Printf("READY %s %s %d %s\n", top.Prefix, top.LogDir(), web.Pid(), orphanPid)
	select {}
}

type helper struct {
	cmd               *exec.Cmd
	prefix, logDir    string
	webPid, orphanPid int
}

func startHelper(t *testing.T, mode string) *helper {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: exec.Command(self)}
	h.cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	out, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	h.cmd.Stderr = os.Stderr
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.cmd.Process.Kill(); h.cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if _, serr := fmt.Sscanf(line, "READY %s %s %d %d", &h.prefix, &h.logDir, &h.webPid, &h.orphanPid); err != nil || serr != nil {
		t.Fatalf("helper said %q (%v, %v)", line, err, serr)
	}
	if m, _ := filepath.Glob(filepath.Join("/run/netns", h.prefix+"-*")); len(m) != 4 {
		t.Fatalf("helper's namespaces: %v", m)
	}
	return h
}

// TestSignalCleanup: SIGINT to a process using CloseOnSignal removes its
// topology, then ends the process as SIGINT would.
func TestSignalCleanup(t *testing.T) {
	topo.RequireRoot(t)
	h := startHelper(t, "signal-run")
	h.cmd.Process.Signal(syscall.SIGINT)
	err := h.cmd.Wait()
	ws, _ := h.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("helper ended with %v, want death by SIGINT", err)
	}
	assertGone(t, h.prefix, []string{h.logDir}, []int{h.webPid, h.orphanPid})
}

func TestStaleCleanupAfterKilledRun(t *testing.T) {
	topo.RequireRoot(t)
	h := startHelper(t, "killed-run")

	// Kill the run like a crash or `go test` timeout would.
	h.cmd.Process.Signal(syscall.SIGKILL)
	h.cmd.Wait()
	if pidGone(h.orphanPid) {
		t.Fatalf("orphan %d died with the run; the test needs a process that outlives it", h.orphanPid)
	}
	if _, err := os.Stat(filepath.Join(topo.StateDir, h.prefix+".json")); err != nil {
		t.Fatalf("killed run's marker: %v", err)
	}

	// The next run cleans up before building its own topology.
	next := topo.NewT(t, topo.DRSpec(1, 0, 1))
	assertGone(t, h.prefix, []string{h.logDir}, []int{h.webPid, h.orphanPid})
	if next.Prefix == h.prefix {
		t.Errorf("new run reused prefix %s", h.prefix)
	}
	if _, err := os.Stat(filepath.Join(topo.StateDir, next.Prefix+".json")); err != nil {
		t.Errorf("new run's marker: %v", err)
	}
}
