package javapeer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
)

// Event kinds: the "event" field of TribesPeer's JSON lines.
const (
	KindReady             = "ready"             // the channel started; Event.Member is the local member
	KindMemberAdded       = "memberAdded"       // a MembershipListener event; Event.Member
	KindMemberDisappeared = "memberDisappeared" // a MembershipListener event; Event.Member
	KindMessage           = "message"           // the ChannelListener got a message; Event.Message
	KindDropped           = "dropped"           // a received message never reached the listener; Event.Message
	KindSendResult        = "sendResult"        // a send or burst command returned; Event.Result
	KindAsyncResult       = "asyncResult"       // every asynchronous send of a command ended; Event.Result
	KindMembers           = "members"           // answer to members; Event.Members
	KindPong              = "pong"              // answer to ping
	KindThrow             = "throw"             // answer to throw on|off; Event.On
	KindError             = "error"             // a command failed; Event.Error
	KindStopped           = "stopped"           // the channel stopped; Event.Result.OK, Event.Error
	KindFatal             = "fatal"             // the harness gives up; Event.Error
)

// MaxLineSize bounds one event line; a longer line is an error. Lines hold
// payloads in hex up to the harness's hexLimit, so Start raises the bound
// to fit Config.HexLimit.
const MaxLineSize = 1 << 20

// Member is a Tribes member as TribesPeer reports it.
type Member struct {
	Host       netip.Addr
	Port       int
	UniqueID   [16]byte
	Domain     string // ISO-8859-1 bytes as a string
	Command    string // "" or "BABY-ALEX"
	Payload    []byte
	Alive      int64 // ms since the member's membership service started
	SecurePort int
	UDPPort    int
}

// AddrPort returns the member's receiver address.
func (m Member) AddrPort() netip.AddrPort { return netip.AddrPortFrom(m.Host, uint16(m.Port)) }

// Same reports whether m and o are the same member by Tribes' identity
// (host, port and unique id).
func (m Member) Same(o Member) bool {
	return m.Host == o.Host && m.Port == o.Port && m.UniqueID == o.UniqueID
}

func (m Member) String() string {
	return fmt.Sprintf("%s/%x", m.AddrPort(), m.UniqueID)
}

// Message is a message the Java channel received: delivered to its
// listener (KindMessage) or dropped on the way up (KindDropped: a
// failure-detector probe, a message an interceptor refused, or a body Java
// could not deserialise).
type Message struct {
	// Options are the options as the listener saw them, after every
	// interceptor ran (Java does not clear the gzip flag, for instance).
	// Zero for a dropped message.
	Options uint32
	// WireOptions, WireLength and WireSHA256 describe the message as it
	// came off the wire, before any interceptor (gzip, encrypt) ran.
	WireOptions uint32
	WireLength  int
	WireSHA256  [32]byte
	// WirePayload holds the wire bytes of a dropped message when they are
	// not longer than the harness's hexLimit; nil otherwise.
	WirePayload []byte
	MsgID       []byte // the ChannelData uniqueId
	Timestamp   int64  // the ChannelData timestamp, ms since the epoch
	Source      Member // the ChannelData member, as handed to the listener
	// Kind is "bytes" for a ByteMessage and "object" for a deserialised
	// object, whose Java class is Class ("java.lang.String", "[B", ...).
	Kind  string
	Class string
	// Length and SHA256 describe the bytes of a ByteMessage or a byte[],
	// or the UTF-8 of a String; Payload holds them when Length is not over
	// the hexLimit (nil otherwise).
	Length  int
	SHA256  [32]byte
	Payload []byte
	Text    string // the String received, for Class "java.lang.String"
	Threw   bool   // the listener threw after reporting it (FAIL_ACK)
}

// Is reports whether the message's bytes are b (by length and SHA-256, so
// it works for payloads too large to be reported in hex).
func (m Message) Is(b []byte) bool {
	return m.Length == len(b) && m.SHA256 == sha256.Sum256(b)
}

