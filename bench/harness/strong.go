package harness

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// The strong PostgreSQL peer is what a team that knows PostgreSQL well
// would build for the same job, on the same tables (pgSchema):
//
//   - the current minutes of every station live in station_minutes, and
//     the peer keeps a copy of that table in its own memory (loaded from it
//     at start), written through at every batch: stale, duplicate and
//     conflict (CONTRACT §3) are decided in memory, with no read per event.
//     The peer is the only writer of these tables, as tally's fold is of
//     its store, so the copy cannot go stale;
//   - the deltas of a batch are summed per aggregate row in memory before
//     anything is sent: a ward's counts row is written once per batch, not
//     once per event;
//   - each table gets one statement per batch, INSERT ... SELECT FROM
//     unnest($1::text[], ...) with ON CONFLICT DO UPDATE for the upserts,
//     the rows sorted by key;
//   - a batch is one transaction (BEGIN; the statements of every table and
//     the checkpoint pipelined in one round trip; COMMIT), acknowledged to
//     JetStream after the commit, with synchronous_commit on (the default):
//     every commit waits for its WAL flush, as tally's Pebble commit waits
//     for its fsync.
const (
	sqlStrongStations = `INSERT INTO station_minutes (contest, station, version, status, payload)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::smallint[], $5::bytea[])
ON CONFLICT (contest, station) DO UPDATE SET version = excluded.version, status = excluded.status, payload = excluded.payload`
	sqlStrongHistory = `INSERT INTO station_history (contest, station, seq, version, status, outcome)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::smallint[], $6::text[])`
	sqlStrongRejections = `INSERT INTO rejections (seq, subject, station, contest, version, reason)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[])`
	sqlStrongCounts = `INSERT INTO result_counts (contest, kind, id, reporting, final, registered, voted, issued, received, valid, invalid)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[])
ON CONFLICT (contest, kind, id) DO UPDATE SET
	reporting = result_counts.reporting + excluded.reporting,
	final = result_counts.final + excluded.final,
	registered = result_counts.registered + excluded.registered,
	voted = result_counts.voted + excluded.voted,
	issued = result_counts.issued + excluded.issued,
	received = result_counts.received + excluded.received,
	valid = result_counts.valid + excluded.valid,
	invalid = result_counts.invalid + excluded.invalid`
	sqlStrongVotes = `INSERT INTO result_votes (contest, kind, id, candidate, votes)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
ON CONFLICT (contest, kind, id, candidate) DO UPDATE SET votes = result_votes.votes + excluded.votes`
)

// stationKey is a station's minutes for one contest: contest and station
// indexes in the election.
type stationKey struct{ contest, station int32 }

// current is a station's current minutes for one contest, as
// station_minutes holds them.
type current struct {
	version int64
	status  tally.Status
	payload []byte // the canonical binary minutes
}

// aggKey is one aggregate row: a unit ('u') or an area ('a') of a contest.
type aggKey struct {
	contest int32
	kind    byte
	id      int32 // unit index in the contest, or area index
}

type voteKey struct {
	agg  aggKey
	cand string
}

// strongPeer is the strong peer's fold state.
type strongPeer struct {
	e    *tally.Election
	conn *pgx.Conn

	cur map[stationKey]*current // every station's current minutes

	// This batch: the stations whose minutes changed (the last version
	// of each), the history and rejection rows, the summed deltas.
	changed   map[stationKey]*current
	history   historyRows
	rejected  rejectionRows
	counts    map[aggKey]*countsDelta
	votes     map[voteKey]int64
	voteDelta []voteDelta

	meta       Outcomes
	seq        uint64
	events     uint64
	statements uint64
	roundTrips uint64

	m, old tally.Minutes
	r      tally.Resolved
	viol   []tally.Violation
	enc    []byte
}

type historyRows struct {
	contest, station []string
	seq, version     []int64
	status           []int16
	outcome          []string
}

type rejectionRows struct {
	seq                               []int64
	subject, station, contest, reason []string
	version                           []int64
}

// newStrongPeer loads the current minutes of every station from
// station_minutes (empty in the harness, but a restarted peer starts so).
func newStrongPeer(ctx context.Context, e *tally.Election, conn *pgx.Conn) (*strongPeer, error) {
	p := &strongPeer{e: e, conn: conn, cur: map[stationKey]*current{}, changed: map[stationKey]*current{},
		counts: map[aggKey]*countsDelta{}, votes: map[voteKey]int64{}}
	rows, err := conn.Query(ctx, `SELECT contest, station, version, status, payload FROM station_minutes`)
	if err != nil {
		return nil, fmt.Errorf("load current minutes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var contest, station string
		var c current
		var status int16
		if err := rows.Scan(&contest, &station, &c.version, &status, &c.payload); err != nil {
			return nil, fmt.Errorf("load current minutes: %w", err)
		}
		ci, ok1 := e.ContestIndex(contest)
		si, ok2 := e.StationIndex(station)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("load current minutes: contest %q station %q not in the election", contest, station)
		}
		c.status = tally.Status(status)
		p.cur[stationKey{int32(ci), int32(si)}] = &c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load current minutes: %w", err)
	}
	return p, nil
}

