package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Protocol is the IP protocol number of VRRP.
const Protocol = 112

// Multicast groups VRRP adverts are sent to (RFC 5798 §5.1.1.2, §5.1.2.2).
var (
	GroupV4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	GroupV6 = netip.MustParseAddr("ff02::12")
)

// Authentication types of VRRPv2 (RFC 3768 §5.3.6). Only AuthNone and
// AuthPass (keepalived's auth_type PASS) are supported.
const (
	AuthNone uint8 = 0
	AuthPass uint8 = 1
)

const (
	typeAdvert   = 1
	headerLen    = 8
	authDataLen  = 8
	maxV3Ticks   = 0x0fff // 12-bit field, centiseconds
	requiredTTL  = 255
	maxAddrCount = 255
)

// Advert is one VRRP advertisement, with the fields of its IP header that
// matter to VRRP.
type Advert struct {
	Version  int // 2 or 3
	VRID     uint8
	Priority uint8
	// Interval is the advertisement interval: whole seconds for VRRPv2,
	// centiseconds for VRRPv3.
	Interval time.Duration
	Addrs    []netip.Addr

	// VRRPv2 authentication. Auth holds the password, zero padded.
	AuthType uint8
	Auth     [authDataLen]byte

	// From the IP header. Src is the sender's primary address.
	Src, Dst netip.Addr
	TTL      int // TTL or hop limit
}

// Cause says why a received advert was discarded.
type Cause int

// Discard causes, one for every validation a received advert goes through.
const (
	CauseLength   Cause = iota // truncated, or length does not match the address count
	CauseTTL                   // TTL / hop limit is not 255
	CauseVersion               // not the configured VRRP version
	CauseType                  // not an ADVERTISEMENT
	CauseChecksum              // bad checksum
	CauseVRID                  // not our virtual router
	CauseAuthType              // VRRPv2 authentication type differs from ours
	CauseAuth                  // VRRPv2 password differs from ours
	CauseInterval              // VRRPv2 interval differs from ours, or a zero interval
	CauseFamily                // address family of the advert or its sender is wrong
	numCauses
)

var causeNames = [numCauses]string{
	CauseLength:   "length",
	CauseTTL:      "ttl",
	CauseVersion:  "version",
	CauseType:     "type",
	CauseChecksum: "checksum",
	CauseVRID:     "vrid",
	CauseAuthType: "auth_type",
	CauseAuth:     "auth",
	CauseInterval: "interval",
	CauseFamily:   "family",
}

// Causes lists every discard cause, for metrics.
func Causes() []Cause {
	c := make([]Cause, numCauses)
	for i := range c {
		c[i] = Cause(i)
	}
	return c
}

func (c Cause) String() string {
	if c >= 0 && c < numCauses {
		return causeNames[c]
	}
	return fmt.Sprintf("cause(%d)", int(c))
}

// DiscardError is returned for an advert that must be discarded.
type DiscardError struct {
	Cause  Cause
	Detail string
}

func (e *DiscardError) Error() string {
	return "vrrp: discard (" + e.Cause.String() + "): " + e.Detail
}

func discard(c Cause, format string, args ...any) error {
	return &DiscardError{Cause: c, Detail: fmt.Sprintf(format, args...)}
}

// CauseOf returns the discard cause of err, if it is (or wraps) a
// *DiscardError.
func CauseOf(err error) (Cause, bool) {
	var de *DiscardError
	if errors.As(err, &de) {
		return de.Cause, true
	}
	return 0, false
}

// Marshal encodes the advert as the payload of an IP packet from src to dst.
// VRRPv3 checksums cover a pseudo-header, so src and dst must be the
// addresses the packet is sent with; VRRPv2 ignores them.
func (a *Advert) Marshal(src, dst netip.Addr) ([]byte, error) {
	v6 := src.Is6() && !src.Is4In6()
	alen := 4
	if v6 {
		alen = 16
	}
	if len(a.Addrs) > maxAddrCount {
		return nil, fmt.Errorf("vrrp: %d addresses, at most %d", len(a.Addrs), maxAddrCount)
	}
	n := headerLen + alen*len(a.Addrs)
	if a.Version == 2 {
		n += authDataLen
	}
	b := make([]byte, n)
	b[0] = byte(a.Version)<<4 | typeAdvert
	b[1] = a.VRID
	b[2] = a.Priority
	b[3] = byte(len(a.Addrs))
	switch a.Version {
	case 2:
		if v6 {
			return nil, errors.New("vrrp: VRRPv2 is IPv4 only")
		}
		secs := a.Interval / time.Second
		if secs < 1 || secs > 255 || a.Interval%time.Second != 0 {
			return nil, fmt.Errorf("vrrp: VRRPv2 interval %v is not 1..255 whole seconds", a.Interval)
		}
		b[4] = a.AuthType
		b[5] = byte(secs)
	case 3:
		cs := a.Interval / (10 * time.Millisecond)
		if cs < 1 || cs > maxV3Ticks || a.Interval%(10*time.Millisecond) != 0 {
			return nil, fmt.Errorf("vrrp: VRRPv3 interval %v is not 10ms..40.95s in centiseconds", a.Interval)
		}
		binary.BigEndian.PutUint16(b[4:], uint16(cs))
	default:
		return nil, fmt.Errorf("vrrp: version %d", a.Version)
	}
	off := headerLen
	for _, ip := range a.Addrs {
		if ip.Is4() == v6 {
			return nil, fmt.Errorf("vrrp: address %v does not match the family of %v", ip, src)
		}
		copy(b[off:], ip.AsSlice())
		off += alen
	}
	if a.Version == 2 {
		copy(b[off:], a.Auth[:])
	}
	var sum uint16
	if a.Version == 3 {
		sum = checksum(b, pseudoHeader(src, dst, len(b)))
	} else {
		sum = checksum(b, nil)
	}
	binary.BigEndian.PutUint16(b[6:], sum)
	return b, nil
}

