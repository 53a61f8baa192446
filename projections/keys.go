package projections

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/tallyvn/tally/tally"
)

// Key prefixes (see the package doc).
var (
	keyMeta        = []byte("m")
	keyFingerprint = []byte("e")
	keyLayout      = []byte("v")
	keyElectionID  = []byte("i") // the election's id, for messages
)

// layoutVersion names the layout of the records below. A store written in
// another layout (or before layouts were named) is rebuilt from the stream
// at open: see Open.
//
//	1 (none stored): v1 aggregates, votes in every area.
//	2: contract v2: no votes below the council's level, a units summary in
//	   every area aggregate, station records only for voters.
//	3: an area record holds the votes of the units that straddle its
//	   border only; a unit lying wholly in the area keeps its votes in its
//	   own record alone (see wholeIn); a station record holds its minutes
//	   without ids, candidates by position (appendMinutes).
const layoutVersion = 3

const (
	prefixStation   = 's'
	prefixHistory   = 'h'
	prefixRejection = 'r'
	prefixArea      = 'a'
	prefixUnit      = 'u'
)

// appendIDKey appends "<prefix>/<a>\x00<b>".
func appendIDKey(dst []byte, prefix byte, a, b string) []byte {
	dst = append(dst, prefix, '/')
	dst = append(dst, a...)
	dst = append(dst, 0)
	return append(dst, b...)
}

// wholeIn reports whether unit u of contest c lies wholly in area a (every
// station of u listed in the file is in a): then the unit's own aggregate
// is its part of a's result, and a's record holds none of its votes.
func wholeIn(e *tally.Election, c, u, a int) bool {
	return slices.Contains(e.UnitAreas(c, u), a)
}

// unitSlice is where a unit straddling an area's border keeps its votes in
// the area's record: from off, one per candidate.
type unitSlice struct{ unit, off int32 }

// straddling returns the units of contest c with stations in area a that
// do not lie wholly in it, with where their votes start in a's record,
// and the length of that record's vote vector: nothing where a's result
// carries no votes.
func straddling(e *tally.Election, c, a int) ([]unitSlice, int) {
	if !e.AreaHasVotes(c, a) {
		return nil, 0
	}
	var out []unitSlice
	n := 0
	for _, u := range e.AreaUnits(c, a) {
		if !wholeIn(e, c, int(u), a) {
			out = append(out, unitSlice{unit: u, off: int32(n)})
			n += len(e.Contests[c].Units[u].Candidates)
		}
	}
	return out, n
}

// appendStationKey appends the key of voter v's record for contest c.
func appendStationKey(dst []byte, e *tally.Election, c, v int) []byte {
	return appendIDKey(dst, prefixStation, e.Contests[c].ID, e.Stations[e.Voters(c)[v]].ID)
}

// appendUnitKey appends the key of unit u's aggregate of contest c.
func appendUnitKey(dst []byte, e *tally.Election, c, u int) []byte {
	return appendIDKey(dst, prefixUnit, e.Contests[c].ID, e.Contests[c].Units[u].ID)
}

// appendAreaKey appends the key of area a's aggregate of contest c.
func appendAreaKey(dst []byte, e *tally.Election, c, a int) []byte {
	return appendIDKey(dst, prefixArea, e.Contests[c].ID, e.Areas[a].ID)
}

func appendHistoryKey(dst []byte, contest, station string, seq uint64) []byte {
	dst = appendIDKey(dst, prefixHistory, contest, station)
	dst = append(dst, 0)
	return binary.BigEndian.AppendUint64(dst, seq)
}

func appendRejectionKey(dst []byte, seq uint64) []byte {
	dst = append(dst, prefixRejection, '/')
	return binary.BigEndian.AppendUint64(dst, seq)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// appendRecord encodes a station record: the current minutes' canonical
// binary form (empty before any) and the inline history.
func appendRecord(dst, payload []byte, hist []histEntry) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(payload)))
	dst = append(dst, payload...)
	for _, e := range hist {
		dst = binary.AppendUvarint(dst, e.seq)
		dst = e.append(dst)
	}
	return dst
}

// append encodes an entry without its sequence (which an overflow entry
// keeps in its key).
func (e histEntry) append(dst []byte) []byte {
	dst = binary.AppendVarint(dst, e.version)
	return append(dst, byte(e.status), byte(e.outcome))
}

var errCorruptRecord = errors.New("projections: corrupt station record")

