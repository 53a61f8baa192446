package tally

import (
	"strconv"
	"testing"
)

// TestStationTable: every station is found at its index, unknown ids are
// not, an id added twice is refused, and a slot whose 32 bits of hash
// match but whose station is another (two ids of one fingerprint) is
// passed over, by find and by WarmCheck's candidate (the caller compares).
func TestStationTable(t *testing.T) {
	stations := make([]Station, 20_000)
	for i := range stations {
		stations[i].ID = "S" + strconv.Itoa(i*7)
	}
	tb := newStationTable(len(stations))
	for i := range stations {
		if !tb.add(stations, stations[i].ID, i) {
			t.Fatalf("add %s refused", stations[i].ID)
		}
	}
	for i := range stations {
		if got, ok := tb.find(stations, stations[i].ID); !ok || got != i {
			t.Fatalf("find %s: %d %v, want %d", stations[i].ID, got, ok, i)
		}
		if tb.add(stations, stations[i].ID, i+1) {
			t.Fatalf("add %s twice: accepted", stations[i].ID)
		}
	}
	for _, id := range []string{"", "S1", "S6", "X0", "S140000"} {
		if got, ok := tb.find(stations, id); ok {
			t.Fatalf("find %q: %d, want none", id, got)
		}
	}

	// A station whose hash shares id's 32 bits, in id's first slot.
	small := []Station{{ID: "A"}, {ID: "B"}}
	tb = newStationTable(len(small))
	h := tb.hash("A")
	tb.slots[h&tb.mask] = h&^0xffffffff | 2 // claims to be "A", is "B"
	if !tb.add(small, "A", 0) {
		t.Fatal("add A refused")
	}
	if got, ok := tb.find(small, "A"); !ok || got != 0 {
		t.Fatalf("find A past a slot of the same fingerprint: %d %v, want 0", got, ok)
	}
	if c := tb.candidate(h); c != 1 {
		t.Fatalf("candidate: %d, want 1 (the first slot matching)", c)
	}
}
