package tally

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// AreaLevel is the administrative level of an area: one of the levels the
// election file declares (CONTRACT §2 v2).
type AreaLevel string

// The levels of the 2021 structure (the default) and of the two-tier
// structure in force since 1 July 2025.
const (
	Province AreaLevel = "province"
	District AreaLevel = "district"
	Ward     AreaLevel = "ward"    // the 2021 bottom level: every commune-level unit (phường, xã, thị trấn)
	Commune  AreaLevel = "commune" // the two-tier bottom level (phường, xã, đặc khu)
)

// DefaultLevels are the levels of a file that declares none (v1, 2021).
var DefaultLevels = []AreaLevel{Province, District, Ward}

// MaxLevels bounds the declared levels.
const MaxLevels = 4

// ContestLevel says which body a contest elects; it decides the
// additional-election rule (DOMAIN.md, Art. 79). A council contest's level
// is one of the file's levels; "commune" always names the bottom one.
type ContestLevel string

// Contest levels.
const (
	National        ContestLevel = "national" // Quốc hội
	ProvinceCouncil ContestLevel = "province" // HĐND tỉnh
	DistrictCouncil ContestLevel = "district" // HĐND huyện (2021 only)
	CommuneCouncil  ContestLevel = "commune"  // HĐND xã: the bottom level, whatever its name
)

// Round is which round of voting a unit holds (CONTRACT §2 v2).
type Round string

// Rounds. The empty Round is the first.
const (
	FirstRound Round = "first"
	Additional Round = "additional"  // bầu thêm (Art. 79): only the seats still empty
	ReVote     Round = "re_election" // bầu cử lại (Art. 80): the whole unit votes again
)

// Election is one election file (CONTRACT §2) plus the indexes compiled from
// it. The exported fields mirror the file; the indexes are reached through
// methods.
type Election struct {
	ID       string      `json:"id"`
	Name     string      `json:"name"`
	Date     string      `json:"date"`
	Levels   []AreaLevel `json:"levels,omitempty"`
	Areas    []Area      `json:"areas"`
	Stations []Station   `json:"stations"`
	Contests []Contest   `json:"contests"`

	levels     []AreaLevel // Levels, or DefaultLevels
	areaIdx    map[string]int
	stationIdx stationTable
	contestIdx map[string]int
	unitIdx    map[string][2]int // unit id -> contest, unit
	candIdx    map[string][3]int // candidate id -> contest, unit, candidate
	sealed     bool              // some station has a seal
	warnings   []string
	// chains holds every station's areas, bottom level first, len(levels)
	// per station.
	chains []int
	// part: a part of a file (Restrict), which may have no station, no
	// area, or a contest with no unit.
	part bool
}

// Area is an area at one of the election's levels.
type Area struct {
	ID     string    `json:"id"`
	Name   string    `json:"name"`
	Level  AreaLevel `json:"level"`
	Parent string    `json:"parent,omitempty"`

	parent int // index of the parent area, -1 at the top level
	depth  int // index of Level in the election's levels (0: top)
}

// Station is a polling area (khu vực bỏ phiếu) run by one polling group.
// Its bottom-level area is named by Area (v2) or Ward (v1); see AreaID.
type Station struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Area       string `json:"area,omitempty"`
	Ward       string `json:"ward,omitempty"`
	Registered int64  `json:"registered"`
	Seal       string `json:"seal,omitempty"`

	// votesIn lists the contests the station votes in, with its position
	// among that contest's voters.
	votesIn []voterRef
}

type voterRef struct{ contest, voter int32 }

// AreaID returns the id of the station's bottom-level area: Area, or Ward
// in a v1 file.
func (s *Station) AreaID() string {
	if s.Area != "" {
		return s.Area
	}
	return s.Ward
}

