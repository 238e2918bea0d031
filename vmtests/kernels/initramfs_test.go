package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

type cpioEntry struct {
	name        string
	mode        uint32
	major, minr uint32
	data        string
}

// readCPIO is an independent newc reader for the test.
func readCPIO(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if off+110 > len(b) || string(b[off:off+6]) != "070701" {
			t.Fatalf("bad header at %d", off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return uint32(v)
		}
		mode, size, rmaj, rmin, namesize := field(1), int(field(6)), field(9), field(10), int(field(11))
		if field(2) != 0 || field(3) != 0 {
			t.Errorf("entry at %d not owned by root", off)
		}
		name := string(b[off+110 : off+110+namesize-1])
		off = align(off + 110 + namesize)
		data := string(b[off : off+size])
		off = align(off + size)
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Errorf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, cpioEntry{name, mode, rmaj, rmin, data})
	}
}

func TestCPIOWriter(t *testing.T) {
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	c.Dir("bin")
	c.CharDev("dev/console", 0o600, 5, 1)
	c.File("bin/busybox", 0o755, []byte("ELF!!"))
	c.Symlink("/bin/sh", "busybox")
	c.File("tests/a/b/c.test", 0o755, []byte("x"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	got := readCPIO(t, buf.Bytes())
	want := []cpioEntry{
		{"bin", modeDir | 0o755, 0, 0, ""},
		{"dev", modeDir | 0o755, 0, 0, ""},
		{"dev/console", modeCharDev | 0o600, 5, 1, ""},
		{"bin/busybox", modeFile | 0o755, 0, 0, "ELF!!"},
		{"bin/sh", modeSymlink | 0o777, 0, 0, "busybox"},
		{"tests", modeDir | 0o755, 0, 0, ""},
		{"tests/a", modeDir | 0o755, 0, 0, ""},
		{"tests/a/b", modeDir | 0o755, 0, 0, ""},
		{"tests/a/b/c.test", modeFile | 0o755, 0, 0, "x"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// GNU cpio, where installed, must agree.
	if _, err := exec.LookPath("cpio"); err == nil {
		cmd := exec.Command("cpio", "-it", "--quiet")
		cmd.Stdin = bytes.NewReader(buf.Bytes())
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("cpio -it: %v", err)
		}
		if names := strings.Fields(string(out)); len(names) != len(want) || names[len(names)-1] != "tests/a/b/c.test" {
			t.Errorf("cpio -it lists %q", names)
		}
	}
}

func TestInitScript(t *testing.T) {
	s := initScript(nonceT,
		[]guestModule{{name: "ip_tunnel"}, {name: "ipip"}},
		[]guestTest{{name: "loader"}, {name: "vmtests_kernels_smoke"}},
		[]string{"-test.v", "-test.run=It's"})
	for _, want := range []string{
		"mount -t bpf bpf /sys/fs/bpf",
		`mark() { echo "@@VMTEST ` + nonceT + ` $*" >&3; }`,
		"insmod /lib/modules/ip_tunnel.ko",
		"/tests/loader/loader.test '-test.v' '-test.run=It'\\''s'",
		"mark END vmtests_kernels_smoke $rc $(up)",
		"poweroff -f",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("init script lacks %q:\n%s", want, s)
		}
	}
	if strings.Index(s, "ip_tunnel.ko") > strings.Index(s, "ipip.ko") {
		t.Error("modules out of order")
	}
	// The script must at least parse.
	f := filepath.Join(t.TempDir(), "init")
	if err := os.WriteFile(f, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-n", f).CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v\n%s", err, out)
	}
}
