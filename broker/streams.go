package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/tally"
)

// StreamWait is how long WaitPartitionStreams waits, by default, for an
// external server's JetStream to answer. A cluster that has just started
// (or lost a member) answers "temporarily unavailable" until its members
// have elected a meta leader, which takes seconds: tally started with it
// waits instead of exiting.
const StreamWait = 30 * time.Second

// WaitPartitionStreams is EnsurePartitionStreams retried, with backoff, for
// up to wait while JetStream cannot answer (wait 0: one attempt, for the
// embedded server, which answers once started). Streams that exist split
// into another number of partitions, or with a configuration tally cannot
// use, are refused at once (ErrPartitionMismatch, ErrStreamMismatch). A
// stream that exists with another replication factor is used as it is,
// with a warning: replicas applies when tally creates the stream. logger
// may be nil.
func WaitPartitionStreams(ctx context.Context, js jetstream.JetStream, e *tally.Election, n, replicas int, wait time.Duration, logger *slog.Logger) ([]jetstream.Stream, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	deadline := time.Now().Add(wait)
	backoff := 100 * time.Millisecond
	for {
		sts, err := EnsurePartitionStreams(ctx, js, e, n, replicas)
		if err == nil {
			for _, st := range sts {
				if got := st.CachedInfo().Config.Replicas; got != max(replicas, 1) {
					logger.Warn("the stream exists with another replication factor; --replicas applies only when tally creates the stream",
						"stream", st.CachedInfo().Config.Name, "replicas", got, "asked", replicas)
				}
			}
			return sts, nil
		}
		if wait <= 0 || errors.Is(err, ErrStreamMismatch) || errors.Is(err, ErrPartitionMismatch) || ctx.Err() != nil {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w (JetStream did not answer for %s)", err, wait)
		}
		logger.Warn("JetStream is not available yet; retrying", "err", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, err
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}
