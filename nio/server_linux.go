//go:build linux && !nio_portable

package nio

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Server is a listening socket and its event loops (epoll build).
type Server struct {
	cfg   Config
	h     Handler
	log   *slog.Logger
	addr  net.Addr
	loops []*loop

	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Listen binds and listens on network ("tcp", "tcp4" or "tcp6") and address
// (e.g. "127.0.0.1:4000"; port 0 picks a free port), starts the event loops
// and accepts connections in the background, handing their events to h.
//
// A port already in use gives an error matching syscall.EADDRINUSE with
// errors.Is. Listen copies cfg; see Config for the defaults.
func Listen(network, address string, cfg Config, h Handler) (*Server, error) {
	if h == nil {
		return nil, errors.New("nio: nil Handler")
	}
	if err := checkNetwork(network); err != nil {
		return nil, err
	}
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	laddr, err := net.ResolveTCPAddr(network, address)
	if err != nil {
		return nil, fmt.Errorf("nio: %w", err)
	}
	lfd, err := listenSocket(network, laddr)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: laddr, Err: err}
	}
	s := &Server{cfg: cfg, h: h, log: cfg.Logger}
	if sa, err := unix.Getsockname(lfd); err == nil {
		s.addr = sockaddrToTCP(sa)
	} else {
		s.addr = laddr
	}
	for i := range cfg.Loops {
		l, err := newLoop(s, i)
		if err != nil {
			for _, l := range s.loops {
				l.closeFDs()
			}
			unix.Close(lfd)
			return nil, err
		}
		s.loops = append(s.loops, l)
	}
	l0 := s.loops[0]
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(lfd)} // level-triggered
	if err := unix.EpollCtl(l0.epfd, unix.EPOLL_CTL_ADD, lfd, &ev); err != nil {
		for _, l := range s.loops {
			l.closeFDs()
		}
		unix.Close(lfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	l0.lfd = lfd
	s.wg.Add(len(s.loops))
	for _, l := range s.loops {
		go l.run()
	}
	return s, nil
}

// listenSocket makes a non-blocking listening socket bound to laddr.
func listenSocket(network string, laddr *net.TCPAddr) (int, error) {
	ip := laddr.IP
	family, v6only := unix.AF_INET6, 0
	switch {
	case network == "tcp4", network == "tcp" && ip != nil && ip.To4() != nil:
		family = unix.AF_INET
	case network == "tcp6":
		v6only = 1
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err == unix.EAFNOSUPPORT && network == "tcp" && family == unix.AF_INET6 && ip == nil {
		family = unix.AF_INET // no IPv6 on this host: the wildcard becomes 0.0.0.0
		fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	}
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	fail := func(call string, err error) (int, error) {
		unix.Close(fd)
		return -1, os.NewSyscallError(call, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fail("setsockopt", err)
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET {
		sa4 := &unix.SockaddrInet4{Port: laddr.Port}
		if ip != nil {
			copy(sa4.Addr[:], ip.To4())
		}
		sa = sa4
	} else {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only); err != nil {
			return fail("setsockopt", err)
		}
		sa6 := &unix.SockaddrInet6{Port: laddr.Port}
		if ip != nil {
			copy(sa6.Addr[:], ip.To16())
		}
		if laddr.Zone != "" {
			if ifi, err := net.InterfaceByName(laddr.Zone); err == nil {
				sa6.ZoneId = uint32(ifi.Index)
			} else if n, err := strconv.Atoi(laddr.Zone); err == nil {
				sa6.ZoneId = uint32(n)
			}
		}
		sa = sa6
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		return fail("listen", err)
	}
	return fd, nil
}

// sockaddrToTCP converts an accepted or bound address.
func sockaddrToTCP(sa unix.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IPv4(sa.Addr[0], sa.Addr[1], sa.Addr[2], sa.Addr[3]), Port: sa.Port}
	case *unix.SockaddrInet6:
		a := &net.TCPAddr{IP: make(net.IP, net.IPv6len), Port: sa.Port}
		copy(a.IP, sa.Addr[:])
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a.Zone = ifi.Name
			} else {
				a.Zone = strconv.Itoa(int(sa.ZoneId))
			}
		}
		return a
	}
	return nil
}

// Addr returns the address the server listens on (with the port chosen when
// Listen was given port 0).
func (s *Server) Addr() net.Addr { return s.addr }

// Close stops accepting, closes every connection (OnClose runs for each
// with ErrServerClosed) and returns when all loop goroutines have exited.
// It is idempotent; later calls wait for the first to finish. Close must not
// be called from a Handler callback.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		// Stop the listener first so that no accepted connection is handed
		// to a loop that has already shut down.
		done := make(chan struct{})
		if s.loops[0].trigger(task{kind: taskStopAccept, done: done}) {
			<-done
		}
		for _, l := range s.loops {
			l.trigger(task{kind: taskShutdown})
		}
	})
	s.wg.Wait()
	return nil
}

// Stats returns the server's counters, summed over the loops. Fields are
// read atomically but not as one snapshot.
func (s *Server) Stats() Stats {
	var st Stats
	for _, l := range s.loops {
		l.stats.addTo(&st)
	}
	st.Open = st.Accepted - st.Closed
	return st
}