// Contest is one ballot (lá phiếu): the National Assembly, or the People's
// Councils of one level (one council or many, each unit naming its own).
type Contest struct {
	ID    string       `json:"id"`
	Name  string       `json:"name"`
	Level ContestLevel `json:"level"`
	Units []Unit       `json:"units"`

	// depth is the index of the council level in the election's levels,
	// -1 for a national contest.
	depth int

	// The fold's layout. Everything is sized by what votes in the contest,
	// never by the whole file: a national file holds thousands of contests.
	//
	// voters are the stations voting in the contest, ascending; a station's
	// position there is its voter index.
	voters    []int32
	voterUnit []int32
	// areas are the areas holding voters, ascending; a position there is a
	// local area index.
	areas        []int32
	areaExpected []int32
	// areaUnits[la] lists the units with stations in local area la, in unit
	// order; when the area's result carries votes its vote vector is their
	// candidate lists laid end to end.
	areaUnits [][]int32
	areaVotes []bool // the area's result carries votes (CONTRACT §4 v2)
	// voterAreas[v*D+k] is the local index of voter v's area k levels above
	// the bottom, and voterOffset[v*D+k] where its unit's candidates start
	// in that area's vote vector (-1: the area carries no votes).
	voterAreas  []int32
	voterOffset []int32
	// homeUnits[la] and homeSeats[la] count the units (and their seats)
	// whose stations all lie in local area la.
	homeUnits, homeSeats []int32
}

// Unit is an electoral unit (đơn vị bầu cử) of a contest.
type Unit struct {
	ID              string      `json:"id"`
	Name            string      `json:"name"`
	Council         string      `json:"council,omitempty"`
	Seats           int         `json:"seats"`
	Round           Round       `json:"round,omitempty"`
	Areas           []string    `json:"areas"`
	Stations        []string    `json:"stations"`
	StationsOutside int         `json:"stations_outside,omitempty"`
	Candidates      []Candidate `json:"candidates"`

	members  []int32 // station indexes, ascending
	candByID map[string]int
	council  int   // the council's area (inferred when not given), -1 for national
	homes    []int // the areas holding every station of the unit, bottom first
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
	if p := sharedSeals(&e); len(p) > 0 {
		return nil, &ElectionError{Problems: p}
	}
	return &e, nil
}

