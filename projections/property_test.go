package projections_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tallyvn/tally/audit"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// This file checks the fold against a reference fold written independently
// here, from CONTRACT §3 and §4 alone: plain maps, no deltas, results
// recomputed from scratch.

// fixture is a generated election in its file form plus what the reference
// needs to know about it.
type fixture struct {
	file     map[string]any
	e        *tally.Election
	wardOf   map[string]string   // station -> ward
	parentOf map[string]string   // area -> parent area
	unitOf   map[string]string   // contest/station -> unit
	cands    map[string][]string // unit -> candidate ids
	born     map[string]string   // candidate -> born
	seats    map[string]int      // unit -> seats
	level    map[string]string   // contest -> level
	reg      map[string]int64    // station -> registered
}

var wardNames = []string{"Phường Bồ Đề", "Phường Cự Khối", "Phường Đức Giang", "Phường Gia Thụy", "Phường Ngọc Thụy", "Phường Phúc Lợi", "Phường Thạch Bàn", "Phường Việt Hưng"}

// genElection builds an election of one province, two districts, nWards
// wards per district and nStations stations per ward, with a national
// contest (one unit per district) and a district-council contest (one unit
// per ward pair) whose last ward votes in no unit.
func genElection(t testing.TB, rng *rand.Rand, nWards, nStations int) *fixture {
	t.Helper()
	f := &fixture{
		wardOf: map[string]string{}, parentOf: map[string]string{}, unitOf: map[string]string{},
		cands: map[string][]string{}, born: map[string]string{}, seats: map[string]int{},
		level: map[string]string{"QH": "national", "HDND": "district"}, reg: map[string]int64{},
	}
	areas := []map[string]any{{"id": "HN", "name": "Thành phố Hà Nội", "level": "province"}}
	var stations []map[string]any
	var qhUnits, hdUnits []map[string]any
	candidates := func(unit string, n int) []map[string]any {
		var out []map[string]any
		for k := 1; k <= n; k++ {
			id := fmt.Sprintf("%s-%d", unit, k)
			// Few distinct birth dates, so equal votes sometimes tie.
			born := fmt.Sprintf("19%02d-0%d-1%d", 60+rng.IntN(3), 1+rng.IntN(2), rng.IntN(2))
			out = append(out, map[string]any{"id": id, "name": fmt.Sprintf("Ứng cử viên %d đơn vị %s (hư cấu)", k, unit), "born": born})
			f.cands[unit] = append(f.cands[unit], id)
			f.born[id] = born
		}
		return out
	}
	for d := 1; d <= 2; d++ {
		did := fmt.Sprintf("D%d", d)
		areas = append(areas, map[string]any{"id": did, "name": fmt.Sprintf("Quận số %d", d), "level": "district", "parent": "HN"})
		f.parentOf[did] = "HN"
		qu := "QH-" + did
		f.seats[qu] = 1 + rng.IntN(3)
		qhUnits = append(qhUnits, map[string]any{"id": qu, "name": "Đơn vị bầu cử số " + did, "seats": f.seats[qu],
			"areas": []string{did}, "stations": []string{}, "candidates": candidates(qu, f.seats[qu]+2)})
		var pair []string
		for w := 1; w <= nWards; w++ {
			wid := fmt.Sprintf("%s-W%d", did, w)
			areas = append(areas, map[string]any{"id": wid, "name": wardNames[(d*nWards+w)%len(wardNames)], "level": "ward", "parent": did})
			f.parentOf[wid] = did
			for s := 1; s <= nStations; s++ {
				sid := fmt.Sprintf("%s-S%d", wid, s)
				reg := int64(300 + rng.IntN(3700))
				stations = append(stations, map[string]any{"id": sid, "name": fmt.Sprintf("Khu vực bỏ phiếu số %d", s), "ward": wid, "registered": reg})
				f.wardOf[sid] = wid
				f.reg[sid] = reg
				f.unitOf["QH/"+sid] = qu
			}
			if w < nWards || nWards == 1 {
				pair = append(pair, wid)
			}
			if len(pair) == 2 || (w == nWards && len(pair) > 0) {
				hu := "HD-" + pair[0]
				f.seats[hu] = 1 + rng.IntN(5)
				hdUnits = append(hdUnits, map[string]any{"id": hu, "name": "Đơn vị HĐND " + pair[0], "seats": f.seats[hu],
					"areas": pair, "stations": []string{}, "candidates": candidates(hu, f.seats[hu]+1+rng.IntN(3))})
				for _, pw := range pair {
					for s := 1; s <= nStations; s++ {
						f.unitOf[fmt.Sprintf("HDND/%s-S%d", pw, s)] = hu
					}
				}
				pair = nil
			}
		}
	}
	f.file = map[string]any{
		"id": "hn-2021", "name": "Bầu cử thử nghiệm", "date": "2021-05-23",
		"areas": areas, "stations": stations,
		"contests": []map[string]any{
			{"id": "QH", "name": "Đại biểu Quốc hội", "level": "national", "units": qhUnits},
			{"id": "HDND", "name": "Đại biểu HĐND quận", "level": "district", "units": hdUnits},
		},
	}
	data, err := json.Marshal(f.file)
	if err != nil {
		t.Fatal(err)
	}
	f.e, err = tally.Parse(data)
	if err != nil {
		t.Fatalf("generated election: %v", err)
	}
	return f
}

