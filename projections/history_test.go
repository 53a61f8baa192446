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

// TestLongHistorySurvivesReopen: a station that sends far more messages
// than its record keeps inline (a flood of stale and duplicate minutes)
// still has every entry in its history, in stream order, before and after
// the store is reopened.
func TestLongHistorySurvivesReopen(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	fx := genElection(t, rng, 2, 2)
	var base tally.Minutes
	for _, m := range genMinutes(rng, fx) {
		if m.Status == tally.Final && len(m.Votes) > 0 {
			base = cloneMinutes(m)
			break
		}
	}
	dir := filepath.Join(t.TempDir(), "p")
	store, err := projections.Open(dir, fx.e)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := fx.e.StationIndex(base.Station)
	subject := events.Subject(fx.e, s, base.Contest)
	var want []string
	seq := uint64(0)
	apply := func(m tally.Minutes) {
		t.Helper()
		seq++
		msg := projections.Msg{Seq: seq, Subject: subject, Data: events.AppendBinary(nil, &m), Time: time.Unix(int64(seq), 0)}
		o, err := store.Fold().Apply(&msg)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, o.String())
	}
	const n = 150
	for i := 0; i < n; i++ {
		m := cloneMinutes(base)
		m.Version = 10
		if i%3 == 1 {
			m.Version = int64(1 + i%9) // stale
		}
		apply(m)
		if i == n/2 {
			if _, err := store.Fold().Commit(); err != nil {
				t.Fatal(err)
			}
			store.Close()
			if store, err = projections.Open(dir, fx.e); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := store.Fold().Commit(); err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		view, err := store.Station(base.Contest, base.Station)
		if err != nil {
			t.Fatal(err)
		}
		if len(view.History) != n {
			t.Fatalf("%d history entries, want %d", len(view.History), n)
		}
		for i, h := range view.History {
			if h.Seq != uint64(i+1) || h.Outcome != want[i] {
				t.Fatalf("entry %d: seq %d outcome %s, want seq %d outcome %s", i, h.Seq, h.Outcome, i+1, want[i])
			}
		}
		if string(view.Current) == "null" {
			t.Fatal("no current minutes")
		}
	}
	check()
	store.Close()
	if store, err = projections.Open(dir, fx.e); err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	check()
}
