package tally_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tallyvn/tally/tally"
)

// finalQH returns valid final minutes of Khu vực bỏ phiếu số 1 phường Bồ Đề
// for the National Assembly (unit QH-HN-02: 3 seats, 5 candidates).
func finalQH() tally.Minutes {
	return tally.Minutes{
		Election: "hn-2021",
		Contest:  "QH",
		Station:  "LB-BD-01",
		Version:  2,
		Status:   tally.Final,
		Counts: tally.Counts{
			Registered: 1850, Voted: 1832, Issued: 1832, Received: 1831,
			Valid: 1810, Invalid: 21,
		},
		Present: tally.HasAllCounts,
		Votes: []tally.Vote{
			{"QH-HN-02-1", 1500}, {"QH-HN-02-2", 1211}, {"QH-HN-02-3", 900},
			{"QH-HN-02-4", 1000}, {"QH-HN-02-5", 800},
		},
		Reason: "kiểm lại phiếu của ứng cử viên số 2",
	}
}

// rule is one (field, rule) pair of a Violation.
type rule struct{ field, rule string }

func (r rule) String() string { return r.field + "/" + r.rule }

func rulesOf(vs []tally.Violation) []rule {
	out := make([]rule, len(vs))
	for i, v := range vs {
		out[i] = rule{v.Field, v.Rule}
	}
	return out
}

func sortedRules(rs []rule) []rule {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b rule) int { return strings.Compare(a.String(), b.String()) })
	return rs
}

// wantRules checks that vs names exactly the (field, rule) pairs of want, in
// any order, and that each violation has a message.
func wantRules(t *testing.T, vs []tally.Violation, want []rule) {
	t.Helper()
	got, w := sortedRules(rulesOf(vs)), sortedRules(want)
	if !slices.Equal(got, w) {
		t.Errorf("violations = %v\nwant         %v\nfull: %v", got, w, vs)
	}
	for _, v := range vs {
		if v.Message == "" {
			t.Errorf("violation %s/%s has no message", v.Field, v.Rule)
		}
	}
}

// check runs e.Check on m with a fresh Resolved and no prior violations.
func check(t *testing.T, e *tally.Election, m tally.Minutes) ([]tally.Violation, tally.Resolved) {
	t.Helper()
	var r tally.Resolved
	vs := e.Check(&m, 0, &r, nil)
	return vs, r
}

