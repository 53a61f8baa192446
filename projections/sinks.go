package projections

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/tallyvn/tally/tally"
)

// The sinks are the third step of the fold: each applies the ledger's
// changes to a projection of its own, in memory, and stages what changed
// at EndBatch. Two today: the units' aggregates with their decisions, and
// the areas' aggregates with their units summaries. A sink never sees a
// message, only changes, so another projection (warnings, say) is another
// sink.

// unitSink keeps every unit's aggregate and the decision last taken on it.
type unitSink struct {
	e       *tally.Election
	units   [][]aggregate // by contest, then unit
	decided [][]decision  // by contest, then unit: what the units summary counts
	// dirty lists the aggregates changed since the last stage, and
	// undecided the units whose totals changed since their decision was
	// last taken.
	dirty, undecided []Ref
}

// decision is what a unit's summary counts of it: its status and winners.
type decision struct {
	status  tally.UnitStatus
	winners int64
}

func newUnitSink(e *tally.Election) unitSink {
	s := unitSink{e: e, units: make([][]aggregate, len(e.Contests)), decided: make([][]decision, len(e.Contests))}
	for c := range e.Contests {
		units := e.Contests[c].Units
		n := 0
		for u := range units {
			n += len(units[u].Candidates)
		}
		arena := make([]int64, n)
		s.units[c] = make([]aggregate, len(units))
		s.decided[c] = make([]decision, len(units))
		for u := range units {
			k := len(units[u].Candidates)
			s.units[c][u].votes, arena = arena[:k:k], arena[k:]
			s.decided[c][u].status = tally.Counting // nothing reported yet
		}
	}
	return s
}

// apply moves the changed station's contribution in its unit's aggregate.
func (s *unitSink) apply(ch *change) {
	if !ch.old.reporting() && !ch.new.reporting() {
		return
	}
	u := s.e.VoterUnit(ch.contest, ch.voter)
	a := &s.units[ch.contest][u]
	if !a.dirty {
		a.dirty = true
		ref := Ref{Contest: int32(ch.contest), Unit: true, Index: int32(u)}
		s.dirty = append(s.dirty, ref)
		s.undecided = append(s.undecided, ref)
	}
	a.apply(ch, 0)
}

// decide takes the decision of every unit whose totals changed since the
// last call, and reports each unit whose decision changed to moved.
func (s *unitSink) decide(moved func(c, u int, old, now decision)) {
	for _, ref := range s.undecided {
		c, u := int(ref.Contest), int(ref.Index)
		agg := &s.units[c][u]
		d := s.e.Decide(c, u, int(agg.final), agg.counts, agg.votes)
		now := decision{status: d.Status, winners: int64(len(d.Winners))}
		if old := s.decided[c][u]; now != old {
			s.decided[c][u] = now
			moved(c, u, old, now)
		}
	}
	s.undecided = s.undecided[:0]
}

// stage stages every unit aggregate changed since the last call, in key
// order, and returns their refs (valid until the next apply).
func (s *unitSink) stage(st *staging) ([]Ref, error) {
	st.sortRefs(s.dirty)
	for _, ref := range s.dirty {
		a := &s.units[ref.Contest][ref.Index]
		a.dirty = false
		st.key = appendUnitKey(st.key[:0], s.e, int(ref.Contest), int(ref.Index))
		st.val = a.append(st.val[:0])
		if err := st.batch.Set(st.key, st.val, nil); err != nil {
			return nil, fmt.Errorf("stage unit aggregate: %w", err)
		}
	}
	refs := s.dirty
	s.dirty = s.dirty[:0]
	return refs, nil
}

// clean forgets what changed, as after a stage, without staging it.
func (s *unitSink) clean() {
	for _, ref := range s.dirty {
		s.units[ref.Contest][ref.Index].dirty = false
	}
	s.dirty = s.dirty[:0]
}

// areaSink keeps every area's aggregate of every contest held in it, with
// its units summary.
//
// INVARIANT: an area's aggregate counts every station of the area, but
// holds the votes only of the units straddling its border (keys.go,
// straddling); a unit lying wholly in the area has its votes in its own
// aggregate alone, so a batch does not rewrite them twice, and a query
// adds them back (Store.areaResult).
type areaSink struct {
	e     *tally.Election
	areas [][]aggregate // by contest, then local area (tally.Election.ContestAreas)
	// split holds, by contest then local area, the units straddling the
	// area's border and where their votes lie in its aggregate.
	split [][][]unitSlice
	dirty []Ref
}

