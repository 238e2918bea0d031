// Package loader loads director's XDP program, pins its maps and link, and
// gives the agent a typed API over the maps. It is the only package that
// imports cilium/ebpf.
package loader

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"github.com/directorlb/director/director/maglev"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// DefaultPinRoot is where Open pins maps and links, one folder per interface.
const DefaultPinRoot = "/sys/fs/bpf/director"

// Defaults for Sizes.
const (
	DefaultRingSize    = 65537
	DefaultFlowEntries = 1_000_000
	DefaultMaxVIPs     = 512
	DefaultMaxReals    = 4096
)

// AttachMode says how the XDP program is attached.
type AttachMode int

const (
	// ModeAuto attaches in native (driver) mode and falls back to generic
	// mode, with a warning, when the driver refuses.
	ModeAuto AttachMode = iota
	// ModeNative attaches in native mode or fails.
	ModeNative
	// ModeGeneric attaches in generic (skb) mode.
	ModeGeneric
)

func (m AttachMode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeNative:
		return "native"
	case ModeGeneric:
		return "generic"
	}
	return fmt.Sprintf("AttachMode(%d)", int(m))
}

// ParseAttachMode reads "auto", "native" or "generic".
func ParseAttachMode(s string) (AttachMode, error) {
	switch s {
	case "", "auto":
		return ModeAuto, nil
	case "native", "driver":
		return ModeNative, nil
	case "generic", "skb":
		return ModeGeneric, nil
	}
	return 0, fmt.Errorf("unknown XDP mode %q (want auto, native or generic)", s)
}

// Sizes are the dimensions of the maps, fixed when they are created.
type Sizes struct {
	RingSize    uint32 // entries in each VIP's Maglev table; a prime
	FlowEntries uint32 // connection-table entries over all CPUs
	MaxVIPs     uint32
	MaxReals    uint32
}

func (s Sizes) withDefaults() Sizes {
	if s.RingSize == 0 {
		s.RingSize = DefaultRingSize
	}
	if s.FlowEntries == 0 {
		s.FlowEntries = DefaultFlowEntries
	}
	if s.MaxVIPs == 0 {
		s.MaxVIPs = DefaultMaxVIPs
	}
	if s.MaxReals == 0 {
		s.MaxReals = DefaultMaxReals
	}
	return s
}

// Config says what to load and where.
type Config struct {
	Interface string
	Mode      AttachMode
	PinRoot   string // DefaultPinRoot when empty
	Sizes     Sizes
	// Seed for the flow hash. Both directors of a pair must use the same
	// seed to pick the same real for a flow.
	Seed   uint32
	Logger zerolog.Logger
}

// Dataplane is a loaded director program and its maps.
type Dataplane struct {
	objs   directorObjects
	ring   *ebpf.MapSpec // template for a VIP's Maglev table
	sizes  Sizes
	link   link.Link // nil when loaded without attaching
	mode   AttachMode
	pinDir string
	log    zerolog.Logger
}

// Open loads the program for cfg.Interface, re-adopting the maps pinned by an
// earlier process, and attaches it. If a pinned link exists, the program
// behind it is replaced atomically (link update): forwarding never stops, and
// the maps, hence the connection table, are kept.
func Open(cfg Config) (*Dataplane, error) {
	if cfg.Interface == "" {
		return nil, errors.New("no interface given")
	}
	ifc, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", cfg.Interface, err)
	}
	if len(ifc.HardwareAddr) != 6 {
		return nil, fmt.Errorf("interface %s has no Ethernet address", cfg.Interface)
	}
	root := cfg.PinRoot
	if root == "" {
		root = DefaultPinRoot
	}
	if err := ensureBPFFS(root); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, cfg.Interface)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create pin folder: %w", err)
	}
	log := cfg.Logger.With().Str("interface", cfg.Interface).Logger()

	d, err := load(cfg.Sizes, dir, ifc.HardwareAddr, cfg.Seed, log)
	if err != nil {
		return nil, err
	}
	if err := d.attach(ifc.Index, cfg.Mode); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Load loads the program and creates its maps without attaching or pinning
// anything: for tests and benchmarks that run the program with
// BPF_PROG_TEST_RUN. mac is the source MAC forwarded frames get.
func Load(sizes Sizes, mac net.HardwareAddr, seed uint32) (*Dataplane, error) {
	return load(sizes, "", mac, seed, zerolog.Nop())
}

