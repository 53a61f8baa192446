package projections

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

// ErrBroken is returned by a Fold whose commit failed: its memory no longer
// matches the store, so it must be discarded and the store reopened.
var ErrBroken = errors.New("projections: fold state lost after a failed commit; reopen the store")

// Msg is one message of the minutes stream.
type Msg struct {
	Seq     uint64    // stream sequence
	Subject string    // the subject it was published on
	Data    []byte    // binary or JSON minutes
	Time    time.Time // when the stream stored it
}

// current is a station's current minutes for one contest, as the fold
// needs them.
type current struct {
	version int64
	status  tally.Status // 0: no minutes applied yet
	hash    uint64       // xxhash of the canonical binary form
	counts  tally.Counts
	votes   []int64 // the unit's candidates; a window of contestState.arena
	// payload is the canonical binary form of the current minutes (nil
	// before any), kept to rewrite the station record.
	payload []byte
	// hist is the station's history for the contest, kept inline in its
	// record up to maxInlineHistory entries; later entries get keys of
	// their own, so a flood of messages for one station cannot make each
	// write ever longer.
	hist []histEntry
	// dirty: the record changed since the last EndBatch.
	dirty bool
}

// stationRef names a station's record for one contest, by the station's
// voter index in the contest (tally.Election.Voter).
type stationRef struct{ contest, voter int32 }

// maxInlineHistory bounds the history kept inline in a station record.
const maxInlineHistory = 64

// histEntry is one message a station sent for a contest and its outcome.
type histEntry struct {
	seq     uint64
	version int64
	status  tally.Status
	outcome Outcome
}

// contestState is the fold state of one contest, sized by what votes in it:
// a national file holds thousands of council contests, each voted in by a
// few stations.
type contestState struct {
	stations []current   // by voter index (tally.Election.Voters)
	units    []aggregate // by unit index
	decided  []decision  // by unit index: what the units summary counts
	areas    []aggregate // by local area index (tally.Election.ContestAreas)
}

// decision is what a unit's summary counts of it: its status and winners.
type decision struct {
	status  tally.UnitStatus
	winners int64
}

// Ref names an aggregate: a unit or an area of a contest.
type Ref struct {
	Contest int32
	Unit    bool  // a unit if true, else an area
	Index   int32 // unit or area index (in Election.Units, Election.Areas)
}

// Fold applies stream messages to the projections. It owns the in-memory
// fold state and the Pebble batch being built. It is not safe for concurrent
// use: one goroutine folds, while queries go through the Store.
type Fold struct {
	e     *tally.Election
	db    *pebble.DB
	state []contestState
	meta  Meta
	batch *pebble.Batch
	// dirty lists the aggregates changed since the last EndBatch, and
	// dirtyStations the station records.
	dirty         []Ref
	dirtyStations []stationRef
	// dirtyUnits lists the units whose totals changed since their decision
	// was last taken (at EndBatch).
	dirtyUnits []Ref
	// broken is set when a commit failed; CommitBatch may run on another
	// goroutine than Apply, hence atomic.
	broken atomic.Bool

	slab slab
	// batchHint is the initial size of the next Pebble batch.
	batchHint int
	// rank orders ids as their keys sort, so batches are staged in key
	// order by comparing integers.
	rank ranks

	// Scratch space reused for every message.
	adm events.Admission
	enc []byte
	key []byte
	val []byte
}

func newFold(e *tally.Election, db *pebble.DB) *Fold {
	f := &Fold{e: e, db: db, state: make([]contestState, len(e.Contests)), rank: newRanks(e), batchHint: 1 << 10}
	for c := range e.Contests {
		cs := &f.state[c]
		contest := &e.Contests[c]
		voters := e.Voters(c)
		// One arena per contest for every voter's votes: no allocation per
		// station or per message.
		n := 0
		for v := range voters {
			n += len(contest.Units[e.VoterUnit(c, v)].Candidates)
		}
		arena := make([]int64, n)
		cs.stations = make([]current, len(voters))
		for v := range voters {
			k := len(contest.Units[e.VoterUnit(c, v)].Candidates)
			cs.stations[v].votes, arena = arena[:k:k], arena[k:]
		}
		n = 0
		for u := range contest.Units {
			n += len(contest.Units[u].Candidates)
		}
		areas := e.ContestAreas(c)
		for _, a := range areas {
			n += e.AreaVoteLen(c, int(a))
		}
		arena = make([]int64, n)
		cs.units = make([]aggregate, len(contest.Units))
		cs.decided = make([]decision, len(contest.Units))
		for u := range cs.units {
			k := len(contest.Units[u].Candidates)
			cs.units[u].votes, arena = arena[:k:k], arena[k:]
			cs.decided[u].status = tally.Counting // nothing reported yet
		}
		cs.areas = make([]aggregate, len(areas))
		for la, a := range areas {
			k := e.AreaVoteLen(c, int(a))
			cs.areas[la].votes, arena = arena[:k:k], arena[k:]
		}
	}
	return f
}

