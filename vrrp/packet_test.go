package vrrp

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"testing"
	"time"
)

// Golden adverts captured with tcpdump from keepalived 2.2.7 in a network
// namespace (VRRP payload only; addresses from the IP header).
var goldens = []struct {
	name     string
	src, dst string
	hex      string
	want     Advert
}{
	{
		name: "v3 ipv4 multicast",
		src:  "10.9.0.1", dst: "224.0.0.18",
		hex: "3133ff010064da600a090064",
		want: Advert{Version: 3, VRID: 51, Priority: 255, Interval: time.Second,
			Addrs: []netip.Addr{netip.MustParseAddr("10.9.0.100")}},
	},
	{
		name: "v3 ipv4 unicast",
		src:  "10.9.0.1", dst: "10.9.0.2",
		hex: "3136ff010064b0650a090064",
		want: Advert{Version: 3, VRID: 54, Priority: 255, Interval: time.Second,
			Addrs: []netip.Addr{netip.MustParseAddr("10.9.0.100")}},
	},
	{
		name: "v2 auth pass",
		src:  "10.9.0.1", dst: "224.0.0.18",
		hex: "2134ff01010166dd0a0900647365637265743132",
		want: Advert{Version: 2, VRID: 52, Priority: 255, Interval: time.Second,
			Addrs:    []netip.Addr{netip.MustParseAddr("10.9.0.100")},
			AuthType: AuthPass, Auth: AuthData("secret12")},
	},
	{
		name: "v3 ipv6 100ms",
		src:  "fe80::1", dst: "ff02::12",
		hex: "3135ff01000ad39efd000000000000000000000000000100",
		want: Advert{Version: 3, VRID: 53, Priority: 255, Interval: 100 * time.Millisecond,
			Addrs: []netip.Addr{netip.MustParseAddr("fd00::100")}},
	},
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGoldenDecode(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			src, dst := netip.MustParseAddr(g.src), netip.MustParseAddr(g.dst)
			a, err := Decode(mustHex(t, g.hex), src, dst, 255)
			if err != nil {
				t.Fatal(err)
			}
			w := g.want
			if a.Version != w.Version || a.VRID != w.VRID || a.Priority != w.Priority ||
				a.Interval != w.Interval || a.AuthType != w.AuthType || a.Auth != w.Auth ||
				len(a.Addrs) != len(w.Addrs) || a.Src != src || a.Dst != dst {
				t.Fatalf("got %+v, want %+v", a, w)
			}
			for i := range a.Addrs {
				if a.Addrs[i] != w.Addrs[i] {
					t.Errorf("addr %d: %v, want %v", i, a.Addrs[i], w.Addrs[i])
				}
			}
		})
	}
}

func TestGoldenEncode(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			src, dst := netip.MustParseAddr(g.src), netip.MustParseAddr(g.dst)
			w := g.want
			b, err := w.Marshal(src, dst)
			if err != nil {
				t.Fatal(err)
			}
			if want := mustHex(t, g.hex); !bytes.Equal(b, want) {
				t.Fatalf("got  %x\nwant %x", b, want)
			}
		})
	}
}

// TestChecksumPseudoHeaderMatters checks that the v3 IPv4 checksum covers
// the pseudo-header. The golden's checksum worked out by hand:
//
//	pseudo-header: 0a09+0001+e000+0012+0070+000c           = 0x0ea98
//	VRRP (checksum 0): 3133+ff01+0064+0000+0a09+0064      = 0x13b05
//	sum 0x2259d, folded 0x259f, complemented               = 0xda60
func TestChecksumPseudoHeaderMatters(t *testing.T) {
	b := mustHex(t, goldens[0].hex)
	src := netip.MustParseAddr("10.9.0.1")
	if _, err := Decode(b, src, netip.MustParseAddr("224.0.0.18"), 255); err != nil {
		t.Fatal(err)
	}
	// Same bytes, other destination: the pseudo-header changes, so the
	// checksum no longer verifies.
	_, err := Decode(b, src, netip.MustParseAddr("10.9.0.2"), 255)
	if c, ok := CauseOf(err); !ok || c != CauseChecksum {
		t.Fatalf("err = %v, want checksum discard", err)
	}
}

