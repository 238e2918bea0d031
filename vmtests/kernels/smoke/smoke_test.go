// Package smoke is the kernel matrix runner's self-check: the smallest
// tests that exercise what the real loader tests need from a kernel (BPF
// maps, an XDP program run with BPF_PROG_TEST_RUN, kernel BTF, and an XDP
// program attached to a veth inside a fresh network namespace that counts a
// frame sent through the pair). If these fail in a VM, the problem is the
// runner or the kernel, not the load balancer.
//
// The tests need root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN) and skip
// without it.
package smoke

import (
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	xdpDrop = 1
	xdpPass = 2
	xdpTX   = 3
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// counterProgram returns an XDP program that atomically adds one to
// element 0 of counter and returns action.
func counterProgram(t *testing.T, counter *ebpf.Map, action int32) *ebpf.Program {
	t.Helper()
	insns := asm.Instructions{
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, counter.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, action).WithSymbol("out"),
		asm.Return(),
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "smoke_xdp",
		Type:         ebpf.XDP,
		License:      "GPL",
		Instructions: insns,
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.Fatalf("verifier: %+v", ve)
		}
		t.Fatalf("loading XDP program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog
}

func newCounter(t *testing.T) *ebpf.Map {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "smoke_count", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatalf("creating map: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func count(t *testing.T, m *ebpf.Map) uint64 {
	t.Helper()
	var v uint64
	if err := m.Lookup(uint32(0), &v); err != nil {
		t.Fatalf("map lookup: %v", err)
	}
	return v
}

// frame is a broadcast Ethernet frame with a local experimental EtherType.
func frame() []byte {
	f := make([]byte, 64)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], []byte{0x02, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(f[12:14], 0x88b5)
	return f
}

func TestKernelRelease(t *testing.T) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel %s", unix.ByteSliceToString(u.Release[:]))
}

func TestXDPProgRun(t *testing.T) {
	needRoot(t)
	m := newCounter(t)
	prog := counterProgram(t, m, xdpTX)
	ret, err := prog.Run(&ebpf.RunOptions{Data: frame(), Repeat: 3})
	if err != nil {
		t.Fatalf("BPF_PROG_TEST_RUN: %v", err)
	}
	if ret != xdpTX {
		t.Fatalf("XDP program returned %d, want %d (XDP_TX)", ret, xdpTX)
	}
	if got := count(t, m); got != 3 {
		t.Fatalf("counter = %d after 3 runs, want 3", got)
	}
}

func TestKernelBTF(t *testing.T) {
	needRoot(t)
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatalf("kernel BTF (CONFIG_DEBUG_INFO_BTF): %v", err)
	}
	var fn *btf.Func
	if err := spec.TypeByName("bpf_prog_test_run_xdp", &fn); err != nil {
		t.Fatalf("bpf_prog_test_run_xdp not in kernel BTF: %v", err)
	}
}

func TestVethXDP(t *testing.T) {
	needRoot(t)
	m := newCounter(t)
	prog := counterProgram(t, m, xdpDrop)

	// The namespace switch applies to this OS thread only. It is never
	// unlocked, so the runtime discards the thread when the test ends even
	// if switching back failed.
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Fatalf("new netns: %v", err)
	}
	defer ns.Close()
	defer netns.Set(orig)

	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "smoke0"}, PeerName: "smoke1"}); err != nil {
		t.Fatalf("creating veth pair (CONFIG_VETH): %v", err)
	}
	l0, err := netlink.LinkByName("smoke0")
	if err != nil {
		t.Fatal(err)
	}
	l1, err := netlink.LinkByName("smoke1")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []netlink.Link{l0, l1} {
		if err := netlink.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	xdp, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: l1.Attrs().Index, Flags: link.XDPDriverMode})
	if err != nil {
		t.Fatalf("attaching XDP in driver mode to veth: %v", err)
	}
	defer xdp.Close()
	l1, err = netlink.LinkByName("smoke1")
	if err != nil {
		t.Fatal(err)
	}
	if x := l1.Attrs().Xdp; x == nil || !x.Attached {
		t.Fatalf("netlink does not report an XDP program on smoke1: %+v", x)
	}

	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	sa := &unix.SockaddrLinklayer{Ifindex: l0.Attrs().Index, Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	deadline := time.Now().Add(5 * time.Second)
	for count(t, m) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the XDP program on smoke1 saw no frame sent on smoke0")
		}
		if err := unix.Sendto(fd, frame(), 0, sa); err != nil {
			t.Fatalf("sending on smoke0: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
