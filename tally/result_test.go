package tally_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tallyvn/tally/tally"
)

// hoTen are candidate names for generated units.
var hoTen = []string{
	"Nguyễn Thị Thanh Hương", "Trần Quốc Khánh", "Lê Thị Ngọc Ánh", "Phạm Văn Đông",
	"Hoàng Thị Thu Trang", "Vũ Đức Thắng", "Đặng Thị Mỹ Dung", "Bùi Xuân Trường",
}

// cand is a candidate of a generated unit: its birth date and, when set, an
// id overriding the generated UV-k.
type cand struct{ id, born string }

// unitElection builds a one-unit election in phường Thạch Bàn, quận Long
// Biên: one contest of the given level with one unit of seats seats and the
// given candidates (ids UV-1, UV-2, ... unless set), and two polling
// stations, so that the unit expects two final minutes.
func unitElection(t *testing.T, level tally.ContestLevel, seats int, cands []cand) *tally.Election {
	t.Helper()
	var cs []string
	for i, c := range cands {
		id := c.id
		if id == "" {
			id = fmt.Sprintf("UV-%d", i+1)
		}
		cs = append(cs, fmt.Sprintf(`{"id": %q, "name": %q, "born": %q}`, id, hoTen[i%len(hoTen)], c.born))
	}
	src := fmt.Sprintf(`{
  "id": "lb-2021", "name": "Bầu cử tại phường Thạch Bàn", "date": "2021-05-23",
  "areas": [
    {"id": "HN", "name": "Thành phố Hà Nội", "level": "province"},
    {"id": "LB", "name": "Quận Long Biên", "level": "district", "parent": "HN"},
    {"id": "LB-TB", "name": "Phường Thạch Bàn", "level": "ward", "parent": "LB"}
  ],
  "stations": [
    {"id": "LB-TB-01", "name": "Khu vực bỏ phiếu số 1 phường Thạch Bàn", "ward": "LB-TB", "registered": 1000},
    {"id": "LB-TB-02", "name": "Khu vực bỏ phiếu số 2 phường Thạch Bàn", "ward": "LB-TB", "registered": 1000}
  ],
  "contests": [
    {"id": "C", "name": "Cuộc bầu cử thử", "level": %q, "units": [
      {"id": "DV-1", "name": "Đơn vị bầu cử số 1", "seats": %d, "areas": ["LB-TB"], "stations": [],
       "candidates": [%s]}
    ]}
  ]
}`, level, seats, strings.Join(cs, ", "))
	return mustParse(t, src)
}

// borns returns n candidates with distinct birth dates, UV-1 the youngest,
// so that on equal votes the later candidate ranks first; tests relying on
// birth order say so.
func borns(n int) []cand {
	cs := make([]cand, n)
	for i := range cs {
		cs[i].born = fmt.Sprintf("%d-06-15", 1990-i)
	}
	return cs
}

// sameBorn returns n candidates all born on the same day.
func sameBorn(n int) []cand {
	cs := make([]cand, n)
	for i := range cs {
		cs[i].born = "1975-04-30"
	}
	return cs
}

// ids maps candidate positions of unit 0 of contest 0 to ids.
func ids(e *tally.Election, ks []int) []string {
	out := []string{}
	for _, k := range ks {
		out = append(out, e.Contests[0].Units[0].Candidates[k].ID)
	}
	return out
}

// decideCase is one call of Decide on a generated unit.
type decideCase struct {
	name       string
	level      tally.ContestLevel // default national
	seats      int
	cands      []cand // default borns(len(votes))
	final      int    // stations final, of 2; 0 means 2, -1 means none
	registered int64  // 0 means 2000
	voted      int64  // 0 means 1800
	valid      int64  // 0 means 1000, -1 means none
	votes      []int64

	wantRanking []string // nil: not checked
	wantWinners []string
	wantStatus  tally.UnitStatus
}

