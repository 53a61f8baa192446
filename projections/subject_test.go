package projections_test

import (
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
)

// TestV1SubjectsStayReadable: a stream created before v2 holds minutes on
// tally.<election>.minutes.<district>.<ward>.<station>.<contest>; folding
// them gives the same results as the same minutes on v2 subjects
// (CONTRACT §7 v2), and a v1 subject naming another station is still
// rejected with rule subject.
func TestV1SubjectsStayReadable(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 7))
	fx := genElection(t, rng, 3, 4)
	ms := genMinutes(rng, fx)
	fold := func(name string, subject func(s int, contest string) string) *projections.Store {
		t.Helper()
		store, err := projections.Open(filepath.Join(t.TempDir(), name), fx.e)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		f := store.Fold()
		applied := 0
		for i := range ms {
			s, _ := fx.e.StationIndex(ms[i].Station)
			msg := projections.Msg{Seq: uint64(i + 1), Subject: subject(s, ms[i].Contest), Data: events.AppendBinary(nil, &ms[i]), Time: time.Unix(0, 0)}
			o, err := f.Apply(&msg)
			if err != nil {
				t.Fatal(err)
			}
			if o == projections.Applied {
				applied++
			}
		}
		if _, err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		if applied == 0 {
			t.Fatalf("%s: nothing applied: the comparison proves nothing", name)
		}
		return store
	}
	v2 := fold("v2", func(s int, contest string) string { return events.Subject(fx.e, s, contest) })
	v1 := func(s int, contest string) string {
		areas := fx.e.StationAreas(s)
		return events.SubjectPrefix(fx.e.ID) + "D." + fx.e.Areas[areas[0]].ID + "." + fx.e.Stations[s].ID + "." + contest
	}
	old := fold("v1", v1)
	for _, c := range fx.e.Contests {
		for _, a := range fx.e.Areas {
			want, err := v2.AreaResult(c.ID, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			got, err := old.AreaResult(c.ID, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			wj, _ := json.Marshal(want)
			gj, _ := json.Marshal(got)
			if string(wj) != string(gj) {
				t.Fatalf("area %s contest %s:\nv1 subjects %s\nv2 subjects %s", a.ID, c.ID, gj, wj)
			}
		}
	}
	// A v1 subject of another station: rule subject.
	m := ms[0]
	s, _ := fx.e.StationIndex(m.Station)
	other := (s + 1) % len(fx.e.Stations)
	msg := projections.Msg{Seq: uint64(len(ms) + 1), Subject: v1(other, m.Contest), Data: events.AppendBinary(nil, &m), Time: time.Unix(0, 0)}
	f := old.Fold()
	o, err := f.Apply(&msg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if o != projections.Rejected {
		t.Fatalf("minutes of %s on a v1 subject of %s: %v, want rejected", m.Station, fx.e.Stations[other].ID, o)
	}
	rej, err := old.Rejections(m.Station)
	if err != nil {
		t.Fatal(err)
	}
	if len(rej) != 1 || rej[0].SubjectStation != fx.e.Stations[other].ID || len(rej[0].Errors) == 0 || rej[0].Errors[0].Rule != "subject" {
		t.Fatalf("rejections %+v, want one, rule subject, subject station %s", rej, fx.e.Stations[other].ID)
	}
}
