package projections

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tallyvn/tally/tally"
)

// ErrElectionMismatch is returned by Open when the store was built from a
// different election file.
var ErrElectionMismatch = errors.New("the projections were built for a different election file")

// Store holds the projections of one election in Pebble. Its query methods
// are safe for concurrent use with each other and with the Fold.
type Store struct {
	e     *tally.Election
	db    *pebble.DB
	fold  *Fold
	watch corruptionWatch
	// orders caches each area's vote order for AreaResult (key: contest ×
	// len(Areas) + area).
	orders sync.Map
}

// Open opens (creating if needed) the store in dir for election e, checks
// every table (see verify) and loads the fold state from it. Damaged
// projections are reported as ErrCorrupt (see OpenOrReset).
func Open(dir string, e *tally.Election) (*Store, error) {
	return open(dir, e, pebbleOptions())
}

// open is Open with Pebble options opts.
func open(dir string, e *tally.Election, opts *pebble.Options) (*Store, error) {
	s := &Store{e: e}
	opts.EventListener = s.watch.listener()
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open projections %s: %w", dir, corruptOpenErr(err))
	}
	s.db = db
	if err := s.verify(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open projections %s: %w", dir, err)
	}
	if err := s.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open projections %s: %w", dir, err)
	}
	return s, nil
}

// pebbleOptions tunes Pebble for the fold's write pattern: station records
// overwritten many times a night, append-only history, a few hot
// aggregates. Large memtables absorb the overwrites before they reach disk,
// so flushes and compactions write far less.
func pebbleOptions() *pebble.Options {
	return &pebble.Options{
		Logger:                      quietLogger{},
		MemTableSize:                64 << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		LBaseMaxBytes:               256 << 20,
	}
}

// mismatch describes a store built for another election file: the ids
// when they differ, else that the same id's file changed.
func (s *Store) mismatch() error {
	const cure = "run tally rebuild to rebuild the projections from the stream for this file, or give the election file they were built with"
	old, closer, err := s.db.Get(keyElectionID)
	if err != nil { // a store from before the id was kept
		return fmt.Errorf("%w than %q (%s)", ErrElectionMismatch, s.e.ID, cure)
	}
	oldID := string(old)
	closer.Close()
	if oldID != s.e.ID {
		return fmt.Errorf("%w: they hold election %q, the file given is election %q (%s)", ErrElectionMismatch, oldID, s.e.ID, cure)
	}
	return fmt.Errorf("%w: both are election %q, but the file's content changed since (%s)", ErrElectionMismatch, s.e.ID, cure)
}

// Fingerprint identifies an election file's content.
func Fingerprint(e *tally.Election) []byte {
	b, _ := json.Marshal(e) // exported fields only: the file as read
	sum := sha256.Sum256(b)
	return sum[:]
}

