package audit_test

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/tallyvn/tally/audit"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// A small hand-made election: province HN, district LB with wards BD (two
// stations) and GT (one station), district GL with ward GL-A (one station
// that votes only in QH). QH (national, 2 seats) has one unit over HN;
// HD (district council, 1 seat) one unit over ward BD plus station GT-1.
const electionJSON = `{
  "id": "t-2021", "name": "Bầu cử thử", "date": "2021-05-23",
  "areas": [
    {"id": "HN", "name": "Hà Nội", "level": "province"},
    {"id": "LB", "name": "Long Biên", "level": "district", "parent": "HN"},
    {"id": "GL", "name": "Gia Lâm", "level": "district", "parent": "HN"},
    {"id": "BD", "name": "Bồ Đề", "level": "ward", "parent": "LB"},
    {"id": "GT", "name": "Gia Thụy", "level": "ward", "parent": "LB"},
    {"id": "GL-A", "name": "Trâu Quỳ", "level": "ward", "parent": "GL"}
  ],
  "stations": [
    {"id": "BD-1", "name": "Khu vực 1", "ward": "BD", "registered": 1000},
    {"id": "BD-2", "name": "Khu vực 2", "ward": "BD", "registered": 800},
    {"id": "GT-1", "name": "Khu vực 1", "ward": "GT", "registered": 600},
    {"id": "GLA-1", "name": "Khu vực 1", "ward": "GL-A", "registered": 500}
  ],
  "contests": [
    {"id": "QH", "name": "Quốc hội", "level": "national", "units": [
      {"id": "QH-1", "name": "Đơn vị 1", "seats": 2, "areas": ["HN"], "stations": [], "candidates": [
        {"id": "Q1", "name": "Nguyễn Văn A", "born": "1960-01-01"},
        {"id": "Q2", "name": "Trần Thị B", "born": "1970-01-01"},
        {"id": "Q3", "name": "Lê Văn C", "born": "1965-01-01"}]}]},
    {"id": "HD", "name": "HĐND quận", "level": "district", "units": [
      {"id": "HD-1", "name": "Đơn vị 1", "seats": 1, "areas": ["BD"], "stations": ["GT-1"], "candidates": [
        {"id": "H1", "name": "Phạm D", "born": "1980-01-01"},
        {"id": "H2", "name": "Đỗ E", "born": "1975-01-01"}]}]}
  ]
}`

