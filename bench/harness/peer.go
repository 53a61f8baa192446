package harness

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// The PostgreSQL peer folds the stream the way most teams would: every
// event is decoded and checked; the station's current minutes are read from
// a table with SELECT ... FOR UPDATE and compared (stale, duplicate,
// conflict: CONTRACT §3); an applied event replaces them and adds its
// difference to the unit, ward, district and province results with one
// upsert per aggregate row (INSERT ... ON CONFLICT DO UPDATE SET x = x +
// excluded.x), a counts row and a row per candidate whose votes changed.
// Every event gets a history row, a rejection a row of its own. One
// transaction per batch of events, the checkpoint in it, then the ack:
// the same exactly-once shape as tally's fold. synchronous_commit is on
// (the default), so every commit waits for its WAL flush, as tally's
// Pebble commit waits for its fsync.
//
// It is not naive about round trips: the statements that follow the read
// of one event are pipelined in one pgx batch, and the write-only
// statements of stale, duplicate and rejected events ride along with the
// next batch sent, so an event costs two round trips at most.
const pgSchema = `
CREATE TABLE station_minutes (
	contest text NOT NULL,
	station text NOT NULL,
	version bigint NOT NULL,
	status smallint NOT NULL,
	payload bytea NOT NULL, -- the canonical binary minutes
	PRIMARY KEY (contest, station)
);
CREATE TABLE station_history (
	contest text NOT NULL,
	station text NOT NULL,
	seq bigint NOT NULL,
	version bigint NOT NULL,
	status smallint NOT NULL,
	outcome text NOT NULL,
	PRIMARY KEY (contest, station, seq)
);
CREATE TABLE rejections (
	seq bigint PRIMARY KEY,
	subject text NOT NULL,
	station text NOT NULL,
	contest text NOT NULL,
	version bigint NOT NULL,
	reason text NOT NULL
);
-- kind 'a': an area (ward, district, province); 'u': an electoral unit.
CREATE TABLE result_counts (
	contest text NOT NULL,
	kind text NOT NULL,
	id text NOT NULL,
	reporting bigint NOT NULL,
	final bigint NOT NULL,
	registered bigint NOT NULL,
	voted bigint NOT NULL,
	issued bigint NOT NULL,
	received bigint NOT NULL,
	valid bigint NOT NULL,
	invalid bigint NOT NULL,
	PRIMARY KEY (contest, kind, id)
);
CREATE TABLE result_votes (
	contest text NOT NULL,
	kind text NOT NULL,
	id text NOT NULL,
	candidate text NOT NULL,
	votes bigint NOT NULL,
	PRIMARY KEY (contest, kind, id, candidate)
);
CREATE TABLE checkpoint (
	one boolean PRIMARY KEY DEFAULT true CHECK (one),
	seq bigint NOT NULL,
	applied bigint NOT NULL,
	stale bigint NOT NULL,
	duplicates bigint NOT NULL,
	rejected bigint NOT NULL
);
INSERT INTO checkpoint VALUES (true, 0, 0, 0, 0, 0);
`

const (
	sqlCurrent = `SELECT version, status, payload FROM station_minutes WHERE contest = $1 AND station = $2 FOR UPDATE`
	sqlStation = `INSERT INTO station_minutes (contest, station, version, status, payload) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (contest, station) DO UPDATE SET version = excluded.version, status = excluded.status, payload = excluded.payload`
	sqlHistory   = `INSERT INTO station_history (contest, station, seq, version, status, outcome) VALUES ($1, $2, $3, $4, $5, $6)`
	sqlRejection = `INSERT INTO rejections (seq, subject, station, contest, version, reason) VALUES ($1, $2, $3, $4, $5, $6)`
	sqlCounts    = `INSERT INTO result_counts (contest, kind, id, reporting, final, registered, voted, issued, received, valid, invalid)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (contest, kind, id) DO UPDATE SET
	reporting = result_counts.reporting + excluded.reporting,
	final = result_counts.final + excluded.final,
	registered = result_counts.registered + excluded.registered,
	voted = result_counts.voted + excluded.voted,
	issued = result_counts.issued + excluded.issued,
	received = result_counts.received + excluded.received,
	valid = result_counts.valid + excluded.valid,
	invalid = result_counts.invalid + excluded.invalid`
	sqlVotes = `INSERT INTO result_votes (contest, kind, id, candidate, votes) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (contest, kind, id, candidate) DO UPDATE SET votes = result_votes.votes + excluded.votes`
	sqlCheckpoint = `UPDATE checkpoint SET seq = $1, applied = $2, stale = $3, duplicates = $4, rejected = $5`
)

