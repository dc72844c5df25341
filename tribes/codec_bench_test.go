package tribes

import (
	"flag"
	"testing"

	"github.com/klauspost/compress/gzip"
)

var benchSizes = []struct {
	name string
	n    int
}{
	{"100B", 100},
	{"1KiB", 1 << 10},
	{"64KiB", 64 << 10},
	{"1MiB", 1 << 20},
}

func benchChannelData(n int) *channelData {
	cd := vecFrame137Data()
	cd.message = compressibleText(n)
	return cd
}

// BenchmarkParseFrame: parseFrame reads only the header and the END marker,
// so its time does not depend on the body size (MB/s grows with it).
func BenchmarkParseFrame(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			frame := appendFrame(nil, appendChannelData(nil, benchChannelData(s.n)))
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				if _, n, err := parseFrame(frame, 64<<20); err != nil || n != len(frame) {
					b.Fatal(n, err)
				}
			}
		})
	}
}

func BenchmarkDecodeChannelData(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			body := appendChannelData(nil, benchChannelData(s.n))
			var cd channelData
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := decodeChannelData(body, &cd); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendChannelData(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			cd := benchChannelData(s.n)
			dst := make([]byte, 0, channelDataLen(cd)+frameOverhead)
			b.SetBytes(int64(channelDataLen(cd)))
			b.ReportAllocs()
			for b.Loop() {
				dst = appendChannelData(dst[:0], cd)
			}
		})
	}
}

// BenchmarkAppendMessageHeader measures the vectored-send header: its cost
// does not depend on the message size.
func BenchmarkAppendMessageHeader(b *testing.B) {
	cd := vecFrame137Data()
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		dst = appendMessageHeader(dst[:0], cd.options, cd.timestamp, cd.uniqueID, cd.member, 1<<20)
	}
}

func BenchmarkDecodeMember(b *testing.B) {
	var m Member
	b.SetBytes(int64(len(vecMember81)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeMember(vecMember81, &m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemberAppendBinary(b *testing.B) {
	m := vecMember81Value()
	dst := make([]byte, 0, 128)
	b.SetBytes(int64(len(vecMember81)))
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = m.AppendBinary(dst[:0])
	}
}

var gzipBenchLevels = []struct {
	name  string
	level int
}{
	{"default(BestSpeed)", 0},
	{"Stateless", gzip.StatelessCompression},
	{"DefaultCompression", gzip.DefaultCompression},
}

func BenchmarkGzipCompress(b *testing.B) {
	text := compressibleText(64 << 10)
	for _, l := range gzipBenchLevels {
		b.Run("64KiB-text/"+l.name, func(b *testing.B) {
			g := Gzip{Level: l.level}
			dst, _ := g.Compress(nil, text)
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				dst, _ = g.Compress(dst[:0], text)
			}
			b.ReportMetric(float64(len(text))/float64(len(dst)), "ratio")
		})
	}
}

func BenchmarkGzipDecompress(b *testing.B) {
	text := compressibleText(64 << 10)
	for _, l := range gzipBenchLevels {
		b.Run("64KiB-text/"+l.name, func(b *testing.B) {
			g := Gzip{Level: l.level}
			z, _ := g.Compress(nil, text)
			dst := make([]byte, 0, len(text))
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dst, err = g.Decompress(dst[:0], z); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// allocsPerOp runs f with testing.Benchmark (for 100ms per run unless
// -test.benchtime was given) and returns its allocations per operation.
func allocsPerOp(f func(b *testing.B)) int64 {
	if fl := flag.Lookup("test.benchtime"); fl != nil && fl.Value.String() == fl.DefValue {
		fl.Value.Set("100ms")
		defer fl.Value.Set(fl.DefValue)
	}
	return testing.Benchmark(f).AllocsPerOp()
}

// TestZeroAllocs locks in that the receive and send hot paths do not
// allocate.
func TestZeroAllocs(t *testing.T) {
	frame := appendFrame(nil, appendChannelData(nil, benchChannelData(1<<10)))
	body := frame[frameHeaderLen : len(frame)-frameMarkerLen]
	cd := vecFrame137Data()
	var reused Member
	if _, err := decodeMember(vecMember81Shutdown, &reused); err != nil { // gives it capacity
		t.Fatal(err)
	}
	hdr := make([]byte, 0, 256)
	buf := make([]byte, 0, 256)
	text := compressibleText(64 << 10)
	var g Gzip
	z, _ := g.Compress(nil, text)
	gzDst := make([]byte, 0, 2*len(text))

	tests := []struct {
		name   string
		pooled bool // relies on sync.Pool, which drops items under -race
		op     func()
	}{
		{"parseFrame", false, func() {
			if _, _, err := parseFrame(frame, 1<<20); err != nil {
				t.Fatal(err)
			}
		}},
		{"decodeChannelData", false, func() {
			var cd channelData
			if err := decodeChannelData(body, &cd); err != nil {
				t.Fatal(err)
			}
		}},
		{"memberRecordLen", false, func() {
			if _, err := memberRecordLen(vecMember81); err != nil {
				t.Fatal(err)
			}
		}},
		{"decodeMember into reused Member", false, func() {
			if _, err := decodeMember(vecMember81, &reused); err != nil {
				t.Fatal(err)
			}
		}},
		{"ackKind", false, func() { ackKind(ackFrame[frameHeaderLen : frameHeaderLen+3]) }},
		{"appendMessageHeader", false, func() {
			hdr = appendMessageHeader(hdr[:0], cd.options, cd.timestamp, cd.uniqueID, cd.member, 1<<20)
		}},
		{"appendChannelData", false, func() { buf = appendChannelData(buf[:0], cd) }},
		{"Member.AppendBinary", false, func() { buf, _ = reused.AppendBinary(buf[:0]) }},
		{"Gzip.Compress 64KiB", true, func() { gzDst, _ = g.Compress(gzDst[:0], text) }},
		{"Gzip.Decompress 64KiB", true, func() {
			var err error
			if gzDst, err = g.Decompress(gzDst[:0], z); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.pooled && raceEnabled {
				t.Skip("sync.Pool drops items at random under -race, so pooled paths allocate")
			}
			tc.op() // warm up pools
			got := allocsPerOp(func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					tc.op()
				}
			})
			if got != 0 {
				t.Fatalf("%d allocs/op, want 0", got)
			}
		})
	}
}