// Meta returns the fold's position and counters, including messages applied
// but not yet committed.
func (f *Fold) Meta() Meta { return f.meta }

// Apply folds one message into the pending batch. Messages must come in
// stream order; a message at or below the checkpoint is Skipped.
// Nothing is durable until Commit.
func (f *Fold) Apply(msg *Msg) (Outcome, error) {
	if f.broken.Load() {
		return Skipped, ErrBroken
	}
	// INVARIANT: a message at or below the checkpoint has already been
	// applied, in this process or before a restart.
	if msg.Seq <= f.meta.Checkpoint {
		return Skipped, nil
	}
	if f.batch == nil {
		// Sized like the last one: a batch of thousands of minutes would
		// otherwise grow from 1 KiB by doubling, copying itself each time.
		f.batch = f.db.NewBatch(pebble.WithInitialSizeBytes(f.batchHint))
	}
	f.meta.Checkpoint = msg.Seq

	// Admission: decode, subject, the rules that need no history, seal.
	events.Admit(f.e, msg.Subject, msg.Data, &f.adm)
	if len(f.adm.Violations) > 0 {
		return f.reject(msg)
	}
	m := &f.adm.Minutes

	r := &f.adm.Resolved
	cs := &f.state[r.Contest]
	cur := &cs.stations[r.Voter]
	f.enc = events.AppendBinary(f.enc[:0], m) // canonical: same content, same bytes
	hash := xxhashSum(f.enc)
	if cur.status != 0 {
		switch {
		case r.Version < cur.version:
			f.meta.Stale++
			f.history(r.Contest, r.Voter, msg.Seq, Stale)
			return Stale, nil
		case r.Version == cur.version && hash == cur.hash:
			f.meta.Duplicates++
			f.history(r.Contest, r.Voter, msg.Seq, Duplicate)
			return Duplicate, nil
		case r.Version == cur.version:
			f.adm.Violations = append(f.adm.Violations, tally.Violation{Field: "version", Rule: tally.RuleConflict,
				Message: fmt.Sprintf("version %d of station %q contest %q was already received with different content", r.Version, m.Station, m.Contest)})
			return f.reject(msg)
		}
	}

	// Fold the delta: take the previous minutes out, put the new ones in.
	f.contribute(r.Contest, r.Voter, cur, -1)
	cur.version, cur.status, cur.hash, cur.counts = r.Version, r.Status, hash, r.Counts
	copy(cur.votes, r.Votes)
	if cap(cur.payload) < len(f.enc) {
		cur.payload = f.slab.bytes(len(f.enc))
	}
	cur.payload = append(cur.payload[:0], f.enc...)
	f.contribute(r.Contest, r.Voter, cur, +1)

	f.meta.Applied++
	f.history(r.Contest, r.Voter, msg.Seq, Applied)
	return Applied, nil
}

// contribute adds sign × cur to voter v's unit and areas, if cur counts.
func (f *Fold) contribute(c, v int, cur *current, sign int64) {
	if cur.status != tally.Partial && cur.status != tally.Final {
		return
	}
	cs := &f.state[c]
	u := f.e.VoterUnit(c, v)
	ua := &cs.units[u]
	if !ua.dirty {
		f.dirtyUnits = append(f.dirtyUnits, Ref{Contest: int32(c), Unit: true, Index: int32(u)})
	}
	f.add(ua, Ref{Contest: int32(c), Unit: true, Index: int32(u)}, 0, cur, sign)
	areas := f.e.ContestAreas(c)
	offs := f.e.VoterOffsets(c, v)
	for k, la := range f.e.VoterAreas(c, v) {
		f.add(&cs.areas[la], Ref{Contest: int32(c), Index: areas[la]}, int(offs[k]), cur, sign)
	}
}

