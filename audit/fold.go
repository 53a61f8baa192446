// Package audit recomputes an election's results from its minutes stream,
// independently of the projections, and compares them with what the
// projections publish (tally verify).
//
// The fold here is deliberately naive: plain maps keyed by station, whole
// minutes kept as they came, every total summed from scratch at the end. It
// shares only the domain rules with package projections (admission, the one
// function every fold calls: events.Admit, which decodes and checks the
// subject, the static rules of package tally and the seal; tally's Decide
// for the unit rules of CONTRACT §4); the version, duplicate, stale,
// conflict and withdrawal rules of CONTRACT §3 and all the arithmetic are
// written again here, so a bug in the projections' delta fold, their
// encodings or their storage shows up as a difference.
package audit

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

// Outcome is what a fold made of one message, as the API spells it.
type Outcome string

// Outcomes (CONTRACT §5, station history).
const (
	Applied   Outcome = "applied"
	Stale     Outcome = "stale"
	Duplicate Outcome = "duplicate"
	Rejected  Outcome = "rejected"
)

// Record is one message of the stream and what the audit fold made of it.
type Record struct {
	Seq     uint64
	Subject string
	// Station, Contest, Version and Status are as the payload gives them
	// ("" and 0 when it could not be decoded).
	Station, Contest string
	// InStation and InContest name the history that holds the record: the
	// payload's station and contest, but for a rejected message the
	// subject's (whoever published it), as the projections do.
	InStation, InContest string
	Version              int64
	Status               tally.Status
	Outcome              Outcome
	// Violations lists every broken rule of a rejected message.
	Violations []tally.Violation
	// Sealed: the payload names a station with a seal, so its signature
	// was checked; SealOK: it verified.
	Sealed, SealOK bool
	// SealError is why the signature did not verify.
	SealError string
}

// Counts are outcome counters.
type Counts struct {
	Applied    uint64 `json:"applied"`
	Stale      uint64 `json:"stale"`
	Duplicates uint64 `json:"duplicates"`
	Rejected   uint64 `json:"rejected"`
}

// Fold is the audit's own fold of the minutes stream. Not safe for
// concurrent use.
type Fold struct {
	e *tally.Election
	// current holds each station's current minutes per contest.
	current map[stationKey]*tally.Minutes
	records []Record
	counts  Counts
	adm     events.Admission // reused for every message

	// The election's shape, worked out here from the file's own fields.
	areasOf  map[string][]string          // station -> its areas, bottom level first
	unitOf   map[string]map[string]string // contest -> station -> unit
	units    map[string]*tally.Unit       // unit id -> unit
	contests map[string]*tally.Contest    // contest id -> contest
}

type stationKey struct{ contest, station string }

// New returns an empty fold for election e.
func New(e *tally.Election) *Fold {
	f := &Fold{
		e: e, current: map[stationKey]*tally.Minutes{},
		areasOf: map[string][]string{}, unitOf: map[string]map[string]string{},
		units: map[string]*tally.Unit{}, contests: map[string]*tally.Contest{},
	}
	parent := map[string]string{}
	for _, a := range e.Areas {
		parent[a.ID] = a.Parent
	}
	under := map[string][]string{} // area -> stations at any depth
	for _, st := range e.Stations {
		var chain []string
		for a := st.AreaID(); a != ""; a = parent[a] {
			chain = append(chain, a)
		}
		f.areasOf[st.ID] = chain
		for _, a := range chain {
			under[a] = append(under[a], st.ID)
		}
	}
	for ci := range e.Contests {
		c := &e.Contests[ci]
		f.contests[c.ID] = c
		of := map[string]string{}
		f.unitOf[c.ID] = of
		for ui := range c.Units {
			u := &c.Units[ui]
			f.units[u.ID] = u
			for _, a := range u.Areas {
				for _, st := range under[a] {
					of[st] = u.ID
				}
			}
			for _, st := range u.Stations {
				of[st] = u.ID
			}
		}
	}
	return f
}

// Records returns every message folded, in the order folded.
func (f *Fold) Records() []Record { return f.records }

// Counts returns the outcome counters.
func (f *Fold) Counts() Counts { return f.counts }

// Current returns the current minutes of station for contest, if any.
// The caller must not modify them.
func (f *Fold) Current(contest, station string) (*tally.Minutes, bool) {
	m, ok := f.current[stationKey{contest, station}]
	return m, ok
}

