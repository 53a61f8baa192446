package projections

import (
	"errors"
	"fmt"
	"iter"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tallyvn/tally/tally"
)

// View reads the projections at one stream position. Each query method of
// Store opens a snapshot of its own, so two calls may straddle a commit of
// the fold; a View holds one Pebble snapshot for all of its reads, so every
// result it returns reflects the same AppliedSeq (CONTRACT §8: an export is
// read from one snapshot). It reads lazily, one key at a time: iterating a
// national election through a View holds one result in memory at a time.
//
// A View is not safe for concurrent use. It pins the snapshot's data until
// Close; keep it open no longer than one export.
//
// A view of Parts with n > 1 partitions holds one snapshot per partition
// (sub), taken one after the other: each result reflects its own
// partition's snapshot, stated in its AppliedPositions, and the view's
// AppliedSeq is the sum of the positions. Partitions share no aggregate,
// so no result straddles two snapshots.
type View struct {
	s    *Store
	snap *pebble.Snapshot
	meta Meta // with sub: summed
	ps   *Parts
	sub  []*View
}

// View opens a view of the projections as they are now.
func (s *Store) View() (*View, error) {
	snap := s.db.NewSnapshot()
	meta, err := s.meta(snap)
	if err != nil {
		snap.Close()
		return nil, err
	}
	return &View{s: s, snap: snap, meta: meta}, nil
}

