package workload

import (
	"fmt"
	"strings"

	"github.com/tallyvn/tally/tally"
)

// Figures of the 2026 election (DOMAIN.md, "Since 1 July 2025").
const (
	provinces2026 = 34
	communes2026  = 3321
	wards2021     = 10_599 // the generator's full-scale ward count
	qhUnits2026   = 182
)

// perCouncil rewrites f's council contests as one contest per council, the
// way a file written council by council looks (CONTRACT §2 allows both):
// HDND-T-<province>, HDND-H-<district>, HDND-X-<ward>. Units keep their
// ids; their council is left to be inferred.
func perCouncil(f *ElectionFile) {
	parent := make(map[string]string, len(f.Areas))
	name := make(map[string]string, len(f.Areas))
	for _, a := range f.Areas {
		parent[a.ID], name[a.ID] = a.Parent, a.Name
	}
	wardOf := make(map[string]string, len(f.Stations))
	for _, st := range f.Stations {
		wardOf[st.ID] = st.AreaID()
	}
	var out []tally.Contest
	for _, c := range f.Contests {
		if c.Level == tally.National {
			out = append(out, c)
			continue
		}
		byCouncil := map[string]int{} // council -> index in out
		for _, u := range c.Units {
			var council string
			switch c.Level {
			case tally.ProvinceCouncil: // units of districts
				council = parent[u.Areas[0]]
			case tally.DistrictCouncil: // units of wards
				council = parent[u.Areas[0]]
			default: // units of stations
				council = wardOf[u.Stations[0]]
			}
			i, ok := byCouncil[council]
			if !ok {
				i = len(out)
				byCouncil[council] = i
				out = append(out, tally.Contest{ID: c.ID + "-" + council, Name: c.Name + ", " + name[council], Level: c.Level})
			}
			out[i].Units = append(out[i].Units, u)
		}
	}
	f.Contests = out
}

