package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
)

func envInt(k string, d int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
		return v
	}
	return d
}

func TestExpVariants(t *testing.T) {
	vs := os.Getenv("EXP_VARIANTS")
	if vs == "" {
		t.Skip()
	}
	scale, _ := strconv.ParseFloat(os.Getenv("EXP_SCALE"), 64)
	if scale == 0 {
		scale = 1
	}
	cfg := Config{Scale: scale, Provinces: envInt("EXP_PROVINCES", 10), MsgID: true, BatchSize: envInt("EXP_BATCH", 10000),
		TwoTier: os.Getenv("EXP_STRUCT") == "2026", PerCouncil: os.Getenv("EXP_STRUCT") == "2021-councils", TempDir: t.TempDir(), Log: os.Stderr}
	cfg.ensureDefaults()
	ctx := context.Background()
	tmp := t.TempDir()
	r := &runner{cfg: &cfg, tmp: tmp, res: &Results{Memory: Memory{PhasePeakRSSMiB: map[string]float64{}}}}
	var err error
	r.e, r.res.Workload, err = generate(&cfg, filepath.Join(tmp, "e.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.openNATS(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.closeNATS()
	r.res.Load, r.res.ExpectedOutcomes, err = preload(ctx, &cfg, r.js, r.e, &r.res.Workload)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := r.stream.Info(ctx)
	r.n, r.lastSeq = info.State.Msgs, info.State.LastSeq
	run, err := fold(ctx, r.stream, r.e, filepath.Join(tmp, "fold"), r.lastSeq, cfg.BatchSize)
	if err != nil {
		t.Fatal(err)
	}
	defer run.close()
	r.res.FoldOutcomes = outcomesOf(run.meta)
	r.logf("events %d, fold %.0f/s", r.n, float64(r.n)/run.elapsed.Seconds())

	settings := []string{"shared_buffers=1GB"}
	if s := os.Getenv("EXP_PGSET"); s != "" {
		settings = append(settings, strings.Split(s, ";")...)
	}
	pg, err := startPostgres(ctx, os.TempDir(), settings, r.logf)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.stop()
	admin, err := pgx.Connect(ctx, pg.url())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	results := map[string][]float64{}
	rounds := envInt("EXP_ROUNDS", 2)
	k := 0
	for round := range rounds {
		for _, v := range strings.Split(vs, ",") {
			k++
			db := fmt.Sprintf("v%d", k)
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
			opts := strongOpts{profile: strings.Contains(v, "prof")}
			batch := cfg.BatchSize
			for _, f := range strings.Split(v, "+") {
				switch {
				case f == "dense":
					opts.dense = true
				case strings.HasPrefix(f, "ff"):
					opts.fillfactor, _ = strconv.Atoi(f[2:])
				case f == "hseq":
					opts.historyKey = "seq"
				case f == "hnone":
					opts.historyKey = "none"
				case strings.HasPrefix(f, "b"):
					batch, _ = strconv.Atoi(f[1:])
				case f == "copy":
					opts.copyStage = true
				case strings.HasPrefix(f, "walc"):
					opts.walCompress = f[4:]
				case f == "upd":
					opts.votesUpdate = true
				}
			}
			ts := time.Now()
			p, err := newStrongPeerOpts(ctx, r.e, conn, opts)
			if err != nil {
				t.Fatal(err)
			}
			setup := time.Since(ts)
			load := loadAverage()
			var lsn0, lsn1 string
			conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn0)
			start := time.Now()
			err = readBatches(ctx, r.stream, "exp-"+db, batch, r.n, func(b []jetstream.Msg) error { return p.foldBatch(ctx, b) })
			if err != nil {
				t.Fatal(err)
			}
			el := time.Since(start)
			conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn1)
			var walMiB float64
			conn.QueryRow(ctx, "SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::float8 / 1048576", lsn1, lsn0).Scan(&walMiB)
			r.logf("  WAL %.1f MiB, %.0f bytes/event", walMiB, walMiB*1048576/float64(r.n))
			meta, n, st, rt := p.stats()
			res := &Peer{}
			if err := compareResults(ctx, conn, run.store, res); err != nil {
				t.Fatal(err)
			}
			var size float64
			conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&size)
			rate := float64(n) / el.Seconds()
			results[v] = append(results[v], rate)
			r.logf("round %d %-28s %7.0f ev/s  %.2fs (setup %.2fs) stmts/ev %.5f rt/ev %.5f  compared %d differ %d outcomes-equal %v  db %.0f MiB  load %.2f",
				round, v, rate, el.Seconds(), setup.Seconds(), float64(st)/float64(n), float64(rt)/float64(n), res.Compared, res.Mismatches, meta == r.res.FoldOutcomes, size/mib, load)
			if res.Mismatches > 0 || meta != r.res.FoldOutcomes {
				t.Errorf("%s: mismatches %d %v", v, res.Mismatches, res.Examples)
			}
			if pr := p.prof; pr != nil {
				b := float64(pr.batches)
				var names []string
				for s := range pr.stmt {
					names = append(names, s)
				}
				sort.Strings(names)
				line := fmt.Sprintf("  per batch (%d): apply %.0fms build %.0fms begin %.1fms commit %.1fms", pr.batches,
					pr.apply.Seconds()*1000/b, pr.build.Seconds()*1000/b, pr.begin.Seconds()*1000/b, pr.commit.Seconds()*1000/b)
				for _, s := range names {
					line += fmt.Sprintf("; %s %.0fms %.0f rows", s, pr.stmt[s].Seconds()*1000/b, float64(pr.rows[s])/b)
				}
				r.logf("%s", line)
			}
			conn.Close(ctx)
			if _, err := admin.Exec(ctx, "DROP DATABASE "+db); err != nil {
				t.Fatal(err)
			}
		}
	}
	for v, rs := range results {
		r.logf("%-28s %v", v, rs)
	}
}
