package projections_test

import (
	"encoding/json"
	"fmt"
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
	// Versions climb (applied) with stale and duplicate ones in between,
	// well past what the record keeps inline.
	const n = 150
	version := int64(0)
	for i := 0; i < n; i++ {
		m := cloneMinutes(base)
		switch i % 3 {
		case 0:
			version++
			m.Reason = fmt.Sprintf("lần %d", version)
		case 1:
			m.Reason = fmt.Sprintf("lần %d", version) // duplicate of the last
		case 2:
			m.Reason = "cũ"
			m.Version = 0 // set below: stale
		}
		if m.Version == 0 {
			m.Version = max(1, version-1)
			if version == 1 {
				m.Reason = fmt.Sprintf("lần %d", version)
			}
		} else {
			m.Version = version
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
		var cur struct {
			Version int64  `json:"version"`
			Reason  string `json:"reason"`
		}
		if err := json.Unmarshal(view.Current, &cur); err != nil {
			t.Fatal(err)
		}
		if cur.Version != version || cur.Reason != fmt.Sprintf("lần %d", version) {
			t.Fatalf("current minutes are version %d %q, want the last applied, version %d", cur.Version, cur.Reason, version)
		}
		// The totals follow the last applied minutes.
		res, err := store.AreaResult(base.Contest, fx.wardOf[base.Station])
		if err != nil {
			t.Fatal(err)
		}
		if res.StationsReporting != 1 || res.Valid != base.Counts.Valid {
			t.Fatalf("ward: reporting %d valid %d, want 1 and %d", res.StationsReporting, res.Valid, base.Counts.Valid)
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
