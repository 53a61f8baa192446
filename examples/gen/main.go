// Command gen writes the examples: for each, the election file and a stream
// of count minutes.
//
//   - longbien: Quận Long Biên, Hà Nội, in the election of 23 May 2021
//     (National Assembly term XV and People's Councils 2021–2026), three
//     tiers;
//   - hanoi-2026: Hà Nội's National Assembly unit no. 10 in the election of
//     15 March 2026, two tiers (province, commune): see hanoi2026.go.
//
// For Long Biên:
// The administrative names, the published figures of Ngọc Thụy (17 polling
// areas, 28,388 voters) and Phúc Lợi (8 polling areas), and the National
// Assembly unit (Hà Nội no. 2, 3 seats) are real. Everything else (the other
// wards' polling areas, the People's Council units, the candidates, the
// counts) is generated from a fixed seed, so every run writes the same bytes.
// Candidate names are fictional and say so: each ends in " (hư cấu)".
//
// Run it from the module root:
//
//	go run ./examples/gen
//
// It writes examples/<name>/election.json (CONTRACT §2) and
// examples/<name>/minutes.ndjson (CONTRACT §3, one minutes object a line).
// Before writing, it parses the election with [tally.Parse], checks every
// minutes line with [tally.Election.Check], checks that versions run 1, 2, 3
// ... for each (contest, station), and decides every electoral unit with
// [tally.Election.Decide]; any problem is fatal and nothing is written.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tallyvn/tally/tally"
)

// example is one example election: its file's header, areas and contests,
// and how its minutes end.
type example struct {
	dir        string // under examples/
	id         string
	name, date string
	levels     []tally.AreaLevel // nil: the 2021 default
	seed       [2]uint64
	// upper are the areas above the bottom level; bottom is the parent of
	// every ward or commune, wardPrefix the prefix of their ids.
	upper      []tally.Area
	bottom     string
	bottomKind tally.AreaLevel
	wardPrefix string
	wards      []wardSpec
	contests   []contestSpec
	// recount is the contest of the withdrawn-and-recounted minutes.
	recount string
	// total labels the summary's total line.
	total string
}

var longBien = &example{
	dir: "longbien", id: "hn-2021", seed: [2]uint64{20210523, 2026},
	name: "Bầu cử đại biểu Quốc hội khóa XV và đại biểu HĐND các cấp nhiệm kỳ 2021-2026",
	date: "2021-05-23",
	upper: []tally.Area{
		{ID: "HN", Name: "Thành phố Hà Nội", Level: tally.Province},
		{ID: "LB", Name: "Quận Long Biên", Level: tally.District, Parent: "HN"},
	},
	bottom: "LB", bottomKind: tally.Ward, wardPrefix: "LB-",
	wards: wards, contests: contests, recount: "HDND-LB", total: "LB",
}

// examples are every example gen writes, by directory.
var examples = []*example{longBien, hanoi2026}

const (
	// Reasons written in the minutes.
	reasonCorrection = "sửa số phiếu ứng cử viên sau kiểm lại"
	reasonWithdrawn  = "Ban bầu cử yêu cầu kiểm phiếu lại"
	reasonRecount    = "kết quả kiểm phiếu lại theo yêu cầu của Ban bầu cử"

	fictional = " (hư cấu)" // suffix of every candidate name
)

// wardSpec describes one ward's polling areas.
type wardSpec struct {
	code    string // the ward id is "LB-" + code
	name    string
	areas   int   // number of polling areas
	voters  int   // registered voters, all areas together
	pinned  []int // sizes given exactly, placed among the others
	special []int // sizes given exactly, numbered last (hospital, barracks)
	lo, hi  int   // bounds of the other areas' sizes
}