func (s *Store) load() error {
	fp := Fingerprint(s.e)
	got, closer, err := s.db.Get(keyFingerprint)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		b := s.db.NewBatch()
		_ = b.Set(keyFingerprint, fp, nil)
		_ = b.Set(keyLayout, []byte{layoutVersion}, nil)
		_ = b.Set(keyElectionID, []byte(s.e.ID), nil)
		err := b.Commit(pebble.Sync)
		b.Close()
		if err != nil {
			return fmt.Errorf("write election fingerprint: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read election fingerprint: %w", err)
	default:
		same := bytes.Equal(got, fp)
		closer.Close()
		if !same {
			return s.mismatch()
		}
		// Same election, older layout: the records cannot be read as they
		// are, but the stream holds everything. ErrCorrupt makes
		// OpenOrReset set them aside and the server fold them again.
		v, closer, err := s.db.Get(keyLayout)
		layout := byte(1)
		switch {
		case err == nil:
			if len(v) == 1 {
				layout = v[0]
			} else {
				layout = 0
			}
			closer.Close()
		case !errors.Is(err, pebble.ErrNotFound):
			return fmt.Errorf("read layout version: %w", err)
		}
		if layout != layoutVersion {
			return fmt.Errorf("%w: projections written in layout %d, this tally reads layout %d: rebuild them from the stream", ErrCorrupt, layout, layoutVersion)
		}
	}

	f := newFold(s.e, s.db)
	if meta, err := s.meta(s.db); err != nil {
		return err
	} else {
		f.meta = meta
	}
	// Rebuild the in-memory state from the stations' current minutes; the
	// aggregates are recomputed rather than read.
	iter, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixStation, '/'}, UpperBound: []byte{prefixStation, '/' + 1}})
	if err != nil {
		return err
	}
	defer iter.Close()
	var m tally.Minutes
	var r tally.Resolved
	for iter.First(); iter.Valid(); iter.Next() {
		key := iter.Key()
		contest, station, ok := bytes.Cut(key[2:], []byte{0})
		if !ok {
			return fmt.Errorf("%w: station record key %q is malformed", ErrCorrupt, key)
		}
		c, okC := s.e.ContestIndex(string(contest))
		st, okS := s.e.StationIndex(string(station))
		if !okC || !okS {
			return fmt.Errorf("station record %q names no station of this election", key)
		}
		v, okV := s.e.Voter(c, st)
		if !okV {
			return fmt.Errorf("%w: station record %q: the station does not vote in the contest", ErrCorrupt, key)
		}
		payload, hist, err := decodeRecord(iter.Value(), nil)
		if err != nil {
			return fmt.Errorf("%w: station record %q: %w", ErrCorrupt, key, err)
		}
		cur := &f.ledger.stations[c][v]
		cur.hist = hist
		if len(payload) == 0 {
			continue // only rejected messages so far
		}
		if err := decodeMinutes(payload, s.e, c, st, &m); err != nil {
			return fmt.Errorf("%w: station record %q: %w", ErrCorrupt, key, err)
		}
		if viol := s.e.Check(&m, 0, &r, nil); len(viol) > 0 || r.Contest != c || r.Station != st {
			return fmt.Errorf("station record %q no longer valid for this election: %v", key, viol)
		}
		cur.version, cur.status, cur.counts = r.Version, r.Status, r.Counts
		cur.payload = bytes.Clone(payload)
		copy(cur.votes, r.Votes)
		// The station's change from nothing to its current minutes.
		ch := change{contest: c, voter: v, old: &contribution{}, new: &cur.contribution}
		f.units.apply(&ch)
		f.areas.apply(&ch)
	}
	if err := iter.Error(); err != nil {
		return fmt.Errorf("%w: read station records: %w", ErrCorrupt, err)
	}
	f.units.decide(f.areas.unitDecided)
	f.units.clean()
	f.areas.clean()
	s.fold = f
	return nil
}

type reader interface {
	Get(key []byte) ([]byte, io.Closer, error)
}

func (s *Store) meta(r reader) (Meta, error) {
	v, closer, err := r.Get(keyMeta)
	if errors.Is(err, pebble.ErrNotFound) {
		return Meta{}, nil
	}
	if err != nil {
		return Meta{}, fmt.Errorf("read checkpoint: %w", err)
	}
	defer closer.Close()
	m, err := decodeMeta(v)
	if err != nil {
		return Meta{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return m, nil
}

// Fold returns the store's fold. Only one goroutine may use it.
func (s *Store) Fold() *Fold { return s.fold }

// Election returns the election the store holds.
func (s *Store) Election() *tally.Election { return s.e }

// Meta returns the committed checkpoint and counters.
func (s *Store) Meta() (Meta, error) { return s.meta(s.db) }

// Close closes the store. Uncommitted fold work is discarded.
func (s *Store) Close() error {
	if s.fold != nil {
		s.fold.stage.discard()
	}
	return s.db.Close()
}

// Metrics returns Pebble's metrics, for export by the caller.
func (s *Store) Metrics() *pebble.Metrics { return s.db.Metrics() }

// Dump calls fn for every key and value in key order (for tests and audits
// that compare stores byte for byte).
func (s *Store) Dump(fn func(key, value []byte) error) error {
	iter, err := s.db.NewIter(nil)
	if err != nil {
		return err
	}
	defer iter.Close()
	for iter.First(); iter.Valid(); iter.Next() {
		if err := fn(iter.Key(), iter.Value()); err != nil {
			return err
		}
	}
	return iter.Error()
}

// quietLogger drops Pebble's informational logs and keeps errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	pebble.DefaultLogger.Errorf(format, args...)
}
func (quietLogger) Fatalf(format string, args ...any) {
	pebble.DefaultLogger.Fatalf(format, args...)
}
