package export

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// NISTOptions are the report-level fields of a NIST export that the
// projections do not hold.
type NISTOptions struct {
	// Generated is the report's GeneratedDate; zero means now.
	Generated time.Time
}

// NIST SP 1500-100 v2 @id prefixes: ids are unique within their kind in a
// tally election (CONTRACT §1) but NIST's are unique in the whole report.
const (
	idElection  = "ru-election"
	idArea      = "ru-area-"
	idStation   = "ru-station-"
	idDistrict  = "ru-unit-"
	idContest   = "cc-"
	idSelection = "cs-"
	idCandidate = "cand-"
	idPerson    = "per-"
)

type nistText struct {
	Text []nistString `json:"Text"`
}

type nistString struct {
	Content  string `json:"Content"`
	Language string `json:"Language"`
}

func vi(s string) nistText { return nistText{Text: []nistString{{Content: s, Language: "vi"}}} }

type nistGpUnit struct {
	AtType             string   `json:"@type"`
	ID                 string   `json:"@id"`
	Type               string   `json:"Type"`
	OtherType          string   `json:"OtherType,omitempty"`
	Name               string   `json:"Name"`
	ComposingGpUnitIds []string `json:"ComposingGpUnitIds,omitempty"`
	VotersRegistered   *int64   `json:"VotersRegistered,omitempty"`
	VotersParticipated *int64   `json:"VotersParticipated,omitempty"`
}

type nistPerson struct {
	AtType      string   `json:"@type"`
	ID          string   `json:"@id"`
	FullName    nistText `json:"FullName"`
	DateOfBirth string   `json:"DateOfBirth,omitempty"`
}

type nistCandidate struct {
	AtType             string   `json:"@type"`
	ID                 string   `json:"@id"`
	BallotName         nistText `json:"BallotName"`
	PersonID           string   `json:"PersonId"`
	PostElectionStatus string   `json:"PostElectionStatus,omitempty"`
}

type nistCountStatus struct {
	Status string `json:"Status"`
	Type   string `json:"Type"`
}

type nistSummaryCounts struct {
	Type            string `json:"Type"`
	GpUnitID        string `json:"GpUnitId"`
	BallotsCast     int64  `json:"BallotsCast"`
	BallotsRejected int64  `json:"BallotsRejected"`
}

type nistVoteCounts struct {
	Type     string `json:"Type"`
	GpUnitID string `json:"GpUnitId"`
	Count    int64  `json:"Count"`
}

type nistSelection struct {
	AtType        string           `json:"@type"`
	ID            string           `json:"@id"`
	CandidateIDs  []string         `json:"CandidateIds"`
	SequenceOrder int              `json:"SequenceOrder"`
	VoteCounts    []nistVoteCounts `json:"VoteCounts"`
}

type nistContest struct {
	AtType              string              `json:"@type"`
	ID                  string              `json:"@id"`
	Name                string              `json:"Name"`
	Abbreviation        string              `json:"Abbreviation"`
	ElectoralDistrictID string              `json:"ElectoralDistrictId"`
	NumberElected       int                 `json:"NumberElected"`
	VotesAllowed        int                 `json:"VotesAllowed"`
	VoteVariation       string              `json:"VoteVariation"`
	TotalSubUnits       int                 `json:"TotalSubUnits"`
	SubUnitsReported    int64               `json:"SubUnitsReported"`
	CountStatus         []nistCountStatus   `json:"CountStatus"`
	SummaryCounts       []nistSummaryCounts `json:"SummaryCounts"`
	BallotSelection     []nistSelection     `json:"BallotSelection"`
}

// stationArea returns the id of a station's bottom-level area (v2 area, or v1 ward).
func stationArea(st *tally.Station) string { return st.AreaID() }

// geography is the election's area tree as the NIST export walks it.
type geography struct {
	parent   []int   // area index -> parent area index, -1 at the top
	children [][]int // area index -> child areas
	stations [][]int // area index -> its own stations (bottom level)
	area     []int   // station index -> its bottom-level area
}