// wards are Long Biên's 14 wards. Ngọc Thụy and Phúc Lợi follow the
// published 2021 figures (DOMAIN.md); the others are plausible.
var wards = []wardSpec{
	{code: "BD", name: "Phường Bồ Đề", areas: 18, voters: 24800, lo: 400, hi: 3800},
	{code: "CK", name: "Phường Cự Khối", areas: 8, voters: 9800, lo: 400, hi: 3800},
	{code: "DG", name: "Phường Đức Giang", areas: 16, voters: 21900, special: []int{168}, lo: 400, hi: 3800},
	{code: "GT", name: "Phường Gia Thụy", areas: 11, voters: 15900, lo: 400, hi: 3800},
	{code: "GB", name: "Phường Giang Biên", areas: 10, voters: 14200, lo: 400, hi: 3800},
	{code: "LB", name: "Phường Long Biên", areas: 12, voters: 17300, special: []int{135}, lo: 400, hi: 3800},
	{code: "NL", name: "Phường Ngọc Lâm", areas: 14, voters: 17600, lo: 400, hi: 3800},
	{code: "NT", name: "Phường Ngọc Thụy", areas: 17, voters: 28388, pinned: []int{2944}, special: []int{92}, lo: 600, hi: 2900},
	{code: "PD", name: "Phường Phúc Đồng", areas: 12, voters: 15100, lo: 400, hi: 3800},
	{code: "PL", name: "Phường Phúc Lợi", areas: 8, voters: 12450, pinned: []int{610, 2337}, lo: 700, hi: 2300},
	{code: "SD", name: "Phường Sài Đồng", areas: 12, voters: 16900, lo: 400, hi: 3800},
	{code: "TB", name: "Phường Thạch Bàn", areas: 14, voters: 18200, special: []int{224}, lo: 400, hi: 3800},
	{code: "TT", name: "Phường Thượng Thanh", areas: 16, voters: 20600, lo: 400, hi: 3800},
	{code: "VH", name: "Phường Việt Hưng", areas: 15, voters: 19700, lo: 400, hi: 3800},
}

// unitSpec describes one electoral unit.
type unitSpec struct {
	id, name   string
	seats      int
	candidates int
	areas      []string // area ids
	// filled is how many seats the unit fills; 0 means all of them.
	filled int
	// sameBorn gives candidates 2 and 4 the same birth date.
	sameBorn bool
	// outside is the unit's polling stations not in the file
	// (stations_outside); such a unit stays counting.
	outside int
	// council names the council's area; "" leaves it to be inferred.
	council string
	// stations lists polling areas by ward code and number (e.g. "BD:1-4")
	// instead of areas.
	stations []string
}

// contestSpec describes one contest.
type contestSpec struct {
	id, name string
	level    tally.ContestLevel
	units    []unitSpec
}

// wardIDs turns Long Biên ward codes into area ids.
func wardIDs(codes ...string) []string {
	ids := make([]string, len(codes))
	for i, c := range codes {
		ids[i] = "LB-" + c
	}
	return ids
}

// contests are the three ballots of a Long Biên voter in 2021. The National
// Assembly unit is real; the People's Council units are illustrative (their
// ward groupings are not the published ones) but follow the law: at most 5
// seats, candidates outnumbering seats by 2 for 3 seats and by 3 for 4 or 5.
var contests = []contestSpec{
	{
		id: "QH", name: "Đại biểu Quốc hội khóa XV", level: tally.National,
		// Hoàn Kiếm's and Đông Anh's polling areas are not in the file:
		// the unit stays counting. Their number is made up (plausible).
		units: []unitSpec{{
			id: "QH-HN-02", name: "Đơn vị bầu cử số 2 (Hoàn Kiếm, Long Biên, Đông Anh) — phần Long Biên",
			seats: 3, candidates: 5, areas: []string{"LB"}, outside: 342,
		}},
	},
	{
		id: "HDND-HN", name: "Đại biểu HĐND thành phố Hà Nội khóa XVI", level: tally.ProvinceCouncil,
		units: []unitSpec{
			{
				id: "HDND-HN-01", name: "Đơn vị bầu cử số 1 (quận Long Biên: Ngọc Thụy, Thượng Thanh, Giang Biên, Đức Giang, Việt Hưng, Phúc Lợi)",
				seats: 4, candidates: 7, areas: wardIDs("NT", "TT", "GB", "DG", "VH", "PL"),
			},
			{
				id: "HDND-HN-02", name: "Đơn vị bầu cử số 2 (quận Long Biên: Gia Thụy, Ngọc Lâm, Bồ Đề, Long Biên, Phúc Đồng, Sài Đồng, Thạch Bàn, Cự Khối)",
				seats: 3, candidates: 5, areas: wardIDs("GT", "NL", "BD", "LB", "PD", "SD", "TB", "CK"),
			},
		},
	},
	{
		id: "HDND-LB", name: "Đại biểu HĐND quận Long Biên khóa VI", level: tally.DistrictCouncil,
		units: []unitSpec{
			{id: "HDND-LB-01", name: "Đơn vị bầu cử số 1 (phường Ngọc Thụy)", seats: 4, candidates: 7, areas: wardIDs("NT")},
			{id: "HDND-LB-02", name: "Đơn vị bầu cử số 2 (phường Thượng Thanh, Giang Biên)", seats: 5, candidates: 8, areas: wardIDs("TT", "GB")},
			{id: "HDND-LB-03", name: "Đơn vị bầu cử số 3 (phường Đức Giang, Việt Hưng)", seats: 5, candidates: 8, areas: wardIDs("DG", "VH")},
			{id: "HDND-LB-04", name: "Đơn vị bầu cử số 4 (phường Phúc Lợi, Phúc Đồng)", seats: 4, candidates: 7, areas: wardIDs("PL", "PD")},
			{id: "HDND-LB-05", name: "Đơn vị bầu cử số 5 (phường Gia Thụy, Ngọc Lâm)", seats: 4, candidates: 7, areas: wardIDs("GT", "NL")},
			{id: "HDND-LB-06", name: "Đơn vị bầu cử số 6 (phường Bồ Đề)", seats: 4, candidates: 7, areas: wardIDs("BD")},
			// Decided with a seat left empty: 4 of 5 pass, 3 × 4 ≥ 2 × 5.
			{id: "HDND-LB-07", name: "Đơn vị bầu cử số 7 (phường Long Biên, Thạch Bàn, Cự Khối)", seats: 5, candidates: 8, areas: wardIDs("LB", "TB", "CK"), filled: 4},
			{id: "HDND-LB-08", name: "Đơn vị bầu cử số 8 (phường Sài Đồng)", seats: 3, candidates: 5, areas: wardIDs("SD"), sameBorn: true},
		},
	},
}

