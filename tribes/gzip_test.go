package tribes

import (
	"bytes"
	stdgzip "compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// raceEnabled is set by gzip_race_test.go.
var raceEnabled bool

// compressibleText returns n bytes of log-like text.
func compressibleText(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("member added removed heartbeat session replicated message ack tribes channel " +
		"interceptor gzip frame receiver sender alive domain payload 10.0.0.5:4000 JSESSIONID cart counter")
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		if r.IntN(10) == 0 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	return b.Bytes()[:n]
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestGzipRoundTrip(t *testing.T) {
	inputs := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"hello", []byte("hello hello hello")},
		{"64 KiB text", compressibleText(64 << 10)},
		{"1 MiB random", randomBytes(1 << 20)},
	}
	levels := []int{0, gzip.StatelessCompression, gzip.HuffmanOnly, gzip.DefaultCompression, 1, 5, 9}
	for _, in := range inputs {
		for _, level := range levels {
			t.Run(in.name+"/level"+itoa(level), func(t *testing.T) {
				g := Gzip{Level: level}
				z, err := g.Compress([]byte("prefix"), in.data)
				if err != nil {
					t.Fatal(err)
				}
				if string(z[:6]) != "prefix" {
					t.Fatal("Compress did not append")
				}
				z = z[6:]
				// The standard library (like Java's GZIPInputStream) reads it.
				zr, err := stdgzip.NewReader(bytes.NewReader(z))
				if err != nil {
					t.Fatal(err)
				}
				std, err := io.ReadAll(zr)
				if err != nil || !bytes.Equal(std, in.data) {
					t.Fatalf("compress/gzip read %d bytes, %v", len(std), err)
				}
				got, err := g.Decompress([]byte("dst:"), z)
				if err != nil {
					t.Fatal(err)
				}
				if string(got[:4]) != "dst:" || !bytes.Equal(got[4:], in.data) {
					t.Fatalf("Decompress = %d bytes", len(got))
				}
				// Twice, to exercise the pooled reader and writer.
				z2, _ := g.Compress(nil, in.data)
				if got, err := g.Decompress(nil, z2); err != nil || !bytes.Equal(got, in.data) {
					t.Fatalf("second round trip: %v", err)
				}
			})
		}
	}
}

func itoa(i int) string {
	if i < 0 {
		return "-" + string(rune('0'-i))
	}
	return string(rune('0' + i))
}

func TestGzipSettings(t *testing.T) {
	var g Gzip
	if g.OptionFlag() != DefaultGzipFlag || !g.IsCompressed(OptUseAck|DefaultGzipFlag) || g.IsCompressed(OptUseAck) {
		t.Fatal("default flag")
	}
	if g.ShouldCompress(0) || !g.ShouldCompress(1) {
		t.Fatal("default MinSize 0: every non-empty message")
	}
	g = Gzip{Flag: 0x0300, MinSize: 100}
	if !g.IsCompressed(0x0200) || g.IsCompressed(0x0400) {
		t.Fatal("IsCompressed: any bit of the flag")
	}
	if g.ShouldCompress(100) || !g.ShouldCompress(101) {
		t.Fatal("MinSize is strict")
	}
	for _, level := range []int{-4, 10, 100} {
		g := Gzip{Level: level}
		dst := []byte("x")
		out, err := g.Compress(dst, []byte("data"))
		if err == nil || !strings.Contains(err.Error(), "invalid gzip level") || string(out) != "x" {
			t.Fatalf("level %d: %q, %v", level, out, err)
		}
	}
}

func TestGzipMaxSize(t *testing.T) {
	data := compressibleText(10000)
	g := Gzip{MaxSize: 10000}
	z, err := g.Compress(nil, data)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := g.Decompress(nil, z); err != nil || len(got) != 10000 {
		t.Fatalf("at the limit: %d, %v", len(got), err)
	}
	tests := []struct {
		name  string
		limit int
		dst   []byte
	}{
		{"one below", 9999, nil},
		{"small", 10, nil},
		{"one, dst with room", 1, make([]byte, 3, 1<<20)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := Gzip{MaxSize: tc.limit}
			got, err := g.Decompress(tc.dst, z)
			var se *SizeError
			if !errors.As(err, &se) || !errors.Is(err, ErrMessageTooLarge) {
				t.Fatalf("err = %v, want *SizeError", err)
			}
			if se.Limit != int64(tc.limit) || se.Size <= se.Limit {
				t.Fatalf("SizeError = %+v", se)
			}
			if len(got) != len(tc.dst) {
				t.Fatalf("returned %d bytes, want dst (%d)", len(got), len(tc.dst))
			}
		})
	}
}

func TestGzipBomb(t *testing.T) {
	// 80 MiB of zeros compress to a few hundred KiB; the default 64 MiB
	// limit must stop it without producing more than the limit.
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zero := make([]byte, 1<<20)
	for range 80 {
		zw.Write(zero)
	}
	zw.Close()
	var g Gzip
	_, err := g.Decompress(nil, buf.Bytes())
	var se *SizeError
	if !errors.As(err, &se) || se.Limit != DefaultGzipMaxSize || se.Size > DefaultGzipMaxSize+1 {
		t.Fatalf("err = %v (%+v)", err, se)
	}
}

func TestGzipMultistream(t *testing.T) {
	var g Gzip
	a, _ := g.Compress(nil, []byte("hello "))
	ab, _ := g.Compress(a, []byte("world"))
	got, err := g.Decompress(nil, ab)
	if err != nil || string(got) != "hello world" {
		t.Fatalf("Decompress = %q, %v", got, err)
	}
	// A header with a file name and comment (not Java's, still valid).
	var buf bytes.Buffer
	zw := stdgzip.NewWriter(&buf)
	zw.Name, zw.Comment = "file.txt", "comment"
	zw.Write([]byte("named"))
	zw.Close()
	if got, err := g.Decompress(nil, buf.Bytes()); err != nil || string(got) != "named" {
		t.Fatalf("Decompress(named) = %q, %v", got, err)
	}
}