func parse(t testing.TB, file string) *tally.Election {
	t.Helper()
	e, err := tally.Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// msg is one hand-made stream message.
type msg struct {
	subject string
	data    []byte
}

func subjectOf(e *tally.Election, station, contest string) string {
	s, _ := e.StationIndex(station)
	return events.Subject(e, s, contest)
}

func minutes(contest, station string, version int64, status tally.Status, c tally.Counts, votes map[string]int64) tally.Minutes {
	m := tally.Minutes{Election: "t-2021", Contest: contest, Station: station, Version: version, Status: status}
	if status != tally.Withdrawn {
		m.Counts, m.Present = c, tally.HasAllCounts
	}
	for _, k := range slices.Sorted(maps.Keys(votes)) {
		m.Votes = append(m.Votes, tally.Vote{Candidate: k, Count: votes[k]})
	}
	return m
}

func counts(reg, voted, valid, invalid int64) tally.Counts {
	return tally.Counts{Registered: reg, Voted: voted, Issued: voted, Received: valid + invalid, Valid: valid, Invalid: invalid}
}

func jsonMsg(e *tally.Election, m tally.Minutes) msg {
	return msg{subjectOf(e, m.Station, m.Contest), events.AppendJSON(nil, &m)}
}

func binMsg(e *tally.Election, m tally.Minutes) msg {
	return msg{subjectOf(e, m.Station, m.Contest), events.AppendBinary(nil, &m)}
}

// TestFoldOutcomes folds hand-made messages one by one and checks each
// outcome (CONTRACT §3) and the rules named for each rejection.
func TestFoldOutcomes(t *testing.T) {
	e := parse(t, electionJSON)
	f := audit.New(e)
	v1 := minutes("QH", "BD-1", 1, tally.Partial, counts(1000, 900, 400, 10), map[string]int64{"Q1": 300})
	v2 := minutes("QH", "BD-1", 2, tally.Final, counts(1000, 900, 880, 20), map[string]int64{"Q1": 700, "Q2": 500, "Q3": 300})
	v1other := v1
	v1other.Reason = "khác"
	tooMany := minutes("QH", "BD-2", 1, tally.Final, counts(800, 700, 690, 10), map[string]int64{"Q1": 691, "Q2": 10, "Q3": 0})
	stranger := minutes("HD", "GLA-1", 1, tally.Partial, counts(500, 10, 10, 0), nil) // GLA-1 does not vote in HD
	wd := minutes("QH", "BD-1", 3, tally.Withdrawn, tally.Counts{}, nil)

	cases := []struct {
		name  string
		m     msg
		want  audit.Outcome
		rules []string // field:rule, sorted
	}{
		{"first version applies", jsonMsg(e, v1), audit.Applied, nil},
		{"same content again is a duplicate", binMsg(e, v1), audit.Duplicate, nil},
		{"same version, other content: conflict", jsonMsg(e, v1other), audit.Rejected, []string{"version:conflict"}},
		{"higher version applies", jsonMsg(e, v2), audit.Applied, nil},
		{"lower version later is stale", jsonMsg(e, v1other), audit.Stale, nil},
		{"votes above valid", jsonMsg(e, tooMany), audit.Rejected, []string{"votes.Q1:votes_le_valid"}},
		{"station not voting in the contest", msg{"tally.t-2021.minutes.HN.GLA-1.HD", events.AppendJSON(nil, &stranger)}, audit.Rejected, []string{"station:not_voting"}},
		{"published on another station's subject", msg{subjectOf(e, "BD-2", "QH"), events.AppendJSON(nil, &v2)}, audit.Rejected, []string{"station:subject"}},
		{"not JSON", msg{subjectOf(e, "BD-2", "QH"), []byte(`{"election":`)}, audit.Rejected, []string{"payload:type"}},
		{"corrupt binary", msg{subjectOf(e, "BD-2", "QH"), []byte{events.BinaryMagic, 1, 200}}, audit.Rejected, []string{"payload:type"}},
		{"withdrawal applies", jsonMsg(e, wd), audit.Applied, nil},
		{"stale after the withdrawal", jsonMsg(e, v2), audit.Stale, nil},
	}
	for i, tc := range cases {
		rec := f.Apply(uint64(i+1), tc.m.subject, tc.m.data)
		if rec.Outcome != tc.want {
			t.Errorf("%s: outcome %s, want %s (violations %v)", tc.name, rec.Outcome, tc.want, rec.Violations)
			continue
		}
		var rules []string
		for _, v := range rec.Violations {
			if v.Message == "" {
				t.Errorf("%s: violation %s:%s has no message", tc.name, v.Field, v.Rule)
			}
			rules = append(rules, v.Field+":"+v.Rule)
		}
		slices.Sort(rules)
		if tc.rules != nil && !slices.Equal(rules, tc.rules) {
			t.Errorf("%s: rules %v, want %v", tc.name, rules, tc.rules)
		}
	}
	if got, want := f.Counts(), (audit.Counts{Applied: 3, Stale: 2, Duplicates: 1, Rejected: 6}); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
	cur, ok := f.Current("QH", "BD-1")
	if !ok || cur.Version != 3 || cur.Status != tally.Withdrawn {
		t.Errorf("current of BD-1: %+v %v, want the withdrawal", cur, ok)
	}
	// The withdrawn station contributes nothing, but is still expected.
	res := f.Results()
	hn := res.Areas["QH"]["HN"]
	if hn.Expected != 4 || hn.Reporting != 0 || hn.Counts != (tally.Counts{}) || len(hn.Votes) != 3 || hn.Votes["Q1"] != 0 {
		t.Errorf("HN after the withdrawal: %+v", hn)
	}
}

// TestFoldResults checks area totals at every level, unit totals and the
// unit decision against figures worked out by hand.
func TestFoldResults(t *testing.T) {
	e := parse(t, electionJSON)
	f := audit.New(e)
	ms := []tally.Minutes{
		minutes("QH", "BD-1", 1, tally.Final, counts(1000, 900, 880, 20), map[string]int64{"Q1": 700, "Q2": 500, "Q3": 300}),
		minutes("QH", "BD-2", 1, tally.Partial, counts(800, 700, 300, 5), map[string]int64{"Q1": 100}),
		minutes("QH", "BD-2", 2, tally.Final, counts(800, 700, 690, 10), map[string]int64{"Q1": 400, "Q2": 300, "Q3": 200}),
		minutes("QH", "GT-1", 1, tally.Final, counts(600, 500, 500, 0), map[string]int64{"Q1": 200, "Q2": 300, "Q3": 100}),
		minutes("QH", "GLA-1", 1, tally.Partial, counts(500, 100, 100, 0), map[string]int64{"Q1": 10, "Q2": 20, "Q3": 30}),
		minutes("HD", "BD-1", 1, tally.Final, counts(1000, 900, 890, 10), map[string]int64{"H1": 400, "H2": 400}),
		minutes("HD", "BD-2", 1, tally.Final, counts(800, 700, 700, 0), map[string]int64{"H1": 100, "H2": 590}),
		minutes("HD", "GT-1", 1, tally.Final, counts(600, 500, 500, 0), map[string]int64{"H1": 450, "H2": 50}),
	}
	for i := range ms {
		m := jsonMsg(e, ms[i])
		if rec := f.Apply(uint64(i+1), m.subject, m.data); rec.Outcome != audit.Applied {
			t.Fatalf("minutes %d: %s %v", i, rec.Outcome, rec.Violations)
		}
	}
	res := f.Results()
	type fig struct {
		exp, rep, fin, reg, voted, valid int64
		votes                            map[string]int64
	}
	check := func(name string, got *audit.Totals, want fig) {
		t.Helper()
		g := fig{got.Expected, got.Reporting, got.Final, got.Counts.Registered, got.Counts.Voted, got.Counts.Valid, got.Votes}
		if g.exp != want.exp || g.rep != want.rep || g.fin != want.fin || g.reg != want.reg || g.voted != want.voted || g.valid != want.valid || !maps.Equal(g.votes, want.votes) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, g, want)
		}
	}
	check("QH ward BD", res.Areas["QH"]["BD"], fig{2, 2, 2, 1800, 1600, 1570, map[string]int64{"Q1": 1100, "Q2": 800, "Q3": 500}})
	check("QH district LB", res.Areas["QH"]["LB"], fig{3, 3, 3, 2400, 2100, 2070, map[string]int64{"Q1": 1300, "Q2": 1100, "Q3": 600}})
	check("QH district GL", res.Areas["QH"]["GL"], fig{1, 1, 0, 500, 100, 100, map[string]int64{"Q1": 10, "Q2": 20, "Q3": 30}})
	check("QH province HN", res.Areas["QH"]["HN"], fig{4, 4, 3, 2900, 2200, 2170, map[string]int64{"Q1": 1310, "Q2": 1120, "Q3": 630}})
	check("HD ward GT", res.Areas["HD"]["GT"], fig{1, 1, 1, 600, 500, 500, map[string]int64{"H1": 450, "H2": 50}})
	if got := res.Areas["HD"]["GL"]; got != nil {
		t.Errorf("HD district GL holds no station of the contest, yet has a result: %+v", got)
	}
	// A district council seen from its province: no votes (CONTRACT §4 v2).
	check("HD province HN", res.Areas["HD"]["HN"], fig{3, 3, 3, 2400, 2100, 2090, nil})
	if got := res.Areas["HD"]["HN"].Units; got.Total != 1 || got.Decided+got.Counting+got.Tie+got.AdditionalElection+got.ReElection != 1 {
		t.Errorf("HD province HN units summary %+v, want the one unit", got)
	}

	qh := res.Units["QH"]["QH-1"]
	check("unit QH-1", &qh.Totals, fig{4, 4, 3, 2900, 2200, 2170, map[string]int64{"Q1": 1310, "Q2": 1120, "Q3": 630}})
	// GLA-1 is only partial: counting, provisional winners Q1 (1310×2 > 2170)
	// and Q2 (1120×2 > 2170).
	if qh.Status != tally.Counting || !slices.Equal(qh.Ranking, []string{"Q1", "Q2", "Q3"}) || !slices.Equal(qh.Winners, []string{"Q1", "Q2"}) || qh.Seats != 2 {
		t.Errorf("unit QH-1: %+v", qh)
	}
	// HD-1 is all final: H2 has 1040 × 2 ≤ 2090 valid, not above half;
	// nobody passes, 0 of 1 seat: additional election.
	hd := res.Units["HD"]["HD-1"]
	if hd.Status != tally.AdditionalElection || len(hd.Winners) != 0 || !slices.Equal(hd.Ranking, []string{"H2", "H1"}) {
		t.Errorf("unit HD-1: %+v", hd)
	}
	// Final minutes for GLA-1 decide QH-1.
	m := jsonMsg(e, minutes("QH", "GLA-1", 2, tally.Final, counts(500, 400, 400, 0), map[string]int64{"Q1": 100, "Q2": 300, "Q3": 100}))
	f.Apply(100, m.subject, m.data)
	qh = f.Results().Units["QH"]["QH-1"]
	if qh.Status != tally.Decided || !slices.Equal(qh.Winners, []string{"Q1", "Q2"}) || qh.Votes["Q2"] != 1400 {
		t.Errorf("unit QH-1 all final: %+v", qh)
	}
}

