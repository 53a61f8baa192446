package workload

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/tallyvn/tally/tally"
)

// Figures of the 2021 election (DOMAIN.md, "Orders of magnitude").
const (
	nationalVoters = 69_200_000
	qhSeats        = 500
	qhUnits        = 184
	qhMinSeats     = 6 // the fewest National Assembly deputies a province elects

	// Polling areas hold 300 to 4,000 voters (Art. 11); a few are smaller
	// (hospitals, barracks, islands).
	minStation = 300
	maxStation = 4000

	// Mean station sizes, calibrated so that the country has about 85,000
	// stations of 815 voters on average (69.2 million over 84,767).
	stationSizeRural = 712
	stationSizeUrban = 1185
)

// Contest ids of a generated election.
const (
	ContestQH = "QH"     // National Assembly
	ContestT  = "HDND-T" // province People's Councils
	ContestH  = "HDND-H" // district People's Councils
	ContestX  = "HDND-X" // commune People's Councils
)

// NationalConfig configures National. The zero value is Vietnam's 2021
// election at full scale from seed 0.
type NationalConfig struct {
	// Seed fixes every draw: the same config gives the same file, byte for
	// byte.
	Seed uint64
	// Scale multiplies the voters, and so the polling stations, of every
	// province: 1 (the default) is Vietnam in 2021, about 85,000 stations
	// and 69 million voters; 10 is about Indonesia's 820,000 polling
	// stations. Districts per province and wards per district each grow
	// as √Scale, so a ward keeps about 8 stations at any scale. The
	// National Assembly keeps its 500 seats in 184 units as long as the
	// provinces have the districts to hold them.
	Scale float64
	// Provinces keeps only the first Provinces provinces (0: all 63). The
	// five centrally-run cities come first, Hà Nội and Hồ Chí Minh City
	// (with their councils not elected in urban areas) leading. A province
	// is generated the same way whatever Provinces is.
	Provinces int
	// ID is the election id; default "vn-2021" ("vn-2026" with TwoTier).
	ID string
	// PerCouncil writes one contest per People's Council (HDND-T-<province>,
	// HDND-H-<district>, HDND-X-<ward>: about 11,000 contests at full
	// scale) instead of one per ballot, as a file written council by
	// council would; each unit's council is left to be inferred.
	PerCouncil bool
	// TwoTier generates the structure in force since 1 July 2025 (the 2026
	// election; DOMAIN.md): the 2021 country's provinces merged into 34
	// and its wards into about 3,321 communes, no districts, 182 National
	// Assembly units for 500 seats, and three ballots (National Assembly,
	// province councils, commune councils). See twoTier.
	TwoTier bool
}

func (c *NationalConfig) ensureDefaults() {
	if c.Scale == 0 {
		c.Scale = 1
	}
	if c.ID == "" {
		c.ID = "vn-2021"
		if c.TwoTier {
			c.ID = "vn-2026"
		}
	}
}

func (c *NationalConfig) validate() error {
	var errs []error
	if c.Scale < 0.001 || c.Scale > 1000 || math.IsNaN(c.Scale) {
		errs = append(errs, fmt.Errorf("workload: scale %g out of range [0.001, 1000]", c.Scale))
	}
	if c.Provinces < 0 || c.Provinces > len(provinces) {
		errs = append(errs, fmt.Errorf("workload: provinces %d out of range [0, %d]", c.Provinces, len(provinces)))
	}
	if !tally.ValidID(c.ID) {
		errs = append(errs, fmt.Errorf("workload: election id %q is not a valid id", c.ID))
	}
	return errors.Join(errs...)
}

// ElectionFile is a generated election file (CONTRACT §2): the fields of
// tally.Election that the file holds, not yet validated nor indexed. Write
// it with WriteJSON, or get a *tally.Election with Parse.
type ElectionFile struct {
	ID       string
	Name     string
	Date     string
	Levels   []tally.AreaLevel // empty: the 2021 default
	Areas    []tally.Area
	Stations []tally.Station
	Contests []tally.Contest
}

