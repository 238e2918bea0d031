// Command bench measures the L7 tier against HAProxy on the same nginx
// backends: wrk at several connection counts, runs interleaved (ours,
// haproxy, ours, haproxy...), medians of requests/s, p50/p99 latency and
// CPU per request of the proxy process, and the ratios.
//
//	go run ./l7/bench [-runs 5] [-d 10s] [-c 64,256] [-threads 1,2] [-pin]
//
// By default the scheduler places the proxy, wrk and nginx on the
// machine's cores as it likes, as the measurement does; with
// -pin (and -threads 1) each proxy has a CPU of its own and wrk and nginx
// share the others, which separates what the proxy does to a request's
// latency from what the sharing of cores does.
//
// It needs nginx, haproxy and wrk in PATH (Debian: apt-get install
// haproxy nginx wrk) and sends traffic to loopback only. Every process it
// starts is killed when it ends, also on error or Ctrl-C.
//
// Run as "bench serve -listen ADDR -backends A,B,C", the binary is the
// director tier configured as the HAProxy below; the bench re-executes
// itself that way so that the tier has a process of its own to measure.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

const body100 = "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := serve(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type target struct {
	name string
	addr string
	pid  int
	ref  string // the HAProxy target it is compared with: the one with as many threads
}

// targetName names a proxy by its thread count when there are several.
func targetName(proxy string, n int, all []int) string {
	if len(all) == 1 {
		return proxy
	}
	return fmt.Sprintf("%s-%dt", proxy, n)
}

func parseInts(list string) ([]int, error) {
	var out []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, err
		}
		if n < 1 {
			return nil, fmt.Errorf("%d: want 1 or more", n)
		}
		out = append(out, n)
	}
	return out, nil
}

type sample struct {
	rps, p50, p99, cpuUs float64 // p50/p99 in ms
	sysShare             float64 // part of the CPU time spent in the kernel
	errors               string
}

type proxyFlags []string

func (p *proxyFlags) String() string     { return strings.Join(*p, " ") }
func (p *proxyFlags) Set(v string) error { *p = append(*p, v); return nil }

