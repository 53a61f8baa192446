package projections_test

import (
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// TestViewIsOneSnapshot: a View opened before the fold commits more minutes
// keeps answering what was there when it opened (every figure at one
// applied_seq), while the Store's own queries move on; and its stations'
// contributions sum to its unit and area results.
func TestViewIsOneSnapshot(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	fx := genElection(t, rng, 4, 6)
	store, err := projections.Open(filepath.Join(t.TempDir(), "p"), fx.e)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	fold := store.Fold()
	all := genMinutes(rng, fx)
	half := len(all) / 2
	apply := func(from, to int) {
		for i := from; i < to; i++ {
			m := all[i]
			s, _ := fx.e.StationIndex(m.Station)
			msg := projections.Msg{Seq: uint64(i + 1), Subject: events.Subject(fx.e, s, m.Contest), Data: events.AppendBinary(nil, &m), Time: time.Unix(0, 0)}
			if _, err := fold.Apply(&msg); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := fold.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	apply(0, half)

	// What the store answers now, read before the view opens.
	type snapshot struct {
		areas map[string]*projections.AreaResult
		units map[string]*projections.UnitResult
	}
	read := func() snapshot {
		s := snapshot{areas: map[string]*projections.AreaResult{}, units: map[string]*projections.UnitResult{}}
		for _, c := range fx.e.Contests {
			for _, a := range fx.e.Areas {
				r, err := store.AreaResult(c.ID, a.ID)
				if err != nil {
					t.Fatal(err)
				}
				s.areas[c.ID+"/"+a.ID] = r
			}
			for _, u := range c.Units {
				r, err := store.UnitResult(c.ID, u.ID)
				if err != nil {
					t.Fatal(err)
				}
				s.units[c.ID+"/"+u.ID] = r
			}
		}
		return s
	}
	before := read()
	view, err := store.View()
	if err != nil {
		t.Fatal(err)
	}
	defer view.Close()
	seq := view.AppliedSeq()
	if seq != uint64(half) {
		t.Fatalf("view applied_seq %d, want %d", seq, half)
	}

	apply(half, len(all))
	after := read()
	if reflect.DeepEqual(before.units, after.units) {
		t.Fatal("the second half changed no unit result: the test proves nothing")
	}

	for _, c := range fx.e.Contests {
		n := 0
		for r, err := range view.AreaResults(c.ID) {
			if err != nil {
				t.Fatal(err)
			}
			want := before.areas[c.ID+"/"+r.Area]
			if r.AppliedSeq != seq || string(r.AppendJSON(nil)) != string(want.AppendJSON(nil)) {
				t.Fatalf("view area %s/%s:\n got %s\nwant %s", c.ID, r.Area, r.AppendJSON(nil), want.AppendJSON(nil))
			}
			n++
		}
		if n != len(fx.e.Areas) {
			t.Fatalf("AreaResults(%s) yielded %d areas, want %d", c.ID, n, len(fx.e.Areas))
		}
		for r, err := range view.UnitResults(c.ID) {
			if err != nil {
				t.Fatal(err)
			}
			if want := before.units[c.ID+"/"+r.Unit]; !reflect.DeepEqual(r, want) {
				t.Fatalf("view unit %s/%s:\n got %+v\nwant %+v", c.ID, r.Unit, r, want)
			}
			// The unit's stations, read through the same view, sum to it.
			ci, _ := fx.e.ContestIndex(c.ID)
			_, ui, _ := fx.e.UnitIndex(r.Unit)
			var sum tally.Counts
			votes := map[string]int64{}
			var reporting, final int64
			for _, st := range fx.e.UnitStations(ci, ui) {
				sr, err := view.Station(c.ID, fx.e.Stations[st].ID)
				if err != nil {
					t.Fatal(err)
				}
				if !sr.Reporting() {
					continue
				}
				reporting++
				if sr.Status == tally.Final {
					final++
				}
				sum.Registered += sr.Counts.Registered
				sum.Voted += sr.Counts.Voted
				sum.Issued += sr.Counts.Issued
				sum.Received += sr.Counts.Received
				sum.Valid += sr.Counts.Valid
				sum.Invalid += sr.Counts.Invalid
				for k, cand := range fx.e.Contests[ci].Units[ui].Candidates {
					votes[cand.ID] += sr.Votes[k]
				}
			}
			got := tally.Counts{Registered: r.Registered, Voted: r.Voted, Issued: r.Issued, Received: r.Received, Valid: r.Valid, Invalid: r.Invalid}
			if sum != got || reporting != r.StationsReporting || final != r.StationsFinal || !reflect.DeepEqual(votes, r.Votes) {
				t.Fatalf("unit %s/%s: stations sum to %+v %v (reporting %d, final %d); result %+v %v (%d, %d)",
					c.ID, r.Unit, sum, votes, reporting, final, got, r.Votes, r.StationsReporting, r.StationsFinal)
			}
		}
	}
	if _, err := view.Station("nope", fx.e.Stations[0].ID); err == nil {
		t.Fatal("Station with an unknown contest: no error")
	}
}
