package tally_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tallyvn/tally/tally"
)

// twoTier is a two-tier (2026) election: Hà Nội with three communes, a
// National Assembly unit spanning more stations than the file lists, one
// commune-council contest holding the units of two councils (one given, one
// inferred) and a city-council unit.
const twoTier = `{
  "id": "hn-2026", "name": "Bầu cử năm 2026", "date": "2026-03-15",
  "levels": ["province", "commune"],
  "areas": [
    {"id": "HN", "name": "Thành phố Hà Nội", "level": "province"},
    {"id": "HN-BD", "name": "Phường Bồ Đề", "level": "commune", "parent": "HN"},
    {"id": "HN-VH", "name": "Phường Việt Hưng", "level": "commune", "parent": "HN"},
    {"id": "HN-GL", "name": "Xã Gia Lâm", "level": "commune", "parent": "HN"}
  ],
  "stations": [
    {"id": "BD-01", "name": "Khu vực bỏ phiếu số 1", "area": "HN-BD", "registered": 1720},
    {"id": "BD-02", "name": "Khu vực bỏ phiếu số 2", "area": "HN-BD", "registered": 1500},
    {"id": "VH-01", "name": "Khu vực bỏ phiếu số 1", "ward": "HN-VH", "registered": 1300},
    {"id": "GL-01", "name": "Khu vực bỏ phiếu số 1", "area": "HN-GL", "ward": "HN-GL", "registered": 900}
  ],
  "contests": [
    {"id": "QH", "name": "Đại biểu Quốc hội khóa XVI", "level": "national", "units": [
      {"id": "QH-10", "name": "Đơn vị bầu cử số 10", "seats": 3, "areas": ["HN"], "stations_outside": 140,
       "candidates": [
         {"id": "QH-10-1", "name": "Trần Thị Bình", "born": "1975-09-02"},
         {"id": "QH-10-2", "name": "Lê Văn Cường", "born": "1970-01-01"},
         {"id": "QH-10-3", "name": "Phạm Thị Dung", "born": "1981-03-04"},
         {"id": "QH-10-4", "name": "Ngô Văn Em", "born": "1969-05-06"},
         {"id": "QH-10-5", "name": "Đỗ Thị Giang", "born": "1990-07-08"}]}
    ]},
    {"id": "HDND-TP", "name": "Đại biểu HĐND thành phố", "level": "province", "units": [
      {"id": "TP-01", "name": "Đơn vị bầu cử số 1", "seats": 2, "areas": ["HN-BD", "HN-VH", "HN-GL"],
       "candidates": [
         {"id": "TP-01-1", "name": "Vũ Văn Hải", "born": "1972-02-02"},
         {"id": "TP-01-2", "name": "Hồ Thị Lan", "born": "1980-02-02"},
         {"id": "TP-01-3", "name": "Mai Văn Minh", "born": "1985-02-02"}]}
    ]},
    {"id": "HDND-X", "name": "Đại biểu HĐND cấp xã", "level": "commune", "units": [
      {"id": "X-BD-01", "name": "Đơn vị bầu cử số 1", "council": "HN-BD", "seats": 1, "round": "first",
       "areas": ["HN-BD"], "candidates": [
         {"id": "X-BD-01-1", "name": "Lê Văn Chính", "born": "1980-01-15"},
         {"id": "X-BD-01-2", "name": "Lý Thị Nga", "born": "1982-01-15"}]},
      {"id": "X-GL-01", "name": "Đơn vị bầu cử số 1", "seats": 1, "round": "additional",
       "stations": ["GL-01"], "candidates": [
         {"id": "X-GL-01-1", "name": "Tạ Văn Phúc", "born": "1979-01-15"},
         {"id": "X-GL-01-2", "name": "Kiều Thị Quỳnh", "born": "1983-01-15"}]}
    ]}
  ]
}`

