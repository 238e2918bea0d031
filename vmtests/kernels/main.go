// Command kernels runs Go test binaries inside Debian's own kernels under
// qemu, to prove the XDP program loads and behaves the same on the kernels
// users run.
//
//	go run ./vmtests/kernels -kernels 6.1,6.12 -pkgs ./loader,./vmtests/kernels/smoke
//
// For each entry of -kernels (a series such as 6.1, an exact linux-image-*
// package name, or a local .deb) it:
//
//   - resolves the newest signed generic amd64 image of that series on the
//     Debian mirror the host's apt already uses, through a private apt
//     configuration under the cache directory (suites <codename>,
//     -updates, -security and -backports; -suites adds e.g. bullseye for
//     5.10), so nothing is installed and the host's apt state is untouched;
//   - fetches it with apt-get download and unpacks the kernel image, its
//     config and its modules with dpkg-deb into <cache>/kernels, once per
//     package version; older builds of the same series are pruned;
//   - builds an uncompressed initramfs: busybox-static, the -modules and
//     their dependencies (read from each module's .modinfo, decompressed on
//     the host), the test binaries (CGO_ENABLED=0 go test -c) with their
//     testdata, an /init that mounts proc, sysfs, devtmpfs, bpffs, cgroup2,
//     debugfs and tracefs, brings up lo, insmods the modules and runs each
//     binary with -test.v, and a /sbin/modprobe stand-in that reports
//     modules the kernel tried to autoload;
//   - boots it with qemu-system-x86_64 under TCG (-accel kvm hangs on the
//     CI machines) with the console on ttyS0 and the test output plus
//     marker lines on ttyS1, each to its own file, and judges the kernel by
//     the markers: booted, modules loaded, every binary exited 0, /init
//     finished, within -timeout.
//
// It prints one PASS/FAIL line per kernel with its timings, the failing
// tests' output and the console tail, a closing "kernels: N passed, N
// failed" line, and exits non-zero if any kernel failed. If the mirror is
// unreachable (or with -offline) it uses the newest cached build.
//
// Needs qemu-system-x86, busybox-static and xz-utils (Debian packages).
// The cache is $DIRECTOR_VMTEST_CACHE, else $XDG_CACHE_HOME/director-vmtests
// (~/.cache/director-vmtests).
package main

import (
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

type options struct {
	kernels   []string
	pkgs      []string
	modules   []string
	cache     string
	timeout   time.Duration
	mem       string
	smp       int
	accel     string
	parallel  int
	testArgs  []string
	offline   bool
	verbose   bool
	keep      bool
	busybox   string
	keyring   string
	archive   string
	security  string
	codename  string
	suites    []string
	appendCmd string
}

func main() {
	var o options
	var kernels, pkgs, modules, testArgs, suites string
	flag.StringVar(&kernels, "kernels", "6.1,6.12", "comma-separated kernels: a series (6.1), a package name (linux-image-...) or a .deb path")
	flag.StringVar(&pkgs, "pkgs", "./vmtests/kernels/smoke", "comma-separated Go packages (patterns allowed) whose tests run in each kernel; more may follow as arguments")
	// veth for the attach tests; xfrm_user and nfnetlink because a
	// vishvananda/netlink handle opened without a family list opens
	// NETLINK_XFRM and NETLINK_NETFILTER sockets too, which a real host
	// autoloads but the guest cannot.
	flag.StringVar(&modules, "modules", "veth,xfrm_user,nfnetlink", "comma-separated kernel modules to load before the tests (skipped where built in)")
	flag.StringVar(&o.cache, "cache", defaultCacheDir(), "cache directory for apt state and unpacked kernels ($DIRECTOR_VMTEST_CACHE)")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "per-kernel time limit, boot included")
	flag.StringVar(&o.mem, "mem", "1G", "guest memory")
	flag.IntVar(&o.smp, "smp", 2, "guest CPUs")
	flag.StringVar(&o.accel, "accel", "tcg", "qemu accelerator (tcg or kvm)")
	flag.IntVar(&o.parallel, "parallel", 1, "kernels booted at once")
	flag.StringVar(&testArgs, "test-args", "", "extra arguments for every test binary, space-separated (e.g. -test.run=XDP)")
	flag.BoolVar(&o.offline, "offline", false, "do not ask the mirror; use the newest cached build of each kernel")
	flag.BoolVar(&o.verbose, "v", false, "print test output and console log of passing kernels too")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (initramfs, logs)")
	flag.StringVar(&o.busybox, "busybox", "/bin/busybox", "statically linked busybox (Debian package busybox-static)")
	flag.StringVar(&o.keyring, "keyring", "/usr/share/keyrings/debian-archive-keyring.gpg", "keyring that signs the Debian archive")
	flag.StringVar(&o.archive, "archive", "", "Debian archive URI (default: the host's apt source for its codename)")
	flag.StringVar(&o.security, "security", "", "Debian security archive URI (default: the host's)")
	flag.StringVar(&o.codename, "codename", "", "Debian codename whose -security and -backports kernels to use (default: the host's)")
	flag.StringVar(&suites, "suites", "", "comma-separated Debian suites to search (default: <codename>, -updates, -security, -backports)")
	flag.StringVar(&o.appendCmd, "append", "", "extra kernel command line")
	flag.Parse()
	o.kernels = splitList(kernels)
	o.pkgs = append(splitList(pkgs), flag.Args()...)
	o.modules = splitList(modules)
	o.testArgs = strings.Fields(testArgs)
	o.suites = splitList(suites)
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "vmtest-kernels:", err)
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func defaultCacheDir() string {
	if d := os.Getenv("DIRECTOR_VMTEST_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "director-vmtests")
	}
	return "/var/cache/director-vmtests"
}

