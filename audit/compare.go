package audit

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// Difference is one thing the projections say that the stream does not.
type Difference struct {
	// Kind is what differs: "area", "unit" (a result), "station" (current
	// minutes), "message" (an outcome), "counter" (the outcome counters)
	// or "stream".
	Kind    string `json:"kind"`
	Contest string `json:"contest,omitempty"`
	// ID names the area, unit or station, the message's sequence or the
	// counter.
	ID          string `json:"id"`
	Field       string `json:"field"`
	Projections string `json:"projections"`
	Recomputed  string `json:"recomputed"`
}

func (d Difference) String() string {
	where := d.Kind + " " + d.ID
	if d.Contest != "" {
		where += " contest " + d.Contest
	}
	return fmt.Sprintf("%s: %s: projections %s, recomputed %s", where, d.Field, d.Projections, d.Recomputed)
}

// SealFailure is a message for a sealed station whose signature did not
// verify.
type SealFailure struct {
	Seq     uint64 `json:"seq"`
	Station string `json:"station"`
	Contest string `json:"contest"`
	Reason  string `json:"reason"`
	// Projections is the outcome the projections recorded for it.
	Projections string `json:"projections"`
}

// Seals summarises the signature checks.
type Seals struct {
	Checked  int           `json:"checked"`
	Verified int           `json:"verified"`
	Failed   []SealFailure `json:"failed"`
	// FailedApplied are failures the projections counted as applied.
	FailedApplied []SealFailure `json:"failed_applied"`
}

// Compared counts what was compared.
type Compared struct {
	Areas    int `json:"areas"`
	Units    int `json:"units"`
	Stations int `json:"stations"`
	Messages int `json:"messages"`
	Counters int `json:"counters"`
}

// Report is the outcome of an audit.
type Report struct {
	Election string `json:"election"`
	Stream   string `json:"stream"`
	// StreamLastSeq is the last sequence the stream held when the audit
	// started; Checkpoint the sequence the projections have folded up to,
	// and so the one the audit recomputes up to.
	StreamLastSeq uint64 `json:"stream_last_seq"`
	Checkpoint    uint64 `json:"checkpoint"`
	EventsRead    uint64 `json:"events_read"`
	// Beyond is the number of sequences the stream holds past the
	// checkpoint: stored but not folded yet, so not audited.
	Beyond      uint64       `json:"beyond_checkpoint"`
	Outcomes    Counts       `json:"outcomes"`
	Seals       Seals        `json:"seals"`
	Compared    Compared     `json:"compared"`
	Differences []Difference `json:"differences"`
	// OK: no difference and no seal failure among applied minutes.
	OK bool `json:"ok"`
}

// Verify reads stream up to the projections' checkpoint, folds it with the
// audit's own fold and compares every result, station record, message
// outcome and counter with store.
func Verify(ctx context.Context, e *tally.Election, stream jetstream.Stream, store *projections.Store) (*Report, error) {
	meta, err := store.Meta()
	if err != nil {
		return nil, fmt.Errorf("projections checkpoint: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream info: %w", err)
	}
	rep := &Report{Election: e.ID, Stream: info.Config.Name, StreamLastSeq: info.State.LastSeq, Checkpoint: meta.Checkpoint}
	f := New(e)
	upTo := min(meta.Checkpoint, info.State.LastSeq)
	n, last, err := ReadStream(ctx, stream, upTo, func(seq uint64, subject string, data []byte) { f.Apply(seq, subject, data) })
	if err != nil {
		return nil, err
	}
	// The projections folded every sequence from 1 through the checkpoint,
	// and tally's streams never delete (events.StreamConfig): a recompute
	// from fewer messages is no audit. A message deleted or purged from the
	// stream, or a read that ended early, fails here rather than passing
	// as a smaller election.
	if n != upTo {
		return nil, fmt.Errorf("short read of stream %s: read %d messages (the last at seq %d), want %d: seqs 1 through %d, which the projections folded; the stream holds %d messages, first seq %d, last seq %d, %d deleted",
			rep.Stream, n, last, upTo, upTo, info.State.Msgs, info.State.FirstSeq, info.State.LastSeq, info.State.NumDeleted)
	}
	rep.EventsRead = n
	var diffs []Difference
	if meta.Checkpoint > info.State.LastSeq {
		diffs = append(diffs, Difference{Kind: "stream", ID: rep.Stream, Field: "last_seq",
			Projections: fmt.Sprintf("folded through seq %d", meta.Checkpoint), Recomputed: fmt.Sprintf("the stream ends at seq %d", info.State.LastSeq)})
	} else {
		rep.Beyond = info.State.LastSeq - meta.Checkpoint
	}
	c, err := Compare(f, store, meta)
	if err != nil {
		return nil, err
	}
	c.Election, c.Stream, c.StreamLastSeq, c.EventsRead, c.Beyond = rep.Election, rep.Stream, rep.StreamLastSeq, rep.EventsRead, rep.Beyond
	c.Differences = append(diffs, c.Differences...)
	c.OK = len(c.Differences) == 0 && len(c.Seals.FailedApplied) == 0
	return c, nil
}

