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

// Publisher publishes validated minutes to the minutes stream.
// It is safe for concurrent use.
type Publisher struct {
	js jetstream.JetStream
	e  *tally.Election

	mu     sync.Mutex
	stream jetstream.Stream // looked up at the first duplicate
}

// NewPublisher returns a publisher for election e over js.
func NewPublisher(js jetstream.JetStream, e *tally.Election) *Publisher {
	return &Publisher{js: js, e: e}
}

// Published says where a submission landed.
type Published struct {
	Seq        uint64 // stream sequence of the last event
	Duplicates int    // events the stream already held (same Nats-Msg-Id, same subject and payload)
	// Claimed counts events whose Nats-Msg-Id the stream held for another
	// message (a station publishing straight to NATS chose it): they were
	// published again without one, so they are stored all the same.
	Claimed int
}

// publishWindow bounds the async publishes in flight per call, well under
// nats.go's default limit of outstanding async publishes.
const publishWindow = 512

// Publish stores ms on the stream and returns once JetStream acknowledged
// every one of them. REQUIRES: every minutes passed Election.Check.
// On error some of ms may be stored: retrying the same minutes is safe,
// they carry the same Nats-Msg-Id.
func (p *Publisher) Publish(ctx context.Context, ms []tally.Minutes) (Published, error) {
	var out Published
	futures := make([]jetstream.PubAckFuture, 0, min(len(ms), publishWindow))
	var buf []byte
	for start := 0; start < len(ms); start += publishWindow {
		futures = futures[:0]
		for i := start; i < min(start+publishWindow, len(ms)); i++ {
			m := &ms[i]
			s, ok := p.e.StationIndex(m.Station)
			if !ok {
				return Published{}, fmt.Errorf("publish minutes %d: %w %q", i, tally.ErrUnknownStation, m.Station)
			}
			buf = AppendBinary(buf[:0], m)
			payload := append([]byte(nil), buf...)
			msg := &nats.Msg{
				Subject: Subject(p.e, s, m.Contest),
				Data:    payload,
				Header:  nats.Header{jetstream.MsgIDHeader: []string{MsgID(m, payload)}},
			}
			f, err := p.js.PublishMsgAsync(msg, jetstream.WithExpectStream(StreamName(p.e.ID)))
			if err != nil {
				return Published{}, fmt.Errorf("%w: publish minutes %d: %v", ErrNotStored, i, err)
			}
			futures = append(futures, f)
		}
		for k, f := range futures {
			select {
			case ack := <-f.Ok():
				seq := ack.Sequence
				if ack.Duplicate {
					// A duplicate ack says the id is taken, not that these
					// minutes are stored: check what the stream holds.
					var same bool
					var err error
					if seq, same, err = p.duplicate(ctx, f.Msg(), ack.Sequence); err != nil {
						return Published{}, fmt.Errorf("%w: minutes %d: %v", ErrNotStored, start+k, err)
					}
					if same {
						out.Duplicates++
					} else {
						out.Claimed++
					}
				}
				out.Seq = max(out.Seq, seq)
			case err := <-f.Err():
				return Published{}, fmt.Errorf("%w: minutes %d: %v", ErrNotStored, start+k, err)
			case <-ctx.Done():
				return Published{}, fmt.Errorf("%w: minutes %d: no acknowledgement: %v", ErrNotStored, start+k, ctx.Err())
			}
		}
	}
	return out, nil
}

// duplicate handles a duplicate acknowledgement of msg at seq: when the
// stream holds msg there (same subject, same payload) it is stored, same
// is true. Otherwise another publisher claimed msg's Nats-Msg-Id first,
// and msg is published again without an id; the sequence returned is then
// where it is stored.
func (p *Publisher) duplicate(ctx context.Context, msg *nats.Msg, seq uint64) (uint64, bool, error) {
	p.mu.Lock()
	st := p.stream
	p.mu.Unlock()
	if st == nil {
		var err error
		if st, err = p.js.Stream(ctx, StreamName(p.e.ID)); err != nil {
			return 0, false, fmt.Errorf("check a duplicate: look up the stream: %w", err)
		}
		p.mu.Lock()
		p.stream = st
		p.mu.Unlock()
	}
	stored, err := st.GetMsg(ctx, seq)
	if err != nil {
		return 0, false, fmt.Errorf("check a duplicate: read message %d: %w", seq, err)
	}
	if stored.Subject == msg.Subject && bytes.Equal(stored.Data, msg.Data) {
		return seq, true, nil
	}
	ack, err := p.js.PublishMsg(ctx, &nats.Msg{Subject: msg.Subject, Data: msg.Data}, jetstream.WithExpectStream(StreamName(p.e.ID)))
	if err != nil {
		return 0, false, fmt.Errorf("its message id %q was taken by message %d, and publishing it again failed: %w", msg.Header.Get(jetstream.MsgIDHeader), seq, err)
	}
	return ack.Sequence, false, nil
}
