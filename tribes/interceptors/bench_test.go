package interceptors_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
	"github.com/wasmfarm/wasmfarm/tribes/interceptors"
)

// benchSizes are the message sizes of the benchmarks: a small session
// delta, a typical one, and a large state-transfer chunk.
var benchSizes = []int{256, 4 << 10, 64 << 10}

// benchPayload returns n bytes that compress about 3:1, like serialised
// session data.
func benchPayload(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"user", "cart", "item", "quantity", "price", "session", "token", "\x00\x01", "id"}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(byte('0' + r.IntN(10)))
	}
	return b.Bytes()[:n]
}

func BenchmarkGzip(b *testing.B) {
	src := &tribes.Member{Host: hostOf(100), Port: 4000, SecurePort: -1, UDPPort: -1}
	for _, n := range benchSizes {
		data := benchPayload(n)
		b.Run(fmt.Sprintf("send/%d", n), func(b *testing.B) {
			p := newPipe(b, mustGzip(b, interceptors.GzipConfig{}))
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				p.send(b, data, 0)
			}
			b.ReportMetric(float64(n)/float64(p.last), "ratio")
		})
		b.Run(fmt.Sprintf("receive/%d", n), func(b *testing.B) {
			p := newPipe(b, mustGzip(b, interceptors.GzipConfig{}))
			m := msgFrom(src, tribes.DefaultGzipFlag, gzipBytes(b, data))
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				p.recv(b, m)
			}
		})
	}
}

func BenchmarkEncrypt(b *testing.B) {
	src := &tribes.Member{Host: hostOf(100), Port: 4000, SecurePort: -1, UDPPort: -1}
	for _, key := range []string{key128, key128 + key128} {
		for _, n := range benchSizes {
			data := benchPayload(n)
			name := fmt.Sprintf("AES-%d/%d", len(key)*4, n)
			b.Run("send/"+name, func(b *testing.B) {
				p := newPipe(b, mustEncrypt(b, interceptors.EncryptConfig{EncryptionKey: key}))
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					p.send(b, data, 0)
				}
			})
			// Every received message must be new (replay protection), so
			// this one seals and receives: a round trip.
			b.Run("seal+receive/"+name, func(b *testing.B) {
				e := mustEncrypt(b, interceptors.EncryptConfig{EncryptionKey: key})
				p := newPipe(b, e)
				m := msgFrom(src, 0, make([]byte, n+interceptors.EncryptOverhead))
				sealed := m.Data
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					interceptors.EncryptSeal(e, sealed, time.Now().UnixMilli(), data)
					m.Data = sealed
					p.recv(b, m)
				}
				if p.got < b.N {
					b.Fatalf("%d of %d messages received", p.got, b.N)
				}
			})
		}
	}
}

func BenchmarkOrder(b *testing.B) {
	src := &tribes.Member{Host: hostOf(100), Port: 4000, SecurePort: -1, UDPPort: -1}
	data := benchPayload(4 << 10)
	b.Run("send", func(b *testing.B) {
		p := newPipe(b, interceptors.NewOrder(interceptors.OrderConfig{}))
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			p.send(b, data, 0)
		}
	})
	b.Run("receive in order", func(b *testing.B) {
		p := newPipe(b, interceptors.NewOrder(interceptors.OrderConfig{}))
		m := msgFrom(src, 0, interceptors.AppendSeq(bytes.Clone(data), 0))
		buf := m.Data
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		seq := uint32(0)
		for b.Loop() {
			seq++
			binary.BigEndian.PutUint32(buf[len(data):], seq)
			p.recv(b, m)
		}
	})
	b.Run("receive pairs swapped", func(b *testing.B) {
		p := newPipe(b, interceptors.NewOrder(interceptors.OrderConfig{}))
		m := msgFrom(src, 0, interceptors.AppendSeq(bytes.Clone(data), 0))
		buf := m.Data
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		seq := uint32(0)
		for b.Loop() {
			seq++
			s := seq
			if s%2 == 1 {
				s++ // 2 1 4 3 ...: every other message is held back
			} else {
				s--
			}
			binary.BigEndian.PutUint32(buf[len(data):], s)
			p.recv(b, m)
		}
	})
}

func BenchmarkFragmentation(b *testing.B) {
	src := &tribes.Member{Host: hostOf(100), Port: 4000, SecurePort: -1, UDPPort: -1}
	data := benchPayload(1 << 20)
	const chunk = 100 << 10
	b.Run("send 1MiB", func(b *testing.B) {
		p := newPipe(b, interceptors.NewFragmentation(interceptors.FragmentationConfig{MaxSize: chunk}))
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			p.send(b, data, 0)
		}
	})
	b.Run("reassemble 1MiB", func(b *testing.B) {
		p := newPipe(b, interceptors.NewFragmentation(interceptors.FragmentationConfig{}))
		count := (len(data) + chunk - 1) / chunk
		frags := make([]*tribes.Message, count)
		for i := range frags {
			frags[i] = msgFrom(src, 0, interceptors.AppendFragmentTrailer(bytes.Clone(data[i*chunk:min((i+1)*chunk, len(data))]), i, count))
		}
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		id := uint64(0)
		for b.Loop() {
			id++
			for _, f := range frags {
				f.UniqueID = tribes.UniqueID{}
				binary.BigEndian.PutUint64(f.UniqueID[:], id)
				p.recv(b, f)
			}
		}
		if p.got != int(id) {
			b.Fatalf("%d of %d messages reassembled", p.got, id)
		}
	})
}

func BenchmarkFullStackSend(b *testing.B) {
	for _, n := range benchSizes {
		data := benchPayload(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			p := newPipe(b, fullStack(b)...)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				p.send(b, data, 0)
			}
		})
	}
}
