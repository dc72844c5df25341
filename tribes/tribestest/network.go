package tribestest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// Errors of the in-memory network.
var (
	// ErrUnreachable occurs when a message or a probe is addressed to a
	// node that is not listening: its transport is not started, closed or
	// crashed, or no node has the address (a real network answers
	// "connection refused").
	ErrUnreachable = errors.New("tribestest: member unreachable")

	// ErrCrashed occurs when a crashed node's membership is started (call
	// [Node.Restart] first) or its transport sends.
	ErrCrashed = errors.New("tribestest: node crashed")
)

// Config configures a [Network]. The zero value of every field means its
// default.
type Config struct {
	// SendTimeout bounds a send that waits for ACKs, as the real sender's
	// Timeout (default tribes.DefaultSendTimeout, 3 s). An acknowledged
	// message to a partitioned member fails with tribes.ErrAckTimeout
	// after it.
	SendTimeout time.Duration
	// MaxRetryAttempts is how often a message answered with FAIL_ACK is
	// resent, as the real sender's (default 1; negative means never). The
	// receiver then sees the message twice, with the same UniqueID.
	MaxRetryAttempts int
	// MaxMessageSize limits the payload of one message (default 64 MiB).
	MaxMessageSize int
}

// Network is an in-memory network of members for tests of everything
// above the transport: a [Node] per member, each with a
// [tribes.Membership] and a [tribes.Transport], and switches to crash
// nodes, partition them and drop messages. See the package documentation.
//
// A Network is safe for concurrent use. Networks are independent: a test
// can run several.
type Network struct {
	cfg Config

	// evMu serialises membership changes with the delivery of their
	// events, so that every membership sees the changes in one global
	// order. It is never taken while mu is held.
	evMu sync.Mutex

	mu      sync.Mutex
	nodes   []*Node
	byAddr  map[netip.AddrPort]*Node
	cut     map[[2]*Node]bool // partitioned pairs (both orders stored)
	dropped map[[2]*Node]bool // directional message drops
	seq     int64             // join order of memberships

	// pending counts messages queued or being processed, for Settle.
	pendMu  sync.Mutex
	pending int
	idle    *sync.Cond
}

// NewNetwork returns an empty network with the default [Config].
func NewNetwork() *Network { return New(Config{}) }

// New returns an empty network configured by cfg.
func New(cfg Config) *Network {
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = tribes.DefaultSendTimeout
	}
	if cfg.MaxRetryAttempts == 0 {
		cfg.MaxRetryAttempts = 1
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = 64 << 20
	}
	n := &Network{
		cfg:     cfg,
		byAddr:  map[netip.AddrPort]*Node{},
		cut:     map[[2]*Node]bool{},
		dropped: map[[2]*Node]bool{},
	}
	n.idle = sync.NewCond(&n.pendMu)
	return n
}

// Node is one member's host on the network: an address, a membership and a
// transport. Create nodes with [Network.NewNode].
type Node struct {
	net  *Network
	addr netip.AddrPort
	mb   *Membership
	tr   *Transport

	// guarded by net.mu
	crashed bool
}

// NewNode adds a node to the network. Its address is 10.0.x.y:4000, unique
// in the network: the transport's Start returns it, and members whose
// record has this host and port are this node.
func (n *Network) NewNode() *Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	i := len(n.nodes) + 1
	nd := &Node{net: n, addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 4000)}
	nd.mb = &Membership{node: nd}
	nd.tr = &Transport{node: nd}
	n.nodes = append(n.nodes, nd)
	n.byAddr[nd.addr] = nd
	return nd
}

// Nodes returns the network's nodes in creation order.
func (n *Network) Nodes() []*Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Node(nil), n.nodes...)
}

// Addr returns the node's address.
func (nd *Node) Addr() netip.AddrPort { return nd.addr }

// Membership returns the node's membership provider.
func (nd *Node) Membership() *Membership { return nd.mb }

// Transport returns the node's transport.
func (nd *Node) Transport() *Transport { return nd.tr }

// Member returns a member record for this node: its address, the given
// unique id, no secure or UDP port.
func (nd *Node) Member(id tribes.UniqueID) *tribes.Member {
	return &tribes.Member{Host: nd.addr.Addr(), Port: int(nd.addr.Port()), SecurePort: -1, UDPPort: -1, UniqueID: id}
}

// String returns the node's address.
func (nd *Node) String() string { return nd.addr.String() }

// Crash kills the node as kill -9 would: its membership stops without a
// goodbye (the others get MemberDisappeared without BABY-ALEX, at once, as
// if their failure detection had been instantaneous), its transport stops
// receiving (queued messages are lost; waiting synchronous senders fail)
// and refuses to send. The node's own membership reports nothing more.
// [Node.Restart] brings the node back. Crash must not be called from a
// membership event callback.
func (nd *Node) Crash() {
	n := nd.net
	n.evMu.Lock()
	defer n.evMu.Unlock()
	n.mu.Lock()
	nd.crashed = true
	ds := n.leaveLocked(nd.mb, false)
	n.mu.Unlock()
	nd.tr.closeQueues(ErrUnreachable)
	deliver(ds)
}

