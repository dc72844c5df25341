package serverxml

import (
	"errors"
	"strings"
	"testing"
)

func TestSortErrors(t *testing.T) {
	e := func(line int, msg string) error { return &Error{File: "f", Line: line, Col: 1, Msg: msg} }
	got := SortErrors([]error{errors.Join(e(9, "nine"), e(2, "two")), e(5, "five"), nil})
	if got == nil {
		t.Fatal("nil")
	}
	s := got.Error()
	i2, i5, i9 := strings.Index(s, "two"), strings.Index(s, "five"), strings.Index(s, "nine")
	if i2 < 0 || !(i2 < i5 && i5 < i9) {
		t.Fatalf("not in file order:\n%s", s)
	}
	if SortErrors(nil) != nil {
		t.Fatal("no errors should give nil")
	}
}
