//go:build linux && !nio_portable

package nio

import (
	"errors"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// taskKind says what a task asks the loop to do.
type taskKind uint8

const (
	taskRegister     taskKind = iota + 1 // add an accepted connection to this loop
	taskClose                            // close a connection (Conn.Close or a failed write)
	taskResume                           // resume reading a paused connection
	taskStopAccept                       // close the listener (loop 0), then close done
	taskResumeAccept                     // re-enable the listener after a resource error
	taskShutdown                         // close every connection and exit
)

// task is a request handed to a loop from another goroutine. Tasks are values
// in a reused slice, so queueing one allocates nothing in steady state.
type task struct {
	kind taskKind
	c    *Conn
	done chan struct{}
}

// loop is one event loop: a goroutine that owns an epoll instance, an eventfd
// for wake-ups and the connections registered with it. Only the loop
// goroutine touches conns, the read buffer and the connections' read state.
type loop struct {
	s      *Server
	id     int
	epfd   int
	epf    *os.File        // epfd as a file on the Go netpoller (see run)
	raw    syscall.RawConn // epf's raw access
	evfd   int
	lfd    int // listener, on loop 0 only; -1 otherwise or once closed
	events []unix.EpollEvent
	buf    []byte // shared read buffer
	conns  map[int]*Conn
	rr     int // next loop for an accepted connection (loop 0)

	pending, pendingSpare []*Conn // connections still readable after their budget

	// Task queue, filled by any goroutine. wake is 1 from the first queued
	// task until the loop takes the queue: only the producer that flips it
	// writes to the eventfd.
	mu      sync.Mutex
	tasks   []task
	spare   []task
	stopped bool
	wake    atomic.Int32
	one     [8]byte // little-endian 1, written to the eventfd
	drain   [8]byte

	stats counters
}

// newLoop opens the loop's epoll instance and eventfd, closing both on
// failure.
func newLoop(s *Server, id int) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(evfd)
		unix.Close(epfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	// The loop waits for its epoll instance through the Go netpoller (an
	// epoll fd is itself pollable): see run.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(evfd)
		unix.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	epf := os.NewFile(uintptr(epfd), "nio-epoll")
	raw, err := epf.SyscallConn()
	if err != nil {
		unix.Close(evfd)
		epf.Close()
		return nil, err
	}
	l := &loop{
		s:      s,
		id:     id,
		epfd:   epfd,
		epf:    epf,
		raw:    raw,
		evfd:   evfd,
		lfd:    -1,
		events: make([]unix.EpollEvent, 128),
		buf:    make([]byte, s.cfg.ReadBufferSize),
		conns:  make(map[int]*Conn),
	}
	l.one[0] = 1
	return l, nil
}

// closeFDs releases the loop's descriptors when it never ran.
func (l *loop) closeFDs() {
	unix.Close(l.evfd)
	l.epf.Close() // closes epfd and takes it off the Go netpoller
}

// trigger queues t for the loop and wakes it if it may be sleeping. It
// returns false if the loop has stopped (t is dropped).
func (l *loop) trigger(t task) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return false
	}
	l.tasks = append(l.tasks, t)
	if l.wake.CompareAndSwap(0, 1) {
		// Written under mu so the eventfd cannot be closed (and its
		// number reused) between the check of stopped and the write.
		for {
			_, err := unix.Write(l.evfd, l.one[:])
			if err != unix.EINTR {
				break // EAGAIN: the counter is saturated, the loop wakes anyway
			}
		}
	}
	return true
}

// run is the loop goroutine.
//
// It never blocks in epoll_wait: a goroutine blocked in a system call keeps
// its P, so idle loops would hold the Ps that the rest of the process
// (net/http, the workers the callbacks woke) needs, until the runtime's
// monitor takes them back 20 µs to 10 ms later. Instead the loop polls its
// epoll instance without waiting and, when nothing is ready, parks in the Go
// netpoller on the epoll fd itself, which becomes readable when any of its
// descriptors has an event. Parked, it holds no P and no thread.
func (l *loop) run() {
	defer l.s.wg.Done()
	var fatal error
	stop := false
	err := l.raw.Read(func(uintptr) bool {
		for {
			if len(l.pending) == 0 {
				// Let goroutines this turn's callbacks made runnable run
				// before polling again.
				runtime.Gosched()
			}
			n, err := unix.EpollWait(l.epfd, l.events, 0)
			if err != nil {
				if err == unix.EINTR {
					continue
				}
				fatal = os.NewSyscallError("epoll_wait", err)
				return true
			}
			if n == 0 && len(l.pending) == 0 {
				return false // park until the epoll fd is readable
			}
			if l.turn(n) {
				stop = true
				return true
			}
		}
	})
	if !stop {
		if fatal == nil {
			fatal = err
		}
		if fatal == nil {
			fatal = errors.New("nio: event loop stopped")
		}
		l.s.log.Error("nio: event loop failed", "loop", l.id, "err", fatal)
		l.shutdown(fatal)
	}
	l.closeFDs()
}

