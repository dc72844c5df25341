package sdk

import "slices"

// Header is a set of HTTP header fields, like net/http's Header (without
// importing net/http into the guest). Keys are canonicalized by the
// methods.
type Header map[string][]string

// Get returns the first value of key, or "".
func (h Header) Get(key string) string {
	if v := h[CanonicalHeaderKey(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns all values of key.
func (h Header) Values(key string) []string { return h[CanonicalHeaderKey(key)] }

// Set replaces the values of key with value.
func (h Header) Set(key, value string) {
	k := CanonicalHeaderKey(key)
	if vs := h[k]; cap(vs) > 0 {
		h[k] = append(vs[:0], value)
		return
	}
	h[k] = []string{value}
}

// Add appends value to the values of key.
func (h Header) Add(key, value string) {
	k := CanonicalHeaderKey(key)
	h[k] = append(h[k], value)
}

// Del removes key.
func (h Header) Del(key string) { delete(h, CanonicalHeaderKey(key)) }

// Keys returns the names of the headers with values, sorted.
func (h Header) Keys() []string {
	keys := make([]string, 0, len(h))
	for k, vs := range h {
		if len(vs) > 0 {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
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