func (p *strongPeer) stats() (Outcomes, uint64, uint64, uint64) {
	return p.meta, p.events, p.statements, p.roundTrips
}

func (p *strongPeer) foldBatch(ctx context.Context, batch []jetstream.Msg) error {
	for _, jm := range batch {
		md, err := jm.Metadata()
		if err != nil {
			return fmt.Errorf("message metadata: %w", err)
		}
		if err := p.apply(md.Sequence.Stream, jm.Subject(), jm.Data()); err != nil {
			return fmt.Errorf("seq %d: %w", md.Sequence.Stream, err)
		}
		p.events++
	}

	b := &pgx.Batch{}
	queue := func(sql string, args ...any) {
		b.Queue(sql, args...)
		p.statements++
	}
	if n := len(p.changed); n > 0 {
		keys := sortedKeys(p.changed, func(a, b stationKey) int {
			return cmp.Or(strings.Compare(p.e.Contests[a.contest].ID, p.e.Contests[b.contest].ID),
				strings.Compare(p.e.Stations[a.station].ID, p.e.Stations[b.station].ID))
		})
		contest, station := make([]string, n), make([]string, n)
		version, status, payload := make([]int64, n), make([]int16, n), make([][]byte, n)
		for i, k := range keys {
			c := p.changed[k]
			contest[i], station[i] = p.e.Contests[k.contest].ID, p.e.Stations[k.station].ID
			version[i], status[i], payload[i] = c.version, int16(c.status), c.payload
		}
		queue(sqlStrongStations, contest, station, version, status, payload)
	}
	if h := &p.history; len(h.seq) > 0 {
		queue(sqlStrongHistory, h.contest, h.station, h.seq, h.version, h.status, h.outcome)
	}
	if rj := &p.rejected; len(rj.seq) > 0 {
		queue(sqlStrongRejections, rj.seq, rj.subject, rj.station, rj.contest, rj.version, rj.reason)
	}
	if n := len(p.counts); n > 0 {
		keys := sortedKeys(p.counts, p.compareAgg)
		contest, kind, id := make([]string, n), make([]string, n), make([]string, n)
		var cols [8][]int64
		for i := range cols {
			cols[i] = make([]int64, n)
		}
		for i, k := range keys {
			d := p.counts[k]
			contest[i], kind[i], id[i] = p.aggStrings(k)
			for j, v := range [8]int64{d.reporting, d.final, d.counts.Registered, d.counts.Voted,
				d.counts.Issued, d.counts.Received, d.counts.Valid, d.counts.Invalid} {
				cols[j][i] = v
			}
		}
		queue(sqlStrongCounts, contest, kind, id, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7])
	}
	// A candidate whose votes did not change in sum needs no row.
	for k, v := range p.votes {
		if v == 0 {
			delete(p.votes, k)
		}
	}
	if n := len(p.votes); n > 0 {
		keys := sortedKeys(p.votes, func(a, b voteKey) int {
			return cmp.Or(p.compareAgg(a.agg, b.agg), strings.Compare(a.cand, b.cand))
		})
		contest, kind, id, cand, votes := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]int64, n)
		for i, k := range keys {
			contest[i], kind[i], id[i] = p.aggStrings(k.agg)
			cand[i], votes[i] = k.cand, p.votes[k]
		}
		queue(sqlStrongVotes, contest, kind, id, cand, votes)
	}
	queue(sqlCheckpoint, int64(p.seq), int64(p.meta.Applied), int64(p.meta.Stale), int64(p.meta.Duplicates), int64(p.meta.Rejected))

	tx, err := p.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	p.roundTrips += 3 // BEGIN, the pipelined statements, COMMIT

	// Committed: the batch's minutes are now the current ones.
	for k, c := range p.changed {
		p.cur[k] = c
	}
	clear(p.changed)
	clear(p.counts)
	clear(p.votes)
	p.history = historyRows{contest: p.history.contest[:0], station: p.history.station[:0], seq: p.history.seq[:0],
		version: p.history.version[:0], status: p.history.status[:0], outcome: p.history.outcome[:0]}
	p.rejected = rejectionRows{seq: p.rejected.seq[:0], subject: p.rejected.subject[:0], station: p.rejected.station[:0],
		contest: p.rejected.contest[:0], version: p.rejected.version[:0], reason: p.rejected.reason[:0]}
	return nil
}

func sortedKeys[K comparable, V any](m map[K]V, compare func(a, b K) int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compare)
	return keys
}

func (p *strongPeer) aggStrings(k aggKey) (contest, kind, id string) {
	c := &p.e.Contests[k.contest]
	if k.kind == 'u' {
		return c.ID, "u", c.Units[k.id].ID
	}
	return c.ID, "a", p.e.Areas[k.id].ID
}

func (p *strongPeer) compareAgg(a, b aggKey) int {
	ac, ak, ai := p.aggStrings(a)
	bc, bk, bi := p.aggStrings(b)
	return cmp.Or(strings.Compare(ac, bc), strings.Compare(ak, bk), strings.Compare(ai, bi))
}

