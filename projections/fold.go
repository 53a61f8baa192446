package projections

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

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

// Ref names an aggregate: a unit or an area of a contest.
type Ref struct {
	Contest int32
	Unit    bool  // a unit if true, else an area
	Index   int32 // unit or area index (in Election.Units, Election.Areas)
}

// Fold applies stream messages to the projections, in four steps a reader
// can take in order:
//
//  1. admission (events.Admit): decode, subject, the rules that need no
//     history, seal;
//  2. the station ledger (ledger.go): current minutes and history per
//     station and contest; applied, stale, duplicate or conflict; an
//     applied message emits a change, the station's contribution before
//     and after;
//  3. the sinks (sinks.go): unit aggregates, then area aggregates with
//     their units summaries, each applying the change;
//  4. staging (staging.go): at EndBatch the ledger and the sinks stage
//     what changed, and the Fold adds the checkpoint, into one Pebble batch.
//
// It is not safe for concurrent use: one goroutine folds, while queries go
// through the Store.
type Fold struct {
	e      *tally.Election
	ledger ledger
	units  unitSink
	areas  areaSink
	stage  staging
	meta   Meta
	// broken is set when a commit failed; CommitBatch may run on another
	// goroutine than Apply, hence atomic.
	broken atomic.Bool
	adm    events.Admission // reused for every message
	// adms are ApplyAll's admissions, one per message of its window, and
	// warmed what it read ahead.
	adms   [applyWindow]events.Admission
	warmed int64
	win    struct {
		subjects [applyWindow]string
		datas    [applyWindow][]byte
		adms     [applyWindow]*events.Admission
		rs       [applyWindow]*tally.Resolved
	}
}

func newFold(e *tally.Election, db *pebble.DB) *Fold {
	return &Fold{e: e, ledger: newLedger(e), units: newUnitSink(e), areas: newAreaSink(e), stage: newStaging(e, db)}
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
	// 1. Admission.
	events.Admit(f.e, msg.Subject, msg.Data, &f.adm)
	return f.applyAdmitted(msg, &f.adm)
}

// applyWindow is how many messages ApplyAll admits before it applies them.
const applyWindow = 16

// ApplyAll folds msgs into the pending batch, in order, as Apply does one
// by one, and calls each (if not nil) with the outcome of msgs[i]; an
// error names the message it stopped at. It is Apply made for a fold that
// has many messages at hand (a rebuild, a fold catching up): it admits a
// window of them, reads the election's entries and the fold's state they
// concern stage by stage across the window, and then applies them one by
// one. The cache misses of a stage overlap instead of following one
// another: about twice as fast as Apply on a national night
// (BenchmarkNationalApply).
func (f *Fold) ApplyAll(msgs []Msg, each func(i int, o Outcome)) error {
	for from := 0; from < len(msgs); from += applyWindow {
		w := msgs[from:min(from+applyWindow, len(msgs))]
		if f.broken.Load() {
			return ErrBroken
		}
		// 1. Admission, of every message above the checkpoint (which
		// only rises: one not admitted here is Skipped below).
		subjects, datas, adms := f.win.subjects[:0], f.win.datas[:0], f.win.adms[:0]
		for j := range w {
			if w[j].Seq > f.meta.Checkpoint {
				subjects, datas, adms = append(subjects, w[j].Subject), append(datas, w[j].Data), append(adms, &f.adms[j])
			}
		}
		events.AdmitAll(f.e, subjects, datas, adms)
		// The state each admitted message will change, read together.
		rs := f.win.rs[:0]
		for j := range w {
			if w[j].Seq > f.meta.Checkpoint && len(f.adms[j].Violations) == 0 {
				rs = append(rs, &f.adms[j].Resolved)
			}
		}
		f.warmed += f.warm(rs)
		for j := range w {
			o := Skipped
			if w[j].Seq > f.meta.Checkpoint {
				var err error
				if o, err = f.applyAdmitted(&w[j], &f.adms[j]); err != nil {
					return fmt.Errorf("fold seq %d: %w", w[j].Seq, err)
				}
			}
			if each != nil {
				each(from+j, o)
			}
		}
	}
	return nil
}