func newGeography(e *tally.Election) (*geography, error) {
	g := &geography{parent: make([]int, len(e.Areas)), children: make([][]int, len(e.Areas)),
		stations: make([][]int, len(e.Areas)), area: make([]int, len(e.Stations))}
	for i := range e.Areas {
		g.parent[i] = -1
		if p := e.Areas[i].Parent; p != "" {
			pi, ok := e.AreaIndex(p)
			if !ok {
				return nil, fmt.Errorf("%w %q (parent of %q)", tally.ErrUnknownArea, p, e.Areas[i].ID)
			}
			g.parent[i] = pi
			g.children[pi] = append(g.children[pi], i)
		}
	}
	for s := range e.Stations {
		a, ok := e.AreaIndex(stationArea(&e.Stations[s]))
		if !ok {
			return nil, fmt.Errorf("%w %q (area of station %q)", tally.ErrUnknownArea, stationArea(&e.Stations[s]), e.Stations[s].ID)
		}
		g.area[s] = a
		g.stations[a] = append(g.stations[a], s)
	}
	return g, nil
}

// voterContest returns the contest whose minutes give the voters of
// stations and areas: the national one, else the file's first (CONTRACT §8).
func voterContest(e *tally.Election) string {
	for _, c := range e.Contests {
		if c.Level == tally.National {
			return c.ID
		}
	}
	if len(e.Contests) == 0 {
		return ""
	}
	return e.Contests[0].ID
}

