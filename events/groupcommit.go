package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Group commit.
//
// With fsync on every write (the embedded server's SyncAlways, a cluster's
// sync_interval: always), one stream stores one message per fsync, and a
// disk does a few thousand fsyncs a second. A JetStream atomic batch
// (nats-server 2.12+, stream option AllowAtomicPublish) is stored with a
// fixed number of fsyncs whatever its size: measured with strace on the
// embedded nats-server 2.15.2, 3,000 single publishes made 3,002 fsyncs,
// while 2,000 batches of 10, 200 of 100 and 20 of 1,000 made 8,003, 803 and
// 83 (about 4 a batch).
//
// A GroupCommit gathers the messages that concurrent callers send to one
// stream while that stream's previous batch is being stored, and stores
// them as the next batch: under load a batch holds whatever arrived during
// one commit, with no artificial delay. Fewer than MinAtomicBatch messages
// are published one by one (one fsync each), all in flight together.

// ErrBatchRefused is returned (wrapped) by [GroupCommit.Store] when the
// stream refused the batch as a whole without storing any of it, e.g.
// because one of its messages carried a Nats-Msg-Id the stream already
// holds, or the stream does not allow atomic publishing. The caller should
// publish its messages one by one instead.
var ErrBatchRefused = errors.New("events: atomic batch refused")

// MaxGroupCommit is the most messages a GroupCommit puts in one batch:
// nats-server's default limit on an atomic batch's size.
const MaxGroupCommit = 1000

// GroupCommit stores messages of concurrent callers in JetStream atomic
// batches, one stream at a time. Create it with [NewGroupCommit], run
// [GroupCommit.Run], and call [GroupCommit.Store] from any goroutine.
type GroupCommit struct {
	// OnCommit, when set before Run, is called after each commit with
	// the number of messages it stored together and whether as one atomic
	// batch (for metrics).
	OnCommit func(n int, atomic bool)

	js      jetstream.JetStream
	max     int
	timeout time.Duration

	in   chan *commitReq
	done chan struct{} // closed when Run returns
}

type commitReq struct {
	ctx    context.Context
	stream string
	msgs   []*nats.Msg
	acks   []jetstream.PubAck
	err    error
	done   chan struct{}
}

// NewGroupCommit returns a group committer over js whose batches hold at
// most maxBatch messages (MaxGroupCommit when 0 or above it) and whose
// commits wait at most timeout for the stream's answer.
func NewGroupCommit(js jetstream.JetStream, maxBatch int, timeout time.Duration) *GroupCommit {
	if maxBatch <= 0 || maxBatch > MaxGroupCommit {
		maxBatch = MaxGroupCommit
	}
	return &GroupCommit{js: js, max: maxBatch, timeout: timeout, in: make(chan *commitReq), done: make(chan struct{})}
}

// Run gathers and commits batches until ctx ends, one committer goroutine
// per stream, and returns once every batch it started has been answered.
// Store calls made after Run returned fail.
func (g *GroupCommit) Run(ctx context.Context) error {
	defer close(g.done)
	var wg sync.WaitGroup
	defer wg.Wait()
	streams := map[string]chan *commitReq{}
	defer func() {
		for _, ch := range streams {
			close(ch)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-g.in:
			ch := streams[r.stream]
			if ch == nil {
				ch = make(chan *commitReq, 4*MaxGroupCommit)
				streams[r.stream] = ch
				wg.Add(1)
				go func() {
					defer wg.Done()
					g.commitLoop(ch)
				}()
			}
			ch <- r
		}
	}
}

// Store stores msgs, every one bound for stream, and returns the stream's
// acknowledgement of each, in one atomic batch with other callers'
// messages, or one by one when few are waiting. An acknowledgement may
// say Duplicate: the stream holds a message with that Nats-Msg-Id at
// Sequence, which may or may not be this one (the caller checks). On an
// error wrapping ErrBatchRefused none of msgs is stored; on another error
// they may or may not be.
func (g *GroupCommit) Store(ctx context.Context, stream string, msgs []*nats.Msg) ([]jetstream.PubAck, error) {
	if len(msgs) > g.max {
		return nil, fmt.Errorf("%w: %d messages, more than a batch holds (%d)", ErrBatchRefused, len(msgs), g.max)
	}
	r := &commitReq{ctx: ctx, stream: stream, msgs: msgs, done: make(chan struct{})}
	select {
	case g.in <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-g.done:
		return nil, errors.New("events: group commit stopped")
	}
	select {
	case <-r.done:
		return r.acks, r.err
	case <-ctx.Done():
		// The batch may still be stored; its answer is dropped.
		return nil, ctx.Err()
	}
}

// commitLoop stores the requests of one stream, gathering into each batch
// the requests queued while the previous batch was being stored.
func (g *GroupCommit) commitLoop(ch chan *commitReq) {
	var carry *commitReq
	for {
		r := carry
		carry = nil
		if r == nil {
			var ok bool
			if r, ok = <-ch; !ok {
				return
			}
		}
		batch := []*commitReq{r}
		n := len(r.msgs)
	gather:
		for n < g.max {
			select {
			case r, ok := <-ch:
				if !ok {
					break gather
				}
				if n+len(r.msgs) > g.max {
					carry = r
					break gather
				}
				batch = append(batch, r)
				n += len(r.msgs)
			default:
				break gather
			}
		}
		g.commit(batch, n)
	}
}

