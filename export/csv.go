package export

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"

	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// CSVHeader is the header row of the CSV export (CONTRACT §8).
var CSVHeader = []string{
	"contest", "kind", "id", "name", "level",
	"stations_expected", "stations_reporting", "stations_final",
	"registered", "voted", "issued", "received", "valid", "invalid",
	"candidate", "candidate_name", "born", "votes", "rank", "elected", "status", "applied_seq",
}

// bom is the UTF-8 byte-order mark, by which spreadsheet programs know the
// file is UTF-8 and show Vietnamese names as written.
const bom = "\ufeff"

// WriteCSV writes the results of contest as CSV (CONTRACT §8): a
// byte-order mark, the header row, then one row per candidate of every area
// result (areas in the order of the election file, candidates by id) and of
// every unit result (units in file order, candidates in rank order). An area
// result without votes (CONTRACT §4 v2: a council contest seen from above
// its level) or with no candidate gets one row with empty candidate
// columns. rank, elected and status are filled on unit rows only.
// It returns tally.ErrUnknownContest, before writing anything, for an
// unknown contest.
func WriteCSV(w io.Writer, v *projections.View, contest string) error {
	e := v.Election()
	c, ok := e.ContestIndex(contest)
	if !ok {
		return fmt.Errorf("%w %q", tally.ErrUnknownContest, contest)
	}
	cands := candidates(&e.Contests[c])
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.WriteString(bom); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	cw := csv.NewWriter(bw)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	seq := strconv.FormatUint(v.AppliedSeq(), 10)
	i64 := func(n int64) string { return strconv.FormatInt(n, 10) }
	row := make([]string, len(CSVHeader))
	for r, err := range v.AreaResults(contest) {
		if err != nil {
			return fmt.Errorf("csv: %w", err)
		}
		row = append(row[:0], contest, "area", r.Area, r.Name, string(r.Level),
			strconv.Itoa(r.StationsExpected), i64(r.StationsReporting), i64(r.StationsFinal),
			i64(r.Registered), i64(r.Voted), i64(r.Issued), i64(r.Received), i64(r.Valid), i64(r.Invalid))
		fixed := len(row)
		if len(r.Votes) == 0 {
			row = append(row, "", "", "", "", "", "", "", seq)
			if err := cw.Write(row); err != nil {
				return fmt.Errorf("write csv: %w", err)
			}
			continue
		}
		for _, id := range slices.Sorted(maps.Keys(r.Votes)) {
			cand, ok := cands[id]
			if !ok {
				return fmt.Errorf("csv: area %s of contest %s has votes for %q, no candidate of the contest", r.Area, contest, id)
			}
			row = append(row[:fixed], id, cand.Name, cand.Born, i64(r.Votes[id]), "", "", "", seq)
			if err := cw.Write(row); err != nil {
				return fmt.Errorf("write csv: %w", err)
			}
		}
	}
	for r, err := range v.UnitResults(contest) {
		if err != nil {
			return fmt.Errorf("csv: %w", err)
		}
		elected := make(map[string]bool, len(r.Winners))
		for _, id := range r.Winners {
			elected[id] = true
		}
		row = append(row[:0], contest, "unit", r.Unit, r.Name, r.Level,
			strconv.Itoa(r.StationsExpected), i64(r.StationsReporting), i64(r.StationsFinal),
			i64(r.Registered), i64(r.Voted), i64(r.Issued), i64(r.Received), i64(r.Valid), i64(r.Invalid))
		fixed := len(row)
		for k, cand := range r.Candidates {
			row = append(row[:fixed], cand.ID, cand.Name, cand.Born, i64(cand.Votes),
				strconv.Itoa(k+1), strconv.FormatBool(elected[cand.ID]), string(r.Status), seq)
			if err := cw.Write(row); err != nil {
				return fmt.Errorf("write csv: %w", err)
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// candidates indexes the candidates of every unit of contest by id.
func candidates(contest *tally.Contest) map[string]*tally.Candidate {
	m := map[string]*tally.Candidate{}
	for u := range contest.Units {
		for k := range contest.Units[u].Candidates {
			cand := &contest.Units[u].Candidates[k]
			m[cand.ID] = cand
		}
	}
	return m
}