// sharedSeals lists the stations whose seal another station already has
// (CONTRACT §7a): one key would sign for both, and the NATS identity the
// seal is would publish for either.
func sharedSeals(e *Election) []string {
	var p []string
	first := map[string]int{}
	for i := range e.Stations {
		seal := e.Stations[i].Seal
		if seal == "" {
			continue
		}
		if j, ok := first[seal]; ok {
			p = append(p, fmt.Sprintf("stations[%d] %q: seal is the same as the seal of stations[%d] %q; each station needs its own key (tally keys new)",
				i, e.Stations[i].ID, j, e.Stations[j].ID))
			continue
		}
		first[seal] = i
	}
	return p
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
		if empty.n == 0 && !e.part {
			p.add("election: %s is empty; an election needs at least one", empty.field)
		}
	}

	// Levels.
	e.levels = e.Levels
	if e.Levels == nil {
		e.levels = DefaultLevels
	}
	depthOf := make(map[AreaLevel]int, len(e.levels))
	if n := len(e.levels); n < 1 || n > MaxLevels {
		// Every check below places areas and stations on the levels: with
		// none to place them on, this is the file's one problem worth
		// reporting.
		p.add("election: levels holds %d levels, must hold 1 to %d", n, MaxLevels)
		return &ElectionError{Problems: p}
	}
	for i, l := range e.levels {
		switch _, dup := depthOf[l]; {
		case !ValidID(string(l)):
			p.add("election: levels[%d] %q is not a valid id", i, l)
		case l == AreaLevel(National):
			p.add("election: levels[%d] %q: %q names the National Assembly contest level, not an area level", i, l, National)
		case l == Commune && i != len(e.levels)-1:
			p.add("election: levels[%d] %q: %q always names the bottom level, it cannot be above %q", i, l, Commune, e.levels[len(e.levels)-1])
		case dup:
			p.add("election: levels[%d] %q is declared twice", i, l)
		default:
			depthOf[l] = i
		}
	}
	bottom := len(e.levels) - 1
	levelList := func() string {
		names := make([]string, len(e.levels))
		for i, l := range e.levels {
			names[i] = string(l)
		}
		return strings.Join(names, ", ")
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
	for i := range e.Areas {
		a := &e.Areas[i]
		a.parent, a.depth = -1, -1
		where := &at{kind: "areas", i: i, id: a.ID}
		d, ok := depthOf[a.Level]
		switch {
		case !ok:
			p.add("%s: level %q is not one of the election's levels (%s)", where, a.Level, levelList())
			continue
		case d == 0:
			a.depth = 0
			if a.Parent != "" {
				p.add("%s: a %s has no parent (the top level), got %q", where, a.Level, a.Parent)
			}
			continue
		}
		a.depth = d
		want := e.levels[d-1]
		pi, ok := e.areaIdx[a.Parent]
		switch {
		case a.Parent == "":
			p.add("%s: a %s needs a parent %s", where, a.Level, want)
		case !ok:
			p.add("%s: unknown parent %q", where, a.Parent)
		case e.Areas[pi].Level != want:
			p.add("%s: parent %q is a %s, a %s's parent must be a %s", where, a.Parent, e.Areas[pi].Level, a.Level, want)
		default:
			a.parent = pi
		}
	}

	// Stations.
	depth := len(e.levels)
	e.stationIdx = newStationTable(len(e.Stations))
	e.chains = make([]int, len(e.Stations)*depth)
	for i := range e.Stations {
		s := &e.Stations[i]
		where := &at{kind: "stations", i: i, id: s.ID}
		checkID("station", s.ID, where)
		if !e.stationIdx.add(e.Stations, s.ID, i) {
			p.add("%s: duplicate station id", where)
		}
		if s.Name == "" {
			p.add("%s: name is empty", where)
		}
		e.sealed = e.sealed || s.Seal != ""
		if s.Registered < 0 {
			p.add("%s: registered %d is negative", where, s.Registered)
		} else if s.Registered > maxStationVoters {
			e.warn("%s: %d voters registered; a polling area has 300 to %d voters (Art. 11)", where, s.Registered, maxStationVoters)
		}
		chain := e.chains[i*depth : (i+1)*depth]
		for k := range chain {
			chain[k] = -1
		}
		name := e.levels[bottom]
		if s.Area != "" && s.Ward != "" && s.Area != s.Ward {
			p.add("%s: area %q and ward %q differ; ward is the v1 name of area, give one of them", where, s.Area, s.Ward)
			continue
		}
		id := s.AreaID()
		ai, ok := e.areaIdx[id]
		switch {
		case id == "":
			p.add("%s: area is missing (the station's %s)", where, name)
		case !ok:
			p.add("%s: unknown %s %q", where, name, id)
		case e.Areas[ai].depth != bottom:
			p.add("%s: %s %q is a %s, not a %s (a station belongs to a bottom-level area)", where, name, id, e.Areas[ai].Level, name)
		default:
			// A missing parent (already reported) leaves the chain short:
			// -1 above it.
			for k, a := 0, ai; k < depth && a >= 0; k++ {
				chain[k] = a
				a = e.Areas[a].parent
			}
		}
	}

	// under[a] lists the stations in area a, at any level.
	under := make([][]int32, len(e.Areas))
	for s := range e.Stations {
		for _, a := range e.StationAreas(s) {
			if a >= 0 {
				under[a] = append(under[a], int32(s))
			}
		}
	}

	// Contests, units, candidates.
	e.contestIdx = make(map[string]int, len(e.Contests))
	e.unitIdx = make(map[string][2]int)
	e.candIdx = make(map[string][3]int)
	unitOf := map[int32]int32{} // station -> unit, for one contest at a time
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
		c.depth = -1
		levelOK := true
		switch d, ok := depthOf[AreaLevel(c.Level)]; {
		case c.Level == National:
		case c.Level == CommuneCouncil:
			c.depth = bottom
		case ok:
			c.depth = d
		default:
			levelOK = false
			p.add("%s: level %q is not national, commune or one of the election's levels (%s): this election has no such council", where, c.Level, levelList())
		}
		if len(c.Units) == 0 && !e.part {
			p.add("%s: no units", where)
		}
		clear(unitOf)
		for ui := range c.Units {
			u := &c.Units[ui]
			u.council = -1
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
			if u.StationsOutside < 0 {
				p.add("%s: stations_outside %d is negative", uwhere, u.StationsOutside)
			}
			switch u.Round {
			case "", FirstRound, Additional, ReVote:
			default:
				p.add("%s: round %q is not first, additional or re_election", uwhere, u.Round)
			}
			if c.Level == National && u.Council != "" {
				p.add("%s: council %q given in a national contest; a National Assembly unit elects no council", uwhere, u.Council)
			}
			if levelOK && u.Seats >= 1 {
				e.lawWarnings(c, u, uwhere)
			}
			internIDs(u.Candidates)
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
			claim := func(s int32) {
				switch prev, ok := unitOf[s]; {
				case ok && prev == int32(ui):
				case ok:
					p.add("%s: station %q is already in unit %q of this contest; a station belongs to at most one unit per contest", uwhere, e.Stations[s].ID, c.Units[prev].ID)
				default:
					unitOf[s] = int32(ui)
					u.members = append(u.members, s)
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
				s, ok := e.stationIdx.find(e.Stations, sid)
				if !ok {
					p.add("%s: unknown station %q", uwhere, sid)
					continue
				}
				claim(int32(s))
			}
			slices.Sort(u.members)
			if len(u.members) == 0 {
				p.add("%s: no stations (list areas or stations that hold polling stations)", uwhere)
				continue
			}
			placed := true
			for _, s := range u.members {
				placed = placed && e.StationAreas(int(s))[depth-1] >= 0
			}
			if !placed {
				continue // a station's area is already reported
			}
			u.homes = e.commonAreas(u.members)
			if levelOK && c.Level != National {
				e.placeCouncil(c, u, uwhere, &p)
			}
		}
	}
	if len(p) > 0 {
		return &ElectionError{Problems: p}
	}
	e.buildLayouts()
	for s := range e.Stations {
		if len(e.Stations[s].votesIn) == 0 && len(e.Contests) > 0 {
			e.warn("%s: the station votes in no contest", &at{kind: "stations", i: s, id: e.Stations[s].ID})
		}
	}
	return nil
}

