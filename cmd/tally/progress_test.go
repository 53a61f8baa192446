package main

import (
	"fmt"
	"testing"
	"time"
)

// stallWindow bounds every wait of these tests. A wait fails only when what
// it waits on (the fold's applied_seq, the stream, the output of a process)
// has not moved at all for this long: a slow or busy machine makes a test
// take longer, never fail. It is generous because a test that fails here
// has found a server that stands still, and the cost of waiting for that
// verdict is paid only then.
const stallWindow = 2 * time.Minute

// stallWatch measures how long an observed state has stayed the same.
type stallWatch struct {
	state string
	since time.Time
}

// newStallWatch starts a watch: the first observation counts as progress.
func newStallWatch() *stallWatch { return &stallWatch{since: time.Now()} }

// idle records the current state (anything formatted with %v) and returns
// how long it has been unchanged.
func (w *stallWatch) idle(state ...any) time.Duration {
	s := fmt.Sprint(state...)
	if s != w.state {
		w.state, w.since = s, time.Now()
	}
	return time.Since(w.since)
}

// stalled reports whether the state has not changed for stallWindow.
func (w *stallWatch) stalled(state ...any) bool { return w.idle(state...) > stallWindow }

// waitFor polls cond until it holds, failing the test when progress (what
// the caller returns as the second value) stands still for stallWindow.
func waitFor(t testing.TB, what string, cond func() (bool, any)) {
	t.Helper()
	w := newStallWatch()
	for {
		ok, state := cond()
		if ok {
			return
		}
		if w.stalled(state) {
			t.Fatalf("%s: no progress for %s (last state %v)", what, stallWindow, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stalledOutput returns a channel that is closed once the buffers (a
// process's output) have not grown for stallWindow. The watching goroutine
// ends then, or when the test ends.
func stalledOutput(t testing.TB, bufs ...*syncBuffer) <-chan struct{} {
	ch := make(chan struct{})
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		w := newStallWatch()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			n := 0
			for _, b := range bufs {
				n += len(b.String())
			}
			if w.stalled(n) {
				close(ch)
				return
			}
		}
	}()
	return ch
}
