package main

// A generated election, a generated election night of minutes, and a
// reference fold written here from CONTRACT §3 and §4 alone (plain maps,
// results recomputed from scratch, no code shared with package projections).

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
)

// ---- the election file (CONTRACT §2) ----

type gArea struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Level  string `json:"level"`
	Parent string `json:"parent,omitempty"`
}

type gStation struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Ward       string `json:"ward"`
	Registered int64  `json:"registered"`
}

type gCandidate struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Born string `json:"born"`
}

type gUnit struct {
	ID         string       `json:"id"`
	Name       string       `json:"name"`
	Seats      int          `json:"seats"`
	Areas      []string     `json:"areas"`
	Stations   []string     `json:"stations"`
	Candidates []gCandidate `json:"candidates"`
}

type gContest struct {
	ID    string  `json:"id"`
	Name  string  `json:"name"`
	Level string  `json:"level"`
	Units []gUnit `json:"units"`
}

type gElection struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Date     string     `json:"date"`
	Areas    []gArea    `json:"areas"`
	Stations []gStation `json:"stations"`
	Contests []gContest `json:"contests"`
}

// world is a generated election plus what the reference needs to know.
type world struct {
	file      gElection
	parent    map[string]string            // area -> parent area
	wardOf    map[string]string            // station -> ward
	unitOf    map[string]map[string]string // contest -> station -> unit
	units     map[string]*gUnit            // unit id -> unit
	contestOf map[string]*gContest         // contest id -> contest
}

// stationAreas returns a station's ward, district and province.
func (w *world) stationAreas(s string) [3]string {
	ward := w.wardOf[s]
	d := w.parent[ward]
	return [3]string{ward, d, w.parent[d]}
}

// genWorld builds one province (HN), two districts, three wards of ten
// stations each, a national contest QH with one unit (3 seats, 5
// candidates) covering the province, and a Long Biên district-council
// contest HDND-LB with two units: LB-01 (ward LB-BD plus station LB-NT-01,
// 3 seats) and LB-02 (the other LB-NT stations, listed one by one, 2
// seats). The Gia Lâm stations do not vote in HDND-LB.
func genWorld(rng *rand.Rand) *world {
	e := gElection{
		ID:   "hn-2021",
		Name: "Bầu cử đại biểu Quốc hội khóa XV và đại biểu HĐND các cấp nhiệm kỳ 2021-2026",
		Date: "2021-05-23",
		Areas: []gArea{
			{ID: "HN", Name: "Thành phố Hà Nội", Level: "province"},
			{ID: "LB", Name: "Quận Long Biên", Level: "district", Parent: "HN"},
			{ID: "GL", Name: "Huyện Gia Lâm", Level: "district", Parent: "HN"},
			{ID: "LB-BD", Name: "Phường Bồ Đề", Level: "ward", Parent: "LB"},
			{ID: "LB-NT", Name: "Phường Ngọc Thụy", Level: "ward", Parent: "LB"},
			{ID: "GL-TQ", Name: "Thị trấn Trâu Quỳ", Level: "ward", Parent: "GL"},
		},
	}
	for _, ward := range []string{"LB-BD", "LB-NT", "GL-TQ"} {
		for i := 1; i <= 10; i++ {
			e.Stations = append(e.Stations, gStation{
				ID: fmt.Sprintf("%s-%02d", ward, i), Name: fmt.Sprintf("Khu vực bỏ phiếu số %d", i),
				Ward: ward, Registered: 800 + rng.Int64N(1200),
			})
		}
	}
	qhNames := []string{"Nguyễn Văn Ánh", "Trần Thị Bích Ngọc", "Lê Hoàng Đức", "Phạm Thị Hương Giang", "Đỗ Quang Vũ"}
	lb1Names := []string{"Vũ Thị Thu Hà", "Hoàng Văn Thắng", "Bùi Thị Lụa", "Ngô Đức Mạnh", "Đặng Thị Yến"}
	lb2Names := []string{"Phan Văn Khải", "Trịnh Thị Ngát", "Dương Minh Tuấn", "Lý Thị Hoa"}
	cands := func(unit string, names []string) []gCandidate {
		var out []gCandidate
		for k, n := range names {
			// Few distinct birth dates: some candidates share one.
			born := fmt.Sprintf("19%02d-0%d-15", 60+rng.IntN(4), 1+rng.IntN(2))
			out = append(out, gCandidate{ID: fmt.Sprintf("%s-%d", unit, k+1), Name: n, Born: born})
		}
		return out
	}
	var lb2Stations []string
	for i := 2; i <= 10; i++ {
		lb2Stations = append(lb2Stations, fmt.Sprintf("LB-NT-%02d", i))
	}
	e.Contests = []gContest{
		{ID: "QH", Name: "Đại biểu Quốc hội khóa XV", Level: "national", Units: []gUnit{
			{ID: "QH-HN-01", Name: "Đơn vị bầu cử số 1", Seats: 3, Areas: []string{"HN"}, Stations: []string{}, Candidates: cands("QH-HN-01", qhNames)},
		}},
		{ID: "HDND-LB", Name: "Đại biểu HĐND quận Long Biên", Level: "district", Units: []gUnit{
			{ID: "LB-01", Name: "Đơn vị bầu cử số 1", Seats: 3, Areas: []string{"LB-BD"}, Stations: []string{"LB-NT-01"}, Candidates: cands("LB-01", lb1Names)},
			{ID: "LB-02", Name: "Đơn vị bầu cử số 2", Seats: 2, Areas: []string{}, Stations: lb2Stations, Candidates: cands("LB-02", lb2Names)},
		}},
	}
	return newWorld(e)
}

