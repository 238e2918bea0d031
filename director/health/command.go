package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Environment variables a command check receives, besides the director's
// own environment and CommandConfig.Env.
const (
	EnvTarget     = "DIRECTOR_TARGET"      // "host:port"
	EnvTargetAddr = "DIRECTOR_TARGET_ADDR" // host
	EnvTargetPort = "DIRECTOR_TARGET_PORT" // port
)

// commandWaitDelay bounds how long Check waits for the command's I/O after
// killing it (see exec.Cmd.WaitDelay).
const commandWaitDelay = time.Second

// CommandConfig describes an external command check (keepalived
// MISC_CHECK). Exit status 0 means up, anything else down.
type CommandConfig struct {
	// Argv is the program and its arguments; no shell is involved.
	// Argv[0] is looked up in PATH if it has no slash. Required.
	Argv []string
	// Addr is the target's "host:port", passed in EnvTarget, EnvTargetAddr
	// and EnvTargetPort. Optional.
	Addr string
	// Env holds extra "KEY=value" entries, appended last.
	Env []string
	// Dir is the working directory; empty means the director's.
	Dir string
}

// CommandChecker runs a command per check. The command runs in its own
// process group; when the check's context expires the whole group is
// killed with SIGKILL, so a script's children do not outlive the check.
// Its standard input and outputs are /dev/null.
type CommandChecker struct {
	argv []string
	env  []string
	dir  string
}

// NewCommandChecker validates cfg and returns a checker.
func NewCommandChecker(cfg CommandConfig) (*CommandChecker, error) {
	if len(cfg.Argv) == 0 || cfg.Argv[0] == "" {
		return nil, errors.New("health: command check: empty argv")
	}
	var env []string
	if cfg.Addr != "" {
		host, port, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("health: command check %q: address %q: %w", cfg.Argv[0], cfg.Addr, err)
		}
		env = append(env, EnvTarget+"="+cfg.Addr, EnvTargetAddr+"="+host, EnvTargetPort+"="+port)
	}
	for _, kv := range cfg.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("health: command check %q: env entry %q is not KEY=value", cfg.Argv[0], kv)
		}
	}
	env = append(env, cfg.Env...)
	return &CommandChecker{argv: append([]string(nil), cfg.Argv...), env: env, dir: cfg.Dir}, nil
}

// String describes the checker, e.g. "command /usr/lib/director/check-db".
func (c *CommandChecker) String() string { return "command " + strings.Join(c.argv, " ") }

// Check runs the command once and waits for it.
func (c *CommandChecker) Check(ctx context.Context) Result {
	start := time.Now()
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Dir = c.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The child leads its own process group: kill all of it.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = commandWaitDelay

	err := cmd.Run()
	latency := time.Since(start)
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(cerr, context.DeadlineExceeded) {
			return Fail(Cause{Kind: CauseCommandTimeout, Err: err}, latency)
		}
		return Fail(Cause{Kind: CauseCanceled, Err: err}, latency)
	}
	if err == nil {
		return Pass(latency)
	}
	var xerr *exec.ExitError
	if errors.As(err, &xerr) {
		if ws, ok := xerr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return Fail(Cause{Kind: CauseSignal, Detail: ws.Signal().String(), Err: err}, latency)
		}
		return Fail(Cause{Kind: CauseExit, Code: xerr.ExitCode(), Err: err}, latency)
	}
	return Fail(Cause{Kind: CauseError, Detail: err.Error(), Err: err}, latency)
}
