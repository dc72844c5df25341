package sdk

import "slices"

// Header is a set of HTTP header fields with the methods of net/http's
// Header (without importing net/http into the guest). Names are
// canonicalized by the methods.
//
// It is a short list in insertion order rather than a map: a guest has no
// hardware string hash and a map's iteration starts at a random place, so
// for the few headers of a request or response a list costs a fraction of
// a map (the counter app spent a quarter of its guest time in the map of
// its one response header). The zero value is an empty header; use it
// through a pointer, as [ResponseWriter.Header] and [Request.Header]
// return it.
type Header struct {
	fields []headerField
}

type headerField struct {
	name   string
	values []string
	// What the response's last head encoding held for this field (see
	// response.flush): the number of values, and the value when one.
	sentN int
	sent  string
}

// index returns the position of the field named key (canonical or not),
// or -1.
func (h *Header) index(key string) int {
	i, _ := h.find(key)
	return i
}

// find returns the position of the field named key, or -1, and the
// canonical name it looked for.
func (h *Header) find(key string) (int, string) {
	if h == nil {
		return -1, key
	}
	// Names are stored canonical, so a key equal to one is canonical: the
	// common case costs no canonicalization.
	for i := range h.fields {
		if h.fields[i].name == key {
			return i, key
		}
	}
	k := CanonicalHeaderKey(key)
	if k != key {
		for i := range h.fields {
			if h.fields[i].name == k {
				return i, k
			}
		}
	}
	return -1, k
}

// field returns the field named key, adding an empty one if absent.
func (h *Header) field(key string) *headerField {
	i, name := h.find(key)
	if i < 0 {
		h.fields = append(h.fields, headerField{name: name})
		i = len(h.fields) - 1
	}
	return &h.fields[i]
}

// Get returns the first value of key, or "".
func (h *Header) Get(key string) string {
	if i := h.index(key); i >= 0 && len(h.fields[i].values) > 0 {
		return h.fields[i].values[0]
	}
	return ""
}

// Values returns all values of key (nil if none). The slice is the
// header's own: do not keep it past the next change of the header.
func (h *Header) Values(key string) []string {
	if i := h.index(key); i >= 0 && len(h.fields[i].values) > 0 {
		return h.fields[i].values
	}
	return nil
}

// Set replaces the values of key with value.
func (h *Header) Set(key, value string) {
	f := h.field(key)
	f.values = append(f.values[:0], value)
}

// Add appends value to the values of key.
func (h *Header) Add(key, value string) {
	f := h.field(key)
	f.values = append(f.values, value)
}

// Del removes key.
func (h *Header) Del(key string) {
	if i := h.index(key); i >= 0 {
		h.fields[i].values = h.fields[i].values[:0]
	}
}

// Has reports whether key has a value.
func (h *Header) Has(key string) bool {
	i := h.index(key)
	return i >= 0 && len(h.fields[i].values) > 0
}

// Len returns the number of names with values.
func (h *Header) Len() int {
	if h == nil {
		return 0
	}
	n := 0
	for i := range h.fields {
		if len(h.fields[i].values) > 0 {
			n++
		}
	}
	return n
}

// Keys returns the names of the headers with values, sorted.
func (h *Header) Keys() []string {
	keys := make([]string, 0, h.Len())
	if h != nil {
		for i := range h.fields {
			if len(h.fields[i].values) > 0 {
				keys = append(keys, h.fields[i].name)
			}
		}
	}
	slices.Sort(keys)
	return keys
}

// All calls yield for each name with values, in the order the names were
// first set, and stops when yield returns false (range over it).
func (h *Header) All(yield func(name string, values []string) bool) {
	if h == nil {
		return
	}
	for i := range h.fields {
		if f := &h.fields[i]; len(f.values) > 0 && !yield(f.name, f.values) {
			return
		}
	}
}

// maxKeptFields bounds the names reset keeps: a handler that sets a new
// header name on every request must not grow the list (and every lookup)
// without end.
const maxKeptFields = 32

// reset empties every field, keeping the names and the slices for reuse
// (an emptied name reads as absent), or drops them all once there are
// more than maxKeptFields.
func (h *Header) reset() {
	if len(h.fields) > maxKeptFields {
		clear(h.fields)
		h.fields = h.fields[:0]
		return
	}
	for i := range h.fields {
		h.fields[i].values = h.fields[i].values[:0]
	}
}

// CanonicalHeaderKey returns the canonical form of a header name, as
// net/http's: the first letter and any letter after a hyphen upper case,
// the rest lower case. Names holding a space or a byte outside a token are
// returned unchanged.
func CanonicalHeaderKey(s string) string {
	upper, change := true, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f {
			return s
		}
		if (upper && 'a' <= c && c <= 'z') || (!upper && 'A' <= c && c <= 'Z') {
			change = true
		}
		upper = c == '-'
	}
	if !change {
		return s
	}
	return canonical(s)
}

func canonical(s string) string {
	b := []byte(s)
	upper := true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			b[i] = c - 'A' + 'a'
		}
		upper = c == '-'
	}
	return string(b)
}