// Decode parses and checks a received advert: length, TTL or hop limit,
// version, type and checksum. src and dst come from the IP header (or the
// IPv6 control message); their family picks the address size. Every failure
// is a *DiscardError. Checks that depend on the instance (VRID,
// authentication, interval) are done by Params.Check.
func Decode(b []byte, src, dst netip.Addr, ttl int) (*Advert, error) {
	v6 := src.Is6() && !src.Is4In6()
	if !src.IsValid() || !dst.IsValid() || dst.Is6() != v6 {
		return nil, discard(CauseFamily, "source %v, destination %v", src, dst)
	}
	if len(b) < headerLen {
		return nil, discard(CauseLength, "%d bytes, header is %d", len(b), headerLen)
	}
	if ttl != requiredTTL {
		return nil, discard(CauseTTL, "TTL/hop limit %d from %v", ttl, src)
	}
	a := &Advert{
		Version:  int(b[0] >> 4),
		VRID:     b[1],
		Priority: b[2],
		Src:      src,
		Dst:      dst,
		TTL:      ttl,
	}
	if t := b[0] & 0x0f; t != typeAdvert {
		return nil, discard(CauseType, "type %d from %v", t, src)
	}
	count := int(b[3])
	alen := 4
	if v6 {
		alen = 16
	}
	want := headerLen + count*alen
	switch a.Version {
	case 2:
		if v6 {
			return nil, discard(CauseVersion, "VRRPv2 over IPv6 from %v", src)
		}
		want += authDataLen
		a.AuthType = b[4]
		a.Interval = time.Duration(b[5]) * time.Second
	case 3:
		a.Interval = time.Duration(binary.BigEndian.Uint16(b[4:])&maxV3Ticks) * 10 * time.Millisecond
	default:
		return nil, discard(CauseVersion, "version %d from %v", a.Version, src)
	}
	if len(b) != want {
		return nil, discard(CauseLength, "%d bytes, %d addresses need %d, from %v", len(b), count, want, src)
	}
	var sum uint16
	if a.Version == 3 {
		sum = checksum(b, pseudoHeader(src, dst, len(b)))
	} else {
		sum = checksum(b, nil)
	}
	if sum != 0 {
		return nil, discard(CauseChecksum, "from %v", src)
	}
	if a.Interval == 0 {
		return nil, discard(CauseInterval, "zero interval from %v", src)
	}
	a.Addrs = make([]netip.Addr, count)
	off := headerLen
	for i := range a.Addrs {
		if v6 {
			a.Addrs[i] = netip.AddrFrom16([16]byte(b[off : off+16]))
		} else {
			a.Addrs[i] = netip.AddrFrom4([4]byte(b[off : off+4]))
		}
		off += alen
	}
	if a.Version == 2 {
		copy(a.Auth[:], b[off:])
	}
	return a, nil
}

// Params are what an instance checks a decoded advert against.
type Params struct {
	Version  int
	VRID     uint8
	AuthType uint8
	Auth     [authDataLen]byte
	Interval time.Duration // checked for VRRPv2 only
}

// Check validates a decoded advert against the instance: VRID, version and,
// for VRRPv2, authentication and interval (RFC 3768 §7.1). It returns a
// *DiscardError.
func (p Params) Check(a *Advert) error {
	if a.Version != p.Version {
		return discard(CauseVersion, "version %d from %v, want %d", a.Version, a.Src, p.Version)
	}
	if a.VRID != p.VRID {
		return discard(CauseVRID, "VRID %d from %v, want %d", a.VRID, a.Src, p.VRID)
	}
	if p.Version == 2 {
		if a.AuthType != p.AuthType {
			return discard(CauseAuthType, "auth type %d from %v, want %d", a.AuthType, a.Src, p.AuthType)
		}
		if p.AuthType == AuthPass && a.Auth != p.Auth {
			return discard(CauseAuth, "wrong password from %v", a.Src)
		}
		if a.Interval != p.Interval {
			return discard(CauseInterval, "interval %v from %v, want %v", a.Interval, a.Src, p.Interval)
		}
	}
	return nil
}

// pseudoHeader returns the IPv4 (RFC 768 style) or IPv6 (RFC 8200 §8.1)
// pseudo-header for a VRRP payload of n bytes.
func pseudoHeader(src, dst netip.Addr, n int) []byte {
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		h := make([]byte, 12)
		copy(h, s[:])
		copy(h[4:], d[:])
		h[9] = Protocol
		binary.BigEndian.PutUint16(h[10:], uint16(n))
		return h
	}
	s, d := src.As16(), dst.As16()
	h := make([]byte, 40)
	copy(h, s[:])
	copy(h[16:], d[:])
	binary.BigEndian.PutUint32(h[32:], uint32(n))
	h[39] = Protocol
	return h
}

// checksum is the Internet checksum (RFC 1071) of pseudo followed by b. It
// returns the value to store, or 0 when verifying a correct message.
func checksum(b, pseudo []byte) uint16 {
	var s uint32
	add := func(p []byte) {
		for len(p) >= 2 {
			s += uint32(p[0])<<8 | uint32(p[1])
			p = p[2:]
		}
		if len(p) == 1 {
			s += uint32(p[0]) << 8
		}
	}
	add(pseudo) // always even length
	add(b)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// AuthData pads a VRRPv2 password to the 8 bytes of authentication data,
// as keepalived's auth_pass does (longer passwords are truncated).
func AuthData(pass string) [authDataLen]byte {
	var a [authDataLen]byte
	copy(a[:], pass)
	return a
}
