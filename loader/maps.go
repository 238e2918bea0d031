package loader

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
)

// Proto is an IP protocol a VIP serves.
type Proto uint8

// The protocols a VIP can serve.
const (
	TCP Proto = 6
	UDP Proto = 17
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// VIPKey names a service: address, port (0 for every port) and protocol.
type VIPKey struct {
	Addr  netip.Addr
	Port  uint16
	Proto Proto
}

func (k VIPKey) String() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(k.Addr, k.Port), k.Proto)
}

// VIPFlags change how a VIP's packets are handled.
type VIPFlags uint32

const (
	// VIPSourceHash picks the real from the client address alone
	// (source affinity, HAProxy `balance source`, IPVS `sh`).
	VIPSourceHash VIPFlags = 1 << 0
	// VIPLocal hands the VIP's packets to the local stack (the L7 tier).
	VIPLocal VIPFlags = 1 << 1
)

// VIP is what the dataplane knows of a service.
type VIP struct {
	ID    uint32 // index of its Maglev table and counters, < Sizes.MaxVIPs
	Flags VIPFlags
}

// RealState is what the dataplane may do with a real.
type RealState uint8

const (
	// RealDown: no flows. Flows kept for it are re-picked from the table.
	RealDown RealState = 0
	// RealUp: new and existing flows.
	RealUp RealState = 1
	// RealDrain: existing flows only. The agent also leaves it out of the
	// table, so it gets no new ones.
	RealDrain RealState = 2
)

func (s RealState) String() string {
	switch s {
	case RealDown:
		return "down"
	case RealUp:
		return "up"
	case RealDrain:
		return "drain"
	}
	return fmt.Sprintf("RealState(%d)", uint8(s))
}

// Real is a real server of one VIP.
type Real struct {
	VIPID uint32
	Addr  netip.Addr
	MAC   net.HardwareAddr
	State RealState
}

// NoReal marks a table entry that names no real: packets hashed to it are
// dropped.
const NoReal uint32 = 0xFFFFFFFF

// Counters are packets, bytes and new flows, summed over CPUs.
type Counters struct {
	Packets  uint64
	Bytes    uint64
	NewFlows uint64
}

// Reason is why the program passed, dropped or forwarded a packet.
type Reason uint32

// The reasons the program counts, as in bpf/director.h.
const (
	CTHit         = Reason(directorStatReasonSTAT_CT_HIT)
	CTMiss        = Reason(directorStatReasonSTAT_CT_MISS)
	TX            = Reason(directorStatReasonSTAT_TX)
	TXICMPTooBig  = Reason(directorStatReasonSTAT_TX_ICMP_PTB)
	PassNotIP     = Reason(directorStatReasonSTAT_PASS_NOT_IP)
	PassNotVIP    = Reason(directorStatReasonSTAT_PASS_NOT_VIP)
	PassNoService = Reason(directorStatReasonSTAT_PASS_NO_SERVICE)
	PassLocal     = Reason(directorStatReasonSTAT_PASS_LOCAL)
	PassICMP      = Reason(directorStatReasonSTAT_PASS_ICMP)
	PassIPv6Ext   = Reason(directorStatReasonSTAT_PASS_IPV6EXT)
	DropMalformed = Reason(directorStatReasonSTAT_DROP_MALFORMED)
	DropFragment  = Reason(directorStatReasonSTAT_DROP_FRAGMENT)
	DropNoReal    = Reason(directorStatReasonSTAT_DROP_NO_REAL)

	numReasons = int(directorStatReasonSTAT_MAX)
)

// Address families as the program stores them.
const (
	familyIPv4 = 4
	familyIPv6 = 6
)

var reasonNames = [...]string{
	CTHit:         "ct_hit",
	CTMiss:        "ct_miss",
	TX:            "tx",
	TXICMPTooBig:  "tx_icmp_too_big",
	PassNotIP:     "pass_not_ip",
	PassNotVIP:    "pass_not_vip",
	PassNoService: "pass_no_service",
	PassLocal:     "pass_local",
	PassICMP:      "pass_icmp",
	PassIPv6Ext:   "pass_ipv6_ext",
	DropMalformed: "drop_malformed",
	DropFragment:  "drop_fragment",
	DropNoReal:    "drop_no_real",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint32(r))
}

// Reasons lists every reason the program counts, in order.
func Reasons() []Reason {
	out := make([]Reason, numReasons)
	for i := range out {
		out[i] = Reason(i)
	}
	return out
}

