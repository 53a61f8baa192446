package harness

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

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

// Dense schema.
const denseSchemaFmt = `
CREATE TABLE dense_contest (contest smallint PRIMARY KEY, id text NOT NULL);
CREATE TABLE dense_station (station integer PRIMARY KEY, id text NOT NULL);
CREATE TABLE dense_aggregate (agg integer PRIMARY KEY, contest text NOT NULL, kind text NOT NULL, id text NOT NULL);
CREATE TABLE dense_candidate (cand integer PRIMARY KEY, id text NOT NULL);
CREATE TABLE dense_station_minutes (
	contest smallint NOT NULL,
	station integer NOT NULL,
	version bigint NOT NULL,
	status smallint NOT NULL,
	payload bytea NOT NULL,
	PRIMARY KEY (contest, station)
) WITH (fillfactor = %[1]d);
CREATE TABLE dense_station_history (
	contest smallint NOT NULL,
	station integer NOT NULL,
	seq bigint NOT NULL,
	version bigint NOT NULL,
	status smallint NOT NULL,
	outcome smallint NOT NULL,
	%[2]s
);
CREATE TABLE dense_counts (
	agg integer PRIMARY KEY,
	reporting bigint NOT NULL,
	final bigint NOT NULL,
	registered bigint NOT NULL,
	voted bigint NOT NULL,
	issued bigint NOT NULL,
	received bigint NOT NULL,
	valid bigint NOT NULL,
	invalid bigint NOT NULL
) WITH (fillfactor = %[1]d);
CREATE TABLE dense_votes (
	agg integer NOT NULL,
	cand integer NOT NULL,
	votes bigint NOT NULL,
	PRIMARY KEY (agg, cand)
) WITH (fillfactor = %[1]d);
DROP TABLE station_minutes, station_history, result_counts, result_votes;
CREATE VIEW station_minutes AS
	SELECT c.id AS contest, s.id AS station, m.version, m.status, m.payload
	FROM dense_station_minutes m JOIN dense_contest c USING (contest) JOIN dense_station s USING (station);
CREATE VIEW station_history AS
	SELECT c.id AS contest, s.id AS station, h.seq, h.version, h.status,
		CASE h.outcome WHEN 1 THEN 'applied' WHEN 2 THEN 'stale' WHEN 3 THEN 'duplicate' WHEN 4 THEN 'rejected' END AS outcome
	FROM dense_station_history h JOIN dense_contest c USING (contest) JOIN dense_station s USING (station);
CREATE VIEW result_counts AS
	SELECT a.contest, a.kind, a.id, n.reporting, n.final, n.registered, n.voted, n.issued, n.received, n.valid, n.invalid
	FROM dense_counts n JOIN dense_aggregate a USING (agg);
CREATE VIEW result_votes AS
	SELECT a.contest, a.kind, a.id, d.id AS candidate, v.votes
	FROM dense_votes v JOIN dense_aggregate a USING (agg) JOIN dense_candidate d USING (cand);
`

const (
	sqlDenseStations = `INSERT INTO dense_station_minutes (contest, station, version, status, payload)
SELECT * FROM unnest($1::smallint[], $2::integer[], $3::bigint[], $4::smallint[], $5::bytea[])
ON CONFLICT (contest, station) DO UPDATE SET version = excluded.version, status = excluded.status, payload = excluded.payload`
	sqlDenseHistory = `INSERT INTO dense_station_history (contest, station, seq, version, status, outcome)
SELECT * FROM unnest($1::smallint[], $2::integer[], $3::bigint[], $4::bigint[], $5::smallint[], $6::smallint[])`
	sqlDenseCounts = `INSERT INTO dense_counts (agg, reporting, final, registered, voted, issued, received, valid, invalid)
SELECT * FROM unnest($1::integer[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
ON CONFLICT (agg) DO UPDATE SET
	reporting = dense_counts.reporting + excluded.reporting,
	final = dense_counts.final + excluded.final,
	registered = dense_counts.registered + excluded.registered,
	voted = dense_counts.voted + excluded.voted,
	issued = dense_counts.issued + excluded.issued,
	received = dense_counts.received + excluded.received,
	valid = dense_counts.valid + excluded.valid,
	invalid = dense_counts.invalid + excluded.invalid`
	sqlDenseVotes = `INSERT INTO dense_votes (agg, cand, votes)
SELECT * FROM unnest($1::integer[], $2::integer[], $3::bigint[])
ON CONFLICT (agg, cand) DO UPDATE SET votes = dense_votes.votes + excluded.votes`
	sqlDenseVotesUpdate = `UPDATE dense_votes v SET votes = v.votes + d.delta
FROM unnest($1::integer[], $2::integer[], $3::bigint[]) AS d(agg, cand, delta)
WHERE v.agg = d.agg AND v.cand = d.cand`
)