func newWorld(e gElection) *world {
	w := &world{file: e, parent: map[string]string{}, wardOf: map[string]string{},
		unitOf: map[string]map[string]string{}, units: map[string]*gUnit{}, contestOf: map[string]*gContest{}}
	for _, a := range e.Areas {
		w.parent[a.ID] = a.Parent
	}
	for _, s := range e.Stations {
		w.wardOf[s.ID] = s.Ward
	}
	for ci := range w.file.Contests {
		c := &w.file.Contests[ci]
		w.contestOf[c.ID] = c
		w.unitOf[c.ID] = map[string]string{}
		for ui := range c.Units {
			u := &c.Units[ui]
			w.units[u.ID] = u
			in := map[string]bool{}
			for _, a := range u.Areas {
				in[a] = true
			}
			for _, s := range e.Stations {
				areas := w.stationAreas(s.ID)
				if in[areas[0]] || in[areas[1]] || in[areas[2]] {
					w.unitOf[c.ID][s.ID] = u.ID
				}
			}
			for _, s := range u.Stations {
				w.unitOf[c.ID][s] = u.ID
			}
		}
	}
	return w
}

// ---- minutes (CONTRACT §3) ----

type Counts struct {
	Registered int64 `json:"registered"`
	Voted      int64 `json:"voted"`
	Issued     int64 `json:"issued"`
	Received   int64 `json:"received"`
	Valid      int64 `json:"valid"`
	Invalid    int64 `json:"invalid"`
}

// minutes is one minutes object; withdrawn minutes have no counts (nil
// embedded pointer: the fields are left out) and no votes.
type minutes struct {
	Election string `json:"election"`
	Contest  string `json:"contest"`
	Station  string `json:"station"`
	Version  int64  `json:"version"`
	Status   string `json:"status"`
	*Counts
	Votes  map[string]int64 `json:"votes,omitempty"`
	Reason string           `json:"reason,omitempty"`
}

