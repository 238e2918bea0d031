package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// kernelSpec is one entry of -kernels: a series ("6.1", "6.12"), an exact
// package name ("linux-image-6.1.0-50-amd64") or a local .deb file.
type kernelSpec struct {
	name    string         // as given on the command line
	pattern *regexp.Regexp // package names this spec accepts
	deb     string         // local .deb, if given
}

var seriesRE = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)

func parseKernelSpec(s string) (kernelSpec, error) {
	switch {
	case strings.HasSuffix(s, ".deb"):
		return kernelSpec{name: strings.TrimSuffix(filepath.Base(s), ".deb"), deb: s}, nil
	case strings.HasPrefix(s, "linux-image-"):
		return kernelSpec{name: s, pattern: regexp.MustCompile("^" + regexp.QuoteMeta(s) + "$")}, nil
	case seriesRE.MatchString(s):
		return kernelSpec{name: s, pattern: seriesPattern(s)}, nil
	}
	return kernelSpec{}, fmt.Errorf("kernel %q: want a series like 6.1, a package name linux-image-..., or a path to a .deb", s)
}

// seriesPattern matches the signed generic amd64 image packages of a kernel
// series under both of Debian's naming schemes: the old ABI names
// (linux-image-6.1.0-56-amd64) and the newer full-version names
// (linux-image-6.12.117+deb12-amd64). cloud, rt, -dbg, -unsigned and
// meta packages are excluded.
func seriesPattern(series string) *regexp.Regexp {
	q := regexp.QuoteMeta(series)
	return regexp.MustCompile(`^linux-image-` + q + `(\.0-[0-9]+|\.[0-9]+\+deb[0-9.]+)-amd64$`)
}

// kernel is an unpacked kernel in the cache.
type kernel struct {
	dir     string // cache entry
	pkg     string
	version string
	release string // uname -r
}

func (k *kernel) vmlinuz() string    { return filepath.Join(k.dir, "vmlinuz") }
func (k *kernel) config() string     { return filepath.Join(k.dir, "config") }
func (k *kernel) modulesDir() string { return filepath.Join(k.dir, "modules") }

const completeStamp = ".complete"

// entryName is the cache directory name of a package version.
func entryName(pkg, version string) string {
	return strings.NewReplacer("/", "_", ":", "%3a").Replace(pkg + "_" + version)
}

// loadCachedKernel returns the cache entry if it was fully unpacked.
func loadCachedKernel(dir string) (*kernel, bool) {
	b, err := os.ReadFile(filepath.Join(dir, completeStamp))
	if err != nil {
		return nil, false
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return nil, false
	}
	return &kernel{dir: dir, pkg: f[0], version: f[1], release: f[2]}, true
}

// unpackKernel extracts a linux-image .deb into the cache entry dir: the
// kernel image, its config and its /lib/modules tree. The rest of the
// package (System.map, docs) is dropped.
func unpackKernel(deb, dir, pkg, version string) (*kernel, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".unpack-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	x := filepath.Join(tmp, "x")
	if out, err := exec.Command("dpkg-deb", "-x", deb, x).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("dpkg-deb -x %s: %v\n%s", deb, err, out)
	}
	images, _ := filepath.Glob(filepath.Join(x, "boot", "vmlinuz-*"))
	if len(images) != 1 {
		return nil, fmt.Errorf("%s: expected one boot/vmlinuz-*, found %d", deb, len(images))
	}
	release := strings.TrimPrefix(filepath.Base(images[0]), "vmlinuz-")
	if pkg == "" {
		pkg, version = debField(deb, "Package"), debField(deb, "Version")
	}
	entry := filepath.Join(tmp, "entry")
	if err := os.Mkdir(entry, 0o755); err != nil {
		return nil, err
	}
	moves := [][2]string{
		{images[0], filepath.Join(entry, "vmlinuz")},
		{filepath.Join(x, "boot", "config-"+release), filepath.Join(entry, "config")},
	}
	modules := filepath.Join(x, "lib", "modules", release)
	if _, err := os.Stat(modules); os.IsNotExist(err) {
		modules = filepath.Join(x, "usr", "lib", "modules", release)
	}
	moves = append(moves, [2]string{modules, filepath.Join(entry, "modules")})
	for _, m := range moves {
		if err := os.Rename(m[0], m[1]); err != nil {
			return nil, fmt.Errorf("%s: %v", deb, err)
		}
	}
	stamp := fmt.Sprintf("%s %s %s\n", pkg, version, release)
	if err := os.WriteFile(filepath.Join(entry, completeStamp), []byte(stamp), 0o644); err != nil {
		return nil, err
	}
	os.RemoveAll(dir)
	if err := os.Rename(entry, dir); err != nil {
		return nil, err
	}
	return &kernel{dir: dir, pkg: pkg, version: version, release: release}, nil
}

func debField(deb, field string) string {
	out, err := exec.Command("dpkg-deb", "-f", deb, field).Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// kernelConfig reads CONFIG_ options from a kernel config file.
func kernelConfig(file string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "CONFIG_") {
			cfg[k] = v
		}
	}
	return cfg, sc.Err()
}

