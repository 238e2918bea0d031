package topo

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// arpProbe broadcasts one ARP request for target from ifname (in the calling
// thread's namespace) and collects the distinct sender MACs of the replies
// that arrive within wait.
func arpProbe(ifname string, target netip.Addr, wait time.Duration) ([]net.HardwareAddr, error) {
	if !target.Is4() {
		return nil, fmt.Errorf("arp probe: %s is not IPv4", target)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("arp probe: %w", err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, fmt.Errorf("arp probe: %w", err)
	}
	var src netip.Addr
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			src, _ = netip.AddrFromSlice(ipn.IP.To4())
			break
		}
	}
	if !src.IsValid() {
		return nil, fmt.Errorf("arp probe: %s has no IPv4 address", ifname)
	}

	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return nil, fmt.Errorf("arp probe: socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index}); err != nil {
		return nil, fmt.Errorf("arp probe: bind: %w", err)
	}

	// ARP request: htype 1, ptype IPv4, hlen 6, plen 4, op 1.
	req := make([]byte, 28)
	binary.BigEndian.PutUint16(req[0:], 1)
	binary.BigEndian.PutUint16(req[2:], unix.ETH_P_IP)
	req[4], req[5] = 6, 4
	binary.BigEndian.PutUint16(req[6:], 1)
	copy(req[8:14], ifi.HardwareAddr)
	s4, t4 := src.As4(), target.As4()
	copy(req[14:18], s4[:])
	copy(req[24:28], t4[:])
	bcast := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index, Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	if err := unix.Sendto(fd, req, 0, bcast); err != nil {
		return nil, fmt.Errorf("arp probe: send: %w", err)
	}

	var macs []net.HardwareAddr
	deadline := time.Now().Add(wait)
	buf := make([]byte, 128)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return macs, nil
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return nil, fmt.Errorf("arp probe: %w", err)
		}
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("arp probe: recv: %w", err)
		}
		p := buf[:n]
		if n < 28 || binary.BigEndian.Uint16(p[6:]) != 2 || !bytes.Equal(p[14:18], t4[:]) {
			continue
		}
		mac := net.HardwareAddr(bytes.Clone(p[8:14]))
		seen := false
		for _, m := range macs {
			seen = seen || bytes.Equal(m, mac)
		}
		if !seen {
			macs = append(macs, mac)
		}
	}
}
