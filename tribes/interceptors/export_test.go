package interceptors

import (
	"io"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// Test hooks: fixed IVs and clocks. Set them before the channel starts.

func SetEncryptRand(e *Encrypt, r io.Reader)                       { e.rand = r }
func SetEncryptClock(e *Encrypt, now func() time.Time)             { e.now = now }
func SetOrderClock(o *Order, now func() time.Time)                 { o.now = now }
func SetFragmentationClock(f *Fragmentation, now func() time.Time) { f.now = now }
func SetThroughputClock(t *Throughput, now func() time.Time) {
	t.now = now
	t.lastReport.Store(now().UnixNano())
}

// EncryptOpen exposes the decrypt path (decryption, replay and skew checks).
func EncryptOpen(e *Encrypt, dst, data []byte) ([]byte, error) { return e.open(dst, data) }

// EncryptSeal exposes the encrypt path: out must be len(msg)+EncryptOverhead.
func EncryptSeal(e *Encrypt, out []byte, ts int64, msg []byte) error { return e.seal(out, ts, msg) }

// FragmentCost and FragmentSetCost are what Fragmentation charges to its
// pending bytes for a stored fragment of n bytes and for a new set.
func FragmentCost(n int) int                            { return fragCost(n) }
func FragmentSetCost(src *tribes.Member, count int) int { return newSetCost(src, count) }

var (
	TCPPingData   = tcpPingData
	TCPFailDetect = tcpFailDetect
)

const (
	MemberStart = memberStart
	MemberStop  = memberStop
)
