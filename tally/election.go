package tally

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// AreaLevel is the administrative level of an area.
type AreaLevel string

// Area levels, from the top.
const (
	Province AreaLevel = "province"
	District AreaLevel = "district"
	Ward     AreaLevel = "ward" // every commune-level unit: phường, xã, thị trấn
)

// ContestLevel says which body a contest elects; it decides the
// additional-election rule (DOMAIN.md, Art. 79).
type ContestLevel string

// Contest levels.
const (
	National        ContestLevel = "national" // Quốc hội
	ProvinceCouncil ContestLevel = "province" // HĐND tỉnh
	DistrictCouncil ContestLevel = "district" // HĐND huyện
	CommuneCouncil  ContestLevel = "commune"  // HĐND xã
)

// Election is one election file (CONTRACT §2) plus the indexes compiled from
// it. The exported fields mirror the file; the indexes are reached through
// methods.
type Election struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Date     string    `json:"date"`
	Areas    []Area    `json:"areas"`
	Stations []Station `json:"stations"`
	Contests []Contest `json:"contests"`

	areaIdx    map[string]int
	stationIdx map[string]int
	contestIdx map[string]int
	unitIdx    map[string][2]int // unit id -> contest, unit
	candIdx    map[string][3]int // candidate id -> contest, unit, candidate
	sealed     bool              // some station has a seal
}

// Area is a province, district or ward.
type Area struct {
	ID     string    `json:"id"`
	Name   string    `json:"name"`
	Level  AreaLevel `json:"level"`
	Parent string    `json:"parent,omitempty"`

	parent int // index of the parent area, -1 for a province
}

// Station is a polling area (khu vực bỏ phiếu) run by one polling group.
type Station struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Ward       string `json:"ward"`
	Registered int64  `json:"registered"`
	Seal       string `json:"seal,omitempty"`

	// Areas holds the indexes of the station's ward, district and province.
	areas [3]int
}

// Contest is one ballot: the election of one body.
type Contest struct {
	ID    string       `json:"id"`
	Name  string       `json:"name"`
	Level ContestLevel `json:"level"`
	Units []Unit       `json:"units"`

	// stationUnit[s] is the unit station s votes in, -1 if none.
	stationUnit []int32
	// expected[a] is the number of stations of area a voting in the contest.
	expected []int32
	// areaUnits[a] lists the units with stations in area a, in unit order;
	// area a's vote vector is their candidate lists laid end to end.
	areaUnits [][]int32
	// voteOffset[s][k] is where the candidates of station s's unit start in
	// the vote vector of the station's k-th area (ward, district, province).
	voteOffset [][3]int32
}

// Unit is an electoral unit (đơn vị bầu cử) of a contest.
type Unit struct {
	ID         string      `json:"id"`
	Name       string      `json:"name"`
	Seats      int         `json:"seats"`
	Areas      []string    `json:"areas"`
	Stations   []string    `json:"stations"`
	Candidates []Candidate `json:"candidates"`

	members  []int32 // station indexes, ascending
	candByID map[string]int
}

// Candidate stands in one unit.
type Candidate struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Born string `json:"born"` // ISO date; older (smaller) ranks first on equal votes
}

// ValidID reports whether id is a valid identifier (CONTRACT §1),
// ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$: safe as a NATS subject token and a URL
// path segment. (Written out by hand: a national file has millions of ids.)
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Parse decodes and validates an election file. YAML is not accepted; JSON
// is. On any problem it returns an *ElectionError listing every problem.
func Parse(data []byte) (*Election, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var e Election
	if err := dec.Decode(&e); err != nil {
		return nil, &ElectionError{Problems: []string{"election file is not valid JSON: " + err.Error()}}
	}
	if dec.More() {
		return nil, &ElectionError{Problems: []string{"election file holds more than one JSON value"}}
	}
	if err := e.compile(); err != nil {
		return nil, err
	}
	return &e, nil
}

// ElectionError lists every problem found in an election file.
type ElectionError struct {
	Problems []string
}