// Parse encodes f and parses it with tally.Parse, as the server would load
// it.
func (f *ElectionFile) Parse() (*tally.Election, error) {
	var buf bytes.Buffer
	buf.Grow(f.sizeHint())
	if err := f.WriteJSON(&buf); err != nil {
		return nil, err
	}
	return tally.Parse(buf.Bytes())
}

// Summary counts what an election file holds.
type Summary struct {
	Provinces, Districts, Wards, Stations int
	Voters                                int64 // registered, all stations
	MinStation, MaxStation                int64 // smallest and largest station
	Contests                              []ContestSummary
}

// ContestSummary counts one contest.
type ContestSummary struct {
	ID         string
	Level      tally.ContestLevel
	Units      int
	Seats      int
	Candidates int
	// Stations is the number of stations voting in the contest.
	Stations int
}

// Summary counts f.
func (f *ElectionFile) Summary() Summary {
	var s Summary
	for _, a := range f.Areas {
		switch a.Level {
		case tally.Province:
			s.Provinces++
		case tally.District:
			s.Districts++
		case tally.Ward, tally.Commune:
			s.Wards++
		}
	}
	s.Stations = len(f.Stations)
	s.MinStation = math.MaxInt64
	for _, st := range f.Stations {
		s.Voters += st.Registered
		s.MinStation = min(s.MinStation, st.Registered)
		s.MaxStation = max(s.MaxStation, st.Registered)
	}
	if s.Stations == 0 {
		s.MinStation = 0
	}
	// Stations voting per contest: every station under a listed area plus
	// the listed stations (areas of a unit never overlap in a generated
	// file).
	under := map[string]int{}
	for _, st := range f.Stations {
		under[st.AreaID()]++
	}
	for i := len(f.Areas) - 1; i >= 0; i-- { // children come after parents
		if a := f.Areas[i]; a.Parent != "" {
			under[a.Parent] += under[a.ID]
		}
	}
	for _, c := range f.Contests {
		cs := ContestSummary{ID: c.ID, Level: c.Level, Units: len(c.Units)}
		for _, u := range c.Units {
			cs.Seats += u.Seats
			cs.Candidates += len(u.Candidates)
			cs.Stations += len(u.Stations)
			for _, a := range u.Areas {
				cs.Stations += under[a]
			}
		}
		s.Contests = append(s.Contests, cs)
	}
	return s
}

func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d provinces, %d districts, %d wards, %d stations (%d to %d voters), %d voters",
		s.Provinces, s.Districts, s.Wards, s.Stations, s.MinStation, s.MaxStation, s.Voters)
	for _, c := range s.Contests {
		fmt.Fprintf(&b, "\n  %-7s %-8s %6d units %7d seats %7d candidates %6d stations", c.ID, c.Level, c.Units, c.Seats, c.Candidates, c.Stations)
	}
	return b.String()
}