func run() error {
	runs := flag.Int("runs", 5, "runs per target and connection count")
	dur := flag.Duration("d", 10*time.Second, "duration of one wrk run")
	connsFlag := flag.String("c", "64,256", "connection counts")
	wrkThreads := flag.Int("t", 2, "wrk threads")
	threadsFlag := flag.String("threads", "1,2", "thread counts: each proxy runs at each (HAProxy nbthread, the tier's threads)")
	noOurs := flag.Bool("no-director", false, "leave out the director tier (compare -proxy candidates only)")
	keep := flag.Bool("keep", false, "keep the work directory (configs, logs)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the director tier to this file")
	pin := flag.Bool("pin", false, "give each proxy the last CPU to itself and wrk and nginx the others (with -threads 1): the proxy's own latency, apart from the scheduler's sharing of cores")
	var extra proxyFlags
	flag.Var(&extra, "proxy", "extra candidate NAME=BINARY, started with -listen ADDR -backends A,B,C (repeatable)")
	flag.Parse()

	conns, err := parseInts(*connsFlag)
	if err != nil {
		return fmt.Errorf("-c: %w", err)
	}
	threads, err := parseInts(*threadsFlag)
	if err != nil {
		return fmt.Errorf("-threads: %w", err)
	}
	for _, bin := range []string{"nginx", "haproxy", "wrk"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s not found: apt-get install haproxy nginx wrk", bin)
		}
	}
	dir, err := os.MkdirTemp("", "l7bench-")
	if err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(dir)
	} else {
		fmt.Println("work directory:", dir)
	}
	ps := &procs{dir: dir}
	defer ps.killAll()
	if *pin {
		if err := ps.pinCPUs(threads); err != nil {
			return err
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	backends := []string{"127.0.0.1:18081", "127.0.0.1:18082", "127.0.0.1:18083"}
	if err := startNginx(ctx, ps, dir, backends); err != nil {
		return err
	}
	var targets []target
	for i, n := range threads {
		if !*noOurs {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			pre := []string{"serve", "-threads", strconv.Itoa(n)}
			if *cpuprofile != "" && i == 0 {
				abs, err := filepath.Abs(*cpuprofile)
				if err != nil {
					return err
				}
				pre = append(pre, "-cpuprofile", abs)
			}
			t, err := startProxy(ctx, ps, targetName("director", n, threads), self, fmt.Sprintf("127.0.0.1:%d", 18090+2*i), backends, pre)
			if err != nil {
				return err
			}
			t.ref = targetName("haproxy", n, threads)
			targets = append(targets, t)
			if *cpuprofile != "" && i == 0 {
				defer ps.term(t.pid) // before killAll, deferred earlier
			}
		}
		t, err := startHAProxy(ctx, ps, dir, targetName("haproxy", n, threads), fmt.Sprintf("127.0.0.1:%d", 18091+2*i), n, backends)
		if err != nil {
			return err
		}
		t.ref = t.name
		targets = append(targets, t)
	}
	for i, e := range extra {
		name, bin, ok := strings.Cut(e, "=")
		if !ok {
			return fmt.Errorf("-proxy %q: want NAME=BINARY", e)
		}
		t, err := startProxy(ctx, ps, name, bin, fmt.Sprintf("127.0.0.1:%d", 18190+i), backends, nil)
		if err != nil {
			return err
		}
		t.ref = targetName("haproxy", threads[len(threads)-1], threads)
		targets = append(targets, t)
	}

	fmt.Printf("wrk -t%d -d%s, %d runs interleaved, 100-byte responses, 3 nginx backends\n", *wrkThreads, *dur, *runs)
	if *pin {
		fmt.Printf("pinned: each proxy on CPU %s, wrk and nginx on CPU %s\n", ps.proxyCPU, ps.otherCPUs)
	}
	// results[conns][target] = samples
	results := map[int]map[string][]sample{}
	for _, c := range conns {
		results[c] = map[string][]sample{}
		for _, t := range targets { // warm-up, not counted
			if _, err := wrkRun(ctx, ps, t, c, *wrkThreads, 2*time.Second); err != nil {
				return err
			}
		}
		for r := 0; r < *runs; r++ {
			order := targets
			if r%2 == 1 { // alternate who goes first
				order = make([]target, len(targets))
				for i := range targets {
					order[i] = targets[len(targets)-1-i]
				}
			}
			for _, t := range order {
				s, err := wrkRun(ctx, ps, t, c, *wrkThreads, *dur)
				if err != nil {
					return err
				}
				results[c][t.name] = append(results[c][t.name], s)
				fmt.Printf("  c=%-4d run %d %-10s %9.0f req/s  p50 %6.2fms  p99 %6.2fms  %6.1f µs CPU/req (%2.0f%% kernel)%s\n",
					c, r+1, t.name, s.rps, s.p50, s.p99, s.cpuUs, 100*s.sysShare, s.errors)
			}
		}
	}
	report(os.Stdout, conns, targets, results)
	return nil
}

// report prints the medians of each target and its ratios against the
// HAProxy with as many threads, then each proxy at its best thread count
// (by requests/s) against the other's best.
func report(out *os.File, conns []int, targets []target, results map[int]map[string][]sample) {
	fmt.Fprintln(out, "\nmedians (ratios against haproxy with as many threads: req/s ours/theirs, CPU theirs/ours — above 1.0 is better; p99 ours/theirs — below 1.0 is better)")
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "conns\ttarget\treq/s\tp50 ms\tp99 ms\tCPU µs/req\tkernel\treq/s ×\tCPU ×\tp99 ×\t")
	row := func(c int, name string, s, h sample) {
		fmt.Fprintf(w, "%d\t%s\t%.0f\t%.2f\t%.2f\t%.1f\t%.0f%%\t%.2f\t%.2f\t%.2f\t\n", c, name, s.rps, s.p50, s.p99, s.cpuUs,
			100*s.sysShare, s.rps/h.rps, h.cpuUs/s.cpuUs, s.p99/h.p99)
	}
	best := map[int][2]string{} // conns → best director target, best haproxy target
	for _, c := range conns {
		m := map[string]sample{}
		for _, t := range targets {
			m[t.name] = medians(results[c][t.name])
		}
		b := best[c]
		for _, t := range targets {
			row(c, t.name, m[t.name], m[t.ref])
			i := 0
			if strings.HasPrefix(t.name, "haproxy") {
				i = 1
			} else if !strings.HasPrefix(t.name, "director") {
				continue
			}
			if b[i] == "" || m[t.name].rps > m[b[i]].rps {
				b[i] = t.name
			}
		}
		best[c] = b
	}
	if len(targets) > 2 {
		fmt.Fprintln(w, "\t\t\t\t\t\t\t\t\t\t")
		fmt.Fprintln(w, "conns\tbest of each\t\t\t\t\t\t\t\t\t")
		for _, c := range conns {
			b := best[c]
			if b[0] == "" || b[1] == "" {
				continue
			}
			d, h := medians(results[c][b[0]]), medians(results[c][b[1]])
			row(c, b[0]+" vs "+b[1], d, h)
		}
	}
	w.Flush()
}

