package tally_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/tallyvn/tally/tally"
)

func TestParseAcceptsValidElectionAndKeepsVietnameseNames(t *testing.T) {
	e := mustParse(t, hanoiElection)
	x := idx{t, e}

	if e.ID != "hn-2021" || e.Date != "2021-05-23" {
		t.Errorf("election id, date = %q, %q; want hn-2021, 2021-05-23", e.ID, e.Date)
	}
	if want := "Bầu cử đại biểu Quốc hội khóa XV và đại biểu HĐND các cấp nhiệm kỳ 2021-2026"; e.Name != want {
		t.Errorf("election name = %q, want %q", e.Name, want)
	}
	if len(e.Areas) != 9 || len(e.Stations) != 7 || len(e.Contests) != 3 {
		t.Fatalf("got %d areas, %d stations, %d contests; want 9, 7, 3", len(e.Areas), len(e.Stations), len(e.Contests))
	}

	names := []struct{ got, want string }{
		{e.Areas[x.area("HN")].Name, "Thành phố Hà Nội"},
		{e.Areas[x.area("LB")].Name, "Quận Long Biên"},
		{e.Areas[x.area("LB-NT")].Name, "Phường Ngọc Thụy"},
		{e.Areas[x.area("GL-TQ")].Name, "Thị trấn Trâu Quỳ"},
		{e.Stations[x.station("LB-VH-01")].Name, "Khu vực bỏ phiếu số 1 phường Việt Hưng"},
		{e.Contests[x.contest("HDND-HN")].Name, "Đại biểu HĐND thành phố Hà Nội"},
		{e.Contests[x.contest("QH")].Units[0].Candidates[4].Name, "Đỗ Quang Vinh"},
	}
	for _, n := range names {
		if n.got != n.want {
			t.Errorf("name = %q, want %q (names must round-trip unchanged)", n.got, n.want)
		}
	}

	levels := map[string]tally.AreaLevel{"HN": tally.Province, "LB": tally.District, "GL": tally.District, "LB-CK": tally.Ward, "GL-TQ": tally.Ward}
	for id, want := range levels {
		if got := e.Areas[x.area(id)].Level; got != want {
			t.Errorf("area %s level = %q, want %q", id, got, want)
		}
	}
	contestLevels := map[string]tally.ContestLevel{"QH": tally.National, "HDND-HN": tally.ProvinceCouncil, "HDND-LB": tally.DistrictCouncil}
	for id, want := range contestLevels {
		if got := e.Contests[x.contest(id)].Level; got != want {
			t.Errorf("contest %s level = %q, want %q", id, got, want)
		}
	}
	if got := e.Stations[x.station("LB-NT-02")].Registered; got != 92 {
		t.Errorf("LB-NT-02 registered = %d, want 92", got)
	}
	q02 := e.Contests[x.contest("HDND-LB")].Units[1]
	if q02.ID != "Q-02" || q02.Seats != 3 || len(q02.Candidates) != 5 || q02.Candidates[1].Born != "1979-08-18" {
		t.Errorf("unit Q-02 = %+v; want 3 seats, 5 candidates, Q-02-2 born 1979-08-18", q02)
	}
}

