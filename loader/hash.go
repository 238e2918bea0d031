package loader

import (
	"encoding/binary"
	"net/netip"
)

// The program reads packet fields as the CPU loads them; the generated
// objects are little-endian (bpfel), and so is every host they load on.
var nativeEndian = binary.LittleEndian

func htons(v uint16) uint16 { return v<<8 | v>>8 }
func ntohs(v uint16) uint16 { return htons(v) }

// Flow is a client -> VIP 5-tuple.
type Flow struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Proto            Proto
}

// FlowHash is the hash the program computes for a new flow: index
// FlowHash(f, seed) % RingSize of the VIP's table names its real. With
// sourceOnly, only the client address counts (VIPSourceHash).
func FlowHash(f Flow, seed uint32, sourceOnly bool) uint32 {
	src, fam, _ := addrWords(f.Src)
	dst, _, _ := addrWords(f.Dst)
	// Ports as the program loads them: big-endian on the wire, read as a
	// little-endian u16.
	sport, dport := uint32(htons(f.SrcPort)), uint32(htons(f.DstPort))
	ports := sport<<16 | dport
	proto := uint32(f.Proto)

	if sourceOnly {
		if fam == familyIPv4 {
			a, b, c := jinit(1, seed)
			a += src[0]
			return jfinal(a, b, c)
		}
		a, b, c := jinit(4, seed)
		a, b, c = jmix(a+src[0], b+src[1], c+src[2])
		return jfinal(a+src[3], b, c)
	}
	if fam == familyIPv4 {
		a, b, c := jinit(4, seed)
		a, b, c = jmix(a+src[0], b+dst[0], c+ports)
		return jfinal(a+proto, b, c)
	}
	a, b, c := jinit(10, seed)
	a, b, c = jmix(a+src[0], b+src[1], c+src[2])
	a, b, c = jmix(a+src[3], b+dst[0], c+dst[1])
	a, b, c = jmix(a+dst[2], b+dst[3], c+ports)
	return jfinal(a+proto, b, c)
}

func rol32(w uint32, s uint) uint32 { return w<<s | w>>(32-s) }

func jinit(n, seed uint32) (a, b, c uint32) {
	v := 0xdeadbeef + n<<2 + seed
	return v, v, v
}

// jmix and jfinal are lookup3's mix() and final(), as in bpf/director.c.
func jmix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= c
	a ^= rol32(c, 4)
	c += b
	b -= a
	b ^= rol32(a, 6)
	a += c
	c -= b
	c ^= rol32(b, 8)
	b += a
	a -= c
	a ^= rol32(c, 16)
	c += b
	b -= a
	b ^= rol32(a, 19)
	a += c
	c -= b
	c ^= rol32(b, 4)
	b += a
	return a, b, c
}

func jfinal(a, b, c uint32) uint32 {
	c ^= b
	c -= rol32(b, 14)
	a ^= c
	a -= rol32(c, 11)
	b ^= a
	b -= rol32(a, 25)
	c ^= b
	c -= rol32(b, 16)
	a ^= c
	a -= rol32(c, 4)
	b ^= a
	b -= rol32(a, 14)
	c ^= b
	c -= rol32(b, 24)
	return c
}
