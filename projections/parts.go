package projections

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

// PartElections returns the election each of n partitions folds: e itself
// when n is 1, else the part of e in the provinces of each partition
// (tally.Election.Restrict, events.Partition), partition p at index p, so
// that a partition's fold state is sized by its own stations. REQUIRES: e
// is partitionable (events.CheckPartitionable) when n > 1.
func PartElections(e *tally.Election, n int) ([]*tally.Election, error) {
	if n <= 1 {
		return []*tally.Election{e}, nil
	}
	provs := make([][]string, n)
	for _, prov := range events.Provinces(e) {
		p := events.Partition(prov, n)
		provs[p] = append(provs[p], prov)
	}
	out := make([]*tally.Election, n)
	for p := range out {
		part, err := e.Restrict(provs[p])
		if err != nil {
			return nil, fmt.Errorf("partition %d: %w", p, err)
		}
		out[p] = part
	}
	return out, nil
}

// EachPartition runs f for each of n partitions, all in parallel, and
// waits for them. It returns the error of the first partition, in
// partition order, that failed: as f returned it when n is 1, else
// prefixed with "partition p: ".
func EachPartition(n int, f func(p int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for p := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[p] = f(p)
		}()
	}
	wg.Wait()
	for p, err := range errs {
		if err != nil && n > 1 {
			return fmt.Errorf("partition %d: %w", p, err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// PartitionDir returns the directory of partition p's projections under
// the data directory: DataDir/projections when n is 1 (as before
// partitions existed), else DataDir/projections-p<p>.
func PartitionDir(dataDir string, p, n int) string {
	if n <= 1 {
		return filepath.Join(dataDir, "projections")
	}
	return filepath.Join(dataDir, "projections-p"+strconv.Itoa(p))
}

// ErrPartitionDirs is returned by CheckPartitionDirs when the data
// directory holds the projections of another number of partitions.
var ErrPartitionDirs = errors.New("projections: the data directory holds projections of another number of partitions")

// CheckPartitionDirs refuses a data directory holding projections of
// another number of partitions than n: DataDir/projections with n > 1, or
// DataDir/projections-p<k> with n = 1 or k >= n. (The streams refuse a
// start with another n first; this catches a data directory moved to
// other streams.)
func CheckPartitionDirs(dataDir string, n int) error {
	var found []string
	if n > 1 {
		if empty, err := isEmptyDir(filepath.Join(dataDir, "projections")); err == nil && !empty {
			found = append(found, "projections (--partitions 1)")
		}
	}
	matches, err := filepath.Glob(filepath.Join(dataDir, "projections-p*"))
	if err != nil {
		return fmt.Errorf("list %s: %w", dataDir, err)
	}
	for _, m := range matches {
		k, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(m), "projections-p"))
		if err != nil {
			continue // projections-p3.rebuilding, a marker
		}
		if fi, err := os.Stat(m); err != nil || !fi.IsDir() {
			continue
		}
		if n <= 1 || k >= n {
			found = append(found, filepath.Base(m))
		}
	}
	if len(found) > 0 {
		return fmt.Errorf("%w: %s holds %s, this start asks for --partitions %d; give the data directory of these streams",
			ErrPartitionDirs, dataDir, strings.Join(found, ", "), n)
	}
	return nil
}

// Parts is an election's projections in partitions: one Store per
// partition, each holding the part of the election in its provinces, and
// queries routed to the store of the province they concern (a unit's or
// an area's, a station's). With one partition it is that one store.
//
// Results read through Parts with n > 1 carry AppliedPositions, the
// checkpoint of every partition, and an AppliedSeq that is their sum
// (CONTRACT §6 v2): the result's own partition's position is the one its
// figures reflect (read from the same snapshot); the others' are their
// checkpoints at the time of the read, which the result does not depend
// on. Safe for concurrent use, as Store is.
type Parts struct {
	e      *tally.Election
	stores []*Store
	// areaPart, stationPart and unitPart[c] give the partition of an area,
	// a station, a unit of contest c (by index in e).
	areaPart, stationPart []int
	unitPart              [][]int
	// wholeArea[p] and wholeUnit[p][c] map partition p's area and unit
	// indexes (in its part of the election) to the whole election's.
	wholeArea [][]int32
	wholeUnit [][][]int32
}

// NewParts returns the projections of election e in stores, partition p
// at index p, each opened with the part PartElections gives.
func NewParts(e *tally.Election, stores []*Store) *Parts {
	n := len(stores)
	ps := &Parts{e: e, stores: stores}
	if n <= 1 {
		return ps
	}
	ps.areaPart = make([]int, len(e.Areas))
	for a := range e.Areas {
		top := a
		for e.AreaParent(top) >= 0 {
			top = e.AreaParent(top)
		}
		ps.areaPart[a] = events.Partition(e.Areas[top].ID, n)
	}
	ps.stationPart = make([]int, len(e.Stations))
	for s := range e.Stations {
		ps.stationPart[s] = events.StationPartition(e, s, n)
	}
	ps.unitPart = make([][]int, len(e.Contests))
	for c := range e.Contests {
		ps.unitPart[c] = make([]int, len(e.Contests[c].Units))
		for u := range e.Contests[c].Units {
			switch st := e.UnitStations(c, u); {
			case e.UnitCouncil(c, u) >= 0:
				ps.unitPart[c][u] = ps.areaPart[e.UnitCouncil(c, u)]
			case len(st) > 0:
				ps.unitPart[c][u] = ps.stationPart[st[0]]
			default:
				ps.unitPart[c][u] = 0 // in every part (Restrict): any will do
			}
		}
	}
	ps.wholeArea = make([][]int32, n)
	ps.wholeUnit = make([][][]int32, n)
	for p, st := range stores {
		part := st.Election()
		ps.wholeArea[p] = make([]int32, len(part.Areas))
		for a := range part.Areas {
			i, _ := e.AreaIndex(part.Areas[a].ID)
			ps.wholeArea[p][a] = int32(i)
		}
		ps.wholeUnit[p] = make([][]int32, len(part.Contests))
		for c := range part.Contests {
			ps.wholeUnit[p][c] = make([]int32, len(part.Contests[c].Units))
			for u := range part.Contests[c].Units {
				_, i, _ := e.UnitIndex(part.Contests[c].Units[u].ID)
				ps.wholeUnit[p][c][u] = int32(i)
			}
		}
	}
	return ps
}

// WholeRef returns r, a result of partition p (as its fold's BatchInfo
// names it, by index in p's part of the election), by index in the whole
// election. REQUIRES: every partition's part keeps the contests of the
// whole election in order (PartElections).
func (ps *Parts) WholeRef(p int, r Ref) Ref {
	if ps.wholeArea == nil {
		return r
	}
	if r.Unit {
		r.Index = ps.wholeUnit[p][r.Contest][r.Index]
	} else {
		r.Index = ps.wholeArea[p][r.Index]
	}
	return r
}

// N returns the number of partitions.
func (ps *Parts) N() int { return len(ps.stores) }

// Store returns partition p's store.
func (ps *Parts) Store(p int) *Store { return ps.stores[p] }

// Election returns the whole election.
func (ps *Parts) Election() *tally.Election { return ps.e }

// AreaPartition returns the partition of area a (index in the whole
// election).
func (ps *Parts) AreaPartition(a int) int {
	if ps.areaPart == nil {
		return 0
	}
	return ps.areaPart[a]
}

// UnitPartition returns the partition of unit u of contest c.
func (ps *Parts) UnitPartition(c, u int) int {
	if ps.unitPart == nil {
		return 0
	}
	return ps.unitPart[c][u]
}

// StationPartition returns the partition of station s.
func (ps *Parts) StationPartition(s int) int {
	if ps.stationPart == nil {
		return 0
	}
	return ps.stationPart[s]
}

// Positions returns every partition's checkpoint, partition p at index p.
func (ps *Parts) Positions() ([]uint64, error) {
	out := make([]uint64, len(ps.stores))
	for p, st := range ps.stores {
		m, err := st.Meta()
		if err != nil {
			return nil, fmt.Errorf("partition %d: %w", p, err)
		}
		out[p] = m.Checkpoint
	}
	return out, nil
}

// Meta returns the partitions' metas summed: the checkpoint is the sum of
// the positions, for display only.
func (ps *Parts) Meta() (Meta, error) {
	var sum Meta
	for p, st := range ps.stores {
		m, err := st.Meta()
		if err != nil {
			return Meta{}, fmt.Errorf("partition %d: %w", p, err)
		}
		sum.Add(m)
	}
	return sum, nil
}

// Add adds o's position and counters to m's.
func (m *Meta) Add(o Meta) {
	m.Checkpoint += o.Checkpoint
	m.Applied += o.Applied
	m.Rejected += o.Rejected
	m.Duplicates += o.Duplicates
	m.Stale += o.Stale
}

// positions returns the partitions' checkpoints with partition p's taken
// as seq (what a result of p read), as AppliedPositions, and their sum.
func (ps *Parts) positions(p int, seq uint64) (map[int]uint64, uint64, error) {
	pos, err := ps.Positions()
	if err != nil {
		return nil, 0, err
	}
	pos[p] = seq
	out := make(map[int]uint64, len(pos))
	var sum uint64
	for p, s := range pos {
		out[p] = s
		sum += s
	}
	return out, sum, nil
}

// appendPositions appends pos as encoding/json encodes a map[int]uint64:
// keys as strings, in string order.
func appendPositions(dst []byte, pos map[int]uint64) []byte {
	keys := make([]string, 0, len(pos))
	for p := range pos {
		keys = append(keys, strconv.Itoa(p))
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, k...)
		dst = append(dst, '"', ':')
		p, _ := strconv.Atoi(k)
		dst = strconv.AppendUint(dst, pos[p], 10)
	}
	return append(dst, '}')
}

