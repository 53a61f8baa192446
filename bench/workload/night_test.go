package workload

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

// nightStats is what checkNight saw.
type nightStats struct {
	submissions int
	tracks      int // (contest, station) pairs that sent anything
	withPartial int // tracks with at least one partial (applied or stale)
	kinds       [numKinds + 1]int
	finalsIn    int // first finals sent between 20:30 and 02:00
	last        time.Duration
	// Sums of the current minutes at the end, as the fold would hold them.
	registered, voted, valid, invalid int64
	statuses                          map[tally.UnitStatus]int
}

// track is what checkNight remembers of one (contest, station).
type track struct {
	maxVersion    int64
	lastStatus    tally.Status
	lastJSON      []byte
	invalidBefore int64 // version of a pending invalid attempt, 0 if none
	partial       bool
	skipped       []int64 // versions skipped, to arrive stale
	current       tally.Resolved
	hasCurrent    bool
}

// checkNight runs Night and checks every submission against the rules a
// station's story must follow; it returns what it saw.
func checkNight(t *testing.T, e *tally.Election, cfg NightConfig) nightStats {
	t.Helper()
	st := nightStats{statuses: map[tally.UnitStatus]int{}}
	tracks := map[[2]int]*track{}
	var res tally.Resolved
	var viol []tally.Violation
	var buf []byte
	fail := func(sub *Submission, format string, args ...any) {
		t.Helper()
		t.Fatalf("%s %s v%d (%s at %s): "+format, append([]any{sub.Minutes.Contest, sub.Minutes.Station, sub.Minutes.Version, sub.Kind, Clock(sub.At)}, args...)...)
	}
	err := Night(e, cfg, func(sub *Submission) error {
		m := &sub.Minutes
		st.submissions++
		st.kinds[sub.Kind]++
		if sub.At < st.last {
			fail(sub, "sent before the previous submission (%s)", Clock(st.last))
		}
		st.last = sub.At
		if m.Station != e.Stations[sub.Station].ID || m.Contest != e.Contests[sub.Contest].ID {
			fail(sub, "Station and Contest indexes %d, %d do not match", sub.Station, sub.Contest)
		}
		key := [2]int{sub.Contest, sub.Station}
		tr := tracks[key]
		if tr == nil {
			tr = &track{}
			tracks[key] = tr
		}
		viol = e.Check(m, 0, &res, viol[:0])
		if sub.Kind == Invalid {
			if len(viol) == 0 {
				fail(sub, "invalid minutes pass Check: %s", events.AppendJSON(nil, m))
			}
			if m.Version < 1 {
				fail(sub, "version %d", m.Version)
			}
			tr.invalidBefore = m.Version
			return nil
		}
		if len(viol) > 0 {
			fail(sub, "fails Check: %v", &tally.ValidationError{Violations: viol})
		}
		buf = events.AppendJSON(buf[:0], m)
		switch sub.Kind {
		case Partial, Final, Correction, Withdrawal, Recount:
			// Versions run 1, 2, 3 ...; one skipped here must arrive
			// later, as a stale partial.
			if m.Version <= tr.maxVersion {
				fail(sub, "version after %d", tr.maxVersion)
			}
			for v := tr.maxVersion + 1; v < m.Version; v++ {
				tr.skipped = append(tr.skipped, v)
			}
			if tr.invalidBefore != 0 && tr.invalidBefore != m.Version {
				fail(sub, "the invalid attempt before it had version %d", tr.invalidBefore)
			}
			tr.invalidBefore = 0
			want := map[Kind]tally.Status{Partial: tally.Partial, Final: tally.Final, Correction: tally.Final, Withdrawal: tally.Withdrawn, Recount: tally.Final}[sub.Kind]
			if m.Status != want {
				fail(sub, "status %s, want %s", m.Status, want)
			}
			switch {
			case sub.Kind == Partial && tr.lastStatus != 0 && tr.lastStatus != tally.Partial,
				sub.Kind == Final && tr.lastStatus != 0 && tr.lastStatus != tally.Partial,
				sub.Kind == Correction && tr.lastStatus != tally.Final,
				sub.Kind == Withdrawal && tr.lastStatus != tally.Final,
				sub.Kind == Recount && tr.lastStatus != tally.Withdrawn:
				fail(sub, "after %s", tr.lastStatus)
			}
			if sub.Kind == Correction && m.Reason != ReasonCorrection || sub.Kind == Recount && m.Reason != ReasonRecount || sub.Kind == Withdrawal && m.Reason != ReasonWithdrawn {
				fail(sub, "reason %q", m.Reason)
			}
			if sub.Kind == Final && st.finalsInWindow(sub.At) {
				st.finalsIn++
			}
			if sub.Kind == Partial {
				tr.partial = true
				if sub.At < 15*time.Minute || sub.At > 3*time.Hour {
					fail(sub, "a partial outside 19:15–22:00")
				}
			}
			tr.maxVersion, tr.lastStatus = m.Version, m.Status
			tr.lastJSON = append(tr.lastJSON[:0], buf...)
			tr.current = res
			tr.current.Votes = append([]int64(nil), res.Votes...)
			tr.hasCurrent = true
		case Duplicate:
			if m.Version != tr.maxVersion || !bytes.Equal(buf, tr.lastJSON) {
				fail(sub, "a duplicate must repeat the last submission (v%d %s), got %s", tr.maxVersion, tr.lastJSON, buf)
			}
		case Stale:
			if m.Version >= tr.maxVersion || m.Status != tally.Partial {
				fail(sub, "a stale partial must come after a higher version; highest so far %d", tr.maxVersion)
			}
			i := slices.Index(tr.skipped, m.Version)
			if i < 0 {
				fail(sub, "version %d of a stale partial was not skipped (skipped: %v)", m.Version, tr.skipped)
			}
			tr.skipped = slices.Delete(tr.skipped, i, i+1)
			tr.partial = true
		default:
			fail(sub, "unknown kind")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Every (contest, station) voting ends with a final.
	ns := len(e.Stations)
	if cfg.Stations > 0 {
		ns = min(ns, cfg.Stations)
	}
	for c := range e.Contests {
		for s := range e.Stations {
			tr := tracks[[2]int{c, s}]
			voting := s < ns && e.StationUnit(c, s) >= 0
			switch {
			case !voting && tr != nil:
				t.Fatalf("%s %s sent minutes but does not report", e.Contests[c].ID, e.Stations[s].ID)
			case voting && (tr == nil || tr.lastStatus != tally.Final):
				t.Fatalf("%s %s does not end with a final", e.Contests[c].ID, e.Stations[s].ID)
			case voting && len(tr.skipped) > 0:
				t.Fatalf("%s %s never sent versions %v", e.Contests[c].ID, e.Stations[s].ID, tr.skipped)
			}
		}
	}

	// Sum the finals as the fold would and decide every unit.
	type unitSum struct {
		counts tally.Counts
		votes  []int64
		final  int
	}
	units := map[[2]int]*unitSum{}
	for key, tr := range tracks {
		st.tracks++
		if tr.partial {
			st.withPartial++
		}
		r := &tr.current
		st.registered += r.Counts.Registered
		st.voted += r.Counts.Voted
		st.valid += r.Counts.Valid
		st.invalid += r.Counts.Invalid
		uk := [2]int{key[0], r.Unit}
		u := units[uk]
		if u == nil {
			u = &unitSum{votes: make([]int64, len(r.Votes))}
			units[uk] = u
		}
		u.final++
		u.counts.Registered += r.Counts.Registered
		u.counts.Voted += r.Counts.Voted
		u.counts.Valid += r.Counts.Valid
		for k, v := range r.Votes {
			u.votes[k] += v
		}
	}
	for uk, u := range units {
		d := e.Decide(uk[0], uk[1], u.final, u.counts, u.votes)
		st.statuses[d.Status]++
	}
	return st
}

// finalsInWindow reports whether at falls between 20:30 and 02:00.
func (nightStats) finalsInWindow(at time.Duration) bool {
	return at >= 90*time.Minute && at <= 7*time.Hour
}

func longBien(t testing.TB) *tally.Election {
	t.Helper()
	data, err := os.ReadFile("../../examples/longbien/election.json")
	if err != nil {
		t.Fatal(err)
	}
	e, err := tally.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestNightRules(t *testing.T) {
	_, small := generate(t, NationalConfig{Seed: 3, Scale: 0.05, Provinces: 2})
	for _, tc := range []struct {
		name string
		e    *tally.Election
		cfg  NightConfig
	}{
		{"longbien", longBien(t), NightConfig{Seed: 1}},
		{"two provinces", small, NightConfig{Seed: 2}},
		// Every share at its most: each (contest, station) sends everything.
		{"everything", small, NightConfig{Seed: 3, Correction: 0.5, Withdrawal: 0.5, Duplicate: 1, Stale: 1, Invalid: 1}},
		{"nothing but counts", small, NightConfig{Seed: 4, Correction: -1, Withdrawal: -1, Duplicate: -1, Stale: -1, Invalid: -1}},
		{"first stations", small, NightConfig{Seed: 5, Stations: 17}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := checkNight(t, tc.e, tc.cfg)
			t.Logf("%d submissions, %d (contest, station), last at %s, kinds %v, units %v", st.submissions, st.tracks, Clock(st.last), st.kinds[1:], st.statuses)
		})
	}
}

func TestNightPlausible(t *testing.T) {
	_, e := generate(t, NationalConfig{Seed: 5, Scale: 0.05})
	st := checkNight(t, e, NightConfig{Seed: 9})
	turnout := float64(st.voted) / float64(st.registered)
	invalid := float64(st.invalid) / float64(st.valid+st.invalid)
	finals := float64(st.finalsIn) / float64(st.kinds[Final])
	t.Logf("turnout %.2f%%, invalid ballots %.2f%%, finals 20:30–02:00 %.1f%%, units %v", 100*turnout, 100*invalid, 100*finals, st.statuses)
	inRange(t, "turnout", turnout, 0.99, 0.999)
	inRange(t, "invalid ballots", invalid, 0.003, 0.02)
	inRange(t, "finals sent 20:30–02:00", finals, 0.9, 1)
	units := 0
	for _, n := range st.statuses {
		units += n
	}
	if st.statuses[tally.ReElection] > 0 || st.statuses[tally.Counting] > 0 {
		t.Errorf("with turnout near 100%% and every station final, no unit is counting or re-elects: %v", st.statuses)
	}
	inRange(t, "decided units", float64(st.statuses[tally.Decided])/float64(units), 0.85, 1)
	if st.statuses[tally.AdditionalElection] == 0 {
		t.Errorf("no unit needs an additional election; a real night has a few")
	}
}

// TestNightShares checks that each kind appears in the share configured.
func TestNightShares(t *testing.T) {
	_, e := generate(t, NationalConfig{Seed: 5, Scale: 0.05})
	cfg := NightConfig{Seed: 11}
	st := checkNight(t, e, cfg)
	cfg.ensureDefaults()
	share := func(kind Kind, of int, want float64) {
		t.Helper()
		got := float64(st.kinds[kind]) / float64(of)
		tol := 4*math.Sqrt(want*(1-want)/float64(of)) + 0.002
		if math.Abs(got-want) > tol {
			t.Errorf("%s: share %.4f, want %.4f ± %.4f", kind, got, want, tol)
		}
	}
	share(Final, st.tracks, 1)
	share(Correction, st.tracks, cfg.Correction)
	share(Withdrawal, st.tracks, cfg.Withdrawal)
	share(Recount, st.tracks, cfg.Withdrawal)
	share(Duplicate, st.tracks, cfg.Duplicate)
	share(Stale, st.withPartial, cfg.Stale)
	share(Invalid, st.tracks, cfg.Invalid)
	partials := float64(st.kinds[Partial]+st.kinds[Stale]) / float64(st.tracks)
	inRange(t, "partials per (contest, station)", partials, 0.8, 1.05)
}

func nightHash(t testing.TB, e *tally.Election, cfg NightConfig) [32]byte {
	h := sha256.New()
	var buf []byte
	err := Night(e, cfg, func(s *Submission) error {
		buf = binary.AppendVarint(buf[:0], int64(s.At))
		buf = append(buf, byte(s.Kind))
		buf = events.AppendJSON(buf, &s.Minutes)
		h.Write(buf)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func TestNightDeterministic(t *testing.T) {
	e := longBien(t)
	a, b := nightHash(t, e, NightConfig{Seed: 1}), nightHash(t, e, NightConfig{Seed: 1})
	if a != b {
		t.Fatal("the same seed gave two nights")
	}
	if a == nightHash(t, e, NightConfig{Seed: 2}) {
		t.Fatal("two seeds gave the same night")
	}
}

func TestNightStopsOnError(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := Night(longBien(t), NightConfig{}, func(*Submission) error {
		n++
		if n == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 10 {
		t.Fatalf("Night returned %v after %d submissions, want stop after 10", err, n)
	}
}

func TestNightConfig(t *testing.T) {
	e := longBien(t)
	for _, cfg := range []NightConfig{{Correction: 2}, {Correction: 0.6, Withdrawal: 0.6}, {Stations: -1}, {Invalid: math.NaN()}} {
		if err := Night(e, cfg, func(*Submission) error { return nil }); err == nil {
			t.Errorf("Night(%+v) accepted", cfg)
		}
	}
}

// TestNightStreams checks that Night allocates per station, not per
// submission: it holds no list of minutes.
func TestNightStreams(t *testing.T) {
	_, e := generate(t, NationalConfig{Seed: 5, Scale: 0.05})
	var before, after runtime.MemStats
	n := 0
	runtime.ReadMemStats(&before)
	if err := Night(e, NightConfig{}, func(*Submission) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	allocs := after.Mallocs - before.Mallocs
	t.Logf("%d submissions, %d allocations", n, allocs)
	if allocs > uint64(n/20) {
		t.Errorf("%d allocations for %d submissions; Night should allocate per run, not per submission", allocs, n)
	}
}

func TestClock(t *testing.T) {
	for at, want := range map[time.Duration]string{0: "19:00", 4*time.Hour + 14*time.Minute: "23:14", 6*time.Hour + 30*time.Minute: "01:30"} {
		if got := Clock(at); got != want {
			t.Errorf("Clock(%s) = %s, want %s", at, got, want)
		}
	}
}

func BenchmarkNight(b *testing.B) {
	f, err := National(NationalConfig{Seed: 1, Scale: 0.05})
	if err != nil {
		b.Fatal(err)
	}
	e, err := f.Parse()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	var buf []byte
	for b.Loop() {
		if err := Night(e, NightConfig{Seed: 1}, func(s *Submission) error {
			n++
			buf = events.AppendJSON(buf[:0], &s.Minutes)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "submissions/s")
}
