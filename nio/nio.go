package nio

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync/atomic"

	"github.com/wasmfarm/wasmfarm/bufpool"
)

// Errors returned by this package. Check them with errors.Is.
var (
	// ErrClosed is returned by Conn.Write after the connection was closed
	// (by Close, by the peer, by an error or by Server.Close). A write that
	// fails in the socket returns an error matching both ErrClosed and the
	// underlying *os.SyscallError.
	ErrClosed = errors.New("nio: connection closed")

	// ErrBufferLimit is passed to Handler.OnClose when a connection is closed
	// because its unconsumed input grew beyond Config.MaxBuffered.
	ErrBufferLimit = errors.New("nio: unconsumed input exceeds MaxBuffered")

	// ErrWriteLimit is returned by Conn.Write (and passed to OnClose) when
	// the bytes queued for writing would exceed Config.MaxPendingWrite; the
	// connection is closed.
	ErrWriteLimit = errors.New("nio: queued output exceeds MaxPendingWrite")

	// ErrServerClosed is passed to Handler.OnClose for every connection
	// still open when Server.Close runs.
	ErrServerClosed = errors.New("nio: server closed")

	// ErrBadConsume is passed to OnClose when OnData returns a consumed
	// count below 0 or above len(data) (a Handler bug); the connection is
	// closed.
	ErrBadConsume = errors.New("nio: OnData consumed count out of range")
)

// Config configures a Server. The zero value of every field means its
// default; DefaultConfig spells the defaults out.
type Config struct {
	// Loops is the number of event loops (goroutines, each owning one epoll
	// instance and its connections). 0 means runtime.GOMAXPROCS(0). The
	// portable build runs goroutines per connection and ignores it.
	Loops int

	// ReadBufferSize is the number of bytes asked for in one read syscall
	// (the size of each loop's shared read buffer). 0 means 64 KiB.
	ReadBufferSize int

	// MaxReadPerWake caps the bytes read from one connection per wake-up
	// before the loop serves the others; a capped connection is read again
	// on the next turn of the loop without waiting for a new event. 0 means
	// 1 MiB. The portable build ignores it (the Go scheduler is fair).
	MaxReadPerWake int

	// MaxBuffered is the number of unconsumed input bytes a connection may
	// keep after OnData returns; beyond it the connection is closed with
	// ErrBufferLimit. 0 means 64 MiB + 64 KiB (a 64 MiB frame plus one read).
	MaxBuffered int

	// MaxPendingWrite is the number of bytes that may wait in a
	// connection's write queue; a Write that would exceed it fails with
	// ErrWriteLimit and closes the connection. 0 means 4 MiB.
	MaxPendingWrite int

	// Pool supplies the buffers for leftovers and write queues. nil means a
	// pool of the server's own.
	Pool *bufpool.Pool

	// Logger receives accept errors and loop failures. nil discards them.
	Logger *slog.Logger
}

const (
	defaultReadBufferSize  = 64 << 10
	defaultMaxReadPerWake  = 1 << 20
	defaultMaxBuffered     = 64<<20 + 64<<10
	defaultMaxPendingWrite = 4 << 20
)

// DefaultConfig returns the default configuration with every value spelled
// out (Pool and Logger stay nil: a private pool, and no logging).
func DefaultConfig() Config {
	return Config{
		Loops:           runtime.GOMAXPROCS(0), // one loop per P
		ReadBufferSize:  defaultReadBufferSize, // 64 KiB per read syscall
		MaxReadPerWake:  defaultMaxReadPerWake, // 1 MiB per connection per turn
		MaxBuffered:     defaultMaxBuffered,    // 64 MiB frame + one read
		MaxPendingWrite: defaultMaxPendingWrite,
	}
}

// normalize validates cfg and fills in the defaults; it returns a copy.
func (cfg Config) normalize() (Config, error) {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"Loops", cfg.Loops},
		{"ReadBufferSize", cfg.ReadBufferSize},
		{"MaxReadPerWake", cfg.MaxReadPerWake},
		{"MaxBuffered", cfg.MaxBuffered},
		{"MaxPendingWrite", cfg.MaxPendingWrite},
	} {
		if f.v < 0 {
			return cfg, fmt.Errorf("nio: invalid Config.%s %d", f.name, f.v)
		}
	}
	if cfg.Loops == 0 {
		cfg.Loops = runtime.GOMAXPROCS(0)
	}
	if cfg.ReadBufferSize == 0 {
		cfg.ReadBufferSize = defaultReadBufferSize
	}
	if cfg.MaxReadPerWake == 0 {
		cfg.MaxReadPerWake = defaultMaxReadPerWake
	}
	if cfg.MaxBuffered == 0 {
		cfg.MaxBuffered = defaultMaxBuffered
	}
	if cfg.MaxPendingWrite == 0 {
		cfg.MaxPendingWrite = defaultMaxPendingWrite
	}
	if cfg.Pool == nil {
		cfg.Pool = bufpool.New(0)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

// checkNetwork accepts the TCP networks Listen supports.
func checkNetwork(network string) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return nil
	}
	return fmt.Errorf("nio: unsupported network %q (want tcp, tcp4 or tcp6)", network)
}

