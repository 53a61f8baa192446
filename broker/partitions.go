package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

// ErrPartitionMismatch is returned when the minutes streams exist split
// into another number of partitions than asked: the partitioning is fixed
// when the streams are first created (CONTRACT §6 v2).
var ErrPartitionMismatch = errors.New("broker: the minutes streams exist with another number of partitions")

// ExistingPartitions returns how many partitions election id's minutes
// streams were created with, 0 when none exists yet: 1 for the v1 stream
// TALLY_<election>, else the tally_partitions metadata of TALLY_<election>_P0.
func ExistingPartitions(ctx context.Context, js jetstream.JetStream, electionID string) (int, error) {
	_, err := js.Stream(ctx, events.StreamName(electionID))
	if err == nil {
		return 1, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, fmt.Errorf("look up stream %s: %w", events.StreamName(electionID), err)
	}
	name := events.PartitionStreamName(electionID, 0, 2)
	st, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("look up stream %s: %w", name, err)
	}
	md := st.CachedInfo().Config.Metadata[events.MetaPartitions]
	n, err := strconv.Atoi(md)
	if err != nil || n < 2 {
		return 0, fmt.Errorf("%w: stream %s has metadata %s=%q, not a number of partitions", ErrStreamMismatch, name, events.MetaPartitions, md)
	}
	return n, nil
}

// PartitionStreams returns election id's existing minutes streams,
// partition p at index p: the one stream, or every partition's
// (ExistingPartitions). It fails with jetstream.ErrStreamNotFound when
// there is none: for the tools that read what serve wrote (rebuild,
// verify), which must not create streams.
func PartitionStreams(ctx context.Context, js jetstream.JetStream, electionID string) ([]jetstream.Stream, error) {
	n, err := ExistingPartitions(ctx, js, electionID)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("stream %s: %w", events.StreamName(electionID), jetstream.ErrStreamNotFound)
	}
	streams := make([]jetstream.Stream, n)
	for p := range n {
		name := events.PartitionStreamName(electionID, p, n)
		if streams[p], err = js.Stream(ctx, name); err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
	}
	return streams, nil
}

// EnsurePartitionStreams creates election e's n minutes streams
// (events.PartitionStreamConfigs) where missing and returns them,
// partition p at index p. If the streams exist split into another number
// of partitions, nothing is created and the error (ErrPartitionMismatch)
// says what exists. A partition stream that exists has its subjects
// widened when the election file gained a province (a province's
// partition depends only on its id, so none moves).
func EnsurePartitionStreams(ctx context.Context, js jetstream.JetStream, e *tally.Election, n, replicas int) ([]jetstream.Stream, error) {
	if n < 1 {
		return nil, fmt.Errorf("partitions: %d, want at least 1", n)
	}
	have, err := ExistingPartitions(ctx, js, e.ID)
	if err != nil {
		return nil, err
	}
	if have != 0 && have != n {
		what := "one stream, " + events.StreamName(e.ID) + " (--partitions 1)"
		if have > 1 {
			what = fmt.Sprintf("%d streams, %s to %s (--partitions %d)", have,
				events.PartitionStreamName(e.ID, 0, have), events.PartitionStreamName(e.ID, have-1, have), have)
		}
		return nil, fmt.Errorf("%w: election %s's minutes are already in %s; this start asks for --partitions %d, but the partitioning is fixed when the streams are first created",
			ErrPartitionMismatch, e.ID, what, n)
	}
	cfgs := events.PartitionStreamConfigs(e, n, replicas)
	if n == 1 {
		st, err := EnsureStream(ctx, js, cfgs[0])
		if err != nil {
			return nil, err
		}
		return []jetstream.Stream{st}, nil
	}
	streams := make([]jetstream.Stream, n)
	for p, cfg := range cfgs {
		st, err := js.Stream(ctx, cfg.Name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			if st, err = js.CreateStream(ctx, cfg); err != nil {
				return nil, fmt.Errorf("create stream %s: %w", cfg.Name, err)
			}
		case err != nil:
			return nil, fmt.Errorf("look up stream %s: %w", cfg.Name, err)
		default:
			got := st.CachedInfo().Config
			if got.Metadata[events.MetaPartitions] != strconv.Itoa(n) || got.Metadata[events.MetaPartition] != strconv.Itoa(p) {
				return nil, fmt.Errorf("%w: stream %s has metadata %v, want partition %d of %d", ErrPartitionMismatch, cfg.Name, got.Metadata, p, n)
			}
			if got.Storage != jetstream.FileStorage {
				return nil, fmt.Errorf("%w: stream %s exists with %v storage; tally needs file storage so minutes survive a restart", ErrStreamMismatch, cfg.Name, got.Storage)
			}
			if missing := slices.DeleteFunc(slices.Clone(cfg.Subjects), func(s string) bool { return slices.Contains(got.Subjects, s) }); len(missing) > 0 {
				upd := got
				upd.Subjects = append(slices.Clone(got.Subjects), missing...)
				if st, err = js.UpdateStream(ctx, upd); err != nil {
					return nil, fmt.Errorf("add provinces %v to stream %s: %w", missing, cfg.Name, err)
				}
			}
		}
		streams[p] = st
	}
	return streams, nil
}
