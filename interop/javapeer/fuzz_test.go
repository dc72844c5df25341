package javapeer

import (
	"crypto/sha256"
	"testing"
)

// FuzzParseEvent feeds arbitrary lines to the event parser: it must never
// panic, and what it accepts must be self-consistent.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"event":"ready","member":` + testMember + `,"startLevel":3}`))
	f.Add([]byte(`{"event":"message","options":7,"source":` + testMember + `,"length":2,"sha256":"` + sumHex([]byte("hi")) + `","payload":"6869"}`))
	f.Add([]byte(`{"event":"members","cmd":1,"members":[` + testMember + `]}`))
	f.Add([]byte(`{"event":"sendResult","cmd":2,"ok":true,"msgId":"` + testUID + `"}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, line []byte) {
		ev, err := parseEvent(line, 4096)
		if err != nil {
			return
		}
		if len(line) > 4096 || ev.Kind == "" || ev.Cmd < 0 {
			t.Fatalf("accepted %q as %+v", line, ev)
		}
		for _, m := range append([]Member{ev.Member, ev.Message.Source}, ev.Members...) {
			if m.Port < 0 || m.Port > 65535 {
				t.Fatalf("port %d accepted", m.Port)
			}
		}
		msg := ev.Message
		if msg.Payload != nil && (len(msg.Payload) != msg.Length || sha256.Sum256(msg.Payload) != msg.SHA256) {
			t.Fatalf("inconsistent payload accepted: %+v", msg)
		}
		if msg.WirePayload != nil && len(msg.WirePayload) != msg.WireLength {
			t.Fatalf("inconsistent wire payload accepted: %+v", msg)
		}
	})
}