func runDecide(t *testing.T, tests []decideCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			level, cands, final := tt.level, tt.cands, tt.final
			if level == "" {
				level = tally.National
			}
			if cands == nil {
				cands = borns(len(tt.votes))
			}
			if final == 0 {
				final = 2
			}
			if final < 0 {
				final = 0
			}
			counts := tally.Counts{Registered: 2000, Voted: 1800, Valid: 1000}
			if tt.registered != 0 {
				counts.Registered = tt.registered
			}
			if tt.voted != 0 {
				counts.Voted = tt.voted
			}
			if tt.valid != 0 {
				counts.Valid = tt.valid
			}
			if tt.valid < 0 {
				counts.Valid = 0
			}
			counts.Issued, counts.Received, counts.Invalid = counts.Voted, counts.Voted, counts.Voted-counts.Valid

			e := unitElection(t, level, tt.seats, cands)
			votes := slices.Clone(tt.votes)
			d := e.Decide(0, 0, final, counts, votes)

			if d.Status != tt.wantStatus {
				t.Errorf("status = %q, want %q", d.Status, tt.wantStatus)
			}
			if got := ids(e, d.Winners); !slices.Equal(got, tt.wantWinners) {
				t.Errorf("winners = %v, want %v", got, tt.wantWinners)
			}
			if d.Winners == nil {
				t.Errorf("winners is nil, want an empty slice (it is served as JSON)")
			}
			if tt.wantRanking != nil {
				if got := ids(e, d.Ranking); !slices.Equal(got, tt.wantRanking) {
					t.Errorf("ranking = %v, want %v", got, tt.wantRanking)
				}
			}
			// Whatever the case: the ranking is a permutation of the
			// candidates, winners come in rank order, at most seats of them,
			// each passing the bar, and Decide leaves votes alone.
			if len(d.Ranking) != len(cands) {
				t.Errorf("ranking has %d candidates, want %d", len(d.Ranking), len(cands))
			}
			sorted := slices.Sorted(slices.Values(d.Ranking))
			for i, k := range sorted {
				if k != i {
					t.Errorf("ranking %v is not a permutation of the candidates", d.Ranking)
					break
				}
			}
			if len(d.Winners) > tt.seats {
				t.Errorf("%d winners for %d seats", len(d.Winners), tt.seats)
			}
			for i, k := range d.Winners {
				if i >= len(d.Ranking) || d.Ranking[i] != k {
					t.Errorf("winners %v are not the head of ranking %v", d.Winners, d.Ranking)
					break
				}
				if votes[k]*2 <= counts.Valid {
					t.Errorf("winner %d has %d votes, not more than half of %d valid", k, votes[k], counts.Valid)
				}
			}
			if !slices.Equal(votes, tt.votes) {
				t.Errorf("Decide modified votes: %v, was %v", votes, tt.votes)
			}
		})
	}
}

