package tally_test

import (
	"slices"
	"testing"

	"github.com/tallyvn/tally/tally"
)

var hanoiAreaIDs = []string{"HN", "LB", "LB-BD", "LB-NT", "LB-PL", "LB-VH", "LB-CK", "GL", "GL-TQ"}

func TestExpectedCountsStationsVotingInEachArea(t *testing.T) {
	e := mustParse(t, hanoiElection)
	x := idx{t, e}
	want := map[string]map[string]int{
		"QH":      {"HN": 7, "LB": 6, "LB-BD": 2, "LB-NT": 2, "LB-PL": 1, "LB-VH": 1, "LB-CK": 0, "GL": 1, "GL-TQ": 1},
		"HDND-HN": {"HN": 7, "LB": 6, "LB-BD": 2, "LB-NT": 2, "LB-PL": 1, "LB-VH": 1, "LB-CK": 0, "GL": 1, "GL-TQ": 1},
		// GL-TQ-01 is in no unit of the district council: it does not vote.
		"HDND-LB": {"HN": 6, "LB": 6, "LB-BD": 2, "LB-NT": 2, "LB-PL": 1, "LB-VH": 1, "LB-CK": 0, "GL": 0, "GL-TQ": 0},
	}
	for contest, areas := range want {
		c := x.contest(contest)
		for _, a := range hanoiAreaIDs {
			if got := e.Expected(c, x.area(a)); got != areas[a] {
				t.Errorf("Expected(%s, %s) = %d, want %d", contest, a, got, areas[a])
			}
		}
	}
}

func TestStationUnitPutsEachStationInAtMostOneUnit(t *testing.T) {
	e := mustParse(t, hanoiElection)
	x := idx{t, e}
	want := map[string]map[string]string{
		"QH": {
			"LB-BD-01": "QH-HN-02", "LB-BD-02": "QH-HN-02", "LB-NT-01": "QH-HN-02", "LB-NT-02": "QH-HN-02",
			"LB-PL-01": "QH-HN-02", "LB-VH-01": "QH-HN-02", "GL-TQ-01": "QH-HN-05",
		},
		"HDND-HN": {
			"LB-BD-01": "TP-07", "LB-BD-02": "TP-07", "LB-NT-01": "TP-07", "LB-NT-02": "TP-07",
			"LB-PL-01": "TP-08", "LB-VH-01": "TP-08", "GL-TQ-01": "TP-09",
		},
		"HDND-LB": {
			"LB-BD-01": "Q-01", "LB-BD-02": "Q-01", "LB-NT-01": "Q-01", "LB-NT-02": "Q-02",
			"LB-PL-01": "Q-02", "LB-VH-01": "Q-02", "GL-TQ-01": "-",
		},
	}
	for contest, stations := range want {
		c := x.contest(contest)
		for _, s := range e.Stations {
			if got := unitID(e, c, e.StationUnit(c, x.station(s.ID))); got != stations[s.ID] {
				t.Errorf("StationUnit(%s, %s) = %s, want %s", contest, s.ID, got, stations[s.ID])
			}
		}
	}
}

func TestUnitStationsListsMembersAscending(t *testing.T) {
	e := mustParse(t, hanoiElection)
	x := idx{t, e}
	want := map[string][]string{
		"QH-HN-02": {"LB-BD-01", "LB-BD-02", "LB-NT-01", "LB-NT-02", "LB-PL-01", "LB-VH-01"},
		"QH-HN-05": {"GL-TQ-01"},
		"TP-07":    {"LB-BD-01", "LB-BD-02", "LB-NT-01", "LB-NT-02"},
		"TP-08":    {"LB-PL-01", "LB-VH-01"},
		"TP-09":    {"GL-TQ-01"},
		"Q-01":     {"LB-BD-01", "LB-BD-02", "LB-NT-01"},
		"Q-02":     {"LB-NT-02", "LB-PL-01", "LB-VH-01"},
	}
	for unit, stations := range want {
		c, u := x.unit(unit)
		var got []string
		members := e.UnitStations(c, u)
		for _, s := range members {
			got = append(got, e.Stations[s].ID)
		}
		if !slices.Equal(got, stations) {
			t.Errorf("UnitStations(%s) = %v, want %v", unit, got, stations)
		}
		if !slices.IsSorted(members) {
			t.Errorf("UnitStations(%s) = %v is not ascending", unit, members)
		}
	}
}

