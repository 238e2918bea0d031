package topo

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestCleanStale makes what a killed run leaves behind — a marker whose
// owner is dead, its namespace with a process in it and its log directory —
// plus a family namespace without any marker, and checks CleanStale removes
// it all.
func TestCleanStale(t *testing.T) {
	RequireRoot(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockState()
	if err != nil {
		t.Fatal(err)
	}
	prefix, err := newPrefix()
	if err != nil {
		unlock()
		t.Fatal(err)
	}
	// A temp dir as the dead process would have named it.
	logDir, err := os.MkdirTemp("", tempPrefix+"logs-"+itoa(dead.Process.Pid)+"-1-")
	if err != nil {
		unlock()
		t.Fatal(err)
	}
	err = writeMarker(marker{Prefix: prefix, Pid: dead.Process.Pid, Start: 1, TempDirs: []string{logDir}})
	unlock()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(markerPath(prefix)); os.RemoveAll(logDir) })
	nsPath, err := createNetNS(prefix + "-rs1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteNetNS(nsPath) })

	// A process in the stale namespace (not our child after we let go).
	sleeper := exec.Command("sleep", "60")
	if err := inNetNS(nsPath, sleeper.Start); err != nil {
		t.Fatal(err)
	}
	go sleeper.Wait() // reaps it once killed

	unlock, _ = lockState()
	orphanPrefix, _ := newPrefix()
	unlock()
	orphan, err := createNetNS(orphanPrefix + "-cl1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteNetNS(orphan) })

	if err := CleanStale(zerolog.New(zerolog.NewTestWriter(t))); err != nil {
		t.Fatalf("CleanStale: %v", err)
	}
	for _, p := range []string{nsPath, orphan, markerPath(prefix), logDir} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there after CleanStale (%v)", p, err)
		}
	}
	err = WaitFor(t.Context(), 5*time.Second, "sleeper in stale namespace killed", func() (bool, error) {
		return syscall.Kill(sleeper.Process.Pid, 0) != nil, nil
	})
	if err != nil {
		t.Error(err)
	}
	if m, _ := filepath.Glob(filepath.Join(netnsDir, prefix+"-*")); len(m) > 0 {
		t.Errorf("left: %v", m)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