// National generates an election shaped like Vietnam's of 23 May 2021:
// the 63 provinces with their districts and wards, about 85,000 polling
// stations of 300 to 4,000 voters (a few smaller), and the four ballots a
// voter received:
//
//   - QH, the National Assembly: 184 units of 2 or 3 seats, 500 seats,
//     seats + 2 candidates each; a unit covers whole districts of one
//     province;
//   - HDND-T, the province councils: units of 3 to 5 seats covering one
//     district or a group of districts;
//   - HDND-H, the district councils: units of 3 to 5 seats covering wards
//     of one district;
//   - HDND-X, the commune councils: units of 1 to 5 seats within one ward,
//     each listing its stations.
//
// Council units have the fewest candidates the law allows, sometimes one
// more (DOMAIN.md). As in 2021, the urban wards of Hà Nội, and the urban
// districts and wards of Hồ Chí Minh City and Đà Nẵng, elect no council of
// their own, so their stations vote in two or three contests. Every
// candidate name is fictional and says so.
func National(cfg NationalConfig) (*ElectionFile, error) {
	cfg.ensureDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := cfg.Provinces
	if n == 0 {
		n = len(provinces)
	}
	g := &generator{cfg: cfg, r: newStream()}
	for i := range provinces {
		g.totalPop += provinces[i].pop
	}
	g.qhSeats, g.qhUnits = qhPlan(cfg.Scale)
	g.f = &ElectionFile{
		ID:   cfg.ID,
		Name: "Bầu cử đại biểu Quốc hội khóa XV và đại biểu Hội đồng nhân dân các cấp nhiệm kỳ 2021-2026 (dữ liệu mô phỏng)",
		Date: "2021-05-23",
	}
	for p := range n {
		g.province(p)
	}
	for _, c := range []tally.Contest{
		{ID: ContestQH, Name: "Đại biểu Quốc hội khóa XV", Level: tally.National, Units: g.units[0]},
		{ID: ContestT, Name: "Đại biểu Hội đồng nhân dân cấp tỉnh nhiệm kỳ 2021-2026", Level: tally.ProvinceCouncil, Units: g.units[1]},
		{ID: ContestH, Name: "Đại biểu Hội đồng nhân dân cấp huyện nhiệm kỳ 2021-2026", Level: tally.DistrictCouncil, Units: g.units[2]},
		{ID: ContestX, Name: "Đại biểu Hội đồng nhân dân cấp xã nhiệm kỳ 2021-2026", Level: tally.CommuneCouncil, Units: g.units[3]},
	} {
		if len(c.Units) > 0 { // a contest with no unit is invalid; the pilots can empty one
			g.f.Contests = append(g.f.Contests, c)
		}
	}
	switch {
	case cfg.TwoTier:
		twoTier(g.f, cfg)
	case cfg.PerCouncil:
		perCouncil(g.f)
	}
	return g.f, nil
}

// generator holds the state of one National call.
type generator struct {
	cfg      NationalConfig
	r        *stream
	f        *ElectionFile
	totalPop int
	qhSeats  []int
	qhUnits  []int
	units    [4][]tally.Unit // QH, HDND-T, HDND-H, HDND-X
}

// genDistrict and genWard remember what the contests are built from.
type genDistrict struct {
	id, name string
	urban    bool
	voters   int64
	wards    []genWard
}

type genWard struct {
	id       string
	voters   int64
	stations []int // indexes into f.Stations
}

// districtsAt returns how many districts province p has at scale s.
func districtsAt(p *province, s float64) int {
	return max(1, roundInt(float64(p.districts)*math.Sqrt(s)))
}

// qhPlan apportions the National Assembly's 500 seats among all 63
// provinces (at least 6 each, the rest by D'Hondt on population) and
// decides how many units each province has: 184 in all, 2 or 3 seats a
// unit, and no more units than districts (a unit covers whole districts).
func qhPlan(scale float64) (seats, units []int) {
	n := len(provinces)
	seats = make([]int, n)
	units = make([]int, n)
	for p := range seats {
		seats[p] = qhMinSeats
	}
	for range qhSeats - qhMinSeats*n {
		best := 0
		for p := range provinces {
			if provinces[p].pop*(seats[best]+1) > provinces[best].pop*(seats[p]+1) {
				best = p
			}
		}
		seats[best]++
	}
	total := 0
	for p := range provinces {
		nd := districtsAt(&provinces[p], scale)
		seats[p] = min(seats[p], 3*nd)
		units[p] = (seats[p] + 2) / 3
		total += units[p]
	}
	for total < qhUnits {
		best := -1
		for p := range provinces {
			if 2*(units[p]+1) > seats[p] || units[p]+1 > districtsAt(&provinces[p], scale) {
				continue
			}
			if best < 0 || seats[p]*units[best] > seats[best]*units[p] {
				best = p
			}
		}
		if best < 0 {
			break
		}
		units[best]++
		total++
	}
	return seats, units
}