// pgFolder is one design of the PostgreSQL peer: it folds the stream
// batch by batch into the tables of pgSchema.
type pgFolder interface {
	// foldBatch folds one batch in one transaction, its checkpoint in it.
	foldBatch(ctx context.Context, batch []jetstream.Msg) error
	// stats returns what it made of the events so far, how many events,
	// and the statements and round trips it took.
	stats() (meta Outcomes, events, statements, roundTrips uint64)
}

// peer runs the PostgreSQL peer of the given design (PeerPostgres,
// PeerPostgresStrong) over the whole stream, on a PostgreSQL cluster of its
// own, and compares its results with those of tally's store.
func (r *runner) peer(ctx context.Context, design string, store *projections.Store) error {
	settings := []string{"shared_buffers=" + r.cfg.PostgresSharedBuffers}
	// Under the system's temporary directory, not TempDir: when we are root
	// the server runs as postgres, which must reach its data directory.
	pg, err := startPostgres(ctx, os.TempDir(), settings, r.logf)
	if err != nil {
		return err
	}
	defer func() {
		if err := pg.stop(); err != nil {
			r.problem("stop postgres: %v", err)
		}
	}()
	conn, err := pgx.Connect(ctx, pg.url())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	res := &Peer{Design: design, Install: pg.install}
	if design == PeerPostgresStrong {
		r.res.StrongPeer = res
	} else {
		r.res.Peer = res
	}
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&res.Server); err != nil {
		return err
	}
	for _, name := range []string{"shared_buffers", "synchronous_commit", "fsync", "wal_level", "max_wal_size"} {
		var v string
		if err := conn.QueryRow(ctx, "SHOW "+name).Scan(&v); err != nil {
			return err
		}
		res.Settings = append(res.Settings, name+"="+v)
	}
	if _, err := conn.Exec(ctx, pgSchema); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	r.logf("%s: postgres %s on %s (%s); folding %d events", design, res.Server, pg.url(), strings.Join(res.Settings, " "), r.n)

	var p pgFolder
	if design == PeerPostgresStrong {
		sp, err := newStrongPeer(ctx, r.e, conn)
		if err != nil {
			return err
		}
		p = sp
	} else {
		p = &pgPeer{e: r.e, conn: conn, pending: &pgx.Batch{}}
	}
	start := time.Now()
	var lastLog time.Time
	err = readBatches(ctx, r.stream, "bench-"+design, r.cfg.BatchSize, r.n, func(batch []jetstream.Msg) error {
		if err := p.foldBatch(ctx, batch); err != nil {
			return err
		}
		if time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			_, events, _, _ := p.stats()
			r.logf("%s: %d of %d events, %.0f events/s", design, events, r.n, float64(events)/time.Since(start).Seconds())
		}
		return nil
	})
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	meta, events, statements, roundTrips := p.stats()
	res.Events = events
	res.Seconds = elapsed.Seconds()
	res.EventsPerS = float64(events) / elapsed.Seconds()
	res.TallyOverPeer = r.res.Fold.Best / res.EventsPerS
	res.Outcomes = meta
	res.StatementsPerEvent = float64(statements) / float64(events)
	res.RoundTripsPerEvent = float64(roundTrips) / float64(events)
	if err := conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&res.DatabaseMiB); err == nil {
		res.DatabaseMiB /= mib
	}
	r.logf("%s: %d events in %.1fs: %.0f events/s; tally/peer %.1f; %.3f statements and %.4f round trips per event",
		design, res.Events, res.Seconds, res.EventsPerS, res.TallyOverPeer, res.StatementsPerEvent, res.RoundTripsPerEvent)
	if meta != r.res.FoldOutcomes {
		r.problem("the %s peer's outcomes %+v differ from tally's %+v", design, meta, r.res.FoldOutcomes)
	}

	if err := compareResults(ctx, conn, store, res); err != nil {
		return fmt.Errorf("compare results: %w", err)
	}
	r.logf("%s: compared %d area and unit results with tally's: %d differ", design, res.Compared, res.Mismatches)
	if res.Mismatches > 0 {
		r.problem("%d of %d results differ between PostgreSQL (%s) and tally, e.g. %s", res.Mismatches, res.Compared, design, strings.Join(res.Examples, "; "))
	}
	return nil
}

