package tribes

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// TestSendRacingDisconnect: sends to a member that Disconnect closes again
// and again (a member leaving under traffic, or the failure detector
// dropping it) neither crash the process nor fail with ErrSenderClosed
// while the sender is open. An asynchronous send used to kick its
// destination's writer after releasing the stream's lock, so a Disconnect
// in between closed the kick channel under it: "send on closed channel".
//
// The race needs a loop; it is bounded by a short deadline. Nothing
// listens at the member's address, so the writers' dials fail at once and
// the loop opens no connection; asynchronous sends are queued all the same
// and must succeed.
func TestSendRacingDisconnect(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	to := testMember(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	s, _ := startSender(t, SenderConfig{MaxRetryAttempts: -1, Timeout: time.Second})

	stop := make(chan struct{})
	failed := make(chan error, 4)
	var wg sync.WaitGroup
	for _, opts := range []Options{OptAsynchronous, OptAsynchronous, OptAsynchronous, 0} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var first error
			for {
				select {
				case <-stop:
					if first != nil {
						failed <- first
					}
					return
				default:
				}
				err := s.Send(context.Background(), []*Member{to}, &Message{Options: opts, Data: []byte("x")})
				// An asynchronous send only queues; a synchronous one
				// fails to dial, but not because the sender is closed.
				if first == nil && ((opts.Has(OptAsynchronous) && err != nil) || errors.Is(err, ErrSenderClosed)) {
					first = err
				}
			}
		}()
	}
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		s.Disconnect(to)
	}
	close(stop)
	wg.Wait()
	close(failed)
	for err := range failed {
		t.Errorf("send racing Disconnect: %v", err)
	}
}