func logf(format string, args ...any) {
	fmt.Printf("vmtest-kernels: "+format+"\n", args...)
}

// kernelRun is the state and outcome of one kernel of the matrix.
type kernelRun struct {
	spec     kernelSpec
	k        *kernel
	fetch    time.Duration
	cached   bool
	features string
	err      error // preparation error
	why      []string
	res      *guestResult
	wall     time.Duration
	logDir   string
	console  []byte
	timedOut bool
	// rebooted: what the first boot printed when the guest died before
	// /init and was booted again.
	rebooted []string
}

// diedBeforeInit reports whether the guest ended before /init ran, on its
// own (a panic ends QEMU: panic=-1, -no-reboot) rather than by the time
// limit. Nothing of this project ran in it: the initramfs is the same on
// every boot, so one that cannot start fails the second boot as well. An
// early kernel oops under TCG (an int3 left by code patching on another
// vCPU, seen once in 6.12) is the emulator's, and worth a second boot.
func (r *kernelRun) diedBeforeInit() bool {
	return r.err == nil && r.res != nil && !r.res.booted && !r.timedOut
}

func (r *kernelRun) passed() bool { return r.err == nil && len(r.why) == 0 }

func run(o options) error {
	if len(o.kernels) == 0 || len(o.pkgs) == 0 {
		return errors.New("need -kernels and at least one package")
	}
	var specs []kernelSpec
	for _, s := range o.kernels {
		spec, err := parseKernelSpec(s)
		if err != nil {
			return err
		}
		specs = append(specs, spec)
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return errors.New("qemu-system-x86_64 not found: apt-get install qemu-system-x86")
	}
	if err := checkStatic(o.busybox); err != nil {
		return fmt.Errorf("%v: apt-get install busybox-static", err)
	}
	for _, tool := range []string{"dpkg-deb", "xz"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found", tool)
		}
	}
	if err := os.MkdirAll(filepath.Join(o.cache, "kernels"), 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "director-vmtest-")
	if err != nil {
		return err
	}

	start := time.Now()
	tests, err := buildTests(o.pkgs, filepath.Join(work, "bin"))
	if err != nil {
		return err
	}
	logf("built %d test binaries in %s", len(tests), time.Since(start).Round(100*time.Millisecond))

	runs := make([]*kernelRun, len(specs))
	for i, spec := range specs {
		runs[i] = &kernelRun{spec: spec, logDir: filepath.Join(work, "kernel-"+strings.ReplaceAll(spec.name, "/", "_"))}
	}
	fetchKernels(o, runs)

	// Kernels boot in the order given, at most o.parallel at a time.
	queue := make(chan *kernelRun)
	var wg sync.WaitGroup
	var printMu sync.Mutex
	for range max(1, o.parallel) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range queue {
				r.err = bootKernel(o, qemu, r, tests)
				if r.diedBeforeInit() {
					r.rebooted = consoleProblems(r.console)
					if len(r.rebooted) == 0 {
						r.rebooted = []string{"no kernel message"}
					}
					os.Rename(filepath.Join(r.logDir, "console.log"), filepath.Join(r.logDir, "console-first-boot.log"))
					r.err = bootKernel(o, qemu, r, tests)
				}
				printMu.Lock()
				report(o, r)
				printMu.Unlock()
			}
		}()
	}
	for _, r := range runs {
		if r.err == nil {
			queue <- r
		}
	}
	close(queue)
	wg.Wait()

	failed := 0
	fmt.Println()
	fmt.Println("kernel matrix:")
	for _, r := range runs {
		status := "PASS"
		if !r.passed() {
			status = "FAIL"
			failed++
		}
		name := r.spec.name
		if r.k != nil {
			name = fmt.Sprintf("%s (%s %s)", r.spec.name, r.k.pkg, r.k.version)
		}
		line := fmt.Sprintf("  %s  %-52s", status, name)
		if r.res != nil {
			fetch := fmt.Sprintf("fetch %s", r.fetch.Round(100*time.Millisecond))
			if r.cached {
				fetch = "cached"
			}
			line += fmt.Sprintf("  %s, boot %.1fs, tests %.1fs, vm %s", fetch, r.res.bootTime, testSeconds(r.res), r.wall.Round(100*time.Millisecond))
		}
		fmt.Println(line)
		if r.err != nil {
			fmt.Printf("        %v\n", r.err)
		}
		for _, w := range r.why {
			fmt.Printf("        %s\n", w)
		}
	}
	fmt.Printf("total %s\n", time.Since(start).Round(100*time.Millisecond))
	if failed > 0 || o.keep {
		fmt.Printf("logs kept in %s\n", work)
	} else {
		os.RemoveAll(work)
	}
	fmt.Printf("kernels: %d passed, %d failed\n", len(runs)-failed, failed)
	if failed > 0 {
		return fmt.Errorf("%d of %d kernels failed", failed, len(runs))
	}
	return nil
}