func TestAreaUnitsListsUnitsWithStationsInTheArea(t *testing.T) {
	e := mustParse(t, hanoiElection)
	x := idx{t, e}
	type want struct {
		units   []string
		voteLen int
	}
	tests := map[string]map[string]want{
		"QH": {
			"HN": {[]string{"QH-HN-02", "QH-HN-05"}, 9}, "LB": {[]string{"QH-HN-02"}, 5},
			"LB-BD": {[]string{"QH-HN-02"}, 5}, "LB-NT": {[]string{"QH-HN-02"}, 5},
			"LB-PL": {[]string{"QH-HN-02"}, 5}, "LB-VH": {[]string{"QH-HN-02"}, 5}, "LB-CK": {nil, 0},
			"GL": {[]string{"QH-HN-05"}, 4}, "GL-TQ": {[]string{"QH-HN-05"}, 4},
		},
		"HDND-HN": {
			"HN": {[]string{"TP-07", "TP-08", "TP-09"}, 11}, "LB": {[]string{"TP-07", "TP-08"}, 9},
			"LB-BD": {[]string{"TP-07"}, 4}, "LB-NT": {[]string{"TP-07"}, 4},
			"LB-PL": {[]string{"TP-08"}, 5}, "LB-VH": {[]string{"TP-08"}, 5}, "LB-CK": {nil, 0},
			"GL": {[]string{"TP-09"}, 2}, "GL-TQ": {[]string{"TP-09"}, 2},
		},
		"HDND-LB": {
			// No votes for a district council in its province (CONTRACT §4 v2).
			"HN": {[]string{"Q-01", "Q-02"}, 0}, "LB": {[]string{"Q-01", "Q-02"}, 8},
			"LB-BD": {[]string{"Q-01"}, 3}, "LB-NT": {[]string{"Q-01", "Q-02"}, 8},
			"LB-PL": {[]string{"Q-02"}, 5}, "LB-VH": {[]string{"Q-02"}, 5}, "LB-CK": {nil, 0},
			"GL": {nil, 0}, "GL-TQ": {nil, 0},
		},
	}
	for contest, areas := range tests {
		c := x.contest(contest)
		for _, a := range hanoiAreaIDs {
			w := areas[a]
			var got []string
			for _, u := range e.AreaUnits(c, x.area(a)) {
				got = append(got, unitID(e, c, int(u)))
			}
			if !slices.Equal(got, w.units) {
				t.Errorf("AreaUnits(%s, %s) = %v, want %v", contest, a, got, w.units)
			}
			if got := e.AreaVoteLen(c, x.area(a)); got != w.voteLen {
				t.Errorf("AreaVoteLen(%s, %s) = %d, want %d", contest, a, got, w.voteLen)
			}
		}
	}
}

// TestVoteOffsetsPlaceUnitCandidatesInAreaVoteVectors checks where a
// station's unit candidates start in the vote vectors of its ward, district
// and province, including the ward Ngọc Thụy, which spans two units of the
// district council.
func TestVoteOffsetsPlaceUnitCandidatesInAreaVoteVectors(t *testing.T) {
	e := mustParse(t, hanoiElection)
	x := idx{t, e}
	want := map[string]map[string][3]int32{
		"QH": {
			"LB-BD-01": {0, 0, 0}, "LB-NT-02": {0, 0, 0}, "LB-VH-01": {0, 0, 0},
			"GL-TQ-01": {0, 0, 5}, // after the 5 candidates of QH-HN-02 in Hà Nội
		},
		"HDND-HN": {
			"LB-BD-01": {0, 0, 0}, "LB-BD-02": {0, 0, 0}, "LB-NT-01": {0, 0, 0}, "LB-NT-02": {0, 0, 0},
			"LB-PL-01": {0, 4, 4}, "LB-VH-01": {0, 4, 4}, // after TP-07's 4
			"GL-TQ-01": {0, 0, 9}, // after TP-07's 4 and TP-08's 5
		},
		"HDND-LB": {
			// A district council's votes are left out of its province's
			// result (CONTRACT §4 v2): no offset there.
			"LB-BD-01": {0, 0, -1}, "LB-BD-02": {0, 0, -1}, "LB-NT-01": {0, 0, -1},
			"LB-NT-02": {3, 3, -1}, // Ngọc Thụy's vector is Q-01's 3 then Q-02's 5
			"LB-PL-01": {0, 3, -1}, "LB-VH-01": {0, 3, -1},
		},
	}
	for contest, stations := range want {
		c := x.contest(contest)
		for s, offs := range stations {
			if got := voteOffsets(e, c, x.station(s)); got != offs {
				t.Errorf("VoteOffsets(%s, %s) = %v, want %v", contest, s, got, offs)
			}
		}
	}
}