// TestParseRefusesEachProblemKind breaks a valid file in one way per case
// and checks that exactly the expected problems are listed, each naming the
// offending id.
func TestParseRefusesEachProblemKind(t *testing.T) {
	const lastStation = `"registered": 1400}`
	addStation := func(s string) []string { return []string{lastStation, lastStation + ",\n    " + s} }
	const lastArea = `{"id": "GL-TQ", "name": "Thị trấn Trâu Quỳ", "level": "ward", "parent": "GL"}`
	addArea := func(s string) []string { return []string{lastArea, lastArea + ",\n    " + s} }
	const ck = `{"id": "LB-CK", "name": "Phường Cự Khối", "level": "ward", "parent": "LB"}`
	const gl = `{"id": "GL", "name": "Huyện Gia Lâm", "level": "district", "parent": "HN"}`
	const q01Members = `"areas": ["LB-BD"], "stations": ["LB-NT-01"],`
	const q02Members = `"areas": ["LB-VH"], "stations": ["LB-NT-02", "LB-PL-01"],`

	tests := []struct {
		name  string
		edits []string
		want  [][]string
	}{
		// Identifiers (CONTRACT §1).
		{"bad election id", []string{`"id": "hn-2021"`, `"id": "hn 2021"`},
			[][]string{{"election", `"hn 2021"`, "not a valid id"}}},
		{"bad area id with diacritics", []string{ck, strings.Replace(ck, `"LB-CK"`, `"LB-Cự-Khối"`, 1)},
			[][]string{{"area", `"LB-Cự-Khối"`, "not a valid id"}}},
		{"bad station id with spaces", addStation(`{"id": "GL TQ 02", "name": "Khu vực bỏ phiếu số 2 thị trấn Trâu Quỳ", "ward": "GL-TQ", "registered": 900}`),
			[][]string{{"station", `"GL TQ 02"`, "not a valid id"}}},
		{"bad contest id with diacritics", []string{`"id": "HDND-LB"`, `"id": "HĐND-LB"`},
			[][]string{{"contest", `"HĐND-LB"`, "not a valid id"}}},
		{"bad unit id with a slash", []string{`"id": "Q-01",`, `"id": "Q/01",`},
			[][]string{{"unit", `"Q/01"`, "not a valid id"}}},
		{"bad candidate id with a leading dash", []string{`"id": "Q-01-3"`, `"id": "-Q-01-3"`},
			[][]string{{"candidate", `"-Q-01-3"`, "not a valid id"}}},
		{"empty area id", []string{ck, strings.Replace(ck, `"LB-CK"`, `""`, 1)},
			[][]string{{"area", `""`, "not a valid id"}}},

		// Duplicate ids, one per kind.
		{"duplicate area id", addArea(`{"id": "LB-BD", "name": "Phường Bồ Đề (trùng)", "level": "ward", "parent": "LB"}`),
			[][]string{{`"LB-BD"`, "duplicate area id"}}},
		{"duplicate station id", addStation(`{"id": "LB-BD-02", "name": "Khu vực bỏ phiếu số 3 phường Bồ Đề", "ward": "LB-BD", "registered": 700}`),
			[][]string{{`"LB-BD-02"`, "duplicate station id"}}},
		{"duplicate contest id", []string{`"id": "HDND-LB"`, `"id": "HDND-HN"`},
			[][]string{{`"HDND-HN"`, "duplicate contest id"}}},
		{"duplicate unit id in another contest", []string{`"id": "Q-01",`, `"id": "TP-07",`},
			[][]string{{`"TP-07"`, "duplicate unit id"}}},
		{"duplicate unit id in the same contest", []string{`"id": "Q-02",`, `"id": "Q-01",`},
			[][]string{{`"Q-01"`, "duplicate unit id"}}},
		{"duplicate candidate id in another unit", []string{`"id": "Q-02-5"`, `"id": "Q-01-1"`},
			[][]string{{`"Q-02"`, `"Q-01-1"`, "duplicate candidate id"}}},
		{"duplicate candidate id in the same unit", []string{`"id": "Q-01-3"`, `"id": "Q-01-2"`},
			[][]string{{`"Q-01"`, `"Q-01-2"`, "duplicate candidate id"}}},

		// Hierarchy.
		{"unknown parent", []string{gl, strings.Replace(gl, `"parent": "HN"`, `"parent": "HCM"`, 1)},
			[][]string{{`"GL"`, `unknown parent "HCM"`}}},
		{"ward whose parent is a province", []string{ck, strings.Replace(ck, `"parent": "LB"`, `"parent": "HN"`, 1)},
			[][]string{{`"LB-CK"`, `parent "HN" is a province`, "must be a district"}}},
		{"district whose parent is a district", []string{gl, strings.Replace(gl, `"parent": "HN"`, `"parent": "LB"`, 1)},
			[][]string{{`"GL"`, `parent "LB" is a district`, "must be a province"}}},
		{"ward whose parent is a ward", []string{ck, strings.Replace(ck, `"parent": "LB"`, `"parent": "LB-BD"`, 1)},
			[][]string{{`"LB-CK"`, `parent "LB-BD" is a ward`}}},
		{"ward without parent", []string{ck, strings.Replace(ck, `, "parent": "LB"`, ``, 1)},
			[][]string{{`"LB-CK"`, "needs a parent district"}}},
		{"province with a parent", []string{`"level": "province"}`, `"level": "province", "parent": "LB"}`},
			[][]string{{`"HN"`, "a province has no parent"}}},
		{"unknown area level", []string{ck, strings.Replace(ck, `"level": "ward"`, `"level": "commune"`, 1)},
			[][]string{{`"LB-CK"`, `level "commune"`}}},

		// Stations.
		{"station in unknown ward", addStation(`{"id": "LB-GB-01", "name": "Khu vực bỏ phiếu số 1 phường Giang Biên", "ward": "LB-GB", "registered": 1200}`),
			[][]string{{`"LB-GB-01"`, `unknown ward "LB-GB"`}}},
		{"station in a district instead of a ward", addStation(`{"id": "LB-00", "name": "Khu vực bỏ phiếu quận Long Biên", "ward": "LB", "registered": 1200}`),
			[][]string{{`"LB-00"`, `ward "LB" is a district, not a ward`}}},
		{"station in a province instead of a ward", addStation(`{"id": "HN-00", "name": "Khu vực bỏ phiếu thành phố Hà Nội", "ward": "HN", "registered": 1200}`),
			[][]string{{`"HN-00"`, `ward "HN" is a province, not a ward`}}},
		{"station with negative registered", []string{`"registered": 92}`, `"registered": -92}`},
			[][]string{{`"LB-NT-02"`, "registered -92 is negative"}}},
		{"station in two units of a contest", []string{`"areas": ["GL"], "stations": []`, `"areas": ["GL"], "stations": ["LB-BD-01"]`},
			[][]string{{`"QH-HN-05"`, `station "LB-BD-01" is already in unit "QH-HN-02"`}}},
		{"ward listed by two units names each station", []string{q02Members, `"areas": ["LB-VH", "LB-BD"], "stations": ["LB-NT-02", "LB-PL-01"],`},
			[][]string{
				{`"Q-02"`, `station "LB-BD-01" is already in unit "Q-01"`},
				{`"Q-02"`, `station "LB-BD-02" is already in unit "Q-01"`},
			}},

		// Units and candidates.
		{"seats zero", []string{`"id": "Q-01", "name": "Đơn vị bầu cử số 1 quận Long Biên", "seats": 2`, `"id": "Q-01", "name": "Đơn vị bầu cử số 1 quận Long Biên", "seats": 0`},
			[][]string{{`"Q-01"`, "seats 0, must be at least 1"}}},
		{"seats negative", []string{`"id": "Q-01", "name": "Đơn vị bầu cử số 1 quận Long Biên", "seats": 2`, `"id": "Q-01", "name": "Đơn vị bầu cử số 1 quận Long Biên", "seats": -1`},
			[][]string{{`"Q-01"`, "seats -1, must be at least 1"}}},
		{"candidates equal to seats", []string{`"id": "Q-01", "name": "Đơn vị bầu cử số 1 quận Long Biên", "seats": 2`, `"id": "Q-01", "name": "Đơn vị bầu cử số 1 quận Long Biên", "seats": 3`},
			[][]string{{`"Q-01"`, "3 candidates for 3 seats"}}},
		{"candidates fewer than seats", []string{`"id": "Q-01", "name": "Đơn vị bầu cử số 1 quận Long Biên", "seats": 2`, `"id": "Q-01", "name": "Đơn vị bầu cử số 1 quận Long Biên", "seats": 4`},
			[][]string{{`"Q-01"`, "3 candidates for 4 seats"}}},
		{"born in day-month-year order", []string{`"born": "1968-11-11"`, `"born": "11/11/1968"`},
			[][]string{{`"Q-01-2"`, `born "11/11/1968" is not an ISO date`}}},
		{"born on a day that does not exist", []string{`"born": "1968-11-11"`, `"born": "1968-02-30"`},
			[][]string{{`"Q-01-2"`, `born "1968-02-30"`}}},
		{"born missing", []string{`, "born": "1968-11-11"`, ``},
			[][]string{{`"Q-01-2"`, `born ""`}}},
		{"election date in day-month-year order", []string{`"date": "2021-05-23"`, `"date": "23/05/2021"`},
			[][]string{{"election", `date "23/05/2021" is not an ISO date`}}},
		{"election date on 29 February of a common year", []string{`"date": "2021-05-23"`, `"date": "2021-02-29"`},
			[][]string{{"election", `date "2021-02-29"`}}},
		{"unit lists an unknown area", []string{q02Members, `"areas": ["LB-VH", "LB-GB"], "stations": ["LB-NT-02", "LB-PL-01"],`},
			[][]string{{`"Q-02"`, `unknown area "LB-GB"`}}},
		{"unit lists an unknown station", []string{q02Members, `"areas": ["LB-VH"], "stations": ["LB-NT-02", "LB-PL-01", "LB-NT-09"],`},
			[][]string{{`"Q-02"`, `unknown station "LB-NT-09"`}}},
		{"unit whose area holds no station", []string{q01Members, `"areas": ["LB-CK"], "stations": [],`},
			[][]string{{`"Q-01"`, "no stations"}}},
		{"unit listing nothing", []string{q01Members, `"areas": [], "stations": [],`},
			[][]string{{`"Q-01"`, "no stations"}}},
		{"unit listing only an unknown area", []string{q01Members, `"areas": ["LB-GB"], "stations": [],`},
			[][]string{{`"Q-01"`, `unknown area "LB-GB"`}, {`"Q-01"`, "no stations"}}},

		// Contests and names.
		{"unknown contest level", []string{`"level": "district",
      "units"`, `"level": "village",
      "units"`},
			[][]string{{`"HDND-LB"`, `level "village" is not national, commune or one of the election's levels (province, district, ward)`}}},
		{"contest without units", []string{`"contests": [`, `"contests": [
    {"id": "HDND-TQ", "name": "Đại biểu HĐND thị trấn Trâu Quỳ", "level": "commune", "units": []},`},
			[][]string{{`"HDND-TQ"`, "no units"}}},
		{"empty election name", []string{`"name": "Bầu cử đại biểu Quốc hội khóa XV và đại biểu HĐND các cấp nhiệm kỳ 2021-2026"`, `"name": ""`},
			[][]string{{"election", "name is empty"}}},
		{"empty area name", []string{`"name": "Phường Cự Khối"`, `"name": ""`},
			[][]string{{`"LB-CK"`, "name is empty"}}},
		{"empty candidate name", []string{`"name": "Mai Thị Thủy"`, `"name": ""`},
			[][]string{{`"Q-01-3"`, "name is empty"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := edit(t, hanoiElection, tt.edits...)
			wantProblems(t, parseProblems(t, src), tt.want)
		})
	}
}

func TestParseListsEveryProblemOfTheFile(t *testing.T) {
	src := edit(t, hanoiElection,
		`"date": "2021-05-23"`, `"date": "23/05/2021"`,
		`{"id": "LB-CK"`, `{"id": "LB-Cự-Khối"`,
		`"name": "Huyện Gia Lâm", "level": "district", "parent": "HN"`, `"name": "Huyện Gia Lâm", "level": "district", "parent": "HCM"`,
		`"registered": 1400}`, `"registered": 1400},
    {"id": "LB-GB-01", "name": "Khu vực bỏ phiếu số 1 phường Giang Biên", "ward": "LB-GB", "registered": 1200}`,
		`"id": "Q-01", "name": "Đơn vị bầu cử số 1 quận Long Biên", "seats": 2`, `"id": "Q-01", "name": "Đơn vị bầu cử số 1 quận Long Biên", "seats": 0`,
		`"born": "1979-08-18"`, `"born": "1979-13-18"`,
		`"id": "Q-02-5"`, `"id": "Q-01-1"`,
		`"areas": ["GL"], "stations": []`, `"areas": ["GL"], "stations": ["LB-BD-01"]`,
		`"stations": ["LB-NT-02", "LB-PL-01"]`, `"stations": ["LB-NT-02", "LB-PL-01", "LB-NT-09"]`,
		`"areas": ["GL-TQ"], "stations": []`, `"areas": ["GL-XX"], "stations": []`,
	)
	problems := parseProblems(t, src)
	wantProblems(t, problems, [][]string{
		{"election", `date "23/05/2021"`},
		{`"LB-Cự-Khối"`, "not a valid id"},
		{`"GL"`, `unknown parent "HCM"`},
		{`"LB-GB-01"`, `unknown ward "LB-GB"`},
		{`"Q-01"`, "seats 0"},
		{`"Q-02-2"`, `born "1979-13-18"`},
		{`"Q-01-1"`, "duplicate candidate id"},
		{`"QH-HN-05"`, `station "LB-BD-01" is already in unit "QH-HN-02"`},
		{`"Q-02"`, `unknown station "LB-NT-09"`},
		{`"TP-09"`, `unknown area "GL-XX"`},
		{`"TP-09"`, "no stations"},
	})
}

func TestParseRefusesWhatIsNotOneElectionObject(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown top-level field", edit(t, hanoiElection, `"date": "2021-05-23",`, `"date": "2021-05-23", "vòng": 1,`),
			[]string{"not valid JSON", `unknown field "vòng"`}},
		{"unknown candidate field", edit(t, hanoiElection, `"name": "Mai Thị Thủy",`, `"name": "Mai Thị Thủy", "đảng": "Mặt trận Tổ quốc",`),
			[]string{"not valid JSON", `unknown field "đảng"`}},
		{"unknown station field", edit(t, hanoiElection, `"registered": 92}`, `"registered": 92, "cử_tri": 92}`),
			[]string{"not valid JSON", `unknown field "cử_tri"`}},
		{"syntax error", hanoiElection[:len(hanoiElection)-1], []string{"not valid JSON"}},
		{"string where a number belongs", edit(t, hanoiElection, `"registered": 92}`, `"registered": "92"}`), []string{"not valid JSON"}},
		{"two JSON values", hanoiElection + "\n{}", []string{"more than one JSON value"}},
		{"empty file", "", []string{"not valid JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantProblems(t, parseProblems(t, tt.src), [][]string{tt.want})
		})
	}
}