func testSeconds(r *guestResult) float64 {
	var s float64
	for _, t := range r.tests {
		if t.end > t.start {
			s += t.end - t.start
		}
	}
	return s
}

// checkStatic fails if file is not a statically linked ELF executable: the
// initramfs has no dynamic loader or libc.
func checkStatic(file string) error {
	f, err := elf.Open(file)
	if err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked", file)
		}
	}
	return nil
}

// buildTests compiles one static test binary per package.
func buildTests(patterns []string, dir string) ([]guestTest, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	args := append([]string{"list", "-f", "{{.ImportPath}}|{{.Dir}}|{{len .TestGoFiles}}|{{len .XTestGoFiles}}|{{if .Module}}{{.Module.Path}}{{end}}"}, patterns...)
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return nil, fmt.Errorf("go list %s: %s", strings.Join(patterns, " "), ee.Stderr)
		}
		return nil, err
	}
	var tests []guestTest
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 5 {
			continue
		}
		importPath, pkgDir, modPath := f[0], f[1], f[4]
		if f[2] == "0" && f[3] == "0" {
			logf("%s has no tests, skipped", importPath)
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(importPath, modPath), "/")
		if name == "" {
			name = filepath.Base(importPath)
		}
		name = strings.ReplaceAll(name, "/", "_")
		if !safeName.MatchString(name) || seen[name] {
			return nil, fmt.Errorf("cannot name a test binary for %s", importPath)
		}
		seen[name] = true
		bin := filepath.Join(dir, name+".test")
		cmd := exec.Command("go", "test", "-c", "-o", bin, importPath)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go test -c %s: %v\n%s", importPath, err, out)
		}
		if err := checkStatic(bin); err != nil {
			return nil, err
		}
		t := guestTest{name: name, binary: bin}
		if st, err := os.Stat(filepath.Join(pkgDir, "testdata")); err == nil && st.IsDir() {
			t.testdat = filepath.Join(pkgDir, "testdata")
		}
		tests = append(tests, t)
	}
	if len(tests) == 0 {
		return nil, fmt.Errorf("no test binaries: none of %s has tests", strings.Join(patterns, " "))
	}
	return tests, nil
}