// TestVoteOffsetsAgreeWithAreaUnits checks, for every voting station of every
// contest, that its offsets in its three areas point at its own unit's
// candidates in the vector laid out by AreaUnits, and that the vector fits
// AreaVoteLen.
func TestVoteOffsetsAgreeWithAreaUnits(t *testing.T) {
	e := mustParse(t, hanoiElection)
	for c := range e.Contests {
		for s := range e.Stations {
			u := e.StationUnit(c, s)
			if u < 0 {
				continue
			}
			areas := e.StationAreas(s)
			offs := voteOffsets(e, c, s)
			for k, a := range areas {
				if !e.AreaHasVotes(c, a) {
					if offs[k] != -1 || e.AreaVoteLen(c, a) != 0 {
						t.Errorf("contest %s area %s: no votes, yet offset %d, vote length %d", e.Contests[c].ID, e.Areas[a].ID, offs[k], e.AreaVoteLen(c, a))
					}
					continue
				}
				// Lay the area's vector out: candidate ids end to end.
				var vector []string
				for _, v := range e.AreaUnits(c, a) {
					for _, cand := range e.Contests[c].Units[v].Candidates {
						vector = append(vector, cand.ID)
					}
				}
				if len(vector) != e.AreaVoteLen(c, a) {
					t.Errorf("contest %s area %s: AreaVoteLen = %d, vector from AreaUnits has %d", e.Contests[c].ID, e.Areas[a].ID, e.AreaVoteLen(c, a), len(vector))
				}
				cands := e.Contests[c].Units[u].Candidates
				off := int(offs[k])
				if off+len(cands) > len(vector) {
					t.Errorf("contest %s station %s area %s: offset %d + %d candidates beyond vector length %d", e.Contests[c].ID, e.Stations[s].ID, e.Areas[a].ID, off, len(cands), len(vector))
					continue
				}
				for i, cand := range cands {
					if vector[off+i] != cand.ID {
						t.Errorf("contest %s station %s area %s: vector[%d] = %s, want %s", e.Contests[c].ID, e.Stations[s].ID, e.Areas[a].ID, off+i, vector[off+i], cand.ID)
					}
				}
			}
		}
	}
}

func TestStationAreasAndAreaParentFollowTheHierarchy(t *testing.T) {
	e := mustParse(t, hanoiElection)
	x := idx{t, e}
	stations := map[string][3]string{
		"LB-BD-01": {"LB-BD", "LB", "HN"},
		"LB-NT-02": {"LB-NT", "LB", "HN"},
		"GL-TQ-01": {"GL-TQ", "GL", "HN"},
	}
	for s, want := range stations {
		got := e.StationAreas(x.station(s))
		for k := range got {
			if got[k] != x.area(want[k]) {
				t.Errorf("StationAreas(%s)[%d] = %d, want %s (%d)", s, k, got[k], want[k], x.area(want[k]))
			}
		}
	}
	parents := map[string]string{"HN": "", "LB": "HN", "GL": "HN", "LB-CK": "LB", "GL-TQ": "GL"}
	for a, want := range parents {
		got := e.AreaParent(x.area(a))
		switch {
		case want == "" && got != -1:
			t.Errorf("AreaParent(%s) = %d, want -1", a, got)
		case want != "" && got != x.area(want):
			t.Errorf("AreaParent(%s) = %d, want %s (%d)", a, got, want, x.area(want))
		}
	}
}

func TestIndexLookupsResolveIDs(t *testing.T) {
	e := mustParse(t, hanoiElection)
	for i, a := range e.Areas {
		if got, ok := e.AreaIndex(a.ID); !ok || got != i {
			t.Errorf("AreaIndex(%s) = %d, %v; want %d", a.ID, got, ok, i)
		}
	}
	for i, s := range e.Stations {
		if got, ok := e.StationIndex(s.ID); !ok || got != i {
			t.Errorf("StationIndex(%s) = %d, %v; want %d", s.ID, got, ok, i)
		}
	}
	for ci, c := range e.Contests {
		if got, ok := e.ContestIndex(c.ID); !ok || got != ci {
			t.Errorf("ContestIndex(%s) = %d, %v; want %d", c.ID, got, ok, ci)
		}
		for ui, u := range c.Units {
			if gc, gu, ok := e.UnitIndex(u.ID); !ok || gc != ci || gu != ui {
				t.Errorf("UnitIndex(%s) = %d, %d, %v; want %d, %d", u.ID, gc, gu, ok, ci, ui)
			}
			for k, cand := range u.Candidates {
				if got, ok := e.CandidateIndex(ci, ui, cand.ID); !ok || got != k {
					t.Errorf("CandidateIndex(%s, %s) = %d, %v; want %d", u.ID, cand.ID, got, ok, k)
				}
			}
		}
	}
	unknown := []struct {
		name string
		ok   bool
	}{
		{"AreaIndex(LB-GB)", second(e.AreaIndex("LB-GB"))},
		{"StationIndex(LB-BD-99)", second(e.StationIndex("LB-BD-99"))},
		{"ContestIndex(HDND-GL)", second(e.ContestIndex("HDND-GL"))},
		{"UnitIndex(Q-03)", third(e.UnitIndex("Q-03"))},
		// A candidate of another unit is not a candidate of Q-01.
		{"CandidateIndex(Q-01, Q-02-1)", second(e.CandidateIndex(2, 0, "Q-02-1"))},
	}
	for _, u := range unknown {
		if u.ok {
			t.Errorf("%s found, want unknown", u.name)
		}
	}
}

func second[T any](_ T, ok bool) bool        { return ok }
func third[T, U any](_ T, _ U, ok bool) bool { return ok }

// voteOffsets returns where station s's unit's candidates start in the vote
// vectors of its three areas in contest c.
func voteOffsets(e *tally.Election, c, s int) [3]int32 {
	v, ok := e.Voter(c, s)
	if !ok {
		return [3]int32{-2, -2, -2}
	}
	return [3]int32(e.VoterOffsets(c, v))
}