// add adds sign × cur to aggregate a, whose vote vector holds cur's
// candidates from off (-1: a holds no votes).
func (f *Fold) add(a *aggregate, ref Ref, off int, cur *current, sign int64) {
	if !a.dirty {
		a.dirty = true
		f.dirty = append(f.dirty, ref)
	}
	a.reporting += sign
	if cur.status == tally.Final {
		a.final += sign
	}
	a.counts.Registered += sign * cur.counts.Registered
	a.counts.Voted += sign * cur.counts.Voted
	a.counts.Issued += sign * cur.counts.Issued
	a.counts.Received += sign * cur.counts.Received
	a.counts.Valid += sign * cur.counts.Valid
	a.counts.Invalid += sign * cur.counts.Invalid
	if off < 0 {
		return
	}
	votes := a.votes[off : off+len(cur.votes)]
	for i, v := range cur.votes {
		votes[i] += sign * v
	}
}

// decideUnits takes the decision of every unit whose totals changed and
// moves its count in the units summary of the areas holding it from its
// old status to its new one.
func (f *Fold) decideUnits() {
	for _, ref := range f.dirtyUnits {
		c, u := int(ref.Contest), int(ref.Index)
		cs := &f.state[c]
		agg := &cs.units[u]
		d := f.e.Decide(c, u, int(agg.final), agg.counts, agg.votes)
		now := decision{status: d.Status, winners: int64(len(d.Winners))}
		old := cs.decided[u]
		if now == old {
			continue
		}
		cs.decided[u] = now
		for _, a := range f.e.UnitAreas(c, u) {
			la, _ := f.e.ContestArea(c, a)
			area := &cs.areas[la]
			area.summary.add(old, -1)
			area.summary.add(now, +1)
			if !area.dirty {
				area.dirty = true
				f.dirty = append(f.dirty, Ref{Contest: int32(c), Index: int32(a)})
			}
		}
	}
	f.dirtyUnits = f.dirtyUnits[:0]
}

// history records the outcome of the message in f.adm in the history of
// voter v for contest c, and stages the station's record (current
// minutes and inline history: one key per station and contest, so one
// write per message).
func (f *Fold) history(c, v int, seq uint64, o Outcome) {
	cur := &f.state[c].stations[v]
	e := histEntry{seq: seq, version: f.adm.Minutes.Version, status: f.adm.Minutes.Status, outcome: o}
	contest, station := f.e.Contests[c].ID, f.e.Stations[f.e.Voters(c)[v]].ID
	// Set on an open batch fails only when the batch is closed.
	if len(cur.hist) >= maxInlineHistory {
		f.key = appendHistoryKey(f.key[:0], contest, station, seq)
		f.val = e.append(f.val[:0])
		_ = f.batch.Set(f.key, f.val, nil)
		if o != Applied {
			return
		}
		// INVARIANT: the station record always holds the current minutes,
		// whatever happens to its history.
	} else {
		if cap(cur.hist) == 0 {
			cur.hist = f.slab.hist()
		}
		cur.hist = append(cur.hist, e)
	}
	// The record is staged once per batch, at EndBatch.
	if !cur.dirty {
		cur.dirty = true
		f.dirtyStations = append(f.dirtyStations, stationRef{int32(c), int32(v)})
	}
}

// Rejection is a rejected message with every rule it broke.
type Rejection struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Subject string    `json:"subject"`
	// SubjectStation is the station named by the subject, when it differs
	// from the payload's (a station speaking for another, or no payload).
	SubjectStation string            `json:"subject_station,omitempty"`
	Station        string            `json:"station"`
	Contest        string            `json:"contest"`
	Version        int64             `json:"version"`
	Status         string            `json:"status,omitempty"`
	Reason         string            `json:"reason"` // every broken rule, in words
	Errors         []tally.Violation `json:"errors"`
}

