package loader

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The attach tests run the loader in a second process too: the test binary
// re-executes itself with helperEnv set, as a restarted agent would.
const helperEnv = "DIRECTOR_LOADER_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		if err := reopenHelper(); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// adopted is what the second process saw after re-opening the pins.
type adopted struct {
	Status Status
	VIPs   int
	Reals  int
	Flows  int
	Table0 uint32
}

func reopenHelper() error {
	var cfg struct{ NS, Iface, Root string }
	if err := json.Unmarshal([]byte(os.Getenv(helperEnv)), &cfg); err != nil {
		return err
	}
	ns, err := netns.GetFromName(cfg.NS)
	if err != nil {
		return err
	}
	var out adopted
	err = inNetns(ns, func() error {
		d, err := Open(Config{Interface: cfg.Iface, PinRoot: cfg.Root, Sizes: testSizes, Seed: testSeed})
		if err != nil {
			return err
		}
		defer d.Close()
		if out.Status, err = d.Status(); err != nil {
			return err
		}
		vips, err := d.VIPs()
		if err != nil {
			return err
		}
		reals, err := d.Reals()
		if err != nil {
			return err
		}
		tbl, err := d.Table(1)
		if err != nil || tbl == nil {
			return fmt.Errorf("table: %v", err)
		}
		out.VIPs, out.Reals, out.Table0 = len(vips), len(reals), tbl[0]
		out.Flows, err = d.Flows()
		return err
	})
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// onLockedThread runs fn on a locked OS thread and puts the thread back into
// its own namespace afterwards. A thread that cannot be put back is left
// locked, so the runtime retires it: no thread stays in a test namespace.
func onLockedThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// inNetns runs fn in ns.
func inNetns(ns netns.NsHandle, fn func() error) error {
	return onLockedThread(func() error {
		if err := netns.Set(ns); err != nil {
			return err
		}
		return fn()
	})
}

// testNetns makes a named namespace holding a veth pair, removed at cleanup.
func testNetns(t *testing.T, name string) (netns.NsHandle, *netlink.Handle) {
	t.Helper()
	_ = netns.DeleteNamed(name) // left by a killed run
	var ns netns.NsHandle
	// NewNamed moves the calling thread into the new namespace.
	err := onLockedThread(func() (err error) {
		ns, err = netns.NewNamed(name)
		return err
	})
	if err != nil {
		t.Fatalf("create netns: %v", err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns: %v", err)
		}
	})
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "dla"}, PeerName: "dlb"}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatalf("add veth: %v", err)
	}
	for _, n := range []string{"dla", "dlb"} {
		l, err := h.LinkByName(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	return ns, h
}

func xdpOn(t *testing.T, h *netlink.Handle, iface string) (progID uint32, mode uint32) {
	t.Helper()
	l, err := h.LinkByName(iface)
	if err != nil {
		t.Fatal(err)
	}
	x := l.Attrs().Xdp
	if x == nil || !x.Attached {
		return 0, 0
	}
	return x.ProgId, x.AttachMode
}

func TestAttachPinReopenTeardown(t *testing.T) {
	requireRoot(t)
	for _, mode := range []AttachMode{ModeNative, ModeGeneric, ModeAuto} {
		t.Run(mode.String(), func(t *testing.T) {
			nsName := fmt.Sprintf("dl-%d-%s", os.Getpid(), mode)
			ns, h := testNetns(t, nsName)
			root := fmt.Sprintf("/sys/fs/bpf/director-test-%d-%s", os.Getpid(), mode)
			t.Cleanup(func() {
				if err := Teardown(root, "dla"); err != nil {
					t.Errorf("cleanup teardown: %v", err)
				}
				os.RemoveAll(root)
			})

			var first Status
			err := inNetns(ns, func() error {
				d, err := Open(Config{Interface: "dla", Mode: mode, PinRoot: root, Sizes: testSizes, Seed: testSeed})
				if err != nil {
					return err
				}
				defer d.Close()
				f := &fixture{t: t, d: d, reals: map[uint32]Real{}}
				f.service(VIPKey{vip4, 80, TCP}, 1, 0, 1, 3)
				for p := uint16(0); p < 10; p++ {
					f.run(tcp4(client4, 9000+p, vip4, 80))
				}
				first, err = d.Status()
				return err
			})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			wantMode := map[AttachMode]uint32{ModeNative: 1, ModeGeneric: 2, ModeAuto: 1}[mode]
			if first.LinkID == 0 || first.ProgramID == 0 {
				t.Fatalf("status %+v", first)
			}
			// Closed: the pins keep the program attached.
			if id, m := xdpOn(t, h, "dla"); id != first.ProgramID || m != wantMode {
				t.Fatalf("after close: XDP prog %d mode %d, want %d mode %d", id, m, first.ProgramID, wantMode)
			}
			for _, pin := range []string{"link", "vips", "reals", "rings", "flows", "config", "stats"} {
				if _, err := os.Stat(filepath.Join(root, "dla", pin)); err != nil {
					t.Fatalf("pin %s: %v", pin, err)
				}
			}

			// A second process re-adopts everything and swaps the program.
			cmd := exec.Command(os.Args[0])
			cfg, _ := json.Marshal(map[string]string{"NS": nsName, "Iface": "dla", "Root": root})
			cmd.Env = append(os.Environ(), helperEnv+"="+string(cfg))
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("second process: %v", err)
			}
			var got adopted
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("second process said %q: %v", out, err)
			}
			if got.Status.LinkID != first.LinkID {
				t.Errorf("link %d re-adopted as %d: not the same link", first.LinkID, got.Status.LinkID)
			}
			if got.Status.ProgramID == first.ProgramID {
				t.Errorf("program not replaced on re-adoption")
			}
			if got.VIPs != 1 || got.Reals != 3 || got.Flows != 10 || got.Table0 != 1 {
				t.Errorf("state lost across processes: %+v", got)
			}
			if id, m := xdpOn(t, h, "dla"); id != got.Status.ProgramID || m != wantMode {
				t.Fatalf("after re-adoption: XDP prog %d mode %d, want %d mode %d", id, m, got.Status.ProgramID, wantMode)
			}

			// Maps of another size cannot be adopted: a clear error, and
			// what runs is left alone.
			err = inNetns(ns, func() error {
				sz := testSizes
				sz.RingSize = 251
				d, err := Open(Config{Interface: "dla", PinRoot: root, Sizes: sz})
				if err == nil {
					d.Close()
				}
				return err
			})
			if err == nil || !strings.Contains(err.Error(), "teardown") {
				t.Fatalf("open with another ring size: %v, want an error naming teardown", err)
			}
			if id, _ := xdpOn(t, h, "dla"); id != got.Status.ProgramID {
				t.Fatalf("a refused open changed the attached program")
			}

			if err := Teardown(root, "dla"); err != nil {
				t.Fatalf("teardown: %v", err)
			}
			if id, _ := xdpOn(t, h, "dla"); id != 0 {
				t.Fatalf("program %d still attached after teardown", id)
			}
			if _, err := os.Stat(filepath.Join(root, "dla")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("pins left after teardown: %v", err)
			}
			// Teardown of nothing is fine: it can be run twice.
			if err := Teardown(root, "dla"); err != nil {
				t.Fatalf("second teardown: %v", err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	requireRoot(t)
	root := fmt.Sprintf("/sys/fs/bpf/director-test-%d-err", os.Getpid())
	defer os.RemoveAll(root)
	if _, err := Open(Config{Interface: "no-such-if0", PinRoot: root}); err == nil ||
		!strings.Contains(err.Error(), "no-such-if0") {
		t.Fatalf("unknown interface: %v", err)
	}
	if _, err := Load(Sizes{RingSize: 65536}, ifaceMAC, 0); err == nil || !strings.Contains(err.Error(), "prime") {
		t.Fatalf("non-prime ring: %v", err)
	}
	if _, err := Load(Sizes{}, net.HardwareAddr{1}, 0); err == nil {
		t.Fatal("bad MAC accepted")
	}
}
