package health_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/directorlb/director/director/health"
)

func needProgram(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s not available: %v", path, err)
	}
}

func TestCommandCheck(t *testing.T) {
	needProgram(t, "/bin/sh")
	needProgram(t, "/bin/true")
	needProgram(t, "/bin/false")
	tests := []struct {
		name      string
		argv      []string
		wantOK    bool
		want      health.CauseKind
		wantCause string
	}{
		{name: "true", argv: []string{"/bin/true"}, wantOK: true, want: health.CauseOK, wantCause: "ok"},
		{name: "false", argv: []string{"/bin/false"}, want: health.CauseExit, wantCause: "exit code 1"},
		{name: "exit 3", argv: []string{"/bin/sh", "-c", "exit 3"}, want: health.CauseExit, wantCause: "exit code 3"},
		{name: "PATH lookup", argv: []string{"true"}, wantOK: true, want: health.CauseOK, wantCause: "ok"},
		{name: "signal", argv: []string{"/bin/sh", "-c", "kill -TERM $$"}, want: health.CauseSignal, wantCause: "killed by signal: terminated"},
		{name: "missing program", argv: []string{"/nonexistent/check"}, want: health.CauseError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := health.NewCommandChecker(health.CommandConfig{Argv: tt.argv})
			if err != nil {
				t.Fatal(err)
			}
			res := c.Check(checkCtx(t, generousTimeout))
			if res.OK != tt.wantOK || res.Cause.Kind != tt.want {
				t.Fatalf("Check = ok %v, cause %q, want ok %v, %v", res.OK, res.Cause, tt.wantOK, tt.want)
			}
			if tt.wantCause != "" && res.Cause.String() != tt.wantCause {
				t.Errorf("cause = %q, want %q", res.Cause, tt.wantCause)
			}
		})
	}
}

func TestCommandCheckEnv(t *testing.T) {
	needProgram(t, "/bin/sh")
	out := filepath.Join(t.TempDir(), "env")
	c, err := health.NewCommandChecker(health.CommandConfig{
		Argv: []string{"/bin/sh", "-c", `printf '%s\n' "$DIRECTOR_TARGET" "$DIRECTOR_TARGET_ADDR" "$DIRECTOR_TARGET_PORT" "$EXTRA" "$PWD" > "$1"`, "sh", out},
		Addr: "[2001:db8::1]:8080",
		Env:  []string{"EXTRA=yes"},
		Dir:  "/",
	})
	if err != nil {
		t.Fatal(err)
	}
	if res := c.Check(checkCtx(t, generousTimeout)); !res.OK {
		t.Fatalf("Check failed: %v", res.Cause)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := "[2001:db8::1]:8080\n2001:db8::1\n8080\nyes\n/\n"
	if string(got) != want {
		t.Errorf("command saw\n%s\nwant\n%s", got, want)
	}
}

// TestCommandCheckTimeoutKillsGroup runs a script that starts a background
// sleep and waits for it. On timeout the whole process group, the sleep
// included, must be killed.
func TestCommandCheckTimeoutKillsGroup(t *testing.T) {
	needProgram(t, "/bin/sh")
	needProgram(t, "/bin/sleep")
	pidFile := filepath.Join(t.TempDir(), "pid")
	c, err := health.NewCommandChecker(health.CommandConfig{
		Argv: []string{"/bin/sh", "-c", `/bin/sleep 60 & echo $! > "$1.tmp" && mv "$1.tmp" "$1"; wait`, "sh", pidFile},
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := c.Check(checkCtx(t, shortTimeout))
	if res.OK || res.Cause.Kind != health.CauseCommandTimeout || res.Cause.String() != "command timeout" {
		t.Fatalf("Check = ok %v, cause %q, want command timeout", res.OK, res.Cause)
	}
	if elapsed := time.Since(start); elapsed > 30*time.Second {
		t.Errorf("Check returned after %v; the command sleeps 60s and should have been killed", elapsed)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("script did not record the sleep's pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(generousTimeout)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("background sleep %d survived the check's timeout", pid)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not timing
	}
}

// processGone reports whether pid no longer runs: it does not exist or is
// a zombie waiting for a reaper.
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// "pid (comm) S ...": the state follows the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X')
}

func TestNewCommandCheckerInvalid(t *testing.T) {
	tests := []struct {
		name string
		cfg  health.CommandConfig
	}{
		{"no argv", health.CommandConfig{}},
		{"empty program", health.CommandConfig{Argv: []string{""}}},
		{"bad address", health.CommandConfig{Argv: []string{"/bin/true"}, Addr: "10.0.0.1"}},
		{"bad env", health.CommandConfig{Argv: []string{"/bin/true"}, Env: []string{"NOEQUALS"}}},
		{"env without key", health.CommandConfig{Argv: []string{"/bin/true"}, Env: []string{"=x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := health.NewCommandChecker(tt.cfg); err == nil {
				t.Error("NewCommandChecker succeeded, want an error")
			}
		})
	}
}
