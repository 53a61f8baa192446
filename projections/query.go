package projections

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

// AreaResult is the result of a contest in an area (CONTRACT §4).
type AreaResult struct {
	Contest           string          `json:"contest"`
	Area              string          `json:"area"`
	Level             tally.AreaLevel `json:"level"`
	Name              string          `json:"name"`
	StationsExpected  int             `json:"stations_expected"`
	StationsReporting int64           `json:"stations_reporting"`
	StationsFinal     int64           `json:"stations_final"`
	Registered        int64           `json:"registered"`
	Voted             int64           `json:"voted"`
	Issued            int64           `json:"issued"`
	Received          int64           `json:"received"`
	Valid             int64           `json:"valid"`
	Invalid           int64           `json:"invalid"`
	// Votes is left out (nil) below the contest's council level, and where
	// no unit has stations in the area (CONTRACT §4 v2).
	Votes      map[string]int64 `json:"votes,omitzero"`
	Units      UnitsSummary     `json:"units"`
	AppliedSeq uint64           `json:"applied_seq"`
	// AppliedPositions: with partitions, every partition's position (see
	// Parts); nil without.
	AppliedPositions map[int]uint64 `json:"applied_positions,omitempty"`

	// hasVotes: the result carries votes (Votes may be nil when read for
	// the SSE hub, which renders them from sorted).
	hasVotes bool
	// order and sorted are Votes in key order, as the store read them, so
	// that MarshalJSON need not sort a province's tens of thousands of
	// candidates at every change.
	order  *voteOrder
	sorted []int64
}

// MarshalJSON encodes r as encoding/json would encode its fields.
func (r AreaResult) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// AppendJSON appends r's JSON to dst, byte for byte what encoding/json
// makes of its fields, without the reflection, the sorting of the votes (a
// province holds tens of thousands of candidates) nor the compaction of
// json.Marshal: the live stream renders every changed area at every commit.
func (r *AreaResult) AppendJSON(dst []byte) []byte {
	str := func(dst []byte, s string) []byte {
		b, _ := json.Marshal(s) // a string always encodes
		return append(dst, b...)
	}
	num := func(dst []byte, name string, v int64) []byte {
		dst = append(dst, ',', '"')
		dst = append(dst, name...)
		dst = append(dst, '"', ':')
		return strconv.AppendInt(dst, v, 10)
	}
	dst = append(dst, `{"contest":`...)
	dst = str(dst, r.Contest)
	dst = append(dst, `,"area":`...)
	dst = str(dst, r.Area)
	dst = append(dst, `,"level":`...)
	dst = str(dst, string(r.Level))
	dst = append(dst, `,"name":`...)
	dst = str(dst, r.Name)
	dst = num(dst, "stations_expected", int64(r.StationsExpected))
	dst = num(dst, "stations_reporting", r.StationsReporting)
	dst = num(dst, "stations_final", r.StationsFinal)
	dst = num(dst, "registered", r.Registered)
	dst = num(dst, "voted", r.Voted)
	dst = num(dst, "issued", r.Issued)
	dst = num(dst, "received", r.Received)
	dst = num(dst, "valid", r.Valid)
	dst = num(dst, "invalid", r.Invalid)
	switch {
	case r.order != nil && r.hasVotes && len(r.sorted) == len(r.order.ids) && (r.Votes == nil || len(r.Votes) == len(r.sorted)):
		dst = append(dst, `,"votes":`...)
		dst = r.order.appendJSON(dst, r.sorted) // from a Store
	case r.Votes == nil: // omitzero
	default: // not read from a Store: sort here
		dst = append(dst, `,"votes":`...)
		ids := slices.Sorted(maps.Keys(r.Votes))
		dst = append(dst, '{')
		for i, id := range ids {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = str(dst, id)
			dst = append(dst, ':')
			dst = strconv.AppendInt(dst, r.Votes[id], 10)
		}
		dst = append(dst, '}')
	}
	u := &r.Units
	dst = append(dst, `,"units":{"total":`...)
	dst = strconv.AppendInt(dst, int64(u.Total), 10)
	dst = num(dst, "counting", int64(u.Counting))
	dst = num(dst, "decided", int64(u.Decided))
	dst = num(dst, "tie", int64(u.Tie))
	dst = num(dst, "additional_election", int64(u.AdditionalElection))
	dst = num(dst, "re_election", int64(u.ReElection))
	dst = num(dst, "seats", int64(u.Seats))
	dst = num(dst, "winners", int64(u.Winners))
	dst = append(dst, `},"applied_seq":`...)
	dst = strconv.AppendUint(dst, r.AppliedSeq, 10)
	if len(r.AppliedPositions) > 0 {
		dst = append(dst, `,"applied_positions":`...)
		dst = appendPositions(dst, r.AppliedPositions)
	}
	return append(dst, '}')
}

