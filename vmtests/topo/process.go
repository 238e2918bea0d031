package topo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProcSpec is a process to start inside a host's namespace.
type ProcSpec struct {
	// Name labels the process and its log file <host>-<name>.log; default
	// the base name of Path.
	Name string
	Path string
	Args []string
	// Env is added to the test's environment.
	Env []string
	Dir string
}

// Process is a process started in a host's namespace, in its own process
// group, with stdout and stderr going to a log file. If the harness's
// process dies, the kernel SIGKILLs it (Pdeathsig); a killed run's leftovers
// are also killed by the next run's stale cleanup.
type Process struct {
	Name    string
	Host    *Host
	LogPath string

	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	mu      sync.Mutex
	stopped bool
}

// DefaultStopTimeout is how long Stop waits after SIGTERM before SIGKILL
// unless told otherwise.
const DefaultStopTimeout = 3 * time.Second

// Start starts a process in h's namespace. The process is stopped by
// Topology.Close unless stopped before.
func (h *Host) Start(ps ProcSpec) (*Process, error) {
	h.topo.mu.Lock()
	closed := h.topo.closed
	h.topo.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("%s: start %s: topology closed", h.Name, ps.Name)
	}
	if ps.Name == "" {
		ps.Name = filepath.Base(ps.Path)
	}
	logPath := filepath.Join(h.topo.logDir, fmt.Sprintf("%s-%s.log", h.Name, ps.Name))
	for i := 2; fileExists(logPath); i++ {
		logPath = filepath.Join(h.topo.logDir, fmt.Sprintf("%s-%s.%d.log", h.Name, ps.Name, i))
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()

	cmd := exec.Command(ps.Path, ps.Args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), ps.Env...)
	cmd.Dir = ps.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// The child inherits the network namespace of the thread that forks it.
	// With *os.File outputs Start runs no goroutines of its own.
	if err := h.Do(cmd.Start); err != nil {
		return nil, fmt.Errorf("%s: start %s: %w", h.Name, ps.Name, err)
	}
	p := &Process{Name: ps.Name, Host: h, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	h.topo.addProcess(p)
	h.topo.log.Debug().Str("host", h.Name).Str("proc", ps.Name).Int("pid", cmd.Process.Pid).Msg("started")
	return p, nil
}

// StartCmd is Start with a name, a path and arguments.
func (h *Host) StartCmd(name, path string, args ...string) (*Process, error) {
	return h.Start(ProcSpec{Name: name, Path: path, Args: args})
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the process's exit error (nil while running or after a clean exit).
func (p *Process) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.waitErr
}

// ExitSignal is the signal that ended the process, or 0.
func (p *Process) ExitSignal() syscall.Signal {
	if !p.Exited() || p.cmd.ProcessState == nil {
		return 0
	}
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return ws.Signal()
	}
	return 0
}

// Wait waits for the process to exit or ctx to end.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.waitErr
	case <-ctx.Done():
		return fmt.Errorf("%s/%s: %w", p.Host.Name, p.Name, ctx.Err())
	}
}

// Signal sends sig to the process's group (the process and its children).
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	err := syscall.Kill(-p.Pid(), sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// Kill SIGKILLs the process group and waits for the process to exit, like
// a crash.
func (p *Process) Kill() error {
	p.markStopped()
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return nil
}

// Stop sends SIGTERM, waits up to timeout (Spec.StopTimeout if 0) and then
// SIGKILLs. It returns the exit error unless the process had to be killed
// or died of SIGTERM, which count as stopped.
func (p *Process) Stop(timeout time.Duration) error {
	p.markStopped()
	if timeout <= 0 {
		timeout = p.Host.topo.spec.StopTimeout
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.Host.topo.log.Warn().Str("host", p.Host.Name).Str("proc", p.Name).Msg("no exit after SIGTERM, sending SIGKILL")
		if err := p.Kill(); err != nil {
			return err
		}
		return nil
	}
	if sig := p.ExitSignal(); sig == syscall.SIGTERM || sig == syscall.SIGKILL {
		return nil
	}
	return p.waitErr
}

func (p *Process) markStopped() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
}

// Log returns what the process wrote so far.
func (p *Process) Log() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(log %s: %v)", p.LogPath, err)
	}
	return string(b)
}

// WaitLog waits until the process's output contains s. It fails early if
// the process exits first.
func (p *Process) WaitLog(ctx context.Context, s string) error {
	return WaitFor(ctx, 0, fmt.Sprintf("%s/%s to print %q", p.Host.Name, p.Name, s), func() (bool, error) {
		if strings.Contains(p.Log(), s) {
			return true, nil
		}
		if p.Exited() {
			return false, Permanent(fmt.Errorf("process exited (%v); log:\n%s", p.waitErr, tail(p.Log(), 2000)))
		}
		return false, nil
	})
}

func (p *Process) String() string {
	state := "running"
	if p.Exited() {
		state = fmt.Sprintf("exited: %v", p.waitErr)
	}
	return fmt.Sprintf("%s/%s (pid %d, %s)", p.Host.Name, p.Name, p.Pid(), state)
}

// Run runs a command to completion in h's namespace and returns its
// combined output. ctx's end kills the command's process group.
func (h *Host) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	if err := h.Do(cmd.Start); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", h.Name, name, err)
	}
	err := cmd.Wait()
	if err != nil {
		return out.Bytes(), fmt.Errorf("%s: %s %s: %w; output:\n%s", h.Name, name, strings.Join(args, " "), err, tail(out.String(), 2000))
	}
	return out.Bytes(), nil
}

// Curl runs curl in h's namespace with -sS and --max-time 5 (later
// arguments may override it), e.g. h.Curl(ctx, "--interface", src, url).
func (h *Host) Curl(ctx context.Context, args ...string) ([]byte, error) {
	return h.Run(ctx, "curl", append([]string{"-sS", "--max-time", "5"}, args...)...)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
