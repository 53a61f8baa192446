package projections

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

// The station ledger is the second step of the fold, after admission
// (events.Admit): it holds every station's current minutes and history for
// each contest it votes in, decides what an admitted message is to that
// station (applied, stale, duplicate, or a conflict, which is rejected:
// CONTRACT §3), records the outcome in the station's history, and for an
// applied message emits the change it makes: the station's contribution
// before and after. The sinks (sinks.go) apply the change to the
// aggregates; the ledger knows nothing of them.

// contribution is what a station's current minutes add to its unit and
// areas: nothing unless they are partial or final.
type contribution struct {
	status tally.Status // 0: no minutes yet
	counts tally.Counts
	votes  []int64 // the unit's candidates, in the election file's order
}

// reporting reports whether the contribution counts in the results
// (CONTRACT §4: partial and final minutes do, withdrawn ones do not).
func (c *contribution) reporting() bool {
	return c.status == tally.Partial || c.status == tally.Final
}

// change is what an applied message changes: station voter of contest
// takes old out of its unit and areas and puts new in.
type change struct {
	contest, voter int
	old, new       *contribution
}

// current is a station's current minutes for one contest, as the fold
// needs them.
type current struct {
	contribution // votes: a window of the contest's arena
	version      int64
	// payload is the current minutes in the station record's form
	// (appendMinutes; nil before any), kept to rewrite the record and to
	// tell a duplicate from a conflict (same content, same bytes).
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

// ledger is the station ledger: current minutes and history of every
// station for every contest it votes in.
type ledger struct {
	e        *tally.Election
	stations [][]current // by contest, then voter index (tally.Election.Voters)
	// dirty lists the station records changed since the last EndBatch.
	dirty []stationRef
	slab  slab
	// ch is the last change, old its previous contribution, and prev
	// old's votes: reused, so that a change allocates nothing.
	ch   change
	old  contribution
	prev []int64
	enc  []byte   // the record form of the minutes being recorded
	idx  []voteAt // scratch for enc
}

func newLedger(e *tally.Election) ledger {
	l := ledger{e: e, stations: make([][]current, len(e.Contests))}
	for c := range e.Contests {
		contest := &e.Contests[c]
		voters := e.Voters(c)
		// One arena per contest for every voter's votes: no allocation per
		// station or per message.
		n := 0
		for v := range voters {
			n += len(contest.Units[e.VoterUnit(c, v)].Candidates)
		}
		arena := make([]int64, n)
		l.stations[c] = make([]current, len(voters))
		for v := range voters {
			k := len(contest.Units[e.VoterUnit(c, v)].Candidates)
			l.stations[c][v].votes, arena = arena[:k:k], arena[k:]
		}
	}
	return l
}

// record decides what the admitted message in adm is to its station,
// records it in the station's history (staging what must be staged now
// into st) and returns its outcome, with the change it makes when Applied.
// The change is valid until the next call.
//
// REQUIRES: adm admits the minutes (no violations).
func (l *ledger) record(seq uint64, adm *events.Admission, st *staging) (Outcome, *change) {
	r, m := &adm.Resolved, &adm.Minutes
	cur := &l.stations[r.Contest][r.Voter]
	l.enc, l.idx = appendMinutes(l.enc[:0], l.e, r.Contest, r.Unit, m, l.idx) // same content, same bytes
	if cur.status != 0 {
		switch {
		case r.Version < cur.version:
			l.history(r.Contest, r.Voter, seq, adm, Stale, st)
			return Stale, nil
		case r.Version == cur.version && bytes.Equal(l.enc, cur.payload):
			l.history(r.Contest, r.Voter, seq, adm, Duplicate, st)
			return Duplicate, nil
		case r.Version == cur.version:
			adm.Violations = append(adm.Violations, tally.Violation{Field: "version", Rule: tally.RuleConflict,
				Message: fmt.Sprintf("version %d of station %q contest %q was already received with different content", r.Version, m.Station, m.Contest)})
			return Rejected, nil // the caller rejects it
		}
	}

	// The change: the previous contribution out, the new one in.
	l.prev = append(l.prev[:0], cur.votes...)
	l.old = contribution{status: cur.status, counts: cur.counts, votes: l.prev}
	cur.version, cur.status, cur.counts = r.Version, r.Status, r.Counts
	copy(cur.votes, r.Votes)
	if cap(cur.payload) < len(l.enc) {
		cur.payload = l.slab.bytes(len(l.enc))
	}
	cur.payload = append(cur.payload[:0], l.enc...)
	l.history(r.Contest, r.Voter, seq, adm, Applied, st)
	l.ch = change{contest: r.Contest, voter: r.Voter, old: &l.old, new: &cur.contribution}
	return Applied, &l.ch
}

// history records outcome o of the message in adm in the history of voter
// v for contest c, and marks the station's record (current minutes and
// inline history: one key per station and contest, so one write per
// batch) for staging at EndBatch.
func (l *ledger) history(c, v int, seq uint64, adm *events.Admission, o Outcome, st *staging) {
	cur := &l.stations[c][v]
	e := histEntry{seq: seq, version: adm.Minutes.Version, status: adm.Minutes.Status, outcome: o}
	if len(cur.hist) >= maxInlineHistory {
		contest, station := l.e.Contests[c].ID, l.e.Stations[l.e.Voters(c)[v]].ID
		st.key = appendHistoryKey(st.key[:0], contest, station, seq)
		st.val = e.append(st.val[:0])
		// Set on an open batch fails only when the batch is closed.
		_ = st.batch.Set(st.key, st.val, nil)
		if o != Applied {
			return
		}
		// INVARIANT: the station record always holds the current minutes,
		// whatever happens to its history.
	} else {
		if cap(cur.hist) == 0 {
			cur.hist = l.slab.hist()
		}
		cur.hist = append(cur.hist, e)
	}
	if !cur.dirty {
		cur.dirty = true
		l.dirty = append(l.dirty, stationRef{int32(c), int32(v)})
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

// reject records msg, decoded as far as possible in adm, as rejected for
// the violations in adm: a rejection record, and an entry in the history
// of the station that published it.
func (l *ledger) reject(msg *Msg, adm *events.Admission, st *staging) error {
	m := &adm.Minutes
	rej := Rejection{
		Seq: msg.Seq, Time: msg.Time.UTC(), Subject: msg.Subject,
		Station: m.Station, Contest: m.Contest, Version: m.Version, Errors: adm.Violations,
	}
	if m.Status != 0 {
		rej.Status = m.Status.String()
	}
	subjStation, subjContest, subjOK := events.ParseSubject(l.e.ID, msg.Subject)
	if subjOK && subjStation != m.Station {
		rej.SubjectStation = subjStation
	}
	for i, v := range adm.Violations {
		if i > 0 {
			rej.Reason += "; "
		}
		rej.Reason += v.Field + ": " + v.Message
	}
	val, err := json.Marshal(&rej)
	if err != nil {
		return fmt.Errorf("encode rejection: %w", err)
	}
	st.key = appendRejectionKey(st.key[:0], msg.Seq)
	if err := st.batch.Set(st.key, val, nil); err != nil {
		return fmt.Errorf("stage rejection: %w", err)
	}
	// The entry goes into the history of whoever published: the station
	// of the subject (a station may publish only on its own), not the one
	// the payload names, whose history a neighbour could otherwise fill.
	// Only the history of a station voting in the contest gets it; ids
	// that do not exist, or a station outside the contest, would only let
	// a stranger write keys.
	station, contest := m.Station, m.Contest
	if subjOK {
		station, contest = subjStation, subjContest
	}
	if s, ok := l.e.StationIndex(station); ok {
		if c, ok := l.e.ContestIndex(contest); ok {
			if v, ok := l.e.Voter(c, s); ok {
				l.history(c, v, msg.Seq, adm, Rejected, st)
			}
		}
	}
	return nil
}

// stage stages every station record changed since the last call, in key
// order.
func (l *ledger) stage(st *staging) error {
	st.sortStations(l.dirty)
	for _, ref := range l.dirty {
		cur := &l.stations[ref.contest][ref.voter]
		cur.dirty = false
		st.key = appendStationKey(st.key[:0], l.e, int(ref.contest), int(ref.voter))
		st.val = appendRecord(st.val[:0], cur.payload, cur.hist)
		if err := st.batch.Set(st.key, st.val, nil); err != nil {
			return fmt.Errorf("stage station record: %w", err)
		}
	}
	l.dirty = l.dirty[:0]
	return nil
}

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