// Name parts for fictional candidates.
var (
	surnames     = []string{"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Đào", "Đinh", "Phan", "Trịnh", "Lương", "Tạ", "Cao"}
	maleMiddle   = []string{"Văn", "Đức", "Minh", "Quang", "Hữu", "Mạnh", "Xuân", "Tiến"}
	femaleMiddle = []string{"Thị", "Thu", "Thanh", "Ngọc", "Minh", "Thị Thu", "Phương", "Hồng"}
	maleGiven    = []string{"Hùng", "Dũng", "Tuấn", "Hải", "Long", "Nam", "Sơn", "Thắng", "Cường", "Phong", "Trung", "Khánh", "Hiếu", "Quân", "Bình", "Việt", "Hoàng", "Tùng", "Thành", "Đạt"}
	femaleGiven  = []string{"Lan", "Hương", "Mai", "Hà", "Hạnh", "Nga", "Thảo", "Trang", "Linh", "Yến", "Phương", "Dung", "Hằng", "Thủy", "Vân", "Huyền", "Ngân", "Oanh", "Loan", "Nhung"}
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("gen: ")
	out := flag.String("out", "examples", "directory holding the examples' directories")
	only := flag.String("example", "", "write only this example (longbien or hanoi-2026)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: go run ./examples/gen [-out DIR] [-example NAME]")
		os.Exit(2)
	}
	for _, ex := range examples {
		if *only != "" && ex.dir != *only {
			continue
		}
		dir := filepath.Join(*out, ex.dir)
		sum, err := generate(ex, dir)
		if err != nil {
			log.Fatalf("%s: %v", ex.dir, err)
		}
		sum.print(os.Stdout, ex.total)
		fmt.Printf("wrote %s and %s\n\n", filepath.Join(dir, "election.json"), filepath.Join(dir, "minutes.ndjson"))
	}
}

// generate builds the election and its minutes, verifies them and writes
// election.json and minutes.ndjson into dir. Nothing is written if the
// verification fails.
func generate(ex *example, dir string) (*summary, error) {
	r := rand.New(rand.NewPCG(ex.seed[0], ex.seed[1]))
	e, err := buildElection(r, ex)
	if err != nil {
		return nil, err
	}
	var electionJSON bytes.Buffer
	enc := json.NewEncoder(&electionJSON)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	// The minutes are drawn against the parsed election, which carries the
	// station-to-unit indexes.
	parsed, err := tally.Parse(electionJSON.Bytes())
	if err != nil {
		return nil, err
	}
	minutes, err := buildMinutes(r, parsed, ex)
	if err != nil {
		return nil, err
	}
	var minutesNDJSON bytes.Buffer
	enc = json.NewEncoder(&minutesNDJSON)
	enc.SetEscapeHTML(false)
	for _, m := range minutes {
		if err := enc.Encode(m); err != nil {
			return nil, err
		}
	}

	sum, err := verify(electionJSON.Bytes(), minutesNDJSON.Bytes())
	if err != nil {
		return nil, fmt.Errorf("generated files fail verification: %w", err)
	}
	// The units must come out as designed.
	for _, ur := range sum.Units {
		spec := ex.findUnit(ur.Unit)
		want := spec.seats
		if spec.filled > 0 {
			want = spec.filled
		}
		if len(ur.Winners) != want {
			return nil, fmt.Errorf("unit %s: %d winners, designed for %d", ur.Unit, len(ur.Winners), want)
		}
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "election.json"), electionJSON.Bytes(), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "minutes.ndjson"), minutesNDJSON.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return sum, nil
}

