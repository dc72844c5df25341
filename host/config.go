package host

import (
	"log/slog"
	"runtime"
	"time"

	"github.com/wasmfarm/wasmfarm/host/session"
	"github.com/wasmfarm/wasmfarm/host/wasm"
)

// Config configures a [Server]. The zero value of a field means its
// default (see [DefaultConfig]).
type Config struct {
	// JvmRoute names this node in session ids ("<hex>.<JvmRoute>"), as
	// Tomcat's Engine jvmRoute; empty means ids without a suffix.
	JvmRoute string

	// CacheDir holds wazero's compilation cache; "" means
	// os.UserCacheDir()/wasmfarm/wazero, "-" disables the disk cache.
	CacheDir string
	// CacheMaxBytes bounds the disk cache (512 MiB): wazero writes an
	// entry per app version compiled and never removes any, so the
	// least recently compiled entries are removed past it, but never
	// those of the apps deployed on this server; negative means
	// unbounded (see wasm.Config.CacheMaxBytes).
	CacheMaxBytes int64
	// MemoryLimit caps each instance's linear memory in bytes (64 MiB).
	MemoryLimit uint64
	// PoolSize is the most instances per app (2 × GOMAXPROCS).
	PoolSize int
	// RequestDeadline bounds each request's run in the guest (30 s); a
	// guest past it is stopped and the client gets a 503.
	RequestDeadline time.Duration
	// NoDeadlines turns deadline enforcement off for every app, for
	// trusted code only: guests then run a few percent faster, but one
	// that loops forever is never stopped and stalls the host's garbage
	// collector (see wasm.Config.NoDeadlines).
	NoDeadlines bool

	// MaxRequestBodyBytes caps request bodies (10 MiB); larger ones get
	// 413.
	MaxRequestBodyBytes int64
	// MaxHeaderBytes caps request headers (1 MiB, as net/http); larger
	// ones get 431.
	MaxHeaderBytes int
	// MaxResponseBytes caps a response body written by a guest (16 MiB).
	MaxResponseBytes int
	// Connector is the HTTP server Serve uses: [ConnectorH1] (the
	// default) or [ConnectorNetHTTP].
	Connector string
	// ReadHeaderTimeout is how long a request's head may take to arrive,
	// IdleTimeout how long a keep-alive connection may wait for the next
	// request (10 s and 2 min; net/http's server fields of those names).
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	// ReadTimeout is how long a whole request, head and body, may take
	// to arrive (5 min; net/http's Server.ReadTimeout, which has no
	// default), counted from its start (on the h1 connector: from the
	// first time it waited for the request's bytes, so a request that
	// arrived whole costs no timer). Without it a client that sends
	// its body a byte at a time would hold its connection and goroutine
	// as long as it likes (the app does not run before its body is read
	// whole, so it holds no instance). A body that does not arrive in
	// time gets 408 Request Timeout and its connection closes (h1 counts
	// it in [Server.SlowClients]); a head must arrive within the smaller
	// of ReadHeaderTimeout and ReadTimeout. The time the app runs does
	// not count. 5 min lets a body of the default MaxRequestBodyBytes
	// (10 MiB) arrive at 35 KB/s (280 kbit/s); raise it with
	// MaxRequestBodyBytes, or for slower links. It bounds the whole
	// transfer, not the time between two packets as Tomcat's
	// connectionTimeout and connectionUploadTimeout do: a steady upload
	// slower than that is cut off too.
	ReadTimeout time.Duration
	// WriteTimeout is how long the h1 connector waits for a client that
	// does not read its responses before it closes the connection (60 s,
	// Tomcat's default connectionTimeout, which Tomcat applies to writes
	// too). It bounds the time without progress, not a response's whole
	// transfer: each 256 KiB of a response gets it afresh. The net/http
	// connector has no write timeout (net/http's WriteTimeout also counts
	// the time the app runs).
	WriteTimeout time.Duration

	// Sessions configures each context's session manager. JvmRoute,
	// Listener and Logger are set by the server.
	Sessions session.Config
	// NewManager, if set, creates each context's session manager instead
	// of a [session.StandardManager] (the replication work plugs its
	// delta and backup managers here). cfg is Sessions with the server's
	// route, listener and logger filled in.
	NewManager func(contextPath string, cfg session.Config) (session.Manager, error)
	// CookieName is the session cookie's name ("JSESSIONID").
	CookieName string
	// Valves run, in order, before each context's basic valve (which runs
	// the app); see [Valve].
	Valves []Valve

	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults with every value spelled out.
func DefaultConfig() Config {
	return Config{
		CacheMaxBytes:       wasm.DefaultCacheMaxBytes, // 512 MiB
		MemoryLimit:         64 << 20,                  // 64 MiB per instance
		PoolSize:            2 * runtime.GOMAXPROCS(0), // about two instances per core
		RequestDeadline:     30 * time.Second,
		MaxRequestBodyBytes: 10 << 20, // 10 MiB
		MaxHeaderBytes:      1 << 20,  // net/http's DefaultMaxHeaderBytes
		MaxResponseBytes:    16 << 20, // 16 MiB
		Connector:           ConnectorH1,
		ReadHeaderTimeout:   10 * time.Second,
		IdleTimeout:         2 * time.Minute,
		ReadTimeout:         5 * time.Minute, // 10 MiB at 35 KB/s
		WriteTimeout:        time.Minute,
		Sessions:            session.DefaultConfig(),
		CookieName:          "JSESSIONID",
	}
}

// AppConfig overrides server settings for one app.
type AppConfig struct {
	// Name identifies the module in errors and logs (the context path if
	// empty), e.g. its file name.
	Name string
	// PoolSize and RequestDeadline override the server's; zero keeps them.
	PoolSize        int
	RequestDeadline time.Duration
	// MaxActiveSessions and SessionTimeout override the server's
	// Sessions.MaxActiveSessions and Sessions.MaxInactiveInterval for
	// this app (a <Context>'s <Manager maxActiveSessions> and
	// sessionTimeout): zero keeps the server's, a negative value means no
	// limit and sessions that never expire. They take effect when the
	// app's context is created, at the first deploy at its path: a
	// redeploy keeps the context's sessions, and with them its manager
	// and settings.
	MaxActiveSessions int
	SessionTimeout    time.Duration
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.CacheMaxBytes == 0 {
		c.CacheMaxBytes = d.CacheMaxBytes
	}
	if c.MemoryLimit == 0 {
		c.MemoryLimit = d.MemoryLimit
	}
	if c.PoolSize <= 0 {
		c.PoolSize = d.PoolSize
	}
	if c.RequestDeadline <= 0 {
		c.RequestDeadline = d.RequestDeadline
	}
	if c.MaxRequestBodyBytes <= 0 {
		c.MaxRequestBodyBytes = d.MaxRequestBodyBytes
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = d.MaxResponseBytes
	}
	if c.Connector == "" {
		c.Connector = d.Connector
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = d.ReadTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.CookieName == "" {
		c.CookieName = d.CookieName
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Valves = append([]Valve(nil), c.Valves...)
	return c
}
