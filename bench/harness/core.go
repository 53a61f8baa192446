package harness

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// Core is the fold without NATS: the stream's messages, read into memory
// first, applied on one goroutine to an empty store (projections.Fold),
// with a Pebble commit every batch.
type Core struct {
	Events uint64 `json:"events"`
	// ApplyPerS counts only the time in Fold.Apply: decode, check, compare
	// with the station's current minutes, apply the delta, stage into the
	// Pebble batch (the fold core).
	ApplyPerS float64 `json:"apply_events_per_s"`
	// CommitPerS counts Apply and the fsynced commits.
	CommitPerS float64 `json:"with_commit_events_per_s"`
	// CommitMs is the mean time of one commit.
	CommitMs float64 `json:"commit_ms"`
}

// readAll reads the n messages of stream into memory, through an ordered
// consumer.
func readAll(ctx context.Context, stream jetstream.Stream, n uint64, batch int) ([]projections.Msg, error) {
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, fmt.Errorf("ordered consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(batch))
	if err != nil {
		return nil, err
	}
	defer it.Stop()
	msgs := make([]projections.Msg, 0, n)
	// One arena for the payloads and one builder for the subjects, so the
	// copy costs few allocations.
	var arena []byte
	var subjects strings.Builder
	type span struct{ data, subj [2]int }
	spans := make([]span, 0, n)
	for uint64(len(spans)) < n {
		jm, err := it.Next()
		if err != nil {
			return nil, err
		}
		md, err := jm.Metadata()
		if err != nil {
			return nil, err
		}
		sp := span{data: [2]int{len(arena), 0}, subj: [2]int{subjects.Len(), 0}}
		arena = append(arena, jm.Data()...)
		subjects.WriteString(jm.Subject())
		sp.data[1], sp.subj[1] = len(arena), subjects.Len()
		spans = append(spans, sp)
		msgs = append(msgs, projections.Msg{Seq: md.Sequence.Stream, Time: md.Timestamp})
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	all := subjects.String()
	for i, sp := range spans {
		msgs[i].Data = arena[sp.data[0]:sp.data[1]:sp.data[1]]
		msgs[i].Subject = all[sp.subj[0]:sp.subj[1]]
	}
	return msgs, nil
}

// core folds msgs into a new store in dir and returns its rates.
func core(msgs []projections.Msg, e *tally.Election, dir string, batch int) (Core, projections.Meta, error) {
	store, err := projections.Open(dir, e)
	if err != nil {
		return Core{}, projections.Meta{}, err
	}
	defer store.Close()
	f := store.Fold()
	var apply, commit time.Duration
	commits := 0
	for from := 0; from < len(msgs); from += batch {
		to := min(from+batch, len(msgs))
		start := time.Now()
		if err := f.ApplyAll(msgs[from:to], nil); err != nil {
			return Core{}, projections.Meta{}, err
		}
		mid := time.Now()
		if _, err := f.Commit(); err != nil {
			return Core{}, projections.Meta{}, err
		}
		apply += mid.Sub(start)
		commit += time.Since(mid)
		commits++
	}
	n := float64(len(msgs))
	return Core{
		Events:     uint64(len(msgs)),
		ApplyPerS:  n / apply.Seconds(),
		CommitPerS: n / (apply + commit).Seconds(),
		CommitMs:   commit.Seconds() * 1000 / float64(commits),
	}, f.Meta(), nil
}