// strongOpts are experimental knobs.
type strongOpts struct {
	dense       bool
	fillfactor  int    // dense tables
	historyKey  string // "station" (PK contest, station, seq), "seq", "none"
	votesUpdate bool   // pre-populated dense_votes, UPDATE ... FROM unnest
	profile     bool   // statements one by one, timed
	copyStage   bool   // votes, stations, history: COPY into temp tables, then INSERT ... SELECT
	walCompress string // SET wal_compression
}

// batchProf accumulates where a batch's time goes.
type batchProf struct {
	batches       int
	apply, build  time.Duration
	begin, commit time.Duration
	stmt          map[string]time.Duration
	rows          map[string]int
}

type stationKey struct{ contest, station int32 }

type current struct {
	version int64
	status  tally.Status
	payload []byte
}

type aggKey struct {
	contest int32
	kind    byte
	id      int32
}

type voteKey struct {
	agg  aggKey
	cand int32 // global candidate index
}

type strongPeer struct {
	e    *tally.Election
	conn *pgx.Conn
	opts strongOpts
	prof *batchProf

	// dense indexes
	candBase [][]int32 // contest, unit: first global candidate index
	candIDs  []string
	aggBase  []int32 // contest: first aggregate index (units, then the contest's areas)

	cur map[stationKey]*current

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
	contest, station []int32
	seq, version     []int64
	status           []int16
	outcome          []projections.Outcome
}

type rejectionRows struct {
	seq                               []int64
	subject, station, contest, reason []string
	version                           []int64
}

func newStrongPeer(ctx context.Context, e *tally.Election, conn *pgx.Conn) (*strongPeer, error) {
	return newStrongPeerOpts(ctx, e, conn, strongOpts{})
}

