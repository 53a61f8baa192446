package harness

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
)

// TestStrongPeerRestart folds a small night with the strong peer in two
// lives on one database: the second peer starts from the tables the first
// one committed (its current minutes read back from cur_minutes, its
// dimensions left as they are) and folds the rest. The results, read
// through the views with the contract's ids, must equal tally's, and the
// views must hold every station's current minutes and every event's
// history row. It runs with TALLY_BENCH_POSTGRES=1, as TestRunTiny's
// peers do.
func TestStrongPeerRestart(t *testing.T) {
	if os.Getenv("TALLY_BENCH_POSTGRES") != "1" {
		t.Skip("TALLY_BENCH_POSTGRES=1 runs the PostgreSQL peers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := Config{Scale: 0.02, Provinces: 2, MsgID: true, BatchSize: 300, TempDir: t.TempDir()}
	cfg.ensureDefaults()
	r := &runner{cfg: &cfg, tmp: cfg.TempDir, res: &Results{}}
	var err error
	if r.e, r.res.Workload, err = generate(&cfg, filepath.Join(r.tmp, "election.json")); err != nil {
		t.Fatal(err)
	}
	if err := r.openNATS(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.closeNATS()
	if r.res.Load, r.res.ExpectedOutcomes, err = preload(ctx, &cfg, r.js, r.e, &r.res.Workload); err != nil {
		t.Fatal(err)
	}
	info, err := r.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.n = info.State.Msgs
	run, err := fold(ctx, r.stream, r.e, filepath.Join(r.tmp, "fold"), info.State.LastSeq, cfg.BatchSize)
	if err != nil {
		t.Fatal(err)
	}
	defer run.close()

	pg, err := startPostgres(ctx, os.TempDir(), nil, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.stop()
	conn, err := pgx.Connect(ctx, pg.url())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, pgSchema); err != nil {
		t.Fatal(err)
	}

	// The first life folds about half of the stream, the second the rest
	// from where the checkpoint says.
	first := r.n / 2
	p1, err := newStrongPeer(ctx, r.e, conn)
	if err != nil {
		t.Fatal(err)
	}
	fn := func(p *strongPeer) func([]jetstream.Msg) error {
		return func(b []jetstream.Msg) error { return p.foldBatch(ctx, b) }
	}
	if err := readBatches(ctx, r.stream, "restart-1", cfg.BatchSize, first, fn(p1)); err != nil {
		t.Fatal(err)
	}
	var seq uint64
	if err := conn.QueryRow(ctx, "SELECT seq FROM checkpoint").Scan(&seq); err != nil {
		t.Fatal(err)
	}
	p2, err := newStrongPeer(ctx, r.e, conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(p2.cur) != len(p1.cur) || len(p2.cur) == 0 {
		t.Fatalf("the restarted peer loaded %d current minutes, the first one ended with %d", len(p2.cur), len(p1.cur))
	}
	// The stream's sequences are 1..n with no gap: the rest starts at seq+1.
	cons, err := r.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "restart-2", DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq: seq + 1, AckPolicy: jetstream.AckAllPolicy})
	if err != nil {
		t.Fatal(err)
	}
	for done := seq; done < info.State.LastSeq; {
		b, err := cons.Fetch(int(min(uint64(cfg.BatchSize), info.State.LastSeq-done)))
		if err != nil {
			t.Fatal(err)
		}
		var msgs []jetstream.Msg
		for m := range b.Messages() {
			msgs = append(msgs, m)
		}
		if err := b.Error(); err != nil {
			t.Fatal(err)
		}
		if err := p2.foldBatch(ctx, msgs); err != nil {
			t.Fatal(err)
		}
		if err := msgs[len(msgs)-1].Ack(); err != nil {
			t.Fatal(err)
		}
		done += uint64(len(msgs))
	}

	var got Outcomes
	if err := conn.QueryRow(ctx, "SELECT applied, stale, duplicates, rejected FROM checkpoint").Scan(&got.Applied, &got.Stale, &got.Duplicates, &got.Rejected); err != nil {
		t.Fatal(err)
	}
	if want := outcomesOf(run.meta); got != want || p2.meta != want {
		t.Errorf("outcomes: checkpoint %+v, peer %+v; tally %+v", got, p2.meta, want)
	}
	res := &Peer{}
	if err := compareResults(ctx, conn, run.store, res); err != nil {
		t.Fatal(err)
	}
	if res.Compared == 0 || res.Mismatches != 0 {
		t.Errorf("%d of %d results differ from tally's: %q", res.Mismatches, res.Compared, res.Examples)
	}
	var minutes, history, unnamed int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM station_minutes), (SELECT count(*) FROM station_history),
		(SELECT count(*) FROM station_history WHERE contest IS NULL OR station IS NULL OR outcome IS NULL)`).Scan(&minutes, &history, &unnamed); err != nil {
		t.Fatal(err)
	}
	if minutes != len(p2.cur) {
		t.Errorf("station_minutes holds %d rows, the peer %d current minutes", minutes, len(p2.cur))
	}
	// Every event has a history row but the rejected ones naming no
	// station or contest of the election.
	if history == 0 || uint64(history) > r.n || uint64(history) < r.n-got.Rejected || unnamed != 0 {
		t.Errorf("station_history: %d rows (%d without ids or outcome) for %d events, %d rejected", history, unnamed, r.n, got.Rejected)
	}
}
