package projections_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/audit"
	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/internal/natstest"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// startStream starts an embedded NATS server with JetStream in a temp dir
// and creates the minutes stream of e.
func startStream(t testing.TB, e *tally.Election) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	js := natstest.JetStream(t)
	st, err := broker.EnsureStream(context.Background(), js, events.StreamConfig(e.ID, 1))
	if err != nil {
		t.Fatal(err)
	}
	return js, st
}

// runAggregator runs an aggregator over store until the returned stop is
// called; stop returns Run's error.
func runAggregator(t testing.TB, store *projections.Store, st jetstream.Stream, batch int) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	agg := projections.NewAggregator(store, st, projections.AggregatorConfig{BatchSize: batch})
	go func() { errc <- agg.Run(ctx) }()
	return func() error { cancel(); return <-errc }
}

func waitCheckpoint(t testing.TB, store *projections.Store, seq uint64) {
	t.Helper()
	// Bounded by progress: only a checkpoint that stands still for two
	// minutes fails, so a slow, shared machine makes this slower, not red.
	const stall = 2 * time.Minute
	var last uint64
	moved := time.Now()
	for {
		m, err := store.Meta()
		if err != nil {
			t.Fatal(err)
		}
		if m.Checkpoint >= seq {
			return
		}
		if m.Checkpoint != last {
			last, moved = m.Checkpoint, time.Now()
		}
		if time.Since(moved) > stall {
			t.Fatalf("checkpoint %d did not move for %s, still waiting for %d", m.Checkpoint, stall, seq)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAggregatorMatchesReference publishes shuffled election nights to a real
// JetStream stream (through the gateway's publisher, and a share as JSON
// straight to NATS as a station would), folds them with the aggregator, which
// is stopped and restarted on the same store several times, and compares
// every result with the reference fold.
func TestAggregatorMatchesReference(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		rng := rand.New(rand.NewPCG(seed, 23052021))
		fx := genElection(t, rng, 6, 12)
		ms := genMinutes(rng, fx)
		js, st := startStream(t, fx.e)
		pub := events.NewPublisher(js, fx.e)
		ctx := context.Background()

		dir := filepath.Join(t.TempDir(), "projections")
		store, err := projections.Open(dir, fx.e)
		if err != nil {
			t.Fatal(err)
		}
		stop := runAggregator(t, store, st, 1+rng.IntN(300))
		var last uint64
		restarts := 0
		for i := 0; i < len(ms); {
			n := min(1+rng.IntN(20), len(ms)-i)
			chunk := ms[i : i+n]
			i += n
			if rng.IntN(4) == 0 {
				// A station with a NATS client publishes JSON itself.
				for k := range chunk {
					s, _ := fx.e.StationIndex(chunk[k].Station)
					ack, err := js.Publish(ctx, events.Subject(fx.e, s, chunk[k].Contest), events.AppendJSON(nil, &chunk[k]))
					if err != nil {
						t.Fatal(err)
					}
					last = ack.Sequence
				}
			} else {
				// The gateway publishes binary; an identical minutes within
				// one chunk is deduplicated by Nats-Msg-Id.
				p, err := pub.Publish(ctx, chunk)
				if err != nil {
					t.Fatal(err)
				}
				last = p.Seq
			}
			if rng.IntN(8) == 0 {
				if err := stop(); err != nil {
					t.Fatalf("aggregator: %v", err)
				}
				if err := store.Close(); err != nil {
					t.Fatal(err)
				}
				restarts++
				if store, err = projections.Open(dir, fx.e); err != nil {
					t.Fatal(err)
				}
				stop = runAggregator(t, store, st, 1+rng.IntN(300))
			}
		}
		waitCheckpoint(t, store, last)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		meta, _ := store.Meta()
		// The audit fold, reading the same stream, is the reference.
		rep, err := audit.Verify(ctx, fx.e, st, store)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK || len(rep.Differences) > 0 || rep.Compared.Messages != int(last) {
			t.Fatalf("seed %d: audit compared %+v, %d differences: %v", seed, rep.Compared, len(rep.Differences), rep.Differences[:min(10, len(rep.Differences))])
		}
		t.Logf("seed %d: %d minutes, stream at %d, %d restarts, meta %+v", seed, len(ms), last, restarts, meta)

		// Rebuilding from the stream gives the same store, byte for byte.
		n, err := projections.RebuildDir(ctx, st, fx.e, dir+"2")
		if err != nil {
			t.Fatal(err)
		}
		if n != last {
			t.Fatalf("rebuild read %d messages, stream holds %d", n, last)
		}
		rebuilt, err := projections.Open(dir+"2", fx.e)
		if err != nil {
			t.Fatal(err)
		}
		assertSameStore(t, store, rebuilt)
		rebuilt.Close()
		store.Close()
	}
}

func dump(t *testing.T, s *projections.Store) (keys, vals []string) {
	t.Helper()
	err := s.Dump(func(k, v []byte) error {
		keys = append(keys, string(k))
		vals = append(vals, string(v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys, vals
}

func assertSameStore(t *testing.T, a, b *projections.Store) {
	t.Helper()
	ka, va := dump(t, a)
	kb, vb := dump(t, b)
	for i := 0; i < min(len(ka), len(kb)); i++ {
		if ka[i] != kb[i] {
			t.Fatalf("stores differ at key %d: %q vs %q", i, ka[i], kb[i])
		}
		if va[i] != vb[i] {
			t.Fatalf("stores differ at key %q: %x vs %x", ka[i], va[i], vb[i])
		}
	}
	if len(ka) != len(kb) {
		t.Fatalf("stores hold %d and %d keys", len(ka), len(kb))
	}
}

// TestStreamBehindCheckpoint: a stream that ends below the checkpoint (a
// broker that lost acknowledged minutes) is refused loudly.
func TestStreamBehindCheckpoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	fx := genElection(t, rng, 2, 3)
	ms := genMinutes(rng, fx)[:10]
	js, st := startStream(t, fx.e)
	dir := filepath.Join(t.TempDir(), "p")
	store, err := projections.Open(dir, fx.e)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	p, err := events.NewPublisher(js, fx.e).Publish(context.Background(), ms)
	if err != nil {
		t.Fatal(err)
	}
	stop := runAggregator(t, store, st, 100)
	waitCheckpoint(t, store, p.Seq)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The broker loses everything: the fold meets a new server whose
	// stream of the same name is empty. (Deleting the stream and creating
	// it again on the same server would do too, but nats-server removes an
	// account's emptied directories in a goroutine after a delete, which
	// can make the create that follows fail: "could not create storage
	// directory".)
	_, st = startStream(t, fx.e)
	ctx := context.Background()
	runCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = projections.NewAggregator(store, st, projections.AggregatorConfig{}).Run(runCtx)
	if !errors.Is(err, projections.ErrStreamBehind) {
		t.Fatalf("aggregator on a stream behind the checkpoint: err %v, want ErrStreamBehind", err)
	}
	t.Logf("refused with: %v", err)
}

// TestAggregatorReportsDeletedConsumer: when the fold's consumer is deleted
// on the server, Run returns an error (ErrConsumerStopped once running)
// instead of waiting forever.
func TestAggregatorReportsDeletedConsumer(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	fx := genElection(t, rng, 2, 2)
	_, st := startStream(t, fx.e)
	store, err := projections.Open(filepath.Join(t.TempDir(), "p"), fx.e)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- projections.NewAggregator(store, st, projections.AggregatorConfig{}).Run(ctx)
	}()
	// Delete it as soon as it exists: sometimes before the first pull,
	// sometimes while a pull waits.
	for {
		if err := st.DeleteConsumer(ctx, "tally-fold"); err == nil {
			break
		}
		time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
	}
	select {
	case err := <-errc:
		// Deleted while being created, the creation fails instead: any
		// error will do, as long as Run does not return nil or hang.
		if err == nil {
			t.Fatal("Run returned nil after its consumer was deleted")
		}
		t.Logf("Run: %v", err)
	case <-ctx.Done():
		t.Fatal("Run kept waiting after its consumer was deleted")
	}
}

// TestAggregatorCatchUpBatches: a fold behind the stream folds it in
// batches larger than BatchSize, at most four times as large, and commits
// every message once.
func TestAggregatorCatchUpBatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 2026))
	fx := genElection(t, rng, 6, 12)
	ms := genMinutes(rng, fx)
	js, st := startStream(t, fx.e)
	pub := events.NewPublisher(js, fx.e)
	ctx := context.Background()
	var last uint64
	for i := 0; i < len(ms); i += 7 {
		p, err := pub.Publish(ctx, ms[i:min(i+7, len(ms))])
		if err != nil {
			t.Fatal(err)
		}
		last = p.Seq
	}
	store, err := projections.Open(filepath.Join(t.TempDir(), "p"), fx.e)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const batch = 10
	var (
		mu    sync.Mutex
		sizes []int
	)
	runCtx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	agg := projections.NewAggregator(store, st, projections.AggregatorConfig{BatchSize: batch, OnCommit: func(b *projections.BatchInfo) {
		n := 0
		for _, k := range b.Outcomes {
			n += k
		}
		mu.Lock()
		sizes = append(sizes, n)
		mu.Unlock()
	}})
	go func() { errc <- agg.Run(runCtx) }()
	waitCheckpoint(t, store, last)
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, n := range sizes {
		if n > 4*batch {
			t.Fatalf("a batch of %d messages, BatchSize %d: want at most %d", n, batch, 4*batch)
		}
		total += n
	}
	if total != int(last) {
		t.Fatalf("%d messages committed in %d batches, the stream holds %d", total, len(sizes), last)
	}
	t.Logf("%d messages in %d batches: %v", total, len(sizes), sizes)
	// The whole stream was there before the fold started, so a batch
	// waits for the messages it still holds: one batch at least runs past
	// BatchSize (each message after the first must arrive within
	// batchWait, 20 ms, for a batch to grow).
	if slices.Max(sizes) <= batch {
		t.Fatalf("batches of %v messages catching up, BatchSize %d: none larger", sizes, batch)
	}
}