func medians(ss []sample) sample {
	med := func(f func(sample) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		sort.Float64s(v)
		if len(v) == 0 {
			return 0
		}
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return sample{
		rps:      med(func(s sample) float64 { return s.rps }),
		p50:      med(func(s sample) float64 { return s.p50 }),
		p99:      med(func(s sample) float64 { return s.p99 }),
		cpuUs:    med(func(s sample) float64 { return s.cpuUs }),
		sysShare: med(func(s sample) float64 { return s.sysShare }),
	}
}

func startProxy(ctx context.Context, ps *procs, name, bin, listen string, backends, pre []string) (target, error) {
	argv := append([]string{bin}, pre...)
	argv = append(argv, "-listen", listen, "-backends", strings.Join(backends, ","))
	cmd, err := ps.start(name, ps.onProxyCPU(argv), nil)
	if err != nil {
		return target{}, err
	}
	if err := waitHTTP(ctx, listen); err != nil {
		return target{}, fmt.Errorf("%s: %w (see %s.log)", name, err, filepath.Join(ps.dir, name))
	}
	return target{name: name, addr: listen, pid: cmd.Process.Pid}, nil
}

func startNginx(ctx context.Context, ps *procs, dir string, backends []string) error {
	var servers strings.Builder
	for _, b := range backends {
		fmt.Fprintf(&servers, `  server {
    listen %s reuseport;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    location / { default_type text/plain; return 200 "%s"; }
  }
`, b, body100)
	}
	conf := fmt.Sprintf(`worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s;
  proxy_temp_path %[1]s;
  fastcgi_temp_path %[1]s;
  uwsgi_temp_path %[1]s;
  scgi_temp_path %[1]s;
%[2]s}
`, dir, servers.String())
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return err
	}
	if _, err := ps.start("nginx", ps.onOtherCPUs([]string{"nginx", "-p", dir, "-c", path, "-g", "daemon off; master_process off;"}), nil); err != nil {
		return err
	}
	for _, b := range backends {
		if err := waitHTTP(ctx, b); err != nil {
			return fmt.Errorf("nginx: %w (see %s)", err, filepath.Join(dir, "nginx.log"))
		}
	}
	return nil
}

// startHAProxy runs HAProxy with the configuration the director tier is
// measured against: roundrobin, cookie insert, forwardfor, keep-alive on
// both sides, nbthread threads, one process (no master) so that its CPU
// time is that of one PID.
func startHAProxy(ctx context.Context, ps *procs, dir, name, listen string, nbthread int, backends []string) (target, error) {
	var servers strings.Builder
	for i, b := range backends {
		fmt.Fprintf(&servers, "  server s%d %s cookie s%d check inter 2s\n", i+1, b, i+1)
	}
	conf := fmt.Sprintf(`global
  nbthread %d
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  option forwardfor
frontend fe
  bind %s
  default_backend be
backend be
  balance roundrobin
  cookie SRV insert indirect nocache
  option redispatch
  retries 3
%s`, nbthread, listen, servers.String())
	path := filepath.Join(dir, name+".cfg")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return target{}, err
	}
	cmd, err := ps.start(name, ps.onProxyCPU([]string{"haproxy", "-db", "-f", path}), nil)
	if err != nil {
		return target{}, err
	}
	if err := waitHTTP(ctx, listen); err != nil {
		return target{}, fmt.Errorf("%s: %w (see %s.log)", name, err, filepath.Join(dir, name))
	}
	return target{name: name, addr: listen, pid: cmd.Process.Pid}, nil
}

func wrkRun(ctx context.Context, ps *procs, t target, conns, threads int, d time.Duration) (sample, error) {
	u0, s0, err := cpuTicks(t.pid)
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w", t.name, err)
	}
	argv := ps.onOtherCPUs([]string{"wrk", "--latency", "-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(conns),
		"-d" + strconv.Itoa(int(d.Seconds())) + "s", "http://" + t.addr + "/"})
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return sample{}, fmt.Errorf("wrk against %s: %w\n%s", t.name, err, out)
	}
	u1, s1, err := cpuTicks(t.pid)
	if err != nil {
		return sample{}, fmt.Errorf("%s died: %w", t.name, err)
	}
	s, err := parseWrk(string(out))
	if err != nil {
		return sample{}, fmt.Errorf("wrk against %s: %w\n%s", t.name, err, out)
	}
	total := s.rps * d.Seconds()
	ticks := (u1 - u0) + (s1 - s0)
	s.cpuUs = float64(ticks) / clkTck * 1e6 / total
	if ticks > 0 {
		s.sysShare = float64(s1-s0) / float64(ticks)
	}
	return s, nil
}

// parseWrk reads requests/s and the 50% and 99% latencies of wrk --latency.
func parseWrk(out string) (sample, error) {
	var s sample
	var ok50, ok99, okRPS bool
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return s, err
			}
			s.rps, okRPS = v, true
		case len(f) == 2 && f[0] == "50%":
			s.p50, ok50 = parseDur(f[1])
		case len(f) == 2 && f[0] == "99%":
			s.p99, ok99 = parseDur(f[1])
		case strings.Contains(line, "Non-2xx") || strings.Contains(line, "Socket errors"):
			s.errors += "  [" + strings.TrimSpace(line) + "]"
		}
	}
	if !okRPS || !ok50 || !ok99 {
		return s, fmt.Errorf("unexpected wrk output")
	}
	return s, nil
}

// parseDur turns wrk's "1.23ms", "512.00us" or "1.02s" into milliseconds.
func parseDur(v string) (float64, bool) {
	for _, u := range []struct {
		suffix string
		ms     float64
	}{{"us", 1e-3}, {"ms", 1}, {"m", 60e3}, {"s", 1e3}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			f, err := strconv.ParseFloat(n, 64)
			return f * u.ms, err == nil
		}
	}
	return 0, false
}