// areaPartition returns the partition of contest's result in area, or the
// error for unknown ids.
func (ps *Parts) areaPartition(contest, area string) (int, error) {
	if _, ok := ps.e.ContestIndex(contest); !ok {
		return 0, fmt.Errorf("%w %q", tally.ErrUnknownContest, contest)
	}
	a, ok := ps.e.AreaIndex(area)
	if !ok {
		return 0, fmt.Errorf("%w %q", tally.ErrUnknownArea, area)
	}
	return ps.areaPart[a], nil
}

func (ps *Parts) unitPartition(contest, unit string) (int, error) {
	c, ok := ps.e.ContestIndex(contest)
	if !ok {
		return 0, fmt.Errorf("%w %q", tally.ErrUnknownContest, contest)
	}
	uc, u, ok := ps.e.UnitIndex(unit)
	if !ok || uc != c {
		return 0, fmt.Errorf("%w %q in contest %q", tally.ErrUnknownUnit, unit, contest)
	}
	return ps.unitPart[c][u], nil
}

func (ps *Parts) stationPartition(contest, station string) (int, error) {
	if _, ok := ps.e.ContestIndex(contest); !ok {
		return 0, fmt.Errorf("%w %q", tally.ErrUnknownContest, contest)
	}
	s, ok := ps.e.StationIndex(station)
	if !ok {
		return 0, fmt.Errorf("%w %q", tally.ErrUnknownStation, station)
	}
	return ps.stationPart[s], nil
}

