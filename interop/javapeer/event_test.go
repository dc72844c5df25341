package javapeer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const (
	testUID    = "00112233445566778899aabbccddeeff"
	testMember = `{"host":"127.0.0.1","port":4001,"uniqueId":"` + testUID + `","domain":"dom","command":"","payload":"aa","alive":1234,"securePort":-1,"udpPort":-1}`
)

func sumHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestParseEvent(t *testing.T) {
	hi := []byte("hi")
	wantMember := Member{
		Host: netip.MustParseAddr("127.0.0.1"), Port: 4001, Domain: "dom", Payload: []byte{0xaa},
		Alive: 1234, SecurePort: -1, UDPPort: -1,
	}
	copy(wantMember.UniqueID[:], must(hex.DecodeString(testUID)))

	tests := []struct {
		name    string
		line    string
		wantErr string
		check   func(t *testing.T, ev Event)
	}{
		{
			name: "ready",
			line: `{"event":"ready","member":` + testMember + `,"startLevel":3,"tribesVersion":"10.1.60","javaVersion":"17.0.15"}`,
			check: func(t *testing.T, ev Event) {
				if ev.Kind != KindReady || ev.StartLevel != 3 || ev.TribesVersion != "10.1.60" || ev.JavaVersion != "17.0.15" {
					t.Errorf("got %+v", ev)
				}
				if !ev.Member.Same(wantMember) || ev.Member.Domain != "dom" || string(ev.Member.Payload) != "\xaa" ||
					ev.Member.Alive != 1234 || ev.Member.SecurePort != -1 || ev.Member.UDPPort != -1 {
					t.Errorf("member %+v, want %+v", ev.Member, wantMember)
				}
			},
		},
		{
			name: "message",
			line: `{"event":"message","options":257,"msgId":"` + testUID + `","timestamp":1767225600000,"wireOptions":257,"wireLength":22,` +
				`"wireSha256":"` + sumHex(make([]byte, 22)) + `","source":` + testMember + `,"kind":"bytes","class":"org.apache.catalina.tribes.ByteMessage",` +
				`"length":2,"sha256":"` + sumHex(hi) + `","payload":"6869","threw":true}`,
			check: func(t *testing.T, ev Event) {
				m := ev.Message
				if m.Options != 257 || m.WireOptions != 257 || m.WireLength != 22 || m.Timestamp != 1767225600000 ||
					m.Kind != "bytes" || !m.Threw || !m.Is(hi) || string(m.Payload) != "hi" || !m.Source.Same(wantMember) {
					t.Errorf("got %+v", m)
				}
				if m.WireSHA256 != sha256.Sum256(make([]byte, 22)) || hex.EncodeToString(m.MsgID) != testUID {
					t.Errorf("wire sum or msgId wrong: %+v", m)
				}
			},
		},
		{
			name: "big message without payload",
			line: `{"event":"message","options":1,"source":` + testMember + `,"kind":"bytes","length":100000,"sha256":"` + sumHex(PatternBytes(100000)) + `"}`,
			check: func(t *testing.T, ev Event) {
				if ev.Message.Payload != nil || !ev.Message.Is(PatternBytes(100000)) || ev.Message.Is(PatternBytes(99999)) {
					t.Errorf("got %+v", ev.Message)
				}
			},
		},
		{
			name: "negative options",
			line: `{"event":"message","options":-2147483647,"source":` + testMember + `}`,
			check: func(t *testing.T, ev Event) {
				if ev.Message.Options != 0x80000001 {
					t.Errorf("options %#x", ev.Message.Options)
				}
			},
		},
		{
			name: "dropped",
			line: `{"event":"dropped","wireOptions":1,"wireLength":2,"wireSha256":"` + sumHex(hi) + `","wirePayload":"6869","msgId":"","timestamp":5,"source":` + testMember + `}`,
			check: func(t *testing.T, ev Event) {
				if ev.Kind != KindDropped || string(ev.Message.WirePayload) != "hi" || ev.Message.WireLength != 2 {
					t.Errorf("got %+v", ev.Message)
				}
			},
		},
		{
			name: "send result",
			line: `{"event":"sendResult","cmd":7,"ok":false,"error":"ChannelException: x","sent":3,"failed":2}`,
			check: func(t *testing.T, ev Event) {
				r := ev.Result
				if ev.Cmd != 7 || r.OK || r.Error != "ChannelException: x" || r.Sent != 3 || r.Failed != 2 {
					t.Errorf("got %+v", ev)
				}
			},
		},
		{
			name: "members",
			line: `{"event":"members","cmd":2,"members":[` + testMember + `,` + testMember + `]}`,
			check: func(t *testing.T, ev Event) {
				if len(ev.Members) != 2 || !ev.Members[1].Same(wantMember) {
					t.Errorf("got %+v", ev.Members)
				}
			},
		},
		{name: "unknown kind passes", line: `{"event":"somethingNew","cmd":1}`},
		{name: "not json", line: `Listening for transport dt_socket`, wantErr: "bad event line"},
		{name: "no event name", line: `{"cmd":1}`, wantErr: "without an event name"},
		{name: "negative cmd", line: `{"event":"pong","cmd":-1}`, wantErr: "negative cmd"},
		{name: "ready without member", line: `{"event":"ready"}`, wantErr: "missing"},
		{name: "short unique id", line: `{"event":"memberAdded","member":{"host":"127.0.0.1","port":1,"uniqueId":"0011"}}`, wantErr: "uniqueId"},
		{name: "bad host", line: `{"event":"memberAdded","member":{"host":"localhost","port":1,"uniqueId":"` + testUID + `"}}`, wantErr: "ParseAddr"},
		{name: "bad port", line: `{"event":"memberAdded","member":{"host":"127.0.0.1","port":70000,"uniqueId":"` + testUID + `"}}`, wantErr: "out of range"},
		{name: "message without source", line: `{"event":"message","options":1}`, wantErr: "no source"},
		{
			name:    "payload not matching its sum",
			line:    `{"event":"message","source":` + testMember + `,"length":2,"sha256":"` + sumHex([]byte("ho")) + `","payload":"6869"}`,
			wantErr: "does not match",
		},
		{
			name:    "payload not matching its length",
			line:    `{"event":"message","source":` + testMember + `,"length":3,"sha256":"` + sumHex(hi) + `","payload":"6869"}`,
			wantErr: "does not match",
		},
		{name: "bad hex", line: `{"event":"message","source":` + testMember + `,"payload":"6g"}`, wantErr: "payload"},
		{name: "negative length", line: `{"event":"message","source":` + testMember + `,"length":-1}`, wantErr: "negative length"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := ParseEvent([]byte(tc.line))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, ev)
			}
		})
	}
}

