package topo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// netnsDir is where named namespaces live, as for `ip netns`.
const netnsDir = "/run/netns"

// inNetNS runs fn on a fresh goroutine locked to its OS thread, with the
// thread moved into the network namespace at path. Afterwards the thread is
// moved back and unlocked; if that fails the goroutine exits still locked,
// so the runtime ends the thread instead of reusing it in the wrong
// namespace (cilium/ebpf internal/testutils/netns_linux.go). A panic in fn is
// re-raised in the caller's goroutine.
//
// fn must not call runtime.LockOSThread/UnlockOSThread, and anything it
// starts on other goroutines runs in the caller's namespace, not path's.
func inNetNS(path string, fn func() error) error {
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open netns: %w", err)
	}
	defer target.Close()
	return onLockedThread(func() error {
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter netns %s: %w", path, err)
		}
		return fn()
	})
}

// onLockedThread runs fn on a new goroutine locked to a thread whose network
// namespace is restored after fn returns (see inNetNS).
func onLockedThread(fn func() error) error {
	type result struct {
		err      error
		panicked bool
		value    any
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("open current netns: %w", err)}
			return
		}
		var res result
		func() {
			defer func() {
				if v := recover(); v != nil {
					res = result{panicked: true, value: v}
				}
			}()
			res.err = fn()
		}()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			orig.Close()
			// Stay locked: the thread terminates with this goroutine.
			res.err = errors.Join(res.err, fmt.Errorf("restore netns (thread terminated): %w", err))
			done <- res
			return
		}
		orig.Close()
		runtime.UnlockOSThread()
		done <- res
	}()
	res := <-done
	if res.panicked {
		panic(res.value)
	}
	return res.err
}

// createNetNS creates a network namespace bind-mounted at /run/netns/name,
// like `ip netns add name`, without moving any long-lived thread.
func createNetNS(name string) (string, error) {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(netnsDir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return "", fmt.Errorf("create netns %s: %w", name, err)
	}
	f.Close()
	err = onLockedThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		return unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, "")
	})
	if err != nil {
		os.Remove(path)
		return "", fmt.Errorf("create netns %s: %w", name, err)
	}
	return path, nil
}

// deleteNetNS kills every process left in the namespace, then unmounts and
// removes its name. The kernel frees the namespace (and the veths and bridge
// in it) once nothing holds it.
func deleteNetNS(path string) error {
	var errs []error
	if _, err := killNetNSPids(path); err != nil {
		errs = append(errs, err)
	}
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("unmount %s: %w", path, err))
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// netnsPids lists the processes whose (main thread's) network namespace is
// the one at path, ourselves excluded.
func netnsPids(path string) ([]int, error) {
	var want unix.Stat_t
	if err := unix.Stat(path, &want); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) != nil {
			continue
		}
		if st.Dev == want.Dev && st.Ino == want.Ino {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// killNetNSPids SIGKILLs every process in the namespace at path.
func killNetNSPids(path string) ([]int, error) {
	pids, err := netnsPids(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list processes in %s: %w", path, err)
	}
	for _, pid := range pids {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	return pids, nil
}
