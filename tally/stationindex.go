package tally

import "hash/maphash"

// stationTable finds a station's index by its id: open addressing with
// linear probing over slots that each hold 32 bits of the id's hash and
// the index plus one (0: empty). Unlike a map it lets WarmCheck split a
// lookup into stages (the slot, then the station's entry, then its id's
// bytes) and take each stage for many ids at once.
type stationTable struct {
	seed  maphash.Seed
	slots []uint64
	mask  uint64
}

func newStationTable(n int) stationTable {
	size := 16
	for size < 2*n {
		size *= 2
	}
	return stationTable{seed: maphash.MakeSeed(), slots: make([]uint64, size), mask: uint64(size - 1)}
}

func (t *stationTable) hash(id string) uint64 { return maphash.String(t.seed, id) }

// add records station i under id, or reports false if id is there
// already.
func (t *stationTable) add(stations []Station, id string, i int) bool {
	h := t.hash(id)
	for p := h & t.mask; ; p = (p + 1) & t.mask {
		switch sl := t.slots[p]; {
		case sl == 0:
			t.slots[p] = h&^0xffffffff | uint64(i+1)
			return true
		case sl>>32 == h>>32 && stations[uint32(sl)-1].ID == id:
			return false
		}
	}
}

// find returns the index of station id.
func (t *stationTable) find(stations []Station, id string) (int, bool) {
	return t.findFrom(stations, id, t.hash(id))
}

// findFrom is find with id's hash h.
func (t *stationTable) findFrom(stations []Station, id string, h uint64) (int, bool) {
	for p := h & t.mask; ; p = (p + 1) & t.mask {
		sl := t.slots[p]
		if sl == 0 {
			return -1, false
		}
		if sl>>32 == h>>32 {
			if i := int(uint32(sl)) - 1; stations[i].ID == id {
				return i, true
			}
		}
	}
}

// candidate returns the index of the first station whose hash matches h's
// (it is id's if id is there; the caller compares ids), -1 if none.
func (t *stationTable) candidate(h uint64) int {
	for p := h & t.mask; ; p = (p + 1) & t.mask {
		sl := t.slots[p]
		if sl == 0 {
			return -1
		}
		if sl>>32 == h>>32 {
			return int(uint32(sl)) - 1
		}
	}
}