// lookup returns the station's current minutes, this batch's if it changed
// in it.
func (p *strongPeer) lookup(k stationKey) *current {
	if c, ok := p.changed[k]; ok {
		return c
	}
	return p.cur[k]
}

// apply folds one event with tally's semantics (CONTRACT §3) into the
// batch's rows and deltas.
func (p *strongPeer) apply(seq uint64, subject string, data []byte) error {
	p.seq = seq
	m := &p.m
	p.viol = p.viol[:0]
	if err := events.DecodeBinary(data, m); err != nil {
		*m = tally.Minutes{Votes: m.Votes[:0]}
		p.viol = append(p.viol, tally.Violation{Field: "payload", Rule: tally.RuleType, Message: err.Error()})
		p.reject(seq, subject)
		return nil
	}
	if st, ct, ok := events.ParseSubject(p.e.ID, subject); !ok || st != m.Station || ct != m.Contest {
		p.viol = append(p.viol, tally.Violation{Field: "station", Rule: tally.RuleSubject,
			Message: fmt.Sprintf("minutes for station %q contest %q published on subject %q", m.Station, m.Contest, subject)})
	}
	if p.viol = p.e.Check(m, 0, &p.r, p.viol); len(p.viol) > 0 {
		p.reject(seq, subject)
		return nil
	}

	k := stationKey{int32(p.r.Contest), int32(p.r.Station)}
	old := p.lookup(k)
	p.enc = events.AppendBinary(p.enc[:0], m)
	if old != nil {
		switch {
		case m.Version < old.version:
			p.meta.Stale++
			p.addHistory(seq, projections.Stale)
			return nil
		case m.Version == old.version && bytes.Equal(p.enc, old.payload):
			p.meta.Duplicates++
			p.addHistory(seq, projections.Duplicate)
			return nil
		case m.Version == old.version:
			p.viol = append(p.viol, tally.Violation{Field: "version", Rule: tally.RuleConflict,
				Message: fmt.Sprintf("version %d of station %q contest %q was already received with different content", m.Version, m.Station, m.Contest)})
			p.reject(seq, subject)
			return nil
		}
		if err := events.DecodeBinary(old.payload, &p.old); err != nil {
			return fmt.Errorf("stored minutes of %s/%s: %w", m.Contest, m.Station, err)
		}
	} else {
		p.old = tally.Minutes{Votes: p.old.Votes[:0]}
	}

	p.changed[k] = &current{version: m.Version, status: m.Status, payload: bytes.Clone(p.enc)}
	p.addHistory(seq, projections.Applied)
	p.addDelta(old != nil)
	p.meta.Applied++
	return nil
}

// addDelta adds to the batch's sums what replacing p.old by p.m changes in
// the station's unit and areas.
func (p *strongPeer) addDelta(exists bool) {
	d, votes, ok := minutesDelta(&p.old, exists, &p.m, p.voteDelta[:0])
	p.voteDelta = votes
	if !ok {
		return
	}
	c := int32(p.r.Contest)
	add := func(k aggKey, withVotes bool) {
		s := p.counts[k]
		if s == nil {
			s = &countsDelta{}
			p.counts[k] = s
		}
		s.reporting += d.reporting
		s.final += d.final
		s.counts.Add(d.counts, 1)
		for _, v := range votes {
			if v.delta != 0 && withVotes {
				p.votes[voteKey{k, v.cand}] += v.delta
			}
		}
	}
	add(aggKey{c, 'u', int32(p.r.Unit)}, true)
	// Votes only where the contract's result has them (CONTRACT §4 v2:
	// none in an area above the council's level).
	for _, a := range p.e.StationAreas(p.r.Station) {
		add(aggKey{c, 'a', int32(a)}, p.e.AreaHasVotes(p.r.Contest, a))
	}
}

func (p *strongPeer) addHistory(seq uint64, o projections.Outcome) {
	h := &p.history
	h.contest = append(h.contest, p.m.Contest)
	h.station = append(h.station, p.m.Station)
	h.seq = append(h.seq, int64(seq))
	h.version = append(h.version, p.m.Version)
	h.status = append(h.status, int16(p.m.Status))
	h.outcome = append(h.outcome, o.String())
}

func (p *strongPeer) reject(seq uint64, subject string) {
	m := &p.m
	var reason strings.Builder
	for i, v := range p.viol {
		if i > 0 {
			reason.WriteString("; ")
		}
		reason.WriteString(v.Field + ": " + v.Message)
	}
	rj := &p.rejected
	rj.seq = append(rj.seq, int64(seq))
	rj.subject = append(rj.subject, subject)
	rj.station = append(rj.station, m.Station)
	rj.contest = append(rj.contest, m.Contest)
	rj.version = append(rj.version, m.Version)
	rj.reason = append(rj.reason, reason.String())
	p.meta.Rejected++
	if _, ok := p.e.StationIndex(m.Station); ok {
		if _, ok := p.e.ContestIndex(m.Contest); ok {
			p.addHistory(seq, projections.Rejected)
		}
	}
}
