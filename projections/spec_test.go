package projections_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/tallyvn/tally/audit"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// TestFoldSpec runs the fold's specification, testdata/fold/*.txt, against
// the live fold (Pebble, with restarts) and against the audit fold, the
// independent recomputation behind `tally verify`: both must print the
// same outcomes and results. Rewrite the expected output from the live
// fold with
//
//	go test ./projections -run TestFoldSpec/live -rewrite
//
// Directives:
//
//	election          the election file (CONTRACT §2) as input; prints ok
//	                  and its warnings, or every problem. Starts afresh.
//	apply             minutes (CONTRACT §3), one JSON object a line, each
//	                  published on its station's subject; prints each
//	                  message's outcome and, for a rejection, every rule.
//	restart           closes and reopens the store (the live fold reloads
//	                  its state from Pebble; the audit fold has none).
//	area contest=C area=A
//	unit contest=C unit=U
//	                  the result as JSON (CONTRACT §4).
func TestFoldSpec(t *testing.T) {
	for _, mode := range []string{"live", "audit"} {
		t.Run(mode, func(t *testing.T) {
			datadriven.Walk(t, filepath.Join("testdata", "fold"), func(t *testing.T, path string) {
				var h specHarness
				defer h.close()
				datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
					if mode == "audit" && d.Rewrite {
						t.Skip("-rewrite: the live fold writes the expected output")
					}
					return h.run(t, mode, d)
				})
			})
		})
	}
}

type specHarness struct {
	e     *tally.Election
	dir   string
	store *projections.Store
	audit *audit.Fold
	seq   uint64
}

func (h *specHarness) close() {
	if h.store != nil {
		h.store.Close()
		h.store = nil
	}
}

func (h *specHarness) run(t *testing.T, mode string, d *datadriven.TestData) string {
	switch d.Cmd {
	case "election":
		h.close()
		e, err := tally.Parse([]byte(d.Input))
		if err != nil {
			return err.Error() + "\n"
		}
		h.e, h.seq = e, 0
		h.dir = t.TempDir()
		if mode == "live" {
			if h.store, err = projections.Open(filepath.Join(h.dir, "p"), e); err != nil {
				t.Fatal(err)
			}
		} else {
			h.audit = audit.New(e)
		}
		var b strings.Builder
		b.WriteString("ok\n")
		for _, w := range e.Warnings() {
			fmt.Fprintf(&b, "warning: %s\n", w)
		}
		return b.String()

	case "apply":
		var b strings.Builder
		first := h.seq + 1
		var outcomes []string
		for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
			h.seq++
			msg := projections.Msg{Seq: h.seq, Subject: h.subject(line), Data: []byte(line), Time: time.Unix(0, 0)}
			if mode == "live" {
				o, err := h.store.Fold().Apply(&msg)
				if err != nil {
					t.Fatal(err)
				}
				outcomes = append(outcomes, o.String())
			} else {
				rec := h.audit.Apply(msg.Seq, msg.Subject, msg.Data)
				outcomes = append(outcomes, string(rec.Outcome))
			}
		}
		rules := map[uint64][]tally.Violation{}
		if mode == "live" {
			if _, err := h.store.Fold().Commit(); err != nil {
				t.Fatal(err)
			}
			rej, err := h.store.Rejections("")
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rej {
				rules[r.Seq] = r.Errors
			}
		} else {
			for _, rec := range h.audit.Records() {
				if rec.Outcome == audit.Rejected {
					rules[rec.Seq] = rec.Violations
				}
			}
		}
		for i, o := range outcomes {
			seq := first + uint64(i)
			fmt.Fprintf(&b, "%d: %s\n", seq, o)
			for _, v := range rules[seq] {
				fmt.Fprintf(&b, "  %s %s: %s\n", v.Field, v.Rule, v.Message)
			}
		}
		return b.String()

	case "restart":
		if mode == "live" {
			h.store.Close()
			var err error
			if h.store, err = projections.Open(filepath.Join(h.dir, "p"), h.e); err != nil {
				t.Fatal(err)
			}
		}
		return "ok\n"

	case "area":
		var contest, area string
		d.ScanArgs(t, "contest", &contest)
		d.ScanArgs(t, "area", &area)
		var res any
		if mode == "live" {
			r, err := h.store.AreaResult(contest, area)
			if err != nil {
				return err.Error() + "\n"
			}
			res = r
		} else {
			res = h.auditArea(t, contest, area)
		}
		return indent(t, res)

	case "unit":
		var contest, unit string
		d.ScanArgs(t, "contest", &contest)
		d.ScanArgs(t, "unit", &unit)
		var res any
		if mode == "live" {
			r, err := h.store.UnitResult(contest, unit)
			if err != nil {
				return err.Error() + "\n"
			}
			res = r
		} else {
			res = h.auditUnit(t, contest, unit)
		}
		return indent(t, res)
	}
	t.Fatalf("unknown directive %q", d.Cmd)
	return ""
}