func TestDecideRanksByVotesThenOlderThenID(t *testing.T) {
	runDecide(t, []decideCase{
		{name: "votes descending", seats: 1, votes: []int64{100, 300, 200, 50},
			wantRanking: []string{"UV-2", "UV-3", "UV-1", "UV-4"},
			wantWinners: []string{}, wantStatus: tally.AdditionalElection},
		{name: "equal votes: older first", seats: 1,
			cands: []cand{{born: "1980-05-01"}, {born: "1975-05-01"}, {born: "1990-01-01"}},
			votes: []int64{300, 300, 400}, wantRanking: []string{"UV-3", "UV-2", "UV-1"},
			wantWinners: []string{}, wantStatus: tally.AdditionalElection},
		{name: "equal votes: older by days in the same year", seats: 1,
			cands: []cand{{born: "1970-12-31"}, {born: "1970-01-02"}, {born: "1970-06-30"}},
			votes: []int64{600, 600, 600}, wantRanking: []string{"UV-2", "UV-3", "UV-1"},
			wantWinners: []string{"UV-2"}, wantStatus: tally.Decided},
		{name: "more votes beat older", seats: 1,
			cands: []cand{{born: "1950-01-01"}, {born: "1985-01-01"}},
			votes: []int64{400, 700}, wantRanking: []string{"UV-2", "UV-1"},
			wantWinners: []string{"UV-2"}, wantStatus: tally.Decided},
		{name: "equal votes and born: id in byte order", seats: 1,
			cands:       []cand{{"UV-b", "1975-04-30"}, {"UV-C", "1975-04-30"}, {"UV-a", "1975-04-30"}, {"UV-10", "1975-04-30"}, {"UV-9", "1975-04-30"}},
			votes:       []int64{100, 100, 100, 100, 100},
			wantRanking: []string{"UV-10", "UV-9", "UV-C", "UV-a", "UV-b"},
			wantWinners: []string{}, wantStatus: tally.AdditionalElection},
		{name: "all three keys", seats: 2,
			cands:       []cand{{"UV-b", "1970-01-01"}, {"UV-a", "1970-01-01"}, {"UV-c", "1960-01-01"}, {"UV-d", "1990-01-01"}, {"UV-e", "1980-01-01"}},
			votes:       []int64{500, 500, 500, 900, 100},
			wantRanking: []string{"UV-d", "UV-c", "UV-a", "UV-b", "UV-e"},
			wantWinners: []string{"UV-d"}, wantStatus: tally.AdditionalElection},
	})
}

func TestDecideWinnersNeedMoreThanHalfOfValidBallots(t *testing.T) {
	runDecide(t, []decideCase{
		{name: "one vote over half passes", seats: 1, valid: 1000, votes: []int64{501, 400},
			wantWinners: []string{"UV-1"}, wantStatus: tally.Decided},
		{name: "exactly half does not pass", seats: 1, valid: 1000, votes: []int64{500, 400},
			wantWinners: []string{}, wantStatus: tally.AdditionalElection},
		{name: "odd valid: half rounded down does not pass", seats: 1, valid: 1001, votes: []int64{500, 501},
			wantWinners: []string{"UV-2"}, wantStatus: tally.Decided},
		{name: "odd valid: half rounded up passes only above", seats: 1, valid: 1001, votes: []int64{501, 500},
			wantWinners: []string{"UV-1"}, wantStatus: tally.Decided},
		{name: "only those over half win, in rank order", seats: 3, valid: 1000, votes: []int64{501, 700, 500, 300},
			wantWinners: []string{"UV-2", "UV-1"}, wantStatus: tally.AdditionalElection},
		{name: "no valid ballots, no winner", seats: 1, valid: -1, votes: []int64{0, 0},
			wantWinners: []string{}, wantStatus: tally.AdditionalElection},
		{name: "everyone under the bar", seats: 2, valid: 1000, votes: []int64{450, 400, 350},
			wantWinners: []string{}, wantStatus: tally.AdditionalElection},
	})
}

func TestDecideAtMostSeatsWinners(t *testing.T) {
	runDecide(t, []decideCase{
		{name: "four pass for two seats: the two with most votes win", seats: 2,
			votes:       []int64{700, 900, 600, 800},
			wantWinners: []string{"UV-2", "UV-4"}, wantStatus: tally.Decided},
		{name: "all pass for three seats of five candidates", seats: 3,
			votes:       []int64{900, 850, 800, 750, 700},
			wantWinners: []string{"UV-1", "UV-2", "UV-3"}, wantStatus: tally.Decided},
	})
}