// province generates province p: its areas, stations and the units of the
// four contests that lie in it. It draws from its own stream, so a province
// is the same whatever else is generated.
func (g *generator) province(pi int) {
	P := &provinces[pi]
	r := g.r.reset(g.cfg.Seed, tagProvince, uint64(pi), 0)
	f := g.f
	scale := g.cfg.Scale
	nd := districtsAt(P, scale)
	nu := 0
	if P.urban > 0 {
		nu = min(nd, max(1, roundInt(float64(P.urban)*math.Sqrt(scale))))
		if nu == nd && nd > 1 && P.urban < P.districts {
			nu = nd - 1 // keep a rural district
		}
	}
	nw := max(nd, roundInt(float64(P.wards)*scale))
	voters := float64(nationalVoters) * float64(P.pop) / float64(g.totalPop) * scale

	f.Areas = append(f.Areas, tally.Area{ID: P.code, Name: P.name, Level: tally.Province})
	perDistrict := spread(r, nw, nd)
	districts := make([]genDistrict, nd)
	var weights []float64
	var wsum float64
	for d := range districts {
		gd := &districts[d]
		gd.urban = d < nu
		gd.id = P.code + "-" + pad2(d+1)
		switch {
		case gd.urban && P.municipality():
			gd.name = "Quận " + placeName(r)
		case gd.urban && d == 0:
			gd.name = "Thành phố " + placeName(r)
		case gd.urban:
			gd.name = "Thị xã " + placeName(r)
		default:
			gd.name = "Huyện " + placeName(r)
		}
		f.Areas = append(f.Areas, tally.Area{ID: gd.id, Name: gd.name, Level: tally.District, Parent: P.code})
		gd.wards = make([]genWard, perDistrict[d])
		for w := range gd.wards {
			gw := &gd.wards[w]
			gw.id = gd.id + "-" + pad2(w+1)
			var kind string
			switch {
			case gd.urban:
				kind = "Phường "
			case w == 0:
				kind = "Thị trấn "
			default:
				kind = "Xã "
			}
			f.Areas = append(f.Areas, tally.Area{ID: gw.id, Name: kind + placeName(r), Level: tally.Ward, Parent: gd.id})
			wt := r.lognormal(0.5)
			if gd.urban {
				wt *= 1.5
			}
			weights = append(weights, wt)
			wsum += wt
		}
	}
	k := 0
	for d := range districts {
		gd := &districts[d]
		for w := range gd.wards {
			gw := &gd.wards[w]
			g.stations(r, gw, voters*weights[k]/wsum, gd.urban)
			k++
			gd.voters += gw.voters
		}
	}

	g.qhUnitsOf(r, pi, districts)
	g.provinceCouncil(r, P, districts)
	for d := range districts {
		gd := &districts[d]
		if gd.urban && P.pilot == noUrbanCouncils {
			continue
		}
		g.districtCouncil(r, gd)
		if gd.urban && P.pilot != noPilot {
			continue
		}
		for w := range gd.wards {
			g.communeCouncil(r, &gd.wards[w])
		}
	}
}

// stations generates the polling areas of a ward of about voters voters.
// Urban areas are larger on average; sizes vary within a ward.
func (g *generator) stations(r *stream, gw *genWard, voters float64, urban bool) {
	f := g.f
	mean := stationSizeRural * r.lognormal(0.25)
	if urban {
		mean = stationSizeUrban * r.lognormal(0.25)
	}
	n := max(1, roundInt(voters/mean))
	special := int64(0)
	if n >= 4 && r.Float64() < 0.12 {
		// A hospital, a barracks or an island: a separate, small area.
		special = 50 + r.Int64N(minStation-50)
		n--
	}
	regular := max(0, voters-float64(special))
	sizes := make([]float64, n)
	var sum float64
	for i := range sizes {
		sizes[i] = r.lognormal(0.4)
		sum += sizes[i]
	}
	add := func(reg int64) {
		s := len(f.Stations)
		num := len(gw.stations) + 1
		f.Stations = append(f.Stations, tally.Station{
			ID:         gw.id + "-" + pad2(num),
			Name:       "Khu vực bỏ phiếu số " + strconv.Itoa(num),
			Ward:       gw.id,
			Registered: reg,
		})
		gw.stations = append(gw.stations, s)
		gw.voters += reg
	}
	for _, w := range sizes {
		add(min(maxStation, max(minStation, int64(math.Round(regular*w/sum)))))
	}
	if special > 0 {
		add(special)
	}
}