func newAreaSink(e *tally.Election) areaSink {
	s := areaSink{e: e, areas: make([][]aggregate, len(e.Contests)), split: make([][][]unitSlice, len(e.Contests))}
	for c := range e.Contests {
		areas := e.ContestAreas(c)
		s.split[c] = make([][]unitSlice, len(areas))
		lens := make([]int, len(areas))
		n := 0
		for la, a := range areas {
			s.split[c][la], lens[la] = straddling(e, c, int(a))
			n += lens[la]
		}
		arena := make([]int64, n)
		s.areas[c] = make([]aggregate, len(areas))
		for la, k := range lens {
			s.areas[c][la].votes, arena = arena[:k:k], arena[k:]
		}
	}
	return s
}

// apply moves the changed station's contribution in each of its areas,
// one per level.
func (s *areaSink) apply(ch *change) {
	if !ch.old.reporting() && !ch.new.reporting() {
		return
	}
	c, v := ch.contest, ch.voter
	u := int32(s.e.VoterUnit(c, v))
	for _, la := range s.e.VoterAreas(c, v) {
		a := &s.areas[c][la]
		s.touch(a, c, la)
		a.apply(ch, offsetOf(s.split[c][la], u))
	}
}

// offsetOf returns where unit u's votes lie in an area's aggregate whose
// straddling units are split, -1 if it holds none of them.
func offsetOf(split []unitSlice, u int32) int {
	// In unit order; rarely more than one.
	if i, ok := slices.BinarySearchFunc(split, u, func(x unitSlice, u int32) int { return cmp.Compare(x.unit, u) }); ok {
		return int(split[i].off)
	}
	return -1
}

// unitDecided moves unit u of contest c from its old decision to its new
// one in the units summary of every area holding it wholly.
func (s *areaSink) unitDecided(c, u int, old, now decision) {
	for _, a := range s.e.UnitAreas(c, u) {
		la, _ := s.e.ContestArea(c, a)
		area := &s.areas[c][la]
		area.summary.add(old, -1)
		area.summary.add(now, +1)
		s.touch(area, c, int32(la))
	}
}

func (s *areaSink) touch(a *aggregate, c int, la int32) {
	if !a.dirty {
		a.dirty = true
		s.dirty = append(s.dirty, Ref{Contest: int32(c), Index: s.e.ContestAreas(c)[la]})
	}
}

// stage stages every area aggregate changed since the last call, in key
// order, and returns their refs (valid until the next apply).
func (s *areaSink) stage(st *staging) ([]Ref, error) {
	st.sortRefs(s.dirty)
	for _, ref := range s.dirty {
		a := s.aggregate(ref)
		a.dirty = false
		st.key = appendAreaKey(st.key[:0], s.e, int(ref.Contest), int(ref.Index))
		st.val = a.append(st.val[:0])
		if err := st.batch.Set(st.key, st.val, nil); err != nil {
			return nil, fmt.Errorf("stage area aggregate: %w", err)
		}
	}
	refs := s.dirty
	s.dirty = s.dirty[:0]
	return refs, nil
}

// clean forgets what changed, as after a stage, without staging it.
func (s *areaSink) clean() {
	for _, ref := range s.dirty {
		s.aggregate(ref).dirty = false
	}
	s.dirty = s.dirty[:0]
}

func (s *areaSink) aggregate(ref Ref) *aggregate {
	// REQUIRES: the area holds voters of the contest, as every area a
	// change names does.
	la, _ := s.e.ContestArea(int(ref.Contest), int(ref.Index))
	return &s.areas[ref.Contest][la]
}

// apply takes ch.old out of a and puts ch.new in; a's vote vector holds
// the station's unit's candidates from off (-1: a holds none of them).
func (a *aggregate) apply(ch *change, off int) {
	if ch.old.reporting() {
		a.add(ch.old, off, -1)
	}
	if ch.new.reporting() {
		a.add(ch.new, off, +1)
	}
}

// add adds sign × x to a.
func (a *aggregate) add(x *contribution, off int, sign int64) {
	a.reporting += sign
	if x.status == tally.Final {
		a.final += sign
	}
	a.counts.Add(x.counts, sign)
	if off < 0 {
		return
	}
	votes := a.votes[off : off+len(x.votes)]
	for i, v := range x.votes {
		votes[i] += sign * v
	}
}