// reject records msg (decoded as far as possible in f.adm) as rejected for the
// violations in f.adm.
func (f *Fold) reject(msg *Msg) (Outcome, error) {
	m := &f.adm.Minutes
	rej := Rejection{
		Seq: msg.Seq, Time: msg.Time.UTC(), Subject: msg.Subject,
		Station: m.Station, Contest: m.Contest, Version: m.Version, Errors: f.adm.Violations,
	}
	if m.Status != 0 {
		rej.Status = m.Status.String()
	}
	if st, _, ok := events.ParseSubject(f.e.ID, msg.Subject); ok && st != m.Station {
		rej.SubjectStation = st
	}
	for i, v := range f.adm.Violations {
		if i > 0 {
			rej.Reason += "; "
		}
		rej.Reason += v.Field + ": " + v.Message
	}
	val, err := json.Marshal(&rej)
	if err != nil {
		return Skipped, fmt.Errorf("encode rejection: %w", err)
	}
	f.key = appendRejectionKey(f.key[:0], msg.Seq)
	if err := f.batch.Set(f.key, val, nil); err != nil {
		return Skipped, fmt.Errorf("stage rejection: %w", err)
	}
	f.meta.Rejected++
	// The entry goes into the history of whoever published: the station
	// of the subject (a station may publish only on its own), not the one
	// the payload names, whose history a neighbour could otherwise fill.
	// Only the history of a station voting in the contest gets it; ids
	// that do not exist, or a station outside the contest, would only let
	// a stranger write keys.
	station, contest := m.Station, m.Contest
	if st, ct, ok := events.ParseSubject(f.e.ID, msg.Subject); ok {
		station, contest = st, ct
	}
	if s, ok := f.e.StationIndex(station); ok {
		if c, ok := f.e.ContestIndex(contest); ok {
			if v, ok := f.e.Voter(c, s); ok {
				f.history(c, v, msg.Seq, Rejected)
			}
		}
	}
	return Rejected, nil
}

// Pending reports whether Apply staged anything since the last EndBatch.
func (f *Fold) Pending() bool { return f.batch != nil }

// Batch is a batch of applied messages, with the changed aggregates and the
// checkpoint staged, ready to commit. The fold has moved on from it: Apply
// may go on with the next batch while this one commits.
type Batch struct {
	batch   *pebble.Batch
	Meta    Meta  // the fold's position and counters as of this batch
	Changed []Ref // aggregates this batch changed
	// Keys and Bytes are what the batch stages: its number of records and
	// its encoded size.
	Keys  uint32
	Bytes int
}

// EndBatch stages the changed station records, the changed aggregates and the
// checkpoint into the pending batch (each key once, in key order) and
// detaches it for CommitBatch. It returns nil when nothing is
// pending.
//
// INVARIANT: batches must be committed in the order they were ended, each
// before the next; their checkpoints then advance in stream order.
func (f *Fold) EndBatch() (*Batch, error) {
	if f.broken.Load() {
		return nil, ErrBroken
	}
	if f.batch == nil {
		return nil, nil
	}
	// Records and aggregates are staged in key order: the memtable inserts
	// them with fewer cache misses than in the order stations sent them.
	slices.SortFunc(f.dirtyStations, func(x, y stationRef) int {
		return cmp.Compare(f.rank.record(x), f.rank.record(y))
	})
	for _, ref := range f.dirtyStations {
		cur := &f.state[ref.contest].stations[ref.voter]
		cur.dirty = false
		f.key = appendIDKey(f.key[:0], prefixStation, f.e.Contests[ref.contest].ID, f.e.Stations[f.e.Voters(int(ref.contest))[ref.voter]].ID)
		f.val = appendRecord(f.val[:0], cur.payload, cur.hist)
		if err := f.batch.Set(f.key, f.val, nil); err != nil {
			f.broken.Store(true)
			return nil, fmt.Errorf("stage station record: %w", err)
		}
	}
	f.dirtyStations = f.dirtyStations[:0]
	f.decideUnits()
	slices.SortFunc(f.dirty, func(x, y Ref) int { return cmp.Compare(f.rank.ref(x), f.rank.ref(y)) })
	for _, ref := range f.dirty {
		a := f.aggregate(ref)
		a.dirty = false
		f.key = f.aggregateKey(f.key[:0], ref)
		f.val = a.append(f.val[:0])
		if err := f.batch.Set(f.key, f.val, nil); err != nil {
			f.broken.Store(true)
			return nil, fmt.Errorf("stage aggregate: %w", err)
		}
	}
	f.val = f.meta.append(f.val[:0])
	if err := f.batch.Set(keyMeta, f.val, nil); err != nil {
		f.broken.Store(true)
		return nil, fmt.Errorf("stage checkpoint: %w", err)
	}
	f.batchHint = min(max(f.batch.Len(), 1<<10), 64<<20)
	s := &Batch{batch: f.batch, Meta: f.meta, Changed: slices.Clone(f.dirty), Keys: f.batch.Count(), Bytes: f.batch.Len()}
	f.batch = nil
	f.dirty = f.dirty[:0]
	return s, nil
}

