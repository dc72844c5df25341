//go:build unix && !linux

package tribes

import (
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// mcastSocketControl sets SO_REUSEADDR and SO_REUSEPORT before bind, so
// that several members on one host share the port.
func mcastSocketControl(network, address string, rc syscall.RawConn) error {
	var err error
	cerr := rc.Control(func(fd uintptr) {
		if err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			err = os.NewSyscallError("setsockopt SO_REUSEADDR", err)
			return
		}
		if err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			err = os.NewSyscallError("setsockopt SO_REUSEPORT", err)
		}
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// setMulticastInterface sends through ifi (IP_MULTICAST_IF).
func setMulticastInterface(_ *net.UDPConn, p *ipv4.PacketConn, ifi *net.Interface, _ netip.Addr) error {
	return p.SetMulticastInterface(ifi)
}