// turn handles n events, then the task queue and the connections still
// readable; it returns true when the loop has shut down.
func (l *loop) turn(n int) bool {
	woke := false
	for i := range n {
		ev := &l.events[i]
		fd := int(ev.Fd)
		switch fd {
		case l.evfd:
			woke = true
		case l.lfd:
			l.accept()
		default:
			if c := l.conns[fd]; c != nil {
				l.handle(c, ev.Events)
			}
		}
	}
	if woke && l.runTasks() {
		return true
	}
	l.runPending()
	if n == len(l.events) && n < 4096 {
		l.events = make([]unix.EpollEvent, 2*n)
	}
	return false
}

// runTasks takes the queue and runs it; it returns true when the loop has
// shut down.
func (l *loop) runTasks() bool {
	for {
		_, err := unix.Read(l.evfd, l.drain[:])
		if err != unix.EINTR {
			break
		}
	}
	// Reset wake before taking the queue: a task queued after this point
	// writes the eventfd again, one queued before is in the slice we take.
	l.wake.Store(0)
	l.mu.Lock()
	ts := l.tasks
	l.tasks = l.spare[:0]
	l.mu.Unlock()
	shutdown := false
	for i := range ts {
		t := ts[i]
		ts[i] = task{}
		if shutdown {
			l.discard(t)
			continue
		}
		switch t.kind {
		case taskRegister:
			l.register(t.c)
		case taskClose:
			if !t.c.closed {
				l.closeConn(t.c, nil)
			}
		case taskResume:
			l.resume(t.c)
		case taskStopAccept:
			l.stopAccept()
			close(t.done)
		case taskResumeAccept:
			if l.lfd >= 0 {
				ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.lfd)}
				if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, l.lfd, &ev); err != nil {
					l.s.log.Error("nio: re-enabling the listener failed", "err", os.NewSyscallError("epoll_ctl", err))
				}
			}
		case taskShutdown:
			shutdown = true
		}
	}
	l.spare = ts[:0]
	if shutdown {
		l.shutdown(ErrServerClosed)
	}
	return shutdown
}

// discard disposes of a task that arrives after shutdown.
func (l *loop) discard(t task) {
	switch t.kind {
	case taskRegister:
		// Accepted but never opened: no callbacks, just the socket.
		unix.Close(t.c.fd)
		l.stats.closed.Add(1)
	case taskStopAccept:
		l.stopAccept()
		close(t.done)
	}
}

// shutdown closes the listener and every connection (OnClose runs for each
// with cause) and refuses further tasks; run closes the loop's descriptors
// once it has left the netpoller.
func (l *loop) shutdown(cause error) {
	l.stopAccept()
	for _, c := range l.conns {
		l.closeConn(c, cause)
	}
	l.mu.Lock()
	l.stopped = true
	ts := l.tasks
	l.tasks = nil
	l.mu.Unlock()
	for _, t := range ts {
		l.discard(t)
	}
	l.pending = nil
}

// stopAccept closes the listener if this loop has it.
func (l *loop) stopAccept() {
	if l.lfd >= 0 {
		unix.Close(l.lfd) // also removes it from the epoll set
		l.lfd = -1
	}
}

// accept takes pending connections from the (level-triggered) listener and
// deals them round-robin to the loops.
func (l *loop) accept() {
	for range 256 { // then serve the other events; level triggering brings us back
		nfd, sa, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			switch {
			case err == unix.EINTR || err == unix.ECONNABORTED:
				continue
			case err == unix.EAGAIN:
				return
			}
			l.stats.acceptErrs.Add(1)
			err = os.NewSyscallError("accept4", err)
			l.s.log.Warn("nio: accept failed", "err", err)
			if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) ||
				errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.ENOMEM) {
				l.pauseAccept()
			}
			return
		}
		_ = unix.SetsockoptInt(nfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		c := &Conn{fd: nfd}
		c.remote = sockaddrToTCP(sa)
		if lsa, err := unix.Getsockname(nfd); err == nil {
			c.local = sockaddrToTCP(lsa)
		}
		target := l.s.loops[l.rr]
		l.rr = (l.rr + 1) % len(l.s.loops)
		c.loop = target
		l.stats.accepted.Add(1)
		if target == l {
			l.register(c)
		} else if !target.trigger(task{kind: taskRegister, c: c}) {
			unix.Close(nfd)
			l.stats.closed.Add(1)
		}
	}
}

// pauseAccept stops watching the listener for a moment after a resource
// error (out of descriptors): with level triggering the loop would spin.
func (l *loop) pauseAccept() {
	ev := unix.EpollEvent{Fd: int32(l.lfd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, l.lfd, &ev); err != nil {
		return
	}
	time.AfterFunc(50*time.Millisecond, func() { l.trigger(task{kind: taskResumeAccept}) })
}

// register adds c to this loop and runs OnOpen.
func (l *loop) register(c *Conn) {
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET,
		Fd:     int32(c.fd),
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		l.s.log.Warn("nio: registering a connection failed", "err", os.NewSyscallError("epoll_ctl", err))
		unix.Close(c.fd)
		l.stats.closed.Add(1)
		return
	}
	l.conns[c.fd] = c
	l.s.h.OnOpen(c)
	if c.closing.Load() {
		l.closeConn(c, nil)
	}
	// Data that arrived before EPOLL_CTL_ADD is reported by it as an event.
}