func (ex *example) findUnit(id string) unitSpec {
	for _, c := range ex.contests {
		for _, u := range c.units {
			if u.id == id {
				return u
			}
		}
	}
	panic("unknown unit " + id)
}

// buildElection lays out the areas, the polling areas and the contests.
func buildElection(r *rand.Rand, ex *example) (*tally.Election, error) {
	e := &tally.Election{
		ID:     ex.id,
		Name:   ex.name,
		Date:   ex.date,
		Levels: ex.levels,
		Areas:  slices.Clone(ex.upper),
	}
	for _, w := range ex.wards {
		wid := ex.wardPrefix + w.code
		e.Areas = append(e.Areas, tally.Area{ID: wid, Name: w.name, Level: ex.bottomKind, Parent: ex.bottom})
		sizes, err := wardSizes(r, w)
		if err != nil {
			return nil, fmt.Errorf("ward %s: %w", wid, err)
		}
		for i, n := range sizes {
			st := tally.Station{
				ID:         fmt.Sprintf("%s-%02d", wid, i+1),
				Name:       fmt.Sprintf("Khu vực bỏ phiếu số %d", i+1),
				Registered: int64(n),
			}
			if ex.levels == nil {
				st.Ward = wid // the v1 name, as 2021 files have it
			} else {
				st.Area = wid
			}
			e.Stations = append(e.Stations, st)
		}
	}

	names := &namer{r: r, used: map[string]bool{}}
	for _, cs := range ex.contests {
		c := tally.Contest{ID: cs.id, Name: cs.name, Level: cs.level}
		for _, us := range cs.units {
			u := tally.Unit{
				ID:              us.id,
				Name:            us.name,
				Council:         us.council,
				Seats:           us.seats,
				Areas:           us.areas,
				Stations:        []string{},
				StationsOutside: us.outside,
			}
			if u.Areas == nil {
				u.Areas = []string{}
			}
			for _, sel := range us.stations {
				ids, err := ex.stationRange(sel)
				if err != nil {
					return nil, fmt.Errorf("unit %s: %w", us.id, err)
				}
				u.Stations = append(u.Stations, ids...)
			}
			for k := range us.candidates {
				u.Candidates = append(u.Candidates, tally.Candidate{
					ID:   fmt.Sprintf("%s-%d", us.id, k+1),
					Name: names.next() + fictional,
					Born: fmt.Sprintf("%04d-%02d-%02d", 1960+r.IntN(36), 1+r.IntN(12), 1+r.IntN(28)),
				})
			}
			if us.sameBorn {
				u.Candidates[3].Born = u.Candidates[1].Born
			}
			c.Units = append(c.Units, u)
		}
		e.Contests = append(e.Contests, c)
	}
	return e, nil
}

// stationRange turns "CODE:a-b" into the ids of polling areas a to b of
// ward or commune CODE.
func (ex *example) stationRange(sel string) ([]string, error) {
	code, rng, ok := strings.Cut(sel, ":")
	var a, b int
	if _, err := fmt.Sscanf(rng, "%d-%d", &a, &b); !ok || err != nil || a < 1 || b < a {
		return nil, fmt.Errorf("station range %q is not CODE:a-b", sel)
	}
	var ids []string
	for i := a; i <= b; i++ {
		ids = append(ids, fmt.Sprintf("%s%s-%02d", ex.wardPrefix, code, i))
	}
	return ids, nil
}

// wardSizes returns the registered voters of each polling area of w.
func wardSizes(r *rand.Rand, w wardSpec) ([]int, error) {
	rest, total := w.areas, w.voters
	for _, n := range slices.Concat(w.pinned, w.special) {
		rest--
		total -= n
	}
	sizes, err := split(r, rest, total, w.lo, w.hi)
	if err != nil {
		return nil, err
	}
	sizes = append(sizes, w.pinned...)
	r.Shuffle(len(sizes), func(i, j int) { sizes[i], sizes[j] = sizes[j], sizes[i] })
	return append(sizes, w.special...), nil
}

