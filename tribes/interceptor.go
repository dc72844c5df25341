package tribes

import "context"

// Interceptor is one layer of a [Channel]'s stack (Tribes'
// ChannelInterceptor). Messages sent by the application travel down the
// stack, from the first configured interceptor to the last and then to the
// [Transport]; received messages and membership events travel up, in the
// reverse order, to the channel's listeners; heartbeats travel down.
//
// Every interceptor embeds [BaseInterceptor], whose methods pass everything
// on unchanged, and overrides what it needs; an override passes the call on
// with Next (downward) or Previous (upward), or not at all to swallow it.
// A counting interceptor is a few lines:
//
//	type Counter struct {
//		tribes.BaseInterceptor
//		sent atomic.Int64
//	}
//
//	func (c *Counter) SendMessage(ctx context.Context, to []*tribes.Member, msg *tribes.Message) error {
//		c.sent.Add(1)
//		return c.Next().SendMessage(ctx, to, msg)
//	}
//
// # Concurrency
//
// SendMessage runs on the sender's goroutine and may run concurrently for
// different messages. MessageReceived runs on the receiver's workers: the
// messages of one connection in order, different connections concurrently.
// Membership events arrive from the membership goroutines. Every method
// must be safe for concurrent use and must not block for long, except
// SendMessage, which may wait for what it sends.
//
// # Ownership
//
// A received message is valid only until MessageReceived returns. An
// interceptor that transforms the bytes (gzip, encryption) may set
// msg.Data to a new slice it owns; the transport still releases its own
// buffer afterwards.
type Interceptor interface {
	// SendMessage passes msg down toward the transport.
	SendMessage(ctx context.Context, to []*Member, msg *Message) error
	// MessageReceived passes msg up toward the listeners. An error makes
	// a synchronized ACK a FAIL_ACK.
	MessageReceived(msg *Message) error
	// MemberAdded passes the arrival of a member up.
	MemberAdded(m *Member)
	// MemberDisappeared passes the departure of a member up.
	MemberDisappeared(m *Member)
	// Heartbeat passes the channel's periodic heartbeat down.
	Heartbeat()

	base() *BaseInterceptor
}

// Starter is implemented by interceptors that own goroutines or other
// resources; the channel starts them (top first) before it starts the
// membership, and stops them (bottom first) after the membership stopped.
type Starter interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// MemberView is implemented by interceptors that keep their own view of the
// membership (the failure detector, a domain filter). A channel's
// membership is the view of its top-most MemberView, as in Tribes.
type MemberView interface {
	Members() []*Member
}

// MemberUpdater is implemented by interceptors that keep member records.
// When the membership reports that a known member announced a new record
// (payload, domain or command changed; not the alive counter), the channel
// calls MemberUpdated on every interceptor of its stack that implements
// it, from the bottom up, and does not tell the listeners that the member
// joined again. An interceptor may pass MemberAdded or MemberDisappeared up
// from there, for example when the change moves the member into or out of
// what it admits.
type MemberUpdater interface {
	MemberUpdated(m *Member)
}

// BaseInterceptor is embedded by every [Interceptor]. Its methods pass
// everything on unchanged.
type BaseInterceptor struct {
	next, prev Interceptor
	ch         *Channel
}

// Next returns the interceptor below this one (toward the transport).
func (b *BaseInterceptor) Next() Interceptor { return b.next }

// Previous returns the interceptor above this one (toward the listeners).
func (b *BaseInterceptor) Previous() Interceptor { return b.prev }

// Channel returns the channel whose stack holds this interceptor.
func (b *BaseInterceptor) Channel() *Channel { return b.ch }

// SendMessage passes msg to the next interceptor.
func (b *BaseInterceptor) SendMessage(ctx context.Context, to []*Member, msg *Message) error {
	return b.next.SendMessage(ctx, to, msg)
}

// MessageReceived passes msg to the previous interceptor.
func (b *BaseInterceptor) MessageReceived(msg *Message) error { return b.prev.MessageReceived(msg) }

// MemberAdded passes the event to the previous interceptor.
func (b *BaseInterceptor) MemberAdded(m *Member) { b.prev.MemberAdded(m) }

// MemberDisappeared passes the event to the previous interceptor.
func (b *BaseInterceptor) MemberDisappeared(m *Member) { b.prev.MemberDisappeared(m) }

// Heartbeat passes the heartbeat to the next interceptor.
func (b *BaseInterceptor) Heartbeat() { b.next.Heartbeat() }

func (b *BaseInterceptor) base() *BaseInterceptor { return b }

// Gated reports whether an interceptor configured with option flag flag
// applies to a message with options opts: always when flag is 0, else when
// every bit of flag is set (Tribes' optionFlag rule).
func Gated(flag, opts Options) bool { return flag == 0 || opts.Has(flag) }