// handle dispatches one epoll event of c.
func (l *loop) handle(c *Conn, events uint32) {
	// wpending is read without wmu: a Write that queues after EAGAIN
	// publishes it and then writes once more, so an edge dropped here
	// because the queue was not published yet loses nothing (see Write).
	if events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 && c.wpending.Load() > 0 {
		l.flush(c)
		if c.closing.Load() {
			l.closeConn(c, nil)
			return
		}
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.readable = true
		if events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			c.eofSeen = true
		}
		l.read(c)
	}
}

// read reads c until the socket is drained, the connection is paused or
// closed, or its budget for this turn is spent (then it waits in pending).
func (l *loop) read(c *Conn) {
	budget := l.s.cfg.MaxReadPerWake
	for c.readable && !c.closed {
		if c.closing.Load() {
			l.closeConn(c, nil)
			return
		}
		if c.paused.Load() {
			return
		}
		if budget <= 0 {
			if !c.inPending {
				c.inPending = true
				l.pending = append(l.pending, c)
			}
			return
		}
		// With an Expect hint, read straight into the connection's buffer.
		direct := c.expect > c.in.len()
		buf := l.buf
		if direct {
			buf = c.in.space(l.s.cfg.Pool, c.expect-c.in.len())
		}
		want := min(len(buf), budget)
		n, err := unix.Read(c.fd, buf[:want])
		if err != nil {
			switch err {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				c.readable = false
				return
			}
			l.stats.readErrors.Add(1)
			l.closeConn(c, os.NewSyscallError("read", err))
			return
		}
		if n == 0 {
			l.closeConn(c, io.EOF)
			return
		}
		budget -= n
		l.stats.bytesRead.Add(int64(n))
		if n < want && !c.eofSeen {
			// The socket is drained: data arriving from now on raises a
			// new edge, so skip the read that would return EAGAIN.
			c.readable = false
		}
		if direct {
			c.in.commit(n)
			if c.in.len() >= c.expect {
				l.deliver(c, nil)
			}
			continue
		}
		l.deliver(c, l.buf[:n])
	}
	if !c.closed && c.closing.Load() {
		l.closeConn(c, nil)
	}
}

// deliver presents c's leftovers followed by data to OnData and keeps what
// is not consumed. data may be the loop's shared buffer: only the unconsumed
// rest is copied, into the connection's own pooled buffer.
func (l *loop) deliver(c *Conn, data []byte) {
	pool := l.s.cfg.Pool
	input := data
	held := c.in.len() > 0
	if held {
		c.in.append(pool, data)
		input = c.in.bytes()
	}
	if len(input) == 0 {
		return
	}
	c.expect = 0
	k, err := l.s.h.OnData(c, input)
	if err == nil && (k < 0 || k > len(input)) {
		err = ErrBadConsume
	}
	if err == nil && c.expect > l.s.cfg.MaxBuffered {
		err = ErrBufferLimit
	}
	if err != nil {
		l.closeConn(c, err)
		return
	}
	rest := len(input) - k
	if held {
		c.in.consume(pool, k, false)
	} else if rest > 0 {
		c.in.append(pool, input[k:])
	}
	if rest > l.s.cfg.MaxBuffered {
		l.closeConn(c, ErrBufferLimit)
	}
}

// resume runs a resume task: present the leftovers again and read what
// arrived while paused (edges seen meanwhile were not acted upon).
func (l *loop) resume(c *Conn) {
	if c.closed || c.paused.Load() {
		return
	}
	c.readable = true
	if c.in.len() > 0 {
		l.deliver(c, nil)
	}
	if !c.closed {
		l.read(c)
	}
}

// runPending gives the connections that hit their read budget another turn.
func (l *loop) runPending() {
	if len(l.pending) == 0 {
		return
	}
	list := l.pending
	l.pending = l.pendingSpare[:0]
	for i, c := range list {
		list[i] = nil
		c.inPending = false
		if !c.closed {
			l.read(c)
		}
	}
	l.pendingSpare = list[:0]
}

// flush writes c's queue until it is empty or the socket is full.
func (l *loop) flush(c *Conn) {
	c.wmu.Lock()
	c.flushLocked()
	c.wmu.Unlock()
}

// closeConn closes c on its loop: the first recorded cause wins over err.
// It runs OnClose exactly once.
func (l *loop) closeConn(c *Conn, err error) {
	if c.closed {
		return
	}
	c.closed = true
	pool := l.s.cfg.Pool
	c.wmu.Lock()
	if c.closing.Load() {
		err = c.closeErr
	} else {
		c.closeErr = err
		c.closing.Store(true)
	}
	if err == nil {
		c.flushLocked() // Conn.Close: offer what is queued to the socket once
	}
	c.wclosed = true
	c.wq.release(pool)
	c.wpending.Store(0)
	c.wmu.Unlock()

	delete(l.conns, c.fd)
	unix.Close(c.fd) // also removes it from the epoll set
	c.in.release(pool)
	l.stats.countClose(err)
	l.s.h.OnClose(c, err)
}
