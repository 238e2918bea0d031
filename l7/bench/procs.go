package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// procs starts child processes and guarantees they are gone when the
// bench ends: each runs in its own process group that kill ends with
// SIGKILL, and each gets SIGKILL from the kernel if the bench itself dies
// (Pdeathsig), so nothing outlives a crash or a Ctrl-C.
type procs struct {
	mu   sync.Mutex
	list []child
	dir  string
	// With -pin: the CPU list (taskset's) of the proxies and that of
	// everything else; empty, the scheduler places them.
	proxyCPU, otherCPUs string
}

// pinCPUs gives the proxies the last CPU the bench may use and the load
// and the servers the others. A proxy with more threads than one CPU would
// be measured on fewer CPUs than it runs threads, so only one thread is
// allowed.
func (p *procs) pinCPUs(threads []int) error {
	if len(threads) != 1 || threads[0] != 1 {
		return errors.New("-pin: wants -threads 1 (the proxy has one CPU)")
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return fmt.Errorf("-pin: %w", err)
	}
	var cpus []string
	for i := 0; i < 1024; i++ {
		if set.IsSet(i) {
			cpus = append(cpus, strconv.Itoa(i))
		}
	}
	if len(cpus) < 2 {
		return errors.New("-pin: needs 2 CPUs or more")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return errors.New("-pin: taskset not found: apt-get install util-linux")
	}
	p.proxyCPU = cpus[len(cpus)-1]
	p.otherCPUs = strings.Join(cpus[:len(cpus)-1], ",")
	return nil
}

// onProxyCPU and onOtherCPUs run argv on the proxies' CPU or on the
// others (taskset execs it: the process keeps its pid).
func (p *procs) onProxyCPU(argv []string) []string  { return taskset(p.proxyCPU, argv) }
func (p *procs) onOtherCPUs(argv []string) []string { return taskset(p.otherCPUs, argv) }

func taskset(cpus string, argv []string) []string {
	if cpus == "" {
		return argv
	}
	return append([]string{"taskset", "-c", cpus}, argv...)
}

type child struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *procs) start(name string, argv []string, env []string) (*exec.Cmd, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.Create(filepath.Join(p.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	p.mu.Lock()
	p.list = append(p.list, child{cmd, done})
	p.mu.Unlock()
	return cmd, nil
}

// term sends SIGTERM to the process pid that this bench started and waits
// for it to exit, so that it can flush what it writes at exit.
func (p *procs) term(pid int) {
	p.mu.Lock()
	var done chan struct{}
	for _, c := range p.list {
		if c.cmd.Process.Pid == pid {
			done = c.done
		}
	}
	p.mu.Unlock()
	if done == nil {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// killAll ends every process group this bench started, by its id, and
// reaps the processes.
func (p *procs) killAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.list {
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	}
	for _, c := range p.list {
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
		}
	}
	p.list = nil
}

// waitHTTP waits until addr answers GET / with a 2xx, or the deadline.
func waitHTTP(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = probe(addr); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w", addr, last)
		case <-tick.C:
		}
	}
}

func probe(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "HTTP/1.1 2") {
		return errors.New("status " + strings.TrimSpace(line))
	}
	return nil
}

// cpuTicks returns utime and stime of pid, all threads, in clock ticks.
func cpuTicks(pid int) (user, sys int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(s[i+2:])
	// Fields after the command: state is f[0]; utime and stime are the
	// 14th and 15th fields of the line, f[11] and f[12] here.
	if len(f) < 13 {
		return 0, 0, errors.New("short /proc stat")
	}
	user, err1 := strconv.ParseInt(f[11], 10, 64)
	sys, err2 := strconv.ParseInt(f[12], 10, 64)
	return user, sys, errors.Join(err1, err2)
}

// clkTck is USER_HZ; it is 100 on every Linux architecture Go supports.
const clkTck = 100