// subject is the subject a station publishes line on (CONTRACT §7), or a
// subject naming no station when the line names none of this election.
func (h *specHarness) subject(line string) string {
	var m struct{ Station, Contest string }
	_ = json.Unmarshal([]byte(line), &m)
	if s, ok := h.e.StationIndex(m.Station); ok && tally.ValidID(m.Contest) {
		return events.Subject(h.e, s, m.Contest)
	}
	return events.SubjectPrefix(h.e.ID) + "X.X.X"
}

// auditArea renders the audit fold's totals of an area as the API would.
func (h *specHarness) auditArea(t *testing.T, contest, area string) *projections.AreaResult {
	ai, ok := h.e.AreaIndex(area)
	if !ok {
		t.Fatalf("unknown area %q", area)
	}
	a := &h.e.Areas[ai]
	res := &projections.AreaResult{Contest: contest, Area: area, Level: a.Level, Name: a.Name, AppliedSeq: h.seq}
	tot := h.audit.Results().Areas[contest][area]
	if tot == nil { // no station of the contest in the area
		tot = &audit.Totals{}
		if h.e.AreaHasVotes(mustContestIdx(t, h.e, contest), ai) {
			tot.Votes = map[string]int64{}
		}
	}
	res.StationsExpected = int(tot.Expected)
	res.StationsReporting, res.StationsFinal = tot.Reporting, tot.Final
	c := tot.Counts
	res.Registered, res.Voted, res.Issued, res.Received, res.Valid, res.Invalid = c.Registered, c.Voted, c.Issued, c.Received, c.Valid, c.Invalid
	res.Votes = tot.Votes
	u := tot.Units
	res.Units = projections.UnitsSummary{
		Total: int(u.Total), Counting: int(u.Counting), Decided: int(u.Decided), Tie: int(u.Tie),
		AdditionalElection: int(u.AdditionalElection), ReElection: int(u.ReElection), Seats: int(u.Seats), Winners: u.Winners,
	}
	return res
}

// auditUnit renders the audit fold's totals of a unit as the API would.
func (h *specHarness) auditUnit(t *testing.T, contest, unit string) *projections.UnitResult {
	ci, ui, ok := h.e.UnitIndex(unit)
	if !ok || h.e.Contests[ci].ID != contest {
		t.Fatalf("unknown unit %q of %q", unit, contest)
	}
	u := &h.e.Contests[ci].Units[ui]
	tot := h.audit.Results().Units[contest][unit]
	c := tot.Counts
	res := &projections.UnitResult{
		Contest: contest, Unit: unit, Level: "unit", Name: u.Name,
		StationsExpected: int(tot.Expected), StationsReporting: tot.Reporting, StationsFinal: tot.Final,
		Registered: c.Registered, Voted: c.Voted, Issued: c.Issued, Received: c.Received, Valid: c.Valid, Invalid: c.Invalid,
		Votes: tot.Votes, Seats: tot.Seats, Winners: slices.Clone(tot.Winners), Status: tot.Status, Round: tot.Round,
		AppliedSeq: h.seq, Candidates: []projections.CandidateResult{},
	}
	if co := h.e.UnitCouncil(ci, ui); co >= 0 {
		res.Council = h.e.Areas[co].ID
	}
	for _, id := range tot.Ranking {
		k, _ := h.e.CandidateIndex(ci, ui, id)
		cand := u.Candidates[k]
		res.Candidates = append(res.Candidates, projections.CandidateResult{ID: id, Name: cand.Name, Born: cand.Born, Votes: tot.Votes[id]})
	}
	return res
}

func mustContestIdx(t *testing.T, e *tally.Election, id string) int {
	c, ok := e.ContestIndex(id)
	if !ok {
		t.Fatalf("unknown contest %q", id)
	}
	return c
}

func indent(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	return out.String() + "\n"
}