// split returns n sizes in [lo, hi] summing to total, spread at random.
func split(r *rand.Rand, n, total, lo, hi int) ([]int, error) {
	if n <= 0 || n*lo > total || n*hi < total {
		return nil, fmt.Errorf("cannot split %d voters into %d areas of %d to %d", total, n, lo, hi)
	}
	w := make([]float64, n)
	var sum float64
	for i := range w {
		w[i] = 0.4 + 1.2*r.Float64()
		sum += w[i]
	}
	x := make([]int, n)
	got := 0
	for i := range x {
		x[i] = min(hi, max(lo, int(math.Round(float64(total)*w[i]/sum))))
		got += x[i]
	}
	for i := 0; got != total; i = (i + 1) % n {
		switch {
		case got < total && x[i] < hi:
			x[i]++
			got++
		case got > total && x[i] > lo:
			x[i]--
			got--
		}
	}
	return x, nil
}

// namer draws fictional Vietnamese full names, never the same twice.
type namer struct {
	r    *rand.Rand
	used map[string]bool
}

func (n *namer) next() string {
	pick := func(s []string) string { return s[n.r.IntN(len(s))] }
	for {
		var name string
		if n.r.IntN(2) == 0 {
			name = pick(surnames) + " " + pick(maleMiddle) + " " + pick(maleGiven)
		} else {
			name = pick(surnames) + " " + pick(femaleMiddle) + " " + pick(femaleGiven)
		}
		if !n.used[name] {
			n.used[name] = true
			return name
		}
	}
}

// minutesJSON is one minutes object as CONTRACT §3 spells it. Counts are
// pointers so that withdrawn minutes omit them while final minutes keep
// zeros.
type minutesJSON struct {
	Election   string           `json:"election"`
	Contest    string           `json:"contest"`
	Station    string           `json:"station"`
	Version    int64            `json:"version"`
	Status     string           `json:"status"`
	Registered *int64           `json:"registered,omitempty"`
	Voted      *int64           `json:"voted,omitempty"`
	Issued     *int64           `json:"issued,omitempty"`
	Received   *int64           `json:"received,omitempty"`
	Valid      *int64           `json:"valid,omitempty"`
	Invalid    *int64           `json:"invalid,omitempty"`
	Votes      map[string]int64 `json:"votes,omitempty"`
	Reason     string           `json:"reason,omitempty"`
}

// count is what one polling group counted for one contest.
type count struct {
	registered, voted, issued, received, valid, invalid int64
	votes                                               []int64 // in the unit's candidate order
}

func (c count) clone() count {
	c.votes = slices.Clone(c.votes)
	return c
}

// minutes renders c as minutes of the given unit.
func (c count) minutes(election, contest, station string, u *tally.Unit, version int64, status tally.Status, reason string) minutesJSON {
	m := minutesJSON{
		Election: election, Contest: contest, Station: station,
		Version: version, Status: status.String(), Reason: reason,
	}
	if status == tally.Withdrawn {
		return m
	}
	m.Registered, m.Voted, m.Issued = &c.registered, &c.voted, &c.issued
	m.Received, m.Valid, m.Invalid = &c.received, &c.valid, &c.invalid
	m.Votes = make(map[string]int64, len(c.votes))
	for k, v := range c.votes {
		m.Votes[u.Candidates[k].ID] = v
	}
	return m
}

// capVotes lowers votes until none exceeds valid and their sum is at most
// valid × seats (a valid ballot keeps at most seats names).
func capVotes(votes []int64, valid int64, seats int) {
	var sum int64
	for k := range votes {
		votes[k] = min(max(votes[k], 0), valid)
		sum += votes[k]
	}
	for k := 0; sum > valid*int64(seats); k = (k + 1) % len(votes) {
		if votes[k] > 0 {
			votes[k]--
			sum--
		}
	}
}

// popularity returns, for each candidate of unit us, the share of valid
// ballots that keep the name. The first filled ranks clear half of the
// valid ballots, an unfilled seat's rank falls just short, the rest lose;
// voters keep somewhat fewer names than seats.
func popularity(r *rand.Rand, us unitSpec) []float64 {
	filled := us.seats
	if us.filled > 0 {
		filled = us.filled
	}
	p := make([]float64, us.candidates)
	var sum, losers float64
	for i := range p {
		switch {
		case i < filled:
			p[i] = 0.58 + 0.30*r.Float64()
		case i < us.seats:
			p[i] = 0.44 + 0.03*r.Float64()
		default:
			p[i] = 0.20 + 0.26*r.Float64()
			losers += p[i]
		}
		sum += p[i]
	}
	if limit := 0.93 * float64(us.seats); sum > limit {
		f := 1 - (sum-limit)/losers
		for i := us.seats; i < len(p); i++ {
			p[i] *= f
		}
	}
	r.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
	return p
}