// maxStationVoters is the most voters a polling area has (Art. 11).
const maxStationVoters = 4000

// warn records a warning: what the law bounds but a late change can break
// (CONTRACT §2). Warnings never refuse a file.
func (e *Election) warn(format string, args ...any) {
	e.warnings = append(e.warnings, fmt.Sprintf(format, args...))
}

// lawWarnings warns about a unit's seats and candidates beyond what the
// law allows (DOMAIN.md: Art. 10, 57, 58).
func (e *Election) lawWarnings(c *Contest, u *Unit, where fmt.Stringer) {
	n, seats := len(u.Candidates), u.Seats
	if c.Level == National {
		if seats > 3 {
			e.warn("%s: %d seats; a National Assembly unit elects at most 3 (Art. 10)", where, seats)
		}
		if u.Round != Additional && n > seats && n < seats+2 {
			e.warn("%s: %d candidates for %d seats; the National Assembly needs at least 2 more candidates than seats (Art. 57)", where, n, seats)
		}
		return
	}
	if seats > 5 {
		e.warn("%s: %d seats; a People's Council unit elects at most 5 (Art. 10)", where, seats)
	}
	margin := 1
	switch {
	case seats >= 4:
		margin = 3
	case seats == 3:
		margin = 2
	}
	if u.Round != Additional && n > seats && n < seats+margin {
		e.warn("%s: %d candidates for %d seats; a People's Council unit of %d seats needs at least %d more candidates than seats (Art. 58)", where, n, seats, seats, margin)
	}
}

// commonAreas returns the areas that hold every one of members (non-empty,
// ascending), bottom first. REQUIRES: e.chains.
func (e *Election) commonAreas(members []int32) []int {
	depth := len(e.levels)
	first := e.StationAreas(int(members[0]))
	k := 0 // the lowest level at which every member shares first's area
	for _, s := range members[1:] {
		chain := e.StationAreas(int(s))
		for k < depth && chain[k] != first[k] {
			k++
		}
		if k == depth {
			return nil
		}
	}
	return first[k:]
}

// placeCouncil checks or infers the council of unit u of council contest c.
func (e *Election) placeCouncil(c *Contest, u *Unit, where fmt.Stringer, p *problems) {
	level := e.levels[c.depth]
	k := len(e.levels) - 1 - c.depth // the council level, counted from the bottom
	if u.Council == "" {
		// The areas holding every station, bottom first: the council is
		// the one at the contest's level, if the unit fits in one.
		if off := len(e.levels) - len(u.homes); off <= k && len(u.homes) > 0 {
			u.council = u.homes[k-off]
			return
		}
		p.add("%s: no %s holds every station of the unit, so its council cannot be inferred; a unit elects one %s council, give it as council", where, level, level)
		return
	}
	ai, ok := e.areaIdx[u.Council]
	switch {
	case !ok:
		p.add("%s: unknown council %q", where, u.Council)
		return
	case e.Areas[ai].depth != c.depth:
		p.add("%s: council %q is a %s, a %s contest elects %s councils", where, u.Council, e.Areas[ai].Level, c.Level, level)
		return
	}
	for _, s := range u.members {
		if e.StationAreas(int(s))[k] != ai {
			p.add("%s: council %q does not contain station %q of the unit (it is in %s %q)", where, u.Council, e.Stations[s].ID, level, e.Areas[e.StationAreas(int(s))[k]].ID)
			return
		}
	}
	u.council = ai
}