func newStrongPeerOpts(ctx context.Context, e *tally.Election, conn *pgx.Conn, opts strongOpts) (*strongPeer, error) {
	p := &strongPeer{e: e, conn: conn, opts: opts, cur: map[stationKey]*current{}, changed: map[stationKey]*current{},
		counts: map[aggKey]*countsDelta{}, votes: map[voteKey]int64{}}
	if opts.profile {
		p.prof = &batchProf{stmt: map[string]time.Duration{}, rows: map[string]int{}}
	}
	var nc, na int32
	p.candBase = make([][]int32, len(e.Contests))
	p.aggBase = make([]int32, len(e.Contests))
	for c := range e.Contests {
		p.candBase[c] = make([]int32, len(e.Contests[c].Units))
		for u := range e.Contests[c].Units {
			p.candBase[c][u] = nc
			for _, cd := range e.Contests[c].Units[u].Candidates {
				p.candIDs = append(p.candIDs, cd.ID)
				nc++
			}
		}
		p.aggBase[c] = na
		na += int32(len(e.Contests[c].Units) + len(e.ContestAreas(c)))
	}
	if opts.dense {
		if err := p.setupDense(ctx); err != nil {
			return nil, err
		}
	}
	if opts.copyStage {
		if _, err := conn.Exec(ctx, sqlStageSchema); err != nil {
			return nil, err
		}
	}
	if opts.walCompress != "" {
		if _, err := conn.Exec(ctx, "SET wal_compression = "+opts.walCompress); err != nil {
			return nil, err
		}
	}
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

func (p *strongPeer) denseAgg(k aggKey) int32 {
	if k.kind == 'u' {
		return p.aggBase[k.contest] + k.id
	}
	la, _ := p.e.ContestArea(int(k.contest), int(k.id))
	return p.aggBase[k.contest] + int32(len(p.e.Contests[k.contest].Units)) + int32(la)
}

func (p *strongPeer) setupDense(ctx context.Context) error {
	ff := p.opts.fillfactor
	if ff == 0 {
		ff = 100
	}
	hk := "PRIMARY KEY (contest, station, seq)"
	switch p.opts.historyKey {
	case "seq":
		hk = "PRIMARY KEY (seq)"
	case "none":
		hk = "CHECK (true)"
	}
	if _, err := p.conn.Exec(ctx, fmt.Sprintf(denseSchemaFmt, ff, hk)); err != nil {
		return fmt.Errorf("dense schema: %w", err)
	}
	e := p.e
	var rows [][]any
	copyRows := func(table string, cols ...string) error {
		_, err := p.conn.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
		rows = rows[:0]
		if err != nil {
			return fmt.Errorf("copy %s: %w", table, err)
		}
		return nil
	}
	for c := range e.Contests {
		rows = append(rows, []any{int16(c), e.Contests[c].ID})
	}
	if err := copyRows("dense_contest", "contest", "id"); err != nil {
		return err
	}
	for s := range e.Stations {
		rows = append(rows, []any{int32(s), e.Stations[s].ID})
	}
	if err := copyRows("dense_station", "station", "id"); err != nil {
		return err
	}
	for i, id := range p.candIDs {
		rows = append(rows, []any{int32(i), id})
	}
	if err := copyRows("dense_candidate", "cand", "id"); err != nil {
		return err
	}
	var votes [][]any
	for c := range e.Contests {
		cid := e.Contests[c].ID
		for u := range e.Contests[c].Units {
			k := aggKey{int32(c), 'u', int32(u)}
			rows = append(rows, []any{p.denseAgg(k), cid, "u", e.Contests[c].Units[u].ID})
			if p.opts.votesUpdate {
				for i := range e.Contests[c].Units[u].Candidates {
					votes = append(votes, []any{p.denseAgg(k), p.candBase[c][u] + int32(i), int64(0)})
				}
			}
		}
		for _, a := range e.ContestAreas(c) {
			k := aggKey{int32(c), 'a', a}
			rows = append(rows, []any{p.denseAgg(k), cid, "a", e.Areas[a].ID})
			if p.opts.votesUpdate && e.AreaHasVotes(c, int(a)) {
				for _, u := range e.AreaUnits(c, int(a)) {
					for i := range e.Contests[c].Units[u].Candidates {
						votes = append(votes, []any{p.denseAgg(k), p.candBase[c][u] + int32(i), int64(0)})
					}
				}
			}
		}
	}
	if err := copyRows("dense_aggregate", "agg", "contest", "kind", "id"); err != nil {
		return err
	}
	if p.opts.votesUpdate {
		rows = votes
		if err := copyRows("dense_votes", "agg", "cand", "votes"); err != nil {
			return err
		}
	}
	_, err := p.conn.Exec(ctx, "ANALYZE")
	return err
}

func (p *strongPeer) stats() (Outcomes, uint64, uint64, uint64) {
	return p.meta, p.events, p.statements, p.roundTrips
}

type stmt struct {
	name string
	sql  string
	rows int
	args []any
	// copy: COPY these rows into this temp table first
	copyTable string
	copyCols  []string
	copyRows  pgx.CopyFromSource
}

const sqlStageSchema = `
CREATE TEMP TABLE stage_votes (agg integer, cand integer, votes bigint) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE stage_stations (contest smallint, station integer, version bigint, status smallint, payload bytea) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE stage_history (contest smallint, station integer, seq bigint, version bigint, status smallint, outcome smallint) ON COMMIT DELETE ROWS;
`

func (p *strongPeer) foldBatch(ctx context.Context, batch []jetstream.Msg) error {
	t0 := time.Now()
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
	t1 := time.Now()
	var stmts []stmt
	if p.opts.dense {
		stmts = p.denseStatements()
	} else {
		stmts = p.textStatements()
	}
	stmts = append(stmts, stmt{name: "checkpoint", sql: sqlCheckpoint, rows: 1, args: []any{int64(p.seq), int64(p.meta.Applied), int64(p.meta.Stale), int64(p.meta.Duplicates), int64(p.meta.Rejected)}})
	p.statements += uint64(len(stmts))
	t2 := time.Now()

	tx, err := p.conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	t3 := time.Now()
	for _, s := range stmts {
		if s.copyTable != "" {
			ts := time.Now()
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{s.copyTable}, s.copyCols, s.copyRows); err != nil {
				return fmt.Errorf("copy %s: %w", s.copyTable, err)
			}
			p.roundTrips++
			if pr := p.prof; pr != nil {
				pr.stmt["copy-"+s.name] += time.Since(ts)
			}
		}
	}
	if pr := p.prof; pr != nil {
		for _, s := range stmts {
			ts := time.Now()
			if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			pr.stmt[s.name] += time.Since(ts)
			pr.rows[s.name] += s.rows
		}
	} else {
		b := &pgx.Batch{}
		for _, s := range stmts {
			b.Queue(s.sql, s.args...)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
	}
	t4 := time.Now()
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	p.roundTrips += 3
	if pr := p.prof; pr != nil {
		pr.batches++
		pr.apply += t1.Sub(t0)
		pr.build += t2.Sub(t1)
		pr.begin += t3.Sub(t2)
		pr.commit += time.Since(t4)
	}

	for k, c := range p.changed {
		p.cur[k] = c
	}
	clear(p.changed)
	clear(p.counts)
	clear(p.votes)
	h := &p.history
	*h = historyRows{contest: h.contest[:0], station: h.station[:0], seq: h.seq[:0], version: h.version[:0], status: h.status[:0], outcome: h.outcome[:0]}
	p.rejected = rejectionRows{seq: p.rejected.seq[:0], subject: p.rejected.subject[:0], station: p.rejected.station[:0],
		contest: p.rejected.contest[:0], version: p.rejected.version[:0], reason: p.rejected.reason[:0]}
	return nil
}

func (p *strongPeer) rejectionStatement() []stmt {
	if rj := &p.rejected; len(rj.seq) > 0 {
		return []stmt{{name: "rejections", sql: sqlStrongRejections, rows: len(rj.seq), args: []any{rj.seq, rj.subject, rj.station, rj.contest, rj.version, rj.reason}}}
	}
	return nil
}

func (p *strongPeer) textStatements() []stmt {
	var out []stmt
	e := p.e
	if n := len(p.changed); n > 0 {
		keys := sortedKeys(p.changed, func(a, b stationKey) int {
			return cmp.Or(strings.Compare(e.Contests[a.contest].ID, e.Contests[b.contest].ID),
				strings.Compare(e.Stations[a.station].ID, e.Stations[b.station].ID))
		})
		contest, station := make([]string, n), make([]string, n)
		version, status, payload := make([]int64, n), make([]int16, n), make([][]byte, n)
		for i, k := range keys {
			c := p.changed[k]
			contest[i], station[i] = e.Contests[k.contest].ID, e.Stations[k.station].ID
			version[i], status[i], payload[i] = c.version, int16(c.status), c.payload
		}
		out = append(out, stmt{name: "stations", sql: sqlStrongStations, rows: n, args: []any{contest, station, version, status, payload}})
	}
	if h := &p.history; len(h.seq) > 0 {
		n := len(h.seq)
		contest, station, outcome := make([]string, n), make([]string, n), make([]string, n)
		for i := range n {
			contest[i], station[i], outcome[i] = e.Contests[h.contest[i]].ID, e.Stations[h.station[i]].ID, h.outcome[i].String()
		}
		out = append(out, stmt{name: "history", sql: sqlStrongHistory, rows: n, args: []any{contest, station, h.seq, h.version, h.status, outcome}})
	}
	out = append(out, p.rejectionStatement()...)
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
		out = append(out, stmt{name: "counts", sql: sqlStrongCounts, rows: n, args: []any{contest, kind, id, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7]}})
	}
	for k, v := range p.votes {
		if v == 0 {
			delete(p.votes, k)
		}
	}
	if n := len(p.votes); n > 0 {
		keys := sortedKeys(p.votes, func(a, b voteKey) int {
			return cmp.Or(p.compareAgg(a.agg, b.agg), strings.Compare(p.candIDs[a.cand], p.candIDs[b.cand]))
		})
		contest, kind, id, cand, votes := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]int64, n)
		for i, k := range keys {
			contest[i], kind[i], id[i] = p.aggStrings(k.agg)
			cand[i], votes[i] = p.candIDs[k.cand], p.votes[k]
		}
		out = append(out, stmt{name: "votes", sql: sqlStrongVotes, rows: n, args: []any{contest, kind, id, cand, votes}})
	}
	return out
}

