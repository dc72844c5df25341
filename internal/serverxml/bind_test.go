package serverxml

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, in string) *Element {
	t.Helper()
	root, ws, err := Parse("t.xml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 0 {
		t.Fatalf("parse warnings: %v", ws)
	}
	return root
}

func TestBinderValues(t *testing.T) {
	el := mustParse(t, `<Receiver address="auto" port="4000" big="9000000000" autoBind="true" ms="500" goDur="1.5s" flag="FALSE" custom="a,b"/>`)
	b := el.Bind()
	var (
		addr       string
		port       int
		big        int64
		bind, flag bool
		ms, gd     time.Duration
		custom     []string
		missing    = 7
	)
	if !b.String("address", &addr) || !b.Int("port", &port) || !b.Int64("big", &big) || !b.Bool("autoBind", &bind) ||
		!b.Duration("ms", time.Millisecond, &ms) || !b.Duration("goDur", time.Millisecond, &gd) || !b.Bool("flag", &flag) ||
		!b.Func("custom", func(v string) error { custom = strings.Split(v, ","); return nil }) {
		t.Fatal("a getter reported a present attribute as absent")
	}
	if b.Int("missing", &missing) || missing != 7 {
		t.Error("absent attribute changed dst or reported present")
	}
	if addr != "auto" || port != 4000 || big != 9000000000 || !bind || flag || ms != 500*time.Millisecond || gd != 1500*time.Millisecond || len(custom) != 2 {
		t.Errorf("got %q %d %d %v %v %v %v %v", addr, port, big, bind, flag, ms, gd, custom)
	}
	ws, err := b.Done()
	if err != nil || len(ws) != 0 {
		t.Errorf("Done = %v, %v; want nothing", ws, err)
	}
}

func TestBinderBadValues(t *testing.T) {
	tests := []struct {
		name string
		read func(b *Binder) bool
		attr string
		want string
	}{
		{"int", func(b *Binder) bool { var n int; return b.Int("v", &n) }, "v", `value "x1" is not an integer`},
		{"int64", func(b *Binder) bool { var n int64; return b.Int64("v", &n) }, "v", `is not an integer`},
		{"bool", func(b *Binder) bool { var v bool; return b.Bool("v", &v) }, "v", `is not "true" or "false"`},
		{"duration", func(b *Binder) bool { var d time.Duration; return b.Duration("v", time.Millisecond, &d) }, "v", `is not a whole number of milliseconds`},
		{"duration overflow", func(b *Binder) bool { var d time.Duration; return b.Duration("big", time.Hour, &d) }, "big", `out of range`},
		{"func", func(b *Binder) bool { return b.Func("v", func(string) error { return errors.New("nope") }) }, "v", `value "x1" nope`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			el := mustParse(t, "<a\n v=\"x1\" big=\"9000000000000\"/>")
			b := el.Bind()
			if tc.read(b) {
				t.Error("getter reported success")
			}
			b.Lookup("v")
			b.Lookup("big")
			ws, err := b.Done()
			if len(ws) != 0 {
				t.Errorf("warnings %v", ws)
			}
			var e *Error
			if !errors.Is(err, ErrBadValue) || !errors.As(err, &e) {
				t.Fatalf("error %v, want ErrBadValue *Error", err)
			}
			if e.Attr != tc.attr || e.Line != 2 || !strings.Contains(e.Msg, tc.want) {
				t.Errorf("error %v, want attr %s line 2 %q", e, tc.attr, tc.want)
			}
		})
	}
}

func TestBinderUnused(t *testing.T) {
	el := mustParse(t, `<Channel>
<MemberShip droptTime="3000" port="45564" Frequency="500"/>
<Receiver seceltorTimeout="5000" maxThreads="6" rxBufSize="1"/>
<Recever/>
</Channel>`)
	b := el.Bind()
	m := b.Child("Membership")
	if m == nil {
		t.Fatal("<MemberShip> not found as Membership")
	}
	mb := m.Bind()
	var port int
	var freq, drop time.Duration
	mb.Int("port", &port)
	mb.Duration("frequency", time.Millisecond, &freq)
	mb.Duration("dropTime", time.Millisecond, &drop)
	b.AddWarnings(mustDone(t, mb)...)

	r := b.Child("Receiver")
	rb := r.Bind()
	var threads int
	rb.Int("maxThreads", &threads)
	rb.Ignore("sockets are tuned by the OS", "rxBufSize", "selectorTimeout")
	b.AddWarnings(mustDone(t, rb)...)

	ws, err := b.Done()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		line  int
		attr  string
		msg   string
		level Level
	}{
		{2, "", `element <MemberShip> read as <Membership>: names are case-sensitive (Tomcat ignores it: no rules found matching "Channel/MemberShip")`, LevelWarning},
		{2, "droptTime", `no such property (value "3000" ignored); did you mean "dropTime"?`, LevelWarning},
		{2, "Frequency", `read as "frequency": names are case-sensitive`, LevelWarning},
		{3, "seceltorTimeout", `no such property (value "5000" ignored); did you mean "selectorTimeout"?`, LevelWarning},
		{3, "rxBufSize", `accepted but not used (value "1"): sockets are tuned by the OS`, LevelNote},
		{4, "", `unknown element <Recever> ignored (Tomcat: no rules found matching "Channel/Recever"); did you mean <Receiver>?`, LevelWarning},
	}
	if len(ws) != len(want) {
		t.Fatalf("%d warnings, want %d:\n%v", len(ws), len(want), ws)
	}
	for i, w := range want {
		got := ws[i]
		if got.Line != w.line || got.Attr != w.attr || !strings.Contains(got.Msg, w.msg) || got.Level != w.level {
			t.Errorf("warning %d = %v\nwant line %d attr %q level %v msg %q", i, got, w.line, w.attr, w.level, w.msg)
		}
	}
	if port != 45564 || freq != 500*time.Millisecond || drop != 0 || threads != 6 {
		t.Errorf("values %d %v %v %d", port, freq, drop, threads)
	}
}