// AreaResult returns the result of contest in area from its partition.
func (ps *Parts) AreaResult(contest, area string) (*AreaResult, error) {
	if ps.N() == 1 {
		return ps.stores[0].AreaResult(contest, area)
	}
	p, err := ps.areaPartition(contest, area)
	if err != nil {
		return nil, err
	}
	res, err := ps.stores[p].AreaResult(contest, area)
	if err != nil {
		return nil, err
	}
	res.AppliedPositions, res.AppliedSeq, err = ps.positions(p, res.AppliedSeq)
	return res, err
}

// AppendAreaJSON appends the JSON of AreaResult(contest, area) to dst and
// returns its applied_seq, as Store.AppendAreaJSON does.
func (ps *Parts) AppendAreaJSON(dst []byte, contest, area string) ([]byte, uint64, error) {
	if ps.N() == 1 {
		return ps.stores[0].AppendAreaJSON(dst, contest, area)
	}
	p, err := ps.areaPartition(contest, area)
	if err != nil {
		return dst, 0, err
	}
	st := ps.stores[p]
	res, err := st.areaResult(st, contest, area, false)
	if err != nil {
		return dst, 0, err
	}
	if res.AppliedPositions, res.AppliedSeq, err = ps.positions(p, res.AppliedSeq); err != nil {
		return dst, 0, err
	}
	return res.AppendJSON(dst), res.AppliedSeq, nil
}

// UnitResult returns the result of unit in contest from its partition.
func (ps *Parts) UnitResult(contest, unit string) (*UnitResult, error) {
	if ps.N() == 1 {
		return ps.stores[0].UnitResult(contest, unit)
	}
	p, err := ps.unitPartition(contest, unit)
	if err != nil {
		return nil, err
	}
	res, err := ps.stores[p].UnitResult(contest, unit)
	if err != nil {
		return nil, err
	}
	res.AppliedPositions, res.AppliedSeq, err = ps.positions(p, res.AppliedSeq)
	return res, err
}

// Station returns a station's current minutes and history for contest
// from its partition. With n > 1 the history's seq are positions in the
// station's partition's stream, and AppliedSeq is the sum of the
// partitions' positions.
func (ps *Parts) Station(contest, station string) (*StationView, error) {
	if ps.N() == 1 {
		return ps.stores[0].Station(contest, station)
	}
	p, err := ps.stationPartition(contest, station)
	if err != nil {
		return nil, err
	}
	v, err := ps.stores[p].Station(contest, station)
	if err != nil {
		return nil, err
	}
	_, v.AppliedSeq, err = ps.positions(p, v.AppliedSeq)
	return v, err
}

// Rejections returns every rejected message, partition by partition, each
// in its stream's order; station, if not empty, keeps those naming it.
func (ps *Parts) Rejections(station string) ([]Rejection, error) {
	var out []Rejection
	for p, st := range ps.stores {
		r, err := st.Rejections(station)
		if err != nil {
			return nil, fmt.Errorf("partition %d: %w", p, err)
		}
		if out == nil {
			out = r
		} else {
			out = append(out, r...)
		}
	}
	return out, nil
}

// View opens a view of every partition: one snapshot per partition, each
// result reflecting its own partition's snapshot (see View).
func (ps *Parts) View() (*View, error) {
	if ps.N() == 1 {
		return ps.stores[0].View()
	}
	v := &View{ps: ps, sub: make([]*View, ps.N())}
	for p, st := range ps.stores {
		sv, err := st.View()
		if err != nil {
			v.Close()
			return nil, fmt.Errorf("partition %d: %w", p, err)
		}
		v.sub[p] = sv
		v.meta.Add(sv.meta)
	}
	return v, nil
}

// Close closes every partition's store.
func (ps *Parts) Close() error {
	var first error
	for _, st := range ps.stores {
		if st == nil {
			continue
		}
		if err := st.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
