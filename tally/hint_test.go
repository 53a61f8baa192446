package tally_test

import (
	"testing"

	"github.com/tallyvn/tally/bench/workload"
	"github.com/tallyvn/tally/tally"
)

// byName is Locate without a hint: the ids looked up.
func byName(e *tally.Election, contest, station string) (c, s, v int, okC, okS bool) {
	return e.Locate(tally.Hint{}, contest, station)
}

func TestHintLocatesWhatTheIdsName(t *testing.T) {
	e := mustParse(t, hanoiElection)
	if e.Fingerprint() == 0 {
		t.Fatal("a parsed file has no fingerprint")
	}
	if again := mustParse(t, hanoiElection); again.Fingerprint() != e.Fingerprint() {
		t.Fatal("the same file parsed twice has two fingerprints")
	}
	hints := 0
	for c := range e.Contests {
		for s := range e.Stations {
			contest, station := e.Contests[c].ID, e.Stations[s].ID
			h, ok := e.Hint(contest, station)
			_, voting := e.Voter(c, s)
			if ok != voting {
				t.Fatalf("Hint(%s, %s) ok = %v, the station votes in it: %v", contest, station, ok, voting)
			}
			if !ok {
				continue
			}
			hints++
			if !e.HintTaken(h, contest, station) {
				t.Fatalf("Locate does not take its own file's hint %+v for %s %s", h, contest, station)
			}
			gc, gs, gv, okC, okS := e.Locate(h, contest, station)
			wc, ws, wv, _, _ := byName(e, contest, station)
			if !okC || !okS || gc != wc || gs != ws || gv != wv {
				t.Fatalf("Locate(%+v, %s, %s) = %d %d %d; by name %d %d %d", h, contest, station, gc, gs, gv, wc, ws, wv)
			}
		}
	}
	if hints == 0 {
		t.Fatal("no hint at all")
	}
}

// TestHintNeverMisattributes: a hint naming another station or contest,
// from another file, or out of range is ignored; the ids decide.
func TestHintNeverMisattributes(t *testing.T) {
	e := mustParse(t, hanoiElection)
	x := idx{t, e}
	const contest, station = "HDND-LB", "LB-NT-02"
	good, ok := e.Hint(contest, station)
	if !ok {
		t.Fatal("no hint for a voting station")
	}
	other, _ := e.Hint(contest, "LB-BD-01")
	otherFile := mustParse(t, edit(t, hanoiElection, `"name": "Thành phố Hà Nội"`, `"name": "Hà Nội"`))
	if otherFile.Fingerprint() == e.Fingerprint() {
		t.Fatal("two files, one fingerprint")
	}
	fromOther, _ := otherFile.Hint(contest, station)
	for name, h := range map[string]tally.Hint{
		"another station's":  other,
		"another contest's":  {Fingerprint: good.Fingerprint, Contest: int32(x.contest("QH")), Voter: good.Voter},
		"voter out of range": {Fingerprint: good.Fingerprint, Contest: good.Contest, Voter: 1 << 30},
		"contest out range":  {Fingerprint: good.Fingerprint, Contest: 99, Voter: good.Voter},
		"negative":           {Fingerprint: good.Fingerprint, Contest: -1, Voter: -1},
		"another file's":     {Fingerprint: fromOther.Fingerprint, Contest: good.Contest, Voter: other.Voter},
	} {
		if e.HintTaken(h, contest, station) {
			t.Errorf("%s hint %+v taken for %s %s", name, h, contest, station)
		}
		c, s, v, okC, okS := e.Locate(h, contest, station)
		wc, ws, wv, _, _ := byName(e, contest, station)
		if !okC || !okS || c != wc || s != ws || v != wv {
			t.Errorf("%s hint: Locate = %d %d %d, by name %d %d %d", name, c, s, v, wc, ws, wv)
		}
		if s != x.station(station) {
			t.Errorf("%s hint: station %d, want %s", name, s, station)
		}
	}
	// Ids the file does not hold are unknown, whatever the hint says.
	if _, _, _, okC, okS := e.Locate(good, contest, "NO-SUCH"); !okC || okS {
		t.Errorf("unknown station with a good hint: okC %v okS %v", okC, okS)
	}
	// Check gives the same answer with any hint.
	m := tally.Minutes{Election: e.ID, Contest: contest, Station: station, Version: 1, Status: tally.Withdrawn}
	var want, got tally.Resolved
	if v := e.Check(&m, 0, &want, nil); len(v) > 0 {
		t.Fatalf("withdrawn minutes: %v", v)
	}
	if v := e.CheckHinted(&m, other, 0, &got, nil); len(v) > 0 || got.Station != want.Station || got.Voter != want.Voter || got.Unit != want.Unit {
		t.Fatalf("CheckHinted with another station's hint: %v %+v, want %+v", v, got, want)
	}
}

// TestHintInAPart: a part (Restrict) takes its whole file's hints and
// finds its own indexes for them.
func TestHintInAPart(t *testing.T) {
	f, err := workload.National(workload.NationalConfig{Seed: 7, Scale: 0.02, Provinces: 12, TwoTier: true})
	if err != nil {
		t.Fatal(err)
	}
	whole, err := f.Parse()
	if err != nil {
		t.Fatal(err)
	}
	var provinces []string
	for a := range whole.Areas {
		if whole.AreaParent(a) < 0 {
			provinces = append(provinces, whole.Areas[a].ID)
		}
	}
	if len(provinces) < 3 {
		t.Fatalf("%d provinces, want 3 or more", len(provinces))
	}
	part, err := whole.Restrict(provinces[1:3])
	if err != nil {
		t.Fatal(err)
	}
	if part.Fingerprint() != whole.Fingerprint() {
		t.Fatal("a part's fingerprint is not its file's")
	}
	if _, ok := part.Hint(whole.Contests[0].ID, part.Stations[0].ID); ok {
		t.Fatal("a part gives hints in its own indexes")
	}
	in, out := 0, 0
	for c := range whole.Contests {
		for s := range whole.Stations {
			contest, station := whole.Contests[c].ID, whole.Stations[s].ID
			h, ok := whole.Hint(contest, station)
			if !ok {
				continue
			}
			gc, gs, gv, okC, okS := part.Locate(h, contest, station)
			wc, ws, wv, wokC, wokS := byName(part, contest, station)
			if gc != wc || gs != ws || gv != wv || okC != wokC || okS != wokS {
				t.Fatalf("part.Locate(%+v, %s, %s) = %d %d %d %v %v; by name %d %d %d %v %v", h, contest, station, gc, gs, gv, okC, okS, wc, ws, wv, wokC, wokS)
			}
			if okS != part.HintTaken(h, contest, station) {
				t.Fatalf("part: hint %+v for %s %s taken: %v; the station is in the part: %v", h, contest, station, !okS, okS)
			}
			if okS {
				in++
			} else {
				out++
			}
		}
	}
	if in == 0 || out == 0 {
		t.Fatalf("%d hints in the part, %d outside: want both", in, out)
	}
}