// Result is the outcome of a command.
type Result struct {
	OK     bool
	Error  string // Java's exception, with its faulty members and causes
	MsgID  []byte // the uniqueId of the message a send command sent
	Sent   int    // burst: sends that returned normally
	Failed int    // burst and asyncResult: sends that failed
}

// Event is one line of TribesPeer's output. Which fields are set depends
// on Kind (see the Kind constants).
type Event struct {
	Kind          string
	Cmd           int // the command line it answers, 0 for unsolicited events
	Member        Member
	Message       Message
	Result        Result
	Members       []Member
	On            bool
	Error         string
	StartLevel    int
	TribesVersion string
	JavaVersion   string
}

type jsonMember struct {
	Host       string `json:"host"`
	Port       int    `json:"port"`
	UniqueID   string `json:"uniqueId"`
	Domain     string `json:"domain"`
	Command    string `json:"command"`
	Payload    string `json:"payload"`
	Alive      int64  `json:"alive"`
	SecurePort int    `json:"securePort"`
	UDPPort    int    `json:"udpPort"`
}

type jsonEvent struct {
	Event   string       `json:"event"`
	Cmd     int          `json:"cmd"`
	Member  *jsonMember  `json:"member"`
	Source  *jsonMember  `json:"source"`
	Members []jsonMember `json:"members"`

	Options     int64   `json:"options"`
	WireOptions int64   `json:"wireOptions"`
	WireLength  int     `json:"wireLength"`
	WireSHA256  string  `json:"wireSha256"`
	WirePayload *string `json:"wirePayload"`
	MsgID       string  `json:"msgId"`
	Timestamp   int64   `json:"timestamp"`
	Kind        string  `json:"kind"`
	Class       string  `json:"class"`
	Length      int     `json:"length"`
	SHA256      string  `json:"sha256"`
	Payload     *string `json:"payload"`
	Text        string  `json:"text"`
	Threw       bool    `json:"threw"`

	OK     bool   `json:"ok"`
	Error  string `json:"error"`
	Sent   int    `json:"sent"`
	Failed int    `json:"failed"`
	On     bool   `json:"on"`

	StartLevel    int    `json:"startLevel"`
	TribesVersion string `json:"tribesVersion"`
	JavaVersion   string `json:"javaVersion"`
}

// ParseEvent decodes one event line. It checks what it decodes: hex
// fields, 16-byte unique ids, IP addresses, and that a reported payload
// matches its length and SHA-256. Lines over MaxLineSize are refused.
func ParseEvent(line []byte) (Event, error) {
	return parseEvent(line, MaxLineSize)
}

func parseEvent(line []byte, limit int) (Event, error) {
	var ev Event
	if len(line) > limit {
		return ev, fmt.Errorf("javapeer: event line of %d bytes, limit %d", len(line), limit)
	}
	line = bytes.TrimSpace(line)
	var j jsonEvent
	if err := json.Unmarshal(line, &j); err != nil {
		return ev, fmt.Errorf("javapeer: bad event line: %w", err)
	}
	if j.Event == "" {
		return ev, fmt.Errorf("javapeer: event line without an event name")
	}
	if j.Cmd < 0 {
		return ev, fmt.Errorf("javapeer: %s: negative cmd %d", j.Event, j.Cmd)
	}
	ev = Event{
		Kind: j.Event, Cmd: j.Cmd, On: j.On, Error: j.Error,
		StartLevel: j.StartLevel, TribesVersion: j.TribesVersion, JavaVersion: j.JavaVersion,
	}
	var err error
	fail := func(what string, err error) (Event, error) {
		return Event{}, fmt.Errorf("javapeer: %s event: %s: %w", j.Event, what, err)
	}
	switch j.Event {
	case KindReady, KindMemberAdded, KindMemberDisappeared:
		if j.Member == nil {
			return fail("member", fmt.Errorf("missing"))
		}
		if ev.Member, err = j.Member.member(); err != nil {
			return fail("member", err)
		}
	case KindMessage, KindDropped:
		if ev.Message, err = j.message(); err != nil {
			return fail("message", err)
		}
	case KindSendResult, KindAsyncResult, KindStopped:
		ev.Result = Result{OK: j.OK, Error: j.Error, Sent: j.Sent, Failed: j.Failed}
		if ev.Result.MsgID, err = hexField(j.MsgID, -1); err != nil {
			return fail("msgId", err)
		}
	case KindMembers:
		ev.Members = make([]Member, len(j.Members))
		for i := range j.Members {
			if ev.Members[i], err = j.Members[i].member(); err != nil {
				return fail(fmt.Sprintf("member %d", i), err)
			}
		}
	}
	return ev, nil
}

