package tribes

import (
	"sync"
	"sync/atomic"

	"github.com/wasmfarm/wasmfarm/bufpool"
)

// Message is one channel message (a Tribes ChannelData) as the transport,
// interceptors and listeners see it.
//
// A Message handed to a listener or a receive handler belongs to the
// transport: it and its Data are valid only until the callback returns.
// Copy what you want to keep. Source is shared between the messages of one
// connection and must not be modified.
type Message struct {
	// Options are the send options (bit flags, spec section 5).
	Options Options
	// Timestamp is the sender's wall clock in milliseconds since the epoch,
	// set when the message was sent.
	Timestamp int64
	// UniqueID identifies the message; a resent message keeps it.
	UniqueID UniqueID
	// Source is the member that sent the message.
	Source *Member
	// Data is the message payload, after the sender's interceptors ran.
	Data []byte

	buf *bufpool.Buffer // backing store of Data on the receive path
	// ackFirst: the receiver's worker writes this message's ACK before
	// processing it (a plain ACK, or a probe's, queued behind an answer
	// owed on its connection).
	ackFirst bool
	probe    bool // a probe, queued only for its answer: not processed
}

// messagePool recycles received messages so the receive path does not
// allocate in steady state.
var messagePool = sync.Pool{New: func() any { return new(Message) }}

// getMessage returns an empty message from the pool.
func getMessage() *Message { return messagePool.Get().(*Message) }

// release returns m and its buffer to their pools.
func (m *Message) release(p *bufpool.Pool) {
	if m.buf != nil {
		p.Put(m.buf)
		m.buf = nil
	}
	*m = Message{}
	messagePool.Put(m)
}

// idSource hands out message ids: a random 16-byte base whose last seven
// bytes are replaced by a counter, so ids are unique without a syscall per
// message and keep the UUID-v4 version and variant bits of Java's ids.
type idSource struct {
	base UniqueID
	seq  atomic.Uint64
}

func newIDSource() *idSource { return &idSource{base: NewUniqueID()} }

func (s *idSource) next() UniqueID {
	id := s.base
	n := s.seq.Add(1)
	for i := 15; i >= 9; i-- {
		id[i] ^= byte(n)
		n >>= 8
	}
	return id
}