// projMsg is what the projections recorded about one message.
type projMsg struct {
	outcome          string
	station, contest string // "" when only the rejection log has it
	version          int64
	status           string
	rules            []string // field:rule of a rejection
	inLog            bool     // the rejection log has it
}

// Compare compares the audit fold f, folded through meta.Checkpoint, with
// the projections in store. It fills every field of the report but the
// stream's.
func Compare(f *Fold, store *projections.Store, meta projections.Meta) (*Report, error) {
	rep := &Report{Election: f.e.ID, Checkpoint: meta.Checkpoint, Outcomes: f.Counts()}
	diff := func(kind, contest, id, field string, proj, re any) {
		rep.Differences = append(rep.Differences, Difference{Kind: kind, Contest: contest, ID: id, Field: field,
			Projections: fmt.Sprint(proj), Recomputed: fmt.Sprint(re)})
	}
	num := func(kind, contest, id, field string, proj, re int64) {
		if proj != re {
			diff(kind, contest, id, field, proj, re)
		}
	}

	// Outcome counters.
	got := f.Counts()
	for _, x := range []struct {
		name      string
		proj, rec uint64
	}{{"applied", meta.Applied, got.Applied}, {"rejected", meta.Rejected, got.Rejected},
		{"duplicates", meta.Duplicates, got.Duplicates}, {"stale", meta.Stale, got.Stale}} {
		rep.Compared.Counters++
		if x.proj != x.rec {
			diff("counter", "", "outcomes", x.name, x.proj, x.rec)
		}
	}

	// Results: every area at every level, every unit, every contest.
	res := f.Results()
	totals := func(kind, contest, id string, appliedSeq uint64, expected, reporting, final int64, c tally.Counts, votes map[string]int64, want *Totals) {
		num(kind, contest, id, "stations_expected", expected, want.Expected)
		num(kind, contest, id, "stations_reporting", reporting, want.Reporting)
		num(kind, contest, id, "stations_final", final, want.Final)
		num(kind, contest, id, "registered", c.Registered, want.Counts.Registered)
		num(kind, contest, id, "voted", c.Voted, want.Counts.Voted)
		num(kind, contest, id, "issued", c.Issued, want.Counts.Issued)
		num(kind, contest, id, "received", c.Received, want.Counts.Received)
		num(kind, contest, id, "valid", c.Valid, want.Counts.Valid)
		num(kind, contest, id, "invalid", c.Invalid, want.Counts.Invalid)
		keys := maps.Clone(want.Votes)
		maps.Copy(keys, votes)
		for _, cand := range sortedKeys(keys) {
			p, pok := votes[cand]
			r, rok := want.Votes[cand]
			switch {
			case !pok:
				diff(kind, contest, id, "votes."+cand, "(absent)", r)
			case !rok:
				diff(kind, contest, id, "votes."+cand, p, "(absent)")
			case p != r:
				diff(kind, contest, id, "votes."+cand, p, r)
			}
		}
		if appliedSeq != meta.Checkpoint {
			diff(kind, contest, id, "applied_seq", appliedSeq, meta.Checkpoint)
		}
	}
	for _, contest := range f.e.Contests {
		// Areas without a station of the contest hold nothing to compare
		// (and a national file has thousands of contests × areas).
		for _, aid := range sortedKeys(res.Areas[contest.ID]) {
			a := &f.e.Areas[f.areaIdx(aid)]
			rep.Compared.Areas++
			want := res.Areas[contest.ID][a.ID]
			p, err := store.AreaResult(contest.ID, a.ID)
			if err != nil {
				diff("area", contest.ID, a.ID, "result", "unreadable: "+err.Error(), "a result")
				continue
			}
			totals("area", contest.ID, a.ID, p.AppliedSeq, int64(p.StationsExpected), p.StationsReporting, p.StationsFinal,
				tally.Counts{Registered: p.Registered, Voted: p.Voted, Issued: p.Issued, Received: p.Received, Valid: p.Valid, Invalid: p.Invalid},
				p.Votes, want)
			if (p.Votes == nil) != (want.Votes == nil) {
				diff("area", contest.ID, a.ID, "votes", present(p.Votes != nil), present(want.Votes != nil))
			}
			pu, wu := p.Units, want.Units
			for _, x := range []struct {
				name      string
				proj, rec int64
			}{
				{"total", int64(pu.Total), wu.Total}, {"counting", int64(pu.Counting), wu.Counting},
				{"decided", int64(pu.Decided), wu.Decided}, {"tie", int64(pu.Tie), wu.Tie},
				{"additional_election", int64(pu.AdditionalElection), wu.AdditionalElection},
				{"re_election", int64(pu.ReElection), wu.ReElection}, {"seats", int64(pu.Seats), wu.Seats},
				{"winners", pu.Winners, wu.Winners},
			} {
				num("area", contest.ID, a.ID, "units."+x.name, x.proj, x.rec)
			}
		}
		for _, u := range contest.Units {
			rep.Compared.Units++
			want := res.Units[contest.ID][u.ID]
			p, err := store.UnitResult(contest.ID, u.ID)
			if err != nil {
				diff("unit", contest.ID, u.ID, "result", "unreadable: "+err.Error(), "a result")
				continue
			}
			totals("unit", contest.ID, u.ID, p.AppliedSeq, int64(p.StationsExpected), p.StationsReporting, p.StationsFinal,
				tally.Counts{Registered: p.Registered, Voted: p.Voted, Issued: p.Issued, Received: p.Received, Valid: p.Valid, Invalid: p.Invalid},
				p.Votes, &want.Totals)
			num("unit", contest.ID, u.ID, "seats", int64(p.Seats), int64(want.Seats))
			var ranking []string
			for _, c := range p.Candidates {
				ranking = append(ranking, c.ID)
				if c.Votes != p.Votes[c.ID] {
					diff("unit", contest.ID, u.ID, "candidates."+c.ID+".votes", c.Votes, want.Votes[c.ID])
				}
			}
			if !slices.Equal(ranking, want.Ranking) {
				diff("unit", contest.ID, u.ID, "ranking", list(ranking), list(want.Ranking))
			}
			if !slices.Equal(p.Winners, want.Winners) {
				diff("unit", contest.ID, u.ID, "winners", list(p.Winners), list(want.Winners))
			}
			if p.Status != want.Status {
				diff("unit", contest.ID, u.ID, "status", p.Status, want.Status)
			}
			if p.Round != want.Round {
				diff("unit", contest.ID, u.ID, "round", p.Round, want.Round)
			}
		}
	}

	// Stations: current minutes and history of every station voting in
	// each contest (rejections of other messages are in the rejection log).
	proj := map[uint64]*projMsg{}
	for _, contest := range f.e.Contests {
		for _, sid := range f.StationsOf(contest.ID) {
			s, _ := f.e.StationIndex(sid)
			st := &f.e.Stations[s]
			rep.Compared.Stations++
			view, err := store.Station(contest.ID, st.ID)
			if err != nil {
				diff("station", contest.ID, st.ID, "record", "unreadable: "+err.Error(), "a record")
				continue
			}
			var pm *tally.Minutes
			if s := strings.TrimSpace(string(view.Current)); s != "" && s != "null" {
				d, err := events.DecodeJSONObject(view.Current)
				if err != nil {
					diff("station", contest.ID, st.ID, "current", "unreadable: "+err.Error(), describe(nil))
				} else {
					pm = &d.Minutes
				}
			}
			rm, _ := f.Current(contest.ID, st.ID)
			switch {
			case (pm == nil) != (rm == nil):
				diff("station", contest.ID, st.ID, "current", describe(pm), describe(rm))
			case pm != nil && !sameContent(normalize(pm), normalize(rm)):
				if pm.Version != rm.Version || pm.Status != rm.Status {
					diff("station", contest.ID, st.ID, "current", describe(pm), describe(rm))
				} else {
					diff("station", contest.ID, st.ID, "current", string(events.AppendJSON(nil, pm)), string(events.AppendJSON(nil, normalize(rm))))
				}
			}
			for _, h := range view.History {
				if prev, dup := proj[h.Seq]; dup {
					diff("message", "", strconv.FormatUint(h.Seq, 10), "history",
						fmt.Sprintf("in the history of both %s/%s and %s/%s", prev.contest, prev.station, contest.ID, st.ID), "one station")
					continue
				}
				proj[h.Seq] = &projMsg{outcome: h.Outcome, station: st.ID, contest: contest.ID, version: h.Version, status: h.Status}
			}
		}
	}
	rejections, err := store.Rejections("")
	if err != nil {
		return nil, fmt.Errorf("read the projections' rejections: %w", err)
	}
	for _, r := range rejections {
		p := proj[r.Seq]
		if p == nil {
			p = &projMsg{outcome: string(Rejected), version: r.Version, status: r.Status}
			proj[r.Seq] = p
		}
		p.inLog = true
		for _, v := range r.Errors {
			p.rules = append(p.rules, v.Field+":"+v.Rule)
		}
		if p.outcome != string(Rejected) {
			diff("message", "", strconv.FormatUint(r.Seq, 10), "outcome", "history says "+p.outcome+" but the rejection log lists it", "one outcome")
		}
	}

	// Messages: every one's outcome.
	seen := make(map[uint64]bool, len(f.records))
	for i := range f.records {
		rec := &f.records[i]
		seen[rec.Seq] = true
		rep.Compared.Messages++
		id := strconv.FormatUint(rec.Seq, 10)
		p := proj[rec.Seq]
		projOutcome := "(none)"
		if p != nil {
			projOutcome = p.outcome
		}
		if rec.Sealed {
			rep.Seals.Checked++
			if rec.SealOK {
				rep.Seals.Verified++
			} else {
				sf := SealFailure{Seq: rec.Seq, Station: rec.Station, Contest: rec.Contest, Reason: rec.SealError, Projections: projOutcome}
				rep.Seals.Failed = append(rep.Seals.Failed, sf)
				if projOutcome == string(Applied) {
					rep.Seals.FailedApplied = append(rep.Seals.FailedApplied, sf)
				}
			}
		}
		if p == nil {
			diff("message", rec.Contest, id, "outcome", projOutcome, rec.Outcome)
			continue
		}
		if p.outcome != string(rec.Outcome) {
			diff("message", rec.Contest, id, "outcome", p.outcome, rec.Outcome)
			continue
		}
		// Only a station voting in the contest has a history there: the
		// station of the subject, whoever the payload names.
		_, voter := f.unitOf[rec.InContest][rec.InStation]
		if p.station != "" && (p.station != rec.InStation || p.contest != rec.InContest) {
			diff("message", rec.Contest, id, "station", p.contest+"/"+p.station, rec.InContest+"/"+rec.InStation)
		} else if p.station == "" && voter {
			diff("message", rec.Contest, id, "history", "not in the history of station "+rec.InStation, "in it")
		}
		if p.version != rec.Version {
			diff("message", rec.Contest, id, "version", p.version, rec.Version)
		}
		if st := statusString(rec.Status); p.status != st {
			diff("message", rec.Contest, id, "status", p.status, st)
		}
		if rec.Outcome == Rejected {
			if !p.inLog {
				diff("message", rec.Contest, id, "rejection", "not in the rejection log", "rejected")
			}
			var rules []string
			for _, v := range rec.Violations {
				rules = append(rules, v.Field+":"+v.Rule)
			}
			slices.Sort(rules)
			pr := slices.Clone(p.rules)
			slices.Sort(pr)
			if !slices.Equal(pr, rules) {
				diff("message", rec.Contest, id, "rules", list(pr), list(rules))
			}
		}
	}
	for _, seq := range slices.Sorted(maps.Keys(proj)) {
		if !seen[seq] {
			diff("message", proj[seq].contest, strconv.FormatUint(seq, 10), "outcome", proj[seq].outcome, "(not in the stream read)")
		}
	}
	rep.OK = len(rep.Differences) == 0 && len(rep.Seals.FailedApplied) == 0
	return rep, nil
}

func statusString(s tally.Status) string {
	if s == 0 {
		return ""
	}
	return s.String()
}

// normalize returns m with the counts it does not give zeroed and its
// votes sorted, as the projections' JSON of current minutes shows them.
func normalize(m *tally.Minutes) *tally.Minutes {
	c := *m
	counts := [6]*int64{&c.Counts.Registered, &c.Counts.Voted, &c.Counts.Issued, &c.Counts.Received, &c.Counts.Valid, &c.Counts.Invalid}
	for i, p := range counts {
		if c.Present&(1<<i) == 0 {
			*p = 0
		}
	}
	c.Votes = slices.Clone(m.Votes)
	slices.SortFunc(c.Votes, func(a, b tally.Vote) int { return strings.Compare(a.Candidate, b.Candidate) })
	return &c
}

func describe(m *tally.Minutes) string {
	if m == nil {
		return "no minutes"
	}
	return fmt.Sprintf("version %d %s", m.Version, statusString(m.Status))
}

func list(s []string) string { return "[" + strings.Join(s, " ") + "]" }

func present(b bool) string {
	if b {
		return "present"
	}
	return "absent"
}
