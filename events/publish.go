package events

import (
	"context"
	"errors"
	"fmt"

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
}

// NewPublisher returns a publisher for election e over js.
func NewPublisher(js jetstream.JetStream, e *tally.Election) *Publisher {
	return &Publisher{js: js, e: e}
}

// Published says where a submission landed.
type Published struct {
	Seq        uint64 // stream sequence of the last event
	Duplicates int    // events the stream already held (same Nats-Msg-Id)
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
				if ack.Duplicate {
					out.Duplicates++
				}
				out.Seq = max(out.Seq, ack.Sequence)
			case err := <-f.Err():
				return Published{}, fmt.Errorf("%w: minutes %d: %v", ErrNotStored, start+k, err)
			case <-ctx.Done():
				return Published{}, fmt.Errorf("%w: minutes %d: no acknowledgement: %v", ErrNotStored, start+k, ctx.Err())
			}
		}
	}
	return out, nil
}
