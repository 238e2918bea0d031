package vrrp

// A small, private namespace harness for the root tests of this package:
// nodes "vr-<name>" hang off a bridge in "vr-sw". Stale "vr-" namespaces of
// a killed earlier run are removed first; everything is removed on cleanup.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

const (
	childEnv       = "VRRP_TEST_CHILD"
	childStatusEnv = "VRRP_TEST_STATUS"
	nsFamily       = "vr-"
)

// The lab's namespaces are vr-<pid>-<name>: a run never removes those of
// another test process still running (two checkouts tested at once).
var (
	nsPrefix = fmt.Sprintf("%s%d-", nsFamily, os.Getpid())
	nsSwitch = nsPrefix + "sw"
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(childMain(cfg, os.Getenv(childStatusEnv)))
	}
	os.Exit(m.Run())
}

// childMain runs one instance as a separate process, so that it can be
// SIGKILLed, and writes its status to a file for the test to poll.
func childMain(cfgJSON, statusPath string) int {
	var cfg Config
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano // a separate process: the global is ours
	log := zerolog.New(os.Stderr).With().Timestamp().Logger()
	inst, err := New(cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		var last []byte
		for {
			b, _ := json.Marshal(inst.Status())
			if !bytes.Equal(b, last) {
				tmp := statusPath + ".tmp"
				if os.WriteFile(tmp, b, 0o644) == nil {
					os.Rename(tmp, statusPath)
				}
				last = b
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	if err := inst.Run(ctx); err != nil {
		log.Error().Err(err).Msg("run")
		return 1
	}
	return 0
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
}

func run(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func removeStaleNamespaces() {
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), nsFamily)
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil {
			continue
		}
		if pid != os.Getpid() {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
				continue // another test process's lab
			}
		}
		exec.Command("ip", "netns", "del", e.Name()).Run()
	}
}

type node struct {
	name string // without prefix
	ns   string
	v4   netip.Addr
	v6   netip.Addr // global; the link-local is the kernel's
	h    *netlink.Handle
}

type lab struct {
	t     *testing.T
	nodes map[string]*node
}

