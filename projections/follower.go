package projections

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// FollowerConfig configures a Follower.
type FollowerConfig struct {
	// Aggregator configures each aggregator the follower runs (its durable
	// consumer, batch size, commit hook). Its Logger defaults to Logger.
	Aggregator AggregatorConfig
	// MinBackoff and MaxBackoff bound the wait before a restart after a
	// failure; the wait doubles at each failure in a row. Defaults 100 ms
	// and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

func (c *FollowerConfig) ensureDefaults() {
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(5*time.Second, c.MinBackoff)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Aggregator.Logger == nil {
		c.Aggregator.Logger = c.Logger
	}
}

// Follower follows one stream into one store for as long as it runs: it
// runs an Aggregator and, when the aggregator stops on an error that a new
// consumer can cure (NATS gone, the consumer deleted, a JetStream request
// timing out, a message lost in transit: ErrDeliveryGap), starts a new one
// from the store's checkpoint, with backoff. An error of the store or of
// the stream's integrity (Fatal) ends it. With partitions, the server runs
// one Follower per partition, each over its own stream and store.
type Follower struct {
	store  *Store
	stream jetstream.Stream
	cfg    FollowerConfig
}

// NewFollower returns a follower folding stream into store.
func NewFollower(store *Store, stream jetstream.Stream, cfg FollowerConfig) *Follower {
	cfg.ensureDefaults()
	return &Follower{store: store, stream: stream, cfg: cfg}
}

// Fatal reports whether a fold must not be restarted after err: the store
// can no longer be trusted (ErrBroken, ErrCorrupt), or the stream lost
// minutes (ErrStreamBehind, ErrStreamGap).
func Fatal(err error) bool {
	return errors.Is(err, ErrBroken) || errors.Is(err, ErrStreamBehind) ||
		errors.Is(err, ErrStreamGap) || errors.Is(err, ErrCorrupt)
}

// Run folds until ctx is done (returning nil) or a fatal error (returning
// it). INVARIANT: every restart resumes right after the store's checkpoint
// (Aggregator.Run recreates the consumer there), so a message lost in
// transit, or delivered twice, is applied exactly once.
func (f *Follower) Run(ctx context.Context) error {
	backoff := f.cfg.MinBackoff
	gapAt := ^uint64(0) // the checkpoint at the last gap
	for {
		agg := NewAggregator(f.store, f.stream, f.cfg.Aggregator)
		started := time.Now()
		err := agg.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil || Fatal(err) {
			return err
		}
		if cp := f.store.Fold().Meta().Checkpoint; errors.Is(err, ErrDeliveryGap) && cp != gapAt {
			// A lost delivery, not a failure: no wait, unless the same
			// gap comes back (then the backoff below paces the retries).
			gapAt = cp
			f.cfg.Logger.Warn("the fold's consumer skipped messages (lost in transit on a reconnection); restarting it from the checkpoint",
				"consumer", f.cfg.Aggregator.Durable, "err", err)
			continue
		}
		if time.Since(started) > time.Minute {
			backoff = f.cfg.MinBackoff // it ran well for a while
		}
		f.cfg.Logger.Warn("fold stopped; restarting it from the checkpoint", "consumer", f.cfg.Aggregator.Durable, "err", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, f.cfg.MaxBackoff)
	}
}
