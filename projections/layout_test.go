package projections

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

// TestOpenRebuildsAStoreOfAnOlderLayout: projections written by a tally of
// another layout (here: the v1 layout, which stored no layout key) are not
// read as if they were current: Open reports ErrCorrupt, and OpenOrReset
// sets them aside so that the server folds the stream again.
func TestOpenRebuildsAStoreOfAnOlderLayout(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "examples", "longbien", "election.json"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := tally.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "p")
	s, err := Open(dir, e)
	if err != nil {
		t.Fatal(err)
	}
	// What a v1 store looks like: the same election, no layout key.
	if err := s.db.Delete(keyLayout, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(dir, e); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a v1-layout store: %v, want ErrCorrupt", err)
	}
	s, rec, err := OpenOrReset(dir, e)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !rec.Fresh() || rec.SetAside == "" {
		t.Fatalf("OpenOrReset: %+v, want a fresh store with the old one set aside", rec)
	}
}

// TestOpenRebuildsAStoreOfLayout2: a store of layout 2 (area records with
// the votes of every unit of the area) is rebuilt too.
func TestOpenRebuildsAStoreOfLayout2(t *testing.T) {
	e := loadExample(t, "longbien")
	dir := filepath.Join(t.TempDir(), "p")
	s, err := Open(dir, e)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set(keyLayout, []byte{2}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(dir, e); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a layout-2 store: %v, want ErrCorrupt", err)
	}
}

// TestAreaRecordsHoldOnlyStraddlingUnits checks the layout's invariant on
// both examples (2021 and 2026): an area's record holds the votes of the
// units straddling its border and no other, and the area's result, which
// adds back the votes of the units lying wholly in it from their own
// records, equals the sum of its stations' current minutes, computed here
// from the station records alone.
func TestAreaRecordsHoldOnlyStraddlingUnits(t *testing.T) {
	for _, name := range []string{"longbien", "hanoi-2026"} {
		t.Run(name, func(t *testing.T) {
			e := loadExample(t, name)
			s, err := Open(filepath.Join(t.TempDir(), "p"), e)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			data, err := os.ReadFile(filepath.Join("..", "examples", name, "minutes.ndjson"))
			if err != nil {
				t.Fatal(err)
			}
			applied := 0
			for i, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
				var head struct{ Contest, Station string }
				if err := json.Unmarshal(line, &head); err != nil {
					t.Fatal(err)
				}
				st, _ := e.StationIndex(head.Station)
				o, err := s.Fold().Apply(&Msg{Seq: uint64(i + 1), Subject: events.Subject(e, st, head.Contest), Data: line})
				if err != nil {
					t.Fatal(err)
				}
				if o == Applied {
					applied++
				}
			}
			if applied == 0 {
				t.Fatal("no minutes applied")
			}
			if _, err := s.Fold().Commit(); err != nil {
				t.Fatal(err)
			}
			straddled, whole := 0, 0
			for c := range e.Contests {
				for _, a32 := range e.ContestAreas(c) {
					a := int(a32)
					// The straddling units, from the stations: a unit with a
					// station outside the area.
					n := 0
					if e.AreaHasVotes(c, a) {
						for _, u := range e.AreaUnits(c, a) {
							for _, st := range e.UnitStations(c, int(u)) {
								if !slices.Contains(e.StationAreas(int(st)), a) {
									n += len(e.Contests[c].Units[u].Candidates)
									straddled++
									break
								}
							}
						}
					}
					val, closer, err := s.db.Get(appendAreaKey(nil, e, c, a))
					if err != nil {
						t.Fatalf("%s/%s: %v", e.Contests[c].ID, e.Areas[a].ID, err)
					}
					var rec aggregate
					err = decodeAggregate(val, &rec)
					closer.Close()
					if err != nil {
						t.Fatal(err)
					}
					if len(rec.votes) != n {
						t.Errorf("%s/%s: record holds %d votes, want %d (the straddling units' candidates)", e.Contests[c].ID, e.Areas[a].ID, len(rec.votes), n)
					}
					if !e.AreaHasVotes(c, a) {
						continue
					}
					// The area's votes from its stations' records.
					want := map[string]int64{}
					for _, u := range e.AreaUnits(c, a) {
						if !slices.ContainsFunc(e.UnitStations(c, int(u)), func(st int32) bool { return !slices.Contains(e.StationAreas(int(st)), a) }) {
							whole++
						}
						for _, cand := range e.Contests[c].Units[u].Candidates {
							want[cand.ID] = 0
						}
					}
					view, err := s.View()
					if err != nil {
						t.Fatal(err)
					}
					for _, st := range e.Voters(c) {
						if !slices.Contains(e.StationAreas(int(st)), a) {
							continue
						}
						r, err := view.Station(e.Contests[c].ID, e.Stations[st].ID)
						if err != nil {
							t.Fatal(err)
						}
						if r.Reporting() {
							for k, cand := range e.Contests[c].Units[e.StationUnit(c, int(st))].Candidates {
								want[cand.ID] += r.Votes[k]
							}
						}
					}
					view.Close()
					got, err := s.AreaResult(e.Contests[c].ID, e.Areas[a].ID)
					if err != nil {
						t.Fatal(err)
					}
					if !maps.Equal(got.Votes, want) {
						t.Errorf("%s/%s: votes %v, want %v", e.Contests[c].ID, e.Areas[a].ID, got.Votes, want)
					}
				}
			}
			if straddled == 0 || whole == 0 {
				t.Fatalf("the example has %d straddling and %d whole units in areas with votes: it checks nothing", straddled, whole)
			}
		})
	}
}