func TestDecodeDiscards(t *testing.T) {
	v4 := netip.MustParseAddr("10.9.0.1")
	grp := GroupV4
	v6 := netip.MustParseAddr("fe80::1")
	good := func() []byte { return mustHex(t, goldens[0].hex) }
	mod := func(f func(b []byte) []byte) []byte { return f(good()) }
	refix := func(b []byte) []byte { // recompute a v3 IPv4 checksum
		b[6], b[7] = 0, 0
		s := checksum(b, pseudoHeader(v4, grp, len(b)))
		b[6], b[7] = byte(s>>8), byte(s)
		return b
	}
	tests := []struct {
		name     string
		b        []byte
		src, dst netip.Addr
		ttl      int
		want     Cause
	}{
		{"empty", nil, v4, grp, 255, CauseLength},
		{"short header", good()[:7], v4, grp, 255, CauseLength},
		{"truncated address", good()[:11], v4, grp, 255, CauseLength},
		{"trailing byte", append(good(), 0), v4, grp, 255, CauseLength},
		{"ttl 254", good(), v4, grp, 254, CauseTTL},
		{"ttl 1", good(), v4, grp, 1, CauseTTL},
		{"version 1", mod(func(b []byte) []byte { b[0] = 0x11; return refix(b) }), v4, grp, 255, CauseVersion},
		{"version 4", mod(func(b []byte) []byte { b[0] = 0x41; return refix(b) }), v4, grp, 255, CauseVersion},
		{"type 2", mod(func(b []byte) []byte { b[0] = 0x32; return refix(b) }), v4, grp, 255, CauseType},
		{"bad checksum", mod(func(b []byte) []byte { b[7]++; return b }), v4, grp, 255, CauseChecksum},
		{"flipped priority", mod(func(b []byte) []byte { b[2] = 100; return b }), v4, grp, 255, CauseChecksum},
		{"zero interval", mod(func(b []byte) []byte { b[4], b[5] = 0, 0; return refix(b) }), v4, grp, 255, CauseInterval},
		{"count too high", mod(func(b []byte) []byte { b[3] = 2; return refix(b) }), v4, grp, 255, CauseLength},
		{"mixed families", good(), v4, GroupV6, 255, CauseFamily},
		{"no source", good(), netip.Addr{}, grp, 255, CauseFamily},
		{"ipv4 payload over ipv6", good(), v6, GroupV6, 255, CauseLength},
		{"v2 over ipv6", mod(func(b []byte) []byte {
			return append([]byte{0x21, 1, 100, 0, 0, 1, 0, 0}, make([]byte, 8)...)
		}), v6, GroupV6, 255, CauseVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Decode(tt.b, tt.src, tt.dst, tt.ttl)
			c, ok := CauseOf(err)
			if !ok || c != tt.want {
				t.Fatalf("Decode = %+v, %v; want cause %v", a, err, tt.want)
			}
		})
	}
}

