package events_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

// checkElection is the fixed election FuzzCheck validates against: a
// national contest of 2 seats over district LB (stations LB-NT-01..03 and
// LB-GT-01) and a district-council contest of 1 seat for LB-NT-01 only.
const checkElection = `{"id":"hn-2021","name":"Bầu cử","date":"2021-05-23",
"areas":[{"id":"HN","name":"Hà Nội","level":"province"},{"id":"LB","name":"Long Biên","level":"district","parent":"HN"},
         {"id":"LB-NT","name":"Ngọc Thụy","level":"ward","parent":"LB"},{"id":"LB-GT","name":"Gia Thụy","level":"ward","parent":"LB"}],
"stations":[{"id":"LB-NT-01","name":"Khu vực 1","ward":"LB-NT","registered":1850},
            {"id":"LB-NT-02","name":"Khu vực 2","ward":"LB-NT","registered":1500},
            {"id":"LB-NT-03","name":"Khu vực 3","ward":"LB-NT","registered":900},
            {"id":"LB-GT-01","name":"Khu vực 1","ward":"LB-GT","registered":700}],
"contests":[{"id":"QH","name":"Quốc hội","level":"national","units":[{"id":"QH-HN-03","name":"Đơn vị 3","seats":2,
  "areas":["LB"],"stations":[],"candidates":[{"id":"QH-1","name":"Nguyễn Văn A","born":"1968-04-12"},
  {"id":"QH-2","name":"Trần Thị B","born":"1975-09-02"},{"id":"QH-3","name":"Lê Đức C","born":"1971-01-30"}]}]},
 {"id":"HD","name":"HĐND quận","level":"district","units":[{"id":"HD-1","name":"Đơn vị 1","seats":1,
  "areas":[],"stations":["LB-NT-01"],"candidates":[{"id":"HD-1-1","name":"Phạm D","born":"1980-01-01"},
  {"id":"HD-1-2","name":"Đỗ E","born":"1975-01-01"}]}]}]}`

var knownRules = map[string]bool{
	tally.RuleRequired: true, tally.RuleType: true, tally.RuleUnknownField: true, tally.RuleID: true,
	tally.RuleUnknown: true, tally.RuleNotVoting: true, tally.RuleCandidate: true, tally.RuleDuplicateVote: true,
	tally.RuleInteger: true, tally.RuleNonNegative: true, tally.RuleRange: true, tally.RuleVersion: true,
	tally.RuleStatus: true, tally.RuleVoted: true, tally.RuleIssued: true, tally.RuleReceived: true,
	tally.RuleValidInvalid: true, tally.RuleCandidateValid: true, tally.RuleSumVotes: true,
	tally.RuleFinalComplete: true, tally.RuleWithdrawn: true,
}

// FuzzCheck decodes a request body and validates every minutes in it
// against a fixed election. It must never panic (nor must WarmCheck, the
// fold's reads ahead); every violation names its
// index, a field, a known rule and says what is wrong; the verdict is
// deterministic; and minutes found valid really keep every rule of
// CONTRACT §3 (checked here independently), with a Resolved that matches
// them, and stay valid through the JSON and binary encodings.
func FuzzCheck(f *testing.F) {
	e, err := tally.Parse([]byte(checkElection))
	if err != nil {
		f.Fatal(err)
	}
	m := sample()
	m.Votes = append(m.Votes, tally.Vote{Candidate: "QH-3", Count: 0})
	f.Add(events.AppendJSON(nil, &m))
	f.Add([]byte(`{"election":"hn-2021","contest":"HD","station":"LB-NT-01","version":2,"status":"partial","registered":10,"voted":5,"issued":5,"received":5,"valid":5,"invalid":0,"votes":{"HD-1-1":5}}`))
	f.Add([]byte(`{"election":"hn-2021","contest":"HD","station":"LB-GT-01","version":1,"status":"withdrawn"}`))
	f.Add([]byte(`[{"election":"hn-2021","contest":"QH","station":"LB-NT-02","version":0,"status":"final","registered":1,"voted":2,"issued":3,"received":4,"valid":5,"invalid":-1,"votes":{"QH-1":6,"QH-1 ":1,"X":2}},{"":1,"votes":{"":1.5}}]`))
	f.Add([]byte("{\"version\":1e3,\"status\":\"final\",\"valid\":\"12\",\"votes\":[]}\n{\"status\":null}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		ds, err := events.DecodeJSON(body)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty decode error")
			}
			return
		}
		// Reading ahead for the fold never fails, whatever the minutes.
		ptrs := make([]*tally.Minutes, 0, len(ds))
		for i := range ds {
			ptrs = append(ptrs, &ds[i].Minutes)
		}
		for len(ptrs) > 0 {
			k := min(len(ptrs), tally.WarmMax)
			e.WarmCheck(ptrs[:k])
			ptrs = ptrs[k:]
		}
		var r tally.Resolved
		for i := range ds {
			d := &ds[i]
			m := d.Minutes
			m.Votes = slices.Clone(d.Minutes.Votes)
			viol := events.Check(e, &m, d.Problems, i, &r, nil)
			for _, v := range viol {
				if v.Index != i || v.Rule == "" || !knownRules[v.Rule] || v.Message == "" ||
					v.Field == "" && v.Rule != tally.RuleUnknownField { // an unknown field may be the key ""
					t.Fatalf("minutes %d: malformed violation %+v", i, v)
				}
			}
			again := events.Check(e, &m, d.Problems, i, &tally.Resolved{}, nil)
			if !reflect.DeepEqual(viol, again) {
				t.Fatalf("minutes %d: Check is not deterministic:\n%v\n%v", i, viol, again)
			}
			if len(viol) > 0 {
				continue
			}
			keepsRules(t, e, &m, &r)
			// Valid minutes stay valid through both encodings.
			d2, err := events.DecodeJSONObject(events.AppendJSON(nil, &m))
			if err != nil || len(d2.Problems) > 0 {
				t.Fatalf("valid minutes do not decode from their JSON: %v %v", err, d2.Problems)
			}
			if v := events.Check(e, &d2.Minutes, nil, 0, &tally.Resolved{}, nil); len(v) > 0 {
				t.Fatalf("valid minutes invalid after a JSON round trip: %v", v)
			}
			var b tally.Minutes
			if err := events.DecodeBinary(events.AppendBinary(nil, &m), &b); err != nil {
				t.Fatalf("valid minutes do not decode from their binary form: %v", err)
			}
			var rb tally.Resolved
			if v := events.Check(e, &b, nil, 0, &rb, nil); len(v) > 0 || !reflect.DeepEqual(rb, r) {
				t.Fatalf("binary round trip: violations %v, resolved %+v, want %+v", v, rb, r)
			}
		}
	})
}

