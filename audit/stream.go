package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// idleLimit is how long ReadStream waits for the next message before it
// gives up on a stream that stopped delivering.
const idleLimit = 30 * time.Second

// ReadStream reads stream in order from its first message through sequence
// upTo (or its last message, if that comes first) and calls fn for each.
// It returns the number of messages read and the last sequence seen.
func ReadStream(ctx context.Context, stream jetstream.Stream, upTo uint64, fn func(seq uint64, subject string, data []byte)) (n, last uint64, err error) {
	if upTo == 0 {
		return 0, 0, nil
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("stream info: %w", err)
	}
	if info.State.Msgs == 0 {
		return 0, 0, nil
	}
	// The stream info comes from the stream's leader. The ordered consumer
	// is R1 and may be placed on a follower, which serves its own replica:
	// one still catching up reports NumPending 0 before the leader's last
	// message. So the read ends at the leader's last sequence (or upTo),
	// never at the consumer's NumPending, and waits for a lagging replica,
	// bounded by idleLimit without progress.
	upTo = min(upTo, info.State.LastSeq)
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return 0, 0, fmt.Errorf("ordered consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1000))
	if err != nil {
		return 0, 0, fmt.Errorf("read stream: %w", err)
	}
	defer it.Stop()
	for {
		wait, cancel := context.WithTimeout(ctx, idleLimit)
		jm, err := it.Next(jetstream.NextContext(wait))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return n, last, ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) {
				return n, last, fmt.Errorf("the stream delivered nothing for %s after seq %d (reading through seq %d)", idleLimit, last, upTo)
			}
			return n, last, fmt.Errorf("read stream after seq %d: %w", last, err)
		}
		md, err := jm.Metadata()
		if err != nil {
			return n, last, fmt.Errorf("message after seq %d has no JetStream metadata: %w", last, err)
		}
		seq := md.Sequence.Stream
		if seq > upTo {
			return n, last, nil
		}
		fn(seq, jm.Subject(), jm.Data())
		n++
		last = seq
		if seq >= upTo {
			return n, last, nil
		}
	}
}