// Restart lets a crashed node start its membership and transport again (a
// new process on the same address). It does not start them.
func (nd *Node) Restart() {
	nd.net.mu.Lock()
	nd.crashed = false
	nd.net.mu.Unlock()
}

// Crashed reports whether the node is crashed.
func (nd *Node) Crashed() bool {
	nd.net.mu.Lock()
	defer nd.net.mu.Unlock()
	return nd.crashed
}

// Partition cuts the link between a and b in both directions: messages
// between them are lost (acknowledged sends time out with
// tribes.ErrAckTimeout, probes fail after their connect timeout), and if
// both memberships are running, each gets MemberDisappeared for the other
// at once, as when heartbeats stop arriving. Partition must not be called
// from a membership event callback.
func (n *Network) Partition(a, b *Node) {
	if a == b {
		return
	}
	n.evMu.Lock()
	defer n.evMu.Unlock()
	n.mu.Lock()
	if n.cut[[2]*Node{a, b}] {
		n.mu.Unlock()
		return
	}
	var ds []delivery
	if a.mb.up && b.mb.up {
		ds = append(ds,
			delivery{a.mb.events, tribes.MemberEvent{Type: tribes.MemberDisappeared, Member: b.mb.record()}},
			delivery{b.mb.events, tribes.MemberEvent{Type: tribes.MemberDisappeared, Member: a.mb.record()}})
	}
	n.cut[[2]*Node{a, b}], n.cut[[2]*Node{b, a}] = true, true
	n.mu.Unlock()
	deliver(ds)
}

// Isolate partitions nd from every other node.
func (n *Network) Isolate(nd *Node) {
	n.mu.Lock()
	nodes := append([]*Node(nil), n.nodes...)
	n.mu.Unlock()
	for _, o := range nodes {
		n.Partition(nd, o)
	}
}

// Heal restores the link between a and b; if both memberships are
// running, each gets MemberAdded for the other.
func (n *Network) Heal(a, b *Node) {
	n.evMu.Lock()
	defer n.evMu.Unlock()
	n.mu.Lock()
	if !n.cut[[2]*Node{a, b}] {
		n.mu.Unlock()
		return
	}
	delete(n.cut, [2]*Node{a, b})
	delete(n.cut, [2]*Node{b, a})
	var ds []delivery
	if a.mb.up && b.mb.up {
		ds = append(ds,
			delivery{a.mb.events, tribes.MemberEvent{Type: tribes.MemberAdded, Member: b.mb.record()}},
			delivery{b.mb.events, tribes.MemberEvent{Type: tribes.MemberAdded, Member: a.mb.record()}})
	}
	n.mu.Unlock()
	deliver(ds)
}

// HealAll restores every link cut by Partition or Isolate.
func (n *Network) HealAll() {
	n.mu.Lock()
	var pairs [][2]*Node
	for p := range n.cut {
		pairs = append(pairs, p)
	}
	n.mu.Unlock()
	for _, p := range pairs {
		n.Heal(p[0], p[1])
	}
}

// DropMessages makes the messages from one node to another be lost (drop
// true) or delivered again (false), in that direction only, without any
// membership change: a link that carries heartbeats but not TCP. Probes
// from `from` to `to` fail too.
func (n *Network) DropMessages(from, to *Node, drop bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if drop {
		n.dropped[[2]*Node{from, to}] = true
	} else {
		delete(n.dropped, [2]*Node{from, to})
	}
}

// linkDown reports whether messages from a to b are lost. Called with mu
// held.
func (n *Network) linkDown(a, b *Node) bool {
	return n.cut[[2]*Node{a, b}] || n.dropped[[2]*Node{a, b}]
}

// Settle waits until no message is queued or being processed anywhere in
// the network (messages sent while it waits included), or ctx ends.
func (n *Network) Settle(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		n.pendMu.Lock()
		n.idle.Broadcast()
		n.pendMu.Unlock()
	})
	defer stop()
	n.pendMu.Lock()
	defer n.pendMu.Unlock()
	for n.pending > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n.idle.Wait()
	}
	return nil
}

func (n *Network) addPending(d int) {
	n.pendMu.Lock()
	n.pending += d
	if n.pending == 0 {
		n.idle.Broadcast()
	}
	n.pendMu.Unlock()
}

// Dial connects to addr ("host:port") if a node with a started transport
// listens there and the link from no node in particular is up: it is
// usable as tribes.StaticConfig.Dial. The connection is an in-memory pipe
// whose far end is closed at once. A crashed or stopped node refuses
// ([ErrUnreachable]).
func (n *Network) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("tribestest: dial %s: %w", addr, err)
	}
	n.mu.Lock()
	nd := n.byAddr[ap]
	ok := nd != nil && !nd.crashed && nd.tr.listening()
	n.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("tribestest: dial %s: %w", addr, ErrUnreachable)
	}
	c1, c2 := net.Pipe()
	c2.Close()
	return c1, nil
}

// delivery is one event for one membership callback.
type delivery struct {
	fn func(tribes.MemberEvent)
	ev tribes.MemberEvent
}

// deliver calls the callbacks in order. Called with evMu held and mu not.
func deliver(ds []delivery) {
	for _, d := range ds {
		if d.fn != nil {
			d.fn(d.ev)
		}
	}
}
