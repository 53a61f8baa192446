package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// consumerConfig is the durable pull consumer every reader of the stream
// uses: the one the aggregator creates for itself (projections.Aggregator),
// so the ceiling and the peer read the stream exactly as the fold does.
func consumerConfig(durable string, batch int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       durable,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       time.Minute,
		MaxAckPending: 16 * batch,
	}
}

// ceiling drains the n messages of stream with a durable pull consumer that
// does nothing but acknowledge the last message of every batch (AckAll).
// The time counts from the consumer's creation to the last message.
func ceiling(ctx context.Context, stream jetstream.Stream, n uint64, batch int) (time.Duration, error) {
	const durable = "bench-ceiling"
	start := time.Now()
	cons, err := stream.CreateOrUpdateConsumer(ctx, consumerConfig(durable, batch))
	if err != nil {
		return 0, fmt.Errorf("create consumer %s: %w", durable, err)
	}
	defer stream.DeleteConsumer(context.WithoutCancel(ctx), durable)
	done := make(chan struct{})
	var count uint64
	var ackErr error
	// The handler runs on one goroutine, message after message.
	cc, err := cons.Consume(func(m jetstream.Msg) {
		count++
		if count%uint64(batch) == 0 || count == n {
			if err := m.Ack(); err != nil && ackErr == nil {
				ackErr = err
			}
		}
		if count == n {
			close(done)
		}
	}, jetstream.PullMaxMessages(batch))
	if err != nil {
		return 0, fmt.Errorf("consume: %w", err)
	}
	defer cc.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	elapsed := time.Since(start)
	if ackErr != nil {
		return 0, fmt.Errorf("ack: %w", ackErr)
	}
	return elapsed, nil
}

// foldRun is one run of tally's aggregator from an empty store.
type foldRun struct {
	store   *projections.Store
	dir     string
	elapsed time.Duration
	meta    projections.Meta
	commits int
	walMiB  float64 // logical bytes written to Pebble's WAL
}

// close closes the run's store and removes its directory. It may be called
// twice.
func (r *foldRun) close() error {
	if r.store == nil {
		return nil
	}
	err := r.store.Close()
	r.store = nil
	if rerr := os.RemoveAll(r.dir); err == nil {
		err = rerr
	}
	return err
}

// fold runs tally's aggregator over stream, from an empty store in dir,
// until it has committed lastSeq. The time counts from the start of
// Aggregator.Run (which creates its consumer) to the end of that commit.
// The store is returned open.
func fold(ctx context.Context, stream jetstream.Stream, e *tally.Election, dir string, lastSeq uint64, batch int) (*foldRun, error) {
	const durable = "bench-fold"
	store, err := projections.Open(dir, e)
	if err != nil {
		return nil, err
	}
	run := &foldRun{store: store, dir: dir}
	var (
		once sync.Once
		done = make(chan struct{})
		end  time.Time
	)
	agg := projections.NewAggregator(store, stream, projections.AggregatorConfig{
		Durable:   durable,
		BatchSize: batch,
		OnCommit: func(b *projections.BatchInfo) {
			run.commits++
			if b.Meta.Checkpoint >= lastSeq {
				once.Do(func() {
					end, run.meta = b.Done, b.Meta
					close(done)
				})
			}
		},
	})
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- agg.Run(runCtx) }()
	select {
	case <-done:
		cancel()
		err = <-errc
	case err = <-errc:
		if err == nil {
			err = errors.New("the aggregator stopped before the end of the stream")
		}
	}
	_ = stream.DeleteConsumer(context.WithoutCancel(ctx), durable)
	if err != nil {
		run.close()
		return nil, fmt.Errorf("fold: %w", err)
	}
	run.elapsed = end.Sub(start)
	run.walMiB = float64(store.Metrics().WAL.BytesIn) / mib
	return run, nil
}

func outcomesOf(m projections.Meta) Outcomes {
	return Outcomes{Applied: m.Applied, Stale: m.Stale, Duplicates: m.Duplicates, Rejected: m.Rejected}
}
