package tribes

import (
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/net/ipv4"
)

// mcastSocketControl sets SO_REUSEADDR before bind, so that several members
// on one host share the port (Windows has no SO_REUSEPORT; SO_REUSEADDR
// covers it).
func mcastSocketControl(network, address string, rc syscall.RawConn) error {
	var err error
	cerr := rc.Control(func(fd uintptr) {
		if err = syscall.SetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
			err = os.NewSyscallError("setsockopt SO_REUSEADDR", err)
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
