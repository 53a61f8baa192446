package main

import (
	"fmt"
	"strings"

	"github.com/tallyvn/tally/tally"
)

// communes2026 are the thirteen communes of Hà Nội's National Assembly unit
// no. 10 in 2026 (DOMAIN.md): four phường (Long Biên district's area is now
// a handful of phường) and nine xã. The names are real; the polling areas
// and their voters are made up (plausible: a merged commune holds tens of
// thousands of voters).
var communes2026 = []wardSpec{
	{code: "LB", name: "Phường Long Biên", areas: 9, voters: 19400, lo: 600, hi: 3800},
	{code: "BD", name: "Phường Bồ Đề", areas: 9, voters: 20100, lo: 600, hi: 3800},
	{code: "VH", name: "Phường Việt Hưng", areas: 8, voters: 16900, lo: 600, hi: 3800},
	{code: "PL", name: "Phường Phúc Lợi", areas: 7, voters: 13800, lo: 600, hi: 3800},
	{code: "GL", name: "Xã Gia Lâm", areas: 8, voters: 15200, lo: 600, hi: 3800},
	{code: "TA", name: "Xã Thuận An", areas: 7, voters: 12900, lo: 600, hi: 3800},
	{code: "BT", name: "Xã Bát Tràng", areas: 6, voters: 10400, lo: 600, hi: 3800},
	{code: "PD", name: "Xã Phù Đồng", areas: 7, voters: 12100, lo: 600, hi: 3800},
	{code: "TL", name: "Xã Thư Lâm", areas: 8, voters: 14600, lo: 600, hi: 3800},
	{code: "DA", name: "Xã Đông Anh", areas: 9, voters: 18700, lo: 600, hi: 3800},
	{code: "PT", name: "Xã Phúc Thịnh", areas: 7, voters: 13300, lo: 600, hi: 3800},
	{code: "TLC", name: "Xã Thiên Lộc", areas: 7, voters: 12800, lo: 600, hi: 3800},
	{code: "VT", name: "Xã Vĩnh Thanh", areas: 7, voters: 13500, lo: 600, hi: 3800},
}

// hanoi2026 is the two-tier example: Hà Nội's National Assembly unit no. 10
// (real: 3 seats, defined by the thirteen communes), three city-council
// units covering the same communes and the commune councils of the
// thirteen, all on one ballot (HDND-X). Council units, their numbering
// and every candidate are made up; every candidate is fictional.
var hanoi2026 = func() *example {
	ex := &example{
		dir: "hanoi-2026", id: "hn-2026", seed: [2]uint64{20260315, 2026},
		name:   "Bầu cử đại biểu Quốc hội khóa XVI và đại biểu HĐND các cấp nhiệm kỳ 2026-2031",
		date:   "2026-03-15",
		levels: []tally.AreaLevel{tally.Province, tally.Commune},
		upper:  []tally.Area{{ID: "HN", Name: "Thành phố Hà Nội", Level: tally.Province}},
		bottom: "HN", bottomKind: tally.Commune, wardPrefix: "HN-",
		wards: communes2026, recount: "HDND-X", total: "HN",
	}
	ids := func(codes ...string) []string {
		out := make([]string, len(codes))
		for i, c := range codes {
			out[i] = "HN-" + c
		}
		return out
	}
	var all []string
	for _, c := range communes2026 {
		all = append(all, c.code)
	}
	ex.contests = []contestSpec{
		{
			id: "QH", name: "Đại biểu Quốc hội khóa XVI", level: tally.National,
			units: []unitSpec{{
				id:    "QH-HN-10",
				name:  "Đơn vị bầu cử số 10 (phường Long Biên, Bồ Đề, Việt Hưng, Phúc Lợi; xã Gia Lâm, Thuận An, Bát Tràng, Phù Đồng, Thư Lâm, Đông Anh, Phúc Thịnh, Thiên Lộc, Vĩnh Thanh)",
				seats: 3, candidates: 5, areas: ids(all...),
			}},
		},
		{
			id: "HDND-HN", name: "Đại biểu HĐND thành phố Hà Nội khóa XVII", level: tally.ProvinceCouncil,
			units: []unitSpec{
				{id: "TP-HN-A", name: "Đơn vị bầu cử (minh họa) phường Long Biên, Bồ Đề, Việt Hưng, Phúc Lợi", seats: 4, candidates: 7, areas: ids("LB", "BD", "VH", "PL")},
				{id: "TP-HN-B", name: "Đơn vị bầu cử (minh họa) xã Gia Lâm, Thuận An, Bát Tràng, Phù Đồng, Thư Lâm", seats: 4, candidates: 7, areas: ids("GL", "TA", "BT", "PD", "TL")},
				{id: "TP-HN-C", name: "Đơn vị bầu cử (minh họa) xã Đông Anh, Phúc Thịnh, Thiên Lộc, Vĩnh Thanh", seats: 3, candidates: 5, areas: ids("DA", "PT", "TLC", "VT")},
			},
		},
	}
	// The commune councils: two units per commune, the first half of its
	// polling areas and the rest. A phường's units name their council; a
	// xã's leave it to be inferred from their stations.
	x := contestSpec{id: "HDND-X", name: "Đại biểu HĐND cấp xã nhiệm kỳ 2026-2031", level: tally.CommuneCouncil}
	for i, c := range communes2026 {
		half := (c.areas + 1) / 2
		council := ""
		if strings.HasPrefix(c.name, "Phường") {
			council = "HN-" + c.code
		}
		a := unitSpec{
			id: "X-" + c.code + "-1", name: fmt.Sprintf("Đơn vị bầu cử số 1, %s", strings.ToLower(c.name[:1])+c.name[1:]),
			seats: 5, candidates: 8, council: council, stations: []string{fmt.Sprintf("%s:1-%d", c.code, half)},
		}
		b := unitSpec{
			id: "X-" + c.code + "-2", name: fmt.Sprintf("Đơn vị bầu cử số 2, %s", strings.ToLower(c.name[:1])+c.name[1:]),
			seats: 3, candidates: 5, council: council, stations: []string{fmt.Sprintf("%s:%d-%d", c.code, half+1, c.areas)},
		}
		switch i {
		case 2: // Việt Hưng: decided with a seat left empty (4 of 5 pass, 3 × 4 ≥ 2 × 5)
			a.filled = 4
		case 6: // Bát Tràng: two candidates born the same day
			a.sameBorn = true
		}
		x.units = append(x.units, a, b)
	}
	ex.contests = append(ex.contests, x)
	return ex
}()
