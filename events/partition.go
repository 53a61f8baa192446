package events

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tallyvn/tally/tally"
)

// Partitions (CONTRACT §6 v2, --partitions N): with N > 1 the minutes are
// split into N streams by province, a station's top-level area. The
// partition of a province is
//
//	FNV-1a, 32 bits, of the province id's UTF-8 bytes, mod N
//
// (Go's hash/fnv New32a; anyone can recompute it). It depends only on the
// province's id, never on the order of the election file, so a province
// added to the file later does not move the others. Every electoral unit,
// council and area lies within one province ([CheckPartitionable]), so
// partitions share no aggregate and fold in parallel.
//
// With N = 1 the one stream is the v1 stream, [StreamName], capturing
// tally.<election>.minutes.>. With N > 1 partition p is the stream
// TALLY_<election>_P<p>, capturing tally.<election>.minutes.<province>.>
// for each province of the file in p, and carrying N and p in its
// metadata (tally_partitions, tally_partition), so that a start with
// another N is refused, saying what exists.

// Partition returns the partition (0 to n-1) of province's minutes.
func Partition(province string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(province))
	return int(h.Sum32() % uint32(n))
}

// StationPartition returns the partition of station s's minutes.
func StationPartition(e *tally.Election, s, n int) int { return Partition(Province(e, s), n) }

// PartitionStreamName returns the name of partition p's stream out of n:
// [StreamName] when n is 1.
func PartitionStreamName(electionID string, p, n int) string {
	if n <= 1 {
		return StreamName(electionID)
	}
	return StreamName(electionID) + "_P" + strconv.Itoa(p)
}

// Metadata keys of a partition stream.
const (
	MetaPartitions = "tally_partitions"
	MetaPartition  = "tally_partition"
)

// Provinces returns the ids of election e's top-level areas, ascending.
func Provinces(e *tally.Election) []string {
	var ps []string
	for a := range e.Areas {
		if e.AreaParent(a) < 0 {
			ps = append(ps, e.Areas[a].ID)
		}
	}
	slices.Sort(ps)
	return ps
}

// PartitionStreamConfigs returns the configurations of election e's n
// minutes streams, partition p at index p. A partition holding none of the
// file's provinces captures tally.<election>.partition.<p>, which no
// station publishes on (a stream needs a subject).
func PartitionStreamConfigs(e *tally.Election, n, replicas int) []jetstream.StreamConfig {
	if n <= 1 {
		return []jetstream.StreamConfig{StreamConfig(e.ID, replicas)}
	}
	subjects := make([][]string, n)
	for _, prov := range Provinces(e) {
		p := Partition(prov, n)
		subjects[p] = append(subjects[p], SubjectPrefix(e.ID)+prov+".>")
	}
	cfgs := make([]jetstream.StreamConfig, n)
	for p := range cfgs {
		cfg := StreamConfig(e.ID, replicas)
		cfg.Name = PartitionStreamName(e.ID, p, n)
		cfg.Description = fmt.Sprintf("tally count minutes of election %s, partition %d of %d (by province)", e.ID, p, n)
		cfg.Subjects = subjects[p]
		if len(cfg.Subjects) == 0 {
			cfg.Subjects = []string{"tally." + e.ID + ".partition." + strconv.Itoa(p)}
		}
		cfg.Metadata = map[string]string{MetaPartitions: strconv.Itoa(n), MetaPartition: strconv.Itoa(p)}
		cfgs[p] = cfg
	}
	return cfgs
}

// CheckPartitionable returns an error naming every electoral unit whose
// stations lie in more than one province, or outside its council's
// province: such a unit would be folded by several partitions, so an
// election with one cannot be split (--partitions N > 1).
func CheckPartitionable(e *tally.Election) error {
	var bad []string
	for c := range e.Contests {
		for u := range e.Contests[c].Units {
			prov := ""
			if a := e.UnitCouncil(c, u); a >= 0 {
				prov = topArea(e, a)
			}
			var seen []string
			for _, s := range e.UnitStations(c, u) {
				p := Province(e, int(s))
				if prov == "" {
					prov = p
				}
				if p != prov && !slices.Contains(seen, p) {
					seen = append(seen, p)
				}
			}
			if len(seen) > 0 {
				bad = append(bad, fmt.Sprintf("contest %s unit %s spans provinces %s and %s",
					e.Contests[c].ID, e.Contests[c].Units[u].ID, prov, strings.Join(seen, ", ")))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("election %s cannot be partitioned by province (rule: every unit lies within one province): %s", e.ID, strings.Join(bad, "; "))
	}
	return nil
}

// topArea returns the id of area a's top-level ancestor.
func topArea(e *tally.Election, a int) string {
	for e.AreaParent(a) >= 0 {
		a = e.AreaParent(a)
	}
	return e.Areas[a].ID
}