// sealedElection seals station BD-1 with a fresh key.
func sealedElection(t *testing.T) (*tally.Election, []byte, []byte) {
	t.Helper()
	kp, _ := nkeys.CreateUser()
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	other, _ := nkeys.CreateUser()
	otherSeed, _ := other.Seed()
	file := strings.Replace(electionJSON, `"registered": 1000}`, `"registered": 1000, "seal": "`+pub+`"}`, 1)
	return parse(t, file), seed, otherSeed
}

func TestFoldSeals(t *testing.T) {
	e, seed, otherSeed := sealedElection(t)
	f := audit.New(e)
	m := minutes("QH", "BD-1", 1, tally.Partial, counts(1000, 900, 400, 10), map[string]int64{"Q1": 300})
	sig, err := events.Sign(seed, &m)
	if err != nil {
		t.Fatal(err)
	}
	good := m
	good.Signature = sig
	forged := m
	forged.Version = 2
	forged.Signature, _ = events.Sign(otherSeed, &forged)
	unsigned := m
	unsigned.Version = 3
	tampered := good // signed, then changed
	tampered.Version = 4
	unsealed := minutes("QH", "BD-2", 1, tally.Partial, counts(800, 10, 10, 0), nil)

	for i, tc := range []struct {
		name           string
		m              tally.Minutes
		sealed, sealOK bool
		want           audit.Outcome
	}{
		{"signed by its key", good, true, true, audit.Applied},
		{"signed by another key", forged, true, false, audit.Rejected},
		{"no signature", unsigned, true, false, audit.Rejected},
		{"changed after signing", tampered, true, false, audit.Rejected},
		{"station without a seal", unsealed, false, false, audit.Applied},
	} {
		msg := jsonMsg(e, tc.m)
		rec := f.Apply(uint64(i+1), msg.subject, msg.data)
		if rec.Sealed != tc.sealed || rec.SealOK != tc.sealOK || rec.Outcome != tc.want {
			t.Errorf("%s: sealed %v ok %v outcome %s (%v); want %v %v %s", tc.name, rec.Sealed, rec.SealOK, rec.Outcome, rec.Violations, tc.sealed, tc.sealOK, tc.want)
		}
		if !tc.sealOK && tc.sealed {
			if len(rec.Violations) == 0 || rec.Violations[len(rec.Violations)-1].Rule != tally.RuleSeal || rec.SealError == "" {
				t.Errorf("%s: violations %v, want rule seal", tc.name, rec.Violations)
			}
		}
	}
}