// Apply folds the message at stream position seq, published on subject,
// with payload data (binary or JSON minutes). Messages must come in stream
// order. data is not kept.
func (f *Fold) Apply(seq uint64, subject string, data []byte) Record {
	rec := Record{Seq: seq, Subject: subject}
	// Admission (decode, subject, the rules that need no history, seal) is
	// the one every fold shares; what follows is written again here.
	a := &f.adm
	events.Admit(f.e, subject, data, a)
	m := &a.Minutes
	rec.Station, rec.Contest = f.intern(m.Station, m.Contest)
	rec.InStation, rec.InContest = rec.Station, rec.Contest
	rec.Version, rec.Status = m.Version, m.Status
	rec.Sealed = a.Sealed
	if a.Sealed {
		rec.SealOK = true
		for _, v := range a.Violations {
			if v.Rule == tally.RuleSeal {
				rec.SealOK, rec.SealError = false, v.Message
			}
		}
	}
	if len(a.Violations) > 0 {
		return f.reject(rec, slices.Clone(a.Violations))
	}

	key := stationKey{rec.Contest, rec.Station}
	if cur, ok := f.current[key]; ok {
		switch {
		case m.Version < cur.Version:
			rec.Outcome = Stale
			f.counts.Stale++
			f.records = append(f.records, rec)
			return rec
		case m.Version == cur.Version && sameContent(m, cur):
			rec.Outcome = Duplicate
			f.counts.Duplicates++
			f.records = append(f.records, rec)
			return rec
		case m.Version == cur.Version:
			return f.reject(rec, []tally.Violation{{Field: "version", Rule: tally.RuleConflict,
				Message: fmt.Sprintf("version %d of station %q contest %q was already received with different content", m.Version, m.Station, m.Contest)}})
		}
	}
	f.current[key] = cloneMinutes(m)
	rec.Outcome = Applied
	f.counts.Applied++
	f.records = append(f.records, rec)
	return rec
}

func (f *Fold) reject(rec Record, viol []tally.Violation) Record {
	rec.Outcome = Rejected
	if st, ct, ok := events.ParseSubject(f.e.ID, rec.Subject); ok {
		rec.InStation, rec.InContest = f.intern(st, ct)
	}
	rec.Violations = viol
	f.counts.Rejected++
	f.records = append(f.records, rec)
	return rec
}

// intern returns the election's own copies of known ids (a decoded binary
// payload's strings alias the message) and clones of unknown ones.
func (f *Fold) intern(station, contest string) (string, string) {
	if s, ok := f.e.StationIndex(station); ok {
		station = f.e.Stations[s].ID
	} else {
		station = strings.Clone(station)
	}
	if c, ok := f.contests[contest]; ok {
		contest = c.ID
	} else {
		contest = strings.Clone(contest)
	}
	return station, contest
}

// sameContent reports whether a and b are the same minutes: every field
// equal, votes compared as a set of (candidate, count).
func sameContent(a, b *tally.Minutes) bool {
	return a.Election == b.Election && a.Contest == b.Contest && a.Station == b.Station &&
		a.Version == b.Version && a.Status == b.Status && a.Present == b.Present && a.Counts == b.Counts &&
		a.Reason == b.Reason && a.Signature == b.Signature && maps.Equal(voteMap(a), voteMap(b))
}

func voteMap(m *tally.Minutes) map[string]int64 {
	out := make(map[string]int64, len(m.Votes))
	for _, v := range m.Votes {
		out[v.Candidate] = v.Count
	}
	return out
}

func cloneMinutes(m *tally.Minutes) *tally.Minutes {
	c := *m
	c.Election, c.Contest, c.Station = strings.Clone(m.Election), strings.Clone(m.Contest), strings.Clone(m.Station)
	c.Reason, c.Signature = strings.Clone(m.Reason), strings.Clone(m.Signature)
	c.Votes = make([]tally.Vote, len(m.Votes))
	for i, v := range m.Votes {
		c.Votes[i] = tally.Vote{Candidate: strings.Clone(v.Candidate), Count: v.Count}
	}
	return &c
}

// Totals is the sum over some stations' current minutes (CONTRACT §4).
type Totals struct {
	Expected  int64        `json:"stations_expected"`
	Reporting int64        `json:"stations_reporting"`
	Final     int64        `json:"stations_final"`
	Counts    tally.Counts `json:"counts"`
	// Votes holds every candidate of every unit concerned, 0 included; nil
	// for an area below the contest's council level (CONTRACT §4 v2) or
	// where no unit has stations.
	Votes map[string]int64 `json:"votes"`
	// Units summarises the units lying wholly in an area (areas only).
	Units UnitsSummary `json:"units"`
}

// UnitsSummary counts the units of a contest whose listed stations all lie
// in an area (CONTRACT §4 v2).
type UnitsSummary struct {
	Total, Counting, Decided, Tie, AdditionalElection, ReElection, Seats, Winners int64
}

// UnitTotals is a unit's totals and what the rules of CONTRACT §4 make of
// them.
type UnitTotals struct {
	Totals
	Seats   int              `json:"seats"`
	Round   tally.Round      `json:"round"`
	Ranking []string         `json:"ranking"` // candidate ids in rank order
	Winners []string         `json:"winners"`
	Status  tally.UnitStatus `json:"status"`
}

// Results are every area and unit result of every contest.
type Results struct {
	Areas map[string]map[string]*Totals     // contest -> area -> totals
	Units map[string]map[string]*UnitTotals // contest -> unit -> totals
}

