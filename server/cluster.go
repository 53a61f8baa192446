package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/broker"
)

// streamWait bounds how long New waits for an external server's JetStream
// to answer. A cluster that has just started (or lost a member) answers
// "temporarily unavailable" until its members have elected a meta leader,
// which takes seconds: tally started with it waits instead of exiting.
const streamWait = 30 * time.Second

// ensureStreams creates the minutes streams if they are missing (one, or
// one per partition: broker.EnsurePartitionStreams), waiting up to
// streamWait for an external cluster to be able to answer. Streams that
// exist split into another number of partitions are refused, saying what
// exists. A stream that exists with another replication factor is used as
// it is: --replicas applies when tally creates the stream.
func (s *Server) ensureStreams(ctx context.Context) ([]jetstream.Stream, error) {
	n := s.cfg.Partitions
	if s.embedded != nil {
		return broker.EnsurePartitionStreams(ctx, s.js, s.e, n, s.cfg.Replicas)
	}
	deadline := time.Now().Add(streamWait)
	backoff := 100 * time.Millisecond
	for {
		sts, err := broker.EnsurePartitionStreams(ctx, s.js, s.e, n, s.cfg.Replicas)
		if err == nil {
			for _, st := range sts {
				if got := st.CachedInfo().Config.Replicas; got != max(s.cfg.Replicas, 1) {
					s.cfg.Logger.Warn("the stream exists with another replication factor; --replicas applies only when tally creates the stream",
						"stream", st.CachedInfo().Config.Name, "replicas", got, "asked", s.cfg.Replicas)
				}
			}
			return sts, nil
		}
		if errors.Is(err, broker.ErrStreamMismatch) || errors.Is(err, broker.ErrPartitionMismatch) || ctx.Err() != nil {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w (JetStream did not answer for %s)", err, streamWait)
		}
		s.cfg.Logger.Warn("JetStream is not available yet; retrying", "err", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, err
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}
