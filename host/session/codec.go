package session

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

// Limits bound what a session may hold and what the codec accepts from
// untrusted bytes.
type Limits struct {
	MaxKeyBytes    int // longest attribute key, in bytes
	MaxValueBytes  int // largest attribute value, in bytes
	MaxAttributes  int // attributes per session, and operations per delta
	MaxIDBytes     int // longest session id
	MaxEncodedSize int // largest encoded session or delta, in bytes
}

// DefaultLimits returns the limits the host uses unless configured
// otherwise.
func DefaultLimits() Limits {
	return Limits{
		MaxKeyBytes:    1 << 10, // 1 KiB keys
		MaxValueBytes:  1 << 20, // 1 MiB values
		MaxAttributes:  1 << 10, // 1024 attributes
		MaxIDBytes:     256,
		MaxEncodedSize: 8 << 20, // 8 MiB per encoded session or delta
	}
}

func (l Limits) orDefault() Limits {
	d := DefaultLimits()
	if l.MaxKeyBytes <= 0 {
		l.MaxKeyBytes = d.MaxKeyBytes
	}
	if l.MaxValueBytes <= 0 {
		l.MaxValueBytes = d.MaxValueBytes
	}
	if l.MaxAttributes <= 0 {
		l.MaxAttributes = d.MaxAttributes
	}
	if l.MaxIDBytes <= 0 {
		l.MaxIDBytes = d.MaxIDBytes
	}
	if l.MaxEncodedSize <= 0 {
		l.MaxEncodedSize = d.MaxEncodedSize
	}
	return l
}

// stateOverhead bounds the encoding of a session without its attributes
// (see [State.AppendBinary]): version, id, three times, count.
func (l Limits) stateOverhead() int {
	return 1 + binary.MaxVarintLen64 + l.MaxIDBytes + 4*binary.MaxVarintLen64
}

// deltaOverhead bounds the encoding of a delta without its operations (see
// [Delta.AppendBinary]): version, flags, two ids, three times, count.
func (l Limits) deltaOverhead() int {
	return 2 + 2*(binary.MaxVarintLen64+l.MaxIDBytes) + 4*binary.MaxVarintLen64
}

// attrSize is the size of the encoding of an attribute: key and value.
func attrSize(key string, value []byte) int {
	return uvarintLen(uint64(len(key))) + len(key) + uvarintLen(uint64(len(value))) + len(value)
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// Encoding versions; the first byte of every encoding.
const (
	stateVersion byte = 1
	deltaVersion byte = 1
)

const (
	flagCreated byte = 1 << iota
	flagNewID
	flagMaxInactive
	flagInvalidated
)

// AppendBinary appends the encoding of st to b:
//
//	version(1) | id | created | accessed | maxInactive | n | n × (key | value)
//
// where strings and byte slices are uvarint length + bytes, times and the
// idle limit are varints.
func (st *State) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, stateVersion)
	b = appendString(b, st.ID)
	b = binary.AppendVarint(b, st.Created)
	b = binary.AppendVarint(b, st.Accessed)
	b = binary.AppendVarint(b, int64(st.MaxInactive))
	b = binary.AppendUvarint(b, uint64(len(st.Attrs)))
	for _, a := range st.Attrs {
		b = appendString(b, a.Key)
		b = appendBytes(b, a.Value)
	}
	return b, nil
}