// genMinutes generates an election night for f: per station and contest a
// history of partials, finals, corrections and withdrawals, plus exact
// duplicates, conflicts and a few invalid minutes, shuffled.
func genMinutes(rng *rand.Rand, f *fixture) []tally.Minutes {
	var out []tally.Minutes
	counts := func(m *tally.Minutes, unit string, lowTurnout bool) {
		reg := f.reg[m.Station] + int64(rng.IntN(5))
		voted := reg - int64(rng.IntN(int(reg/20)+1))
		if lowTurnout {
			voted = reg / 2
		}
		received := voted - int64(rng.IntN(3))
		invalid := int64(rng.IntN(20))
		if invalid > received {
			invalid = received
		}
		valid := received - invalid
		m.Counts = tally.Counts{Registered: reg, Voted: voted, Issued: voted, Received: received, Valid: valid, Invalid: invalid}
		m.Present = tally.HasAllCounts
		seats := int64(f.seats[unit])
		cs := f.cands[unit]
		m.Votes = nil
		for _, c := range cs {
			if m.Status == tally.Partial && rng.IntN(3) == 0 {
				continue // a partial may leave candidates out
			}
			v := rng.Int64N(valid*seats/int64(len(cs)) + 1)
			if rng.IntN(4) == 0 {
				v = valid/2 + 1 // passes the bar
			}
			m.Votes = append(m.Votes, tally.Vote{Candidate: c, Count: min(v, valid*seats/int64(len(cs)))})
		}
	}
	for _, st := range f.e.Stations {
		for _, contest := range []string{"QH", "HDND"} {
			unit, ok := f.unitOf[contest+"/"+st.ID]
			if !ok {
				continue
			}
			low := rng.IntN(15) == 0
			base := tally.Minutes{Election: f.e.ID, Contest: contest, Station: st.ID}
			var hist []tally.Minutes
			v := int64(1)
			add := func(s tally.Status, reason string) {
				m := base
				m.Version, m.Status, m.Reason = v, s, reason
				if s != tally.Withdrawn {
					counts(&m, unit, low)
				}
				hist = append(hist, m)
				v++
			}
			switch rng.IntN(10) {
			case 0: // no minutes yet
			case 1, 2:
				add(tally.Partial, "")
			default:
				if rng.IntN(2) == 0 {
					add(tally.Partial, "")
				}
				add(tally.Final, "")
			}
			if len(hist) > 0 && rng.IntN(6) == 0 {
				add(tally.Final, "sửa số phiếu sau kiểm lại")
			}
			if len(hist) > 0 && rng.IntN(8) == 0 {
				add(tally.Withdrawn, "kiểm phiếu lại theo yêu cầu")
				if rng.IntN(2) == 0 {
					add(tally.Final, "kết quả kiểm lại")
				}
			}
			out = append(out, hist...)
			for _, m := range hist {
				switch rng.IntN(12) {
				case 0: // exact duplicate
					out = append(out, cloneMinutes(m))
				case 1: // conflict: same version, other content
					c := cloneMinutes(m)
					c.Reason = "bản khác cùng phiên bản"
					out = append(out, c)
				}
			}
			if len(hist) > 0 && rng.IntN(20) == 0 { // invalid: a stranger candidate
				bad := cloneMinutes(hist[0])
				bad.Votes = append(bad.Votes, tally.Vote{Candidate: "NOBODY", Count: 1})
				out = append(out, bad)
			}
		}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func cloneMinutes(m tally.Minutes) tally.Minutes {
	m.Votes = slices.Clone(m.Votes)
	return m
}

// compareAudit checks every result, station record, history and outcome
// of store against the audit fold (package audit: the one reference fold,
// behind tally verify).
func compareAudit(t *testing.T, store *projections.Store, af *audit.Fold) {
	t.Helper()
	meta, err := store.Meta()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Compare(af, store, meta)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Differences) > 0 {
		n := min(len(rep.Differences), 10)
		t.Fatalf("%d differences with the audit fold, first %d: %v", len(rep.Differences), n, rep.Differences[:n])
	}
	if rep.Compared.Areas == 0 || rep.Compared.Units == 0 || rep.Compared.Messages == 0 {
		t.Fatalf("audit compared nothing: %+v", rep.Compared)
	}
}

// TestFoldMatchesReference folds shuffled election nights straight into the
// Fold, committing at random points and closing and reopening the store at
// random points (as a restart would), and compares every result with the
// audit fold after each run.
func TestFoldMatchesReference(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 3
	}
	total, crashTotal := 0, 0
	for seed := 1; seed <= seeds; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 2021))
			fx := genElection(t, rng, 3+rng.IntN(4), 5+rng.IntN(11))
			ms := genMinutes(rng, fx)
			total += len(ms)
			af := audit.New(fx.e)
			dir := t.TempDir()
			store, err := projections.Open(dir, fx.e)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { store.Close() }()
			outcomes := map[string]int{}
			wantOutcome := make([]string, len(ms))
			msgs := make([]projections.Msg, len(ms))
			for i := range ms {
				m := ms[i]
				s, _ := fx.e.StationIndex(m.Station)
				msgs[i] = projections.Msg{Seq: uint64(i + 1), Subject: events.Subject(fx.e, s, m.Contest),
					Data: events.AppendBinary(nil, &m), Time: time.Unix(1621750000+int64(i), 0)}
			}
			apply := func(i int) {
				t.Helper()
				got, err := store.Fold().Apply(&msgs[i])
				if err != nil {
					t.Fatal(err)
				}
				if got.String() != wantOutcome[i] {
					m := ms[i]
					t.Fatalf("message %d (%s %s v%d %s): outcome %s, the audit fold says %s", i+1, m.Contest, m.Station, m.Version, m.Status, got, wantOutcome[i])
				}
			}
			crashes := 0
			for i := range ms {
				wantOutcome[i] = string(af.Apply(msgs[i].Seq, msgs[i].Subject, msgs[i].Data).Outcome)
				outcomes[wantOutcome[i]]++
				apply(i)
				if rng.IntN(20) == 0 {
					if _, err := store.Fold().Commit(); err != nil {
						t.Fatal(err)
					}
				}
				if rng.IntN(100) == 0 {
					// Crash: whatever was not committed is lost. Reopen and
					// replay from the checkpoint, as redelivery would.
					crashes++
					store.Close()
					if store, err = projections.Open(dir, fx.e); err != nil {
						t.Fatal(err)
					}
					cp := int(store.Fold().Meta().Checkpoint)
					if cp > 0 { // a redelivered message at or below the checkpoint is skipped
						if o, err := store.Fold().Apply(&msgs[rng.IntN(cp)]); err != nil || o != projections.Skipped {
							t.Fatalf("redelivered message at or below checkpoint %d: outcome %v, err %v; want skipped", cp, o, err)
						}
					}
					for j := cp; j <= i; j++ {
						apply(j)
					}
				}
			}
			crashTotal += crashes
			if _, err := store.Fold().Commit(); err != nil {
				t.Fatal(err)
			}
			compareAudit(t, store, af)
			meta, _ := store.Meta()
			if meta.Applied != af.Counts().Applied || meta.Duplicates != uint64(outcomes["duplicate"]) || meta.Stale != uint64(outcomes["stale"]) || meta.Rejected != uint64(outcomes["rejected"]) {
				t.Fatalf("meta %+v, reference outcomes %v", meta, outcomes)
			}
			if outcomes["applied"] == 0 || outcomes["stale"]+outcomes["duplicate"]+outcomes["rejected"] == 0 {
				t.Fatalf("workload too tame: %v", outcomes)
			}
			// Reopening recomputes the aggregates from the station minutes:
			// the results must not move.
			store.Close()
			if store, err = projections.Open(dir, fx.e); err != nil {
				t.Fatal(err)
			}
			compareAudit(t, store, af)
		})
	}
	t.Logf("%d seeds, %d minutes in all, %d simulated crashes", seeds, total, crashTotal)
}