// UnitsSummary is tally.UnitsSummary: the result types live beside the
// domain (tally/result.go), where exports read them.
type UnitsSummary = tally.UnitsSummary

// voteOrder is an area's candidate ids in byte order and, for each, its
// position in the area's aggregate.
type voteOrder struct {
	ids []string
	pos []int32
}

// appendJSON appends the JSON object {id: votes} of sorted, in key order.
// Ids need no escaping (tally.ValidID: letters, digits, '-', '_').
func (o *voteOrder) appendJSON(dst []byte, sorted []int64) []byte {
	dst = append(dst, '{')
	for i, id := range o.ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, id...)
		dst = append(dst, '"', ':')
		dst = strconv.AppendInt(dst, sorted[i], 10)
	}
	return append(dst, '}')
}

// areaOrder returns the vote order of area a of contest c, made once.
func (s *Store) areaOrder(c, a int) *voteOrder {
	key := c*len(s.e.Areas) + a
	if o, ok := s.orders.Load(key); ok {
		return o.(*voteOrder)
	}
	o := &voteOrder{}
	for _, u := range s.e.AreaUnits(c, a) {
		for _, cand := range s.e.Contests[c].Units[u].Candidates {
			o.ids = append(o.ids, cand.ID)
			o.pos = append(o.pos, int32(len(o.pos)))
		}
	}
	sort.Sort(byID{o})
	got, _ := s.orders.LoadOrStore(key, o)
	return got.(*voteOrder)
}

type byID struct{ *voteOrder }

func (b byID) Len() int           { return len(b.ids) }
func (b byID) Less(i, j int) bool { return b.ids[i] < b.ids[j] }
func (b byID) Swap(i, j int) {
	b.ids[i], b.ids[j] = b.ids[j], b.ids[i]
	b.pos[i], b.pos[j] = b.pos[j], b.pos[i]
}

// UnitResult is tally.UnitResult, the result of an electoral unit
// (CONTRACT §4).
type UnitResult = tally.UnitResult

// CandidateResult is tally.CandidateResult, one candidate of a unit
// result.
type CandidateResult = tally.CandidateResult

// readAt opens a fresh snapshot for the reads of one result.
func (s *Store) readAt() (reader, uint64, func(), error) {
	snap := s.db.NewSnapshot()
	meta, err := s.meta(snap)
	if err != nil {
		snap.Close()
		return nil, 0, nil, err
	}
	return snap, meta.Checkpoint, func() { snap.Close() }, nil
}

// readAggregateFrom reads the aggregate at key from r (zeros when absent).
func readAggregateFrom(r reader, key []byte, nvotes int) (aggregate, error) {
	var a aggregate
	v, closer, err := r.Get(key)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		a.votes = make([]int64, nvotes)
	case err != nil:
		return aggregate{}, fmt.Errorf("read aggregate: %w", err)
	default:
		err = decodeAggregate(v, &a)
		closer.Close()
		if err != nil {
			return aggregate{}, err
		}
		if len(a.votes) != nvotes {
			return aggregate{}, fmt.Errorf("aggregate %q has %d votes, election says %d", key, len(a.votes), nvotes)
		}
	}
	return a, nil
}

// readVotesInto reads the votes of the aggregate at key into dst (zeros
// when absent), without allocating.
func readVotesInto(r reader, key []byte, dst []int64) error {
	v, closer, err := r.Get(key)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		clear(dst)
		return nil
	case err != nil:
		return fmt.Errorf("read aggregate: %w", err)
	}
	defer closer.Close()
	b, err := skipToVotes(v)
	if err != nil {
		return fmt.Errorf("aggregate %q: %w", key, err)
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n != uint64(len(dst)) {
		return fmt.Errorf("aggregate %q has %d votes, election says %d", key, n, len(dst))
	}
	b = b[k:]
	for i := range dst {
		x, k := binary.Varint(b)
		if k <= 0 {
			return errCorruptAggregate
		}
		dst[i], b = x, b[k:]
	}
	return nil
}

// AreaResult returns the result of contest in area.
// It returns tally.ErrUnknownContest or tally.ErrUnknownArea for unknown ids.
func (s *Store) AreaResult(contest, area string) (*AreaResult, error) {
	return s.areaResult(s, contest, area, true)
}

// AppendAreaJSON appends the JSON of AreaResult(contest, area) to dst and
// returns its applied_seq. It builds no Votes map: the SSE hub renders
// every changed area at every commit, provinces of tens of thousands of
// candidates included.
func (s *Store) AppendAreaJSON(dst []byte, contest, area string) ([]byte, uint64, error) {
	res, err := s.areaResult(s, contest, area, false)
	if err != nil {
		return dst, 0, err
	}
	return res.AppendJSON(dst), res.AppliedSeq, nil
}