func TestGzipDecompressErrors(t *testing.T) {
	var g Gzip
	good, _ := g.Compress(nil, compressibleText(1000))
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-8] ^= 1
	badSize := bytes.Clone(good)
	badSize[len(badSize)-1] ^= 1
	badMethod := bytes.Clone(good)
	badMethod[2] = 7
	badDeflate := bytes.Clone(vecJavaGzip)
	badDeflate[10] = 0xff // reserved block type 3
	tests := []struct {
		name   string
		src    []byte
		reason string
	}{
		{"empty", nil, "truncated"},
		{"not gzip", []byte("hello, this is plain text"), "invalid gzip header"},
		{"bad method", badMethod, "invalid gzip header"},
		{"header only", good[:10], "truncated"},
		{"truncated deflate", good[:len(good)/2], "truncated"},
		{"truncated trailer", good[:len(good)-3], "truncated"},
		{"bad CRC", badCRC, "CRC-32"},
		{"bad size", badSize, "CRC-32 or size"},
		{"bad deflate block", badDeflate, "flate"},
		{"trailing garbage", append(bytes.Clone(good), "garbage after the member"...), "invalid gzip header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := g.Decompress(dst, tc.src)
			var de *DecodeError
			if !errors.As(err, &de) || !errors.Is(err, ErrBadGzip) {
				t.Fatalf("err = %v, want *DecodeError wrapping ErrBadGzip", err)
			}
			if de.What != "gzip data" || !strings.Contains(de.Reason, tc.reason) || de.Offset < 0 || de.Offset > len(tc.src) {
				t.Fatalf("err = %q (offset %d), want %q", err, de.Offset, tc.reason)
			}
			if string(got) != "keep" {
				t.Fatalf("returned %q, want dst", got)
			}
		})
	}
}

func TestGzipConcurrent(t *testing.T) {
	data := compressibleText(20000)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			g := Gzip{Level: []int{0, 1, 6, gzip.StatelessCompression}[i%4]}
			var z, out []byte
			for j := range 50 {
				msg := data[:1000+j*300]
				var err error
				if z, err = g.Compress(z[:0], msg); err != nil {
					t.Error(err)
					return
				}
				if out, err = g.Decompress(out[:0], z); err != nil || !bytes.Equal(out, msg) {
					t.Errorf("round trip: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestGzipJavaInterop checks against java.util.zip: Java reads what Compress
// writes, and Decompress reads what GZIPOutputStream writes.
func TestGzipJavaInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a JVM; skipped with -short")
	}
	java, err := exec.LookPath("java")
	if err != nil {
		t.Skip("no java on PATH: cannot check interop with java.util.zip")
	}
	dir := t.TempDir()
	src := `import java.io.*; import java.nio.file.*; import java.util.zip.*;
public class Gz { public static void main(String[] a) throws Exception {
  byte[] in = new GZIPInputStream(new FileInputStream(a[0])).readAllBytes();
  Files.write(Paths.get(a[1]), in);
  ByteArrayOutputStream bo = new ByteArrayOutputStream();
  try (GZIPOutputStream z = new GZIPOutputStream(bo)) { z.write(in); }
  Files.write(Paths.get(a[2]), bo.toByteArray());
} }`
	data := compressibleText(100 << 10)
	var g Gzip
	z, err := g.Compress(nil, data)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	srcPath, goGz := write("Gz.java", []byte(src)), write("go.gz", z)
	plain, javaGz := filepath.Join(dir, "plain"), filepath.Join(dir, "java.gz")
	if out, err := exec.Command(java, srcPath, goGz, plain, javaGz).CombinedOutput(); err != nil {
		t.Fatalf("java: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(plain); !bytes.Equal(got, data) {
		t.Fatalf("Java's GZIPInputStream read %d bytes, want %d", len(got), len(data))
	}
	jz, _ := os.ReadFile(javaGz)
	if got, err := g.Decompress(nil, jz); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Decompress(Java's gzip) = %d bytes, %v", len(got), err)
	}
}

// TestGzipForgedSizeAllocation checks that Decompress does not trust the
// sender's gzip trailer: a small message whose ISIZE field claims MaxSize
// (or 4 GiB) must cost allocations in proportion to what it really
// decompresses to, not to the claim.
func TestGzipForgedSizeAllocation(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	data := compressibleText(1000)
	var g Gzip
	honest, err := g.Compress(nil, data)
	if err != nil {
		t.Fatal(err)
	}
	for _, claim := range []uint32{DefaultGzipMaxSize, DefaultGzipMaxSize + 1, 1<<32 - 1} {
		t.Run("ISIZE="+strconv.FormatUint(uint64(claim), 10), func(t *testing.T) {
			forged := bytes.Clone(honest)
			binary.LittleEndian.PutUint32(forged[len(forged)-4:], claim)
			g.Decompress(nil, forged) // warm up the reader pool
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := g.Decompress(nil, forged)
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			if !errors.Is(err, ErrBadGzip) {
				t.Errorf("err = %v, want ErrBadGzip (size mismatch)", err)
			}
			// A few times the real output plus a fixed slack.
			if limit := 4*uint64(len(data)) + 64<<10; alloc > limit {
				t.Errorf("%d-byte message (%d bytes of data) claiming ISIZE %d: %d bytes allocated, want <= %d",
					len(forged), len(data), claim, alloc, limit)
			}
			t.Logf("%d-byte message, %d bytes of data, ISIZE %d: %d bytes allocated", len(forged), len(data), claim, alloc)
		})
	}
}
