package tally

// Index lookups. Every method here is a read of data fixed at Parse time and
// allocates nothing.

// AreaIndex returns the index of area id in Areas.
func (e *Election) AreaIndex(id string) (int, bool) { i, ok := e.areaIdx[id]; return i, ok }

// Sealed reports whether any station has a seal (CONTRACT §7): only then do
// minutes need a signature.
func (e *Election) Sealed() bool { return e.sealed }

// StationIndex returns the index of station id in Stations.
func (e *Election) StationIndex(id string) (int, bool) { i, ok := e.stationIdx[id]; return i, ok }

// ContestIndex returns the index of contest id in Contests.
func (e *Election) ContestIndex(id string) (int, bool) { i, ok := e.contestIdx[id]; return i, ok }

// UnitIndex returns the contest and unit indexes of unit id.
func (e *Election) UnitIndex(id string) (contest, unit int, ok bool) {
	x, ok := e.unitIdx[id]
	return x[0], x[1], ok
}

// StationAreas returns the indexes of station s's ward, district and province.
func (e *Election) StationAreas(s int) [3]int { return e.Stations[s].areas }

// AreaParent returns the index of area a's parent, -1 for a province.
func (e *Election) AreaParent(a int) int { return e.Areas[a].parent }

// StationUnit returns the unit station s votes in for contest c, -1 if none.
func (e *Election) StationUnit(c, s int) int { return int(e.Contests[c].stationUnit[s]) }

// UnitStations returns the stations of unit u of contest c, ascending. The
// caller must not modify the slice.
func (e *Election) UnitStations(c, u int) []int32 { return e.Contests[c].Units[u].members }

// Expected returns the number of stations of area a that vote in contest c.
func (e *Election) Expected(c, a int) int { return int(e.Contests[c].expected[a]) }

// AreaUnits returns the units of contest c with stations in area a, in unit
// order. Area a's vote vector for c is their candidate lists end to end. The
// caller must not modify the slice.
func (e *Election) AreaUnits(c, a int) []int32 { return e.Contests[c].areaUnits[a] }

// AreaVoteLen returns the length of area a's vote vector in contest c.
func (e *Election) AreaVoteLen(c, a int) int {
	n := 0
	for _, u := range e.Contests[c].areaUnits[a] {
		n += len(e.Contests[c].Units[u].Candidates)
	}
	return n
}

// VoteOffsets returns, for station s in contest c, where its unit's
// candidates start in the vote vectors of its ward, district and province.
func (e *Election) VoteOffsets(c, s int) [3]int32 { return e.Contests[c].voteOffset[s] }

// CandidateIndex returns the position of candidate id in unit u of contest c.
func (e *Election) CandidateIndex(c, u int, id string) (int, bool) {
	k, ok := e.Contests[c].Units[u].candByID[id]
	return k, ok
}