func load(sizes Sizes, pinDir string, mac net.HardwareAddr, seed uint32, log zerolog.Logger) (*Dataplane, error) {
	sizes = sizes.withDefaults()
	if err := checkSizes(sizes); err != nil {
		return nil, err
	}
	if len(mac) != 6 {
		return nil, fmt.Errorf("source MAC %v is not an Ethernet address", mac)
	}
	// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; later ones
	// to the cgroup, and this does nothing.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("lift the memlock limit for BPF maps: %w", err)
	}
	spec, err := loadDirector()
	if err != nil {
		return nil, fmt.Errorf("read BPF object: %w", err)
	}
	spec.Maps["vips"].MaxEntries = sizes.MaxVIPs
	spec.Maps["vip_addrs"].MaxEntries = sizes.MaxVIPs
	spec.Maps["rings"].MaxEntries = sizes.MaxVIPs
	spec.Maps["rings"].InnerMap.MaxEntries = sizes.RingSize
	spec.Maps["vip_stats"].MaxEntries = sizes.MaxVIPs
	spec.Maps["reals"].MaxEntries = sizes.MaxReals
	spec.Maps["real_stats"].MaxEntries = sizes.MaxReals
	spec.Maps["flows"].MaxEntries = sizes.FlowEntries
	if pinDir == "" {
		for _, m := range spec.Maps {
			m.Pinning = ebpf.PinNone
		}
	}

	d := &Dataplane{
		ring:   spec.Maps["rings"].InnerMap.Copy(),
		sizes:  sizes,
		pinDir: pinDir,
		log:    log,
	}
	d.ring.Name = "director_ring"
	opts := &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: pinDir}}
	if err := spec.LoadAndAssign(&d.objs, opts); err != nil {
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("maps pinned in %s were made with other sizes; "+
				"run `director teardown` to replace them (this drops the connection table): %w", pinDir, err)
		}
		return nil, fmt.Errorf("load XDP program: %w", explainLoadError(err))
	}
	if err := d.initConfig(mac, seed); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func checkSizes(s Sizes) error {
	if !maglev.IsPrime(s.RingSize) {
		return fmt.Errorf("ring size %d is not a prime", s.RingSize)
	}
	if s.MaxVIPs > 1<<16 || s.MaxReals > 1<<20 {
		return fmt.Errorf("at most %d VIPs and %d reals", 1<<16, 1<<20)
	}
	if s.FlowEntries < 1024 {
		return fmt.Errorf("connection table of %d entries is too small (at least 1024)", s.FlowEntries)
	}
	return nil
}

// initConfig writes the interface MAC and hash parameters, refusing to change
// the ring size of adopted maps: the inner tables already have their size.
func (d *Dataplane) initConfig(mac net.HardwareAddr, seed uint32) error {
	var cur directorLbConfig
	if err := d.objs.Config.Lookup(uint32(0), &cur); err != nil {
		return fmt.Errorf("read config map: %w", err)
	}
	if cur.RingSize != 0 && cur.RingSize != d.sizes.RingSize {
		return fmt.Errorf("maps pinned in %s hold Maglev tables of %d entries, not %d; "+
			"run `director teardown` to change the ring size", d.pinDir, cur.RingSize, d.sizes.RingSize)
	}
	if cur.RingSize != 0 && cur.Seed != seed {
		d.log.Warn().Uint32("old", cur.Seed).Uint32("new", seed).Msg("hash seed changed: new flows may pick other reals")
	}
	next := directorLbConfig{RingSize: d.sizes.RingSize, Seed: seed}
	copy(next.Mac[:], mac)
	if err := d.objs.Config.Put(uint32(0), &next); err != nil {
		return fmt.Errorf("write config map: %w", err)
	}
	return nil
}

func (d *Dataplane) attach(ifindex int, mode AttachMode) error {
	linkPin := filepath.Join(d.pinDir, "link")
	old, err := link.LoadPinnedLink(linkPin, nil)
	switch {
	case err == nil:
		if adopted, err := d.adoptLink(old, ifindex); adopted || err != nil {
			return err
		}
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("open pinned link %s: %w", linkPin, err)
	}

	l, got, err := attachXDP(d.objs.XdpDirector, ifindex, mode, d.log)
	if err != nil {
		return err
	}
	if err := l.Pin(linkPin); err != nil {
		l.Close()
		return fmt.Errorf("pin link: %w", err)
	}
	d.link, d.mode = l, got
	d.log.Info().Stringer("mode", got).Msg("XDP program attached")
	return nil
}

// adoptLink takes over a link pinned by an earlier process, swapping in the
// new program. It reports false when the link no longer points at the
// interface (it was deleted and re-created): the caller attaches anew.
func (d *Dataplane) adoptLink(old link.Link, ifindex int) (bool, error) {
	info, err := old.Info()
	if err != nil {
		old.Close()
		return false, fmt.Errorf("inspect pinned link: %w", err)
	}
	xi := info.XDP()
	if xi == nil || int(xi.Ifindex) != ifindex {
		d.log.Warn().Msg("pinned XDP link is stale; attaching anew")
		if err := old.Unpin(); err != nil {
			old.Close()
			return false, fmt.Errorf("unpin stale link: %w", err)
		}
		old.Close()
		return false, nil
	}
	if err := old.Update(d.objs.XdpDirector); err != nil {
		old.Close()
		return false, fmt.Errorf("replace program on pinned link: %w", err)
	}
	d.link, d.mode = old, modeOfLink(ifindex)
	d.log.Info().Stringer("mode", d.mode).Msg("re-adopted pinned XDP link; program replaced atomically")
	return true, nil
}