// Close releases the view's snapshots.
func (v *View) Close() error {
	if v.sub == nil {
		return v.snap.Close()
	}
	var first error
	for _, sv := range v.sub {
		if sv == nil {
			continue
		}
		if err := sv.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// AppliedSeq is the stream position every result of the view reflects;
// with partitions, the sum of AppliedPositions.
func (v *View) AppliedSeq() uint64 { return v.meta.Checkpoint }

// AppliedPositions returns, with partitions, the position of each
// partition's snapshot; nil without.
func (v *View) AppliedPositions() map[int]uint64 {
	if v.sub == nil {
		return nil
	}
	pos := make(map[int]uint64, len(v.sub))
	for p, sv := range v.sub {
		pos[p] = sv.meta.Checkpoint
	}
	return pos
}

// Meta returns the fold's position and counters at the view's snapshot
// (summed over partitions).
func (v *View) Meta() Meta { return v.meta }

// Election returns the election the projections were built for: with
// partitions, the whole election.
func (v *View) Election() *tally.Election {
	if v.ps != nil {
		return v.ps.e
	}
	return v.s.e
}

// aggregateReader gives the reads of one result a snapshot and the stream
// position it reflects: the Store a fresh snapshot per result, a View its
// own. The caller calls done when its reads are over.
type aggregateReader interface {
	readAt() (r reader, seq uint64, done func(), err error)
}

func (v *View) readAt() (reader, uint64, func(), error) {
	return v.snap, v.meta.Checkpoint, func() {}, nil
}

// AreaResult returns the result of contest in area, as Store.AreaResult
// does, at the view's position.
func (v *View) AreaResult(contest, area string) (*AreaResult, error) {
	if v.sub == nil {
		return v.s.areaResult(v, contest, area, true)
	}
	p, err := v.ps.areaPartition(contest, area)
	if err != nil {
		return nil, err
	}
	res, err := v.sub[p].AreaResult(contest, area)
	if err != nil {
		return nil, err
	}
	res.AppliedPositions, res.AppliedSeq = v.AppliedPositions(), v.AppliedSeq()
	return res, nil
}

// UnitResult returns the result of unit in contest, as Store.UnitResult
// does, at the view's position.
func (v *View) UnitResult(contest, unit string) (*UnitResult, error) {
	if v.sub == nil {
		return v.s.unitResult(v, contest, unit)
	}
	p, err := v.ps.unitPartition(contest, unit)
	if err != nil {
		return nil, err
	}
	res, err := v.sub[p].UnitResult(contest, unit)
	if err != nil {
		return nil, err
	}
	res.AppliedPositions, res.AppliedSeq = v.AppliedPositions(), v.AppliedSeq()
	return res, nil
}

// AreaResults yields the result of contest in every area of the election,
// in the order of the election file. It stops at the first error, which it
// yields.
func (v *View) AreaResults(contest string) iter.Seq2[*AreaResult, error] {
	return func(yield func(*AreaResult, error) bool) {
		e := v.Election()
		if _, ok := e.ContestIndex(contest); !ok {
			yield(nil, fmt.Errorf("%w %q", tally.ErrUnknownContest, contest))
			return
		}
		for i := range e.Areas {
			r, err := v.AreaResult(contest, e.Areas[i].ID)
			if !yield(r, err) || err != nil {
				return
			}
		}
	}
}

// UnitResults yields the result of every unit of contest, in the order of
// the election file. It stops at the first error, which it yields.
func (v *View) UnitResults(contest string) iter.Seq2[*UnitResult, error] {
	return func(yield func(*UnitResult, error) bool) {
		e := v.Election()
		c, ok := e.ContestIndex(contest)
		if !ok {
			yield(nil, fmt.Errorf("%w %q", tally.ErrUnknownContest, contest))
			return
		}
		for i := range e.Contests[c].Units {
			r, err := v.UnitResult(contest, e.Contests[c].Units[i].ID)
			if !yield(r, err) || err != nil {
				return
			}
		}
	}
}

// StationResult is what one station's current minutes for a contest add to
// its unit and areas.
type StationResult struct {
	Contest string
	Station string
	Unit    string // the unit the station votes in for Contest
	// Status is the current minutes' status: 0 before any minutes,
	// tally.Withdrawn after a withdrawal. Counts and Votes are zero unless
	// Reporting.
	Status tally.Status
	Counts tally.Counts
	// Votes holds the unit's candidates' votes in the order of the
	// election file (tally.Unit.Candidates).
	Votes []int64
}

// Reporting reports whether the station's minutes count in the results
// (partial or final; CONTRACT §4).
func (r *StationResult) Reporting() bool {
	return r.Status == tally.Partial || r.Status == tally.Final
}

// Station returns what station's current minutes for contest contribute,
// at the view's position. It returns tally.ErrUnknownContest,
// tally.ErrUnknownStation, or tally.ErrUnknownUnit when the station does not
// vote in the contest.
func (v *View) Station(contest, station string) (*StationResult, error) {
	if v.sub != nil {
		p, err := v.ps.stationPartition(contest, station)
		if err != nil {
			return nil, err
		}
		return v.sub[p].Station(contest, station)
	}
	e := v.s.e
	c, ok := e.ContestIndex(contest)
	if !ok {
		return nil, fmt.Errorf("%w %q", tally.ErrUnknownContest, contest)
	}
	st, ok := e.StationIndex(station)
	if !ok {
		return nil, fmt.Errorf("%w %q", tally.ErrUnknownStation, station)
	}
	u := e.StationUnit(c, st)
	if u < 0 {
		return nil, fmt.Errorf("%w: station %q votes in no unit of contest %q", tally.ErrUnknownUnit, station, contest)
	}
	unit := &e.Contests[c].Units[u]
	res := &StationResult{Contest: contest, Station: station, Unit: unit.ID, Votes: make([]int64, len(unit.Candidates))}
	val, closer, err := v.snap.Get(appendIDKey(nil, prefixStation, contest, station))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return res, nil
	case err != nil:
		return nil, fmt.Errorf("read station record %s/%s: %w", contest, station, err)
	}
	defer closer.Close()
	payload, _, err := decodeRecord(val, nil)
	if err != nil {
		return nil, fmt.Errorf("station record %s/%s: %w", contest, station, err)
	}
	if len(payload) == 0 {
		return res, nil
	}
	var m tally.Minutes
	if err := decodeMinutes(payload, e, c, st, &m); err != nil {
		return nil, fmt.Errorf("station record %s/%s: %w", contest, station, err)
	}
	res.Status = m.Status
	if !res.Reporting() {
		return res, nil
	}
	res.Counts = m.Counts
	for _, vote := range m.Votes {
		k, ok := e.CandidateIndex(c, u, vote.Candidate)
		if !ok {
			// INVARIANT: the fold stores only minutes that passed the
			// rules of CONTRACT §3, so every candidate is the unit's.
			return nil, fmt.Errorf("%w: station record %s/%s names candidate %q outside unit %q", ErrCorrupt, contest, station, vote.Candidate, unit.ID)
		}
		res.Votes[k] = vote.Count
	}
	return res, nil
}
