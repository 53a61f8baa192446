package server

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// Backpressure. The gateway holds nothing it has not stored: a submission
// is answered once JetStream acknowledged it, so the only memory a flood can
// grow is the requests in flight. admission bounds that, and refuses work
// the system cannot take now with an answer that says when to come back:
//
//   - 429 when too many submissions (or too many bytes of them) are in
//     flight, or when the fold is more than MaxPending events behind the
//     stream: results would go stale while the stream grows;
//   - 503 when NATS is unreachable or the data directory's disk is nearly
//     full: nothing can be stored safely. (A JetStream file store that hits
//     ENOSPC marks the stream failed until the server restarts, and Pebble
//     stops the process on a failed WAL write; refusing before the disk is
//     full keeps both usable when space returns.)
//
// Every refusal carries Retry-After. `tally submit` waits at least that
// long, with jitter, and retries the identical body: the same Nats-Msg-Id,
// so nothing is stored twice.

// refusal is an answer that sheds a submission.
type refusal struct {
	code       int
	retryAfter int // seconds
	msg        string
}

func (r *refusal) write(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(r.retryAfter))
	writeError(w, r.code, r.msg)
}

// admission decides whether the gateway takes a submission now. It is safe
// for concurrent use.
type admission struct {
	maxInFlight int
	maxBytes    int64
	maxPending  uint64
	minFree     int64 // < 0: not checked
	dir         string
	freeBytes   func(dir string) (int64, error)

	mu struct {
		sync.Mutex
		inFlight int
		bytes    int64
	}
	// parts holds each partition's backlog, partition p at index p.
	parts []partBacklog
	// folding is set once the fold has caught up with the stream as it
	// was at start (state ready): before that the backlog is a known,
	// finite catch-up, not the fold falling behind live traffic.
	folding atomic.Bool
}

// partBacklog is what one partition's fold has still to apply: stored is
// the highest stream sequence known to hold minutes (from JetStream's
// acknowledgements and the stream's state at start); applied is the fold's
// committed checkpoint; pending is what the consumer reported left after
// the last batch (it also counts minutes stations published straight to
// NATS).
type partBacklog struct {
	stored, applied, pending atomic.Uint64
}

// acquire reserves room for a request of size bytes (-1 if unknown). It
// returns nil and the caller must call release(size), or a refusal.
func (a *admission) acquire(size int64) *refusal {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mu.inFlight >= a.maxInFlight {
		return &refusal{http.StatusTooManyRequests, 1,
			fmt.Sprintf("too many submissions in flight (%d); not stored, retry the same request later", a.mu.inFlight)}
	}
	if a.mu.inFlight > 0 && a.mu.bytes+size > a.maxBytes {
		return &refusal{http.StatusTooManyRequests, 1,
			fmt.Sprintf("too many bytes of submissions in flight (%d); not stored, retry the same request later", a.mu.bytes)}
	}
	a.mu.inFlight++
	a.mu.bytes += size
	return nil
}

func (a *admission) release(size int64) {
	a.mu.Lock()
	a.mu.inFlight--
	a.mu.bytes -= size
	a.mu.Unlock()
}

// backlog returns how many events the folds have still to apply, summed
// over the partitions.
func (a *admission) backlog() uint64 {
	var sum uint64
	for p := range a.parts {
		b := &a.parts[p]
		stored, applied := b.stored.Load(), b.applied.Load()
		var n uint64
		if stored > applied {
			n = stored - applied
		}
		sum += max(n, b.pending.Load())
	}
	return sum
}

// pendingTotal returns the messages the consumers reported left, summed.
func (a *admission) pendingTotal() uint64 {
	var sum uint64
	for p := range a.parts {
		sum += a.parts[p].pending.Load()
	}
	return sum
}

// noteStored records that partition p's stream holds minutes up to seq.
func (a *admission) noteStored(p int, seq uint64) {
	b := &a.parts[p]
	for {
		cur := b.stored.Load()
		if seq <= cur || b.stored.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// check returns why the system cannot store a submission now, or nil.
// natsUp reports whether the NATS connection is up.
func (a *admission) check(natsUp bool) *refusal {
	if !natsUp {
		return &refusal{http.StatusServiceUnavailable, 2,
			"NATS is unavailable (reconnecting); minutes not stored, retry the same request"}
	}
	if a.folding.Load() {
		if b := a.backlog(); b > a.maxPending {
			// About the time the fold needs to halve the excess.
			wait := min(30, 1+int((b-a.maxPending)/20_000))
			return &refusal{http.StatusTooManyRequests, wait,
				fmt.Sprintf("the fold is %d events behind the stream (bound %d); minutes not stored, retry the same request later", b, a.maxPending)}
		}
	}
	if a.minFree >= 0 && a.freeBytes != nil {
		free, err := a.freeBytes(a.dir)
		if err == nil && free < a.minFree {
			return &refusal{http.StatusServiceUnavailable, 10,
				fmt.Sprintf("disk full: %d bytes free on the data directory's filesystem, tally needs at least %d to store minutes safely; minutes not stored, retry the same request once space is freed", free, a.minFree)}
		}
	}
	return nil
}
