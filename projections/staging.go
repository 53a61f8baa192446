package projections

import (
	"cmp"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tallyvn/tally/tally"
)

// staging is the last step of the fold: the Pebble batch of the next
// commit, into which the ledger and the sinks stage their records (see
// the package doc's key layout), and the key order they stage them in.
// The Fold adds the checkpoint and detaches the batch at EndBatch.
type staging struct {
	db    *pebble.DB
	batch *pebble.Batch // nil when nothing is pending
	// spare holds committed batches, reset, for open to reuse: a batch of
	// 10,000 minutes is megabytes, which a new batch would allocate again
	// (Pebble's own pool drops buffers above 1 MiB). CommitBatch, on
	// another goroutine, puts them back.
	spare chan *pebble.Batch
	// hint is the initial size of the next batch.
	hint int
	// rank orders ids as their keys sort, so that records are staged in
	// key order by comparing integers.
	rank ranks
	// Scratch space for keys and values, reused for every record.
	key, val []byte
}

func newStaging(e *tally.Election, db *pebble.DB) staging {
	return staging{db: db, hint: 1 << 10, rank: newRanks(e), spare: make(chan *pebble.Batch, spareBatches)}
}

// spareBatches is how many committed batches a staging keeps for reuse:
// one being filled and one committing at a time (Aggregator's pipeline).
const spareBatches = 2

// maxBatchRetained is the largest batch buffer kept for reuse, the bound
// of the size hint.
const maxBatchRetained = 64 << 20

// open starts a batch if none is pending: a spare one if there is one.
func (st *staging) open() {
	if st.batch != nil {
		return
	}
	select {
	case st.batch = <-st.spare:
	default:
		// Sized like the last one: a batch of thousands of minutes would
		// otherwise grow from 1 KiB by doubling, copying itself each time.
		st.batch = st.db.NewBatch(pebble.WithInitialSizeBytes(st.hint), pebble.WithMaxRetainedSizeBytes(maxBatchRetained))
	}
}

// recycle takes back a batch once committed (or one never committed), for
// open to reuse. It may be called from another goroutine than open.
func (st *staging) recycle(b *pebble.Batch) {
	b.Reset()
	select {
	case st.spare <- b:
	default:
		b.Close()
	}
}

// detach returns the pending batch, which the caller now owns, and
// remembers its size for the next one.
func (st *staging) detach() *pebble.Batch {
	b := st.batch
	st.hint = min(max(b.Len(), 1<<10), maxBatchRetained)
	st.batch = nil
	return b
}

// discard drops the pending batch, if any, and the spare ones.
func (st *staging) discard() {
	if st.batch != nil {
		st.batch.Close()
		st.batch = nil
	}
	for {
		select {
		case b := <-st.spare:
			b.Close()
		default:
			return
		}
	}
}

// Records are staged in key order: the memtable inserts them with fewer
// cache misses than in the order stations sent them.

func (st *staging) sortStations(refs []stationRef) {
	slices.SortFunc(refs, func(x, y stationRef) int { return cmp.Compare(st.rank.record(x), st.rank.record(y)) })
}

func (st *staging) sortRefs(refs []Ref) {
	slices.SortFunc(refs, func(x, y Ref) int { return cmp.Compare(st.rank.ref(x), st.rank.ref(y)) })
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
