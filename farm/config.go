package farm

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Defaults of [Config].
const (
	DefaultProcessDeployFrequency = 2 * time.Second
	DefaultMaxModuleBytes         = 64 << 20
	DefaultChunkSize              = 256 << 10
	DefaultResultTimeout          = 2 * time.Minute
	DefaultTransferTimeout        = time.Minute
	DefaultMaxTransfers           = 8
)

// Config configures a [Deployer], after Tomcat's FarmWarDeployer. The zero
// value of every field means its default (see [DefaultConfig]), except
// that TempDir and DeployDir must be set.
type Config struct {
	// TempDir receives modules while they arrive (Tomcat's tempDir). It is
	// created if missing; it should be on the same file system as
	// DeployDir so that the final rename is atomic. The farm's partial
	// files there (farm-*.part, upload-*.part) that a run stopping
	// half-way left are removed at Start, or later while it runs, once
	// unmodified for 10 minutes (or twice TransferTimeout or
	// ResultTimeout, if longer): younger ones may be another process's.
	TempDir string
	// DeployDir holds the module of every farmed app, one file per context
	// path named as [FileName] says (Tomcat's deployDir). A member serves
	// catch-up requests from it and, when it is the first member up,
	// deploys from it at Sync. Created if missing.
	DeployDir string
	// WatchDir is polled for modules when WatchEnabled (Tomcat's watchDir).
	WatchDir string
	// WatchEnabled turns the watch dir on (default false, as Tomcat).
	WatchEnabled bool
	// ProcessDeployFrequency is the interval between two scans of the watch
	// dir (default 2 s). Tomcat counts it in background-processor cycles
	// (processDeployFrequency="2" cycles of 10 s by default); a duration
	// says what it means. A changed file is deployed once it stayed the
	// same for one interval, so a file still being copied is not shipped.
	ProcessDeployFrequency time.Duration
	// MaxModuleBytes limits a module, on upload and on receipt (default
	// 64 MiB).
	MaxModuleBytes int64
	// ChunkSize is the size of the chunks a module travels in (default
	// 256 KiB, at most [MaxChunkSize]). Every chunk is one acknowledged
	// message, so larger chunks amortise the round trip (a 10 MiB module
	// is 40 of them) while a member's memory for a transfer stays a couple
	// of chunks; 256 KiB is also well under Tribes' message limit and a
	// size class of the receive buffer pool.
	ChunkSize int
	// AuthKey, when set, authenticates farm messages: each carries an
	// HMAC-SHA256 under this key, and messages without a valid one are
	// dropped, counted in Stats.Unauthenticated, and refused (FAIL_ACK) to
	// an acknowledged sender. Every member needs the same key; a member
	// without a key drops authenticated messages too.
	AuthKey []byte
	// Name names this member in reports (e.g. its jvmRoute); empty means
	// its receiver address.
	Name string
	// ResultTimeout bounds the wait for a member's result after a module
	// was sent to it (default 2 min: the member compiles the module).
	ResultTimeout time.Duration
	// TransferTimeout drops an incoming transfer that saw no message for
	// this long, with its temp file (default 1 min).
	TransferTimeout time.Duration
	// MaxTransfers bounds the incoming transfers in progress at once
	// (default 8); more are refused.
	MaxTransfers int
	// Logger receives the deployer's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults with every value spelled out; set
// TempDir and DeployDir (and WatchDir) before use.
func DefaultConfig() Config {
	return Config{
		WatchEnabled:           false,                         // as Tomcat
		ProcessDeployFrequency: DefaultProcessDeployFrequency, // a scan every 2 s
		MaxModuleBytes:         DefaultMaxModuleBytes,         // 64 MiB
		ChunkSize:              DefaultChunkSize,              // 256 KiB per acknowledged message
		ResultTimeout:          DefaultResultTimeout,          // a member has 2 min to compile and report
		TransferTimeout:        DefaultTransferTimeout,        // an idle incoming transfer is dropped after 1 min
		MaxTransfers:           DefaultMaxTransfers,           // 8 incoming transfers at once
	}
}

// withDefaults fills zero fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.ProcessDeployFrequency <= 0 {
		c.ProcessDeployFrequency = d.ProcessDeployFrequency
	}
	if c.MaxModuleBytes <= 0 {
		c.MaxModuleBytes = d.MaxModuleBytes
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = d.ChunkSize
	}
	if c.ResultTimeout <= 0 {
		c.ResultTimeout = d.ResultTimeout
	}
	if c.TransferTimeout <= 0 {
		c.TransferTimeout = d.TransferTimeout
	}
	if c.MaxTransfers <= 0 {
		c.MaxTransfers = d.MaxTransfers
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.AuthKey = append([]byte(nil), c.AuthKey...)
	if c.ChunkSize > MaxChunkSize {
		return c, fmt.Errorf("farm: ChunkSize %d over the limit of %d", c.ChunkSize, MaxChunkSize)
	}
	if c.TempDir == "" || c.DeployDir == "" {
		return c, fmt.Errorf("farm: TempDir and DeployDir must be set")
	}
	if c.WatchEnabled && c.WatchDir == "" {
		return c, fmt.Errorf("farm: WatchEnabled without a WatchDir")
	}
	for _, dir := range []string{c.TempDir, c.DeployDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return c, fmt.Errorf("farm: %w", err)
		}
	}
	if a, err := filepath.Abs(c.TempDir); err == nil {
		if b, err := filepath.Abs(c.DeployDir); err == nil && a == b {
			return c, fmt.Errorf("farm: TempDir and DeployDir must differ")
		}
	}
	return c, nil
}