// buildLayouts computes, per contest, its voters, their areas, the
// expected station counts and the vote-vector layout of every area, sized
// by what votes in the contest. REQUIRES: compile found no problem.
func (e *Election) buildLayouts() {
	depth := len(e.levels)
	for ci := range e.Contests {
		c := &e.Contests[ci]
		n := 0
		for ui := range c.Units {
			n += len(c.Units[ui].members)
		}
		c.voters = make([]int32, 0, n)
		for ui := range c.Units {
			c.voters = append(c.voters, c.Units[ui].members...)
		}
		slices.Sort(c.voters)
		c.voterUnit = make([]int32, n)
		for ui := range c.Units {
			for _, s := range c.Units[ui].members {
				v, _ := slices.BinarySearch(c.voters, s)
				c.voterUnit[v] = int32(ui)
			}
		}
		for v, s := range c.voters {
			e.Stations[s].votesIn = append(e.Stations[s].votesIn, voterRef{int32(ci), int32(v)})
		}
		// The contest's areas: every area of every voter.
		areas := make([]int32, 0, n*depth/4+1)
		for _, s := range c.voters {
			for _, a := range e.StationAreas(int(s)) {
				areas = append(areas, int32(a))
			}
		}
		slices.Sort(areas)
		c.areas = slices.Clip(slices.Compact(areas))
		na := len(c.areas)
		c.areaExpected = make([]int32, na)
		c.areaUnits = make([][]int32, na)
		c.areaVotes = make([]bool, na)
		c.voterAreas = make([]int32, n*depth)
		for v, s := range c.voters {
			u := c.voterUnit[v]
			for k, a := range e.StationAreas(int(s)) {
				la, _ := slices.BinarySearch(c.areas, int32(a))
				c.voterAreas[v*depth+k] = int32(la)
				c.areaExpected[la]++
				if us := c.areaUnits[la]; len(us) == 0 || us[len(us)-1] != u {
					if i, found := slices.BinarySearch(us, u); !found {
						c.areaUnits[la] = slices.Insert(us, i, u)
					}
				}
			}
		}
		for la, a := range c.areas {
			// CONTRACT §4 v2: votes where the contest is national or its
			// council level is at or above the area's.
			c.areaVotes[la] = c.depth < 0 || c.depth <= e.Areas[a].depth
		}
		// start[la][i] is where the candidates of areaUnits[la][i] begin in
		// area la's vote vector.
		c.voterOffset = make([]int32, n*depth)
		for v := range c.voters {
			u := c.voterUnit[v]
			for k := 0; k < depth; k++ {
				la := c.voterAreas[v*depth+k]
				if !c.areaVotes[la] {
					c.voterOffset[v*depth+k] = -1
					continue
				}
				off := int32(0)
				for _, x := range c.areaUnits[la] {
					if x == u {
						break
					}
					off += int32(len(c.Units[x].Candidates))
				}
				c.voterOffset[v*depth+k] = off
			}
		}
		c.homeUnits = make([]int32, na)
		c.homeSeats = make([]int32, na)
		for ui := range c.Units {
			u := &c.Units[ui]
			for _, a := range u.homes {
				la, _ := slices.BinarySearch(c.areas, int32(a))
				c.homeUnits[la]++
				c.homeSeats[la] += int32(u.Seats)
			}
		}
	}
}

// internIDs lays a unit's candidate ids side by side in one string: checking
// a minutes' votes against them (Check) then reads a cache line or two, not
// one per candidate, wherever the decoder put each id.
func internIDs(cands []Candidate) {
	n := 0
	for k := range cands {
		n += len(cands[k].ID)
	}
	var b strings.Builder
	b.Grow(n)
	for k := range cands {
		b.WriteString(cands[k].ID)
	}
	all, off := b.String(), 0
	for k := range cands {
		l := len(cands[k].ID)
		cands[k].ID = all[off : off+l]
		off += l
	}
}