// UnmarshalState decodes a session encoded by [State.AppendBinary], within
// the limits (zero fields mean the defaults). The result does not alias b.
func UnmarshalState(b []byte, lim Limits) (State, error) {
	lim = lim.orDefault()
	var st State
	if len(b) > lim.MaxEncodedSize {
		return st, fmt.Errorf("%w: %d bytes exceed the limit of %d", ErrCorrupt, len(b), lim.MaxEncodedSize)
	}
	d := decoder{b: b, lim: lim}
	if v := d.byte(); v != stateVersion && d.err == nil {
		return st, fmt.Errorf("%w: session encoding version %d, want %d", ErrCorrupt, v, stateVersion)
	}
	st.ID = d.string(lim.MaxIDBytes, "id")
	st.Created = d.varint()
	st.Accessed = d.varint()
	st.MaxInactive = d.int32()
	n := d.count(lim.MaxAttributes, "attributes")
	if n > 0 {
		st.Attrs = make([]Attr, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		k := d.string(lim.MaxKeyBytes, "key")
		v := d.bytes(lim.MaxValueBytes, "value")
		st.Attrs = append(st.Attrs, Attr{Key: k, Value: v})
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return st, d.err
}

// AppendBinary appends the encoding of d to b:
//
//	version(1) | flags(1) | id | [newID] | [creationTime] | accessed |
//	[maxInactive] | n | n × (kind(1) | key | [value])
//
// Optional fields are present when their flag is set; value only for OpSet.
func (d *Delta) AppendBinary(b []byte) ([]byte, error) {
	var flags byte
	if d.Created {
		flags |= flagCreated
	}
	if d.NewID != "" {
		flags |= flagNewID
	}
	if d.MaxInactiveSet {
		flags |= flagMaxInactive
	}
	if d.Invalidated {
		flags |= flagInvalidated
	}
	b = append(b, deltaVersion, flags)
	b = appendString(b, d.ID)
	if d.NewID != "" {
		b = appendString(b, d.NewID)
	}
	if d.Created {
		b = binary.AppendVarint(b, d.CreationTime)
	}
	b = binary.AppendVarint(b, d.Accessed)
	if d.MaxInactiveSet {
		b = binary.AppendVarint(b, int64(d.MaxInactive))
	}
	b = binary.AppendUvarint(b, uint64(len(d.Ops)))
	for _, op := range d.Ops {
		b = append(b, byte(op.Kind))
		b = appendString(b, op.Key)
		if op.Kind == OpSet {
			b = appendBytes(b, op.Value)
		}
	}
	return b, nil
}

// UnmarshalDelta decodes a delta encoded by [Delta.AppendBinary] into d,
// within the limits (zero fields mean the defaults). The result does not
// alias b.
func UnmarshalDelta(b []byte, d *Delta, lim Limits) error {
	return unmarshalDelta(b, d, lim, false)
}

// unmarshalDelta is UnmarshalDelta; with alias, d's strings and values
// point into b instead of being copies (see StandardManager.ApplyEncoded).
func unmarshalDelta(b []byte, d *Delta, lim Limits, alias bool) error {
	lim = lim.orDefault()
	d.Reset()
	if len(b) > lim.MaxEncodedSize {
		return fmt.Errorf("%w: %d bytes exceed the limit of %d", ErrCorrupt, len(b), lim.MaxEncodedSize)
	}
	dec := decoder{b: b, lim: lim, alias: alias}
	if v := dec.byte(); v != deltaVersion && dec.err == nil {
		return fmt.Errorf("%w: delta encoding version %d, want %d", ErrCorrupt, v, deltaVersion)
	}
	flags := dec.byte()
	if flags&^(flagCreated|flagNewID|flagMaxInactive|flagInvalidated) != 0 {
		dec.fail("unknown delta flags %#x", flags)
	}
	d.ID = dec.string(lim.MaxIDBytes, "id")
	if flags&flagNewID != 0 {
		d.NewID = dec.string(lim.MaxIDBytes, "new id")
		if d.NewID == "" {
			dec.fail("empty new id")
		}
	}
	if flags&flagCreated != 0 {
		d.Created = true
		d.CreationTime = dec.varint()
	}
	d.Accessed = dec.varint()
	if flags&flagMaxInactive != 0 {
		d.MaxInactiveSet = true
		d.MaxInactive = dec.int32()
	}
	d.Invalidated = flags&flagInvalidated != 0
	n := dec.count(lim.MaxAttributes, "operations")
	for i := 0; i < n && dec.err == nil; i++ {
		op := Op{Kind: OpKind(dec.byte())}
		op.Key = dec.string(lim.MaxKeyBytes, "key")
		switch op.Kind {
		case OpSet:
			op.Value = dec.bytes(lim.MaxValueBytes, "value")
		case OpRemove:
		default:
			dec.fail("unknown operation %d", op.Kind)
		}
		d.Ops = append(d.Ops, op)
	}
	if dec.err == nil && len(dec.b) != 0 {
		dec.fail("%d trailing bytes", len(dec.b))
	}
	return dec.err
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// decoder reads fields until the first error, after which every read
// returns a zero value.
type decoder struct {
	b     []byte
	lim   Limits
	err   error
	alias bool // strings and bytes point into b (unmarshalDelta)
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int32() int32 {
	v := d.varint()
	if v < -1<<31 || v > 1<<31-1 {
		d.fail("max inactive interval %d out of range", v)
		return 0
	}
	return int32(v)
}

// count reads a uvarint count bounded by max and by the bytes left (every
// element takes at least one byte).
func (d *decoder) count(max int, what string) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(max) || n > uint64(len(d.b)) {
		d.fail("%d %s exceed the limit of %d or the %d bytes left", n, what, max, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) raw(max int, what string) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(max) {
		d.fail("%s of %d bytes exceeds the limit of %d", what, n, max)
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("truncated %s", what)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string(max int, what string) string {
	v := d.raw(max, what)
	if d.alias {
		return unsafe.String(unsafe.SliceData(v), len(v))
	}
	return string(v)
}

func (d *decoder) bytes(max int, what string) []byte {
	v := d.raw(max, what)
	if v == nil || d.alias {
		return v
	}
	return append(make([]byte, 0, len(v)), v...)
}