func attachXDP(prog *ebpf.Program, ifindex int, mode AttachMode, log zerolog.Logger) (link.Link, AttachMode, error) {
	try := func(flags link.XDPAttachFlags) (link.Link, error) {
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: flags})
		if errors.Is(err, ebpf.ErrNotSupported) {
			err = fmt.Errorf("kernel lacks BPF links for XDP (Linux 5.9 or newer): %w", err)
		}
		return l, err
	}
	switch mode {
	case ModeGeneric:
		l, err := try(link.XDPGenericMode)
		if err != nil {
			return nil, 0, fmt.Errorf("attach XDP in generic mode: %w", err)
		}
		return l, ModeGeneric, nil
	case ModeNative:
		l, err := try(link.XDPDriverMode)
		if err != nil {
			return nil, 0, fmt.Errorf("attach XDP in native mode: %w", err)
		}
		return l, ModeNative, nil
	}
	l, err := try(link.XDPDriverMode)
	if err == nil {
		return l, ModeNative, nil
	}
	log.Warn().Err(err).Msg("native XDP refused; falling back to generic mode")
	l, gerr := try(link.XDPGenericMode)
	if gerr != nil {
		return nil, 0, fmt.Errorf("attach XDP: native: %v; generic: %w", err, gerr)
	}
	return l, ModeGeneric, nil
}

// modeOfLink tells native from generic for an adopted link, from the
// interface's XDP attachment as netlink reports it.
func modeOfLink(ifindex int) AttachMode {
	if m, err := linkXDPMode(ifindex); err == nil {
		return m
	}
	return ModeAuto
}

// Mode is how the program is attached (ModeNative or ModeGeneric), or
// ModeAuto when that is unknown or it is not attached.
func (d *Dataplane) Mode() AttachMode { return d.mode }

// Status says what is attached: the mode and the kernel's ids of the
// program and the link (the link outlives agent restarts, the program is
// replaced by each).
type Status struct {
	Mode      AttachMode
	ProgramID uint32
	LinkID    uint32
}

// Status reports the attachment. LinkID is 0 when loaded without attaching.
func (d *Dataplane) Status() (Status, error) {
	st := Status{Mode: d.mode}
	pi, err := d.objs.XdpDirector.Info()
	if err != nil {
		return st, fmt.Errorf("program info: %w", err)
	}
	if id, ok := pi.ID(); ok {
		st.ProgramID = uint32(id)
	}
	if d.link != nil {
		li, err := d.link.Info()
		if err != nil {
			return st, fmt.Errorf("link info: %w", err)
		}
		st.LinkID = uint32(li.ID)
	}
	return st, nil
}

// Sizes returns the dimensions the maps were made with.
func (d *Dataplane) Sizes() Sizes { return d.sizes }

// Close releases this process's handles. Pinned objects stay, and so does
// forwarding: a restarted agent re-adopts them with Open.
func (d *Dataplane) Close() error {
	var errs []error
	if d.link != nil {
		errs = append(errs, d.link.Close())
	}
	errs = append(errs, d.objs.Close())
	return errors.Join(errs...)
}

// Teardown detaches the program from iface and removes every pin under
// root/iface. Nothing of director stays in the kernel for that interface.
func Teardown(root, iface string) error {
	if root == "" {
		root = DefaultPinRoot
	}
	dir := filepath.Join(root, iface)
	linkPin := filepath.Join(dir, "link")
	l, err := link.LoadPinnedLink(linkPin, nil)
	switch {
	case err == nil:
		// Detach first: releasing the last reference detaches too, but
		// not synchronously on every kernel (5.10 kept the program
		// attached for a while after).
		derr := l.Detach()
		if errors.Is(derr, ebpf.ErrNotSupported) {
			derr = nil
		}
		uerr := l.Unpin()
		cerr := l.Close()
		if err := errors.Join(derr, uerr, cerr); err != nil {
			return fmt.Errorf("detach %s: %w", iface, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("open pinned link %s: %w", linkPin, err)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read pin folder: %w", err)
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("remove pin: %w", err)
		}
	}
	if err := os.Remove(dir); err != nil {
		return fmt.Errorf("remove pin folder: %w", err)
	}
	// The root goes too once no interface is left in it.
	_ = os.Remove(root)
	return nil
}

// ensureBPFFS makes sure the folder holding root is on a BPF filesystem,
// mounting one at /sys/fs/bpf when nothing is mounted there yet.
func ensureBPFFS(root string) error {
	parent := filepath.Dir(filepath.Clean(root))
	var st unix.Statfs_t
	if err := unix.Statfs(parent, &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if parent != "/sys/fs/bpf" {
		return fmt.Errorf("%s is not on a BPF filesystem (mount -t bpf bpf %s)", root, parent)
	}
	if err := unix.Mount("bpf", parent, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount bpffs at %s: %w", parent, err)
	}
	return nil
}

// explainLoadError names the kernel feature behind the usual refusals on
// older kernels, so the operator learns what to upgrade.
func explainLoadError(err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("the kernel's verifier rejected the program: %w", err)
	}
	switch {
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("kernel lacks a needed BPF feature (XDP, LRU hash with per-CPU lists, map-in-map; Linux 5.10 or newer): %w", err)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("not permitted (run as root, or with CAP_BPF and CAP_NET_ADMIN): %w", err)
	}
	return err
}
