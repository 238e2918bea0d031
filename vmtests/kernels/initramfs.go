package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// cpioWriter writes the "newc" cpio format the kernel unpacks as its
// initramfs. Writing it here rather than running cpio(1) lets every entry be
// owned by root and lets /dev/console exist before devtmpfs is mounted,
// without needing mknod on the host.
type cpioWriter struct {
	w    *bufio.Writer
	ino  uint32
	off  int64
	dirs map[string]bool
	err  error
}

const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
	modeCharDev = 0o020000
)

func newCPIOWriter(w io.Writer) *cpioWriter {
	return &cpioWriter{w: bufio.NewWriterSize(w, 1<<20), dirs: map[string]bool{".": true, "/": true}}
}

func (c *cpioWriter) write(p []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(p)
	c.off += int64(n)
	c.err = err
}

func (c *cpioWriter) pad() {
	if r := c.off % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

func (c *cpioWriter) header(name string, mode uint32, size int, rdevMajor, rdevMinor uint32) {
	c.ino++
	nlink := uint32(1)
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write([]byte(name + "\x00"))
	c.pad()
}

// mkdirAll adds the parent directories of name that were not added yet.
func (c *cpioWriter) mkdirAll(name string) {
	dir := path.Dir(name)
	if c.dirs[dir] {
		return
	}
	c.mkdirAll(dir)
	c.dirs[dir] = true
	c.header(dir, modeDir|0o755, 0, 0, 0)
}

func clean(name string) string { return strings.TrimPrefix(path.Clean("/"+name), "/") }

func (c *cpioWriter) Dir(name string) {
	name = clean(name)
	if c.dirs[name] {
		return
	}
	c.mkdirAll(name)
	c.dirs[name] = true
	c.header(name, modeDir|0o755, 0, 0, 0)
}

func (c *cpioWriter) File(name string, perm uint32, data []byte) {
	name = clean(name)
	c.mkdirAll(name)
	c.header(name, modeFile|perm, len(data), 0, 0)
	c.write(data)
	c.pad()
}

func (c *cpioWriter) Symlink(name, target string) {
	name = clean(name)
	c.mkdirAll(name)
	c.header(name, modeSymlink|0o777, len(target), 0, 0)
	c.write([]byte(target))
	c.pad()
}

func (c *cpioWriter) CharDev(name string, perm, major, minor uint32) {
	name = clean(name)
	c.mkdirAll(name)
	c.header(name, modeCharDev|perm, 0, major, minor)
}

func (c *cpioWriter) Close() error {
	c.header("TRAILER!!!", 0, 0, 0, 0)
	if c.err != nil {
		return c.err
	}
	return c.w.Flush()
}

// guestTest is a test binary to run inside the VM.
type guestTest struct {
	name    string // safe name, also the directory under /tests
	binary  string // host path of the compiled test binary
	testdat string // host path of the package's testdata dir, or ""
}

// guestModule is a kernel module to insmod, in load order.
type guestModule struct {
	name string
	file string // host path
}

const markerPrefix = "@@VMTEST"

var safeName = regexp.MustCompile(`^[A-Za-z0-9_.+-]+$`)

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// initScript is /init. Test output and the marker lines go to the second
// serial port (ttyS1), which the host writes to its own file, so kernel
// messages on the console (ttyS0) can never interleave with them.
func initScript(nonce string, modules []guestModule, tests []guestTest, testArgs []string) string {
	var b strings.Builder
	b.WriteString(`#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root TMPDIR=/tmp DIRECTOR_VMTEST=1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
ip link set lo up
if stty -F /dev/ttyS1 raw -echo 2>/dev/null; then exec 3>/dev/ttyS1; else exec 3>/dev/console; fi
`)
	fmt.Fprintf(&b, "mark() { echo \"%s %s $*\" >&3; }\n", markerPrefix, nonce)
	b.WriteString("up() { read u _ </proc/uptime; echo $u; }\n")
	b.WriteString("mark BOOT $(up) $(uname -r)\n")
	for _, m := range modules {
		fmt.Fprintf(&b, "if insmod /lib/modules/%[1]s.ko >&3 2>&3; then mark MODULE %[1]s ok; else mark MODULE %[1]s fail; fi\n", m.name)
	}
	var args []string
	for _, a := range testArgs {
		args = append(args, shellQuote(a))
	}
	for _, t := range tests {
		fmt.Fprintf(&b, "cd /tests/%[1]s\nmark START %[1]s $(up)\n/tests/%[1]s/%[1]s.test %[2]s >&3 2>&3 </dev/null\nrc=$?\necho >&3\nmark END %[1]s $rc $(up)\n",
			t.name, strings.Join(args, " "))
	}
	b.WriteString("cd /\nmark DONE $(up)\nsync\npoweroff -f\necho o >/proc/sysrq-trigger\nsleep 10\n")
	return b.String()
}

// modprobeShim stands in for /sbin/modprobe, which the kernel runs to
// autoload a module (request_module). The guest has only the modules given
// with -modules, so the shim just reports what was asked for: a test that
// fails on a host-only autoloaded module then says which one to add.
func modprobeShim(nonce string) string {
	return fmt.Sprintf("#!/bin/sh\nfor a; do m=$a; done\necho \"%s %s MODREQ $m\" >/dev/ttyS1\nexit 1\n", markerPrefix, nonce)
}

// buildInitramfs writes an uncompressed initramfs: under TCG the guest
// would spend longer decompressing it than the host spends reading it.
func buildInitramfs(out, busybox, nonce, script string, modules []guestModule, tests []guestTest) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	c := newCPIOWriter(f)
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "run", "root", "etc", "lib/modules", "tests"} {
		c.Dir(d)
	}
	c.Symlink("var/run", "../run")
	c.CharDev("dev/console", 0o600, 5, 1)
	c.CharDev("dev/null", 0o666, 1, 3)
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	c.File("bin/busybox", 0o755, bb)
	c.Symlink("bin/sh", "busybox")
	c.File("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n"))
	c.File("etc/group", 0o644, []byte("root:x:0:\n"))
	c.File("init", 0o755, []byte(script))
	c.File("sbin/modprobe", 0o755, []byte(modprobeShim(nonce)))
	for _, m := range modules {
		data, err := readModule(m.file)
		if err != nil {
			return fmt.Errorf("reading module %s: %v", m.file, err)
		}
		c.File("lib/modules/"+m.name+".ko", 0o644, data)
	}
	for _, t := range tests {
		bin, err := os.ReadFile(t.binary)
		if err != nil {
			return err
		}
		c.File("tests/"+t.name+"/"+t.name+".test", 0o755, bin)
		if t.testdat != "" {
			if err := addTree(c, t.testdat, "tests/"+t.name+"/testdata"); err != nil {
				return err
			}
		}
	}
	if err := c.Close(); err != nil {
		return err
	}
	return f.Close()
}

// addTree copies the regular files and directories under src to dst.
func addTree(c *cpioWriter, src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		name := path.Join(dst, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			c.Dir(name)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			c.File(name, uint32(info.Mode().Perm()), data)
		}
		return nil
	})
}