// Handler receives a Server's connection events. For one connection the
// callbacks never run concurrently with each other: OnOpen, then OnData any
// number of times, then OnClose exactly once. Callbacks of different
// connections may run concurrently (on different loops). A callback must not
// block: in the epoll build it stalls every connection of its loop. It must
// not call Server.Close (which waits for the loops that run the callbacks).
type Handler interface {
	// OnOpen runs on the connection's loop goroutine after accept, before
	// any OnData.
	OnOpen(c *Conn)

	// OnData runs on the connection's loop goroutine with every received
	// byte not yet consumed (earlier leftovers first). data is valid only
	// until OnData returns: copy what must outlive the call. It returns how
	// many bytes from the front it consumed; the rest is presented again,
	// followed by new bytes. A non-nil error closes the connection and is
	// passed to OnClose.
	OnData(c *Conn, data []byte) (consumed int, err error)

	// OnClose runs exactly once per connection that got OnOpen, after it is
	// closed: by the peer (io.EOF), by an error (the error, e.g.
	// ErrBufferLimit or an *os.SyscallError), by Conn.Close (nil) or by
	// Server.Close (ErrServerClosed). The connection's socket is already
	// closed.
	OnClose(c *Conn, err error)
}

// BaseHandler is an embeddable no-op Handler: OnData consumes everything.
// Embed it and override the callbacks you need.
type BaseHandler struct{}

// OnOpen does nothing.
func (BaseHandler) OnOpen(*Conn) {}

// OnData consumes and discards all data.
func (BaseHandler) OnData(_ *Conn, data []byte) (int, error) { return len(data), nil }

// OnClose does nothing.
func (BaseHandler) OnClose(*Conn, error) {}

var _ Handler = BaseHandler{}

// Stats are a Server's counters since Listen.
type Stats struct {
	Accepted     int64 // connections accepted
	Open         int64 // connections open now (accepted and not yet closed)
	Closed       int64 // connections closed, for any reason
	BytesRead    int64 // bytes received from peers
	BytesWritten int64 // bytes handed to the kernel by writes
	ReadErrors   int64 // reads that failed with an error other than end of stream
	WriteErrors  int64 // writes that failed in the socket
	AcceptErrors int64 // failed accepts (other than "try again")
	BufferLimit  int64 // connections closed with ErrBufferLimit
	WriteLimit   int64 // connections closed with ErrWriteLimit
}

// counters are one loop's (or server's) share of Stats, padded to keep
// loops off each other's cache lines.
type counters struct {
	accepted, closed                    atomic.Int64
	bytesRead, bytesWritten             atomic.Int64
	readErrors, writeErrors, acceptErrs atomic.Int64
	bufferLimit, writeLimit             atomic.Int64
	_                                   [64]byte
}

func (k *counters) addTo(st *Stats) {
	st.Accepted += k.accepted.Load()
	st.Closed += k.closed.Load()
	st.BytesRead += k.bytesRead.Load()
	st.BytesWritten += k.bytesWritten.Load()
	st.ReadErrors += k.readErrors.Load()
	st.WriteErrors += k.writeErrors.Load()
	st.AcceptErrors += k.acceptErrs.Load()
	st.BufferLimit += k.bufferLimit.Load()
	st.WriteLimit += k.writeLimit.Load()
}

// countClose records the reason a connection closed.
func (k *counters) countClose(err error) {
	k.closed.Add(1)
	switch {
	case errors.Is(err, ErrBufferLimit):
		k.bufferLimit.Add(1)
	case errors.Is(err, ErrWriteLimit):
		k.writeLimit.Add(1)
	}
}

// connBase holds what both builds' Conn have in common.
type connBase struct {
	local, remote net.Addr
	ctx           atomic.Pointer[any]
	expect        int // set by Expect during OnData; owned by the connection's reader
}

// Expect tells the reactor that OnData cannot make progress before n bytes
// of unconsumed input are held (for example the rest of a large frame whose
// header it has read). Until then the reactor reads straight into the
// connection's buffer, grown once to n bytes, and does not call OnData, so
// a large frame is neither copied through the loop's buffer nor parsed
// again at every read. Call it from OnData; the hint ends with the next
// OnData call. An n above Config.MaxBuffered closes the connection with
// ErrBufferLimit.
func (c *Conn) Expect(n int) { c.expect = n }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// LocalAddr returns the local address of the connection.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// SetContext stores a user value with the connection, typically in OnOpen.
// It is safe for concurrent use.
func (c *Conn) SetContext(v any) { c.ctx.Store(&v) }

// Context returns the value stored by SetContext, or nil.
func (c *Conn) Context() any {
	if p := c.ctx.Load(); p != nil {
		return *p
	}
	return nil
}

// closeCause makes the error Write returns when the socket fails.
func closeCause(err error) error { return fmt.Errorf("%w: %w", ErrClosed, err) }