// twoTier rewrites f, a 2021 country, as the two-tier country of 2026:
// consecutive provinces merged into 34 (in proportion when fewer are
// generated), consecutive wards of one new province merged into communes
// (3,321 at full scale), districts gone, every station kept in its
// commune. The ballots are rebuilt on the new map: the National Assembly
// (each new province keeps the seats of the provinces it merged, in units
// of 2 or 3 seats of contiguous communes, 182 units at full scale), the
// province councils (units of 3 to 5 seats) and one commune-council
// ballot holding the units of every commune's council.
func twoTier(f *ElectionFile, cfg NationalConfig) {
	f.Name = "Bầu cử đại biểu Quốc hội khóa XVI và đại biểu Hội đồng nhân dân các cấp nhiệm kỳ 2026-2031 (dữ liệu mô phỏng)"
	f.Date = "2026-03-15"
	f.Levels = []tally.AreaLevel{tally.Province, tally.Commune}

	var oldProvinces, wards []*tally.Area
	parent := map[string]string{}
	for i := range f.Areas {
		a := &f.Areas[i]
		parent[a.ID] = a.Parent
		switch a.Level {
		case tally.Province:
			oldProvinces = append(oldProvinces, a)
		case tally.Ward:
			wards = append(wards, a)
		}
	}
	provinceOf := func(ward string) string { return parent[parent[ward]] }
	// Old province -> new province index.
	nNew := max(1, roundInt(float64(len(oldProvinces))*provinces2026/float64(len(provinces))))
	newOf := map[string]int{}
	for i, p := range oldProvinces {
		newOf[p.ID] = i * nNew / len(oldProvinces)
	}
	// The old seats of the National Assembly, per new province.
	qhSeats := make([]int, nNew)
	for _, c := range f.Contests {
		if c.Level != tally.National {
			continue
		}
		for _, u := range c.Units {
			qhSeats[newOf[parent[u.Areas[0]]]] += u.Seats
		}
	}

	// New areas: a province for each group of old ones (id and name of the
	// first), then communes of consecutive wards.
	var areas []tally.Area
	newID := make([]string, nNew)
	for _, p := range oldProvinces {
		np := newOf[p.ID]
		if newID[np] == "" {
			newID[np] = p.ID
			areas = append(areas, tally.Area{ID: p.ID, Name: p.Name, Level: tally.Province})
		}
	}
	target := max(nNew, roundInt(float64(len(wards))*communes2026/wards2021))
	communeOf := map[string]string{}
	communes := make([][]string, nNew) // new province -> its communes, in order
	lastKey, lastNP := -1, -1
	for k, w := range wards {
		np := newOf[provinceOf(w.ID)]
		key := k * target / len(wards)
		if key != lastKey || np != lastNP {
			id := fmt.Sprintf("%s-X%03d", newID[np], len(communes[np])+1)
			kind, rest, _ := strings.Cut(w.Name, " ")
			if kind == "Thị" { // Thị trấn
				_, rest, _ = strings.Cut(rest, " ")
			}
			if kind != "Phường" {
				kind = "Xã"
			}
			areas = append(areas, tally.Area{ID: id, Name: kind + " " + rest, Level: tally.Commune, Parent: newID[np]})
			communes[np] = append(communes[np], id)
			lastKey, lastNP = key, np
		}
		communeOf[w.ID] = communes[np][len(communes[np])-1]
	}
	f.Areas = areas

	// Stations keep their ids; their area is their commune.
	stationsOf := map[string][]int{}
	votersOf := map[string]float64{}
	for i := range f.Stations {
		st := &f.Stations[i]
		c := communeOf[st.AreaID()]
		st.Area, st.Ward = c, ""
		stationsOf[c] = append(stationsOf[c], i)
		votersOf[c] += float64(st.Registered)
	}

	// National Assembly units: ceil(seats/3) per province, then one more
	// where seats allow, until 182 in all at full scale.
	units := make([]int, nNew)
	total, seatsAll := 0, 0
	for np := range units {
		units[np] = min(len(communes[np]), max(1, (qhSeats[np]+2)/3))
		total += units[np]
		seatsAll += qhSeats[np]
	}
	want := roundInt(float64(qhUnits2026) * float64(seatsAll) / qhSeats2026)
	for total < want {
		best := -1
		for np := range units {
			if 2*(units[np]+1) > qhSeats[np] || units[np]+1 > len(communes[np]) {
				continue
			}
			if best < 0 || qhSeats[np]*units[best] > qhSeats[best]*units[np] {
				best = np
			}
		}
		if best < 0 {
			break
		}
		units[best]++
		total++
	}

	var qh, tp, xa []tally.Unit
	for np := range nNew {
		r := newStream().reset(cfg.Seed, tagTwoTier, uint64(np), 0)
		cs := communes[np]
		w := make([]float64, len(cs))
		for i, c := range cs {
			w[i] = votersOf[c]
		}
		// National Assembly.
		starts := partition(w, units[np])
		for i := range starts {
			seats := qhSeats[np] / len(starts)
			if i < qhSeats[np]%len(starts) {
				seats++
			}
			id := fmt.Sprintf("%s-%s-%02d", ContestQH, newID[np], i+1)
			qh = append(qh, tally.Unit{
				ID: id, Name: fmt.Sprintf("Đơn vị bầu cử số %d, %s", i+1, areaName(f, newID[np])),
				Seats: seats, Areas: cs[starts[i]:end(starts, i, len(cs))], Stations: []string{},
				Candidates: candidates(r, id, seats+2),
			})
		}
		// Province council: 50 to 125 seats in units of 3 to 5.
		seats := min(125, max(50, 50+len(cs)/4))
		k := min(len(cs), max(1, roundInt(float64(seats)/4.2)))
		for i, grp := range councilGroups(w, k, seats, 3) {
			id := fmt.Sprintf("%s-%s-%02d", ContestT, newID[np], i+1)
			tp = append(tp, tally.Unit{
				ID: id, Name: fmt.Sprintf("Đơn vị bầu cử số %d", i+1), Seats: grp.seats,
				Areas: cs[grp.from:grp.to], Stations: []string{},
				Candidates: candidates(r, id, councilCandidates(r, grp.seats)),
			})
		}
		// Commune councils, one ballot: each commune's units are blocks of
		// its polling areas. Every other commune names its council; the
		// others leave it to be inferred.
		for ci, c := range cs {
			sts := stationsOf[c]
			sw := make([]float64, len(sts))
			for i, s := range sts {
				sw[i] = float64(f.Stations[s].Registered)
			}
			seats := min(30, max(15, 15+roundInt(votersOf[c]/2000)))
			k := min(len(sts), (seats+2)/3)
			for i, grp := range councilGroups(sw, k, seats, 1) {
				ids := make([]string, 0, grp.to-grp.from)
				for x := grp.from; x < grp.to; x++ {
					ids = append(ids, f.Stations[sts[x]].ID)
				}
				id := fmt.Sprintf("%s-%s-%d", ContestX, c, i+1)
				u := tally.Unit{
					ID: id, Name: fmt.Sprintf("Đơn vị bầu cử số %d", i+1), Seats: grp.seats,
					Areas: []string{}, Stations: ids, Candidates: candidates(r, id, councilCandidates(r, grp.seats)),
				}
				if ci%2 == 0 {
					u.Council = c
				}
				xa = append(xa, u)
			}
		}
	}
	f.Contests = []tally.Contest{
		{ID: ContestQH, Name: "Đại biểu Quốc hội khóa XVI", Level: tally.National, Units: qh},
		{ID: ContestT, Name: "Đại biểu Hội đồng nhân dân cấp tỉnh nhiệm kỳ 2026-2031", Level: tally.ProvinceCouncil, Units: tp},
		{ID: ContestX, Name: "Đại biểu Hội đồng nhân dân cấp xã nhiệm kỳ 2026-2031", Level: tally.CommuneCouncil, Units: xa},
	}
}

const qhSeats2026 = qhSeats // 500, as in 2021

func areaName(f *ElectionFile, id string) string {
	for _, a := range f.Areas {
		if a.ID == id {
			return a.Name
		}
	}
	return id
}