// decodeRecord decodes a station record; payload aliases b.
func decodeRecord(b []byte, hist []histEntry) (payload []byte, _ []histEntry, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errCorruptRecord
	}
	payload, b = b[k:k+int(n)], b[k+int(n):]
	for len(b) > 0 {
		seq, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, nil, errCorruptRecord
		}
		b = b[k:]
		e, rest, err := decodeEntry(b)
		if err != nil {
			return nil, nil, err
		}
		e.seq, b = seq, rest
		hist = append(hist, e)
	}
	return payload, hist, nil
}

func decodeEntry(b []byte) (histEntry, []byte, error) {
	v, k := binary.Varint(b)
	if k <= 0 || len(b) < k+2 {
		return histEntry{}, nil, errCorruptRecord
	}
	return histEntry{version: v, status: tally.Status(b[k]), outcome: Outcome(b[k+1])}, b[k+2:], nil
}

// Meta is the fold's position and outcome counters, stored with every batch.
type Meta struct {
	// Checkpoint is the stream sequence of the last message folded.
	Checkpoint uint64
	Applied    uint64
	Rejected   uint64
	Duplicates uint64
	Stale      uint64
}

func (m *Meta) append(dst []byte) []byte {
	for _, v := range [5]uint64{m.Checkpoint, m.Applied, m.Rejected, m.Duplicates, m.Stale} {
		dst = binary.BigEndian.AppendUint64(dst, v)
	}
	return dst
}

func decodeMeta(b []byte) (Meta, error) {
	if len(b) != 40 {
		return Meta{}, fmt.Errorf("projections: meta record is %d bytes, want 40", len(b))
	}
	u := func(i int) uint64 { return binary.BigEndian.Uint64(b[8*i:]) }
	return Meta{Checkpoint: u(0), Applied: u(1), Rejected: u(2), Duplicates: u(3), Stale: u(4)}, nil
}

// aggregate is the sum over some stations' current minutes.
type aggregate struct {
	reporting int64 // stations whose current minutes are partial or final
	final     int64 // stations whose current minutes are final
	counts    tally.Counts
	// votes: the unit's candidates, or the area's units' candidates end to
	// end; empty for an area whose result carries no votes.
	votes   []int64
	summary unitSummary // areas only: the units lying wholly in the area
	dirty   bool
}

// unitSummary counts the units of a contest lying wholly in an area by
// status, and their winners (CONTRACT §4 v2). Units still counting are the
// rest: the area's total is fixed by the election.
type unitSummary struct {
	decided, tie, additional, reElection, winners int64
}

func (s *unitSummary) add(d decision, sign int64) {
	switch d.status {
	case tally.Decided:
		s.decided += sign
	case tally.Tie:
		s.tie += sign
	case tally.AdditionalElection:
		s.additional += sign
	case tally.ReElection:
		s.reElection += sign
	}
	s.winners += sign * d.winners
}

func (a *aggregate) append(dst []byte) []byte {
	c := &a.counts
	for _, v := range [8]int64{a.reporting, a.final, c.Registered, c.Voted, c.Issued, c.Received, c.Valid, c.Invalid} {
		dst = binary.AppendVarint(dst, v)
	}
	dst = binary.AppendUvarint(dst, uint64(len(a.votes)))
	for _, v := range a.votes {
		dst = binary.AppendVarint(dst, v)
	}
	s := &a.summary
	for _, v := range [5]int64{s.decided, s.tie, s.additional, s.reElection, s.winners} {
		dst = binary.AppendVarint(dst, v)
	}
	return dst
}

var errCorruptAggregate = errors.New("projections: corrupt aggregate record")

// skipToVotes returns aggregate record b from its vote count on.
func skipToVotes(b []byte) ([]byte, error) {
	for range 8 {
		_, n := binary.Varint(b)
		if n <= 0 {
			return nil, errCorruptAggregate
		}
		b = b[n:]
	}
	return b, nil
}

// decodeAggregate decodes an aggregate record into a (votes freshly allocated).
func decodeAggregate(b []byte, a *aggregate) error {
	var f [8]int64
	for i := range f {
		v, n := binary.Varint(b)
		if n <= 0 {
			return errCorruptAggregate
		}
		f[i], b = v, b[n:]
	}
	a.reporting, a.final = f[0], f[1]
	a.counts = tally.Counts{Registered: f[2], Voted: f[3], Issued: f[4], Received: f[5], Valid: f[6], Invalid: f[7]}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return errCorruptAggregate
	}
	b = b[k:]
	a.votes = make([]int64, n)
	for i := range a.votes {
		v, k := binary.Varint(b)
		if k <= 0 {
			return errCorruptAggregate
		}
		a.votes[i], b = v, b[k:]
	}
	var s [5]int64
	for i := range s {
		v, k := binary.Varint(b)
		if k <= 0 {
			return errCorruptAggregate
		}
		s[i], b = v, b[k:]
	}
	a.summary = unitSummary{decided: s[0], tie: s[1], additional: s[2], reElection: s[3], winners: s[4]}
	if len(b) != 0 {
		return errCorruptAggregate
	}
	return nil
}