// moduleIndex locates a kernel's loadable modules. Debian's image packages
// do not ship modules.dep (depmod writes it at install time), so the
// dependencies come from each module's own .modinfo "depends=" field.
type moduleIndex struct {
	dir     string
	paths   map[string]string // module name -> path relative to dir
	builtin map[string]bool
	// depends returns the modules a module depends on; replaceable in tests.
	depends func(name string) ([]string, error)
}

// moduleName turns "kernel/drivers/net/veth.ko.xz" into "veth"; dashes
// and underscores are equivalent in module names.
func moduleName(p string) string {
	base := path.Base(p)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	return strings.ReplaceAll(base, "-", "_")
}

func newModuleIndex(dir string) (*moduleIndex, error) {
	idx := &moduleIndex{dir: dir, paths: map[string]string{}, builtin: map[string]bool{}}
	err := filepath.WalkDir(filepath.Join(dir, "kernel"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.Contains(d.Name(), ".ko") {
			rel, _ := filepath.Rel(dir, p)
			idx.paths[moduleName(rel)] = rel
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				idx.builtin[moduleName(l)] = true
			}
		}
	}
	idx.depends = func(name string) ([]string, error) {
		data, err := readModule(filepath.Join(dir, idx.paths[name]))
		if err != nil {
			return nil, err
		}
		return moduleDepends(data)
	}
	return idx, nil
}

// moduleDepends reads the depends= field of a module's .modinfo section.
func moduleDepends(ko []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, err
	}
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("no .modinfo section")
	}
	data, err := sec.Data()
	if err != nil {
		return nil, err
	}
	return parseModinfoDepends(data), nil
}

// parseModinfoDepends parses the NUL-separated key=value strings of a
// .modinfo section and returns the depends= list.
func parseModinfoDepends(modinfo []byte) []string {
	var deps []string
	for _, kv := range bytes.Split(modinfo, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			for _, d := range strings.Split(string(v), ",") {
				if d = strings.TrimSpace(d); d != "" {
					deps = append(deps, moduleName(d))
				}
			}
		}
	}
	return deps
}

// loadOrder returns the modules to insmod, dependencies first, for the
// requested module names. Built-in modules are skipped.
func (idx *moduleIndex) loadOrder(want []string) ([]string, error) {
	var order []string
	seen := map[string]bool{}
	var visit func(name string) error
	visit = func(name string) error {
		if seen[name] || idx.builtin[name] {
			return nil
		}
		seen[name] = true
		if _, ok := idx.paths[name]; !ok {
			return fmt.Errorf("module %s is neither built in nor shipped with the kernel", name)
		}
		deps, err := idx.depends(name)
		if err != nil {
			return fmt.Errorf("module %s: %v", name, err)
		}
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		order = append(order, name)
		return nil
	}
	for _, w := range want {
		if err := visit(strings.ReplaceAll(w, "-", "_")); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func (k *kernel) moduleIndex() (*moduleIndex, error) {
	return newModuleIndex(k.modulesDir())
}

// readModule returns the uncompressed contents of a module file. Debian
// compresses modules with xz since 6.x; decompressing on the host keeps the
// guest's (emulated, slow) work and its busybox requirements minimal.
func readModule(file string) ([]byte, error) {
	switch {
	case strings.HasSuffix(file, ".xz"):
		return exec.Command("xz", "-dc", file).Output()
	case strings.HasSuffix(file, ".zst"):
		return exec.Command("zstd", "-dcq", file).Output()
	case strings.HasSuffix(file, ".gz"):
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	}
	return os.ReadFile(file)
}

// pruneCache removes cache entries of packages matching re other than keep,
// so the cache holds one build per series.
func pruneCache(kernelsDir string, re *regexp.Regexp, keep string) {
	entries, _ := os.ReadDir(kernelsDir)
	var stale []string
	for _, e := range entries {
		pkg, _, ok := strings.Cut(e.Name(), "_")
		if ok && e.Name() != keep && re.MatchString(pkg) {
			stale = append(stale, filepath.Join(kernelsDir, e.Name()))
		}
	}
	sort.Strings(stale)
	for _, s := range stale {
		os.RemoveAll(s)
	}
}

// newestCached returns the newest fully unpacked cache entry matching re,
// used when the mirror cannot be reached.
func newestCached(kernelsDir string, re *regexp.Regexp) (*kernel, bool) {
	entries, _ := os.ReadDir(kernelsDir)
	var best *kernel
	for _, e := range entries {
		pkg, _, ok := strings.Cut(e.Name(), "_")
		if !ok || !re.MatchString(pkg) {
			continue
		}
		k, ok := loadCachedKernel(filepath.Join(kernelsDir, e.Name()))
		if ok && (best == nil || compareDebVersions(k.version, best.version) > 0) {
			best = k
		}
	}
	return best, best != nil
}
