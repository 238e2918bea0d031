package neigh

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Test namespaces are named nb-<pid>-<role>, so that a run can tell its own
// from those a crashed run left behind.
const nsPrefix = "nb-"

const netnsDir = "/run/netns"

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
}

// onFreshThread runs f on a new goroutine locked to its OS thread, so that f
// may change the thread's network namespace. The namespace is restored
// afterwards; if that fails, the goroutine exits still locked and the
// runtime throws the thread away: no thread is ever left in the wrong
// namespace. f must not call runtime.LockOSThread itself.
func onFreshThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("restore netns: %w (thread terminated)", err))
			return // still locked: the thread dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// testNS is a named network namespace that lives as long as the test.
type testNS struct {
	name string
	h    netns.NsHandle
	nl   *netlink.Handle
}

func newTestNS(t *testing.T, role string) *testNS {
	t.Helper()
	name := fmt.Sprintf("%s%d-%s", nsPrefix, os.Getpid(), role)
	_ = netns.DeleteNamed(name) // a leftover of this very pid, reused
	ns := &testNS{name: name, h: netns.None()}
	err := onFreshThread(func() error {
		h, err := netns.NewNamed(name) // moves this thread into it
		ns.h = h
		return err
	})
	if err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	t.Cleanup(func() {
		if ns.nl != nil {
			ns.nl.Close()
		}
		ns.h.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	if ns.nl, err = netlink.NewHandleAt(ns.h); err != nil {
		t.Fatalf("netlink handle in %s: %v", name, err)
	}
	return ns
}

// do runs f on a thread inside the namespace (see onFreshThread).
func (ns *testNS) do(f func() error) error {
	return onFreshThread(func() error {
		if err := netns.Set(ns.h); err != nil {
			return fmt.Errorf("enter netns %s: %w", ns.name, err)
		}
		return f()
	})
}

// removeStaleNamespaces deletes nb-<pid>-* namespaces whose process is gone.
func removeStaleNamespaces(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), nsPrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // its test is still running
		}
		if err := netns.DeleteNamed(e.Name()); err != nil {
			t.Logf("remove stale netns %s: %v", e.Name(), err)
		} else {
			t.Logf("removed stale netns %s", e.Name())
		}
	}
}