func TestParseAcceptsATwoTierFile(t *testing.T) {
	e := mustParse(t, twoTier)
	if got := e.AreaLevels(); !slices.Equal(got, []tally.AreaLevel{tally.Province, tally.Commune}) {
		t.Errorf("AreaLevels = %v", got)
	}
	x := idx{t, e}
	if got := e.StationAreas(x.station("VH-01")); !slices.Equal(got, []int{x.area("HN-VH"), x.area("HN")}) {
		t.Errorf("StationAreas(VH-01) = %v (ward accepted for area)", got)
	}
	cx := x.contest("HDND-X")
	_, gl, _ := e.UnitIndex("X-GL-01")
	if got := e.UnitCouncil(cx, gl); got != x.area("HN-GL") {
		t.Errorf("council of X-GL-01 inferred as %d, want HN-GL (%d)", got, x.area("HN-GL"))
	}
	// The commune-council ballot only holds the stations that vote in it.
	if got := len(e.Voters(cx)); got != 3 {
		t.Errorf("HDND-X has %d voters, want 3 (VH-01 votes in no unit)", got)
	}
	if _, ok := e.Voter(cx, x.station("VH-01")); ok {
		t.Errorf("VH-01 is a voter of HDND-X")
	}
	qh := x.contest("QH")
	if got := e.UnitExpected(qh, 0); got != 144 {
		t.Errorf("QH-10 expects %d stations, want 4 listed + 140 outside", got)
	}
	// Votes only where the council's level is at or above the area's.
	for _, tc := range []struct {
		contest, area string
		votes         bool
	}{{"QH", "HN", true}, {"QH", "HN-BD", true}, {"HDND-TP", "HN", true}, {"HDND-TP", "HN-GL", true},
		{"HDND-X", "HN", false}, {"HDND-X", "HN-BD", true}} {
		if got := e.AreaHasVotes(x.contest(tc.contest), x.area(tc.area)); got != tc.votes {
			t.Errorf("AreaHasVotes(%s, %s) = %v, want %v", tc.contest, tc.area, got, tc.votes)
		}
	}
	// Units summary: a unit counts in the areas holding all its stations.
	for _, tc := range []struct {
		contest, area string
		units, seats  int
	}{{"QH", "HN", 1, 3}, {"QH", "HN-BD", 0, 0}, {"HDND-X", "HN", 2, 2}, {"HDND-X", "HN-BD", 1, 1}, {"HDND-X", "HN-VH", 0, 0}} {
		u, s := e.AreaUnitTotals(x.contest(tc.contest), x.area(tc.area))
		if u != tc.units || s != tc.seats {
			t.Errorf("AreaUnitTotals(%s, %s) = %d, %d, want %d, %d", tc.contest, tc.area, u, s, tc.units, tc.seats)
		}
	}
	if len(e.Warnings()) != 0 {
		t.Errorf("a file within the law gets warnings: %q", e.Warnings())
	}
}

func TestParseRefusesWhatTheV2StructureForbids(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		want     []string
	}{
		{"district council in a two-tier file", `"level": "commune", "units"`, `"level": "district", "units"`,
			[]string{`"HDND-X"`, `level "district" is not national, commune or one of the election's levels (province, commune)`}},
		{"area level not declared", `"id": "HN-GL", "name": "Xã Gia Lâm", "level": "commune"`, `"id": "HN-GL", "name": "Xã Gia Lâm", "level": "ward"`,
			[]string{`"HN-GL"`, `level "ward" is not one of the election's levels`}},
		{"area and ward differ", `"area": "HN-GL", "ward": "HN-GL"`, `"area": "HN-GL", "ward": "HN-BD"`,
			[]string{`"GL-01"`, `area "HN-GL" and ward "HN-BD" differ`}},
		{"council does not contain its unit", `"council": "HN-BD"`, `"council": "HN-VH"`,
			[]string{`"X-BD-01"`, `council "HN-VH" does not contain station "BD-01"`}},
		{"council at the wrong level", `"council": "HN-BD"`, `"council": "HN"`,
			[]string{`"X-BD-01"`, `council "HN" is a province, a commune contest elects commune councils`}},
		{"council not inferable", `"stations": ["GL-01"]`, `"stations": ["GL-01", "VH-01"]`,
			[]string{`"X-GL-01"`, `no commune holds every station of the unit`}},
		{"council in a national contest", `"stations_outside": 140`, `"stations_outside": 140, "council": "HN"`,
			[]string{`"QH-10"`, `a National Assembly unit elects no council`}},
		{"negative stations_outside", `"stations_outside": 140`, `"stations_outside": -1`,
			[]string{`"QH-10"`, `stations_outside -1 is negative`}},
		{"unknown round", `"round": "first"`, `"round": "second"`,
			[]string{`"X-BD-01"`, `round "second" is not first, additional or re_election`}},
		{"commune above the bottom", `"levels": ["province", "commune"]`, `"levels": ["commune", "province"]`,
			[]string{`levels[0] "commune"`, "always names the bottom level"}},
		{"too many levels", `"levels": ["province", "commune"]`, `"levels": ["a", "b", "c", "d", "commune"]`,
			[]string{"levels holds 5 levels, must hold 1 to 4"}},
		{"level declared twice", `"levels": ["province", "commune"]`, `"levels": ["province", "province", "commune"]`,
			[]string{`levels[1] "province" is declared twice`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(twoTier, tc.old) {
				t.Fatalf("fixture lacks %q", tc.old)
			}
			_, err := tally.Parse([]byte(strings.Replace(twoTier, tc.old, tc.new, 1)))
			var ee *tally.ElectionError
			if !errors.As(err, &ee) {
				t.Fatalf("Parse: %v, want an ElectionError", err)
			}
			for _, p := range ee.Problems {
				ok := true
				for _, w := range tc.want {
					ok = ok && strings.Contains(p, w)
				}
				if ok {
					return
				}
			}
			t.Errorf("no problem mentions all of %q; problems:\n  %s", tc.want, strings.Join(ee.Problems, "\n  "))
		})
	}
}