// key is the content identity: the JSON with map keys sorted.
func (m *minutes) key() string {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func (m *minutes) clone() *minutes {
	c := *m
	if m.Counts != nil {
		cc := *m.Counts
		c.Counts = &cc
	}
	if m.Votes != nil {
		c.Votes = map[string]int64{}
		for k, v := range m.Votes {
			c.Votes[k] = v
		}
	}
	return &c
}

// workloadStats counts what the generator produced, by intent.
type workloadStats struct {
	events, partial, final, corrections, withdrawals, recounts, duplicates, late, conflicts int
}

func (s workloadStats) String() string {
	return fmt.Sprintf("%d minutes: %d partial, %d final (%d corrections, %d recounts), %d withdrawals; noise: %d exact duplicates, %d late lower versions, %d conflicts",
		s.events, s.partial, s.final, s.corrections, s.recounts, s.withdrawals, s.duplicates, s.late, s.conflicts)
}

// genMinutes generates an election night: for each (contest, station) a
// run of partial minutes of growing counts, the final minutes, sometimes a
// correction (higher version, final), sometimes a withdrawal followed (or
// not) by a recount; interleaved across stations at random, with exact
// duplicates, lower versions held back until after higher ones, and
// same-version conflicts mixed in. Every minutes passes the stateless rules.
func genMinutes(rng *rand.Rand, w *world, partials int) ([]*minutes, workloadStats) {
	var st workloadStats
	type pair struct {
		queue []*minutes // in version order, before noise
	}
	// Candidate popularity per unit; the sum stays under the seats so that
	// the sum rule (votes ≤ valid × seats) holds.
	pop := map[string][]float64{
		"QH-HN-01": {0.80, 0.66, 0.50, 0.46, 0.30}, // the third seat is close: decided or bầu thêm
		"LB-01":    {0.75, 0.60, 0.45, 0.40, 0.35},
		"LB-02":    {0.70, 0.55, 0.40, 0.25},
	}
	turnout := map[string]float64{"QH-HN-01": 0.93, "LB-01": 0.90, "LB-02": 0.48} // LB-02: about half, bầu cử lại or not
	var pairs []*pair
	for ci := range w.file.Contests {
		c := &w.file.Contests[ci]
		for _, s := range w.file.Stations {
			uid, ok := w.unitOf[c.ID][s.ID]
			if !ok {
				continue
			}
			u := w.units[uid]
			p := &pair{}
			pairs = append(pairs, p)
			// The station's truth.
			reg := s.Registered + rng.Int64N(5) // voters added on the day
			voted := int64(float64(reg) * (turnout[uid] + 0.08*(rng.Float64()-0.5)))
			voted = min(voted, reg)
			received := voted - rng.Int64N(3)
			invalid := rng.Int64N(received/30 + 1)
			probs := make([]float64, len(u.Candidates))
			sum := 0.0
			for k := range probs {
				probs[k] = min(0.98, max(0.02, pop[uid][k]+0.1*(rng.Float64()-0.5)))
				sum += probs[k]
			}
			if sum > float64(u.Seats) {
				for k := range probs {
					probs[k] *= float64(u.Seats) / sum
				}
			}
			mk := func(version int64, status string, rcv, inv int64, omit bool) *minutes {
				m := &minutes{Election: w.file.ID, Contest: c.ID, Station: s.ID, Version: version, Status: status,
					Counts: &Counts{Registered: reg, Voted: voted, Issued: voted, Received: rcv, Valid: rcv - inv, Invalid: inv},
					Votes:  map[string]int64{}}
				for k, cand := range u.Candidates {
					if omit && rng.IntN(8) == 0 {
						continue // a partial minutes may leave a candidate out: counts 0
					}
					m.Votes[cand.ID] = int64(float64(rcv-inv) * probs[k])
				}
				return m
			}
			n := partials/2 + rng.IntN(partials+1)
			v := int64(0)
			for j := 1; j <= n; j++ {
				v++
				p.queue = append(p.queue, mk(v, "partial", received*int64(j)/int64(n+1), invalid*int64(j)/int64(n+1), true))
				st.partial++
			}
			v++
			fin := mk(v, "final", received, invalid, false)
			p.queue = append(p.queue, fin)
			st.final++
			if rng.IntN(10) < 3 { // correction after a recheck of one candidate
				v++
				corr := fin.clone()
				corr.Version = v
				k := u.Candidates[rng.IntN(len(u.Candidates))].ID
				corr.Votes[k] = max(0, corr.Votes[k]-1-rng.Int64N(20))
				corr.Reason = "sửa số phiếu của ứng cử viên " + k + " sau khi rà soát"
				p.queue = append(p.queue, corr)
				st.corrections++
				st.final++
			}
			if rng.IntN(100) < 15 { // a recount was ordered
				v++
				p.queue = append(p.queue, &minutes{Election: w.file.ID, Contest: c.ID, Station: s.ID, Version: v,
					Status: "withdrawn", Reason: "Ủy ban bầu cử yêu cầu kiểm phiếu lại"})
				st.withdrawals++
				if rng.IntN(10) < 8 {
					v++
					re := mk(v, "final", received-rng.Int64N(3), invalid, false)
					re.Reason = "kết quả kiểm phiếu lại"
					p.queue = append(p.queue, re)
					st.recounts++
					st.final++
				}
			}
		}
	}

	// Interleave: pick a random station with minutes left; sometimes hold a
	// version back and release it after higher ones (it arrives stale).
	var out []*minutes
	type held struct {
		m     *minutes
		after int // release once this many more minutes of its pair went out
		pair  int
	}
	var holds []held
	emittedOf := make([]int, len(pairs))
	var sent []*minutes
	for {
		live := 0
		for _, p := range pairs {
			if len(p.queue) > 0 {
				live++
			}
		}
		if live == 0 && len(holds) == 0 {
			break
		}
		if live == 0 { // release whatever is still held
			for _, h := range holds {
				out = append(out, h.m)
				st.late++
			}
			holds = nil
			continue
		}
		pi := rng.IntN(len(pairs))
		for len(pairs[pi].queue) == 0 {
			pi = (pi + 1) % len(pairs)
		}
		p := pairs[pi]
		m := p.queue[0]
		p.queue = p.queue[1:]
		if len(p.queue) > 0 && rng.IntN(100) < 4 {
			holds = append(holds, held{m: m, after: 1 + rng.IntN(3), pair: pi})
			continue
		}
		out = append(out, m)
		sent = append(sent, m)
		emittedOf[pi]++
		kept := holds[:0]
		for _, h := range holds {
			if h.pair == pi {
				h.after--
			}
			if h.after <= 0 {
				out = append(out, h.m)
				sent = append(sent, h.m)
				st.late++
			} else {
				kept = append(kept, h)
			}
		}
		holds = kept
		switch r := rng.IntN(100); {
		case r < 4: // the same minutes again, sometimes right away, sometimes later
			d := sent[len(sent)-1-rng.IntN(min(len(sent), 40))]
			out = append(out, d.clone())
			st.duplicates++
		case r < 7: // same version, different content: a conflict (or stale, if superseded)
			d := sent[len(sent)-1-rng.IntN(min(len(sent), 40))].clone()
			d.Reason = "bản nhập lại khác bản đã gửi"
			if d.Counts != nil {
				d.Registered++
			}
			out = append(out, d)
			st.conflicts++
		}
	}
	st.events = len(out)
	return out, st
}

// ---- the reference fold ----

// histEntry is one stream message of a station in a contest (CONTRACT §5).
type histEntry struct {
	Seq     uint64 `json:"seq"`
	Version int64  `json:"version"`
	Status  string `json:"status"`
	Outcome string `json:"outcome"`
}

type refFold struct {
	w       *world
	current map[string]*minutes // contest/station -> current minutes
	stored  map[string]uint64   // content key -> stream seq (what Nats-Msg-Id dedupe keeps once)
	history map[string][]histEntry

	streamSeq                             uint64
	applied, stale, rejected, dupInStream uint64
	dedupedAtGateway                      uint64
}

func newRefFold(w *world) *refFold {
	return &refFold{w: w, current: map[string]*minutes{}, stored: map[string]uint64{}, history: map[string][]histEntry{}}
}

// submit folds minutes accepted (202) by the gateway, in order, and returns
// the stream seq each one has (an identical earlier one's, if deduplicated)
// and whether it was deduplicated.
func (r *refFold) submit(ms []*minutes) (seqs []uint64, deduped int) {
	for _, m := range ms {
		k := m.key()
		if seq, ok := r.stored[k]; ok {
			// Identical content was stored before (same Nats-Msg-Id): the
			// stream keeps it once, the fold never sees this copy. Such a
			// copy can never change the outcome: check that it would not.
			if cur := r.current[m.Contest+"/"+m.Station]; cur == nil || cur.Version < m.Version {
				panic(fmt.Sprintf("reference: deduplicated minutes %s would apply", k))
			}
			seqs = append(seqs, seq)
			deduped++
			r.dedupedAtGateway++
			continue
		}
		r.streamSeq++
		r.stored[k] = r.streamSeq
		seqs = append(seqs, r.streamSeq)
		pk := m.Contest + "/" + m.Station
		cur := r.current[pk]
		outcome := "applied"
		switch {
		case cur == nil:
		case m.Version < cur.Version:
			outcome = "stale"
		case m.Version == cur.Version && m.key() == cur.key():
			outcome = "duplicate"
		case m.Version == cur.Version:
			outcome = "rejected"
		}
		switch outcome {
		case "applied":
			r.current[pk] = m
			r.applied++
		case "stale":
			r.stale++
		case "duplicate":
			r.dupInStream++
		case "rejected":
			r.rejected++
		}
		r.history[pk] = append(r.history[pk], histEntry{Seq: r.streamSeq, Version: m.Version, Status: m.Status, Outcome: outcome})
	}
	return seqs, deduped
}

// areaResult and unitResult are the JSON of CONTRACT §4, decoded the same
// way from the server and built by the reference.
type areaResult struct {
	Contest           string           `json:"contest"`
	Area              string           `json:"area"`
	Level             string           `json:"level"`
	Name              string           `json:"name"`
	StationsExpected  int64            `json:"stations_expected"`
	StationsReporting int64            `json:"stations_reporting"`
	StationsFinal     int64            `json:"stations_final"`
	Registered        int64            `json:"registered"`
	Voted             int64            `json:"voted"`
	Issued            int64            `json:"issued"`
	Received          int64            `json:"received"`
	Valid             int64            `json:"valid"`
	Invalid           int64            `json:"invalid"`
	Votes             map[string]int64 `json:"votes"`
	AppliedSeq        uint64           `json:"applied_seq"`
}

type candidateResult struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Born  string `json:"born"`
	Votes int64  `json:"votes"`
}

