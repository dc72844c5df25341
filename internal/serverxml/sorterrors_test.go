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

// TestSortErrorsCapsTheText: 10,000 errors make a short text ending with
// the count of those left out; errors.Is still finds the last one.
func TestSortErrorsCapsTheText(t *testing.T) {
	errLast := errors.New("the last one")
	var errs []error
	for i := range 10000 {
		errs = append(errs, &Error{File: "f", Line: i + 1, Col: 1, Msg: strings.Repeat("x", 1000)})
	}
	errs = append(errs, &Error{File: "f", Line: 20000, Col: 1, Err: errLast, Msg: "last"})
	got := SortErrors(errs)
	s := got.Error()
	if len(s) > 200<<10 {
		t.Errorf("error text of %d bytes", len(s))
	}
	if !strings.HasSuffix(s, "9901 more errors not shown") {
		t.Errorf("error text ends %q", s[max(0, len(s)-60):])
	}
	if !errors.Is(got, errLast) {
		t.Error("errors.Is does not find an error left out of the text")
	}
	// Sorting a capped error again (a loader's errors inside another's)
	// keeps one count.
	again := SortErrors([]error{got}).Error()
	if strings.Count(again, "more errors not shown") != 1 || !strings.HasSuffix(again, "9901 more errors not shown") {
		t.Errorf("sorted again, ends %q", again[max(0, len(again)-60):])
	}
}
