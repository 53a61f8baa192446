package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
)

// TestExpAB alternates the strong peer with vote rows (zz_rows_test.go) and
// with vote vectors (strong.go).
func TestExpAB(t *testing.T) {
	vs := os.Getenv("EXP_AB")
	if vs == "" {
		t.Skip()
	}
	prov, _ := strconv.Atoi(os.Getenv("EXP_PROVINCES"))
	rounds, _ := strconv.Atoi(os.Getenv("EXP_ROUNDS"))
	cfg := Config{Scale: 1, Provinces: prov, MsgID: true, TwoTier: os.Getenv("EXP_STRUCT") == "2026", PerCouncil: os.Getenv("EXP_STRUCT") == "2021-councils",
		TempDir: t.TempDir(), Log: os.Stderr}
	cfg.ensureDefaults()
	ctx := context.Background()
	r := &runner{cfg: &cfg, tmp: cfg.TempDir, res: &Results{}}
	var err error
	if r.e, r.res.Workload, err = generate(&cfg, filepath.Join(r.tmp, "e.json")); err != nil {
		t.Fatal(err)
	}
	if err := r.openNATS(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.closeNATS()
	if r.res.Load, r.res.ExpectedOutcomes, err = preload(ctx, &cfg, r.js, r.e, &r.res.Workload); err != nil {
		t.Fatal(err)
	}
	info, _ := r.stream.Info(ctx)
	r.n = info.State.Msgs
	run, err := fold(ctx, r.stream, r.e, filepath.Join(r.tmp, "fold"), info.State.LastSeq, cfg.BatchSize)
	if err != nil {
		t.Fatal(err)
	}
	defer run.close()
	r.logf("events %d, fold %.0f/s", r.n, float64(r.n)/run.elapsed.Seconds())
	pg, err := startPostgres(ctx, os.TempDir(), []string{"shared_buffers=1GB"}, r.logf)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.stop()
	admin, err := pgx.Connect(ctx, pg.url())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	k := 0
	res := map[string][]float64{}
	for round := range max(1, rounds) {
		for _, v := range strings.Split(vs, ",") {
			k++
			db := fmt.Sprintf("ab%d", k)
			if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
				t.Fatal(err)
			}
			conn, err := pgx.Connect(ctx, strings.Replace(pg.url(), "/postgres?", "/"+db+"?", 1))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, pgSchema); err != nil {
				t.Fatal(err)
			}
			ts := time.Now()
			var p pgFolder
			if v == "rows" {
				p, err = newRowsPeer(ctx, r.e, conn)
			} else {
				p, err = newStrongPeer(ctx, r.e, conn)
			}
			if err != nil {
				t.Fatal(err)
			}
			setup := time.Since(ts)
			load := loadAverage()
			var lsn0, lsn1 string
			conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn0)
			start := time.Now()
			if err := readBatches(ctx, r.stream, "ab-"+db, cfg.BatchSize, r.n, func(b []jetstream.Msg) error { return p.foldBatch(ctx, b) }); err != nil {
				t.Fatal(err)
			}
			el := time.Since(start)
			conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn1)
			var walMiB, size float64
			conn.QueryRow(ctx, "SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::float8 / 1048576", lsn1, lsn0).Scan(&walMiB)
			conn.QueryRow(ctx, "SELECT pg_database_size(current_database())::float8 / 1048576").Scan(&size)
			meta, n, st, rt := p.stats()
			cmpRes := &Peer{}
			if err := compareResults(ctx, conn, run.store, cmpRes); err != nil {
				t.Fatal(err)
			}
			rate := float64(n) / el.Seconds()
			res[v] = append(res[v], rate)
			r.logf("round %d %-6s %6.0f ev/s %.1fs (setup %.1fs) stmts/ev %.5f rt/ev %.5f compared %d differ %d outcomes-equal %v WAL %.0f B/ev db %.0f MiB load %.2f",
				round, v, rate, el.Seconds(), setup.Seconds(), float64(st)/float64(n), float64(rt)/float64(n), cmpRes.Compared, cmpRes.Mismatches, meta == outcomesOf(run.meta), walMiB*1048576/float64(n), size, load)
			if cmpRes.Mismatches > 0 || meta != outcomesOf(run.meta) {
				t.Errorf("%s: %q", v, cmpRes.Examples)
			}
			conn.Close(ctx)
			admin.Exec(ctx, "DROP DATABASE "+db)
		}
	}
	for v, x := range res {
		r.logf("%s %v", v, x)
	}
}