func TestParseEventLimit(t *testing.T) {
	line := []byte(`{"event":"pong","cmd":1,"error":"` + strings.Repeat("x", 100) + `"}`)
	if _, err := parseEvent(line, len(line)); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	if _, err := parseEvent(line, len(line)-1); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("over the limit: err = %v", err)
	}
}

func TestPayloadSpec(t *testing.T) {
	tests := []struct {
		name string
		p    Payload
		want string
	}{
		{"bytes", Bytes([]byte{0, 0xff}), "00ff"},
		{"empty bytes", Bytes(nil), "-"},
		{"pattern", Pattern(10 << 20), "@10485760"},
		{"string", JavaString("hé"), "str:68c3a9"},
		{"empty string", JavaString(""), "str:-"},
		{"byte array", JavaByteArray([]byte{1}), "arr:01"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.p.spec != tc.want {
				t.Errorf("spec = %q, want %q", tc.p.spec, tc.want)
			}
		})
	}
	if b := PatternBytes(253); b[250] != 250 || b[251] != 0 || b[252] != 1 {
		t.Errorf("PatternBytes wraps wrong: %v", b[249:])
	}
}

func TestConfigArgs(t *testing.T) {
	var uid [16]byte
	copy(uid[:], must(hex.DecodeString(testUID)))
	tests := []struct {
		name    string
		cfg     Config
		want    string // substring of the joined flags
		wantErr string
	}{
		{name: "fixed port", cfg: Config{Port: 4100}, want: "-address 127.0.0.1 -port 4100 -autoBind 100 -hexLimit 65536"},
		{
			name: "membership",
			cfg:  Config{Port: 4100, Membership: &Membership{Port: 45999, Frequency: 250 * time.Millisecond, DropTime: 2 * time.Second}},
			want: "-membership -mcastPort 45999 -frequency 250 -dropTime 2000",
		},
		{
			name: "interceptors in order with sorted props",
			cfg: Config{Port: 4100, Interceptors: []Interceptor{
				{Name: Gzip, Props: map[string]string{"optionFlag": "256", "compressionMinSize": "100"}},
				{Name: FailureDetector},
			}},
			want: "-interceptor gzip:compressionMinSize=100,optionFlag=256 -interceptor tcpfd",
		},
		{
			name: "static member",
			cfg: Config{Port: 4100, Interceptors: []Interceptor{{Name: StaticMembership}},
				StaticMembers: []Member{{Host: netip.MustParseAddr("127.0.0.1"), Port: 4005, UniqueID: uid, Domain: "A"}}},
			want: "-static 127.0.0.1:4005:" + testUID + ":A",
		},
		{
			name: "local member",
			cfg:  Config{Port: 4100, LocalMember: &Member{UniqueID: uid, Domain: "B"}},
			want: "-localMember " + testUID + ":B",
		},
		{name: "property", cfg: Config{Port: 4100, Properties: []Property{{"sender", "timeout", "1000"}}}, want: "-set sender.timeout=1000"},
		{name: "throw and lifetime", cfg: Config{Port: 4100, Throw: true, MaxLifetime: time.Minute}, want: "-throw -maxLifetime 60"},
		{name: "comma in a property", cfg: Config{Interceptors: []Interceptor{{Name: Gzip, Props: map[string]string{"a": "1,2"}}}}, wantErr: "bad property"},
		{name: "bad interceptor name", cfg: Config{Interceptors: []Interceptor{{Name: "gzip:x"}}}, wantErr: "bad interceptor"},
		{name: "bad set target", cfg: Config{Properties: []Property{{"sender.x", "timeout", "1"}}}, wantErr: "bad property"},
		{
			name:    "IPv6 static member",
			cfg:     Config{StaticMembers: []Member{{Host: netip.MustParseAddr("::1"), Port: 1}}},
			wantErr: "IPv4",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args, err := tc.cfg.args()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(args, " "); !strings.Contains(got, tc.want) {
				t.Errorf("args %q lack %q", got, tc.want)
			}
		})
	}
}