// batchAck is the answer to an atomic batch's commit: the sequence of its
// last message and how many it stored, or why it stored none.
type batchAck struct {
	Seq   uint64 `json:"seq"`
	Count int    `json:"count"`
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// MinAtomicBatch is the fewest messages a GroupCommit stores as an atomic
// batch. On one server an atomic batch is staged in files of its own,
// which costs about four fsyncs; fewer messages are cheaper one by one.
const MinAtomicBatch = 8

// commit stores the n messages of batch's requests and answers each one.
// It returns once they are stored (or refused): requests arriving
// meanwhile wait for the next batch, which is what gathers them.
func (g *GroupCommit) commit(batch []*commitReq, n int) {
	// Requests whose caller gave up are dropped before they are sent.
	live := batch[:0]
	for _, r := range batch {
		if r.ctx.Err() != nil {
			r.err = r.ctx.Err()
			close(r.done)
			n -= len(r.msgs)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	batch = live
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	if g.OnCommit != nil {
		defer g.OnCommit(n, n >= MinAtomicBatch)
	}
	if n < MinAtomicBatch {
		g.storeEach(ctx, batch)
	} else {
		first, err := g.storeAtomic(ctx, batch, n)
		for _, r := range batch {
			r.err = err
			if err == nil {
				r.acks = make([]jetstream.PubAck, len(r.msgs))
				for i := range r.acks {
					r.acks[i] = jetstream.PubAck{Stream: r.stream, Sequence: first}
					first++
				}
			}
		}
	}
	for _, r := range batch {
		close(r.done)
	}
}

// storeEach publishes the messages of batch one by one, in order, all in
// flight together, and sets each request's answer.
func (g *GroupCommit) storeEach(ctx context.Context, batch []*commitReq) {
	futures := make([][]jetstream.PubAckFuture, len(batch))
	for k, r := range batch {
		for _, m := range r.msgs {
			f, err := g.js.PublishMsgAsync(m)
			if err != nil {
				r.err = fmt.Errorf("%w: publish: %v", ErrNotStored, err)
				break
			}
			futures[k] = append(futures[k], f)
		}
	}
	for k, r := range batch {
		if r.err != nil {
			continue
		}
		r.acks = make([]jetstream.PubAck, len(r.msgs))
		for i, f := range futures[k] {
			select {
			case ack := <-f.Ok():
				r.acks[i] = *ack
			case err := <-f.Err():
				r.err = fmt.Errorf("%w: %v", ErrNotStored, err)
			case <-ctx.Done():
				r.err = fmt.Errorf("%w: no acknowledgement: %v", ErrNotStored, ctx.Err())
			}
			if r.err != nil {
				r.acks = nil
				break
			}
		}
	}
}

// storeAtomic publishes the n messages of batch as one atomic batch and
// returns the stream sequence of the first.
func (g *GroupCommit) storeAtomic(ctx context.Context, batch []*commitReq, n int) (uint64, error) {
	nc := g.js.Conn()
	id := nuid.Next()
	k := 0
	var reply *nats.Msg
	for _, r := range batch {
		for _, m := range r.msgs {
			k++
			bm := &nats.Msg{Subject: m.Subject, Data: m.Data, Header: nats.Header{}}
			for h, v := range m.Header {
				bm.Header[h] = v
			}
			bm.Header.Set("Nats-Batch-Id", id)
			bm.Header.Set("Nats-Batch-Sequence", strconv.Itoa(k))
			if k < n {
				if err := nc.PublishMsg(bm); err != nil {
					return 0, fmt.Errorf("%w: publish message %d of batch %s: %v", ErrBatchRefused, k, id, err)
				}
				continue
			}
			bm.Header.Set("Nats-Batch-Commit", "1")
			var err error
			if reply, err = nc.RequestMsgWithContext(ctx, bm); err != nil {
				return 0, fmt.Errorf("%w: commit batch %s of %d: %v", ErrNotStored, id, n, err)
			}
		}
	}
	ack, err := parseAck(reply.Data)
	if err != nil {
		// An atomic batch the stream answered with an error is stored
		// not at all (e.g. a Nats-Msg-Id it already holds, code 10201).
		return 0, fmt.Errorf("%w: batch %s of %d: %v", ErrBatchRefused, id, n, err)
	}
	if ack.Count != n {
		return 0, fmt.Errorf("%w: batch %s of %d: the stream stored %d", ErrNotStored, id, n, ack.Count)
	}
	return ack.Seq - uint64(n) + 1, nil
}

// parseAck reads a stream's answer to a batch commit.
func parseAck(data []byte) (batchAck, error) {
	var ack batchAck
	if err := json.Unmarshal(data, &ack); err != nil {
		return ack, fmt.Errorf("unreadable acknowledgement %q: %v", data, err)
	}
	if ack.Error != nil {
		return ack, fmt.Errorf("%s (code %d)", ack.Error.Description, ack.Error.ErrCode)
	}
	if ack.Seq == 0 {
		return ack, fmt.Errorf("acknowledgement without a sequence: %q", data)
	}
	return ack, nil
}