func (p *strongPeer) denseStatements() []stmt {
	var out []stmt
	if n := len(p.changed); n > 0 {
		keys := sortedKeys(p.changed, func(a, b stationKey) int {
			return cmp.Or(cmp.Compare(a.contest, b.contest), cmp.Compare(a.station, b.station))
		})
		contest, station := make([]int16, n), make([]int32, n)
		version, status, payload := make([]int64, n), make([]int16, n), make([][]byte, n)
		for i, k := range keys {
			c := p.changed[k]
			contest[i], station[i] = int16(k.contest), k.station
			version[i], status[i], payload[i] = c.version, int16(c.status), c.payload
		}
		if p.opts.copyStage {
			out = append(out, stmt{name: "stations", sql: `INSERT INTO dense_station_minutes SELECT * FROM stage_stations
ON CONFLICT (contest, station) DO UPDATE SET version = excluded.version, status = excluded.status, payload = excluded.payload`, rows: n,
				copyTable: "stage_stations", copyCols: []string{"contest", "station", "version", "status", "payload"},
				copyRows: pgx.CopyFromSlice(n, func(i int) ([]any, error) {
					return []any{contest[i], station[i], version[i], status[i], payload[i]}, nil
				})})
		} else {
			out = append(out, stmt{name: "stations", sql: sqlDenseStations, rows: n, args: []any{contest, station, version, status, payload}})
		}
	}
	if h := &p.history; len(h.seq) > 0 {
		n := len(h.seq)
		contest, outcome := make([]int16, n), make([]int16, n)
		for i := range n {
			contest[i], outcome[i] = int16(h.contest[i]), int16(h.outcome[i])
		}
		if p.opts.copyStage {
			out = append(out, stmt{name: "history", sql: `INSERT INTO dense_station_history SELECT * FROM stage_history`, rows: n,
				copyTable: "stage_history", copyCols: []string{"contest", "station", "seq", "version", "status", "outcome"},
				copyRows: pgx.CopyFromSlice(n, func(i int) ([]any, error) {
					return []any{contest[i], h.station[i], h.seq[i], h.version[i], h.status[i], outcome[i]}, nil
				})})
		} else {
			out = append(out, stmt{name: "history", sql: sqlDenseHistory, rows: n, args: []any{contest, h.station, h.seq, h.version, h.status, outcome}})
		}
	}
	out = append(out, p.rejectionStatement()...)
	if n := len(p.counts); n > 0 {
		agg := make([]int32, 0, n)
		byAgg := make(map[int32]*countsDelta, n)
		for k, d := range p.counts {
			a := p.denseAgg(k)
			agg = append(agg, a)
			byAgg[a] = d
		}
		slices.Sort(agg)
		var cols [8][]int64
		for i := range cols {
			cols[i] = make([]int64, n)
		}
		for i, a := range agg {
			d := byAgg[a]
			for j, v := range [8]int64{d.reporting, d.final, d.counts.Registered, d.counts.Voted,
				d.counts.Issued, d.counts.Received, d.counts.Valid, d.counts.Invalid} {
				cols[j][i] = v
			}
		}
		out = append(out, stmt{name: "counts", sql: sqlDenseCounts, rows: n, args: []any{agg, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7]}})
	}
	type dv struct {
		agg, cand int32
		v         int64
	}
	rows := make([]dv, 0, len(p.votes))
	for k, v := range p.votes {
		if v != 0 {
			rows = append(rows, dv{p.denseAgg(k.agg), k.cand, v})
		}
	}
	if n := len(rows); n > 0 {
		slices.SortFunc(rows, func(a, b dv) int { return cmp.Or(cmp.Compare(a.agg, b.agg), cmp.Compare(a.cand, b.cand)) })
		agg, cand, votes := make([]int32, n), make([]int32, n), make([]int64, n)
		for i, r := range rows {
			agg[i], cand[i], votes[i] = r.agg, r.cand, r.v
		}
		sql := sqlDenseVotes
		if p.opts.votesUpdate {
			sql = sqlDenseVotesUpdate
		}
		if p.opts.copyStage {
			sql = `INSERT INTO dense_votes SELECT * FROM stage_votes ON CONFLICT (agg, cand) DO UPDATE SET votes = dense_votes.votes + excluded.votes`
			if p.opts.votesUpdate {
				sql = `UPDATE dense_votes v SET votes = v.votes + d.votes FROM stage_votes d WHERE v.agg = d.agg AND v.cand = d.cand`
			}
			out = append(out, stmt{name: "votes", sql: sql, rows: n, copyTable: "stage_votes", copyCols: []string{"agg", "cand", "votes"},
				copyRows: pgx.CopyFromSlice(n, func(i int) ([]any, error) { return []any{agg[i], cand[i], votes[i]}, nil })})
		} else {
			out = append(out, stmt{name: "votes", sql: sql, rows: n, args: []any{agg, cand, votes}})
		}
	}
	return out
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