func TestConfigArgsPicksPort(t *testing.T) {
	args, err := (&Config{}).args()
	if err != nil {
		t.Fatal(err)
	}
	if args[2] != "-port" || args[3] == "0" || args[4] != "-autoBind" || args[5] != "20" {
		t.Errorf("args %q", args)
	}
}

func TestQueue(t *testing.T) {
	q := newQueue[int]()
	done := make(chan struct{})
	if _, r := q.pop(time.Millisecond, done); r != popTimeout {
		t.Fatalf("empty queue: %v, want timeout", r)
	}
	got := make(chan int)
	for range 2 { // two concurrent waiters, both must be woken
		go func() {
			v, r := q.pop(time.Minute, done)
			if r != popOK {
				v = -1
			}
			got <- v
		}()
	}
	q.push(1)
	q.push(2)
	a, b := <-got, <-got
	if a+b != 3 {
		t.Fatalf("waiters got %d and %d", a, b)
	}
	q.push(3)
	close(done)
	if v, r := q.pop(time.Minute, done); r != popOK || v != 3 {
		t.Fatalf("after done with an item: %v %v", v, r)
	}
	if _, r := q.pop(time.Minute, done); r != popDone {
		t.Fatalf("after done, empty: %v", r)
	}
}

func TestTailBuffer(t *testing.T) {
	var all strings.Builder
	tb := &tailBuffer{max: 5, also: &all}
	tb.Write([]byte("abc"))
	tb.Write([]byte("defg"))
	if tb.String() != "cdefg" || all.String() != "abcdefg" {
		t.Errorf("tail %q, all %q", tb.String(), all.String())
	}
}

func TestFindToolchainNotFound(t *testing.T) {
	t.Setenv("JAVA_HOME", "")
	t.Setenv("PATH", t.TempDir())
	_, err := FindToolchain()
	var nf *NotFoundError
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &nf) || !strings.Contains(nf.Details(), "java not in") {
		t.Fatalf("err = %v, want a NotFoundError naming java", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
