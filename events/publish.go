package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/tallyvn/tally/tally"
)

// ErrNotStored is returned (wrapped) when JetStream did not acknowledge
// every event: the caller must not report the submission as stored.
var ErrNotStored = errors.New("events: not stored")

// Publisher publishes validated minutes to the minutes stream, or to the
// stream of each minutes' partition. It is safe for concurrent use.
type Publisher struct {
	js jetstream.JetStream
	e  *tally.Election
	n  int // partitions

	gc *GroupCommit // nil: every minutes is published on its own

	mu      sync.Mutex
	streams map[string]jetstream.Stream // looked up at the first duplicate
}

// NewPublisher returns a publisher for election e over js, to its one
// minutes stream.
func NewPublisher(js jetstream.JetStream, e *tally.Election) *Publisher {
	return NewPartitionedPublisher(js, e, 1)
}

// NewPartitionedPublisher returns a publisher for election e over js whose
// minutes are split into n partitions (PartitionStreamConfigs): each
// minutes goes to its province's partition stream.
func NewPartitionedPublisher(js jetstream.JetStream, e *tally.Election, n int) *Publisher {
	return &Publisher{js: js, e: e, n: max(n, 1), streams: map[string]jetstream.Stream{}}
}

// Published says where a submission landed.
type Published struct {
	// Seq is the stream sequence of the last event; with partitions, the
	// sum of Positions, for display only (CONTRACT §6 v2).
	Seq uint64
	// Positions holds, with partitions, the stream sequence of the last
	// event in each partition the submission touched; nil without.
	Positions  map[int]uint64
	Duplicates int // events the stream already held (same Nats-Msg-Id, same subject and payload)
	// Claimed counts events whose Nats-Msg-Id the stream held for another
	// message (a station publishing straight to NATS chose it): they were
	// published again without one, so they are stored all the same.
	Claimed int
}

// publishWindow bounds the async publishes in flight per call, well under
// nats.go's default limit of outstanding async publishes.
const publishWindow = 512

// GroupCommit makes p store the minutes of concurrent Publish calls
// together, in JetStream atomic batches through gc (which the caller runs),
// whenever a call holds at most a batch's worth. It must be called before
// the first Publish. A stream that refuses a batch (one created without
// AllowAtomicPublish, or a Nats-Msg-Id it already holds) gets that call's
// minutes one by one, as without group commit.
func (p *Publisher) GroupCommit(gc *GroupCommit) { p.gc = gc }

// Publish stores ms on the stream and returns once JetStream acknowledged
// every one of them. REQUIRES: every minutes passed Election.Check.
// On error some of ms may be stored: retrying the same minutes is safe,
// they carry the same Nats-Msg-Id.
func (p *Publisher) Publish(ctx context.Context, ms []tally.Minutes) (Published, error) {
	msgs := make([]*nats.Msg, len(ms))
	parts := make([]int, len(ms))
	var buf []byte
	for i := range ms {
		m := &ms[i]
		s, ok := p.e.StationIndex(m.Station)
		if !ok {
			return Published{}, fmt.Errorf("publish minutes %d: %w %q", i, tally.ErrUnknownStation, m.Station)
		}
		buf = AppendBinary(buf[:0], m)
		payload := append([]byte(nil), buf...)
		msgs[i] = &nats.Msg{
			Subject: Subject(p.e, s, m.Contest),
			Data:    payload,
			Header:  nats.Header{jetstream.MsgIDHeader: []string{MsgID(m, payload)}},
		}
		parts[i] = StationPartition(p.e, s, p.n)
	}
	var out Published
	if p.n > 1 {
		out.Positions = map[int]uint64{}
	}
	var err error
	if p.gc != nil && len(ms) <= p.gc.max {
		err = p.publishGrouped(ctx, msgs, parts, &out)
	} else {
		err = p.publishAsync(ctx, msgs, parts, nil, &out)
	}
	if err != nil {
		return Published{}, err
	}
	for _, seq := range out.Positions {
		out.Seq += seq
	}
	return out, nil
}

// stored notes that a minutes of partition part is stored at seq.
func (out *Published) stored(part int, seq uint64) {
	if out.Positions != nil {
		out.Positions[part] = max(out.Positions[part], seq)
	} else {
		out.Seq = max(out.Seq, seq)
	}
}