// keepsRules checks the rules of CONTRACT §3 on minutes Check passed, and
// that r resolves them.
func keepsRules(t *testing.T, e *tally.Election, m *tally.Minutes, r *tally.Resolved) {
	t.Helper()
	fail := func(rule string) { t.Fatalf("valid minutes break %s: %+v (resolved %+v)", rule, *m, *r) }
	c, okC := e.ContestIndex(m.Contest)
	s, okS := e.StationIndex(m.Station)
	if m.Election != e.ID || !okC || !okS {
		fail("rule 1 (ids exist)")
	}
	u := e.StationUnit(c, s)
	if u < 0 {
		fail("rule 1 (the station votes in the contest)")
	}
	if r.Contest != c || r.Station != s || r.Unit != u || r.Version != m.Version || r.Status != m.Status {
		fail("the resolved indexes")
	}
	if m.Version < 1 || m.Status < tally.Partial || m.Status > tally.Withdrawn {
		fail("version ≥ 1 and a known status")
	}
	unit := &e.Contests[c].Units[u]
	votes := make([]int64, len(unit.Candidates))
	listed := map[string]bool{}
	var sum int64
	for _, v := range m.Votes {
		k, ok := e.CandidateIndex(c, u, v.Candidate)
		if !ok || listed[v.Candidate] {
			fail("rule 2 (each vote a distinct candidate of the unit)")
		}
		listed[v.Candidate] = true
		votes[k] = v.Count
		sum += v.Count
	}
	cn := m.Counts
	if m.Status == tally.Withdrawn {
		for i, v := range [6]int64{cn.Registered, cn.Voted, cn.Issued, cn.Received, cn.Valid, cn.Invalid} {
			if m.Present&(1<<i) != 0 && v != 0 {
				fail("withdrawn minutes carry no counts")
			}
		}
		if sum != 0 || r.Counts != (tally.Counts{}) || slices.ContainsFunc(r.Votes, func(v int64) bool { return v != 0 }) {
			fail("withdrawn minutes count nothing")
		}
		return
	}
	if m.Present != tally.HasAllCounts {
		fail("every count is given")
	}
	for _, v := range [6]int64{cn.Registered, cn.Voted, cn.Issued, cn.Received, cn.Valid, cn.Invalid} {
		if v < 0 || v > tally.MaxCount {
			fail("rule 3 (counts ≥ 0, in range)")
		}
	}
	if cn.Voted > cn.Registered || cn.Issued > cn.Registered || cn.Received > cn.Issued {
		fail("rule 4")
	}
	if cn.Valid+cn.Invalid != cn.Received {
		fail("rule 5")
	}
	for _, v := range votes {
		if v < 0 || v > cn.Valid {
			fail("rules 3 and 6 (0 ≤ votes ≤ valid)")
		}
	}
	if sum > cn.Valid*int64(unit.Seats) {
		fail("rule 7 (sum ≤ valid × seats)")
	}
	if m.Status == tally.Final && len(listed) != len(unit.Candidates) {
		fail("final minutes list every candidate")
	}
	if r.Counts != cn || !slices.Equal(r.Votes, votes) {
		fail("the resolved counts and votes")
	}
}