type unitResult struct {
	Contest           string            `json:"contest"`
	Unit              string            `json:"unit"`
	Level             string            `json:"level"`
	Name              string            `json:"name"`
	StationsExpected  int64             `json:"stations_expected"`
	StationsReporting int64             `json:"stations_reporting"`
	StationsFinal     int64             `json:"stations_final"`
	Registered        int64             `json:"registered"`
	Voted             int64             `json:"voted"`
	Issued            int64             `json:"issued"`
	Received          int64             `json:"received"`
	Valid             int64             `json:"valid"`
	Invalid           int64             `json:"invalid"`
	Votes             map[string]int64  `json:"votes"`
	Seats             int               `json:"seats"`
	Candidates        []candidateResult `json:"candidates"`
	Winners           []string          `json:"winners"`
	Status            string            `json:"status"`
	AppliedSeq        uint64            `json:"applied_seq"`
}

// sums adds up the current partial and final minutes of the stations for
// which in returns true.
func (r *refFold) sums(contest string, in func(station string) bool, res *areaResult) {
	for _, s := range r.w.file.Stations {
		uid, votes := r.w.unitOf[contest][s.ID]
		if !votes || !in(s.ID) {
			continue
		}
		res.StationsExpected++
		for _, cand := range r.w.units[uid].Candidates {
			if _, ok := res.Votes[cand.ID]; !ok {
				res.Votes[cand.ID] = 0
			}
		}
		m := r.current[contest+"/"+s.ID]
		if m == nil || (m.Status != "partial" && m.Status != "final") {
			continue
		}
		res.StationsReporting++
		if m.Status == "final" {
			res.StationsFinal++
		}
		res.Registered += m.Registered
		res.Voted += m.Voted
		res.Issued += m.Issued
		res.Received += m.Received
		res.Valid += m.Valid
		res.Invalid += m.Invalid
		for id, v := range m.Votes {
			res.Votes[id] += v
		}
	}
}