// key names one (contest, station) pair.
type key struct{ contest, station string }

// buildMinutes draws the counts of every station in every contest and
// returns the minutes stream: partial counts of some stations, then every
// station's final minutes, then corrections, a withdrawal and its recount.
func buildMinutes(r *rand.Rand, e *tally.Election, ex *example) ([]minutesJSON, error) {
	ns := len(e.Stations)

	// Day figures shared by a station's three contests.
	registered := make([]int64, ns)
	voted := make([]int64, ns)
	for s, st := range e.Stations {
		registered[s] = st.Registered
	}
	for _, s := range r.Perm(ns)[:3] { // voters added to the list on the day
		registered[s] += int64(1 + r.IntN(4))
	}
	for s := range voted {
		absent := int64(math.Round(float64(registered[s]) * (0.002 + 0.012*r.Float64())))
		voted[s] = registered[s] - absent
	}

	// Final counts, per contest and station.
	final := map[key]count{}
	for ci, cs := range ex.contests {
		c := &e.Contests[ci]
		for ui, us := range cs.units {
			u := &c.Units[ui]
			p := popularity(r, us)
			for _, s := range e.UnitStations(ci, ui) {
				st := e.Stations[s].ID
				cn := count{registered: registered[s], voted: voted[s], issued: voted[s]}
				cn.received = cn.issued
				if cn.received > 0 && r.IntN(20) == 0 { // a ballot not put in the box
					cn.received--
				}
				rate := 0.002 + 0.008*r.Float64()
				if cs.level == tally.National {
					rate = 0.001 + 0.005*r.Float64()
				}
				cn.invalid = int64(math.Round(float64(cn.received) * rate))
				cn.valid = cn.received - cn.invalid
				cn.votes = make([]int64, len(p))
				for k := range p {
					share := p[k] + 0.08*(r.Float64()-0.5)
					cn.votes[k] = int64(math.Round(float64(cn.valid) * share))
				}
				capVotes(cn.votes, cn.valid, u.Seats)
				final[key{c.ID, st}] = cn
			}
		}
	}

	unitOf := func(ci, s int) *tally.Unit { return &e.Contests[ci].Units[e.StationUnit(ci, s)] }
	order := r.Perm(ns)
	partial := slices.Sorted(slices.Values(order[:10])) // stations that report progress first
	withdrawn := order[10]                              // station whose HDND-LB count is recounted
	version := map[key]int64{}
	var out []minutesJSON
	emit := func(ci, s int, cn count, status tally.Status, reason string) {
		k := key{e.Contests[ci].ID, e.Stations[s].ID}
		version[k]++
		out = append(out, cn.minutes(e.ID, k.contest, k.station, unitOf(ci, s), version[k], status, reason))
	}

	// Progress while counting: ballots sorted into valid and invalid, part
	// of the names tallied.
	for _, s := range partial {
		for ci := range e.Contests {
			cn := final[key{e.Contests[ci].ID, e.Stations[s].ID}].clone()
			f := 0.3 + 0.4*r.Float64()
			for k := range cn.votes {
				cn.votes[k] = int64(float64(cn.votes[k]) * f)
			}
			emit(ci, s, cn, tally.Partial, "")
		}
	}
	// Every station's final minutes, in the order polling groups finish; a
	// group sends its three minutes together.
	for _, s := range r.Perm(ns) {
		for ci := range e.Contests {
			emit(ci, s, final[key{e.Contests[ci].ID, e.Stations[s].ID}], tally.Final, "")
		}
	}
	// Corrections after a check of the candidates' tallies, one per contest,
	// at stations that had sent partial minutes (so they reach version 3).
	for ci := range e.Contests {
		s := partial[2*ci+1]
		k := key{e.Contests[ci].ID, e.Stations[s].ID}
		cn := final[k].clone()
		if !shiftVotes(r, cn.votes, cn.valid) {
			return nil, fmt.Errorf("%v: no votes to correct", k)
		}
		final[k] = cn
		emit(ci, s, cn, tally.Final, reasonCorrection)
	}
	// A recount: one station's count in ex.recount is withdrawn, then the
	// recounted minutes replace it.
	ci, _ := e.ContestIndex(ex.recount)
	k := key{e.Contests[ci].ID, e.Stations[withdrawn].ID}
	emit(ci, withdrawn, count{}, tally.Withdrawn, reasonWithdrawn)
	cn := final[k].clone()
	moved := min(cn.invalid, int64(1+r.IntN(3))) // invalid ballots judged valid
	cn.invalid -= moved
	cn.valid += moved
	for i := range cn.votes {
		cn.votes[i] += r.Int64N(moved + 1)
	}
	if !shiftVotes(r, cn.votes, cn.valid) {
		return nil, fmt.Errorf("%v: no votes to recount", k)
	}
	capVotes(cn.votes, cn.valid, unitOf(ci, withdrawn).Seats)
	final[k] = cn
	emit(ci, withdrawn, cn, tally.Final, reasonRecount)
	return out, nil
}

