package topo

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqData is struct ifreq with the ifr_data member of the union.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// ethtoolValueIoctl runs a get/set ethtool_value command on dev in the
// calling thread's network namespace.
func ethtoolValueIoctl(dev string, cmd, data uint32) (uint32, error) {
	if len(dev) >= unix.IFNAMSIZ {
		return 0, fmt.Errorf("ethtool: interface name %q too long", dev)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("ethtool: socket: %w", err)
	}
	defer unix.Close(fd)
	v := &ethtoolValue{cmd: cmd, data: data}
	var ifr ifreqData
	copy(ifr.name[:], dev)
	ifr.data = unsafe.Pointer(v)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(v)
	if errno != 0 {
		return 0, fmt.Errorf("ethtool %s cmd %#x: %w", dev, cmd, errno)
	}
	return v.data, nil
}

// setTXChecksum is `ethtool -K dev tx on|off` (ETHTOOL_STXCSUM toggles all
// TX checksum features) in the calling thread's namespace.
func setTXChecksum(dev string, on bool) error {
	var d uint32
	if on {
		d = 1
	}
	_, err := ethtoolValueIoctl(dev, unix.ETHTOOL_STXCSUM, d)
	return err
}

// txChecksum reports whether any TX checksum offload is on for dev.
func txChecksum(dev string) (bool, error) {
	d, err := ethtoolValueIoctl(dev, unix.ETHTOOL_GTXCSUM, 0)
	return d != 0, err
}
