package tally

import "slices"

// Index lookups. Every method here is a read of data fixed at Parse time and
// allocates nothing.

// AreaIndex returns the index of area id in Areas.
func (e *Election) AreaIndex(id string) (int, bool) { i, ok := e.areaIdx[id]; return i, ok }

// Sealed reports whether any station has a seal (CONTRACT §7): only then do
// minutes need a signature.
func (e *Election) Sealed() bool { return e.sealed }

// Warnings returns what the law bounds but the file exceeds (CONTRACT §2):
// logged at start and listed by the API, never a refusal. The caller must
// not modify the slice.
func (e *Election) Warnings() []string { return e.warnings }

// AreaLevels returns the election's levels from the top: the declared ones,
// or DefaultLevels. The caller must not modify the slice.
func (e *Election) AreaLevels() []AreaLevel { return e.levels }

// AreaDepth returns the index of area a's level in AreaLevels (0: top).
func (e *Election) AreaDepth(a int) int { return e.Areas[a].depth }

// StationIndex returns the index of station id in Stations.
func (e *Election) StationIndex(id string) (int, bool) { return e.stationIdx.find(e.Stations, id) }

// ContestIndex returns the index of contest id in Contests.
func (e *Election) ContestIndex(id string) (int, bool) { i, ok := e.contestIdx[id]; return i, ok }

// UnitIndex returns the contest and unit indexes of unit id.
func (e *Election) UnitIndex(id string) (contest, unit int, ok bool) {
	x, ok := e.unitIdx[id]
	return x[0], x[1], ok
}

// StationAreas returns the indexes of station s's areas, one per level, from
// the bottom level (its ward or commune) up to the top (its province). The
// caller must not modify the slice.
func (e *Election) StationAreas(s int) []int {
	d := len(e.levels)
	return e.chains[s*d : (s+1)*d : (s+1)*d]
}

// AreaParent returns the index of area a's parent, -1 at the top level.
func (e *Election) AreaParent(a int) int { return e.Areas[a].parent }

// Voter returns station s's voter index in contest c: its position among
// the stations voting in c. ok is false when s does not vote in c.
func (e *Election) Voter(c, s int) (v int, ok bool) {
	for _, r := range e.Stations[s].votesIn {
		if int(r.contest) == c {
			return int(r.voter), true
		}
	}
	return -1, false
}

// StationContests appends to dst the contests station s votes in, in
// contest order, and returns the extended slice.
func (e *Election) StationContests(s int, dst []int) []int {
	for _, r := range e.Stations[s].votesIn {
		dst = append(dst, int(r.contest))
	}
	return dst
}

// Voters returns the stations voting in contest c, ascending; voter v is
// station Voters(c)[v]. The caller must not modify the slice.
func (e *Election) Voters(c int) []int32 { return e.Contests[c].voters }

// VoterUnit returns the unit voter v of contest c votes in.
func (e *Election) VoterUnit(c, v int) int { return int(e.Contests[c].voterUnit[v]) }

// StationUnit returns the unit station s votes in for contest c, -1 if none.
func (e *Election) StationUnit(c, s int) int {
	if v, ok := e.Voter(c, s); ok {
		return int(e.Contests[c].voterUnit[v])
	}
	return -1
}

// UnitStations returns the stations of unit u of contest c, ascending. The
// caller must not modify the slice.
func (e *Election) UnitStations(c, u int) []int32 { return e.Contests[c].Units[u].members }

// UnitExpected returns the stations expected to report for unit u of
// contest c: its listed stations and its stations_outside.
func (e *Election) UnitExpected(c, u int) int {
	unit := &e.Contests[c].Units[u]
	return len(unit.members) + unit.StationsOutside
}

// UnitCouncil returns the area whose council unit u of contest c elects,
// -1 in a national contest.
func (e *Election) UnitCouncil(c, u int) int { return e.Contests[c].Units[u].council }

// UnitAreas returns the areas that hold every listed station of unit u of
// contest c, bottom first (empty when its stations span top-level areas):
// the areas whose units summary counts it. The caller must not modify the
// slice.
func (e *Election) UnitAreas(c, u int) []int { return e.Contests[c].Units[u].homes }

// ContestAreas returns the areas holding stations that vote in contest c,
// ascending; a position there is a local area index. The caller must not
// modify the slice.
func (e *Election) ContestAreas(c int) []int32 { return e.Contests[c].areas }

// ContestArea returns the local index of area a in contest c, if a holds
// stations voting in c.
func (e *Election) ContestArea(c, a int) (int, bool) {
	return slices.BinarySearch(e.Contests[c].areas, int32(a))
}

// VoterAreas returns the local indexes of voter v's areas in contest c,
// bottom level first. The caller must not modify the slice.
func (e *Election) VoterAreas(c, v int) []int32 {
	d := len(e.levels)
	return e.Contests[c].voterAreas[v*d : (v+1)*d : (v+1)*d]
}

// VoterOffsets returns, for voter v of contest c, where its unit's
// candidates start in the vote vectors of its areas (as VoterAreas), -1
// for an area whose result carries no votes. The caller must not modify the
// slice.
func (e *Election) VoterOffsets(c, v int) []int32 {
	d := len(e.levels)
	return e.Contests[c].voterOffset[v*d : (v+1)*d : (v+1)*d]
}

// Expected returns the number of stations of area a that vote in contest c.
func (e *Election) Expected(c, a int) int {
	if la, ok := e.ContestArea(c, a); ok {
		return int(e.Contests[c].areaExpected[la])
	}
	return 0
}

// AreaHasVotes reports whether the result of contest c in area a carries
// votes (CONTRACT §4 v2): the contest is national, or its council level is
// at or above the area's.
func (e *Election) AreaHasVotes(c, a int) bool {
	ct := &e.Contests[c]
	return ct.depth < 0 || ct.depth <= e.Areas[a].depth
}

// AreaUnits returns the units of contest c with stations in area a, in unit
// order. When the area's result carries votes, its vote vector is their
// candidate lists end to end. The caller must not modify the slice.
func (e *Election) AreaUnits(c, a int) []int32 {
	if la, ok := e.ContestArea(c, a); ok {
		return e.Contests[c].areaUnits[la]
	}
	return nil
}

// AreaVoteLen returns the length of area a's vote vector in contest c: 0
// where the result carries no votes.
func (e *Election) AreaVoteLen(c, a int) int {
	if !e.AreaHasVotes(c, a) {
		return 0
	}
	n := 0
	for _, u := range e.AreaUnits(c, a) {
		n += len(e.Contests[c].Units[u].Candidates)
	}
	return n
}

// AreaUnitTotals returns the number of units of contest c whose listed
// stations all lie in area a, and their seats: the static part of the
// area's units summary (CONTRACT §4 v2).
func (e *Election) AreaUnitTotals(c, a int) (units, seats int) {
	if la, ok := e.ContestArea(c, a); ok {
		return int(e.Contests[c].homeUnits[la]), int(e.Contests[c].homeSeats[la])
	}
	return 0, 0
}

// CandidateIndex returns the position of candidate id in unit u of contest c.
func (e *Election) CandidateIndex(c, u int, id string) (int, bool) {
	k, ok := e.Contests[c].Units[u].candByID[id]
	return k, ok
}