func TestCheckAcceptsValidMinutes(t *testing.T) {
	e := mustParse(t, hanoiElection)
	tests := []struct {
		name string
		m    func(m *tally.Minutes)
	}{
		{"final listing every candidate", func(m *tally.Minutes) {}},
		{"final listing candidates out of order", func(m *tally.Minutes) { slices.Reverse(m.Votes) }},
		{"final with zero votes for a candidate", func(m *tally.Minutes) { m.Votes[4].Count = 0 }},
		{"partial with every candidate", func(m *tally.Minutes) { m.Status = tally.Partial }},
		{"partial omitting candidates", func(m *tally.Minutes) {
			m.Status = tally.Partial
			m.Votes = m.Votes[1:3]
		}},
		{"partial with no votes yet", func(m *tally.Minutes) {
			m.Status, m.Version, m.Votes = tally.Partial, 1, nil
			m.Counts.Received, m.Counts.Valid, m.Counts.Invalid = 0, 0, 0
		}},
		{"withdrawn without counts", func(m *tally.Minutes) {
			m.Status, m.Version, m.Present, m.Counts, m.Votes = tally.Withdrawn, 3, 0, tally.Counts{}, nil
		}},
		{"withdrawn with zero counts and votes", func(m *tally.Minutes) {
			m.Status, m.Counts = tally.Withdrawn, tally.Counts{}
			for i := range m.Votes {
				m.Votes[i].Count = 0
			}
		}},
		{"station with more voters on the day than on the list", func(m *tally.Minutes) {
			m.Counts.Registered, m.Counts.Voted, m.Counts.Issued = 1900, 1900, 1900 // file says 1850
		}},
		{"votes equal to valid and sum equal to valid times seats", func(m *tally.Minutes) {
			m.Votes = []tally.Vote{{"QH-HN-02-1", 1810}, {"QH-HN-02-2", 1810}, {"QH-HN-02-3", 1810}, {"QH-HN-02-4", 0}, {"QH-HN-02-5", 0}}
		}},
		{"counts equal to MaxCount", func(m *tally.Minutes) {
			m.Counts = tally.Counts{Registered: tally.MaxCount, Voted: tally.MaxCount, Issued: tally.MaxCount, Received: tally.MaxCount, Valid: tally.MaxCount}
			m.Votes[0].Count = tally.MaxCount
		}},
		{"empty unit totals", func(m *tally.Minutes) {
			m.Counts = tally.Counts{Registered: 1850}
			for i := range m.Votes {
				m.Votes[i].Count = 0
			}
		}},
		{"province council station on a listed station", func(m *tally.Minutes) {
			m.Contest, m.Station = "HDND-HN", "LB-PL-01"
			m.Votes = []tally.Vote{{"TP-08-1", 1}, {"TP-08-2", 2}, {"TP-08-3", 3}, {"TP-08-4", 4}, {"TP-08-5", 5}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := finalQH()
			tt.m(&m)
			vs, _ := check(t, e, m)
			wantRules(t, vs, nil)
		})
	}
}

// TestCheckNamesEachBrokenRuleAlone breaks one rule of valid minutes per case
// and checks that exactly that rule is named, on the right field.
func TestCheckNamesEachBrokenRuleAlone(t *testing.T) {
	e := mustParse(t, hanoiElection)
	tests := []struct {
		name string
		m    func(m *tally.Minutes)
		want []rule
	}{
		// Required fields.
		{"election missing", func(m *tally.Minutes) { m.Election = "" }, []rule{{"election", tally.RuleRequired}}},
		{"contest missing", func(m *tally.Minutes) { m.Contest = "" }, []rule{{"contest", tally.RuleRequired}}},
		{"station missing", func(m *tally.Minutes) { m.Station = "" }, []rule{{"station", tally.RuleRequired}}},
		{"registered missing", func(m *tally.Minutes) { m.Present &^= tally.HasRegistered }, []rule{{"registered", tally.RuleRequired}}},
		{"voted missing", func(m *tally.Minutes) { m.Present &^= tally.HasVoted }, []rule{{"voted", tally.RuleRequired}}},
		{"issued missing", func(m *tally.Minutes) { m.Present &^= tally.HasIssued }, []rule{{"issued", tally.RuleRequired}}},
		{"received missing", func(m *tally.Minutes) { m.Present &^= tally.HasReceived }, []rule{{"received", tally.RuleRequired}}},
		{"valid missing", func(m *tally.Minutes) { m.Present &^= tally.HasValid }, []rule{{"valid", tally.RuleRequired}}},
		{"invalid missing", func(m *tally.Minutes) { m.Present &^= tally.HasInvalid }, []rule{{"invalid", tally.RuleRequired}}},
		{"registered missing in partial", func(m *tally.Minutes) { m.Status = tally.Partial; m.Present &^= tally.HasRegistered }, []rule{{"registered", tally.RuleRequired}}},

		// Rule 1: election, contest and station exist; the station votes.
		{"unknown election", func(m *tally.Minutes) { m.Election = "hcm-2021" }, []rule{{"election", tally.RuleUnknown}}},
		{"unknown contest", func(m *tally.Minutes) { m.Contest = "HDND-GL" }, []rule{{"contest", tally.RuleUnknown}}},
		{"unknown station", func(m *tally.Minutes) { m.Station = "LB-BD-99" }, []rule{{"station", tally.RuleUnknown}}},
		{"station not voting in the contest", func(m *tally.Minutes) {
			m.Contest, m.Station, m.Votes = "HDND-LB", "GL-TQ-01", nil
		}, []rule{{"station", tally.RuleNotVoting}}},

		// Rule 2: every key of votes is a candidate of the station's unit.
		{"candidate of another unit", func(m *tally.Minutes) {
			m.Status = tally.Partial
			m.Votes = append(m.Votes[:2], tally.Vote{Candidate: "QH-HN-05-1", Count: 10})
		}, []rule{{"votes.QH-HN-05-1", tally.RuleCandidate}}},
		{"candidate of another contest", func(m *tally.Minutes) {
			m.Status = tally.Partial
			m.Votes = append(m.Votes[:2], tally.Vote{Candidate: "TP-07-1", Count: 10})
		}, []rule{{"votes.TP-07-1", tally.RuleCandidate}}},
		{"unknown candidate in final", func(m *tally.Minutes) {
			m.Votes = append(m.Votes, tally.Vote{Candidate: "Nguyễn Văn A", Count: 0})
		}, []rule{{"votes.Nguyễn Văn A", tally.RuleCandidate}}},
		{"candidate listed twice", func(m *tally.Minutes) {
			m.Status = tally.Partial
			m.Votes = append(m.Votes[:2], tally.Vote{Candidate: "QH-HN-02-1", Count: 1500})
		}, []rule{{"votes.QH-HN-02-1", tally.RuleDuplicateVote}}},

		// Rule 3: counts are integers ≥ 0 (and bounded).
		{"negative invalid", func(m *tally.Minutes) { m.Counts.Valid, m.Counts.Invalid = 1832, -1 }, []rule{{"invalid", tally.RuleNonNegative}}},
		{"negative candidate votes", func(m *tally.Minutes) { m.Votes[3].Count = -1000 }, []rule{{"votes.QH-HN-02-4", tally.RuleNonNegative}}},
		{"registered above MaxCount", func(m *tally.Minutes) { m.Counts.Registered = tally.MaxCount + 1 }, []rule{{"registered", tally.RuleRange}}},
		{"candidate votes above MaxCount", func(m *tally.Minutes) { m.Votes[0].Count = tally.MaxCount + 1 }, []rule{{"votes.QH-HN-02-1", tally.RuleRange}}},

		{"version zero", func(m *tally.Minutes) { m.Version = 0 }, []rule{{"version", tally.RuleVersion}}},
		{"version negative", func(m *tally.Minutes) { m.Version = -2 }, []rule{{"version", tally.RuleVersion}}},
		{"status missing", func(m *tally.Minutes) { m.Status = 0 }, []rule{{"status", tally.RuleStatus}}},
		{"status unknown", func(m *tally.Minutes) { m.Status = 9 }, []rule{{"status", tally.RuleStatus}}},

		// Rule 4.
		{"voted above registered", func(m *tally.Minutes) { m.Counts.Voted = 1851 }, []rule{{"voted", tally.RuleVoted}}},
		{"issued above registered", func(m *tally.Minutes) { m.Counts.Issued = 1851 }, []rule{{"issued", tally.RuleIssued}}},
		{"received above issued", func(m *tally.Minutes) {
			m.Counts.Received, m.Counts.Valid = 1833, 1812
		}, []rule{{"received", tally.RuleReceived}}},
		// Rule 5.
		{"valid plus invalid above received", func(m *tally.Minutes) { m.Counts.Invalid = 22 }, []rule{{"valid", tally.RuleValidInvalid}}},
		{"valid plus invalid below received", func(m *tally.Minutes) { m.Counts.Valid = 1809 }, []rule{{"valid", tally.RuleValidInvalid}}},
		// Rule 6.
		{"candidate votes above valid", func(m *tally.Minutes) {
			m.Votes = []tally.Vote{{"QH-HN-02-1", 1811}, {"QH-HN-02-2", 100}, {"QH-HN-02-3", 100}, {"QH-HN-02-4", 100}, {"QH-HN-02-5", 100}}
		}, []rule{{"votes.QH-HN-02-1", tally.RuleCandidateValid}}},
		// Rule 7.
		{"sum of votes above valid times seats", func(m *tally.Minutes) {
			// 5 × 1087 = 5435 > 1810 × 3 = 5430, each ≤ valid.
			for i := range m.Votes {
				m.Votes[i].Count = 1087
			}
		}, []rule{{"votes", tally.RuleSumVotes}}},
		// Final lists every candidate.
		{"final missing a candidate", func(m *tally.Minutes) { m.Votes = m.Votes[:4] }, []rule{{"votes", tally.RuleFinalComplete}}},
		{"final with no votes", func(m *tally.Minutes) { m.Votes = nil }, []rule{{"votes", tally.RuleFinalComplete}}},
		// Withdrawn carries no counts.
		{"withdrawn with registered", func(m *tally.Minutes) {
			m.Status, m.Present, m.Votes = tally.Withdrawn, tally.HasRegistered, nil
		}, []rule{{"registered", tally.RuleWithdrawn}}},
		{"withdrawn with a candidate's votes", func(m *tally.Minutes) {
			m.Status, m.Present = tally.Withdrawn, 0
			m.Votes = []tally.Vote{{"QH-HN-02-2", 7}}
		}, []rule{{"votes.QH-HN-02-2", tally.RuleWithdrawn}}},
		{"withdrawn with every count", func(m *tally.Minutes) {
			m.Status, m.Votes = tally.Withdrawn, nil
		}, []rule{
			{"registered", tally.RuleWithdrawn}, {"voted", tally.RuleWithdrawn}, {"issued", tally.RuleWithdrawn},
			{"received", tally.RuleWithdrawn}, {"valid", tally.RuleWithdrawn}, {"invalid", tally.RuleWithdrawn},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := finalQH()
			tt.m(&m)
			vs, _ := check(t, e, m)
			wantRules(t, vs, tt.want)
		})
	}
}

func TestCheckNamesEveryBrokenRule(t *testing.T) {
	e := mustParse(t, hanoiElection)
	tests := []struct {
		name string
		m    tally.Minutes
		want []rule
	}{
		{
			name: "final breaking nine rules",
			m: tally.Minutes{
				Election: "hn-2020", Contest: "QH", Station: "LB-BD-01", Version: 0, Status: tally.Final,
				Counts:  tally.Counts{Registered: 1850, Voted: 1900, Issued: 1832, Received: 1831, Valid: 1810},
				Present: tally.HasAllCounts &^ tally.HasInvalid,
				Votes: []tally.Vote{
					{"QH-HN-02-1", 1811}, // above valid
					{"QH-HN-02-2", -4},   // negative
					{"QH-HN-05-1", 10},   // another unit's candidate
					{"QH-HN-02-1", 5},    // listed twice
				}, // QH-HN-02-3..5 missing from final minutes
			},
			want: []rule{
				{"election", tally.RuleUnknown},
				{"version", tally.RuleVersion},
				{"invalid", tally.RuleRequired},
				{"voted", tally.RuleVoted},
				{"votes.QH-HN-02-1", tally.RuleCandidateValid},
				{"votes.QH-HN-02-2", tally.RuleNonNegative},
				{"votes.QH-HN-05-1", tally.RuleCandidate},
				{"votes.QH-HN-02-1", tally.RuleDuplicateVote},
				{"votes", tally.RuleFinalComplete},
			},
		},
		{
			name: "every id wrong and counts inconsistent",
			m: tally.Minutes{
				Election: "", Contest: "HDND-GL", Station: "GL-TQ-99", Version: -1, Status: tally.Partial,
				Counts:  tally.Counts{Registered: -5, Voted: 10, Issued: 10, Received: 11, Valid: 3, Invalid: 4},
				Present: tally.HasAllCounts,
				Votes:   []tally.Vote{{"Q-01-1", -1}},
			},
			want: []rule{
				{"election", tally.RuleRequired},
				{"contest", tally.RuleUnknown},
				{"station", tally.RuleUnknown},
				{"version", tally.RuleVersion},
				{"registered", tally.RuleNonNegative},
				{"voted", tally.RuleVoted},
				{"issued", tally.RuleIssued},
				{"received", tally.RuleReceived},
				{"valid", tally.RuleValidInvalid},
				{"votes.Q-01-1", tally.RuleNonNegative},
			},
		},
		{
			name: "partial with counts and votes out of range",
			m: tally.Minutes{
				Election: "hn-2021", Contest: "HDND-LB", Station: "LB-NT-02", Version: 1, Status: tally.Partial,
				Counts:  tally.Counts{Registered: 92, Voted: 90, Issued: 90, Received: 90, Valid: 2 * tally.MaxCount, Invalid: -1},
				Present: tally.HasAllCounts,
				Votes:   []tally.Vote{{"Q-02-1", tally.MaxCount + 1}, {"Q-02-2", 95}, {"Q-01-1", 1}},
			},
			want: []rule{
				{"valid", tally.RuleRange},
				{"invalid", tally.RuleNonNegative},
				{"valid", tally.RuleValidInvalid},
				{"votes.Q-02-1", tally.RuleRange},
				{"votes.Q-01-1", tally.RuleCandidate},
			},
		},
		{
			name: "withdrawn with counts, nonzero votes, a stranger and a duplicate",
			m: tally.Minutes{
				Election: "hn-2021", Contest: "HDND-HN", Station: "LB-VH-01", Version: 4, Status: tally.Withdrawn,
				Counts:  tally.Counts{Registered: 1500, Voted: 0, Valid: 12},
				Present: tally.HasRegistered | tally.HasVoted | tally.HasValid,
				Votes:   []tally.Vote{{"TP-08-3", 12}, {"TP-08-4", 0}, {"TP-07-1", 0}, {"TP-08-3", 0}},
			},
			want: []rule{
				{"registered", tally.RuleWithdrawn},
				{"valid", tally.RuleWithdrawn},
				{"votes.TP-08-3", tally.RuleWithdrawn},
				{"votes.TP-07-1", tally.RuleCandidate},
				{"votes.TP-08-3", tally.RuleDuplicateVote},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs, _ := check(t, e, tt.m)
			wantRules(t, vs, tt.want)
		})
	}
}

func TestCheckMessagesNameTheFacts(t *testing.T) {
	e := mustParse(t, hanoiElection)
	m := finalQH()
	m.Votes = m.Votes[:3]
	vs, _ := check(t, e, m)
	if len(vs) != 1 {
		t.Fatalf("violations = %v, want one", vs)
	}
	for _, want := range []string{"QH-HN-02", "QH-HN-02-4", "QH-HN-02-5"} {
		if !strings.Contains(vs[0].Message, want) {
			t.Errorf("message %q does not name %s", vs[0].Message, want)
		}
	}
	err := &tally.ValidationError{Violations: vs}
	if !strings.Contains(err.Error(), string(tally.RuleFinalComplete)) {
		t.Errorf("ValidationError.Error() = %q does not name the rule", err.Error())
	}
}

func TestCheckSetsIndexAndAppendsToDst(t *testing.T) {
	e := mustParse(t, hanoiElection)
	prior := tally.Violation{Index: 2, Field: "station", Rule: tally.RuleUnknown, Message: "earlier minutes"}
	dst := []tally.Violation{prior}

	bad := finalQH()
	bad.Version, bad.Counts.Voted = 0, 1851
	var r tally.Resolved
	dst = e.Check(&bad, 7, &r, dst)
	if len(dst) != 3 {
		t.Fatalf("dst = %v, want the prior violation and two new ones", dst)
	}
	if dst[0] != prior {
		t.Errorf("dst[0] = %v, want the prior violation %v unchanged", dst[0], prior)
	}
	for _, v := range dst[1:] {
		if v.Index != 7 {
			t.Errorf("violation %v has index %d, want 7", v, v.Index)
		}
	}
	wantRules(t, dst[1:], []rule{{"version", tally.RuleVersion}, {"voted", tally.RuleVoted}})

	// Valid minutes add nothing, even after earlier violations, and are
	// resolved.
	good := finalQH()
	r = tally.Resolved{}
	if got := e.Check(&good, 8, &r, dst); len(got) != len(dst) {
		t.Errorf("valid minutes added violations %v", got[len(dst):])
	}
	if r.Version != 2 || r.Status != tally.Final || r.Counts != good.Counts || !slices.Equal(r.Votes, []int64{1500, 1211, 900, 1000, 800}) {
		t.Errorf("valid minutes after earlier violations: Resolved = %+v, want it filled", r)
	}
}

func TestCheckFillsResolved(t *testing.T) {
	e := mustParse(t, hanoiElection)
	x := idx{t, e}
	lb, q02s := x.contest("HDND-LB"), x.station("LB-NT-02")
	_, q02 := x.unit("Q-02")
	counts := tally.Counts{Registered: 92, Voted: 90, Issued: 90, Received: 90, Valid: 88, Invalid: 2}
	base := tally.Minutes{
		Election: "hn-2021", Contest: "HDND-LB", Station: "LB-NT-02", Version: 5,
		Counts: counts, Present: tally.HasAllCounts,
	}
	tests := []struct {
		name       string
		status     tally.Status
		votes      []tally.Vote
		wantCounts tally.Counts
		wantVotes  []int64
	}{
		{"final, votes listed in reverse order", tally.Final,
			[]tally.Vote{{"Q-02-5", 50}, {"Q-02-4", 40}, {"Q-02-3", 30}, {"Q-02-2", 20}, {"Q-02-1", 10}},
			counts, []int64{10, 20, 30, 40, 50}},
		{"partial omitting candidates counts them 0", tally.Partial,
			[]tally.Vote{{"Q-02-4", 44}, {"Q-02-2", 22}},
			counts, []int64{0, 22, 0, 44, 0}},
		{"partial with no votes", tally.Partial, nil, counts, []int64{0, 0, 0, 0, 0}},
		{"withdrawn clears counts and votes", tally.Withdrawn, nil, tally.Counts{}, []int64{0, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := base
			m.Status, m.Votes = tt.status, tt.votes
			if tt.status == tally.Withdrawn {
				m.Counts, m.Present = tally.Counts{}, 0
			}
			// Stale content from earlier minutes, longer than this unit.
			buf := []int64{9, 9, 9, 9, 9, 9, 9, 9}
			r := tally.Resolved{Contest: -1, Station: -1, Unit: -1, Counts: tally.Counts{Registered: 77}, Votes: buf}
			if vs := e.Check(&m, 0, &r, nil); len(vs) != 0 {
				t.Fatalf("Check: %v", vs)
			}
			if r.Contest != lb || r.Station != q02s || r.Unit != q02 {
				t.Errorf("Resolved contest, station, unit = %d, %d, %d; want %d, %d, %d", r.Contest, r.Station, r.Unit, lb, q02s, q02)
			}
			if r.Version != 5 || r.Status != tt.status {
				t.Errorf("Resolved version, status = %d, %v; want 5, %v", r.Version, r.Status, tt.status)
			}
			if r.Counts != tt.wantCounts {
				t.Errorf("Resolved counts = %+v, want %+v", r.Counts, tt.wantCounts)
			}
			if !slices.Equal(r.Votes, tt.wantVotes) {
				t.Errorf("Resolved votes = %v, want %v (dense, in candidate order)", r.Votes, tt.wantVotes)
			}
			if len(r.Votes) > 0 && &r.Votes[0] != &buf[0] {
				t.Errorf("Resolved votes were reallocated; want the caller's buffer reused")
			}
		})
	}

	t.Run("nil votes buffer is allocated", func(t *testing.T) {
		m := base
		m.Status, m.Votes = tally.Final, []tally.Vote{{"Q-02-1", 1}, {"Q-02-2", 2}, {"Q-02-3", 3}, {"Q-02-4", 4}, {"Q-02-5", 5}}
		var r tally.Resolved
		if vs := e.Check(&m, 0, &r, nil); len(vs) != 0 {
			t.Fatalf("Check: %v", vs)
		}
		if !slices.Equal(r.Votes, []int64{1, 2, 3, 4, 5}) {
			t.Errorf("Resolved votes = %v, want [1 2 3 4 5]", r.Votes)
		}
	})

	t.Run("buffer shrinks to a smaller unit", func(t *testing.T) {
		r := tally.Resolved{Votes: make([]int64, 5, 16)}
		for i := range r.Votes {
			r.Votes[i] = 9
		}
		m := finalQH()
		m.Contest, m.Station = "HDND-HN", "GL-TQ-01"
		m.Counts = tally.Counts{Registered: 1400, Voted: 1000, Issued: 1000, Received: 1000, Valid: 990, Invalid: 10}
		m.Votes = []tally.Vote{{"TP-09-2", 600}, {"TP-09-1", 390}}
		if vs := e.Check(&m, 0, &r, nil); len(vs) != 0 {
			t.Fatalf("Check: %v", vs)
		}
		if _, u := x.unit("TP-09"); r.Unit != u || !slices.Equal(r.Votes, []int64{390, 600}) {
			t.Errorf("Resolved unit %d votes %v, want unit TP-09 (%d) votes [390 600]", r.Unit, r.Votes, u)
		}
	})
}

// TestCheckUnitWithMoreThan64Candidates covers candidates past the 64-bit
// bitmap Check uses for small units.
func TestCheckUnitWithMoreThan64Candidates(t *testing.T) {
	e := unitElection(t, tally.CommuneCouncil, 1, borns(70))
	all := func() []tally.Vote {
		vs := make([]tally.Vote, 70)
		for i := range vs {
			vs[i] = tally.Vote{Candidate: fmt.Sprintf("UV-%d", i+1), Count: int64(i)}
		}
		return vs
	}
	tests := []struct {
		name    string
		votes   func() []tally.Vote
		want    []rule
		message string // a substring of the first violation's message
	}{
		{"every candidate listed", all, nil, ""},
		{"candidate past 64 listed twice", func() []tally.Vote { return append(all(), tally.Vote{Candidate: "UV-66", Count: 1}) },
			[]rule{{"votes.UV-66", tally.RuleDuplicateVote}}, "UV-66"},
		{"candidate below 64 listed twice", func() []tally.Vote { return append(all(), tally.Vote{Candidate: "UV-3", Count: 1}) },
			[]rule{{"votes.UV-3", tally.RuleDuplicateVote}}, "UV-3"},
		{"candidate past 64 missing from final", func() []tally.Vote { v := all(); return append(v[:68], v[69]) },
			[]rule{{"votes", tally.RuleFinalComplete}}, "UV-69"},
		{"candidate below 64 missing from final", func() []tally.Vote { v := all(); return v[1:] },
			[]rule{{"votes", tally.RuleFinalComplete}}, "UV-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tally.Minutes{
				Election: "lb-2021", Contest: "C", Station: "LB-TB-02", Version: 1, Status: tally.Final,
				// The votes 0..69 total 2415 ≤ valid × 1 seat.
				Counts:  tally.Counts{Registered: 3000, Voted: 2900, Issued: 2900, Received: 2900, Valid: 2890, Invalid: 10},
				Present: tally.HasAllCounts, Votes: tt.votes(),
			}
			vs, r := check(t, e, m)
			wantRules(t, vs, tt.want)
			if tt.message != "" && len(vs) > 0 && !strings.Contains(vs[0].Message, tt.message) {
				t.Errorf("message %q does not name %s", vs[0].Message, tt.message)
			}
			if len(vs) == 0 {
				if len(r.Votes) != 70 || r.Votes[69] != 69 || r.Votes[0] != 0 || r.Votes[64] != 64 {
					t.Errorf("Resolved votes = %v, want 0..69", r.Votes)
				}
			}
		})
	}
}