func (r *refFold) areaResult(contest string, a gArea) areaResult {
	res := areaResult{Contest: contest, Area: a.ID, Level: a.Level, Name: a.Name, Votes: map[string]int64{}, AppliedSeq: r.streamSeq}
	r.sums(contest, func(s string) bool { areas := r.w.stationAreas(s); return slices.Contains(areas[:], a.ID) }, &res)
	// CONTRACT §4 v2: no votes where the contest's councils lie below the
	// area (a district council seen from its province).
	depth := map[string]int{"national": -1, "province": 0, "district": 1, "ward": 2, "commune": 2}
	for _, c := range r.w.file.Contests {
		if c.ID == contest && depth[c.Level] > depth[a.Level] {
			res.Votes = nil
		}
	}
	return res
}

func (r *refFold) unitResult(contest string, u *gUnit) unitResult {
	var a areaResult
	a.Votes = map[string]int64{}
	r.sums(contest, func(s string) bool { return r.w.unitOf[contest][s] == u.ID }, &a)
	res := unitResult{
		Contest: contest, Unit: u.ID, Level: "unit", Name: u.Name,
		StationsExpected: a.StationsExpected, StationsReporting: a.StationsReporting, StationsFinal: a.StationsFinal,
		Registered: a.Registered, Voted: a.Voted, Issued: a.Issued, Received: a.Received, Valid: a.Valid, Invalid: a.Invalid,
		Votes: a.Votes, Seats: u.Seats, Winners: []string{}, AppliedSeq: r.streamSeq,
	}
	for _, c := range u.Candidates {
		res.Candidates = append(res.Candidates, candidateResult{ID: c.ID, Name: c.Name, Born: c.Born, Votes: a.Votes[c.ID]})
	}
	// Rank: votes descending, born ascending, id ascending (byte order).
	sort.Slice(res.Candidates, func(i, j int) bool {
		x, y := res.Candidates[i], res.Candidates[j]
		if x.Votes != y.Votes {
			return x.Votes > y.Votes
		}
		if x.Born != y.Born {
			return x.Born < y.Born
		}
		return x.ID < y.ID
	})
	pass := func(c candidateResult) bool { return 2*c.Votes > a.Valid }
	for i, c := range res.Candidates {
		if i < u.Seats && pass(c) {
			res.Winners = append(res.Winners, c.ID)
		}
	}
	tie := false
	if len(res.Candidates) > u.Seats {
		last, next := res.Candidates[u.Seats-1], res.Candidates[u.Seats]
		if pass(last) && pass(next) && last.Votes == next.Votes && last.Born == next.Born {
			tie = true
			var w []string
			for _, c := range res.Candidates[:u.Seats] {
				if c.Votes != last.Votes || c.Born != last.Born {
					w = append(w, c.ID)
				}
			}
			res.Winners = append([]string{}, w...)
		}
	}
	national := r.w.contestOf[contest].Level == "national"
	switch {
	case a.StationsFinal < a.StationsExpected:
		res.Status = "counting"
	case 2*a.Voted <= a.Registered:
		res.Status = "re_election"
		res.Winners = []string{}
	case tie:
		res.Status = "tie"
	case national && len(res.Winners) < u.Seats, !national && 3*len(res.Winners) < 2*u.Seats:
		res.Status = "additional_election"
	default:
		res.Status = "decided"
	}
	return res
}

