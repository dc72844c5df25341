package tribestest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/wasmfarm/wasmfarm/tribes"
)

var (
	probeOnce sync.Once
	probeErr  error
)

// McastConfig returns a multicast configuration for tests with real
// sockets: tribes.LocalMcastConfig (interface lo, TTL 0, so nothing leaves
// the host) with a random administratively scoped group (239.255.x.y) and a
// random port in 46000..54999, so that test processes running in parallel
// do not hear each other. Use the same configuration for all members of
// one test.
//
// The first call checks once per process that multicast on lo works here;
// if it does not, the test is skipped with the reason. It is skipped in
// -short mode too.
func McastConfig(tb testing.TB) tribes.McastConfig {
	tb.Helper()
	if testing.Short() {
		tb.Skip("real multicast on loopback: skipped in -short mode")
	}
	cfg := tribes.LocalMcastConfig()
	cfg.Address = fmt.Sprintf("239.255.%d.%d", 1+rand.IntN(254), 1+rand.IntN(254))
	cfg.Port = 46000 + rand.IntN(9000)
	probeOnce.Do(func() { probeErr = probeLoopbackMulticast() })
	if probeErr != nil {
		tb.Skipf("multicast on lo does not work here: %v. (In a fresh network namespace, `ip link set lo up` "+
			"is enough: no multicast route is needed, since the sockets name lo with IP_MULTICAST_IF.)", probeErr)
	}
	return cfg
}

// probeLoopbackMulticast sends one datagram to a random group on lo with
// TTL 0 and checks that it arrives.
func probeLoopbackMulticast() error {
	lo, err := loopbackInterface()
	if err != nil {
		return err
	}
	group := net.IPv4(239, 255, byte(1+rand.IntN(254)), byte(1+rand.IntN(254)))
	rc, err := net.ListenPacket("udp4", fmt.Sprintf("%s:%d", group, 46000+rand.IntN(9000)))
	if err != nil {
		return err
	}
	defer rc.Close()
	rp := ipv4.NewPacketConn(rc)
	if err := rp.JoinGroup(lo, &net.UDPAddr{IP: group}); err != nil {
		return fmt.Errorf("join %v on %s: %w", group, lo.Name, err)
	}
	sc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer sc.Close()
	sp := ipv4.NewPacketConn(sc)
	if err := sp.SetMulticastInterface(lo); err != nil {
		return fmt.Errorf("IP_MULTICAST_IF %s: %w", lo.Name, err)
	}
	if err := sp.SetMulticastTTL(0); err != nil {
		return err
	}
	if err := sp.SetMulticastLoopback(true); err != nil {
		return err
	}
	if _, err := sc.WriteTo([]byte("probe"), rc.LocalAddr()); err != nil {
		return fmt.Errorf("send to %v: %w", rc.LocalAddr(), err)
	}
	rc.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 16)
	nr, _, err := rc.ReadFrom(buf)
	if err != nil {
		return fmt.Errorf("nothing received from %v on %s: %w", rc.LocalAddr(), lo.Name, err)
	}
	if string(buf[:nr]) != "probe" {
		return fmt.Errorf("received %q, want \"probe\"", buf[:nr])
	}
	return nil
}

// loopbackInterface returns the interface holding 127.0.0.1.
func loopbackInterface() (*net.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	for i := range ifs {
		addrs, _ := ifs[i].Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(net.IPv4(127, 0, 0, 1)) {
				return &ifs[i], nil
			}
		}
	}
	return nil, fmt.Errorf("no interface has address 127.0.0.1")
}