// foldBoth folds msgs into a real projections store (Pebble) and into the
// audit fold.
func foldBoth(t *testing.T, storeElection, auditElection *tally.Election, msgs []msg) (*projections.Store, *audit.Fold) {
	t.Helper()
	store, err := projections.Open(t.TempDir(), storeElection)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := audit.New(auditElection)
	for i, m := range msgs {
		seq := uint64(i + 1)
		if _, err := store.Fold().Apply(&projections.Msg{Seq: seq, Subject: m.subject, Data: m.data, Time: time.Unix(1621750000, 0)}); err != nil {
			t.Fatal(err)
		}
		f.Apply(seq, m.subject, m.data)
	}
	if _, err := store.Fold().Commit(); err != nil {
		t.Fatal(err)
	}
	return store, f
}

// TestCompare folds the same messages into the projections and the audit
// fold: no difference. Then an audit under a sealed copy of the election
// sees minutes the projections applied without a valid seal.
func TestCompare(t *testing.T) {
	e := parse(t, electionJSON)
	v1 := minutes("QH", "BD-1", 1, tally.Partial, counts(1000, 900, 400, 10), map[string]int64{"Q1": 300})
	v2 := minutes("QH", "BD-1", 2, tally.Final, counts(1000, 900, 880, 20), map[string]int64{"Q1": 700, "Q2": 500, "Q3": 300})
	v1b := v1
	v1b.Reason = "khác"
	hd := minutes("HD", "GT-1", 1, tally.Final, counts(600, 500, 500, 0), map[string]int64{"H1": 450, "H2": 50})
	unknown := minutes("QH", "XX-9", 1, tally.Partial, counts(1, 1, 1, 0), nil)
	msgs := []msg{jsonMsg(e, v1), binMsg(e, v1), jsonMsg(e, v1b), jsonMsg(e, v2), jsonMsg(e, v1), jsonMsg(e, hd),
		{"tally.t-2021.minutes.HN.XX-9.QH", events.AppendJSON(nil, &unknown)}, {subjectOf(e, "GT-1", "QH"), []byte("nope")}}

	store, f := foldBoth(t, e, e, msgs)
	meta, _ := store.Meta()
	rep, err := audit.Compare(f, store, meta)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Differences) > 0 {
		t.Fatalf("differences between identical folds: %v", rep.Differences)
	}
	// Only the areas and stations holding voters of each contest are compared.
	if rep.Compared.Areas != 10 || rep.Compared.Units != 2 || rep.Compared.Stations != 7 || rep.Compared.Messages != len(msgs) || rep.Outcomes.Rejected != 3 {
		t.Errorf("compared %+v, outcomes %+v", rep.Compared, rep.Outcomes)
	}

	// The projections applied BD-1's unsigned minutes (their election had
	// no seal); the audit's election seals BD-1.
	sealed, _, _ := sealedElection(t)
	store, f = foldBoth(t, e, sealed, msgs)
	meta, _ = store.Meta()
	rep, err = audit.Compare(f, store, meta)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || len(rep.Seals.FailedApplied) == 0 || rep.Seals.FailedApplied[0].Station != "BD-1" {
		t.Fatalf("unsigned minutes applied by the projections not reported: %+v", rep.Seals)
	}
	found := false
	for _, d := range rep.Differences {
		if d.Kind == "unit" && d.ID == "QH-1" && d.Field == "votes.Q1" && d.Projections == "700" && d.Recomputed == "0" {
			found = true
		}
	}
	if !found {
		t.Errorf("no difference on QH-1 votes.Q1 (700 vs 0): %v", rep.Differences)
	}
	js, _ := json.Marshal(rep)
	if !strings.Contains(string(js), `"failed_applied":[{"seq":1,"station":"BD-1"`) {
		t.Errorf("JSON report: %s", js)
	}
}
