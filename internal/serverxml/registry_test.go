package serverxml

import (
	"errors"
	"strings"
	"testing"
)

func testRegistry() *Registry[int] {
	var r Registry[int]
	r.Register("Interceptor", "org.apache.catalina.tribes.group.interceptors.TcpFailureDetector", 1)
	r.Register("Interceptor", "org.apache.catalina.tribes.group.interceptors.MessageDispatchInterceptor", 2)
	r.Register("Interceptor", "org.apache.catalina.tribes.group.interceptors.Dup", 3)
	r.Register("Interceptor", "org.example.Dup", 4)
	r.Register("Membership", "org.apache.catalina.tribes.membership.McastService", 5)
	return &r
}

func TestRegistryResolve(t *testing.T) {
	r := testRegistry()
	tests := []struct {
		name, class string
		want        int
		note        string
	}{
		{"full name", "org.apache.catalina.tribes.group.interceptors.TcpFailureDetector", 1, ""},
		{"short name", "TcpFailureDetector", 1, ""},
		{"short name in another case", "tcpfailuredetector", 1, "class names are case-sensitive"},
		{"full name in another case", "org.apache.catalina.tribes.group.interceptors.tcpFailureDetector", 1, "class names are case-sensitive"},
		{"another package", "org.apache.catalina.cluster.tcp.TcpFailureDetector", 1, "another package"},
		{"ambiguous short name", "Dup", 0, "-"},
		{"full name of a duplicate", "org.example.Dup", 4, ""},
		{"other kind", "McastService", 0, "-"},
		{"unknown", "org.example.Nope", 0, "-"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, canonical, note, ok := r.Resolve("Interceptor", tc.class)
			if tc.note == "-" {
				if ok {
					t.Errorf("resolved to %s", canonical)
				}
				return
			}
			if !ok || f != tc.want || !strings.Contains(note, tc.note) || (tc.note == "" && note != "") {
				t.Errorf("Resolve = %d %q %q %v", f, canonical, note, ok)
			}
		})
	}
	r.Register("Interceptor", "org.example.Dup", 40)
	if f, _, _, _ := r.Resolve("Interceptor", "org.example.Dup"); f != 40 {
		t.Error("Register did not replace")
	}
	if got := len(r.Classes("Interceptor")); got != 4 {
		t.Errorf("Classes = %d", got)
	}
}

func TestRegistryBind(t *testing.T) {
	r := testRegistry()
	root := mustParse(t, `<Channel>
<Interceptor className="TcpFailureDetector"/>
<Interceptor className="org.example.Nope"/>
<Interceptor/>
<Membership/>
<Membership className="mcastservice"/>
</Channel>`)
	ics := root.Find("Interceptor")

	b := ics[0].Bind()
	if f, c, err := r.Bind(b, "Interceptor", ""); err != nil || f != 1 || !strings.HasSuffix(c, ".TcpFailureDetector") {
		t.Errorf("Bind = %d %q %v", f, c, err)
	}
	if ws, _ := b.Done(); len(ws) != 0 {
		t.Errorf("warnings %v", ws)
	}

	_, _, err := r.Bind(ics[1].Bind(), "Interceptor", "")
	var e *Error
	if !errors.Is(err, ErrUnknownClass) || !errors.As(err, &e) || e.Line != 3 || e.Attr != "className" ||
		!strings.Contains(e.Msg, `unknown Interceptor class "org.example.Nope"; known classes: org.apache.catalina.tribes.group.interceptors.Dup, `) {
		t.Errorf("unknown class error %v", err)
	}
	if _, _, err := r.Bind(ics[2].Bind(), "Interceptor", ""); !errors.Is(err, ErrUnknownClass) || !strings.Contains(err.Error(), "has no className") {
		t.Errorf("missing className error %v", err)
	}

	ms := root.Find("Membership")
	b = ms[0].Bind()
	if f, _, err := r.Bind(b, "Membership", "org.apache.catalina.tribes.membership.McastService"); err != nil || f != 5 {
		t.Errorf("default class: %d %v", f, err)
	}
	if ws, _ := b.Done(); len(ws) != 1 || !strings.Contains(ws[0].Msg, "no className; org.apache.catalina.tribes.membership.McastService assumed") {
		t.Errorf("warnings %v", ws)
	}
	b = ms[1].Bind()
	if f, _, err := r.Bind(b, "Membership", ""); err != nil || f != 5 {
		t.Errorf("case-insensitive: %d %v", f, err)
	}
	if ws, _ := b.Done(); len(ws) != 1 || ws[0].Attr != "className" || !strings.Contains(ws[0].Msg, "case-sensitive") {
		t.Errorf("warnings %v", ws)
	}
	if _, _, err := r.Bind(ms[0].Bind(), "Membership", "org.example.Missing"); !errors.Is(err, ErrUnknownClass) {
		t.Errorf("unregistered default: %v", err)
	}
}