func addrWords(a netip.Addr) (w [4]uint32, family uint8, err error) {
	switch {
	case a.Is4():
		b := a.As4()
		w[0] = nativeEndian.Uint32(b[:])
		return w, familyIPv4, nil
	case a.Is6() && !a.Is4In6():
		b := a.As16()
		for i := range w {
			w[i] = nativeEndian.Uint32(b[4*i:])
		}
		return w, familyIPv6, nil
	}
	return w, 0, fmt.Errorf("address %v is not IPv4 or IPv6", a)
}

func wordsAddr(w [4]uint32, family uint8) netip.Addr {
	var b [16]byte
	for i := range w {
		nativeEndian.PutUint32(b[4*i:], w[i])
	}
	if family == familyIPv4 {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom16(b)
}

func vipKey(k VIPKey) (directorVipKey, error) {
	w, fam, err := addrWords(k.Addr)
	if err != nil {
		return directorVipKey{}, err
	}
	if k.Proto != TCP && k.Proto != UDP {
		return directorVipKey{}, fmt.Errorf("VIP %v: protocol %d is neither tcp nor udp", k.Addr, k.Proto)
	}
	return directorVipKey{Addr: w, Port: htons(k.Port), Proto: uint8(k.Proto), Family: fam}, nil
}

// SetVIP adds or changes a VIP. Its packets are dropped as "no real" until
// its table is written (SetTable).
func (d *Dataplane) SetVIP(k VIPKey, v VIP) error {
	key, err := vipKey(k)
	if err != nil {
		return err
	}
	if v.ID >= d.sizes.MaxVIPs {
		return fmt.Errorf("VIP %v: id %d out of range (max %d VIPs)", k, v.ID, d.sizes.MaxVIPs)
	}
	if v.Flags&^(VIPSourceHash|VIPLocal) != 0 {
		return fmt.Errorf("VIP %v: unknown flags %#x", k, uint32(v.Flags))
	}
	var old directorVipMeta
	if err := d.objs.Vips.Lookup(&key, &old); err == nil && old.Id != v.ID {
		return fmt.Errorf("VIP %v already has id %d", k, old.Id)
	}
	if err := d.objs.Vips.Put(&key, &directorVipMeta{Id: v.ID, Flags: uint32(v.Flags)}); err != nil {
		return fmt.Errorf("write VIP %v: %w", k, err)
	}
	return d.syncVIPAddr(key.Addr, key.Family)
}

// RemoveVIP removes a VIP, its table and its counters.
func (d *Dataplane) RemoveVIP(k VIPKey) error {
	key, err := vipKey(k)
	if err != nil {
		return err
	}
	var meta directorVipMeta
	if err := d.objs.Vips.Lookup(&key, &meta); err != nil {
		return fmt.Errorf("VIP %v: %w", k, err)
	}
	if err := d.objs.Vips.Delete(&key); err != nil {
		return fmt.Errorf("remove VIP %v: %w", k, err)
	}
	if err := d.syncVIPAddr(key.Addr, key.Family); err != nil {
		return err
	}
	if err := d.objs.Rings.Delete(meta.Id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("remove table of VIP %v: %w", k, err)
	}
	return d.zeroCounters(d.objs.VipStats, meta.Id)
}

// syncVIPAddr keeps vip_addrs, the first filter of the program, equal to the
// set of addresses that carry a VIP.
func (d *Dataplane) syncVIPAddr(addr [4]uint32, family uint8) error {
	var (
		k    directorVipKey
		m    directorVipMeta
		n    uint32
		iter = d.objs.Vips.Iterate()
	)
	for iter.Next(&k, &m) {
		if k.Addr == addr && k.Family == family {
			n++
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("list VIPs: %w", err)
	}
	ak := directorVipAddrKey{Addr: addr, Family: uint32(family)}
	if n == 0 {
		if err := d.objs.VipAddrs.Delete(&ak); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("remove VIP address: %w", err)
		}
		return nil
	}
	if err := d.objs.VipAddrs.Put(&ak, n); err != nil {
		return fmt.Errorf("write VIP address: %w", err)
	}
	return nil
}

// VIPs lists the VIPs in the dataplane: what a restarted agent adopts.
func (d *Dataplane) VIPs() (map[VIPKey]VIP, error) {
	out := make(map[VIPKey]VIP)
	var (
		k    directorVipKey
		m    directorVipMeta
		iter = d.objs.Vips.Iterate()
	)
	for iter.Next(&k, &m) {
		key := VIPKey{Addr: wordsAddr(k.Addr, k.Family), Port: ntohs(k.Port), Proto: Proto(k.Proto)}
		out[key] = VIP{ID: m.Id, Flags: VIPFlags(m.Flags)}
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("list VIPs: %w", err)
	}
	return out, nil
}

// SetReal puts a real under id. Giving an id to another real (other VIP or
// address) invalidates the flows kept for the former one and zeroes its
// counters.
func (d *Dataplane) SetReal(id uint32, r Real) error {
	if id >= d.sizes.MaxReals {
		return fmt.Errorf("real id %d out of range (max %d reals)", id, d.sizes.MaxReals)
	}
	if r.VIPID >= d.sizes.MaxVIPs {
		return fmt.Errorf("real %v: VIP id %d out of range", r.Addr, r.VIPID)
	}
	if len(r.MAC) != 6 {
		return fmt.Errorf("real %v: %q is not an Ethernet address", r.Addr, r.MAC)
	}
	if r.State > RealDrain {
		return fmt.Errorf("real %v: unknown state %d", r.Addr, r.State)
	}
	w, fam, err := addrWords(r.Addr)
	if err != nil {
		return fmt.Errorf("real: %w", err)
	}
	var old directorReal
	if err := d.objs.Reals.Lookup(id, &old); err != nil {
		return fmt.Errorf("read real %d: %w", id, err)
	}
	next := directorReal{State: uint8(r.State), Family: fam, VipId: r.VIPID, Gen: old.Gen, Addr: w}
	copy(next.Mac[:], r.MAC)
	if old.Family != fam || old.Addr != w || old.VipId != r.VIPID {
		next.Gen++
		if err := d.zeroCounters(d.objs.RealStats, id); err != nil {
			return err
		}
	}
	if err := d.objs.Reals.Put(id, &next); err != nil {
		return fmt.Errorf("write real %d: %w", id, err)
	}
	return nil
}

// SetRealState marks a real up, down or draining.
func (d *Dataplane) SetRealState(id uint32, s RealState) error {
	if s > RealDrain {
		return fmt.Errorf("real %d: unknown state %d", id, s)
	}
	var r directorReal
	if err := d.objs.Reals.Lookup(id, &r); err != nil {
		return fmt.Errorf("read real %d: %w", id, err)
	}
	if r.Family == 0 {
		return fmt.Errorf("real %d is not set", id)
	}
	r.State = uint8(s)
	if err := d.objs.Reals.Put(id, &r); err != nil {
		return fmt.Errorf("write real %d: %w", id, err)
	}
	return nil
}

// RemoveReal frees id. Flows kept for the real are re-picked; the agent must
// have taken it out of its VIP's table first.
func (d *Dataplane) RemoveReal(id uint32) error {
	var r directorReal
	if err := d.objs.Reals.Lookup(id, &r); err != nil {
		return fmt.Errorf("read real %d: %w", id, err)
	}
	// Keep the generation, bumped, so no kept flow matches a later real.
	if err := d.objs.Reals.Put(id, &directorReal{Gen: r.Gen + 1}); err != nil {
		return fmt.Errorf("remove real %d: %w", id, err)
	}
	return nil
}

// Reals lists the reals in the dataplane by id.
func (d *Dataplane) Reals() (map[uint32]Real, error) {
	out := make(map[uint32]Real)
	var (
		id   uint32
		r    directorReal
		iter = d.objs.Reals.Iterate()
	)
	for iter.Next(&id, &r) {
		if r.Family == 0 {
			continue
		}
		out[id] = Real{
			VIPID: r.VipId,
			Addr:  wordsAddr(r.Addr, r.Family),
			MAC:   net.HardwareAddr(append([]byte(nil), r.Mac[:]...)),
			State: RealState(r.State),
		}
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("list reals: %w", err)
	}
	return out, nil
}

// SetTable writes a VIP's Maglev table: real ids, or NoReal, one per slot,
// exactly Sizes.RingSize of them. The table is built aside and swapped in
// with one map update, so no packet ever sees a half-written table.
func (d *Dataplane) SetTable(vipID uint32, table []uint32) error {
	if vipID >= d.sizes.MaxVIPs {
		return fmt.Errorf("VIP id %d out of range", vipID)
	}
	if uint32(len(table)) != d.sizes.RingSize {
		return fmt.Errorf("table of VIP %d has %d entries, want %d", vipID, len(table), d.sizes.RingSize)
	}
	for i, id := range table {
		if id != NoReal && id >= d.sizes.MaxReals {
			return fmt.Errorf("table of VIP %d: entry %d names real %d, out of range", vipID, i, id)
		}
	}
	inner, err := ebpf.NewMap(d.ring)
	if err != nil {
		return fmt.Errorf("create table of VIP %d: %w", vipID, err)
	}
	defer inner.Close()
	if err := fillArray(inner, table); err != nil {
		return fmt.Errorf("fill table of VIP %d: %w", vipID, err)
	}
	if err := d.objs.Rings.Put(vipID, inner); err != nil {
		return fmt.Errorf("install table of VIP %d: %w", vipID, err)
	}
	return nil
}

func fillArray(m *ebpf.Map, values []uint32) error {
	keys := make([]uint32, len(values))
	for i := range keys {
		keys[i] = uint32(i)
	}
	_, err := m.BatchUpdate(keys, values, nil)
	if !errors.Is(err, ebpf.ErrNotSupported) {
		return err
	}
	for i, v := range values {
		if err := m.Put(uint32(i), v); err != nil {
			return err
		}
	}
	return nil
}

// Table reads a VIP's current Maglev table; nil if it has none.
func (d *Dataplane) Table(vipID uint32) ([]uint32, error) {
	var innerID ebpf.MapID
	if err := d.objs.Rings.Lookup(vipID, &innerID); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read table slot of VIP %d: %w", vipID, err)
	}
	inner, err := ebpf.NewMapFromID(innerID)
	if err != nil {
		return nil, fmt.Errorf("open table of VIP %d: %w", vipID, err)
	}
	defer inner.Close()
	out := make([]uint32, d.sizes.RingSize)
	var (
		k, v uint32
		iter = inner.Iterate()
	)
	for iter.Next(&k, &v) {
		out[k] = v
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("read table of VIP %d: %w", vipID, err)
	}
	return out, nil
}