// qhUnitsOf builds province pi's National Assembly units: contiguous groups
// of districts of about equal voters, 2 seats each and a third seat for the
// largest groups.
func (g *generator) qhUnitsOf(r *stream, pi int, districts []genDistrict) {
	P := &provinces[pi]
	seats, k := g.qhSeats[pi], g.qhUnits[pi]
	k = min(k, len(districts))
	seats = min(seats, 3*k)
	w := make([]float64, len(districts))
	for d := range districts {
		w[d] = float64(districts[d].voters)
	}
	starts := partition(w, k)
	groupVoters := make([]float64, k)
	for i := range starts {
		for d := starts[i]; d < end(starts, i, len(districts)); d++ {
			groupVoters[i] += w[d]
		}
	}
	order := make([]int, k)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return -cmpFloat(groupVoters[a], groupVoters[b]) })
	unitSeats := make([]int, k)
	for i := range unitSeats {
		unitSeats[i] = 2
	}
	for i := 0; i < seats-2*k && i < k; i++ {
		unitSeats[order[i]] = 3
	}
	for i := range starts {
		var ids, names []string
		for d := starts[i]; d < end(starts, i, len(districts)); d++ {
			ids = append(ids, districts[d].id)
			names = append(names, districts[d].name)
		}
		id := ContestQH + "-" + P.code + "-" + pad2(i+1)
		g.units[0] = append(g.units[0], tally.Unit{
			ID:         id,
			Name:       fmt.Sprintf("Đơn vị bầu cử số %d, %s (%s)", i+1, P.name, strings.Join(names, ", ")),
			Seats:      unitSeats[i],
			Areas:      ids,
			Candidates: candidates(r, id, unitSeats[i]+2),
		})
	}
}

// provinceCouncil builds province P's council units: one district or a
// group of districts each, 3 to 5 seats.
func (g *generator) provinceCouncil(r *stream, P *province, districts []genDistrict) {
	target := 50 + max(0, (P.pop-1000)/70)
	target = min(target, 85)
	if P.pop > 8000 {
		target = 95 // Hà Nội, Hồ Chí Minh City
	}
	w := make([]float64, len(districts))
	for d := range districts {
		w[d] = float64(districts[d].voters)
	}
	k := min(len(districts), max(1, roundInt(float64(target)/4.2)))
	for i, grp := range councilGroups(w, k, target, 3) {
		var ids, names []string
		for d := grp.from; d < grp.to; d++ {
			ids = append(ids, districts[d].id)
			names = append(names, districts[d].name)
		}
		id := ContestT + "-" + P.code + "-" + pad2(i+1)
		g.units[1] = append(g.units[1], tally.Unit{
			ID:         id,
			Name:       fmt.Sprintf("Đơn vị bầu cử số %d (%s)", i+1, strings.Join(names, ", ")),
			Seats:      grp.seats,
			Areas:      ids,
			Candidates: candidates(r, id, councilCandidates(r, grp.seats)),
		})
	}
}

// districtCouncil builds district gd's council units: groups of its wards,
// 3 to 5 seats each, 30 to 40 seats in all.
func (g *generator) districtCouncil(r *stream, gd *genDistrict) {
	target := min(40, max(30, 30+roundInt(float64(gd.voters-60_000)/15_000)))
	w := make([]float64, len(gd.wards))
	for i := range gd.wards {
		w[i] = float64(gd.wards[i].voters)
	}
	k := min(len(gd.wards), max(1, roundInt(float64(target)/4)))
	for i, grp := range councilGroups(w, k, target, 3) {
		var ids []string
		for x := grp.from; x < grp.to; x++ {
			ids = append(ids, gd.wards[x].id)
		}
		id := ContestH + "-" + gd.id + "-" + pad2(i+1)
		g.units[2] = append(g.units[2], tally.Unit{
			ID:         id,
			Name:       fmt.Sprintf("Đơn vị bầu cử số %d, %s", i+1, gd.name),
			Seats:      grp.seats,
			Areas:      ids,
			Candidates: candidates(r, id, councilCandidates(r, grp.seats)),
		})
	}
}