// Outcome is what the fold made of one message.
type Outcome uint8

// Outcomes. Skipped messages were already folded (at or below the
// checkpoint) and leave no trace.
const (
	Skipped Outcome = iota
	Applied
	Stale
	Duplicate
	Rejected
)

// String returns the outcome as the API spells it.
func (o Outcome) String() string {
	switch o {
	case Applied:
		return "applied"
	case Stale:
		return "stale"
	case Duplicate:
		return "duplicate"
	case Rejected:
		return "rejected"
	}
	return "skipped"
}

// A station record keeps its current minutes in the record's own form,
// not the canonical one of events.AppendBinary: the key already names the
// contest and station, the store's election fingerprint the election, and
// a candidate is its position in the unit's list rather than its id. That
// halves the record, which a batch rewrites for every station that sent
// minutes. The form is a function of the minutes' content (votes in
// candidate order), so equal content gives equal bytes: the ledger hashes
// it to tell a duplicate from a conflict.

// voteAt is a vote by its candidate's position in the unit.
type voteAt struct {
	k     int32
	count int64
}

// appendMinutes appends the record form of minutes m of unit u of contest
// c. idx is scratch space, returned for reuse.
//
// REQUIRES: m was admitted (every candidate is the unit's, none twice).
func appendMinutes(dst []byte, e *tally.Election, c, u int, m *tally.Minutes, idx []voteAt) ([]byte, []voteAt) {
	dst = binary.AppendVarint(dst, m.Version)
	dst = append(dst, byte(m.Status), m.Present)
	cn := &m.Counts
	for _, v := range [6]int64{cn.Registered, cn.Voted, cn.Issued, cn.Received, cn.Valid, cn.Invalid} {
		dst = binary.AppendVarint(dst, v)
	}
	cands := e.Contests[c].Units[u].Candidates
	idx = idx[:0]
	for i, v := range m.Votes {
		k := i // usually listed in the file's order
		if k >= len(cands) || cands[k].ID != v.Candidate {
			k, _ = e.CandidateIndex(c, u, v.Candidate)
		}
		idx = append(idx, voteAt{k: int32(k), count: v.Count})
	}
	byK := func(x, y voteAt) int { return int(x.k) - int(y.k) }
	if !slices.IsSortedFunc(idx, byK) {
		slices.SortFunc(idx, byK)
	}
	dst = binary.AppendUvarint(dst, uint64(len(idx)))
	for _, v := range idx {
		dst = binary.AppendUvarint(dst, uint64(v.k))
		dst = binary.AppendVarint(dst, v.count)
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.Reason)))
	dst = append(dst, m.Reason...)
	dst = binary.AppendUvarint(dst, uint64(len(m.Signature)))
	return append(dst, m.Signature...), idx
}

// decodeMinutes decodes the record form b of station st's minutes for
// contest c into m, reusing m.Votes.
func decodeMinutes(b []byte, e *tally.Election, c, st int, m *tally.Minutes) error {
	u := e.StationUnit(c, st)
	if u < 0 {
		return errCorruptRecord
	}
	cands := e.Contests[c].Units[u].Candidates
	*m = tally.Minutes{Election: e.ID, Contest: e.Contests[c].ID, Station: e.Stations[st].ID, Votes: m.Votes[:0]}
	bad := false
	varint := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	uvarint := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	str := func() string {
		n := uvarint()
		if bad || n > uint64(len(b)) {
			bad = true
			return ""
		}
		s := string(b[:n])
		b = b[n:]
		return s
	}
	m.Version = varint()
	if bad || len(b) < 2 {
		return errCorruptRecord
	}
	m.Status, m.Present, b = tally.Status(b[0]), b[1], b[2:]
	cn := &m.Counts
	for _, p := range [6]*int64{&cn.Registered, &cn.Voted, &cn.Issued, &cn.Received, &cn.Valid, &cn.Invalid} {
		*p = varint()
	}
	n := uvarint()
	if bad || n > uint64(len(cands)) {
		return errCorruptRecord
	}
	for range n {
		k := uvarint()
		count := varint()
		if bad || k >= uint64(len(cands)) {
			return errCorruptRecord
		}
		m.Votes = append(m.Votes, tally.Vote{Candidate: cands[k].ID, Count: count})
	}
	m.Reason = str()
	m.Signature = str()
	if bad || len(b) != 0 {
		return errCorruptRecord
	}
	return nil
}
