package farm

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/wasmfarm/wasmfarm/tribes"
)

// loopbackCluster starts n members on real TCP over 127.0.0.1, with a
// static membership naming all of them.
func loopbackCluster(tb testing.TB, n int, edit func(*Config), fake bool) []*member {
	tb.Helper()
	var all []*tribes.Member
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		ap := netip.MustParseAddrPort(l.Addr().String())
		l.Close()
		all = append(all, &tribes.Member{Host: ap.Addr(), Port: int(ap.Port()), SecurePort: -1, UDPPort: -1, UniqueID: tribes.NewUniqueID()})
	}
	var ms []*member
	for i, self := range all {
		st, err := tribes.NewStatic(tribes.StaticConfig{Members: all, Frequency: 100 * time.Millisecond, DropTime: 2 * time.Second})
		if err != nil {
			tb.Fatal(err)
		}
		tc := tribes.LocalConfig()
		tc.Receiver.Port = self.Port
		tc.Receiver.AutoBind = 0
		tc.UniqueID = self.UniqueID
		tc.Membership = st
		tc.Interceptors = []tribes.Interceptor{}
		var h Host
		if fake {
			h = &fakeHost{}
		}
		ms = append(ms, newMemberOnHost(tb, tc, string(rune('a'+i)), edit, h))
	}
	for _, m := range ms {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := m.ch.AwaitMembers(ctx, n-1); err != nil {
			tb.Fatalf("%s sees %d members: %v", m.name, len(m.ch.Members()), err)
		}
		cancel()
	}
	return ms
}

// BenchmarkDeploy10MiB deploys a 10 MiB module (the counter app padded
// with a custom section) on 3 members, alternating two versions so that
// every member deploys each time: deploy here, transfer to two members,
// their verification and deploy, results. MB/s counts the module once.
// The versions differ only in the padding, which is not compiled, so after
// the first deploy the code comes from the shared compilation cache: this
// measures the farm, not the compiler ("wasmfarm bench farm" measures cold
// deploys of separate processes).
func BenchmarkDeploy10MiB(b *testing.B) {
	const size = 10 << 20
	mods := [2][]byte{counterModule(size, 1), counterModule(size, 2)}
	run := func(b *testing.B, ms []*member, serve bool) {
		b.SetBytes(int64(len(mods[0])))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			rep, err := ms[0].d.Deploy(b.Context(), "/big", bytes.NewReader(mods[i%2]), DeployOptions{})
			if err != nil || len(rep.Members) != 3 {
				b.Fatalf("%v %s", err, reportString(rep))
			}
		}
		b.StopTimer()
		if serve {
			mustServe(b, ms, "/big", "")
		}
	}
	for _, chunk := range []int{64 << 10, DefaultChunkSize, 1 << 20} {
		b.Run("mem/chunk="+sizeName(chunk), func(b *testing.B) {
			_, ms := newCluster(b, 3, func(_ string, c *Config) { c.ChunkSize = chunk })
			run(b, ms, true)
		})
	}
	if testing.Short() {
		b.Log("loopback sub-benchmark skipped with -short: it opens TCP sockets")
		return
	}
	b.Run("loopback/chunk="+sizeName(DefaultChunkSize), func(b *testing.B) {
		run(b, loopbackCluster(b, 3, func(c *Config) { c.ChunkSize = DefaultChunkSize }, false), true)
	})
	// The transfer alone: a host that compiles nothing, to compare with
	// "wasmfarm bench transport" (which sends without writing to disk).
	for _, chunk := range []int{DefaultChunkSize, 1 << 20} {
		b.Run("loopback-nocompile/chunk="+sizeName(chunk), func(b *testing.B) {
			run(b, loopbackCluster(b, 3, func(c *Config) { c.ChunkSize = chunk }, true), false)
		})
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + "MiB"
	}
	return strconv.Itoa(n>>10) + "KiB"
}
