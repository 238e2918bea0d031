package loader

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// Frames for BPF_PROG_TEST_RUN, built byte by byte so every length field can
// be made to lie.

var be = binary.BigEndian

const (
	etherIPv4 = 0x0800
	etherIPv6 = 0x86DD
	etherARP  = 0x0806
	etherVLAN = 0x8100
	etherQinQ = 0x88A8
)

type frame struct {
	dst, src net.HardwareAddr
	vlans    []uint16 // VLAN ids, outermost first
	etype    uint16
	payload  []byte
}

func (f frame) bytes() []byte {
	b := make([]byte, 0, 64+len(f.payload))
	b = append(b, f.dst...)
	b = append(b, f.src...)
	for i, id := range f.vlans {
		tpid := uint16(etherVLAN)
		if i == 0 && len(f.vlans) > 1 {
			tpid = etherQinQ
		}
		b = be.AppendUint16(b, tpid)
		b = be.AppendUint16(b, id)
	}
	b = be.AppendUint16(b, f.etype)
	return append(b, f.payload...)
}

type ipv4 struct {
	src, dst netip.Addr
	proto    uint8
	options  []byte // a multiple of 4 bytes
	fragOff  uint16 // flags and offset, host order
	payload  []byte
}

func (p ipv4) bytes() []byte {
	hlen := 20 + len(p.options)
	b := make([]byte, hlen, hlen+len(p.payload))
	b[0] = 0x40 | byte(hlen/4)
	be.PutUint16(b[2:], uint16(hlen+len(p.payload)))
	be.PutUint16(b[4:], 0x1234)
	be.PutUint16(b[6:], p.fragOff)
	b[8] = 64
	b[9] = p.proto
	s, d := p.src.As4(), p.dst.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	copy(b[20:], p.options)
	be.PutUint16(b[10:], checksum(b))
	return append(b, p.payload...)
}

type ipv6 struct {
	src, dst netip.Addr
	next     uint8
	payload  []byte
}

func (p ipv6) bytes() []byte {
	b := make([]byte, 40, 40+len(p.payload))
	b[0] = 0x60
	be.PutUint16(b[4:], uint16(len(p.payload)))
	b[6] = p.next
	b[7] = 64
	s, d := p.src.As16(), p.dst.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	return append(b, p.payload...)
}

// TCP flags.
const (
	tcpSYN = 0x02
	tcpACK = 0x10
)

func tcpSeg(sport, dport uint16, payload []byte) []byte {
	return tcpSegFlags(sport, dport, tcpSYN, payload)
}

func tcpSegFlags(sport, dport uint16, flags byte, payload []byte) []byte {
	b := make([]byte, 20, 20+len(payload))
	be.PutUint16(b[0:], sport)
	be.PutUint16(b[2:], dport)
	be.PutUint32(b[4:], 1000)
	b[12] = 5 << 4
	b[13] = flags
	be.PutUint16(b[14:], 65535)
	return append(b, payload...)
}

func udpDgram(sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	be.PutUint16(b[0:], sport)
	be.PutUint16(b[2:], dport)
	be.PutUint16(b[4:], uint16(8+len(payload)))
	return append(b, payload...)
}

func icmpMsg(typ, code uint8, body []byte) []byte {
	b := make([]byte, 8, 8+len(body))
	b[0], b[1] = typ, code
	be.PutUint16(b[6:], 1400) // next-hop MTU
	b = append(b, body...)
	be.PutUint16(b[2:], checksum(b))
	return b
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(be.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