// shiftVotes moves a few votes from one candidate to another, keeping every
// count within [0, valid] and the sum unchanged. It reports whether it
// could.
func shiftVotes(r *rand.Rand, votes []int64, valid int64) bool {
	d := int64(2 + r.IntN(9))
	for _, a := range r.Perm(len(votes)) {
		for _, b := range r.Perm(len(votes)) {
			if m := min(d, votes[a], valid-votes[b]); a != b && m > 0 {
				votes[a] -= m
				votes[b] += m
				return true
			}
		}
	}
	return false
}

// decodeMinutes decodes one minutes object strictly (no unknown fields).
func decodeMinutes(line []byte) (*tally.Minutes, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var j minutesJSON
	if err := dec.Decode(&j); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	status, _ := tally.ParseStatus(j.Status) // a bad status is left to Check
	m := &tally.Minutes{
		Election: j.Election, Contest: j.Contest, Station: j.Station,
		Version: j.Version, Status: status, Reason: j.Reason,
	}
	fields := []struct {
		v   *int64
		dst *int64
		bit uint8
	}{
		{j.Registered, &m.Counts.Registered, tally.HasRegistered},
		{j.Voted, &m.Counts.Voted, tally.HasVoted},
		{j.Issued, &m.Counts.Issued, tally.HasIssued},
		{j.Received, &m.Counts.Received, tally.HasReceived},
		{j.Valid, &m.Counts.Valid, tally.HasValid},
		{j.Invalid, &m.Counts.Invalid, tally.HasInvalid},
	}
	for _, f := range fields {
		if f.v != nil {
			*f.dst = *f.v
			m.Present |= f.bit
		}
	}
	for _, id := range slices.Sorted(maps.Keys(j.Votes)) {
		m.Votes = append(m.Votes, tally.Vote{Candidate: id, Count: j.Votes[id]})
	}
	return m, nil
}

// summary describes verified example files.
type summary struct {
	Wards      []wardSummary
	Stations   int
	Registered int64
	Lines      int
	ByStatus   map[string]int // minutes lines per status
	Units      []unitResult
}

type wardSummary struct {
	ID, Name   string
	Stations   int
	Registered int64
}

// unitResult is an electoral unit's result once every minutes line applied.
type unitResult struct {
	Contest, Unit         string
	Seats, Candidates     int
	Stations              int
	Registered, Voted     int64
	Valid                 int64
	Status                tally.UnitStatus
	Winners               []string
	WinnerVotes, TopLoser int64 // lowest winner's and best loser's votes
}

