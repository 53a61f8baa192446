package projections

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/tally"
)

// RebuildDir rebuilds the projections kept in dir from the whole stream:
// it folds into a fresh store beside dir (dir + ".rebuild"), and only when
// that succeeded replaces dir with it. No server may hold dir open.
func RebuildDir(ctx context.Context, stream jetstream.Stream, e *tally.Election, dir string) (uint64, error) {
	tmp := dir + ".rebuild"
	if err := os.RemoveAll(tmp); err != nil {
		return 0, fmt.Errorf("clear %s: %w", tmp, err)
	}
	store, err := Open(tmp, e)
	if err != nil {
		return 0, err
	}
	n, err := Rebuild(ctx, stream, store, 0)
	if cerr := store.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close rebuilt store: %w", cerr)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return n, err
	}
	old := dir + ".old"
	if err := os.RemoveAll(old); err != nil {
		return n, fmt.Errorf("clear %s: %w", old, err)
	}
	if _, err := os.Stat(dir); err == nil {
		if err := os.Rename(dir, old); err != nil {
			return n, fmt.Errorf("move old projections aside: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return n, fmt.Errorf("put rebuilt projections in place: %w", err)
	}
	if err := os.RemoveAll(old); err != nil {
		return n, fmt.Errorf("remove old projections: %w", err)
	}
	return n, nil
}

// Rebuild folds the whole stream, from its first message to the last one
// it holds when Rebuild starts, into store (which should be empty). It
// commits every batchSize messages and returns the number of messages read.
func Rebuild(ctx context.Context, stream jetstream.Stream, store *Store, batchSize int) (uint64, error) {
	if batchSize <= 0 {
		batchSize = 10000
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	last := info.State.LastSeq
	fold := store.Fold()
	if info.State.Msgs == 0 || fold.Meta().Checkpoint >= last {
		return 0, nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return 0, fmt.Errorf("ordered consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(batchSize))
	if err != nil {
		return 0, fmt.Errorf("read stream: %w", err)
	}
	defer it.Stop()
	var n uint64
	var msg Msg
	for pending := 0; ; {
		jm, err := it.Next()
		if err != nil {
			return n, fmt.Errorf("read stream after %d messages: %w", n, err)
		}
		ack, ok := parseAck(jm.Reply())
		if !ok {
			return n, fmt.Errorf("message on %q has no JetStream ack subject (%q)", jm.Subject(), jm.Reply())
		}
		msg = Msg{Seq: ack.streamSeq, Subject: jm.Subject(), Data: jm.Data(), Time: ack.stored}
		if _, err := fold.Apply(&msg); err != nil {
			return n, fmt.Errorf("fold seq %d: %w", msg.Seq, err)
		}
		n++
		pending++
		if pending >= batchSize || msg.Seq >= last {
			if _, err := fold.Commit(); err != nil {
				return n, err
			}
			pending = 0
		}
		if msg.Seq >= last {
			return n, nil
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
	}
}

// RebuildPartitions rebuilds the projections of every partition under
// dataDir (PartitionDir) from its own stream, streams[p] for partition p,
// in parallel: each partition folds the part of the election in its
// provinces (PartElections) into a store of its own, exactly as
// RebuildDir does for one. It returns the messages read per partition.
// With one stream it is RebuildDir of DataDir/projections.
func RebuildPartitions(ctx context.Context, streams []jetstream.Stream, e *tally.Election, dataDir string) ([]uint64, error) {
	n := len(streams)
	elections, err := PartElections(e, n)
	if err != nil {
		return nil, err
	}
	read := make([]uint64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for p := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			read[p], errs[p] = RebuildDir(ctx, streams[p], elections[p], PartitionDir(dataDir, p, n))
		}()
	}
	wg.Wait()
	for p, err := range errs {
		if err != nil {
			if n > 1 {
				return read, fmt.Errorf("partition %d: %w", p, err)
			}
			return read, err
		}
	}
	return read, nil
}