func TestDecideReElectionWhenTurnoutNotAboveHalf(t *testing.T) {
	runDecide(t, []decideCase{
		{name: "turnout exactly half", seats: 2, registered: 2000, voted: 1000, valid: 900,
			votes: []int64{800, 700, 100}, wantWinners: []string{}, wantStatus: tally.ReElection},
		{name: "turnout below half", seats: 2, registered: 2000, voted: 400, valid: 390,
			votes: []int64{300, 250, 100}, wantWinners: []string{}, wantStatus: tally.ReElection},
		{name: "turnout one above half", seats: 2, registered: 2000, voted: 1001, valid: 900,
			votes: []int64{800, 700, 100}, wantWinners: []string{"UV-1", "UV-2"}, wantStatus: tally.Decided},
		{name: "odd registered: half rounded up is above half", seats: 1, registered: 2001, voted: 1001, valid: 900,
			votes: []int64{800, 100}, wantWinners: []string{"UV-1"}, wantStatus: tally.Decided},
		{name: "re-election comes before a tie", seats: 1, registered: 2000, voted: 1000, valid: 1000,
			cands: sameBorn(3), votes: []int64{600, 600, 0}, wantWinners: []string{}, wantStatus: tally.ReElection},
		{name: "re-election in a people's council", level: tally.CommuneCouncil, seats: 2, registered: 2000, voted: 900, valid: 900,
			votes: []int64{800, 700, 100}, wantWinners: []string{}, wantStatus: tally.ReElection},
	})
}

func TestDecideTieAtTheLastSeat(t *testing.T) {
	runDecide(t, []decideCase{
		{name: "equal votes and born at seats and seats+1", seats: 2,
			cands: []cand{{born: "1960-01-01"}, {born: "1975-04-30"}, {born: "1975-04-30"}},
			votes: []int64{900, 800, 800}, wantRanking: []string{"UV-1", "UV-2", "UV-3"},
			wantWinners: []string{"UV-1"}, wantStatus: tally.Tie},
		{name: "tied group extends above the last seat", seats: 3,
			cands: []cand{{born: "1960-01-01"}, {born: "1975-04-30"}, {born: "1975-04-30"}, {born: "1975-04-30"}, {born: "1950-01-01"}},
			votes: []int64{900, 800, 800, 800, 100}, wantRanking: []string{"UV-1", "UV-2", "UV-3", "UV-4", "UV-5"},
			wantWinners: []string{"UV-1"}, wantStatus: tally.Tie},
		{name: "tied group covers every seat", seats: 2, cands: sameBorn(3),
			votes: []int64{800, 800, 800}, wantWinners: []string{}, wantStatus: tally.Tie},
		{name: "tie in a people's council", level: tally.ProvinceCouncil, seats: 3,
			cands: []cand{{born: "1960-01-01"}, {born: "1961-01-01"}, {born: "1975-04-30"}, {born: "1975-04-30"}},
			votes: []int64{900, 850, 800, 800}, wantWinners: []string{"UV-1", "UV-2"}, wantStatus: tally.Tie},
		{name: "equal votes, different born: the older wins, no tie", seats: 2,
			cands: []cand{{born: "1960-01-01"}, {born: "1980-01-01"}, {born: "1979-12-31"}},
			votes: []int64{900, 800, 800}, wantRanking: []string{"UV-1", "UV-3", "UV-2"},
			wantWinners: []string{"UV-1", "UV-3"}, wantStatus: tally.Decided},
		{name: "tie above the last seat only is no tie", seats: 3,
			cands:       []cand{{born: "1975-04-30"}, {born: "1975-04-30"}, {born: "1980-01-01"}, {born: "1985-01-01"}},
			votes:       []int64{800, 800, 700, 100},
			wantWinners: []string{"UV-1", "UV-2", "UV-3"}, wantStatus: tally.Decided},
		{name: "tie below the last seat only is no tie", seats: 1,
			cands:       []cand{{born: "1980-01-01"}, {born: "1975-04-30"}, {born: "1975-04-30"}},
			votes:       []int64{900, 600, 600},
			wantWinners: []string{"UV-1"}, wantStatus: tally.Decided},
		{name: "tied candidates under the bar: national needs more", seats: 2, valid: 1000,
			cands: []cand{{born: "1960-01-01"}, {born: "1975-04-30"}, {born: "1975-04-30"}},
			votes: []int64{900, 400, 400}, wantWinners: []string{"UV-1"}, wantStatus: tally.AdditionalElection},
		{name: "tied candidates at exactly half do not pass", seats: 1, valid: 1000, cands: sameBorn(3),
			votes: []int64{500, 500, 0}, wantWinners: []string{}, wantStatus: tally.AdditionalElection},
		{name: "tied candidates under the bar: council seat left empty", level: tally.ProvinceCouncil, seats: 3, valid: 1000,
			cands: []cand{{born: "1960-01-01"}, {born: "1961-01-01"}, {born: "1975-04-30"}, {born: "1975-04-30"}},
			votes: []int64{900, 800, 400, 400}, wantWinners: []string{"UV-1", "UV-2"}, wantStatus: tally.Decided},
	})
}

