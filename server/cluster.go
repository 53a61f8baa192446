package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
)

// streamWait bounds how long New waits for an external server's JetStream
// to answer. A cluster that has just started (or lost a member) answers
// "temporarily unavailable" until its members have elected a meta leader,
// which takes seconds: tally started with it waits instead of exiting.
const streamWait = 30 * time.Second

// ensureStream creates the minutes stream if it is missing, waiting up to
// streamWait for an external cluster to be able to answer. A stream that
// exists with another replication factor is used as it is: --replicas
// applies when tally creates the stream.
func (s *Server) ensureStream(ctx context.Context) (jetstream.Stream, error) {
	cfg := events.StreamConfig(s.e.ID, s.cfg.Replicas)
	if s.embedded != nil {
		return broker.EnsureStream(ctx, s.js, cfg)
	}
	deadline := time.Now().Add(streamWait)
	backoff := 100 * time.Millisecond
	for {
		st, err := broker.EnsureStream(ctx, s.js, cfg)
		if err == nil {
			if got := st.CachedInfo().Config.Replicas; got != cfg.Replicas {
				s.cfg.Logger.Warn("the stream exists with another replication factor; --replicas applies only when tally creates the stream",
					"stream", cfg.Name, "replicas", got, "asked", cfg.Replicas)
			}
			return st, nil
		}
		if errors.Is(err, broker.ErrStreamMismatch) || ctx.Err() != nil {
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