// fetchKernels resolves, downloads and unpacks each kernel, or finds it in
// the cache.
func fetchKernels(o options, runs []*kernelRun) {
	kernelsDir := filepath.Join(o.cache, "kernels")
	var apt *aptRoot
	aptErr := errors.New("offline")
	needApt := false
	for _, r := range runs {
		needApt = needApt || r.spec.deb == ""
	}
	if needApt && !o.offline {
		apt, aptErr = setupApt(o)
		if aptErr != nil {
			logf("apt: %v; falling back to cached kernels", aptErr)
		}
	}
	for _, r := range runs {
		t0 := time.Now()
		if r.spec.deb != "" {
			dir := filepath.Join(kernelsDir, entryName("local", filepath.Base(r.spec.deb)))
			r.k, r.cached = loadCachedKernel(dir)
			if !r.cached {
				r.k, r.err = unpackKernel(r.spec.deb, dir, "", "")
			}
		} else if aptErr != nil {
			var ok bool
			if r.k, ok = newestCached(kernelsDir, r.spec.pattern); ok {
				r.cached = true
			} else {
				r.err = fmt.Errorf("no cached kernel matches %s and the mirror is unavailable: %v", r.spec.pattern, aptErr)
			}
		} else {
			r.k, r.cached, r.err = fetchFromMirror(apt, kernelsDir, r.spec)
		}
		r.fetch = time.Since(t0)
		if r.err != nil {
			logf("%s: %v", r.spec.name, r.err)
			continue
		}
		r.features = kernelFeatures(r.k)
		how := "fetched and unpacked in " + r.fetch.Round(100*time.Millisecond).String()
		if r.cached {
			how = "cached"
		}
		logf("%s: %s %s (%s), %s; %s", r.spec.name, r.k.pkg, r.k.version, r.k.release, how, r.features)
	}
}

func setupApt(o options) (*aptRoot, error) {
	repos := debianRepos{codename: o.codename, archive: o.archive, security: o.security}
	if repos.archive == "" || repos.codename == "" {
		host, err := hostDebianRepos()
		if err != nil {
			return nil, err
		}
		if repos.codename == "" {
			repos.codename = host.codename
		}
		if repos.archive == "" {
			repos.archive = host.archive
		}
		if repos.security == "" {
			repos.security = host.security
		}
	}
	suites := o.suites
	if len(suites) == 0 {
		suites = defaultSuites(repos.codename)
	}
	apt, err := newAptRoot(o.cache, repos, suites, o.keyring)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := apt.update(); err != nil {
		return nil, err
	}
	logf("apt-get update (%s) in %s", strings.Join(suites, ", "), time.Since(t0).Round(100*time.Millisecond))
	return apt, nil
}

func fetchFromMirror(apt *aptRoot, kernelsDir string, spec kernelSpec) (*kernel, bool, error) {
	c, err := apt.resolve(spec.pattern)
	if err != nil {
		return nil, false, err
	}
	entry := entryName(c.pkg, c.version)
	dir := filepath.Join(kernelsDir, entry)
	if k, ok := loadCachedKernel(dir); ok {
		return k, true, nil
	}
	dl, err := os.MkdirTemp(kernelsDir, ".download-")
	if err != nil {
		return nil, false, err
	}
	defer os.RemoveAll(dl)
	deb, err := apt.download(c, dl)
	if err != nil {
		return nil, false, err
	}
	k, err := unpackKernel(deb, dir, c.pkg, c.version)
	if err != nil {
		return nil, false, err
	}
	pruneCache(kernelsDir, spec.pattern, entry)
	return k, false, nil
}

// kernelFeatures summarises the kernel options the XDP tests depend on.
func kernelFeatures(k *kernel) string {
	cfg, err := kernelConfig(k.config())
	if err != nil {
		return "no config: " + err.Error()
	}
	var parts []string
	for _, opt := range []string{"BPF_SYSCALL", "BPF_JIT", "BPF_JIT_ALWAYS_ON", "DEBUG_INFO_BTF", "DEBUG_INFO_BTF_MODULES", "XDP_SOCKETS", "VETH", "NET_CLS_BPF"} {
		v := cfg["CONFIG_"+opt]
		if v == "" {
			v = "n"
		}
		parts = append(parts, opt+"="+v)
	}
	return strings.Join(parts, " ")
}