// TestParseAcceptsOverlapsWithinOneUnit checks that listing an area or a
// station twice, or an area and a station inside it, in the same unit is no
// problem: the station is still counted once.
func TestParseAcceptsOverlapsWithinOneUnit(t *testing.T) {
	tests := []struct {
		name    string
		edits   []string
		unit    string
		members int
	}{
		{"area listed twice", []string{`"areas": ["LB-BD"], "stations": ["LB-NT-01"],`, `"areas": ["LB-BD", "LB-BD"], "stations": ["LB-NT-01"],`}, "Q-01", 3},
		{"station listed twice and inside a listed area", []string{`"areas": ["LB-BD"], "stations": ["LB-NT-01"],`, `"areas": ["LB-BD"], "stations": ["LB-NT-01", "LB-BD-01", "LB-NT-01"],`}, "Q-01", 3},
		{"district, its ward and its station", []string{`"areas": ["GL"], "stations": []`, `"areas": ["GL", "GL-TQ"], "stations": ["GL-TQ-01"]`}, "QH-HN-05", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustParse(t, edit(t, hanoiElection, tt.edits...))
			x := idx{t, e}
			c, u := x.unit(tt.unit)
			if got := len(e.UnitStations(c, u)); got != tt.members {
				t.Errorf("UnitStations(%s) has %d stations, want %d", tt.unit, got, tt.members)
			}
			if got := e.Expected(c, x.area("HN")); got != e.Expected(c, x.area("LB"))+e.Expected(c, x.area("GL")) {
				t.Errorf("Expected(HN) = %d is not the sum over its districts", got)
			}
		})
	}
}