// TestCheckAllocatesNothingForValidMinutes checks the promise of Check's
// documentation: with r.Votes and dst already large enough, checking valid
// minutes allocates nothing.
func TestCheckAllocatesNothingForValidMinutes(t *testing.T) {
	e := mustParse(t, hanoiElection)
	partial := finalQH()
	partial.Status, partial.Votes = tally.Partial, partial.Votes[:2]
	withdrawn := finalQH()
	withdrawn.Status, withdrawn.Present, withdrawn.Counts, withdrawn.Votes = tally.Withdrawn, 0, tally.Counts{}, nil
	tests := []struct {
		name string
		m    tally.Minutes
	}{
		{"final", finalQH()},
		{"partial", partial},
		{"withdrawn", withdrawn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.m
			r := tally.Resolved{Votes: make([]int64, 0, 8)}
			dst := make([]tally.Violation, 0, 8)
			if vs := e.Check(&m, 0, &r, dst); len(vs) != 0 {
				t.Fatalf("Check: %v", vs)
			}
			allocs := testing.AllocsPerRun(100, func() {
				dst = e.Check(&m, 0, &r, dst[:0])
			})
			if allocs != 0 {
				t.Errorf("Check allocates %v times per valid %s minutes, want 0", allocs, tt.name)
			}
			if len(dst) != 0 {
				t.Errorf("Check: %v", dst)
			}
		})
	}
}

func TestStatusStringAndParseStatusRoundTrip(t *testing.T) {
	for _, s := range []tally.Status{tally.Partial, tally.Final, tally.Withdrawn} {
		got, ok := tally.ParseStatus(s.String())
		if !ok || got != s {
			t.Errorf("ParseStatus(%q) = %v, %v; want %v", s.String(), got, ok, s)
		}
	}
	want := map[tally.Status]string{tally.Partial: "partial", tally.Final: "final", tally.Withdrawn: "withdrawn"}
	for s, name := range want {
		if s.String() != name {
			t.Errorf("Status(%d).String() = %q, want %q", uint8(s), s.String(), name)
		}
	}
	for _, bad := range []string{"", "Final", "FINAL", "cancelled", "tạm tính"} {
		if s, ok := tally.ParseStatus(bad); ok {
			t.Errorf("ParseStatus(%q) = %v, want not ok", bad, s)
		}
	}
	if got := tally.Status(0).String(); got == "partial" || got == "final" || got == "withdrawn" {
		t.Errorf("Status(0).String() = %q, want no valid status name", got)
	}
}
