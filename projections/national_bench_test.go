package projections_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tallyvn/tally/bench/workload"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// nationalNight is Vietnam 2021 at full scale (bench/workload, seed 2021)
// and its whole election night in the gateway's binary encoding: about
// 85,000 stations, four contests, 674,000 minutes.
type nationalNight struct {
	e    *tally.Election
	msgs []projections.Msg
}

var national = sync.OnceValues(func() (*nationalNight, error) {
	provinces := 0 // TALLY_BENCH_PROVINCES=N keeps the first N, for quick looks
	if s := os.Getenv("TALLY_BENCH_PROVINCES"); s != "" {
		provinces, _ = strconv.Atoi(s)
	}
	f, err := workload.National(workload.NationalConfig{Seed: 2021, Provinces: provinces})
	if err != nil {
		return nil, err
	}
	e, err := f.Parse()
	if err != nil {
		return nil, err
	}
	n := &nationalNight{e: e}
	var arena []byte
	type span struct{ from, to int }
	var spans []span
	err = workload.Night(e, workload.NightConfig{Seed: 2021}, func(sub *workload.Submission) error {
		from := len(arena)
		arena = events.AppendBinary(arena, &sub.Minutes)
		spans = append(spans, span{from, len(arena)})
		n.msgs = append(n.msgs, projections.Msg{
			Seq:     uint64(len(n.msgs) + 1),
			Subject: events.Subject(e, sub.Station, sub.Minutes.Contest),
			Time:    time.Unix(0, 0),
		})
		return nil
	})
	for i, sp := range spans {
		n.msgs[i].Data = arena[sp.from:sp.to:sp.to]
	}
	return n, err
})

// nationalJSON is the national night as stations publishing straight to
// NATS send it: each minutes in its JSON form (CONTRACT §3), no hint.
var nationalJSON = sync.OnceValues(func() (*nationalNight, error) {
	n, err := national()
	if err != nil {
		return nil, err
	}
	js := &nationalNight{e: n.e, msgs: slices.Clone(n.msgs)}
	var m tally.Minutes
	for i := range js.msgs {
		if err := events.DecodeBinary(n.msgs[i].Data, &m); err != nil {
			return nil, err
		}
		js.msgs[i].Data = events.AppendJSON(nil, &m)
	}
	return js, nil
})

// runNationalBench folds the whole national night into a fresh store per
// iteration, committing every benchChunk events when commit is set. It
// folds with Fold.ApplyAll, as the rebuild and a fold catching up do;
// TALLY_BENCH_ONE_BY_ONE=1 folds with Apply, one message at a time.
func runNationalBench(b *testing.B, commit bool) {
	runNational(b, national, commit)
}

func runNational(b *testing.B, night func() (*nationalNight, error), commit bool) {
	n, err := night()
	if err != nil {
		b.Fatal(err)
	}
	batch := benchChunk // TALLY_BENCH_BATCH=N commits every N events instead
	if s := os.Getenv("TALLY_BENCH_BATCH"); s != "" {
		if batch, err = strconv.Atoi(s); err != nil || batch <= 0 {
			b.Fatalf("TALLY_BENCH_BATCH=%q: want a positive number", s)
		}
	}
	var outcomes [projections.Rejected + 1]int
	var batches, keys, bytes int64 // staged, over every iteration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		store, err := projections.Open(filepath.Join(b.TempDir(), "p"+strconv.Itoa(i)), n.e)
		if err != nil {
			b.Fatal(err)
		}
		fold := store.Fold()
		outcomes = [projections.Rejected + 1]int{}
		b.StartTimer()
		for from := 0; from < len(n.msgs); from += batch {
			if os.Getenv("TALLY_BENCH_ONE_BY_ONE") == "1" {
				for j := from; j < min(from+batch, len(n.msgs)); j++ {
					o, err := fold.Apply(&n.msgs[j])
					if err != nil {
						b.Fatal(err)
					}
					outcomes[o]++
				}
			} else if err := fold.ApplyAll(n.msgs[from:min(from+batch, len(n.msgs))], func(_ int, o projections.Outcome) { outcomes[o]++ }); err != nil {
				b.Fatal(err)
			}
			if !commit {
				b.StopTimer()
			}
			done, err := fold.EndBatch()
			if err != nil {
				b.Fatal(err)
			}
			if done != nil {
				batches++
				keys += int64(done.Keys)
				bytes += int64(done.Bytes)
				if err := fold.CommitBatch(done); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
		}
		b.StopTimer()
		store.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*len(n.msgs))/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(n.msgs)), "ns/event")
	// What a batch stages into Pebble: its keys and encoded bytes, on
	// average (they do not depend on the machine's load).
	b.ReportMetric(float64(keys)/float64(batches), "keys/batch")
	b.ReportMetric(float64(bytes)/float64(batches), "B/batch")
	if outcomes[projections.Applied] == 0 {
		b.Fatal("nothing applied")
	}
}

// BenchmarkNationalApply folds the national night in memory (decode, check,
// seal, history, deltas, staging into the Pebble batch); the commits run
// with the timer stopped: the fold core.
func BenchmarkNationalApply(b *testing.B) { runNationalBench(b, false) }

// BenchmarkNationalApplyJSON is BenchmarkNationalApply on the JSON form
// of the same minutes (what a station publishing straight to NATS sends):
// the JSON path, against the gateway's hinted binary.
func BenchmarkNationalApplyJSON(b *testing.B) { runNational(b, nationalJSON, false) }

// BenchmarkNationalCommit adds the fsynced Pebble commit every 2,000 events
// (TALLY_BENCH_BATCH).
func BenchmarkNationalCommit(b *testing.B) { runNationalBench(b, true) }

// BenchmarkNationalAreaJSON renders every area result of every contest
// (Store.AppendAreaJSON, what the SSE hub does for each changed area)
// once the national night is folded: the read side of the key layout.
func BenchmarkNationalAreaJSON(b *testing.B) {
	n, err := national()
	if err != nil {
		b.Fatal(err)
	}
	store, err := projections.Open(filepath.Join(b.TempDir(), "p"), n.e)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	fold := store.Fold()
	for i := range n.msgs {
		if _, err := fold.Apply(&n.msgs[i]); err != nil {
			b.Fatal(err)
		}
		if i%10_000 == 9_999 {
			if _, err := fold.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, err := fold.Commit(); err != nil {
		b.Fatal(err)
	}
	var buf []byte
	results := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for c := range n.e.Contests {
			for a := range n.e.Areas {
				if buf, _, err = store.AppendAreaJSON(buf[:0], n.e.Contests[c].ID, n.e.Areas[a].ID); err != nil {
					b.Fatal(err)
				}
				results++
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(results), "ns/result")
}