func TestDecideAdditionalElectionNational(t *testing.T) {
	runDecide(t, []decideCase{
		{name: "every seat filled", seats: 3, votes: []int64{900, 800, 700, 400, 300},
			wantWinners: []string{"UV-1", "UV-2", "UV-3"}, wantStatus: tally.Decided},
		{name: "one seat short", seats: 3, votes: []int64{900, 800, 450, 400, 300},
			wantWinners: []string{"UV-1", "UV-2"}, wantStatus: tally.AdditionalElection},
		{name: "no winner", seats: 3, votes: []int64{500, 450, 400, 300, 200},
			wantWinners: []string{}, wantStatus: tally.AdditionalElection},
		{name: "one seat, one winner", seats: 1, votes: []int64{300, 700, 0},
			wantWinners: []string{"UV-2"}, wantStatus: tally.Decided},
	})
}

// TestDecideAdditionalElectionCouncilBelowTwoThirds checks Art. 79 for the
// People's Councils: an additional election only when 3 × winners < 2 × seats,
// at every council level.
func TestDecideAdditionalElectionCouncilBelowTwoThirds(t *testing.T) {
	type row struct {
		seats   int
		votes   []int64
		winners []string
		status  tally.UnitStatus
	}
	rows := []row{
		{5, []int64{900, 800, 700, 600, 300, 200, 100}, []string{"UV-1", "UV-2", "UV-3", "UV-4"}, tally.Decided},
		// 3 of 5 is below two-thirds (9 < 10): Art. 79 calls an additional
		// election.
		{5, []int64{900, 800, 700, 400, 300, 200, 100}, []string{"UV-1", "UV-2", "UV-3"}, tally.AdditionalElection},
		{5, []int64{900, 800, 400, 350, 300, 200, 100}, []string{"UV-1", "UV-2"}, tally.AdditionalElection},
		{5, []int64{900, 800, 700, 600, 550, 200, 100}, []string{"UV-1", "UV-2", "UV-3", "UV-4", "UV-5"}, tally.Decided},
		{4, []int64{900, 800, 700, 400, 300, 200}, []string{"UV-1", "UV-2", "UV-3"}, tally.Decided},
		{4, []int64{900, 800, 450, 400, 300, 200}, []string{"UV-1", "UV-2"}, tally.AdditionalElection},
		{3, []int64{900, 800, 400, 300, 200}, []string{"UV-1", "UV-2"}, tally.Decided},
		{3, []int64{900, 450, 400, 300, 200}, []string{"UV-1"}, tally.AdditionalElection},
		{2, []int64{900, 450, 400}, []string{"UV-1"}, tally.AdditionalElection},
		{2, []int64{900, 800, 400}, []string{"UV-1", "UV-2"}, tally.Decided},
		{1, []int64{500, 450}, []string{}, tally.AdditionalElection},
		{1, []int64{501, 450}, []string{"UV-1"}, tally.Decided},
	}
	var tests []decideCase
	for _, level := range []tally.ContestLevel{tally.ProvinceCouncil, tally.DistrictCouncil, tally.CommuneCouncil} {
		for _, r := range rows {
			tests = append(tests, decideCase{
				name:  fmt.Sprintf("%s council %d seats %d winners", level, r.seats, len(r.winners)),
				level: level, seats: r.seats, votes: r.votes,
				wantWinners: r.winners, wantStatus: r.status,
			})
		}
	}
	// The same shortfall in a national contest always calls an additional
	// election.
	tests = append(tests,
		decideCase{name: "national 5 seats 4 winners", seats: 5, votes: rows[0].votes,
			wantWinners: rows[0].winners, wantStatus: tally.AdditionalElection},
		decideCase{name: "national 3 seats 2 winners", seats: 3, votes: rows[6].votes,
			wantWinners: rows[6].winners, wantStatus: tally.AdditionalElection},
	)
	runDecide(t, tests)
}