// VIPCounters reads a VIP's counters, summed over CPUs.
func (d *Dataplane) VIPCounters(vipID uint32) (Counters, error) {
	return sumCounters(d.objs.VipStats, vipID)
}

// RealCounters reads a real's counters, summed over CPUs.
func (d *Dataplane) RealCounters(id uint32) (Counters, error) {
	return sumCounters(d.objs.RealStats, id)
}

func sumCounters(m *ebpf.Map, id uint32) (Counters, error) {
	var per []directorCounter
	if err := m.Lookup(id, &per); err != nil {
		return Counters{}, fmt.Errorf("read counters %d: %w", id, err)
	}
	var c Counters
	for _, p := range per {
		c.Packets += p.Packets
		c.Bytes += p.Bytes
		c.NewFlows += p.NewFlows
	}
	return c, nil
}

func (d *Dataplane) zeroCounters(m *ebpf.Map, id uint32) error {
	zero := make([]directorCounter, ebpf.MustPossibleCPU())
	if err := m.Put(id, zero); err != nil {
		return fmt.Errorf("reset counters %d: %w", id, err)
	}
	return nil
}

// Stats reads the per-reason packet counters, summed over CPUs.
func (d *Dataplane) Stats() (map[Reason]uint64, error) {
	out := make(map[Reason]uint64, numReasons)
	for _, r := range Reasons() {
		var per []uint64
		if err := d.objs.Stats.Lookup(uint32(r), &per); err != nil {
			return nil, fmt.Errorf("read counter %v: %w", r, err)
		}
		var sum uint64
		for _, v := range per {
			sum += v
		}
		out[r] = sum
	}
	return out, nil
}

// Flows counts the connection table's entries. It walks the whole table:
// for tests and diagnostics, not for every scrape.
func (d *Dataplane) Flows() (int, error) {
	var (
		k    directorFlowKey
		v    directorFlow
		n    int
		iter = d.objs.Flows.Iterate()
	)
	for iter.Next(&k, &v) {
		n++
	}
	if err := iter.Err(); err != nil {
		return 0, fmt.Errorf("walk connection table: %w", err)
	}
	return n, nil
}

func linkXDPMode(ifindex int) (AttachMode, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return ModeAuto, err
	}
	x := l.Attrs().Xdp
	if x == nil {
		return ModeAuto, errors.New("no XDP attachment")
	}
	switch x.AttachMode {
	case 1: // XDP_ATTACHED_DRV
		return ModeNative, nil
	case 2: // XDP_ATTACHED_SKB
		return ModeGeneric, nil
	}
	return ModeAuto, nil
}