func (s *Store) areaResult(r aggregateReader, contest, area string, withMap bool) (*AreaResult, error) {
	c, ok := s.e.ContestIndex(contest)
	if !ok {
		return nil, fmt.Errorf("%w %q", tally.ErrUnknownContest, contest)
	}
	ai, ok := s.e.AreaIndex(area)
	if !ok {
		return nil, fmt.Errorf("%w %q", tally.ErrUnknownArea, area)
	}
	rd, seq, done, err := r.readAt()
	if err != nil {
		return nil, err
	}
	defer done()
	split, n := straddling(s.e, c, ai)
	agg, err := readAggregateFrom(rd, appendIDKey(nil, prefixArea, contest, area), n)
	if err != nil {
		return nil, err
	}
	a := &s.e.Areas[ai]
	res := &AreaResult{
		Contest: contest, Area: area, Level: a.Level, Name: a.Name,
		StationsExpected: s.e.Expected(c, ai), StationsReporting: agg.reporting, StationsFinal: agg.final,
		Registered: agg.counts.Registered, Voted: agg.counts.Voted, Issued: agg.counts.Issued,
		Received: agg.counts.Received, Valid: agg.counts.Valid, Invalid: agg.counts.Invalid,
		AppliedSeq: seq, hasVotes: s.e.AreaHasVotes(c, ai),
	}
	total, seats := s.e.AreaUnitTotals(c, ai)
	sum := &agg.summary
	res.Units = UnitsSummary{
		Total: total, Seats: seats, Winners: sum.winners,
		Decided: int(sum.decided), Tie: int(sum.tie), AdditionalElection: int(sum.additional), ReElection: int(sum.reElection),
	}
	res.Units.Counting = total - res.Units.Decided - res.Units.Tie - res.Units.AdditionalElection - res.Units.ReElection
	if !res.hasVotes {
		return res, nil
	}
	// The area's votes: its units' candidates end to end, from the area's
	// record for a unit straddling its border, else from the unit's own.
	votes := make([]int64, s.e.AreaVoteLen(c, ai))
	var key []byte
	i := 0
	for _, u := range s.e.AreaUnits(c, ai) {
		k := len(s.e.Contests[c].Units[u].Candidates)
		if len(split) > 0 && split[0].unit == u {
			copy(votes[i:i+k], agg.votes[split[0].off:])
			split = split[1:]
		} else {
			key = appendUnitKey(key[:0], s.e, c, int(u))
			if err := readVotesInto(rd, key, votes[i:i+k]); err != nil {
				return nil, err
			}
		}
		i += k
	}
	agg.votes = votes
	if withMap {
		res.Votes = make(map[string]int64, len(agg.votes))
		i := 0
		for _, u := range s.e.AreaUnits(c, ai) {
			for _, cand := range s.e.Contests[c].Units[u].Candidates {
				res.Votes[cand.ID] = agg.votes[i]
				i++
			}
		}
	}
	res.order = s.areaOrder(c, ai)
	res.sorted = make([]int64, len(res.order.pos))
	for k, p := range res.order.pos {
		res.sorted[k] = agg.votes[p]
	}
	return res, nil
}

// UnitResult returns the result of unit in contest, winners and status
// decided by the rules of CONTRACT §4.
// It returns tally.ErrUnknownContest or tally.ErrUnknownUnit for unknown ids.
func (s *Store) UnitResult(contest, unit string) (*UnitResult, error) {
	return s.unitResult(s, contest, unit)
}

func (s *Store) unitResult(r aggregateReader, contest, unit string) (*UnitResult, error) {
	c, ok := s.e.ContestIndex(contest)
	if !ok {
		return nil, fmt.Errorf("%w %q", tally.ErrUnknownContest, contest)
	}
	uc, ui, ok := s.e.UnitIndex(unit)
	if !ok || uc != c {
		return nil, fmt.Errorf("%w %q in contest %q", tally.ErrUnknownUnit, unit, contest)
	}
	u := &s.e.Contests[c].Units[ui]
	rd, seq, done, err := r.readAt()
	if err != nil {
		return nil, err
	}
	defer done()
	agg, err := readAggregateFrom(rd, appendIDKey(nil, prefixUnit, contest, unit), len(u.Candidates))
	if err != nil {
		return nil, err
	}
	d := s.e.Decide(c, ui, int(agg.final), agg.counts, agg.votes)
	res := &UnitResult{
		Contest: contest, Unit: unit, Level: "unit", Name: u.Name,
		StationsExpected: s.e.UnitExpected(c, ui), StationsReporting: agg.reporting, StationsFinal: agg.final,
		Registered: agg.counts.Registered, Voted: agg.counts.Voted, Issued: agg.counts.Issued,
		Received: agg.counts.Received, Valid: agg.counts.Valid, Invalid: agg.counts.Invalid,
		Votes: make(map[string]int64, len(u.Candidates)), Seats: u.Seats,
		Candidates: make([]CandidateResult, 0, len(u.Candidates)), Winners: make([]string, 0, len(d.Winners)),
		Status: d.Status, Round: u.Round, AppliedSeq: seq,
	}
	if res.Round == "" {
		res.Round = tally.FirstRound
	}
	if co := s.e.UnitCouncil(c, ui); co >= 0 {
		res.Council = s.e.Areas[co].ID
	}
	for k, cand := range u.Candidates {
		res.Votes[cand.ID] = agg.votes[k]
	}
	for _, k := range d.Ranking {
		cand := u.Candidates[k]
		res.Candidates = append(res.Candidates, CandidateResult{ID: cand.ID, Name: cand.Name, Born: cand.Born, Votes: agg.votes[k]})
	}
	for _, k := range d.Winners {
		res.Winners = append(res.Winners, u.Candidates[k].ID)
	}
	return res, nil
}

