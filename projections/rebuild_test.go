package projections_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/bench/workload"
	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/internal/natstest"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// TestRebuildPartitionsEqualsFold rebuilds a small national night, both
// v2 structures, from one stream and from 3 partition streams, in batches
// small enough that reading, folding and committing overlap, and compares
// every rebuilt store, reopened from disk, byte for byte with a store
// folded from the same stream message by message on one goroutine, each
// message fetched by its sequence and committed with fsync. The rebuilt
// store must reopen at its stream's last sequence, and a second rebuild
// must replace the first, leaving no temporary directory behind.
func TestRebuildPartitionsEqualsFold(t *testing.T) {
	for _, structure := range []string{"2026", "2021-councils"} {
		for _, n := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/%d", structure, n), func(t *testing.T) {
				testRebuildPartitions(t, structure, n, projections.RebuildOptions{BatchSize: 97})
			})
		}
	}
	// The serial rebuild, kept for comparisons, too.
	t.Run("2026/3/serial", func(t *testing.T) {
		testRebuildPartitions(t, "2026", 3, projections.RebuildOptions{BatchSize: 97, Serial: true})
	})
}

func testRebuildPartitions(t *testing.T, structure string, n int, opts projections.RebuildOptions) {
	cfg := workload.NationalConfig{Seed: 11, Scale: 0.02, Provinces: 12, ID: "rb-" + structure}
	if structure == "2026" {
		cfg.TwoTier = true
	} else {
		cfg.PerCouncil = true
	}
	f, err := workload.National(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.Parse()
	if err != nil {
		t.Fatal(err)
	}
	js := natstest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	streams, err := broker.EnsurePartitionStreams(ctx, js, e, n, 1)
	if err != nil {
		t.Fatal(err)
	}
	// The night, binary, each minutes on its station's subject (and so in
	// its province's partition); a few also as JSON, as a station's own
	// NATS client publishes them.
	var acks []jetstream.PubAckFuture
	k := 0
	err = workload.Night(e, workload.NightConfig{Seed: 11}, func(sub *workload.Submission) error {
		data := events.AppendBinary(nil, &sub.Minutes)
		if k++; k%10 == 0 {
			data = events.AppendJSON(nil, &sub.Minutes)
		}
		a, err := js.PublishMsgAsync(&nats.Msg{Subject: events.Subject(e, sub.Station, sub.Minutes.Contest), Data: data})
		acks = append(acks, a)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acks {
		select {
		case <-a.Ok():
		case err := <-a.Err():
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	elections, err := projections.PartElections(e, n)
	if err != nil {
		t.Fatal(err)
	}

	dataDir := filepath.Join(t.TempDir(), "data")
	for run := range 2 { // the second replaces the first
		var read []uint64
		var err error
		if run == 0 && opts == (projections.RebuildOptions{BatchSize: 97}) {
			// Rebuilt first with the defaults, as tally rebuild does: one
			// batch at this size.
			read, err = projections.RebuildPartitions(ctx, streams, e, dataDir)
		} else {
			read, err = projections.RebuildPartitionsWith(ctx, streams, e, dataDir, opts)
		}
		if err != nil {
			t.Fatalf("run %d: %v", run+1, err)
		}
		var total uint64
		for _, r := range read {
			total += r
		}
		if total != uint64(len(acks)) {
			t.Fatalf("run %d read %d messages (%v), %d published", run+1, total, read, len(acks))
		}
	}
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n {
		var names []string
		for _, en := range entries {
			names = append(names, en.Name())
		}
		t.Errorf("data directory holds %q, want the %d partitions' stores only", names, n)
	}
	for p, st := range streams {
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ref := foldStream(t, ctx, st, elections[p], filepath.Join(t.TempDir(), "ref"), info.State.LastSeq)
		rebuilt, err := projections.Open(projections.PartitionDir(dataDir, p, n), elections[p])
		if err != nil {
			t.Fatal(err)
		}
		meta, err := rebuilt.Meta()
		if err != nil {
			t.Fatal(err)
		}
		if meta.Checkpoint != info.State.LastSeq || meta.Applied == 0 {
			t.Errorf("partition %d reopens at %+v, its stream ends at %d", p, meta, info.State.LastSeq)
		}
		assertSameStore(t, ref, rebuilt)
		rebuilt.Close()
		ref.Close()
	}
}

// foldStream folds stream messages 1 to last into a new store in dir, one
// message at a time on this goroutine, committing every 50.
func foldStream(t *testing.T, ctx context.Context, st jetstream.Stream, e *tally.Election, dir string, last uint64) *projections.Store {
	t.Helper()
	store, err := projections.Open(dir, e)
	if err != nil {
		t.Fatal(err)
	}
	fold := store.Fold()
	for seq := uint64(1); seq <= last; seq++ {
		raw, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get message %d: %v", seq, err)
		}
		if _, err := fold.Apply(&projections.Msg{Seq: raw.Sequence, Subject: raw.Subject, Data: raw.Data, Time: raw.Time}); err != nil {
			t.Fatal(err)
		}
		if seq%50 == 0 || seq == last {
			if _, err := fold.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return store
}

// TestRebuildDirFailureKeepsDir: a rebuild that fails leaves the
// projections in place, untouched, and no temporary store behind.
func TestRebuildDirFailureKeepsDir(t *testing.T) {
	f, err := workload.National(workload.NationalConfig{Seed: 3, Scale: 0.01, Provinces: 2, TwoTier: true})
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.Parse()
	if err != nil {
		t.Fatal(err)
	}
	_, st := startStream(t, e)
	dir := filepath.Join(t.TempDir(), "projections")
	store, err := projections.Open(dir, e)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := dump(t, store)
	store.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := projections.RebuildDir(ctx, st, e, dir); !errors.Is(err, context.Canceled) {
		t.Fatalf("rebuild with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := os.Stat(dir + ".rebuild"); !os.IsNotExist(err) {
		t.Errorf("temporary store left behind: %v", err)
	}
	store, err = projections.Open(dir, e)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if after, _ := dump(t, store); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("projections changed by a failed rebuild")
	}
}

// TestRebuildSurvivesStalledConsumer pauses the rebuild's ordered consumer
// on the server as soon as it is created, so that it delivers nothing: the
// reader must give up on it after the stall time, read on with a new
// consumer, and rebuild the same store as a fold of the stream.
func TestRebuildSurvivesStalledConsumer(t *testing.T) {
	f, err := workload.National(workload.NationalConfig{Seed: 5, Scale: 0.01, Provinces: 3, TwoTier: true})
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.Parse()
	if err != nil {
		t.Fatal(err)
	}
	js, st := startStream(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var acks []jetstream.PubAckFuture
	err = workload.Night(e, workload.NightConfig{Seed: 5}, func(sub *workload.Submission) error {
		a, err := js.PublishMsgAsync(&nats.Msg{Subject: events.Subject(e, sub.Station, sub.Minutes.Contest), Data: events.AppendBinary(nil, &sub.Minutes)})
		acks = append(acks, a)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acks {
		select {
		case <-a.Ok():
		case err := <-a.Err():
			t.Fatal(err)
		}
	}
	var consumers []string
	projections.SetRebuildStall(t, time.Second, func(c jetstream.Consumer) {
		name := c.CachedInfo().Name
		consumers = append(consumers, name)
		if len(consumers) == 1 {
			if _, err := st.PauseConsumer(ctx, name, time.Now().Add(time.Hour)); err != nil {
				t.Errorf("pause consumer %s: %v", name, err)
			}
		}
	})
	dir := filepath.Join(t.TempDir(), "projections")
	n, err := projections.RebuildDir(ctx, st, e, dir)
	if err != nil {
		t.Fatal(err)
	}
	if n != uint64(len(acks)) || len(consumers) < 2 {
		t.Fatalf("rebuild read %d of %d messages with consumers %q: want all, and a second consumer after the first stalled", n, len(acks), consumers)
	}
	ref := foldStream(t, ctx, st, e, filepath.Join(t.TempDir(), "ref"), uint64(len(acks)))
	defer ref.Close()
	rebuilt, err := projections.Open(dir, e)
	if err != nil {
		t.Fatal(err)
	}
	defer rebuilt.Close()
	assertSameStore(t, ref, rebuilt)
}
