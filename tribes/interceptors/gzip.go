package interceptors

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/wasmfarm/wasmfarm/bufpool"
	"github.com/wasmfarm/wasmfarm/tribes"
)

// GzipConfig configures a [Gzip] interceptor. The zero value of every field
// means its default (Tribes' GzipInterceptor defaults).
type GzipConfig struct {
	// OptionFlag is the option bit that marks a compressed message
	// (optionFlag, default 0x100). It must be the same on every node.
	OptionFlag tribes.Options
	// CompressionMinSize: only messages longer than this many bytes are
	// compressed (compressionMinSize, default 0: every non-empty message).
	CompressionMinSize int
	// Level is the compression level, as [tribes.Gzip].Level (0 means
	// best speed).
	Level int
	// MaxSize limits the decompressed size of a received message (default
	// 64 MiB); a larger one is dropped.
	MaxSize int
	// StatsInterval logs the counters at INFO every StatsInterval messages
	// sent or received (Tribes' interval with statsEnabled=true); 0 never.
	StatsInterval int
	// Pool supplies the buffers; nil gives the interceptor a pool of its own.
	Pool *bufpool.Pool
	// Logger receives the logs; nil means the channel's logger.
	Logger *slog.Logger
}

// GzipStats are a [Gzip] interceptor's counters.
type GzipStats struct {
	TxCompressed, TxUncompressed int64 // messages sent compressed / as they were
	TxBytesIn, TxBytesOut        int64 // bytes before and after compression (compressed messages)
	RxCompressed, RxUncompressed int64 // messages received compressed / plain
	RxBytesIn, RxBytesOut        int64 // bytes before and after decompression
	RxFailures                   int64 // compressed messages that could not be decompressed (dropped)
}

// Gzip is Tribes' GzipInterceptor (spec §7). On the wire: a message longer
// than CompressionMinSize is replaced by one RFC 1952 gzip member of its
// bytes and OptionFlag is set in its options; a shorter one is sent as it
// is with the flag cleared. A received message whose options have any bit
// of the flag is gunzipped (the flag stays set, as in Java); one that is not
// valid gzip, or that decompresses to more than MaxSize, is logged, counted
// and dropped, and its ACK is a normal one.
//
// Neither direction allocates in steady state: the compressed and
// decompressed bytes live in pooled buffers for the duration of the call
// below or above.
type Gzip struct {
	tribes.BaseInterceptor
	cfg   GzipConfig
	codec tribes.Gzip
	pool  *bufpool.Pool
	drops rateLimit

	txC, txU, txIn, txOut, rxC, rxU, rxIn, rxOut, rxFail, total atomic.Int64
}

var _ tribes.Interceptor = (*Gzip)(nil)

// NewGzip returns a gzip interceptor. It fails on an invalid level.
func NewGzip(cfg GzipConfig) (*Gzip, error) {
	g := &Gzip{cfg: cfg, pool: newPool(cfg.Pool), drops: rateLimit{period: dropLogPeriod}}
	g.codec = tribes.Gzip{Flag: cfg.OptionFlag, MinSize: cfg.CompressionMinSize, Level: cfg.Level, MaxSize: cfg.MaxSize}
	if _, err := g.codec.Compress(nil, nil); err != nil {
		return nil, fmt.Errorf("interceptors: gzip: %w", err)
	}
	return g, nil
}

// Stats returns the counters.
func (g *Gzip) Stats() GzipStats {
	return GzipStats{
		TxCompressed: g.txC.Load(), TxUncompressed: g.txU.Load(), TxBytesIn: g.txIn.Load(), TxBytesOut: g.txOut.Load(),
		RxCompressed: g.rxC.Load(), RxUncompressed: g.rxU.Load(), RxBytesIn: g.rxIn.Load(), RxBytesOut: g.rxOut.Load(),
		RxFailures: g.rxFail.Load(),
	}
}