// Results sums the current minutes into the area result (at every level)
// of every area holding stations of a contest and into every unit result,
// from scratch.
func (f *Fold) Results() *Results {
	res := &Results{Areas: map[string]map[string]*Totals{}, Units: map[string]map[string]*UnitTotals{}}
	// The depth of each level, from the top, and of each contest's council.
	depth := map[string]int{}
	levels := f.e.AreaLevels()
	for i, l := range levels {
		depth[string(l)] = i
	}
	levelOf := map[string]string{}
	for _, a := range f.e.Areas {
		levelOf[a.ID] = string(a.Level)
	}
	for _, c := range f.e.Contests {
		council := -1 // national
		switch c.Level {
		case tally.National:
		case tally.CommuneCouncil:
			council = len(levels) - 1
		default:
			council = depth[string(c.Level)]
		}
		areas := map[string]*Totals{}
		units := map[string]*UnitTotals{}
		for _, u := range c.Units {
			round := u.Round
			if round == "" {
				round = tally.FirstRound
			}
			ut := &UnitTotals{Totals: Totals{Votes: map[string]int64{}, Expected: int64(u.StationsOutside)}, Seats: u.Seats, Round: round}
			for _, cand := range u.Candidates {
				ut.Votes[cand.ID] = 0
			}
			units[u.ID] = ut
		}
		// home[u] counts, per area, the unit's stations in it; the unit lies
		// wholly in the areas that hold all of them.
		home := map[string]map[string]int64{}
		for _, st := range f.e.Stations {
			uid, votes := f.unitOf[c.ID][st.ID]
			if !votes {
				continue
			}
			if home[uid] == nil {
				home[uid] = map[string]int64{}
			}
			for _, a := range f.areasOf[st.ID] {
				home[uid][a]++
				if areas[a] == nil {
					areas[a] = &Totals{Votes: map[string]int64{}}
				}
			}
		}
		for _, st := range f.e.Stations {
			uid, votes := f.unitOf[c.ID][st.ID]
			if !votes {
				continue
			}
			unit := f.units[uid]
			sums := []*Totals{&units[uid].Totals}
			for _, a := range f.areasOf[st.ID] {
				if t := areas[a]; t != nil {
					sums = append(sums, t)
				}
			}
			m := f.current[stationKey{c.ID, st.ID}]
			for _, t := range sums {
				t.Expected++
				for _, cand := range unit.Candidates {
					t.Votes[cand.ID] += 0
				}
				if m == nil || (m.Status != tally.Partial && m.Status != tally.Final) {
					continue
				}
				t.Reporting++
				if m.Status == tally.Final {
					t.Final++
				}
				t.Counts.Add(m.Counts, 1)
				for _, v := range m.Votes {
					t.Votes[v.Candidate] += v.Count
				}
			}
		}
		ci, _ := f.e.ContestIndex(c.ID)
		for ui, u := range c.Units {
			ut := units[u.ID]
			dense := make([]int64, len(u.Candidates))
			for k, cand := range u.Candidates {
				dense[k] = ut.Votes[cand.ID]
			}
			d := f.e.Decide(ci, ui, int(ut.Final), ut.Counts, dense)
			ut.Status = d.Status
			ut.Ranking = make([]string, 0, len(d.Ranking))
			for _, k := range d.Ranking {
				ut.Ranking = append(ut.Ranking, u.Candidates[k].ID)
			}
			ut.Winners = make([]string, 0, len(d.Winners))
			for _, k := range d.Winners {
				ut.Winners = append(ut.Winners, u.Candidates[k].ID)
			}
			listed := ut.Expected - int64(u.StationsOutside)
			for a, n := range home[u.ID] {
				if n != listed {
					continue
				}
				s := &areas[a].Units
				s.Total++
				s.Seats += int64(u.Seats)
				s.Winners += int64(len(ut.Winners))
				switch ut.Status {
				case tally.Counting:
					s.Counting++
				case tally.Decided:
					s.Decided++
				case tally.Tie:
					s.Tie++
				case tally.AdditionalElection:
					s.AdditionalElection++
				case tally.ReElection:
					s.ReElection++
				}
			}
		}
		for a, t := range areas {
			if council >= 0 && council > depth[levelOf[a]] {
				t.Votes = nil // CONTRACT §4 v2: below the council's level
			}
		}
		res.Areas[c.ID], res.Units[c.ID] = areas, units
	}
	return res
}

// areaIdx returns the index of area id in the election's areas.
func (f *Fold) areaIdx(id string) int {
	for i := range f.e.Areas {
		if f.e.Areas[i].ID == id {
			return i
		}
	}
	return -1
}

// StationsOf returns the stations that vote in contest, in file order.
func (f *Fold) StationsOf(contest string) []string {
	var out []string
	for _, st := range f.e.Stations {
		if _, ok := f.unitOf[contest][st.ID]; ok {
			out = append(out, st.ID)
		}
	}
	return out
}

// sortedKeys returns m's keys in byte order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
