package projections_test

import (
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// benchWorkload is an election and a base final minutes per (contest,
// station); messages are made from it with ever higher versions, so every
// one of them is applied (the expensive outcome).
type benchWorkload struct {
	fx   *fixture
	base []tally.Minutes
	subj []string
}

func newBenchWorkload(b *testing.B) *benchWorkload {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	fx := genElection(b, rng, 20, 40) // 1,600 stations, two contests
	w := &benchWorkload{fx: fx}
	seen := map[string]bool{}
	for _, m := range genMinutes(rng, fx) {
		if key := m.Contest + "/" + m.Station; m.Status == tally.Final && m.Version == 1 && len(m.Votes) > 0 && !seen[key] {
			seen[key] = true
			s, _ := fx.e.StationIndex(m.Station)
			var r tally.Resolved
			if v := fx.e.Check(&m, 0, &r, nil); len(v) > 0 {
				continue
			}
			w.base = append(w.base, m)
			w.subj = append(w.subj, events.Subject(fx.e, s, m.Contest))
		}
	}
	return w
}

// chunk encodes msgs [from, from+n) of the endless sequence into dst.
func (w *benchWorkload) chunk(dst []projections.Msg, from, n int) []projections.Msg {
	dst = dst[:0]
	for i := from; i < from+n; i++ {
		k := i % len(w.base)
		m := w.base[k]
		m.Version = int64(i/len(w.base) + 1)
		m.Votes[0].Count = int64(i % 7) // vary content a little
		dst = append(dst, projections.Msg{Seq: uint64(i + 1), Subject: w.subj[k], Data: events.AppendBinary(nil, &m), Time: time.Unix(0, 0)})
	}
	return dst
}

const benchChunk = 2000

func runFoldBench(b *testing.B, commit bool) {
	w := newBenchWorkload(b)
	store, err := projections.Open(filepath.Join(b.TempDir(), "p"), w.fx.e)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	fold := store.Fold()
	var msgs []projections.Msg
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		msgs = w.chunk(msgs, done, min(benchChunk, b.N-done))
		if !commit && fold.Pending() {
			if _, err := fold.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		for i := range msgs {
			if o, err := fold.Apply(&msgs[i]); err != nil || o != projections.Applied {
				b.Fatalf("outcome %v, err %v", o, err)
			}
		}
		if commit {
			if _, err := fold.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		done += len(msgs)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkFoldApply measures decode, check, history comparison and delta
// application, staged into a Pebble batch, without the commit.
func BenchmarkFoldApply(b *testing.B) { runFoldBench(b, false) }

// BenchmarkFoldCommit adds the fsynced Pebble commit of every 2,000 events.
func BenchmarkFoldCommit(b *testing.B) { runFoldBench(b, true) }

// BenchmarkDecodeCheck measures the binary decode and the rules check alone.
func BenchmarkDecodeCheck(b *testing.B) {
	w := newBenchWorkload(b)
	msgs := w.chunk(nil, 0, len(w.base))
	var m tally.Minutes
	var r tally.Resolved
	var viol []tally.Violation
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := events.DecodeBinary(msgs[i%len(msgs)].Data, &m); err != nil {
			b.Fatal(err)
		}
		if viol = w.fx.e.Check(&m, 0, &r, viol[:0]); len(viol) > 0 {
			b.Fatal(viol)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