// HistoryEntry is one message a station sent for a contest and what the
// fold made of it.
type HistoryEntry struct {
	Seq     uint64 `json:"seq"`
	Version int64  `json:"version"`
	Status  string `json:"status"`
	Outcome string `json:"outcome"`
}

// StationView is a station's current minutes for a contest and its history.
type StationView struct {
	Current    json.RawMessage `json:"current"` // the minutes JSON, or null
	History    []HistoryEntry  `json:"history"`
	AppliedSeq uint64          `json:"applied_seq"`
}

// Station returns a station's current minutes and history for contest.
// It returns tally.ErrUnknownContest or tally.ErrUnknownStation.
func (s *Store) Station(contest, station string) (*StationView, error) {
	c, ok := s.e.ContestIndex(contest)
	if !ok {
		return nil, fmt.Errorf("%w %q", tally.ErrUnknownContest, contest)
	}
	st, ok := s.e.StationIndex(station)
	if !ok {
		return nil, fmt.Errorf("%w %q", tally.ErrUnknownStation, station)
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	meta, err := s.meta(snap)
	if err != nil {
		return nil, err
	}
	view := &StationView{Current: json.RawMessage("null"), History: []HistoryEntry{}, AppliedSeq: meta.Checkpoint}
	entry := func(e histEntry) HistoryEntry {
		st := ""
		if e.status != 0 {
			st = e.status.String()
		}
		return HistoryEntry{Seq: e.seq, Version: e.version, Status: st, Outcome: e.outcome.String()}
	}
	v, closer, err := snap.Get(appendIDKey(nil, prefixStation, contest, station))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("read station record: %w", err)
	default:
		payload, hist, err := decodeRecord(v, nil)
		if err == nil && len(payload) > 0 {
			var m tally.Minutes
			if err = decodeMinutes(payload, s.e, c, st, &m); err == nil {
				view.Current = events.AppendJSON(nil, &m) // copies every string before closer.Close
			}
		}
		closer.Close()
		if err != nil {
			return nil, fmt.Errorf("station record: %w", err)
		}
		for _, e := range hist {
			view.History = append(view.History, entry(e))
		}
	}
	// Entries past the inline limit have keys of their own, all later.
	prefix := append(appendIDKey(nil, prefixHistory, contest, station), 0)
	iter, err := snap.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, err
	}
	defer iter.Close()
	for iter.First(); iter.Valid(); iter.Next() {
		k := iter.Key()
		if len(k) != len(prefix)+8 {
			continue
		}
		e, _, err := decodeEntry(iter.Value())
		if err != nil {
			return nil, fmt.Errorf("history record %q: %w", k, err)
		}
		e.seq = binary.BigEndian.Uint64(k[len(prefix):])
		view.History = append(view.History, entry(e))
	}
	return view, iter.Error()
}

// Rejections returns every rejected message in stream order; station, if
// not empty, keeps those naming it in their payload or their subject.
func (s *Store) Rejections(station string) ([]Rejection, error) {
	iter, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixRejection, '/'}, UpperBound: []byte{prefixRejection, '/' + 1}})
	if err != nil {
		return nil, err
	}
	defer iter.Close()
	out := []Rejection{}
	for iter.First(); iter.Valid(); iter.Next() {
		var r Rejection
		if err := json.Unmarshal(iter.Value(), &r); err != nil {
			return nil, fmt.Errorf("corrupt rejection record %q: %w", iter.Key(), err)
		}
		if station == "" || r.Station == station || r.SubjectStation == station {
			out = append(out, r)
		}
	}
	return out, iter.Error()
}