// ---- comparing the server with the reference ----

// stationView is GET /api/v1/contests/{c}/stations/{s}.
type stationView struct {
	Current json.RawMessage `json:"current"`
	History []histEntry     `json:"history"`
}

// compareAll fetches every area result and unit result of every contest,
// every station's current minutes and history, and the status, and
// compares them with the reference. The fold must have caught up.
func compareAll(t testing.TB, client *http.Client, url string, ref *refFold, stations bool) {
	t.Helper()
	var st apiStatus
	if err := getJSON(client, url+"/api/v1/status", &st); err != nil {
		t.Fatal(err)
	}
	if st.Election != ref.w.file.ID || st.StreamSeq != ref.streamSeq || st.AppliedSeq != ref.streamSeq ||
		st.Applied != ref.applied || st.Rejected != ref.rejected {
		t.Errorf("status %+v; reference: stream_seq = applied_seq = %d, applied %d, rejected %d (stale %d)",
			st, ref.streamSeq, ref.applied, ref.rejected, ref.stale)
	}
	var problems []string
	for ci := range ref.w.file.Contests {
		c := &ref.w.file.Contests[ci]
		for _, a := range ref.w.file.Areas {
			var got areaResult
			if err := getJSON(client, url+"/api/v1/contests/"+c.ID+"/areas/"+a.ID, &got); err != nil {
				t.Fatal(err)
			}
			if d := diffJSON(got, ref.areaResult(c.ID, a)); d != "" {
				problems = append(problems, fmt.Sprintf("contest %s area %s: %s", c.ID, a.ID, d))
			}
		}
		for ui := range c.Units {
			u := &c.Units[ui]
			var got unitResult
			if err := getJSON(client, url+"/api/v1/contests/"+c.ID+"/units/"+u.ID, &got); err != nil {
				t.Fatal(err)
			}
			if d := diffJSON(got, ref.unitResult(c.ID, u)); d != "" {
				problems = append(problems, fmt.Sprintf("contest %s unit %s: %s", c.ID, u.ID, d))
			}
		}
		if !stations {
			continue
		}
		for _, s := range ref.w.file.Stations {
			if _, ok := ref.w.unitOf[c.ID][s.ID]; !ok {
				continue
			}
			var got stationView
			if err := getJSON(client, url+"/api/v1/contests/"+c.ID+"/stations/"+s.ID, &got); err != nil {
				t.Fatal(err)
			}
			pk := c.ID + "/" + s.ID
			wantHist := ref.history[pk]
			if wantHist == nil {
				wantHist = []histEntry{}
			}
			if d := diffJSON(got.History, wantHist); d != "" {
				problems = append(problems, fmt.Sprintf("contest %s station %s history: %s", c.ID, s.ID, d))
			}
			var cur *minutes
			if err := json.Unmarshal(got.Current, &cur); err != nil {
				t.Fatalf("station %s current %s: %v", pk, got.Current, err)
			}
			want := ref.current[pk]
			switch {
			case cur == nil && want == nil:
			case cur == nil || want == nil:
				problems = append(problems, fmt.Sprintf("contest %s station %s current: got %s, want %v", c.ID, s.ID, got.Current, want))
			default:
				if d := diffJSON(cur, want); d != "" {
					problems = append(problems, fmt.Sprintf("contest %s station %s current: %s", c.ID, s.ID, d))
				}
			}
		}
	}
	if len(problems) > 0 {
		if len(problems) > 10 {
			problems = append(problems[:10], fmt.Sprintf("... and %d more", len(problems)-10))
		}
		t.Errorf("server results differ from the reference at stream seq %d:\n  %s", ref.streamSeq, strings.Join(problems, "\n  "))
	}
}

// diffJSON compares two values by their JSON and describes the first
// difference, or returns "".
func diffJSON(got, want any) string {
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) == string(w) {
		return ""
	}
	var gm, wm any
	json.Unmarshal(g, &gm)
	json.Unmarshal(w, &wm)
	if gmap, ok := gm.(map[string]any); ok {
		if wmap, ok := wm.(map[string]any); ok {
			var keys []string
			for k := range wmap {
				keys = append(keys, k)
			}
			for k := range gmap {
				if _, ok := wmap[k]; !ok {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			var diffs []string
			for _, k := range keys {
				gv, _ := json.Marshal(gmap[k])
				wv, _ := json.Marshal(wmap[k])
				if string(gv) != string(wv) {
					diffs = append(diffs, fmt.Sprintf("%s: got %s, want %s", k, gv, wv))
				}
			}
			return strings.Join(diffs, "; ")
		}
	}
	return fmt.Sprintf("got %s, want %s", g, w)
}