func mustDone(t *testing.T, b *Binder) []Warning {
	t.Helper()
	ws, err := b.Done()
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

func TestBinderChildren(t *testing.T) {
	el := mustParse(t, "<a>\n<Member x=\"1\"/>\n<member x=\"2\"/>\n<Receiver/>\n<Receiver port=\"2\"/>\n<Manager/>\n</a>")
	b := el.Bind()
	if ms := b.Children("Member"); len(ms) != 2 {
		t.Fatalf("Children found %d", len(ms))
	}
	r := b.Child("Receiver")
	if v, _ := r.Attr("port"); v != "2" {
		t.Error("Child did not return the last one")
	}
	b.SkipChildren("manager")
	ws, _ := b.Done()
	if len(ws) != 2 || !strings.Contains(ws[0].Msg, "<member> read as <Member>") ||
		!strings.Contains(ws[1].Msg, "<Receiver> given again on line 5, which replaces this one") || ws[1].Line != 4 {
		t.Errorf("warnings %v", ws)
	}
	// Unused only reports, and Children of a kind never asked for are unused.
	b2 := el.Bind()
	if got := len(b2.Unused()); got != 5 {
		t.Errorf("Unused = %d, want 5", got)
	}
}

func TestBinderWarnNoteFail(t *testing.T) {
	el := mustParse(t, "<a\n x=\"1\"/>")
	b := el.Bind()
	b.Lookup("x")
	b.Warn("x", "w %d", 1)
	b.Note("", "n")
	b.Fail("x", nil, "f")
	b.AddError(nil)
	ws, err := b.Done()
	if len(ws) != 2 || ws[0].Line != 1 || ws[0].Level != LevelNote || ws[1].Line != 2 || ws[1].Attr != "x" || ws[1].Msg != "w 1" {
		t.Errorf("warnings %v", ws)
	}
	if !errors.Is(err, ErrBadValue) || !strings.Contains(err.Error(), `t.xml:2:2: [a] attribute "x": f`) {
		t.Errorf("error %v", err)
	}
	if !b.Has("X") || b.Has("y") {
		t.Error("Has")
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"dropTime", "frequency", "selectorTimeout", "port", "address", "maxThreads", "minThreads"}
	tests := []struct{ in, want string }{
		{"droptTime", "dropTime"},
		{"seceltorTimeout", "selectorTimeout"},
		{"prot", "port"},
		{"adress", "address"},
		{"maxthread", "maxThreads"},
		{"host", ""},
		{"timeout", ""},
		{"frequncy", "frequency"},
		{"port", ""}, // an exact name suggests nothing
		{strings.Repeat("x", 100), ""},
	}
	for _, tc := range tests {
		if got := Suggest(tc.in, known); got != tc.want {
			t.Errorf("Suggest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSecretsHidden(t *testing.T) {
	root, ws, err := Parse("t.xml", []byte("<Interceptor encryptionKey=\" abc \" encryptKey=\"s3cret\" Password=x1 apiToken=\"t\"/>"))
	if err != nil {
		t.Fatal(err)
	}
	b := root.Bind()
	var k string
	b.String("encryptionKey", &k)
	b.Int("apiToken", new(int))
	more, err := b.Done()
	ws = append(ws, more...)
	all := err.Error()
	for _, w := range ws {
		all += "\n" + w.String()
	}
	if k != "abc" || len(ws) != 4 {
		t.Errorf("key %q, warnings %v", k, ws)
	}
	for _, secret := range []string{"abc", "s3cret", "x1", `"t"`} {
		if strings.Contains(all, secret) {
			t.Errorf("%q shown in:\n%s", secret, all)
		}
	}
	if !strings.Contains(all, "(hidden)") {
		t.Errorf("no (hidden) in:\n%s", all)
	}
	if QuoteValue("port", "4000") != `"4000"` {
		t.Error("QuoteValue hid a plain value")
	}
}