// SendMessage compresses msg.Data when it is longer than
// CompressionMinSize, for the duration of the call below.
func (g *Gzip) SendMessage(ctx context.Context, to []*tribes.Member, msg *tribes.Message) error {
	defer g.tick()
	flag := g.codec.OptionFlag()
	if !g.codec.ShouldCompress(len(msg.Data)) {
		g.txU.Add(1)
		opts := msg.Options
		msg.Options &^= flag
		err := g.Next().SendMessage(ctx, to, msg)
		msg.Options = opts
		return err
	}
	// Deflate's worst case is a few bytes per 16 KiB block over the input,
	// plus the gzip header and trailer.
	buf := g.pool.Get(len(msg.Data) + len(msg.Data)>>8 + 64)
	out, err := g.codec.Compress(buf.B[:0], msg.Data)
	if err != nil {
		g.pool.Put(buf)
		return err
	}
	g.txC.Add(1)
	g.txIn.Add(int64(len(msg.Data)))
	g.txOut.Add(int64(len(out)))
	data, opts := msg.Data, msg.Options
	msg.Data, msg.Options = out, opts|flag
	err = g.Next().SendMessage(ctx, to, msg)
	msg.Data, msg.Options = data, opts
	buf.B = out // Compress may have outgrown the buffer
	g.pool.Put(buf)
	return err
}

// MessageReceived gunzips a flagged message for the duration of the call
// above; a message that does not decompress is dropped.
func (g *Gzip) MessageReceived(msg *tribes.Message) error {
	defer g.tick()
	if !g.codec.IsCompressed(msg.Options) {
		g.rxU.Add(1)
		return g.Previous().MessageReceived(msg)
	}
	buf := g.pool.Get(g.sizeHint(msg.Data))
	out, err := g.codec.Decompress(buf.B[:0], msg.Data)
	if err != nil {
		g.pool.Put(buf)
		g.rxFail.Add(1)
		g.drops.warn(g.log(), "tribes gzip: dropping a message that does not decompress",
			"source", memberString(msg.Source), "id", msg.UniqueID.String(), "err", err)
		return nil
	}
	g.rxC.Add(1)
	g.rxIn.Add(int64(len(msg.Data)))
	g.rxOut.Add(int64(len(out)))
	data := msg.Data
	msg.Data = out
	err = g.Previous().MessageReceived(msg)
	msg.Data = data
	buf.B = out
	g.pool.Put(buf)
	return err
}

// sizeHint guesses the decompressed size of src from the gzip trailer's
// ISIZE field, bounded by what deflate can produce from src (a ratio of
// about 1032:1) and by MaxSize, so a forged trailer cannot make the
// interceptor reserve more than the data can expand to.
func (g *Gzip) sizeHint(src []byte) int {
	if len(src) < 18 {
		return 0
	}
	n := int64(binary.LittleEndian.Uint32(src[len(src)-4:]))
	limit := int64(g.cfg.MaxSize)
	if limit <= 0 {
		limit = tribes.DefaultGzipMaxSize
	}
	// One byte more than the data, so that the reader sees the end of the
	// stream without growing the buffer.
	return int(min(n+1, 1032*int64(len(src))+64, limit+1))
}

// tick logs the counters every StatsInterval messages.
func (g *Gzip) tick() {
	if g.cfg.StatsInterval <= 0 || g.total.Add(1)%int64(g.cfg.StatsInterval) != 0 {
		return
	}
	s := g.Stats()
	g.log().Info("tribes gzip statistics",
		"tx_compressed", s.TxCompressed, "tx_uncompressed", s.TxUncompressed,
		"tx_bytes", s.TxBytesIn, "tx_compressed_bytes", s.TxBytesOut,
		"rx_compressed", s.RxCompressed, "rx_uncompressed", s.RxUncompressed,
		"rx_bytes", s.RxBytesOut, "rx_compressed_bytes", s.RxBytesIn, "rx_failures", s.RxFailures)
}

func (g *Gzip) log() *slog.Logger { return logger(g.cfg.Logger, &g.BaseInterceptor) }
