package javapeer

import (
	"sync"
	"time"
)

// queue is an unbounded FIFO of events of one kind, safe for concurrent
// use, with any number of waiters.
type queue[T any] struct {
	mu     sync.Mutex
	items  []T
	notify chan struct{} // closed and replaced by every push
}

func newQueue[T any]() *queue[T] { return &queue[T]{notify: make(chan struct{})} }

func (q *queue[T]) push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	close(q.notify)
	q.notify = make(chan struct{})
	q.mu.Unlock()
}

// tryPop returns the oldest item, if any.
func (q *queue[T]) tryPop() (T, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.popLocked()
}

func (q *queue[T]) popLocked() (T, bool) {
	var zero T
	if len(q.items) == 0 {
		return zero, false
	}
	v := q.items[0]
	q.items[0] = zero
	q.items = q.items[1:]
	return v, true
}

// len returns the number of queued items.
func (q *queue[T]) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// popResult says how pop ended; the peer turns timeouts and the end of
// the process into ErrTimeout and ErrExited.
type popResult int

const (
	popOK popResult = iota
	popTimeout
	popDone
)

// pop waits up to timeout for an item. When done is closed and the queue
// is empty it returns popDone at once: nothing more will come.
func (q *queue[T]) pop(timeout time.Duration, done <-chan struct{}) (T, popResult) {
	var timer <-chan time.Time
	for {
		q.mu.Lock()
		v, ok := q.popLocked()
		ch := q.notify
		q.mu.Unlock()
		if ok {
			return v, popOK
		}
		if timer == nil {
			t := time.NewTimer(timeout)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-ch:
		case <-done:
			// Take what was pushed before the end.
			if v, ok := q.tryPop(); ok {
				return v, popOK
			}
			return v, popDone
		case <-timer:
			return v, popTimeout
		}
	}
}