// warm reads the ledger entries, the unit aggregates and the area
// aggregates the admitted minutes rs will change, so that they are in the
// cache when applyAdmitted needs them. It reads them stage by stage across
// all of rs (an entry, then what it points to), so that the cache misses of
// a stage overlap. It returns what it read, kept so that the reads are not
// dropped.
func (f *Fold) warm(rs []*tally.Resolved) int64 {
	var x int64
	for _, r := range rs {
		cur := &f.ledger.stations[r.Contest][r.Voter]
		x += cur.version + int64(len(cur.hist)+len(cur.payload))
	}
	for _, r := range rs {
		cur := &f.ledger.stations[r.Contest][r.Voter]
		if len(cur.payload) > 0 {
			x += int64(cur.payload[0])
		}
		if len(cur.votes) > 0 {
			x += cur.votes[0]
		}
		if len(cur.hist) > 0 {
			x += cur.hist[len(cur.hist)-1].version
		}
		if va := f.e.VoterAreas(r.Contest, r.Voter); len(va) > 0 {
			x += int64(va[0])
		}
		x += int64(len(f.units.units[r.Contest][r.Unit].votes))
	}
	for _, r := range rs {
		if u := &f.units.units[r.Contest][r.Unit]; len(u.votes) > 0 {
			x += u.votes[0]
		}
		for _, la := range f.e.VoterAreas(r.Contest, r.Voter) {
			x += f.areas.areas[r.Contest][la].final
		}
	}
	return x
}

// applyAdmitted folds msg, admitted into adm, into the pending batch.
// REQUIRES: msg.Seq is above the checkpoint.
func (f *Fold) applyAdmitted(msg *Msg, adm *events.Admission) (Outcome, error) {
	f.stage.open()
	f.meta.Checkpoint = msg.Seq
	o := Rejected
	var ch *change
	// 2. The ledger (which may find a conflict: a rejection).
	if len(adm.Violations) == 0 {
		o, ch = f.ledger.record(msg.Seq, adm, &f.stage)
	}
	switch o {
	case Rejected:
		if err := f.ledger.reject(msg, adm, &f.stage); err != nil {
			return Skipped, err
		}
		f.meta.Rejected++
	case Stale:
		f.meta.Stale++
	case Duplicate:
		f.meta.Duplicates++
	case Applied:
		f.meta.Applied++
		// 3. The sinks.
		f.units.apply(ch)
		f.areas.apply(ch)
	}
	return o, nil
}

// Pending reports whether Apply staged anything since the last EndBatch.
func (f *Fold) Pending() bool { return f.stage.batch != nil }

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
	if f.stage.batch == nil {
		return nil, nil
	}
	b, err := f.endBatch()
	if err != nil {
		f.broken.Store(true)
		return nil, err
	}
	return b, nil
}

func (f *Fold) endBatch() (*Batch, error) {
	st := &f.stage
	if err := f.ledger.stage(st); err != nil {
		return nil, err
	}
	// Units first: their new decisions move counts in the areas' summaries.
	f.units.decide(f.areas.unitDecided)
	// Areas' keys ('a') sort before units' ('u').
	areas, err := f.areas.stage(st)
	if err != nil {
		return nil, err
	}
	changed := slices.Clone(areas)
	units, err := f.units.stage(st)
	if err != nil {
		return nil, err
	}
	changed = append(changed, units...)
	st.val = f.meta.append(st.val[:0])
	if err := st.batch.Set(keyMeta, st.val, nil); err != nil {
		return nil, fmt.Errorf("stage checkpoint: %w", err)
	}
	b := &Batch{Meta: f.meta, Changed: changed, Keys: st.batch.Count(), Bytes: st.batch.Len()}
	b.batch = st.detach()
	return b, nil
}

// CommitBatch writes an ended batch in one fsynced Pebble commit. It may be
// called from another goroutine than Apply and EndBatch, one batch at a time, in
// the order they were ended. If the commit fails the Fold is broken: its memory is ahead
// of the store, and every later call returns ErrBroken.
//
// The batch goes back to the staging for reuse once committed; s must not
// be committed twice.
func (f *Fold) CommitBatch(s *Batch) error { return f.commitBatch(s, pebble.Sync) }

// commitBatch is CommitBatch with Pebble's write options wo: fsynced or
// not.
func (f *Fold) commitBatch(s *Batch, wo *pebble.WriteOptions) error {
	b := s.batch
	if b == nil {
		return fmt.Errorf("commit fold batch at seq %d: already committed", s.Meta.Checkpoint)
	}
	s.batch = nil
	if f.broken.Load() {
		b.Close()
		return ErrBroken
	}
	if err := b.Commit(wo); err != nil {
		b.Close() // not reused: Pebble may still hold it after an error
		f.broken.Store(true)
		return fmt.Errorf("commit fold batch at seq %d: %w", s.Meta.Checkpoint, err)
	}
	f.stage.recycle(b)
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