// CommitBatch writes an ended batch in one fsynced Pebble commit. It may be
// called from another goroutine than Apply and EndBatch, one batch at a time, in
// the order they were ended. If the commit fails the Fold is broken: its memory is ahead
// of the store, and every later call returns ErrBroken.
func (f *Fold) CommitBatch(s *Batch) error {
	defer s.batch.Close()
	if f.broken.Load() {
		return ErrBroken
	}
	if err := s.batch.Commit(pebble.Sync); err != nil {
		f.broken.Store(true)
		return fmt.Errorf("commit fold batch at seq %d: %w", s.Meta.Checkpoint, err)
	}
	return nil
}

// Commit ends and commits the batch Apply staged since the last commit, and
// returns the changed aggregates.
func (f *Fold) Commit() ([]Ref, error) {
	s, err := f.EndBatch()
	if s == nil || err != nil {
		return nil, err
	}
	if err := f.CommitBatch(s); err != nil {
		return nil, err
	}
	return s.Changed, nil
}

func (f *Fold) aggregate(ref Ref) *aggregate {
	if ref.Unit {
		return &f.state[ref.Contest].units[ref.Index]
	}
	// REQUIRES: the area holds voters of the contest, as every area that
	// an aggregate change names does.
	la, _ := f.e.ContestArea(int(ref.Contest), int(ref.Index))
	return &f.state[ref.Contest].areas[la]
}

func (f *Fold) aggregateKey(dst []byte, ref Ref) []byte {
	c := f.e.Contests[ref.Contest].ID
	if ref.Unit {
		return appendIDKey(dst, prefixUnit, c, f.e.Contests[ref.Contest].Units[ref.Index].ID)
	}
	return appendIDKey(dst, prefixArea, c, f.e.Areas[ref.Index].ID)
}

func xxhashSum(b []byte) uint64 { return xxhash.Sum64(b) }

// slab hands out the stations' payload buffers and first history slices
// from large chunks: a national night would otherwise allocate two or three
// small objects per station and contest.
type slab struct {
	b []byte
	h []histEntry
}

const (
	slabBytes   = 1 << 20
	slabHist    = 4096
	histInitCap = 4
)

// bytes returns an empty slice with room for n bytes and some slack, so a
// later version a little longer fits too.
func (s *slab) bytes(n int) []byte {
	n += n/4 + 16
	if n > slabBytes/8 {
		return make([]byte, 0, n)
	}
	if len(s.b)+n > cap(s.b) {
		s.b = make([]byte, 0, slabBytes)
	}
	b := s.b[len(s.b) : len(s.b) : len(s.b)+n]
	s.b = s.b[:len(s.b)+n]
	return b
}

// hist returns an empty history slice with room for a few entries.
func (s *slab) hist() []histEntry {
	if len(s.h)+histInitCap > cap(s.h) {
		s.h = make([]histEntry, 0, slabHist)
	}
	h := s.h[len(s.h) : len(s.h) : len(s.h)+histInitCap]
	s.h = s.h[:len(s.h)+histInitCap]
	return h
}

// ranks gives each contest, station, area and unit its position among the
// ids of its kind in byte order: the order of their keys.
type ranks struct {
	contest, station, area []uint64
	unit                   [][]uint64 // by contest
	voters                 [][]int32  // by contest: Election.Voters
}

func newRanks(e *tally.Election) ranks {
	order := func(n int, id func(int) string) []uint64 {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		slices.SortFunc(idx, func(a, b int) int { return strings.Compare(id(a), id(b)) })
		r := make([]uint64, n)
		for pos, i := range idx {
			r[i] = uint64(pos)
		}
		return r
	}
	r := ranks{
		contest: order(len(e.Contests), func(i int) string { return e.Contests[i].ID }),
		station: order(len(e.Stations), func(i int) string { return e.Stations[i].ID }),
		area:    order(len(e.Areas), func(i int) string { return e.Areas[i].ID }),
		unit:    make([][]uint64, len(e.Contests)),
		voters:  make([][]int32, len(e.Contests)),
	}
	for c := range e.Contests {
		units := e.Contests[c].Units
		r.unit[c] = order(len(units), func(i int) string { return units[i].ID })
		r.voters[c] = e.Voters(c)
	}
	return r
}

// record is the sort position of a station record's key.
func (r *ranks) record(s stationRef) uint64 {
	return r.contest[s.contest]<<32 | r.station[r.voters[s.contest][s.voter]]
}

// ref is the sort position of an aggregate's key: areas ('a') before units
// ('u'), then by contest and id.
func (r *ranks) ref(x Ref) uint64 {
	if x.Unit {
		return 1<<63 | r.contest[x.Contest]<<32 | r.unit[x.Contest][x.Index]
	}
	return r.contest[x.Contest]<<32 | r.area[x.Index]
}