func (e *ElectionError) Error() string {
	return fmt.Sprintf("invalid election file (%d problems):\n  %s", len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// at names a place in the election file for a problem message. It is
// formatted only when a problem is reported: a valid national file has
// millions of places.
type at struct {
	outer *at
	kind  string // "areas", "stations", "contests": an index; else a nested kind
	i     int
	id    string
}

func (w *at) String() string {
	switch {
	case w.outer != nil:
		return fmt.Sprintf("%s %s %q", w.outer, w.kind, w.id)
	case w.kind == "election":
		return "election"
	}
	return fmt.Sprintf("%s[%d] %q", w.kind, w.i, w.id)
}

// problems collects election file problems.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func validDate(s string) bool {
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

// compile validates e and builds its indexes.
func (e *Election) compile() error {
	var p problems
	checkID := func(kind, id string, where fmt.Stringer) {
		if !ValidID(id) {
			p.add("%s: %s id %q is not a valid id (^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$)", where, kind, id)
		}
	}
	checkID("election", e.ID, &at{kind: "election", id: e.ID})
	if e.Name == "" {
		p.add("election: name is empty")
	}
	if !validDate(e.Date) {
		p.add("election: date %q is not an ISO date (YYYY-MM-DD)", e.Date)
	}
	// An election with nothing to count is a wrong file, not an empty night.
	for _, empty := range []struct {
		field string
		n     int
	}{{"areas", len(e.Areas)}, {"stations", len(e.Stations)}, {"contests", len(e.Contests)}} {
		if empty.n == 0 {
			p.add("election: %s is empty; an election needs at least one", empty.field)
		}
	}

	// Areas.
	e.areaIdx = make(map[string]int, len(e.Areas))
	for i, a := range e.Areas {
		where := &at{kind: "areas", i: i, id: a.ID}
		checkID("area", a.ID, where)
		if _, dup := e.areaIdx[a.ID]; dup {
			p.add("%s: duplicate area id", where)
			continue
		}
		e.areaIdx[a.ID] = i
		if a.Name == "" {
			p.add("%s: name is empty", where)
		}
	}
	wantParent := map[AreaLevel]AreaLevel{District: Province, Ward: District}
	for i := range e.Areas {
		a := &e.Areas[i]
		a.parent = -1
		where := &at{kind: "areas", i: i, id: a.ID}
		switch a.Level {
		case Province:
			if a.Parent != "" {
				p.add("%s: a province has no parent, got %q", where, a.Parent)
			}
		case District, Ward:
			pi, ok := e.areaIdx[a.Parent]
			switch {
			case a.Parent == "":
				p.add("%s: a %s needs a parent %s", where, a.Level, wantParent[a.Level])
			case !ok:
				p.add("%s: unknown parent %q", where, a.Parent)
			case e.Areas[pi].Level != wantParent[a.Level]:
				p.add("%s: parent %q is a %s, a %s's parent must be a %s", where, a.Parent, e.Areas[pi].Level, a.Level, wantParent[a.Level])
			default:
				a.parent = pi
			}
		default:
			p.add("%s: level %q is not province, district or ward", where, a.Level)
		}
	}

	// Stations.
	e.stationIdx = make(map[string]int, len(e.Stations))
	for i := range e.Stations {
		s := &e.Stations[i]
		where := &at{kind: "stations", i: i, id: s.ID}
		checkID("station", s.ID, where)
		if _, dup := e.stationIdx[s.ID]; dup {
			p.add("%s: duplicate station id", where)
		} else {
			e.stationIdx[s.ID] = i
		}
		if s.Name == "" {
			p.add("%s: name is empty", where)
		}
		e.sealed = e.sealed || s.Seal != ""
		if s.Registered < 0 {
			p.add("%s: registered %d is negative", where, s.Registered)
		}
		s.areas = [3]int{-1, -1, -1}
		wi, ok := e.areaIdx[s.Ward]
		switch {
		case !ok:
			p.add("%s: unknown ward %q", where, s.Ward)
		case e.Areas[wi].Level != Ward:
			p.add("%s: ward %q is a %s, not a ward", where, s.Ward, e.Areas[wi].Level)
		default:
			d := e.Areas[wi].parent
			pr := -1
			if d >= 0 {
				pr = e.Areas[d].parent
			}
			s.areas = [3]int{wi, d, pr}
		}
	}

	// under[a] lists the stations in area a, at any level.
	under := make([][]int, len(e.Areas))
	for s := range e.Stations {
		for _, a := range e.Stations[s].areas {
			if a >= 0 {
				under[a] = append(under[a], s)
			}
		}
	}

	// Contests, units, candidates.
	e.contestIdx = make(map[string]int, len(e.Contests))
	e.unitIdx = make(map[string][2]int)
	e.candIdx = make(map[string][3]int)
	for ci := range e.Contests {
		c := &e.Contests[ci]
		where := &at{kind: "contests", i: ci, id: c.ID}
		checkID("contest", c.ID, where)
		if _, dup := e.contestIdx[c.ID]; dup {
			p.add("%s: duplicate contest id", where)
		} else {
			e.contestIdx[c.ID] = ci
		}
		if c.Name == "" {
			p.add("%s: name is empty", where)
		}
		switch c.Level {
		case National, ProvinceCouncil, DistrictCouncil, CommuneCouncil:
		default:
			p.add("%s: level %q is not national, province, district or commune", where, c.Level)
		}
		if len(c.Units) == 0 {
			p.add("%s: no units", where)
		}
		c.stationUnit = make([]int32, len(e.Stations))
		for s := range c.stationUnit {
			c.stationUnit[s] = -1
		}
		for ui := range c.Units {
			u := &c.Units[ui]
			uwhere := &at{outer: where, kind: "unit", id: u.ID}
			checkID("unit", u.ID, uwhere)
			if _, dup := e.unitIdx[u.ID]; dup {
				p.add("%s: duplicate unit id", uwhere)
			} else {
				e.unitIdx[u.ID] = [2]int{ci, ui}
			}
			if u.Name == "" {
				p.add("%s: name is empty", uwhere)
			}
			if u.Seats < 1 {
				p.add("%s: seats %d, must be at least 1", uwhere, u.Seats)
			}
			if len(u.Candidates) <= u.Seats {
				p.add("%s: %d candidates for %d seats, a unit needs more candidates than seats", uwhere, len(u.Candidates), u.Seats)
			}
			u.candByID = make(map[string]int, len(u.Candidates))
			for k, cand := range u.Candidates {
				cwhere := &at{outer: uwhere, kind: "candidate", id: cand.ID}
				checkID("candidate", cand.ID, cwhere)
				if _, dup := e.candIdx[cand.ID]; dup {
					p.add("%s: duplicate candidate id", cwhere)
				} else {
					e.candIdx[cand.ID] = [3]int{ci, ui, k}
				}
				u.candByID[cand.ID] = k
				if cand.Name == "" {
					p.add("%s: name is empty", cwhere)
				}
				if !validDate(cand.Born) {
					p.add("%s: born %q is not an ISO date (YYYY-MM-DD)", cwhere, cand.Born)
				}
			}
			// Members: stations under each listed area plus listed stations.
			claim := func(s int) {
				switch prev := c.stationUnit[s]; {
				case prev == int32(ui):
				case prev >= 0:
					p.add("%s: station %q is already in unit %q of this contest; a station belongs to at most one unit per contest", uwhere, e.Stations[s].ID, c.Units[prev].ID)
				default:
					c.stationUnit[s] = int32(ui)
				}
			}
			for _, aid := range u.Areas {
				ai, ok := e.areaIdx[aid]
				if !ok {
					p.add("%s: unknown area %q", uwhere, aid)
					continue
				}
				for _, s := range under[ai] {
					claim(s)
				}
			}
			for _, sid := range u.Stations {
				s, ok := e.stationIdx[sid]
				if !ok {
					p.add("%s: unknown station %q", uwhere, sid)
					continue
				}
				claim(s)
			}
		}
		for s, ui := range c.stationUnit {
			if ui >= 0 {
				c.Units[ui].members = append(c.Units[ui].members, int32(s))
			}
		}
		for ui := range c.Units {
			if len(c.Units[ui].members) == 0 {
				p.add("%s unit %q: no stations (list areas or stations that hold polling stations)", where, c.Units[ui].ID)
			}
		}
	}
	if len(p) > 0 {
		return &ElectionError{Problems: p}
	}
	e.buildLayouts()
	return nil
}

// buildLayouts computes, per contest, the expected station counts and the
// vote-vector layout of every area. REQUIRES: compile found no problem.
func (e *Election) buildLayouts() {
	for ci := range e.Contests {
		c := &e.Contests[ci]
		c.expected = make([]int32, len(e.Areas))
		c.areaUnits = make([][]int32, len(e.Areas))
		c.voteOffset = make([][3]int32, len(e.Stations))
		has := make([]map[int32]bool, len(e.Areas))
		for s, u := range c.stationUnit {
			if u < 0 {
				continue
			}
			for _, a := range e.Stations[s].areas {
				c.expected[a]++
				if has[a] == nil {
					has[a] = map[int32]bool{}
				}
				has[a][u] = true
			}
		}
		for a, set := range has {
			for u := range set {
				c.areaUnits[a] = append(c.areaUnits[a], u)
			}
			slices.Sort(c.areaUnits[a])
		}
		// start[a][i] is where the candidates of areaUnits[a][i] begin in
		// area a's vote vector; a station finds its unit by binary search.
		start := make([][]int32, len(e.Areas))
		for a, units := range c.areaUnits {
			start[a] = make([]int32, len(units))
			off := int32(0)
			for i, u := range units {
				start[a][i] = off
				off += int32(len(c.Units[u].Candidates))
			}
		}
		for s, u := range c.stationUnit {
			if u < 0 {
				continue
			}
			for k, a := range e.Stations[s].areas {
				i, _ := slices.BinarySearch(c.areaUnits[a], u)
				c.voteOffset[s][k] = start[a][i]
			}
		}
	}
}
