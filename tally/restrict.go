package tally

import (
	"fmt"
	"slices"
)

// Restrict returns the part of e that lies in the given provinces (ids of
// top-level areas): their areas and stations, and in every contest the
// units whose council or stations lie there, every id unchanged and in
// the order of the file. Every contest is kept, with no unit where none
// lies in the provinces. A unit with neither a council nor a station in
// the file (all of its stations outside it) lies in no province: it is kept
// in every part, where it always reads the same (no station reports).
//
// With partitions (--partitions N) each partition folds the part of its
// provinces, so its fold state is sized by its own stations, not the whole
// file. A result read from a part equals the one read from the whole
// file, provided every unit lies within one province (events.
// CheckPartitionable): the areas, stations, units and candidates a result
// sums over are all in the part.
//
// The part is an Election of its own with its own indexes (so the station,
// area and contest indexes of e and of its part differ); it carries no
// warnings, which are e's.
func (e *Election) Restrict(provinces []string) (*Election, error) {
	in := make([]bool, len(e.Areas)) // area a lies in the provinces
	for a := range e.Areas {
		top := a
		for e.Areas[top].parent >= 0 {
			top = e.Areas[top].parent
		}
		in[a] = slices.Contains(provinces, e.Areas[top].ID)
	}
	part := &Election{ID: e.ID, Name: e.Name, Date: e.Date, Levels: e.Levels, part: true}
	for a := range e.Areas {
		if in[a] {
			part.Areas = append(part.Areas, cleanArea(e.Areas[a]))
		}
	}
	stationIn := make([]bool, len(e.Stations))
	for s := range e.Stations {
		a, ok := e.areaIdx[e.Stations[s].AreaID()]
		if ok && in[a] {
			stationIn[s] = true
			st := e.Stations[s]
			st.votesIn = nil
			part.Stations = append(part.Stations, st)
		}
	}
	for c := range e.Contests {
		src := &e.Contests[c]
		dst := Contest{ID: src.ID, Name: src.Name, Level: src.Level}
		for u := range src.Units {
			unit := &src.Units[u]
			keep := false
			switch {
			case unit.council >= 0:
				keep = in[unit.council]
			case len(unit.members) > 0:
				keep = stationIn[unit.members[0]]
			default:
				keep = true // in no province: in every part
			}
			if keep {
				dst.Units = append(dst.Units, Unit{
					ID: unit.ID, Name: unit.Name, Council: unit.Council, Seats: unit.Seats, Round: unit.Round,
					Areas: unit.Areas, Stations: unit.Stations, StationsOutside: unit.StationsOutside, Candidates: unit.Candidates,
				})
			}
		}
		part.Contests = append(part.Contests, dst)
	}
	if err := part.compile(); err != nil {
		return nil, fmt.Errorf("the part of election %s in provinces %v: %w", e.ID, provinces, err)
	}
	part.warnings = nil
	return part, nil
}

// cleanArea returns a's fields as the file gives them.
func cleanArea(a Area) Area {
	return Area{ID: a.ID, Name: a.Name, Level: a.Level, Parent: a.Parent}
}