// newLab builds a bridge with one node per name: eth0 with 10.77.0.<i>/24
// and fd77::<i>/64, DAD off so addresses are usable at once.
func newLab(t *testing.T, names ...string) *lab {
	requireRoot(t)
	removeStaleNamespaces()
	l := &lab{t: t, nodes: map[string]*node{}}
	t.Cleanup(func() {
		for _, n := range l.nodes {
			if n.h != nil {
				n.h.Close()
			}
		}
		removeStaleNamespaces()
	})
	run(t, "ip", "netns", "add", nsSwitch)
	run(t, "ip", "-n", nsSwitch, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	run(t, "ip", "-n", nsSwitch, "link", "set", "br0", "up")
	for i, name := range names {
		n := &node{name: name, ns: nsPrefix + name,
			v4: netip.AddrFrom4([4]byte{10, 77, 0, byte(i + 1)}),
			v6: netip.MustParseAddr(fmt.Sprintf("fd77::%d", i+1))}
		run(t, "ip", "netns", "add", n.ns)
		l.nodes[name] = n
		run(t, "ip", "netns", "exec", n.ns, "sysctl", "-qw",
			"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
		port := "p" + name
		run(t, "ip", "-n", nsSwitch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", n.ns)
		run(t, "ip", "-n", nsSwitch, "link", "set", port, "master", "br0", "up")
		run(t, "ip", "-n", n.ns, "addr", "add", n.v4.String()+"/24", "dev", "eth0")
		run(t, "ip", "-n", n.ns, "addr", "add", n.v6.String()+"/64", "dev", "eth0", "nodad")
		run(t, "ip", "-n", n.ns, "link", "set", "lo", "up")
		run(t, "ip", "-n", n.ns, "link", "set", "eth0", "up")
		h, err := netns.GetFromName(n.ns)
		if err != nil {
			t.Fatal(err)
		}
		n.h, err = netlink.NewHandleAt(h)
		h.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Wait for the link-local addresses.
	for _, n := range l.nodes {
		waitFor(t, 5*time.Second, n.name+" link-local", func() bool {
			link, err := n.h.LinkByName("eth0")
			if err != nil {
				return false
			}
			addrs, _ := n.h.AddrList(link, netlink.FAMILY_V6)
			for _, a := range addrs {
				if a.IP.IsLinkLocalUnicast() {
					return true
				}
			}
			return false
		})
	}
	return l
}

// hasVIP reports whether the node's eth0 holds ip.
func (n *node) hasVIP(ip netip.Addr) bool {
	link, err := n.h.LinkByName("eth0")
	if err != nil {
		return false
	}
	addrs, err := n.h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if x, ok := netip.AddrFromSlice(a.IP); ok && x.Unmap() == ip {
			return true
		}
	}
	return false
}

// waitFor polls cond every 2ms until it holds or the timeout passes; it
// returns how long it took.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

// proc is a process in a node's namespace: one of our instances or
// keepalived.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stderr *syncBuffer
	status string // our instances: status file
	kaPID  string // keepalived: pid file of its VRRP child
	done   chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (l *lab) start(n *node, name string, args []string, env []string) *proc {
	l.t.Helper()
	p := &proc{t: l.t, name: name, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", n.ns}, args...)...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	l.t.Cleanup(func() {
		p.kill()
		if l.t.Failed() || os.Getenv("VRRP_TEST_LOGS") != "" {
			l.t.Logf("--- %s output:\n%s", p.name, p.stderr)
		}
	})
	return p
}

// startOurs runs one of our instances as a child process in n.
func (l *lab) startOurs(n *node, cfg Config) *proc {
	l.t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		l.t.Fatal(err)
	}
	status := filepath.Join(l.t.TempDir(), "status.json")
	p := l.start(n, "ours@"+n.name, []string{os.Args[0], "-test.run=^$"},
		[]string{childEnv + "=" + string(b), childStatusEnv + "=" + status})
	p.status = status
	return p
}

// ourStatus reads the status file of one of our instances.
func (p *proc) ourStatus() (Status, bool) {
	b, err := os.ReadFile(p.status)
	if err != nil {
		return Status{}, false
	}
	var s Status
	if json.Unmarshal(b, &s) != nil {
		return Status{}, false
	}
	return s, true
}

// startKeepalived runs keepalived's VRRP process in n with conf.
func (l *lab) startKeepalived(n *node, conf string) *proc {
	l.t.Helper()
	if _, err := exec.LookPath("keepalived"); err != nil {
		if os.Getenv("CI") == "true" {
			l.t.Fatal("keepalived not installed: .ci/run must install it")
		}
		l.t.Skip("keepalived not installed")
	}
	dir := l.t.TempDir()
	f := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
		l.t.Fatal(err)
	}
	p := l.start(n, "keepalived@"+n.name, []string{"keepalived", "-n", "-l", "-D", "--vrrp", "-f", f,
		"-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid")}, nil)
	p.kaPID = filepath.Join(dir, "v.pid")
	return p
}

// term asks the process to stop cleanly.
func (p *proc) term() { p.cmd.Process.Signal(syscall.SIGTERM) }

// wait waits for the process to exit.
func (p *proc) wait() {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%s did not stop", p.name)
	}
}

// kill SIGKILLs the process: for keepalived its VRRP child first, so that
// nothing gets to send a priority-0 advert.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	if p.kaPID != "" {
		// Freeze the parent so it neither respawns nor signals its child.
		p.cmd.Process.Signal(syscall.SIGSTOP)
		if b, err := os.ReadFile(p.kaPID); err == nil {
			var pid int
			if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	p.cmd.Process.Kill()
	<-p.done
}
