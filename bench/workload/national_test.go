package workload

import (
	"bytes"
	"crypto/sha256"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tallyvn/tally/tally"
)

func generate(t testing.TB, cfg NationalConfig) (*ElectionFile, *tally.Election) {
	t.Helper()
	f, err := National(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.Parse()
	if err != nil {
		t.Fatalf("tally.Parse refuses the generated file: %v", err)
	}
	return f, e
}

func inRange[T int | int64 | float64](t *testing.T, what string, got, lo, hi T) {
	t.Helper()
	if got < lo || got > hi {
		t.Errorf("%s = %v, want %v to %v", what, got, lo, hi)
	}
}

// checkShape checks what every generated election must be, whatever the
// scale: legal units, units within the right area, the 2021 pilots.
func checkShape(t *testing.T, f *ElectionFile, e *tally.Election) {
	t.Helper()
	parentOf := map[string]string{}
	levelOf := map[string]tally.AreaLevel{}
	for _, a := range f.Areas {
		parentOf[a.ID], levelOf[a.ID] = a.Parent, a.Level
	}
	provinceOf := func(id string) string {
		for levelOf[id] != tally.Province {
			id = parentOf[id]
		}
		return id
	}
	wardOfStation := map[string]string{}
	for _, s := range f.Stations {
		wardOfStation[s.ID] = s.Ward
		if s.Registered < 50 || s.Registered > maxStation {
			t.Errorf("station %s has %d voters, want 50 to %d", s.ID, s.Registered, maxStation)
		}
	}
	wantArea := map[string]tally.AreaLevel{ContestQH: tally.District, ContestT: tally.District, ContestH: tally.Ward}
	for _, c := range f.Contests {
		for _, u := range c.Units {
			switch {
			case c.Level == tally.National && (u.Seats < 2 || u.Seats > 3 || len(u.Candidates) != u.Seats+2):
				t.Errorf("%s: %d seats, %d candidates; want 2 or 3 seats and 2 more candidates (Art. 57)", u.ID, u.Seats, len(u.Candidates))
			case c.Level != tally.National && (u.Seats < 1 || u.Seats > 5):
				t.Errorf("%s: %d seats, want 1 to 5 (Art. 10)", u.ID, u.Seats)
			case c.Level != tally.National && u.Seats <= 2 && len(u.Candidates) < u.Seats+1,
				c.Level != tally.National && u.Seats == 3 && len(u.Candidates) < 5,
				c.Level != tally.National && u.Seats >= 4 && len(u.Candidates) < u.Seats+3:
				t.Errorf("%s: %d candidates for %d seats, below the legal margin (Art. 58)", u.ID, len(u.Candidates), u.Seats)
			}
			if c.ID == ContestX {
				if len(u.Areas) != 0 || len(u.Stations) == 0 {
					t.Errorf("%s: a commune unit lists stations only, got areas %v stations %v", u.ID, u.Areas, u.Stations)
				}
				for _, s := range u.Stations {
					if wardOfStation[s] != wardOfStation[u.Stations[0]] {
						t.Errorf("%s: stations of two wards", u.ID)
					}
				}
				continue
			}
			for _, a := range u.Areas {
				if levelOf[a] != wantArea[c.ID] {
					t.Errorf("%s: area %s is a %s, want a %s", u.ID, a, levelOf[a], wantArea[c.ID])
				}
				if provinceOf(a) != provinceOf(u.Areas[0]) {
					t.Errorf("%s: areas of two provinces", u.ID)
				}
				if c.ID == ContestH && parentOf[a] != parentOf[u.Areas[0]] {
					t.Errorf("%s: wards of two districts", u.ID)
				}
			}
		}
	}
	// Pilots: an urban ward of Hà Nội votes for no commune council; an
	// urban ward of Hồ Chí Minh City for no district council either.
	if s, ok := e.StationIndex("HN-01-01-01"); ok {
		if c, ok := e.ContestIndex(ContestX); ok && e.StationUnit(c, s) >= 0 {
			t.Errorf("HN-01-01-01, in a ward of Hà Nội, votes for a commune council")
		}
	}
	if s, ok := e.StationIndex("HCM-01-01-01"); ok {
		if c, ok := e.ContestIndex(ContestH); ok && e.StationUnit(c, s) >= 0 {
			t.Errorf("HCM-01-01-01, in a quận of Hồ Chí Minh City, votes for a district council")
		}
	}
}

func TestNationalSmall(t *testing.T) {
	f, e := generate(t, NationalConfig{Seed: 1, Scale: 0.05})
	checkShape(t, f, e)
	s := f.Summary()
	t.Log(s)
	inRange(t, "provinces", s.Provinces, 63, 63)
	inRange(t, "stations", s.Stations, 3500, 5000)
	inRange(t, "voters", s.Voters, 3_200_000, 3_800_000)
	if len(s.Contests) != 4 {
		t.Fatalf("%d contests, want 4", len(s.Contests))
	}
	inRange(t, "QH units", s.Contests[0].Units, 120, qhUnits)
	if s.Contests[0].Stations != s.Stations || s.Contests[1].Stations != s.Stations {
		t.Errorf("every station votes for the National Assembly and a province council; %d and %d of %d do",
			s.Contests[0].Stations, s.Contests[1].Stations, s.Stations)
	}
	if s.Contests[3].Stations >= s.Stations {
		t.Errorf("every station votes for a commune council, but urban Hà Nội, Hồ Chí Minh City and Đà Nẵng elect none")
	}
}

func TestNationalProvinces(t *testing.T) {
	f2, e := generate(t, NationalConfig{Seed: 1, Scale: 0.05, Provinces: 2})
	checkShape(t, f2, e)
	s := f2.Summary()
	inRange(t, "provinces", s.Provinces, 2, 2)
	// A province is the same whatever else is generated.
	all, err := National(NationalConfig{Seed: 1, Scale: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range f2.Stations {
		if !reflect.DeepEqual(all.Stations[i], st) {
			t.Fatalf("station %d: %+v with 2 provinces, %+v with all", i, st, all.Stations[i])
		}
	}
}

func TestNationalDeterministic(t *testing.T) {
	hash := func(cfg NationalConfig) [32]byte {
		f, err := National(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := f.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b.Bytes())
	}
	cfg := NationalConfig{Seed: 42, Scale: 0.02}
	first, again := hash(cfg), hash(cfg)
	if first != again {
		t.Fatal("the same config gave two files")
	}
	if first == hash(NationalConfig{Seed: 43, Scale: 0.02}) {
		t.Fatal("two seeds gave the same file")
	}
}

func TestNationalConfig(t *testing.T) {
	for _, cfg := range []NationalConfig{{Scale: -1}, {Scale: 1e6}, {Provinces: 64}, {Provinces: -1}, {ID: "vn 2021"}} {
		if _, err := National(cfg); err == nil {
			t.Errorf("National(%+v) accepted", cfg)
		}
	}
}

func TestWriteJSONEscapes(t *testing.T) {
	got := string(appendString(nil, "Phường \"Bồ Đề\"\\\n\x01\xff"))
	want := `"Phường \"Bồ Đề\"\\\n\u0001\ufffd"`
	if got != want {
		t.Errorf("appendString = %s, want %s", got, want)
	}
}

// TestNationalFull generates Vietnam at full scale and checks it against
// the 2021 orders of magnitude (DOMAIN.md).
func TestNationalFull(t *testing.T) {
	if testing.Short() {
		t.Skip("full scale: tens of megabytes of JSON")
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	f, err := National(NationalConfig{Seed: 2021})
	if err != nil {
		t.Fatal(err)
	}
	genTime := time.Since(start)
	var buf bytes.Buffer
	start = time.Now()
	if err := f.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	writeTime := time.Since(start)
	start = time.Now()
	e, err := tally.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	parseTime := time.Since(start)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	s := f.Summary()
	t.Logf("generated in %s, written in %s (%d MB), parsed in %s; heap %d MB\n%s",
		genTime.Round(time.Millisecond), writeTime.Round(time.Millisecond), buf.Len()>>20,
		parseTime.Round(time.Millisecond), (after.HeapAlloc-before.HeapAlloc)>>20, s)
	checkShape(t, f, e)

	inRange(t, "provinces", s.Provinces, 63, 63)
	inRange(t, "districts", s.Districts, 690, 720)
	inRange(t, "wards", s.Wards, 10_400, 10_800)
	inRange(t, "stations", s.Stations, 82_000, 88_000)
	inRange(t, "voters", s.Voters, 67_000_000, 71_500_000)
	inRange(t, "mean station", float64(s.Voters)/float64(s.Stations), 780, 850)
	qh := s.Contests[0]
	inRange(t, "QH units", qh.Units, qhUnits, qhUnits)
	inRange(t, "QH seats", qh.Seats, qhSeats, qhSeats)
	inRange(t, "QH candidates", qh.Candidates, 860, 870)
	inRange(t, "HDND-T units", s.Contests[1].Units, 500, 1200)
	inRange(t, "HDND-T seats", s.Contests[1].Seats, 2500, 4000)
	inRange(t, "HDND-H units", s.Contests[2].Units, 4000, 8000)
	inRange(t, "HDND-X units", s.Contests[3].Units, 40_000, 90_000)
	inRange(t, "JSON MB", buf.Len()>>20, 10, 100)
	// How fast Parse is depends on the machine and what else runs on it (63 s
	// under -race beside a CPU-bound job on two busy cores): a figure for
	// BenchmarkParseNational (parse_bench_test.go), not a pass/fail bound here.
	t.Logf("tally.Parse of the national file: %s", parseTime.Round(time.Millisecond))

	// The night over the whole country streams: its memory is the heap of
	// (contest, station), not the minutes.
	runtime.GC()
	runtime.ReadMemStats(&before)
	start = time.Now()
	var kinds [numKinds + 1]int
	var last time.Duration
	if err := Night(e, NightConfig{Seed: 2021}, func(sub *Submission) error {
		kinds[sub.Kind]++
		last = sub.At
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	total := 0
	for _, n := range kinds {
		total += n
	}
	t.Logf("night: %d submissions in %s (%.0f/s), last at %s, %d allocations, %d MB allocated; kinds %v",
		total, time.Since(start).Round(time.Millisecond), float64(total)/time.Since(start).Seconds(), Clock(last),
		after.Mallocs-before.Mallocs, (after.TotalAlloc-before.TotalAlloc)>>20, kinds[1:])
	if !strings.Contains(e.Contests[0].Units[0].Candidates[0].Name, fictional) {
		t.Errorf("candidate names must say they are fictional")
	}
}

// TestNationalTwoTier: the 2026 structure at full scale has Vietnam's
// figures since 1 July 2025 (DOMAIN.md): 34 provinces, about 3,321
// communes, no districts, 182 National Assembly units for 500 seats, and
// three ballots, every station voting on each.
func TestNationalTwoTier(t *testing.T) {
	f, err := National(NationalConfig{Seed: 2026, TwoTier: true})
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.Parse()
	if err != nil {
		t.Fatal(err)
	}
	if got := e.AreaLevels(); !reflect.DeepEqual(got, []tally.AreaLevel{tally.Province, tally.Commune}) {
		t.Fatalf("levels %v", got)
	}
	s := f.Summary()
	if s.Provinces != 34 || s.Districts != 0 {
		t.Errorf("%d provinces, %d districts; want 34 and none", s.Provinces, s.Districts)
	}
	inRange(t, "communes", float64(s.Wards), 3321*0.98, 3321*1.02)
	qh := s.Contests[0]
	if qh.ID != ContestQH || qh.Units != 182 || qh.Seats != 500 {
		t.Errorf("National Assembly: %d units, %d seats; want 182 and 500", qh.Units, qh.Seats)
	}
	if len(e.Contests) != 3 {
		t.Fatalf("%d contests, want 3", len(e.Contests))
	}
	var cs []int
	for st := range e.Stations {
		if cs = e.StationContests(st, cs[:0]); len(cs) != 3 {
			t.Fatalf("station %s votes in %d contests, want 3", e.Stations[st].ID, len(cs))
		}
	}
	x, _ := e.ContestIndex(ContestX)
	councils := map[int]bool{}
	for u := range e.Contests[x].Units {
		co := e.UnitCouncil(x, u)
		if co < 0 || e.Areas[co].Level != tally.Commune {
			t.Fatalf("unit %s elects no commune council", e.Contests[x].Units[u].ID)
		}
		councils[co] = true
	}
	if len(councils) != s.Wards {
		t.Errorf("%d commune councils for %d communes", len(councils), s.Wards)
	}
	if w := e.Warnings(); len(w) > 0 {
		t.Errorf("%d warnings, first %q", len(w), w[0])
	}
}

// TestNationalPerCouncil: one contest per council, each unit's council
// inferred, the same units as one contest per ballot.
func TestNationalPerCouncil(t *testing.T) {
	cfg := NationalConfig{Seed: 1, Scale: 0.05, Provinces: 3}
	ballots, err := National(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.PerCouncil = true
	f, err := National(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.Parse()
	if err != nil {
		t.Fatal(err)
	}
	units := func(f *ElectionFile) (n int) {
		for _, c := range f.Contests {
			n += len(c.Units)
		}
		return n
	}
	if units(f) != units(ballots) || len(f.Contests) <= len(ballots.Contests) {
		t.Fatalf("%d contests of %d units, from %d contests of %d units", len(f.Contests), units(f), len(ballots.Contests), units(ballots))
	}
	for c := range e.Contests {
		if e.Contests[c].Level == tally.National {
			continue
		}
		council := e.UnitCouncil(c, 0)
		for u := range e.Contests[c].Units {
			if got := e.UnitCouncil(c, u); got != council || got < 0 {
				t.Fatalf("contest %s: unit %s elects council %d, the first unit %d", e.Contests[c].ID, e.Contests[c].Units[u].ID, got, council)
			}
		}
		if want := e.Contests[c].ID[len(e.Contests[c].ID)-len(e.Areas[council].ID):]; want != e.Areas[council].ID {
			t.Errorf("contest %s elects %s", e.Contests[c].ID, e.Areas[council].ID)
		}
	}
}
