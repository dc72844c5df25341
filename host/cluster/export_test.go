package cluster

import (
	"time"

	"github.com/wasmfarm/wasmfarm/host/session"
	"github.com/wasmfarm/wasmfarm/tribes"
)

// Encoders for the fuzz seeds.

func SeedMessages() [][]byte {
	h := hello{wantReply: true, route: "jvm_a", contexts: []string{"/x", "/counter"}}
	var out [][]byte
	out = append(out, h.append(nil))
	out = append(out, append(header(nil, msgDelta, "/x"), 1, 1, 3, 'A', '.', 'a', 0, 2, 0, 0))
	// A session created and invalidated by one request, unknown here.
	ci := session.Delta{ID: "N.a", Created: true, CreationTime: 1, Accessed: 1, Invalidated: true}
	b, _ := ci.AppendBinary(header(nil, msgDelta, "/x"))
	out = append(out, b)
	e := header(nil, msgExpire, "/x")
	e = appendStr(e, "ABC.jvm_a")
	out = append(out, append(e, reasonExpired))
	out = append(out, append(e[:len(e):len(e)], reasonReplicaExpired))
	out = append(out, append(e[:len(e):len(e)], 9)) // an unknown reason
	g := appendU64(header(nil, msgGetAll, "/x"), 7)
	out = append(out, append(g, 0))
	p := proxyRec{id: "ABC.jvm_a"}
	p.primary[0] = 1
	out = append(out, p.appendBody(header(nil, msgProxy, "/x")))
	r := header(nil, msgRename, "/x")
	r = appendStr(appendStr(r, "A.a"), "A.b")
	out = append(out, r)
	f := appendU64(header(nil, msgFetch, "/x"), 9)
	out = append(out, appendStr(f, "ABC.jvm_a"))
	b = header(nil, msgBackup, "/x")
	b = append(b, make([]byte, 32)...)
	out = append(out, append(b, 1, 3, 'A', '.', 'a', 2, 2, 2, 0))
	return out
}

// SetGreetPauses replaces the pauses between hellos for a test and returns
// the function that restores them.
func SetGreetPauses(p []time.Duration) (restore func()) {
	old := greetPauses.Swap(&p)
	return func() { greetPauses.Store(old) }
}

// DecodeHello decodes a hello message; ok is false for any other message.
func DecodeHello(data []byte) (wantReply bool, route string, contexts []string, ok bool) {
	p, ok, err := parse(data)
	if !ok || err != nil || p.typ != msgHello {
		return false, "", nil, false
	}
	h, err := decodeHello(p.body)
	if err != nil {
		return false, "", nil, false
	}
	return h.wantReply, h.route, h.contexts, true
}

// SetStateBlockBytes replaces the size bound of a state-transfer block for
// a test and returns the function that restores it.
func SetStateBlockBytes(n int) (restore func()) {
	old := stateBlockBytes.Swap(int64(n))
	return func() { stateBlockBytes.Store(old) }
}

// Location returns where a BackupManager records that session id lives.
func Location(m *BackupManager, id string) (primary, backup tribes.UniqueID, ok bool) {
	e, ok := m.role(id)
	return e.primary, e.backup, ok
}