// verify parses the election, checks every minutes line against it and
// the per-(contest, station) version sequence, requires every station's
// current minutes in every contest it votes in to be final, and decides every
// unit: each must be decided, and a National Assembly unit must fill all its
// seats. It returns every problem found.
func verify(electionJSON, minutesNDJSON []byte) (*summary, error) {
	e, err := tally.Parse(electionJSON)
	if err != nil {
		return nil, err
	}
	sum := &summary{Stations: len(e.Stations), ByStatus: map[string]int{}}
	levels := e.AreaLevels()
	for _, a := range e.Areas {
		if a.Level != levels[len(levels)-1] {
			continue
		}
		ws := wardSummary{ID: a.ID, Name: a.Name}
		for _, st := range e.Stations {
			if st.AreaID() == a.ID {
				ws.Stations++
				ws.Registered += st.Registered
			}
		}
		sum.Wards = append(sum.Wards, ws)
		sum.Registered += ws.Registered
	}

	var problems []string
	if len(minutesNDJSON) == 0 || minutesNDJSON[len(minutesNDJSON)-1] != '\n' {
		problems = append(problems, "minutes do not end with a newline")
	}
	type state struct {
		version int64
		r       tally.Resolved
	}
	current := map[key]*state{}
	var r tally.Resolved
	var vs []tally.Violation
	for i, line := range bytes.Split(bytes.TrimSuffix(minutesNDJSON, []byte("\n")), []byte("\n")) {
		n := i + 1
		sum.Lines++
		m, err := decodeMinutes(line)
		if err != nil {
			problems = append(problems, fmt.Sprintf("line %d: %v", n, err))
			continue
		}
		sum.ByStatus[m.Status.String()]++
		if vs = e.Check(m, i, &r, vs[:0]); len(vs) > 0 {
			for _, v := range vs {
				problems = append(problems, fmt.Sprintf("line %d: %s", n, v))
			}
			continue
		}
		k := key{m.Contest, m.Station}
		st := current[k]
		if st == nil {
			st = &state{}
			current[k] = st
		}
		if m.Version != st.version+1 {
			problems = append(problems, fmt.Sprintf("line %d: %s/%s version %d follows version %d", n, m.Contest, m.Station, m.Version, st.version))
		}
		st.version = m.Version
		st.r = r
		st.r.Votes = slices.Clone(r.Votes)
	}

	for ci := range e.Contests {
		c := &e.Contests[ci]
		for ui := range c.Units {
			u := &c.Units[ui]
			ur := unitResult{Contest: c.ID, Unit: u.ID, Seats: u.Seats, Candidates: len(u.Candidates)}
			var counts tally.Counts
			votes := make([]int64, len(u.Candidates))
			final := 0
			for _, s := range e.UnitStations(ci, ui) {
				ur.Stations++
				st := current[key{c.ID, e.Stations[s].ID}]
				if st == nil || st.r.Status != tally.Final {
					problems = append(problems, fmt.Sprintf("%s/%s: current minutes are not final", c.ID, e.Stations[s].ID))
					continue
				}
				final++
				counts.Add(st.r.Counts, 1)
				for k, v := range st.r.Votes {
					votes[k] += v
				}
			}
			d := e.Decide(ci, ui, final, counts, votes)
			ur.Registered, ur.Voted, ur.Valid, ur.Status = counts.Registered, counts.Voted, counts.Valid, d.Status
			for _, k := range d.Winners {
				ur.Winners = append(ur.Winners, u.Candidates[k].ID)
			}
			if w := len(d.Winners); w > 0 {
				ur.WinnerVotes = votes[d.Winners[w-1]]
			}
			for _, k := range d.Ranking {
				if !slices.Contains(d.Winners, k) {
					ur.TopLoser = votes[k]
					break
				}
			}
			// A unit with polling stations outside the file never has them
			// all final: it stays counting (CONTRACT §2 v2).
			want := tally.Decided
			if u.StationsOutside > 0 {
				want = tally.Counting
			}
			if d.Status != want {
				problems = append(problems, fmt.Sprintf("unit %s: status %s, want %s", u.ID, d.Status, want))
			}
			if c.Level == tally.National && len(d.Winners) != u.Seats {
				problems = append(problems, fmt.Sprintf("unit %s: %d winners for %d seats", u.ID, len(d.Winners), u.Seats))
			}
			sum.Units = append(sum.Units, ur)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%d problems:\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	return sum, nil
}

// print writes a human summary of s.
func (s *summary) print(w io.Writer, total string) {
	fmt.Fprintf(w, "%-7s %-22s %8s %8s\n", "ward", "name", "stations", "voters")
	for _, ws := range s.Wards {
		fmt.Fprintf(w, "%-7s %-22s %8d %8d\n", ws.ID, ws.Name, ws.Stations, ws.Registered)
	}
	fmt.Fprintf(w, "%-7s %-22s %8d %8d\n\n", total, "total", s.Stations, s.Registered)
	fmt.Fprintf(w, "%-8s %-11s %5s %10s %8s %9s %9s %-8s %s\n", "contest", "unit", "seats", "candidates", "stations", "turnout", "valid", "status", "winners (lowest winner / best loser, % of valid)")
	for _, u := range s.Units {
		fmt.Fprintf(w, "%-8s %-11s %5d %10d %8d %8.2f%% %9d %-8s %d (%.1f%% / %.1f%%)\n",
			u.Contest, u.Unit, u.Seats, u.Candidates, u.Stations,
			100*float64(u.Voted)/float64(u.Registered), u.Valid, u.Status, len(u.Winners),
			100*float64(u.WinnerVotes)/float64(u.Valid), 100*float64(u.TopLoser)/float64(u.Valid))
	}
	fmt.Fprintf(w, "\nminutes lines: %d (", s.Lines)
	for i, st := range slices.Sorted(maps.Keys(s.ByStatus)) {
		if i > 0 {
			fmt.Fprint(w, ", ")
		}
		fmt.Fprintf(w, "%s %d", st, s.ByStatus[st])
	}
	fmt.Fprintln(w, ")")
}