func (j *jsonEvent) message() (Message, error) {
	m := Message{
		Options: uint32(j.Options), WireOptions: uint32(j.WireOptions), WireLength: j.WireLength,
		Timestamp: j.Timestamp, Kind: j.Kind, Class: j.Class, Length: j.Length,
		Text: j.Text, Threw: j.Threw,
	}
	if j.Source == nil {
		return m, fmt.Errorf("no source member")
	}
	if j.Length < 0 || j.WireLength < 0 {
		return m, fmt.Errorf("negative length")
	}
	var err error
	if m.Source, err = j.Source.member(); err != nil {
		return m, fmt.Errorf("source: %w", err)
	}
	if m.MsgID, err = hexField(j.MsgID, -1); err != nil {
		return m, fmt.Errorf("msgId: %w", err)
	}
	if j.WireSHA256 != "" {
		if err = sumField(j.WireSHA256, &m.WireSHA256); err != nil {
			return m, fmt.Errorf("wireSha256: %w", err)
		}
	}
	if j.WirePayload != nil {
		if m.WirePayload, err = hexBytes(*j.WirePayload); err != nil {
			return m, fmt.Errorf("wirePayload: %w", err)
		}
		if len(m.WirePayload) != m.WireLength || (j.WireSHA256 != "" && sha256.Sum256(m.WirePayload) != m.WireSHA256) {
			return m, fmt.Errorf("wirePayload does not match wireLength and wireSha256")
		}
	}
	if j.SHA256 != "" {
		if err = sumField(j.SHA256, &m.SHA256); err != nil {
			return m, fmt.Errorf("sha256: %w", err)
		}
	}
	if j.Payload != nil {
		if m.Payload, err = hexBytes(*j.Payload); err != nil {
			return m, fmt.Errorf("payload: %w", err)
		}
		if len(m.Payload) != m.Length || sha256.Sum256(m.Payload) != m.SHA256 {
			return m, fmt.Errorf("payload does not match length and sha256")
		}
	}
	return m, nil
}

func (j *jsonMember) member() (Member, error) {
	m := Member{Port: j.Port, Domain: j.Domain, Command: j.Command, Alive: j.Alive,
		SecurePort: j.SecurePort, UDPPort: j.UDPPort}
	var err error
	if m.Host, err = netip.ParseAddr(j.Host); err != nil {
		return m, err
	}
	if j.Port < 0 || j.Port > 65535 {
		return m, fmt.Errorf("port %d out of range", j.Port)
	}
	id, err := hexField(j.UniqueID, len(m.UniqueID))
	if err != nil {
		return m, fmt.Errorf("uniqueId: %w", err)
	}
	copy(m.UniqueID[:], id)
	if m.Payload, err = hexField(j.Payload, -1); err != nil {
		return m, fmt.Errorf("payload: %w", err)
	}
	return m, nil
}

// hexField decodes s; n >= 0 requires exactly n bytes. "" is nil when n < 0.
func hexField(s string, n int) ([]byte, error) {
	if s == "" && n < 0 {
		return nil, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if n >= 0 && len(b) != n {
		return nil, fmt.Errorf("%d bytes, want %d", len(b), n)
	}
	return b, nil
}

// hexBytes decodes s, giving an empty, non-nil slice for "".
func hexBytes(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if b == nil && err == nil {
		b = []byte{}
	}
	return b, err
}

func sumField(s string, dst *[32]byte) error {
	b, err := hexField(s, 32)
	if err != nil {
		return err
	}
	copy(dst[:], b)
	return nil
}