func loadExample(t *testing.T, name string) *tally.Election {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "examples", name, "election.json"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := tally.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestRecordMinutesRoundTrip: a station record's form of the minutes
// (candidates by position, no ids the key already gives) decodes to the
// same minutes, byte for byte in canonical form, for every minutes of
// both examples, plus ones that leave candidates out, list them out of
// order and carry a reason and a signature.
func TestRecordMinutesRoundTrip(t *testing.T) {
	for _, name := range []string{"longbien", "hanoi-2026"} {
		e := loadExample(t, name)
		data, err := os.ReadFile(filepath.Join("..", "examples", name, "minutes.ndjson"))
		if err != nil {
			t.Fatal(err)
		}
		var adm events.Admission
		var idx []voteAt
		n := 0
		for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
			var head struct{ Contest, Station string }
			if err := json.Unmarshal(line, &head); err != nil {
				t.Fatal(err)
			}
			st, _ := e.StationIndex(head.Station)
			events.Admit(e, events.Subject(e, st, head.Contest), line, &adm)
			if len(adm.Violations) > 0 {
				continue
			}
			variants := []tally.Minutes{adm.Minutes}
			if m := adm.Minutes; len(m.Votes) > 1 && m.Status == tally.Partial {
				m.Votes = slices.Clone(m.Votes[1:]) // a candidate left out
				slices.Reverse(m.Votes)
				m.Reason, m.Signature = "đếm lại", "c2ln"
				variants = append(variants, m)
			}
			for _, m := range variants {
				want := events.AppendBinary(nil, &m)
				var b []byte
				b, idx = appendMinutes(nil, e, adm.Resolved.Contest, adm.Resolved.Unit, &m, idx)
				var got tally.Minutes
				if err := decodeMinutes(b, e, adm.Resolved.Contest, st, &got); err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				if g := events.AppendBinary(nil, &got); !bytes.Equal(g, want) {
					t.Fatalf("%s: decoded to %+v, want %+v", line, got, m)
				}
				if len(b) >= len(want) {
					t.Errorf("%s: record form %d bytes, canonical %d", line, len(b), len(want))
				}
				n++
			}
		}
		if n == 0 {
			t.Fatalf("%s: no minutes checked", name)
		}
	}
}