func nonce() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// bootKernel builds the initramfs for one kernel, boots it and judges it.
func bootKernel(o options, qemu string, r *kernelRun, tests []guestTest) error {
	if err := os.MkdirAll(r.logDir, 0o755); err != nil {
		return err
	}
	idx, err := r.k.moduleIndex()
	if err != nil {
		return fmt.Errorf("reading modules.dep: %v", err)
	}
	order, err := idx.loadOrder(o.modules)
	if err != nil {
		return fmt.Errorf("%s: %v", r.k.release, err)
	}
	var mods []guestModule
	var modNames []string
	for _, name := range order {
		mods = append(mods, guestModule{name: name, file: filepath.Join(r.k.modulesDir(), idx.paths[name])})
		modNames = append(modNames, name)
	}
	n := nonce()
	initrd := filepath.Join(r.logDir, "initramfs.cpio")
	if err := buildInitramfs(initrd, o.busybox, n, initScript(n, mods, tests, append([]string{"-test.v", "-test.count=1"}, o.testArgs...)), mods, tests); err != nil {
		return fmt.Errorf("building initramfs: %v", err)
	}
	consoleLog := filepath.Join(r.logDir, "console.log")
	resultsLog := filepath.Join(r.logDir, "results.log")
	cmdline := "console=ttyS0 panic=-1 oops=panic quiet random.trust_cpu=on"
	if o.appendCmd != "" {
		cmdline += " " + o.appendCmd
	}
	accel := o.accel
	if accel == "tcg" {
		accel = "tcg,thread=multi"
	}
	cpu := "max"
	if o.accel == "kvm" {
		cpu = "host"
	}
	args := []string{
		"-accel", accel, "-cpu", cpu, "-machine", "pc",
		"-m", o.mem, "-smp", fmt.Sprint(o.smp),
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-kernel", r.k.vmlinuz(), "-initrd", initrd, "-append", cmdline,
		"-serial", "file:" + consoleLog, "-serial", "file:" + resultsLog,
	}
	cmd := exec.Command(qemu, args...)
	qemuOut, _ := os.Create(filepath.Join(r.logDir, "qemu.log"))
	defer qemuOut.Close()
	cmd.Stdout, cmd.Stderr = qemuOut, qemuOut
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timedOut := false
	select {
	case err = <-done:
	case <-time.After(o.timeout):
		timedOut = true
		cmd.Process.Kill()
		err = <-done
	}
	r.wall = time.Since(t0)
	r.timedOut = timedOut
	if err != nil && !timedOut {
		qlog, _ := os.ReadFile(filepath.Join(r.logDir, "qemu.log"))
		return fmt.Errorf("qemu: %v\n%s", err, qlog)
	}
	results, _ := os.ReadFile(resultsLog)
	r.console, _ = os.ReadFile(consoleLog)
	r.res = parseGuestOutput(results, n)
	var names []string
	for _, t := range tests {
		names = append(names, t.name)
	}
	r.why = r.res.verdict(modNames, names, timedOut)
	if r.res.release != "" && r.res.release != r.k.release {
		r.why = append(r.why, fmt.Sprintf("guest runs %s, expected %s", r.res.release, r.k.release))
	}
	return nil
}

var ansiRE = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// report prints one kernel's outcome as soon as it is known.
func report(o options, r *kernelRun) {
	var b strings.Builder
	status := "PASS"
	if !r.passed() {
		status = "FAIL"
	}
	fmt.Fprintf(&b, "=== %s %s (%s)\n", status, r.spec.name, r.k.release)
	if len(r.rebooted) > 0 {
		fmt.Fprintf(&b, "    the first boot died before /init (%s; console-first-boot.log): booted again\n", r.rebooted[0])
	}
	if r.res != nil {
		for _, t := range r.res.tests {
			fmt.Fprintf(&b, "    %s: exit %d in %.1fs: %d passed, %d failed, %d skipped\n", t.name, t.exitCode, t.end-t.start, len(t.passed), len(t.failed), len(t.skipped))
			sk := append([]string(nil), t.skipped...)
			sort.Strings(sk)
			for _, s := range sk {
				fmt.Fprintf(&b, "      skipped %s\n", s)
			}
			if o.verbose || !r.passed() {
				for _, l := range t.output {
					fmt.Fprintf(&b, "      | %s\n", l)
				}
			}
		}
		var reqs []string
		for _, m := range r.res.modRequests {
			// Mounting bpffs asks for bpf_preload (debug iterators only).
			if m != "bpf_preload" {
				reqs = append(reqs, m)
			}
		}
		if len(reqs) > 0 {
			fmt.Fprintf(&b, "    the kernel asked to autoload %s; the guest has only the -modules list\n", strings.Join(reqs, ", "))
		}
		for _, p := range consoleProblems(r.console) {
			fmt.Fprintf(&b, "    kernel: %s\n", p)
		}
	}
	if !r.passed() || o.verbose {
		console := strings.TrimSpace(ansiRE.ReplaceAllString(string(r.console), ""))
		if console == "" {
			b.WriteString("    console: empty (the kernel printed nothing on ttyS0)\n")
		} else {
			lines := strings.Split(console, "\n")
			if len(lines) > 80 {
				lines = lines[len(lines)-80:]
			}
			fmt.Fprintf(&b, "    console (last %d lines):\n", len(lines))
			for _, l := range lines {
				fmt.Fprintf(&b, "      > %s\n", strings.TrimRight(l, "\r"))
			}
		}
	}
	fmt.Print(b.String())
}