// publishGrouped stores msgs through the group committer, one batch per
// partition touched; a partition whose stream refuses the batch gets its
// minutes one by one.
func (p *Publisher) publishGrouped(ctx context.Context, msgs []*nats.Msg, parts []int, out *Published) error {
	byPart := map[int][]int{} // partition → indexes into msgs
	for i, part := range parts {
		byPart[part] = append(byPart[part], i)
	}
	type result struct {
		part int
		idx  []int
		acks []jetstream.PubAck
		err  error
	}
	results := make(chan result, len(byPart))
	for part, idx := range byPart {
		go func() {
			batch := make([]*nats.Msg, len(idx))
			for k, i := range idx {
				batch[k] = msgs[i]
			}
			acks, err := p.gc.Store(ctx, PartitionStreamName(p.e.ID, part, p.n), batch)
			results <- result{part, idx, acks, err}
		}()
	}
	var first error
	for range byPart {
		r := <-results
		switch {
		case r.err == nil:
			for k, ack := range r.acks {
				if err := p.acknowledged(ctx, msgs[r.idx[k]], ack, r.part, out); err != nil && first == nil {
					first = fmt.Errorf("%w: minutes %d: %v", ErrNotStored, r.idx[k], err)
				}
			}
		case errors.Is(r.err, ErrBatchRefused):
			sub := make([]*nats.Msg, len(r.idx))
			subParts := make([]int, len(r.idx))
			for k, i := range r.idx {
				sub[k], subParts[k] = msgs[i], parts[i]
			}
			if err := p.publishAsync(ctx, sub, subParts, r.idx, out); err != nil && first == nil {
				first = err
			}
		default:
			if first == nil {
				first = fmt.Errorf("%w: minutes %d: %v", ErrNotStored, r.idx[0], r.err)
			}
		}
	}
	return first
}

// publishAsync stores msgs one by one, pipelined (publishWindow at a
// time). Errors number msgs[i] as the request's minutes idx[i] (i when idx
// is nil).
func (p *Publisher) publishAsync(ctx context.Context, msgs []*nats.Msg, parts []int, idx []int, out *Published) error {
	num := func(i int) int {
		if idx == nil {
			return i
		}
		return idx[i]
	}
	futures := make([]jetstream.PubAckFuture, 0, min(len(msgs), publishWindow))
	for start := 0; start < len(msgs); start += publishWindow {
		futures = futures[:0]
		for i := start; i < min(start+publishWindow, len(msgs)); i++ {
			f, err := p.js.PublishMsgAsync(msgs[i], jetstream.WithExpectStream(PartitionStreamName(p.e.ID, parts[i], p.n)))
			if err != nil {
				return fmt.Errorf("%w: publish minutes %d: %v", ErrNotStored, num(i), err)
			}
			futures = append(futures, f)
		}
		for k, f := range futures {
			i := start + k
			select {
			case ack := <-f.Ok():
				if err := p.acknowledged(ctx, f.Msg(), *ack, parts[i], out); err != nil {
					return fmt.Errorf("%w: minutes %d: %v", ErrNotStored, num(i), err)
				}
			case err := <-f.Err():
				return fmt.Errorf("%w: minutes %d: %v", ErrNotStored, num(i), err)
			case <-ctx.Done():
				return fmt.Errorf("%w: minutes %d: no acknowledgement: %v", ErrNotStored, num(i), ctx.Err())
			}
		}
	}
	return nil
}

// acknowledged notes in out the stream's acknowledgement of msg, of
// partition part. A duplicate acknowledgement says the id is taken, not
// that these minutes are stored: it checks what the stream holds.
func (p *Publisher) acknowledged(ctx context.Context, msg *nats.Msg, ack jetstream.PubAck, part int, out *Published) error {
	seq := ack.Sequence
	if ack.Duplicate {
		var same bool
		var err error
		if seq, same, err = p.duplicate(ctx, msg, ack.Stream, ack.Sequence); err != nil {
			return err
		}
		if same {
			out.Duplicates++
		} else {
			out.Claimed++
		}
	}
	out.stored(part, seq)
	return nil
}

// duplicate handles a duplicate acknowledgement of msg at seq: when the
// stream holds msg there (same subject, same payload) it is stored, same
// is true. Otherwise another publisher claimed msg's Nats-Msg-Id first,
// and msg is published again without an id; the sequence returned is then
// where it is stored.
func (p *Publisher) duplicate(ctx context.Context, msg *nats.Msg, stream string, seq uint64) (uint64, bool, error) {
	p.mu.Lock()
	st := p.streams[stream]
	p.mu.Unlock()
	if st == nil {
		var err error
		if st, err = p.js.Stream(ctx, stream); err != nil {
			return 0, false, fmt.Errorf("check a duplicate: look up stream %s: %w", stream, err)
		}
		p.mu.Lock()
		p.streams[stream] = st
		p.mu.Unlock()
	}
	stored, err := st.GetMsg(ctx, seq)
	if err != nil {
		return 0, false, fmt.Errorf("check a duplicate: read message %d: %w", seq, err)
	}
	if stored.Subject == msg.Subject && bytes.Equal(stored.Data, msg.Data) {
		return seq, true, nil
	}
	ack, err := p.js.PublishMsg(ctx, &nats.Msg{Subject: msg.Subject, Data: msg.Data}, jetstream.WithExpectStream(stream))
	if err != nil {
		return 0, false, fmt.Errorf("its message id %q was taken by message %d, and publishing it again failed: %w", msg.Header.Get(jetstream.MsgIDHeader), seq, err)
	}
	return ack.Sequence, false, nil
}
