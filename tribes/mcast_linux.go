package tribes

import (
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// mcastSocketControl prepares the group socket before bind: SO_REUSEADDR
// and SO_REUSEPORT so that several members on one host share the port, and
// IP_MULTICAST_ALL off so that the socket receives only the groups it
// joined itself (Linux otherwise delivers every group any socket on the
// host joined for that port).
func mcastSocketControl(network, address string, rc syscall.RawConn) error {
	var err error
	cerr := rc.Control(func(fd uintptr) {
		if err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			err = os.NewSyscallError("setsockopt SO_REUSEADDR", err)
			return
		}
		if err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			err = os.NewSyscallError("setsockopt SO_REUSEPORT", err)
			return
		}
		if err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0); err != nil {
			err = os.NewSyscallError("setsockopt IP_MULTICAST_ALL", err)
		}
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// setMulticastInterface sends through ifi with source address addr
// (IP_MULTICAST_IF with struct ip_mreqn): without the address, Linux picks
// a source from another interface when ifi has only host-scoped addresses
// (lo).
func setMulticastInterface(c *net.UDPConn, _ *ipv4.PacketConn, ifi *net.Interface, addr netip.Addr) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	mreq := &unix.IPMreqn{Address: addr.As4(), Ifindex: int32(ifi.Index)}
	cerr := rc.Control(func(fd uintptr) {
		if err = unix.SetsockoptIPMreqn(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_IF, mreq); err != nil {
			err = os.NewSyscallError("setsockopt IP_MULTICAST_IF", err)
		}
	})
	if cerr != nil {
		return cerr
	}
	return err
}