// communeCouncil builds ward gw's council units. A ward has no finer area,
// so each unit lists its stations: contiguous blocks of the ward's polling
// areas, 1 to 5 seats each, 15 to 30 seats in all.
func (g *generator) communeCouncil(r *stream, gw *genWard) {
	f := g.f
	target := min(30, max(15, 15+roundInt(float64(gw.voters)/1000)))
	w := make([]float64, len(gw.stations))
	for i, s := range gw.stations {
		w[i] = float64(f.Stations[s].Registered)
	}
	k := min(len(gw.stations), (target+2)/3)
	for i, grp := range councilGroups(w, k, target, 1) {
		var ids []string
		for x := grp.from; x < grp.to; x++ {
			ids = append(ids, f.Stations[gw.stations[x]].ID)
		}
		id := ContestX + "-" + gw.id + "-" + strconv.Itoa(i+1)
		g.units[3] = append(g.units[3], tally.Unit{
			ID:         id,
			Name:       fmt.Sprintf("Đơn vị bầu cử số %d", i+1),
			Seats:      grp.seats,
			Areas:      []string{},
			Stations:   ids,
			Candidates: candidates(r, id, councilCandidates(r, grp.seats)),
		})
	}
}

// group is a contiguous run [from, to) of items forming one unit.
type group struct {
	from, to int
	seats    int
}

// councilGroups splits items into k contiguous groups of about equal
// weight and gives each its share of target seats, at least minSeats and at
// most 5 (Art. 10).
func councilGroups(w []float64, k, target, minSeats int) []group {
	var total float64
	for _, x := range w {
		total += x
	}
	starts := partition(w, k)
	out := make([]group, len(starts))
	for i := range starts {
		grp := group{from: starts[i], to: end(starts, i, len(w))}
		var gw float64
		for x := grp.from; x < grp.to; x++ {
			gw += w[x]
		}
		share := float64(target) / float64(len(starts))
		if total > 0 {
			share = float64(target) * gw / total
		}
		grp.seats = min(5, max(minSeats, roundInt(share)))
		out[i] = grp
	}
	return out
}

// partition splits w into k contiguous non-empty runs of about equal
// weight and returns where each starts. REQUIRES: 1 ≤ k ≤ len(w).
func partition(w []float64, k int) []int {
	n := len(w)
	k = min(max(k, 1), n)
	var total float64
	for _, x := range w {
		total += x
	}
	starts := make([]int, 1, k)
	var acc float64
	for i := 0; i < n-1 && len(starts) < k; i++ {
		acc += w[i]
		left, groupsLeft := n-(i+1), k-len(starts)
		if acc >= total*float64(len(starts))/float64(k) || left == groupsLeft {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// end returns where run i of starts ends.
func end(starts []int, i, n int) int {
	if i+1 < len(starts) {
		return starts[i+1]
	}
	return n
}

// spread splits total items among n holders, at least one each, the rest
// by random weights.
func spread(r *stream, total, n int) []int {
	out := make([]int, n)
	w := make([]float64, n)
	var sum float64
	for i := range w {
		w[i] = r.between(0.5, 1.5)
		sum += w[i]
	}
	extra := total - n
	given := 0
	for i := range out {
		out[i] = 1 + int(float64(extra)*w[i]/sum)
		given += out[i] - 1
	}
	for i := 0; given < extra; i = (i + 1) % n {
		out[i]++
		given++
	}
	return out
}

// councilCandidates returns how many candidates a People's Council unit of
// seats seats has: the fewest the law allows (DOMAIN.md: one more for 1–2
// seats, two more for 3, three more for 4 or 5), sometimes one more.
func councilCandidates(r *stream, seats int) int {
	n := seats + 3
	switch {
	case seats <= 2:
		n = seats + 1
	case seats == 3:
		n = seats + 2
	}
	if r.Float64() < 0.25 {
		n++
	}
	return n
}

// candidates returns n fictional candidates of unit id.
func candidates(r *stream, id string, n int) []tally.Candidate {
	out := make([]tally.Candidate, n)
	for k := range out {
		out[k] = tally.Candidate{ID: id + "-" + strconv.Itoa(k+1), Name: personName(r), Born: birthDate(r)}
	}
	return out
}

func pad2(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