// WriteNIST writes the whole election as a NIST SP 1500-100 version 2
// ElectionReport in JSON (CONTRACT §8): a ReportingUnit for the election,
// every area (composed of the areas or stations one level down), every
// station and every electoral unit (type other, composed of its stations);
// a Person and a Candidate for every candidate; one CandidateContest per
// electoral unit with a CandidateSelection per candidate, whose total
// VoteCounts name the unit, each area with stations of the unit whose
// result carries votes (CONTRACT §4 v2) and each reporting station; SummaryCounts (BallotsCast = received, BallotsRejected
// = invalid) for the same reporting units. Figures read from v, and the
// report's Notes state its applied_seq.
func WriteNIST(w io.Writer, v *projections.View, opts NISTOptions) error {
	e := v.Election()
	geo, err := newGeography(e)
	if err != nil {
		return fmt.Errorf("nist: %w", err)
	}
	generated := opts.Generated
	if generated.IsZero() {
		generated = time.Now()
	}
	// A first pass over the unit results (a few thousand point reads at
	// national scale) tells whether every station is final.
	complete := true
	for _, c := range e.Contests {
		for r, err := range v.UnitResults(c.ID) {
			if err != nil {
				return fmt.Errorf("nist: %w", err)
			}
			if r.StationsFinal < int64(r.StationsExpected) {
				complete = false
			}
		}
	}
	status := "unofficial-partial"
	if complete {
		status = "unofficial-complete"
	}

	bw := bufio.NewWriterSize(w, 256<<10)
	nw := &nistWriter{w: bw}
	nw.raw(`{"@type":"ElectionResults.ElectionReport","Format":"precinct-level","GeneratedDate":`)
	nw.value(generated.Format(time.RFC3339))
	nw.raw(`,"Issuer":"tally","IssuerAbbreviation":"tally","VendorApplicationId":"tally","SequenceStart":1,"SequenceEnd":1,"Status":`)
	nw.value(status)
	nw.raw(`,"Notes":`)
	if pos := v.AppliedPositions(); pos != nil {
		// Partitions: one snapshot per partition (projections.View).
		note := "applied_seq " + strconv.FormatUint(v.AppliedSeq(), 10) + " (the sum of the partitions' positions): every figure of this report reflects its partition's minutes stream up to its position:"
		for p := range len(pos) {
			note += " partition " + strconv.Itoa(p) + " at " + strconv.FormatUint(pos[p], 10)
			if p < len(pos)-1 {
				note += ","
			}
		}
		nw.value(note)
	} else {
		nw.value("applied_seq " + strconv.FormatUint(v.AppliedSeq(), 10) + ": every figure of this report reflects the minutes stream up to this position")
	}

	// Reporting units: the election, the areas, the stations, the units.
	nw.raw(`,"GpUnit":[`)
	top := []string{}
	for i := range e.Areas {
		if geo.parent[i] < 0 {
			top = append(top, idArea+e.Areas[i].ID)
		}
	}
	nw.item(nistGpUnit{AtType: "ElectionResults.ReportingUnit", ID: idElection, Type: "other", OtherType: "election", Name: e.Name, ComposingGpUnitIds: top})
	voters := voterContest(e)
	for i := range e.Areas {
		a := &e.Areas[i]
		ru := nistGpUnit{AtType: "ElectionResults.ReportingUnit", ID: idArea + a.ID, Type: "other", OtherType: string(a.Level), Name: a.Name}
		for _, ch := range geo.children[i] {
			ru.ComposingGpUnitIds = append(ru.ComposingGpUnitIds, idArea+e.Areas[ch].ID)
		}
		for _, s := range geo.stations[i] {
			ru.ComposingGpUnitIds = append(ru.ComposingGpUnitIds, idStation+e.Stations[s].ID)
		}
		if voters != "" {
			r, err := v.AreaResult(voters, a.ID)
			if err != nil {
				return fmt.Errorf("nist: %w", err)
			}
			ru.VotersRegistered, ru.VotersParticipated = &r.Registered, &r.Voted
		}
		nw.item(ru)
	}
	for s := range e.Stations {
		st := &e.Stations[s]
		ru := nistGpUnit{AtType: "ElectionResults.ReportingUnit", ID: idStation + st.ID, Type: "precinct", Name: st.Name}
		if voters != "" {
			c, _ := e.ContestIndex(voters)
			if e.StationUnit(c, s) >= 0 {
				r, err := v.Station(voters, st.ID)
				if err != nil {
					return fmt.Errorf("nist: %w", err)
				}
				if r.Reporting() {
					ru.VotersRegistered, ru.VotersParticipated = &r.Counts.Registered, &r.Counts.Voted
				}
			}
		}
		nw.item(ru)
	}
	for c := range e.Contests {
		for u := range e.Contests[c].Units {
			unit := &e.Contests[c].Units[u]
			r, err := v.UnitResult(e.Contests[c].ID, unit.ID)
			if err != nil {
				return fmt.Errorf("nist: %w", err)
			}
			ru := nistGpUnit{AtType: "ElectionResults.ReportingUnit", ID: idDistrict + unit.ID, Type: "other", OtherType: "electoral-unit",
				Name: unit.Name + " (" + e.Contests[c].Name + ")", VotersRegistered: &r.Registered, VotersParticipated: &r.Voted}
			for _, s := range e.UnitStations(c, u) {
				ru.ComposingGpUnitIds = append(ru.ComposingGpUnitIds, idStation+e.Stations[s].ID)
			}
			nw.item(ru)
		}
	}
	nw.raw(`]`)

	nw.raw(`,"Person":[`)
	nw.first = true
	for c := range e.Contests {
		for u := range e.Contests[c].Units {
			for _, cand := range e.Contests[c].Units[u].Candidates {
				nw.item(nistPerson{AtType: "ElectionResults.Person", ID: idPerson + cand.ID, FullName: vi(cand.Name), DateOfBirth: cand.Born})
			}
		}
	}
	nw.raw(`]`)

	nw.raw(`,"Election":[{"@type":"ElectionResults.Election","ElectionScopeId":"` + idElection + `","Type":"general","StartDate":`)
	nw.value(e.Date)
	nw.raw(`,"EndDate":`)
	nw.value(e.Date)
	nw.raw(`,"Name":`)
	nw.value(vi(e.Name))
	nw.raw(`,"Contest":[`)
	nw.first = true
	for c := range e.Contests {
		for u := range e.Contests[c].Units {
			cc, err := unitContest(v, e, geo, c, u)
			if err != nil {
				return fmt.Errorf("nist: %w", err)
			}
			nw.item(cc)
		}
	}
	nw.raw(`],"Candidate":[`)
	nw.first = true
	for c := range e.Contests {
		for r, err := range v.UnitResults(e.Contests[c].ID) {
			if err != nil {
				return fmt.Errorf("nist: %w", err)
			}
			won := "winner"
			if r.Status == tally.Counting {
				won = "projected-winner"
			}
			winners := map[string]bool{}
			for _, id := range r.Winners {
				winners[id] = true
			}
			_, u, _ := e.UnitIndex(r.Unit)
			for _, cand := range e.Contests[c].Units[u].Candidates {
				nc := nistCandidate{AtType: "ElectionResults.Candidate", ID: idCandidate + cand.ID, BallotName: vi(cand.Name), PersonID: idPerson + cand.ID}
				if winners[cand.ID] {
					nc.PostElectionStatus = won
				}
				nw.item(nc)
			}
		}
	}
	nw.raw(`]}]}` + "\n")
	if nw.err != nil {
		return fmt.Errorf("write nist: %w", nw.err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write nist: %w", err)
	}
	return nil
}

// unitContest builds the CandidateContest of unit u of contest c: the
// unit's stations are read once, and its areas' figures summed from them
// (the same sums as the areas' aggregates, restricted to this unit).
func unitContest(v *projections.View, e *tally.Election, geo *geography, c, u int) (*nistContest, error) {
	contest := &e.Contests[c]
	unit := &contest.Units[u]
	r, err := v.UnitResult(contest.ID, unit.ID)
	if err != nil {
		return nil, err
	}
	district := idDistrict + unit.ID
	cc := &nistContest{
		AtType: "ElectionResults.CandidateContest", ID: idContest + unit.ID,
		Name: contest.Name + " – " + unit.Name, Abbreviation: unit.ID,
		ElectoralDistrictID: district, NumberElected: unit.Seats, VotesAllowed: unit.Seats, VoteVariation: "n-of-m",
		TotalSubUnits: r.StationsExpected, SubUnitsReported: r.StationsReporting,
	}
	st := "in-process"
	if r.StationsFinal >= int64(r.StationsExpected) {
		st = "completed"
	}
	cc.CountStatus = []nistCountStatus{{Status: st, Type: "total"}}

	type sum struct {
		counts tally.Counts
		votes  []int64
	}
	add := func(s *sum, counts tally.Counts, votes []int64) {
		s.counts.Received += counts.Received
		s.counts.Invalid += counts.Invalid
		for k, n := range votes {
			s.votes[k] += n
		}
	}
	areas := map[int]*sum{}
	type station struct {
		id     string
		counts tally.Counts
		votes  []int64
	}
	var stations []station
	for _, s := range e.UnitStations(c, u) {
		sr, err := v.Station(contest.ID, e.Stations[s].ID)
		if err != nil {
			return nil, err
		}
		if !sr.Reporting() {
			continue
		}
		stations = append(stations, station{id: e.Stations[s].ID, counts: sr.Counts, votes: sr.Votes})
		for a := geo.area[s]; a >= 0; a = geo.parent[a] {
			as := areas[a]
			if as == nil {
				as = &sum{votes: make([]int64, len(unit.Candidates))}
				areas[a] = as
			}
			add(as, sr.Counts, sr.Votes)
		}
	}
	areaOrder := slices.Sorted(func(yield func(int) bool) {
		for a := range areas {
			if !yield(a) {
				return
			}
		}
	})

	cc.SummaryCounts = append(cc.SummaryCounts, nistSummaryCounts{Type: "total", GpUnitID: district, BallotsCast: r.Received, BallotsRejected: r.Invalid})
	for _, a := range areaOrder {
		cc.SummaryCounts = append(cc.SummaryCounts, nistSummaryCounts{Type: "total", GpUnitID: idArea + e.Areas[a].ID, BallotsCast: areas[a].counts.Received, BallotsRejected: areas[a].counts.Invalid})
	}
	for _, s := range stations {
		cc.SummaryCounts = append(cc.SummaryCounts, nistSummaryCounts{Type: "total", GpUnitID: idStation + s.id, BallotsCast: s.counts.Received, BallotsRejected: s.counts.Invalid})
	}
	for k, cand := range unit.Candidates {
		sel := nistSelection{AtType: "ElectionResults.CandidateSelection", ID: idSelection + cand.ID, CandidateIDs: []string{idCandidate + cand.ID}, SequenceOrder: k + 1}
		sel.VoteCounts = append(sel.VoteCounts, nistVoteCounts{Type: "total", GpUnitID: district, Count: r.Votes[cand.ID]})
		for _, a := range areaOrder {
			if !e.AreaHasVotes(c, a) {
				continue // no votes above the council's level, as in the area result (CONTRACT §4 v2)
			}
			sel.VoteCounts = append(sel.VoteCounts, nistVoteCounts{Type: "total", GpUnitID: idArea + e.Areas[a].ID, Count: areas[a].votes[k]})
		}
		for _, s := range stations {
			sel.VoteCounts = append(sel.VoteCounts, nistVoteCounts{Type: "total", GpUnitID: idStation + s.id, Count: s.votes[k]})
		}
		cc.BallotSelection = append(cc.BallotSelection, sel)
	}
	return cc, nil
}

// nistWriter writes the report's JSON piece by piece, keeping the first
// error.
type nistWriter struct {
	w     *bufio.Writer
	first bool // the next item is the first of its array
	err   error
}

func (n *nistWriter) raw(s string) {
	if n.err == nil {
		_, n.err = n.w.WriteString(s)
	}
	if len(s) > 0 && s[len(s)-1] == '[' {
		n.first = true
	}
}

func (n *nistWriter) value(v any) {
	if n.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		n.err = err
		return
	}
	_, n.err = n.w.Write(b)
}

// item writes v as the next element of the array being written.
func (n *nistWriter) item(v any) {
	if !n.first {
		n.raw(",")
	}
	n.first = false
	n.value(v)
}