func TestParseWarnsWhereTheLawBoundsButDoesNotRefuse(t *testing.T) {
	src := strings.NewReplacer(
		`"registered": 900`, `"registered": 4500`, // Art. 11
		`"id": "QH-10", "name": "Đơn vị bầu cử số 10", "seats": 3`, `"id": "QH-10", "name": "Đơn vị bầu cử số 10", "seats": 4`, // Art. 10, Art. 57
		`"id": "TP-01", "name": "Đơn vị bầu cử số 1", "seats": 2`, `"id": "TP-01", "name": "Đơn vị bầu cử số 1", "seats": 2, "stations": ["BD-01"]`,
	).Replace(twoTier)
	e := mustParse(t, src)
	want := []string{
		`"GL-01": 4500 voters registered`,
		`"QH-10": 4 seats; a National Assembly unit elects at most 3`,
		`"QH-10": 5 candidates for 4 seats; the National Assembly needs at least 2 more`,
	}
	for _, w := range want {
		if !slices.ContainsFunc(e.Warnings(), func(s string) bool { return strings.Contains(s, w) }) {
			t.Errorf("no warning mentions %q; warnings:\n  %s", w, strings.Join(e.Warnings(), "\n  "))
		}
	}
	// A council unit of 6 seats and too few candidates.
	e = unitElection(t, tally.CommuneCouncil, 6, borns(8))
	for _, w := range []string{"6 seats; a People's Council unit elects at most 5", "8 candidates for 6 seats; a People's Council unit of 6 seats needs at least 3 more"} {
		if !slices.ContainsFunc(e.Warnings(), func(s string) bool { return strings.Contains(s, w) }) {
			t.Errorf("no warning mentions %q; warnings:\n  %s", w, strings.Join(e.Warnings(), "\n  "))
		}
	}
}

func TestDecideFollowsTheRounds(t *testing.T) {
	e := mustParse(t, twoTier)
	x := idx{t, e}
	qh, cx := x.contest("QH"), x.contest("HDND-X")
	_, bd, _ := e.UnitIndex("X-BD-01")
	_, gl, _ := e.UnitIndex("X-GL-01")
	low := tally.Counts{Registered: 1000, Voted: 400, Issued: 400, Received: 400, Valid: 400}
	high := tally.Counts{Registered: 1000, Voted: 900, Issued: 900, Received: 900, Valid: 900}

	// stations_outside: every listed station final, the unit still counts.
	if d := e.Decide(qh, 0, 4, high, []int64{800, 700, 600, 10, 0}); d.Status != tally.Counting || len(d.Winners) != 3 {
		t.Errorf("QH-10 with its 140 outside stations unreported: %s %v, want counting with provisional winners", d.Status, d.Winners)
	}
	// First round, turnout not above half: re_election, no winners.
	if d := e.Decide(cx, bd, 2, low, []int64{300, 100}); d.Status != tally.ReElection || len(d.Winners) != 0 {
		t.Errorf("first round, low turnout: %s %v", d.Status, d.Winners)
	}
	// An additional round short of seats stays decided (Art. 79(3)).
	if d := e.Decide(cx, gl, 1, high, []int64{400, 300}); d.Status != tally.Decided || len(d.Winners) != 0 {
		t.Errorf("additional round, seat short: %s %v, want decided with the seat empty", d.Status, d.Winners)
	}
	// A re-election stands whatever the turnout (Art. 80(3)).
	src := strings.Replace(twoTier, `"round": "first"`, `"round": "re_election"`, 1)
	e = mustParse(t, src)
	if d := e.Decide(cx, bd, 2, low, []int64{300, 100}); d.Status != tally.Decided || len(d.Winners) != 1 {
		t.Errorf("re-election, low turnout: %s %v, want decided", d.Status, d.Winners)
	}
}
