//go:build !unix && !windows

package tribes

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"syscall"

	"golang.org/x/net/ipv4"
)

// mcastSocketControl refuses: multicast membership needs socket options
// this platform does not offer.
func mcastSocketControl(network, address string, rc syscall.RawConn) error {
	return errors.New("tribes: multicast membership is not supported on " + runtime.GOOS)
}

func setMulticastInterface(_ *net.UDPConn, p *ipv4.PacketConn, ifi *net.Interface, _ netip.Addr) error {
	return p.SetMulticastInterface(ifi)
}