func TestParseErrorIsElectionError(t *testing.T) {
	_, err := tally.Parse([]byte(edit(t, hanoiElection, `"id": "hn-2021"`, `"id": "hn/2021"`)))
	var ee *tally.ElectionError
	if !errors.As(err, &ee) || len(ee.Problems) != 1 {
		t.Fatalf("Parse error = %v, want an *ElectionError with one problem", err)
	}
	if !strings.HasPrefix(err.Error(), "invalid election file (1 problems)") {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestValidIDFollowsTheIdentifierPattern(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"hn-2021", true},
		{"LB-BD-01", true},
		{"QH_HN_02", true},
		{"7", true},
		{"a" + strings.Repeat("b", 63), true},
		{"a" + strings.Repeat("b", 64), false},
		{"", false},
		{"-LB", false},
		{"_LB", false},
		{"LB BD", false},
		{"LB.BD", false},
		{"LB/BD", false},
		{"LB*", false},
		{"LB>", false},
		{"Bồ-Đề", false},
		{"LB-BD\n", false},
	}
	for _, tt := range tests {
		if got := tally.ValidID(tt.id); got != tt.want {
			t.Errorf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

// TestValidIDMatchesTheContractPattern compares ValidID with the pattern of
// CONTRACT §1 on every short string over a small alphabet and on edge cases.
func TestValidIDMatchesTheContractPattern(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	alphabet := []string{"a", "Z", "0", "_", "-", ".", " ", "ệ", "*", ">"}
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		if got, want := tally.ValidID(prefix), re.MatchString(prefix); got != want {
			t.Fatalf("ValidID(%q) = %v, pattern says %v", prefix, got, want)
		}
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			gen(prefix+c, n-1)
		}
	}
	gen("", 4)
	for _, id := range []string{strings.Repeat("a", 64), strings.Repeat("a", 65), "a" + strings.Repeat("-", 63), "-a", "a\n"} {
		if got, want := tally.ValidID(id), re.MatchString(id); got != want {
			t.Fatalf("ValidID(%q) = %v, pattern says %v", id, got, want)
		}
	}
}
