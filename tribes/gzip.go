package tribes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// DefaultGzipMaxSize is the decompressed size limit of a [Gzip] whose MaxSize
// is 0.
const DefaultGzipMaxSize = 64 << 20

// Gzip compresses and decompresses message bytes the way Tribes'
// GzipInterceptor does (spec §7): a message longer than MinSize is sent as
// one standard RFC 1952 gzip member and Flag is set in its options; a
// receiver gunzips every message whose options contain Flag.
//
// The zero value is ready to use and matches GzipInterceptor's defaults. A
// Gzip is safe for concurrent use as long as its fields are not modified.
// Writers and readers are pooled (per level) in package-level sync.Pools,
// which hold no state between calls.
type Gzip struct {
	// Flag is the option bit that marks a compressed message
	// (GzipInterceptor's optionFlag); 0 means DefaultGzipFlag (0x100). It
	// must be the same on every node.
	Flag Options
	// MinSize: only messages longer than MinSize bytes are compressed
	// (compressionMinSize; Java compares strictly). Default 0: every
	// non-empty message.
	MinSize int
	// Level is the compression level: 0 means gzip.BestSpeed, otherwise any
	// github.com/klauspost/compress/gzip level (StatelessCompression (-3),
	// HuffmanOnly (-2), DefaultCompression (-1), 1..9). gzip.NoCompression
	// cannot be selected.
	Level int
	// MaxSize limits the decompressed size of one message; 0 means
	// DefaultGzipMaxSize (64 MiB).
	MaxSize int
}

// OptionFlag returns the option bit that marks a compressed message.
func (g *Gzip) OptionFlag() Options {
	if g.Flag == 0 {
		return DefaultGzipFlag
	}
	return g.Flag
}

// ShouldCompress reports whether a message of n bytes is to be compressed
// (n > MinSize).
func (g *Gzip) ShouldCompress(n int) bool { return n > g.MinSize }

// IsCompressed reports whether a message with options o is gzip-compressed:
// whether o has any bit of the flag, as Java tests it.
func (g *Gzip) IsCompressed(o Options) bool { return o&g.OptionFlag() != 0 }

func (g *Gzip) maxSize() int {
	if g.MaxSize <= 0 {
		return DefaultGzipMaxSize
	}
	return g.MaxSize
}

const (
	minGzipLevel = gzip.StatelessCompression
	maxGzipLevel = gzip.BestCompression
)

func (g *Gzip) level() (int, error) {
	switch {
	case g.Level == 0:
		return gzip.BestSpeed, nil
	case g.Level < minGzipLevel || g.Level > maxGzipLevel:
		return 0, fmt.Errorf("tribes: invalid gzip level %d", g.Level)
	}
	return g.Level, nil
}

// appendWriter is an io.Writer that appends to b.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

type pooledGzipWriter struct {
	zw  *gzip.Writer
	out appendWriter
}

// gzipWriters holds one pool per level, indexed by level-minGzipLevel. A
// pooled writer keeps its compressor's tables, so Compress into a dst with
// room does not allocate.
var gzipWriters [maxGzipLevel - minGzipLevel + 1]sync.Pool

// Compress appends to dst one gzip member (RFC 1952, no name, mtime 0, as
// java.util.zip.GZIPInputStream reads it) holding src, and returns the
// extended slice. It compresses whatever its size; callers check
// [Gzip.ShouldCompress] first. The result does not alias src. The only
// error is an invalid Level.
func (g *Gzip) Compress(dst, src []byte) ([]byte, error) {
	level, err := g.level()
	if err != nil {
		return dst, err
	}
	pool := &gzipWriters[level-minGzipLevel]
	pw, _ := pool.Get().(*pooledGzipWriter)
	if pw == nil {
		pw = new(pooledGzipWriter)
		pw.zw, _ = gzip.NewWriterLevel(&pw.out, level) // level checked above
	} else {
		pw.zw.Reset(&pw.out)
	}
	// Like GZIPOutputStream: mtime 0 (klauspost would write the low 32 bits
	// of the zero time.Time otherwise), no name, OS 255.
	pw.zw.ModTime = time.Unix(0, 0)
	pw.out.b = dst
	_, err = pw.zw.Write(src)
	if err == nil {
		err = pw.zw.Close()
	}
	out := pw.out.b
	pw.out.b = nil // do not keep the caller's buffer alive in the pool
	pool.Put(pw)
	if err != nil { // appendWriter never fails; keep the check for safety
		return dst, fmt.Errorf("tribes: gzip: %w", err)
	}
	return out, nil
}

type pooledGzipReader struct {
	zr gzip.Reader
	br bytes.Reader
}

var gzipReaders sync.Pool

// Decompress appends the data of the gzip stream src (one or more members,
// nothing after them) to dst and returns the extended slice. It never
// produces more than MaxSize bytes: a larger message yields a *[SizeError]
// (errors.Is(err, ErrMessageTooLarge)) whose Size is a lower bound. Corrupt
// or truncated input yields a *[DecodeError] wrapping [ErrBadGzip], whose
// Offset is how far into src the reader had got. On error the bytes of dst
// up to len(dst) are intact, and the returned slice is dst. The result does
// not alias src. Decompress does not allocate when a pooled reader is
// available and dst has room for the output.
func (g *Gzip) Decompress(dst, src []byte) ([]byte, error) {
	limit := g.maxSize()
	pr, _ := gzipReaders.Get().(*pooledGzipReader)
	if pr == nil {
		pr = new(pooledGzipReader)
	}
	defer gzipReaders.Put(pr)
	pr.br.Reset(src)
	defer pr.br.Reset(nil) // do not keep src alive in the pool
	if err := pr.zr.Reset(&pr.br); err != nil {
		return dst, badGzip(len(src)-pr.br.Len(), err)
	}
	start := len(dst)
	out := dst
	for {
		produced := len(out) - start
		if produced > limit {
			return dst, &SizeError{Size: int64(produced), Limit: int64(limit)}
		}
		if len(out) == cap(out) {
			// Grow geometrically, starting from a guess of 4x the input,
			// never beyond what is needed to detect an overflow.
			want := max(cap(out)-start, 4*len(src), 512)
			out = slices.Grow(out, min(want, limit+1-produced))
		}
		room := out[len(out):cap(out)]
		if len(room) > limit+1-produced {
			room = room[:limit+1-produced]
		}
		n, err := pr.zr.Read(room)
		out = out[:len(out)+n]
		if err == io.EOF {
			if len(out)-start > limit {
				return dst, &SizeError{Size: int64(len(out) - start), Limit: int64(limit)}
			}
			return out, nil
		}
		if err != nil {
			return dst, badGzip(len(src)-pr.br.Len(), err)
		}
	}
}

func badGzip(off int, err error) error {
	reason := err.Error()
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		reason = "truncated (" + strconv.Itoa(off) + " bytes read)"
	case errors.Is(err, gzip.ErrHeader):
		reason = "invalid gzip header"
	case errors.Is(err, gzip.ErrChecksum):
		reason = "CRC-32 or size mismatch"
	}
	return decodeErr("gzip data", off, reason, ErrBadGzip)
}
