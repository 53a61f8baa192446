package tally

// WarmMax is how many minutes WarmCheck reads ahead for at once.
const WarmMax = 32

// WarmCheck reads what Check reads of the election for each of ms (at most
// WarmMax; it ignores the rest): the station's index and entry, its place among the contest's
// voters, its unit and the unit's candidates; and the station's areas,
// whose top one is the province of its subject. It reads them stage by stage
// across all of ms, so that the cache misses of one stage overlap instead
// of following one another, for a caller about to check ms one by one. It
// changes nothing; its result only keeps the reads from being dropped.
func (e *Election) WarmCheck(ms []*Minutes) int {
	var st, ct, vt, ut [WarmMax]int32
	var hs [WarmMax]uint64
	n := min(len(ms), WarmMax)
	x := 0
	for i := range n {
		hs[i] = e.stationIdx.hash(ms[i].Station)
		x += int(e.stationIdx.slots[hs[i]&e.stationIdx.mask])
	}
	for i := range n {
		st[i] = int32(e.stationIdx.candidate(hs[i]))
		c, okC := e.contestIdx[ms[i].Contest]
		if !okC {
			st[i] = -1
		}
		ct[i] = int32(c)
	}
	for i := range n {
		if st[i] >= 0 {
			x += len(e.Stations[st[i]].ID)
		}
	}
	for i := range n {
		if s := st[i]; s >= 0 && e.Stations[s].ID != ms[i].Station {
			st[i] = -1 // another id of the same hash: Check will find it
		}
	}
	d := len(e.levels)
	for i := range n {
		if s := int(st[i]); s >= 0 {
			x += len(e.Stations[s].votesIn) + e.chains[(s+1)*d-1]
		}
	}
	for i := range n {
		vt[i] = -1
		if st[i] >= 0 {
			if v, ok := e.Voter(int(ct[i]), int(st[i])); ok {
				vt[i] = int32(v)
			}
		}
	}
	for i := range n {
		ut[i] = -1
		if vt[i] >= 0 {
			ut[i] = int32(e.VoterUnit(int(ct[i]), int(vt[i])))
		}
	}
	for i := range n {
		if ut[i] >= 0 {
			x += len(e.Contests[ct[i]].Units[ut[i]].Candidates)
		}
	}
	for i := range n {
		if ut[i] >= 0 {
			for _, cand := range e.Contests[ct[i]].Units[ut[i]].Candidates {
				x += len(cand.ID)
			}
		}
	}
	for i := range n {
		if ut[i] >= 0 {
			if cands := e.Contests[ct[i]].Units[ut[i]].Candidates; len(cands) > 0 {
				x += int(cands[0].ID[0]) // the unit's ids lie side by side (internIDs)
			}
		}
	}
	return x
}
