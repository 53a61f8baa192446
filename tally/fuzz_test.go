package tally_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tallyvn/tally/tally"
)

// FuzzParseElection feeds election files to Parse (seed corpus in
// testdata/fuzz/FuzzParseElection: the Long Biên example and small valid
// and invalid files). It must never panic. A refused file is an
// *ElectionError listing at least one problem, each one said in words. An
// accepted file has valid ids, consistent indexes and vote layouts,
// and survives a JSON round trip unchanged.
func FuzzParseElection(f *testing.F) {
	f.Add([]byte(hanoiElection))
	f.Add([]byte(twoTier))
	f.Add([]byte(`{"id":"x","name":"x","date":"2021-05-23","areas":[],"stations":[],"contests":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := tally.Parse(data)
		if err != nil {
			var ee *tally.ElectionError
			if !errors.As(err, &ee) || len(ee.Problems) == 0 {
				t.Fatalf("error %v (%T) is not an ElectionError with problems", err, err)
			}
			msg := err.Error()
			for _, p := range ee.Problems {
				if strings.TrimSpace(p) == "" || !strings.Contains(msg, p) {
					t.Fatalf("problem %q empty or missing from %q", p, msg)
				}
			}
			return
		}
		checkElection(t, e)
		// What Parse accepted marshals to a file Parse accepts again, and
		// that file marshals to the same bytes.
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := tally.Parse(b)
		if err != nil {
			t.Fatalf("the re-encoded election is refused: %v\n%s", err, b)
		}
		b2, _ := json.Marshal(e2)
		if !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed the election:\n%s\n%s", b, b2)
		}
	})
}

// checkElection checks the invariants of an accepted election.
func checkElection(t *testing.T, e *tally.Election) {
	t.Helper()
	if !tally.ValidID(e.ID) {
		t.Fatalf("election id %q", e.ID)
	}
	for i, a := range e.Areas {
		if j, ok := e.AreaIndex(a.ID); !ok || j != i || !tally.ValidID(a.ID) {
			t.Fatalf("area %d %q: index %d %v", i, a.ID, j, ok)
		}
		p := e.AreaParent(i)
		levels := e.AreaLevels()
		d := e.AreaDepth(i)
		switch {
		case d < 0 || d >= len(levels) || levels[d] != a.Level:
			t.Fatalf("area %q level %q at depth %d of %v", a.ID, a.Level, d, levels)
		case d == 0 && p != -1:
			t.Fatalf("top-level %s %q has parent %d", a.Level, a.ID, p)
		case d > 0 && (p < 0 || e.Areas[p].ID != a.Parent || e.Areas[p].Level != levels[d-1]):
			t.Fatalf("%s %q: parent %d", a.Level, a.ID, p)
		}
	}
	for s, st := range e.Stations {
		if j, ok := e.StationIndex(st.ID); !ok || j != s || !tally.ValidID(st.ID) {
			t.Fatalf("station %d %q", s, st.ID)
		}
		areas := e.StationAreas(s)
		levels := e.AreaLevels()
		if len(areas) != len(levels) || e.Areas[areas[0]].ID != st.AreaID() || e.Areas[areas[0]].Level != levels[len(levels)-1] {
			t.Fatalf("station %q areas %v", st.ID, areas)
		}
		for k := 1; k < len(areas); k++ {
			if areas[k] != e.AreaParent(areas[k-1]) {
				t.Fatalf("station %q areas %v", st.ID, areas)
			}
		}
	}
	for c := range e.Contests {
		contest := &e.Contests[c]
		if j, ok := e.ContestIndex(contest.ID); !ok || j != c {
			t.Fatalf("contest %q", contest.ID)
		}
		expected := make([]int, len(e.Areas))
		members := 0
		for s := range e.Stations {
			u := e.StationUnit(c, s)
			if u < -1 || u >= len(contest.Units) {
				t.Fatalf("station %d unit %d", s, u)
			}
			if u < 0 {
				continue
			}
			members++
			if _, found := slices.BinarySearch(e.UnitStations(c, u), int32(s)); !found {
				t.Fatalf("station %d votes in unit %d but is not among its stations", s, u)
			}
			n := len(contest.Units[u].Candidates)
			v, ok := e.Voter(c, s)
			if !ok || int(e.Voters(c)[v]) != s || e.VoterUnit(c, v) != u {
				t.Fatalf("station %d: voter %d %v", s, v, ok)
			}
			offs := e.VoterOffsets(c, v)
			for k, a := range e.StationAreas(s) {
				expected[a]++
				if la, ok := e.ContestArea(c, a); !ok || int(e.VoterAreas(c, v)[k]) != la {
					t.Fatalf("station %d area %d: local %d %v", s, a, la, ok)
				}
				if !e.AreaHasVotes(c, a) {
					if offs[k] != -1 {
						t.Fatalf("station %d area %d: offset %d in an area without votes", s, a, offs[k])
					}
					continue
				}
				// The station's unit's candidates sit in the area's vote
				// vector after those of the area's units before it.
				off := 0
				for _, au := range e.AreaUnits(c, a) {
					if int(au) == u {
						break
					}
					off += len(contest.Units[au].Candidates)
				}
				if int(offs[k]) != off || off+n > e.AreaVoteLen(c, a) {
					t.Fatalf("station %d area %d: offset %d, want %d (vote vector %d)", s, a, offs[k], off, e.AreaVoteLen(c, a))
				}
			}
		}
		for a := range e.Areas {
			if e.Expected(c, a) != expected[a] {
				t.Fatalf("contest %q area %q: expected %d, counted %d", contest.ID, e.Areas[a].ID, e.Expected(c, a), expected[a])
			}
			if !slices.IsSorted(e.AreaUnits(c, a)) || len(slices.Compact(slices.Clone(e.AreaUnits(c, a)))) != len(e.AreaUnits(c, a)) {
				t.Fatalf("area units %v", e.AreaUnits(c, a))
			}
		}
		total := 0
		for u := range contest.Units {
			unit := &contest.Units[u]
			if cu, uu, ok := e.UnitIndex(unit.ID); !ok || cu != c || uu != u {
				t.Fatalf("unit %q", unit.ID)
			}
			st := e.UnitStations(c, u)
			if unit.Seats < 1 || len(unit.Candidates) <= unit.Seats || len(st) == 0 || !slices.IsSorted(st) {
				t.Fatalf("unit %q: seats %d, %d candidates, stations %v", unit.ID, unit.Seats, len(unit.Candidates), st)
			}
			total += len(st)
			for k, cand := range unit.Candidates {
				if j, ok := e.CandidateIndex(c, u, cand.ID); !ok || j != k {
					t.Fatalf("candidate %q", cand.ID)
				}
			}
			// The unit rules run on any totals without panicking and rank
			// every candidate once.
			votes := make([]int64, len(unit.Candidates))
			for k := range votes {
				votes[k] = int64(k % 3)
			}
			d := e.Decide(c, u, len(st), tally.Counts{Registered: 10, Voted: 6, Valid: 4}, votes)
			if r := slices.Sorted(slices.Values(d.Ranking)); len(r) != len(votes) || r[0] != 0 || r[len(r)-1] != len(votes)-1 || len(slices.Compact(r)) != len(votes) {
				t.Fatalf("unit %q ranking %v", unit.ID, d.Ranking)
			}
			if len(d.Winners) > unit.Seats {
				t.Fatalf("unit %q: %d winners for %d seats", unit.ID, len(d.Winners), unit.Seats)
			}
		}
		if total != members {
			t.Fatalf("contest %q: units hold %d stations, %d vote", contest.ID, total, members)
		}
	}
}