// readBatches reads the n messages of stream through a durable pull
// consumer configured as the aggregator's, hands them to fn batch by batch
// and acknowledges each batch (AckAll) once fn returned.
//
// A slow reader (the naive peer on a busy machine folds a few hundred
// events a second) may hold delivered messages longer than the consumer's
// AckWait, and JetStream then delivers them again. As any at-least-once
// reader must, readBatches drops a message whose stream sequence it has
// already passed; the peer's AckWait is also longer than the fold's, so
// that redeliveries stay rare.
func readBatches(ctx context.Context, stream jetstream.Stream, durable string, batch int, n uint64, fn func([]jetstream.Msg) error) error {
	cc := consumerConfig(durable, batch)
	cc.AckWait = 10 * time.Minute
	cons, err := stream.CreateOrUpdateConsumer(ctx, cc)
	if err != nil {
		return fmt.Errorf("create consumer %s: %w", durable, err)
	}
	defer stream.DeleteConsumer(context.WithoutCancel(ctx), durable)
	msgs := make(chan jetstream.Msg, 2*batch)
	done := make(chan struct{})
	defer close(done)
	cctx, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-done:
		}
	}, jetstream.PullMaxMessages(batch))
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	defer cctx.Stop()
	buf := make([]jetstream.Msg, 0, batch)
	var last uint64 // stream sequence of the last message handed to fn
	for read := uint64(0); read < n; {
		buf = buf[:0]
		want := int(min(uint64(batch), n-read))
		for len(buf) < want {
			select {
			case m := <-msgs:
				md, err := m.Metadata()
				if err != nil {
					return fmt.Errorf("message metadata: %w", err)
				}
				if md.Sequence.Stream <= last {
					continue // a redelivery
				}
				last = md.Sequence.Stream
				buf = append(buf, m)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := fn(buf); err != nil {
			return err
		}
		if err := buf[len(buf)-1].Ack(); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
		read += uint64(want)
	}
	return nil
}

// pgPeer is the peer's fold state: a connection and scratch space. Every
// fact lives in PostgreSQL.
type pgPeer struct {
	e    *tally.Election
	conn *pgx.Conn
	tx   pgx.Tx
	// pending holds write-only statements not sent yet.
	pending *pgx.Batch

	meta       Outcomes
	seq        uint64
	events     uint64
	statements uint64
	roundTrips uint64

	m, old tally.Minutes
	r      tally.Resolved
	viol   []tally.Violation
	enc    []byte
	aggs   []pgAgg
}

// pgAgg is one aggregate row an event changes.
type pgAgg struct {
	kind, id string
	votes    bool // whether the result has votes
}

func (p *pgPeer) stats() (Outcomes, uint64, uint64, uint64) {
	return p.meta, p.events, p.statements, p.roundTrips
}

func (p *pgPeer) queue(sql string, args ...any) {
	p.pending.Queue(sql, args...)
	p.statements++
}

// flush sends the pending statements in one round trip.
func (p *pgPeer) flush(ctx context.Context) error {
	if p.pending.Len() == 0 {
		return nil
	}
	b := p.pending
	p.pending = &pgx.Batch{}
	p.roundTrips++
	return p.tx.SendBatch(ctx, b).Close()
}

func (p *pgPeer) foldBatch(ctx context.Context, batch []jetstream.Msg) error {
	tx, err := p.conn.Begin(ctx)
	if err != nil {
		return err
	}
	p.tx = tx
	p.roundTrips++
	defer tx.Rollback(context.WithoutCancel(ctx))
	for _, jm := range batch {
		md, err := jm.Metadata()
		if err != nil {
			return fmt.Errorf("message metadata: %w", err)
		}
		if err := p.apply(ctx, md.Sequence.Stream, jm.Subject(), jm.Data()); err != nil {
			return fmt.Errorf("seq %d: %w", md.Sequence.Stream, err)
		}
		p.events++
	}
	p.queue(sqlCheckpoint, int64(p.seq), int64(p.meta.Applied), int64(p.meta.Stale), int64(p.meta.Duplicates), int64(p.meta.Rejected))
	if err := p.flush(ctx); err != nil {
		return err
	}
	p.roundTrips++
	p.statements++
	return tx.Commit(ctx)
}

// apply folds one event with tally's semantics (CONTRACT §3).
func (p *pgPeer) apply(ctx context.Context, seq uint64, subject string, data []byte) error {
	p.seq = seq
	m := &p.m
	p.viol = p.viol[:0]
	if err := events.DecodeBinary(data, m); err != nil {
		*m = tally.Minutes{Votes: m.Votes[:0]}
		p.viol = append(p.viol, tally.Violation{Field: "payload", Rule: tally.RuleType, Message: err.Error()})
		return p.reject(seq, subject)
	}
	if st, ct, ok := events.ParseSubject(p.e.ID, subject); !ok || st != m.Station || ct != m.Contest {
		p.viol = append(p.viol, tally.Violation{Field: "station", Rule: tally.RuleSubject,
			Message: fmt.Sprintf("minutes for station %q contest %q published on subject %q", m.Station, m.Contest, subject)})
	}
	if p.viol = p.e.Check(m, 0, &p.r, p.viol); len(p.viol) > 0 {
		return p.reject(seq, subject)
	}

	var (
		oldVersion int64
		oldStatus  int16
		payload    []byte
		exists     = true
	)
	p.statements++
	p.roundTrips++
	err := p.tx.QueryRow(ctx, sqlCurrent, m.Contest, m.Station).Scan(&oldVersion, &oldStatus, &payload)
	if err == pgx.ErrNoRows {
		exists = false
	} else if err != nil {
		return fmt.Errorf("read current minutes: %w", err)
	}
	p.enc = events.AppendBinary(p.enc[:0], m)
	if exists {
		switch {
		case m.Version < oldVersion:
			p.meta.Stale++
			p.history(seq, projections.Stale)
			return nil
		case m.Version == oldVersion && bytes.Equal(p.enc, payload):
			p.meta.Duplicates++
			p.history(seq, projections.Duplicate)
			return nil
		case m.Version == oldVersion:
			p.viol = append(p.viol, tally.Violation{Field: "version", Rule: tally.RuleConflict,
				Message: fmt.Sprintf("version %d of station %q contest %q was already received with different content", m.Version, m.Station, m.Contest)})
			return p.reject(seq, subject)
		}
		if err := events.DecodeBinary(payload, &p.old); err != nil {
			return fmt.Errorf("stored minutes of %s/%s: %w", m.Contest, m.Station, err)
		}
	} else {
		p.old = tally.Minutes{Votes: p.old.Votes[:0]}
	}

	p.queue(sqlStation, m.Contest, m.Station, m.Version, int16(m.Status), bytes.Clone(p.enc))
	p.history(seq, projections.Applied)
	p.delta(&p.old, exists, m)
	p.meta.Applied++
	return p.flush(ctx)
}

func counts(s tally.Status) bool { return s == tally.Partial || s == tally.Final }

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// countsDelta is what one applied event adds to each of its aggregates'
// counts row.
type countsDelta struct {
	reporting, final int64
	counts           tally.Counts
}

// voteDelta is what one applied event adds to one candidate's votes.
type voteDelta struct {
	cand  string
	delta int64
}

// minutesDelta returns what replacing old (if it exists and counted) by m
// (if it counts) adds to the station's unit and areas: the counts and,
// appended to votes, the candidates' votes. ok is false when neither
// counts, and nothing changes.
func minutesDelta(old *tally.Minutes, exists bool, m *tally.Minutes, votes []voteDelta) (d countsDelta, _ []voteDelta, ok bool) {
	oldIn, newIn := exists && counts(old.Status), counts(m.Status)
	if !oldIn && !newIn {
		return d, votes, false
	}
	var oc, nc tally.Counts
	if oldIn {
		oc = old.Counts
	}
	if newIn {
		nc = m.Counts
	}
	d.reporting = b2i(newIn) - b2i(oldIn)
	d.final = b2i(newIn && m.Status == tally.Final) - b2i(oldIn && old.Status == tally.Final)
	d.counts = nc
	d.counts.Add(oc, -1)
	// Votes are sorted by candidate in both (the canonical form): merge.
	var ov, nv []tally.Vote
	if oldIn {
		ov = old.Votes
	}
	if newIn {
		nv = m.Votes
	}
	for i, j := 0, 0; i < len(ov) || j < len(nv); {
		switch {
		case j == len(nv) || i < len(ov) && ov[i].Candidate < nv[j].Candidate:
			votes = append(votes, voteDelta{ov[i].Candidate, -ov[i].Count})
			i++
		case i == len(ov) || nv[j].Candidate < ov[i].Candidate:
			votes = append(votes, voteDelta{nv[j].Candidate, nv[j].Count})
			j++
		default:
			votes = append(votes, voteDelta{nv[j].Candidate, nv[j].Count - ov[i].Count})
			i++
			j++
		}
	}
	return d, votes, true
}

// delta queues the upserts that take old (if it counted) out of the
// station's unit and areas and put m (if it counts) in.
func (p *pgPeer) delta(old *tally.Minutes, exists bool, m *tally.Minutes) {
	d, votes, ok := minutesDelta(old, exists, m, nil)
	if !ok {
		return
	}
	dc := d.counts
	e, r := p.e, &p.r
	// The unit, then one area per level: four rows in the 2021 structure,
	// three in the 2026 one. Votes only where the contract's result has
	// them (CONTRACT §4 v2: none in an area above the council's level).
	aggs := append(p.aggs[:0], pgAgg{"u", e.Contests[r.Contest].Units[r.Unit].ID, true})
	for _, a := range e.StationAreas(r.Station) {
		aggs = append(aggs, pgAgg{"a", e.Areas[a].ID, e.AreaHasVotes(r.Contest, a)})
	}
	p.aggs = aggs
	for _, a := range aggs {
		p.queue(sqlCounts, m.Contest, a.kind, a.id, d.reporting, d.final,
			dc.Registered, dc.Voted, dc.Issued, dc.Received, dc.Valid, dc.Invalid)
		for _, v := range votes {
			if v.delta != 0 && a.votes {
				p.queue(sqlVotes, m.Contest, a.kind, a.id, v.cand, v.delta)
			}
		}
	}
}

func (p *pgPeer) history(seq uint64, o projections.Outcome) {
	p.queue(sqlHistory, p.m.Contest, p.m.Station, int64(seq), p.m.Version, int16(p.m.Status), o.String())
}

func (p *pgPeer) reject(seq uint64, subject string) error {
	m := &p.m
	var reason strings.Builder
	for i, v := range p.viol {
		if i > 0 {
			reason.WriteString("; ")
		}
		reason.WriteString(v.Field + ": " + v.Message)
	}
	p.queue(sqlRejection, int64(seq), subject, m.Station, m.Contest, m.Version, reason.String())
	p.meta.Rejected++
	if _, ok := p.e.StationIndex(m.Station); ok {
		if _, ok := p.e.ContestIndex(m.Contest); ok {
			p.history(seq, projections.Rejected)
		}
	}
	return nil
}

// pgResult is one area or unit result as PostgreSQL holds it.
type pgResult struct {
	reporting, final int64
	counts           tally.Counts
	votes            map[string]int64
}

// compareResults compares every area result (of every area that votes in
// the contest) and every unit result of tally's store with PostgreSQL's.
func compareResults(ctx context.Context, conn *pgx.Conn, store *projections.Store, res *Peer) error {
	type key struct{ contest, kind, id string }
	pg := map[key]*pgResult{}
	get := func(k key) *pgResult {
		x := pg[k]
		if x == nil {
			x = &pgResult{votes: map[string]int64{}}
			pg[k] = x
		}
		return x
	}
	rows, err := conn.Query(ctx, `SELECT contest, kind, id, reporting, final, registered, voted, issued, received, valid, invalid FROM result_counts`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var k key
		var x pgResult
		if err := rows.Scan(&k.contest, &k.kind, &k.id, &x.reporting, &x.final, &x.counts.Registered, &x.counts.Voted,
			&x.counts.Issued, &x.counts.Received, &x.counts.Valid, &x.counts.Invalid); err != nil {
			return err
		}
		y := get(k)
		x.votes = y.votes
		*y = x
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = conn.Query(ctx, `SELECT contest, kind, id, candidate, votes FROM result_votes WHERE votes <> 0`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var k key
		var cand string
		var v int64
		if err := rows.Scan(&k.contest, &k.kind, &k.id, &cand, &v); err != nil {
			return err
		}
		get(k).votes[cand] = v
	}
	if err := rows.Err(); err != nil {
		return err
	}

	e := store.Election()
	differ := func(what string, got *pgResult, reporting, final int64, c tally.Counts, votes map[string]int64) {
		res.Compared++
		if got == nil {
			got = &pgResult{}
		}
		want := pgResult{reporting: reporting, final: final, counts: c, votes: maps.Clone(votes)}
		maps.DeleteFunc(want.votes, func(_ string, v int64) bool { return v == 0 })
		if got.reporting == want.reporting && got.final == want.final && got.counts == want.counts && maps.Equal(got.votes, want.votes) {
			return
		}
		res.Mismatches++
		if len(res.Examples) < 5 {
			res.Examples = append(res.Examples, fmt.Sprintf("%s: postgres {reporting %d final %d %+v %d votes} tally {reporting %d final %d %+v %d votes}",
				what, got.reporting, got.final, got.counts, len(got.votes), want.reporting, want.final, want.counts, len(want.votes)))
		}
	}
	for c := range e.Contests {
		cid := e.Contests[c].ID
		for a := range e.Areas {
			if e.Expected(c, a) == 0 {
				continue
			}
			t, err := store.AreaResult(cid, e.Areas[a].ID)
			if err != nil {
				return err
			}
			differ(cid+"/"+e.Areas[a].ID, pg[key{cid, "a", e.Areas[a].ID}], t.StationsReporting, t.StationsFinal,
				tally.Counts{Registered: t.Registered, Voted: t.Voted, Issued: t.Issued, Received: t.Received, Valid: t.Valid, Invalid: t.Invalid}, t.Votes)
		}
		for u := range e.Contests[c].Units {
			uid := e.Contests[c].Units[u].ID
			t, err := store.UnitResult(cid, uid)
			if err != nil {
				return err
			}
			differ(cid+"/"+uid, pg[key{cid, "u", uid}], t.StationsReporting, t.StationsFinal,
				tally.Counts{Registered: t.Registered, Voted: t.Voted, Issued: t.Issued, Received: t.Received, Valid: t.Valid, Invalid: t.Invalid}, t.Votes)
		}
	}
	return nil
}