func TestParamsCheck(t *testing.T) {
	src := netip.MustParseAddr("10.9.0.1")
	v2 := &Advert{Version: 2, VRID: 52, Priority: 100, Interval: time.Second,
		AuthType: AuthPass, Auth: AuthData("secret12"), Src: src}
	v3 := &Advert{Version: 3, VRID: 51, Priority: 100, Interval: 100 * time.Millisecond, Src: src}
	p2 := Params{Version: 2, VRID: 52, AuthType: AuthPass, Auth: AuthData("secret12"), Interval: time.Second}
	p3 := Params{Version: 3, VRID: 51, Interval: time.Second}
	with := func(a *Advert, f func(*Advert)) *Advert { c := *a; f(&c); return &c }
	tests := []struct {
		name string
		p    Params
		a    *Advert
		ok   bool
		want Cause
	}{
		{"v2 ok", p2, v2, true, 0},
		{"v3 ok, interval differs", p3, v3, true, 0},
		{"v3 instance gets v2", p3, with(v2, func(a *Advert) { a.VRID = 51 }), false, CauseVersion},
		{"v2 instance gets v3", p2, with(v3, func(a *Advert) { a.VRID = 52 }), false, CauseVersion},
		{"other vrid", p3, with(v3, func(a *Advert) { a.VRID = 50 }), false, CauseVRID},
		{"v2 no auth", p2, with(v2, func(a *Advert) { a.AuthType = AuthNone }), false, CauseAuthType},
		{"v2 ah", p2, with(v2, func(a *Advert) { a.AuthType = 2 }), false, CauseAuthType},
		{"v2 wrong pass", p2, with(v2, func(a *Advert) { a.Auth = AuthData("secret13") }), false, CauseAuth},
		{"v2 interval", p2, with(v2, func(a *Advert) { a.Interval = 2 * time.Second }), false, CauseInterval},
		{"v2 none ignores data", Params{Version: 2, VRID: 52, Interval: time.Second},
			with(v2, func(a *Advert) { a.AuthType = AuthNone }), true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Check(tt.a)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if c, ok := CauseOf(err); !ok || c != tt.want {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		src, dst string
		a        Advert
	}{
		{"v3 v4 three addrs", "192.0.2.1", "224.0.0.18", Advert{Version: 3, VRID: 1, Priority: 100,
			Interval: 40950 * time.Millisecond, Addrs: []netip.Addr{
				netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("198.51.100.1")}}},
		{"v3 v6 unicast", "fe80::1", "fe80::2", Advert{Version: 3, VRID: 255, Priority: 1,
			Interval: 10 * time.Millisecond, Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")}}},
		{"v3 priority 0 no addrs", "192.0.2.1", "224.0.0.18", Advert{Version: 3, VRID: 9, Priority: 0, Interval: time.Second}},
		{"v2 none", "192.0.2.1", "224.0.0.18", Advert{Version: 2, VRID: 9, Priority: 50, Interval: 255 * time.Second,
			Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.10")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := netip.MustParseAddr(tt.src), netip.MustParseAddr(tt.dst)
			b, err := tt.a.Marshal(src, dst)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b, src, dst, 255)
			if err != nil {
				t.Fatal(err)
			}
			if got.Version != tt.a.Version || got.VRID != tt.a.VRID || got.Priority != tt.a.Priority ||
				got.Interval != tt.a.Interval || len(got.Addrs) != len(tt.a.Addrs) {
				t.Fatalf("got %+v, want %+v", got, tt.a)
			}
		})
	}
}

func TestMarshalErrors(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.1")
	v6 := netip.MustParseAddr("fe80::1")
	tests := []struct {
		name string
		src  netip.Addr
		a    Advert
	}{
		{"v2 sub-second", v4, Advert{Version: 2, Interval: 100 * time.Millisecond}},
		{"v2 over ipv6", v6, Advert{Version: 2, Interval: time.Second}},
		{"v3 too long", v4, Advert{Version: 3, Interval: 41 * time.Second}},
		{"v3 5ms", v4, Advert{Version: 3, Interval: 5 * time.Millisecond}},
		{"version 4", v4, Advert{Version: 4, Interval: time.Second}},
		{"family mismatch", v4, Advert{Version: 3, Interval: time.Second, Addrs: []netip.Addr{v6}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := tt.a.Marshal(tt.src, tt.src); err == nil {
				t.Fatalf("Marshal = %x, want error", b)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, g := range goldens {
		f.Add(mustHex(f, g.hex), netip.MustParseAddr(g.src).AsSlice(), netip.MustParseAddr(g.dst).AsSlice(), uint8(255))
	}
	f.Fuzz(func(t *testing.T, b, srcb, dstb []byte, ttl uint8) {
		src, ok1 := netip.AddrFromSlice(srcb)
		dst, ok2 := netip.AddrFromSlice(dstb)
		if !ok1 || !ok2 {
			return
		}
		a, err := Decode(b, src, dst, int(ttl))
		if err != nil {
			if _, ok := CauseOf(err); !ok {
				t.Fatalf("error without a cause: %v", err)
			}
			return
		}
		// Whatever decodes must re-encode to the same bytes.
		out, err := a.Marshal(src, dst)
		if err != nil {
			t.Fatalf("decoded %+v does not re-encode: %v", a, err)
		}
		if !bytes.Equal(out, b) {
			// The reserved nibble of the v3 interval field is not kept.
			if a.Version == 3 && len(b) > 4 && b[4]&0xf0 != 0 {
				return
			}
			t.Fatalf("re-encoded %x, input %x", out, b)
		}
	})
}