func (p *strongPeer) lookup(k stationKey) *current {
	if c, ok := p.changed[k]; ok {
		return c
	}
	return p.cur[k]
}

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
			p.addHistory(seq, k, projections.Stale)
			return nil
		case m.Version == old.version && bytes.Equal(p.enc, old.payload):
			p.meta.Duplicates++
			p.addHistory(seq, k, projections.Duplicate)
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
	p.addHistory(seq, k, projections.Applied)
	if err := p.addDelta(old != nil); err != nil {
		return err
	}
	p.meta.Applied++
	return nil
}

func (p *strongPeer) addDelta(exists bool) error {
	d, votes, ok := minutesDelta(&p.old, exists, &p.m, p.voteDelta[:0])
	p.voteDelta = votes
	if !ok {
		return nil
	}
	c, u := p.r.Contest, p.r.Unit
	base := p.candBase[c][u]
	// Candidate indexes: the minutes' candidates were checked against the
	// unit; the stored ones were when they were applied.
	idx := make([]int32, 0, 16)
	for _, v := range votes {
		i, ok := p.e.CandidateIndex(c, u, v.cand)
		if !ok {
			return fmt.Errorf("candidate %q not in unit %s", v.cand, p.e.Contests[c].Units[u].ID)
		}
		idx = append(idx, base+int32(i))
	}
	add := func(k aggKey, withVotes bool) {
		s := p.counts[k]
		if s == nil {
			s = &countsDelta{}
			p.counts[k] = s
		}
		s.reporting += d.reporting
		s.final += d.final
		s.counts.Add(d.counts, 1)
		if withVotes {
			for i, v := range votes {
				if v.delta != 0 {
					p.votes[voteKey{k, idx[i]}] += v.delta
				}
			}
		}
	}
	add(aggKey{int32(c), 'u', int32(u)}, true)
	for _, a := range p.e.StationAreas(p.r.Station) {
		add(aggKey{int32(c), 'a', int32(a)}, p.e.AreaHasVotes(c, a))
	}
	return nil
}

func (p *strongPeer) addHistory(seq uint64, k stationKey, o projections.Outcome) {
	h := &p.history
	h.contest = append(h.contest, k.contest)
	h.station = append(h.station, k.station)
	h.seq = append(h.seq, int64(seq))
	h.version = append(h.version, p.m.Version)
	h.status = append(h.status, int16(p.m.Status))
	h.outcome = append(h.outcome, o)
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
	if s, ok := p.e.StationIndex(m.Station); ok {
		if c, ok := p.e.ContestIndex(m.Contest); ok {
			p.addHistory(seq, stationKey{int32(c), int32(s)}, projections.Rejected)
		}
	}
}