func TestDecideCountingUntilEveryStationIsFinal(t *testing.T) {
	runDecide(t, []decideCase{
		{name: "one of two final: provisional winners", seats: 2, final: 1,
			votes: []int64{700, 900, 600, 800}, wantWinners: []string{"UV-2", "UV-4"}, wantStatus: tally.Counting},
		{name: "none final: provisional winners", seats: 2, final: -1,
			votes: []int64{700, 900, 600, 800}, wantWinners: []string{"UV-2", "UV-4"}, wantStatus: tally.Counting},
		{name: "provisional winners pass the bar", seats: 3, final: 1, valid: 1000,
			votes: []int64{501, 500, 900, 0}, wantWinners: []string{"UV-3", "UV-1"}, wantStatus: tally.Counting},
		{name: "provisional tie keeps those above the tied group", seats: 2, final: 1,
			cands: []cand{{born: "1960-01-01"}, {born: "1975-04-30"}, {born: "1975-04-30"}},
			votes: []int64{900, 800, 800}, wantWinners: []string{"UV-1"}, wantStatus: tally.Counting},
		{name: "council shortfall while counting", level: tally.DistrictCouncil, seats: 3, final: 1,
			votes: []int64{900, 450, 400, 300, 200}, wantWinners: []string{"UV-1"}, wantStatus: tally.Counting},
		{name: "both final: decided", seats: 2, final: 2,
			votes: []int64{700, 900, 600, 800}, wantWinners: []string{"UV-2", "UV-4"}, wantStatus: tally.Decided},
	})
}

// TestDecideUsesTheFileHierarchy checks Decide on the Hà Nội fixture, where
// the expected station count comes from the unit's members.
func TestDecideUsesTheFileHierarchy(t *testing.T) {
	e := mustParse(t, hanoiElection)
	x := idx{t, e}
	c, u := x.unit("Q-02") // 3 stations, 3 seats, district council
	counts := tally.Counts{Registered: 3929, Voted: 3900, Issued: 3900, Received: 3900, Valid: 3800, Invalid: 100}
	votes := []int64{2000, 1950, 3000, 1900, 1901}
	tests := []struct {
		final   int
		status  tally.UnitStatus
		winners []string
	}{
		{0, tally.Counting, []string{"Q-02-3", "Q-02-1", "Q-02-2"}},
		{2, tally.Counting, []string{"Q-02-3", "Q-02-1", "Q-02-2"}},
		{3, tally.Decided, []string{"Q-02-3", "Q-02-1", "Q-02-2"}},
	}
	for _, tt := range tests {
		d := e.Decide(c, u, tt.final, counts, votes)
		var got []string
		for _, k := range d.Winners {
			got = append(got, e.Contests[c].Units[u].Candidates[k].ID)
		}
		if d.Status != tt.status || !slices.Equal(got, tt.winners) {
			t.Errorf("final %d: status %q winners %v; want %q %v", tt.final, d.Status, got, tt.status, tt.winners)
		}
	}
}
