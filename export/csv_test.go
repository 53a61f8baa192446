package export_test

import (
	"bytes"
	"encoding/csv"
	"slices"
	"strconv"
	"testing"

	"github.com/tallyvn/tally/export"
)

// TestCSVReadsBackEveryFigure: a spreadsheet-style reader (encoding/csv)
// reads back, from the CSV export of each contest, every figure the JSON
// API gives for every area and unit, candidates included, all at the
// applied_seq the API states.
func TestCSVReadsBackEveryFigure(t *testing.T) {
	ts := startServer(t)
	ts.submit(0, len(ts.lines)*2/3) // some units final, some still counting
	for _, c := range ts.e.Contests {
		body := ts.ok("/api/v1/export/results.csv?contest="+c.ID, "text/csv")
		if !bytes.HasPrefix(body, []byte("\xef\xbb\xbf")) {
			t.Fatalf("%s: no UTF-8 byte-order mark: % x", c.ID, body[:min(8, len(body))])
		}
		rows, err := csv.NewReader(bytes.NewReader(body[3:])).ReadAll()
		if err != nil {
			t.Fatalf("%s: read CSV: %v", c.ID, err)
		}
		if !slices.Equal(rows[0], export.CSVHeader) || len(rows[0]) != 22 || rows[0][0] != "contest" || rows[0][21] != "applied_seq" {
			t.Fatalf("%s: header %q", c.ID, rows[0])
		}
		col := map[string]int{}
		for i, name := range rows[0] {
			col[name] = i
		}
		areas := map[string]areaResult{}
		units := map[string]unitResult{}
		seen := map[string]int{} // kind/id -> rows
		var seq string
		for n, row := range rows[1:] {
			get := func(name string) string { return row[col[name]] }
			if get("contest") != c.ID {
				t.Fatalf("row %d: contest %q", n, get("contest"))
			}
			if seq == "" {
				seq = get("applied_seq")
			} else if get("applied_seq") != seq {
				t.Fatalf("row %d: applied_seq %s, earlier rows %s: not one snapshot", n, get("applied_seq"), seq)
			}
			id := get("id")
			seen[get("kind")+"/"+id]++
			var counts [11]int64
			var name, level string
			switch get("kind") {
			case "area":
				r, ok := areas[id]
				if !ok {
					r = ts.area(c.ID, id)
					areas[id] = r
				}
				counts = [11]int64{r.StationsExpected, r.StationsReporting, r.StationsFinal, r.Registered, r.Voted, r.Issued, r.Received, r.Valid, r.Invalid, int64(r.AppliedSeq)}
				name, level = r.Name, r.Level
				if len(r.Votes) == 0 {
					if get("candidate") != "" || get("votes") != "" {
						t.Fatalf("area %s without votes: candidate columns %q", id, row[14:])
					}
				} else {
					v, ok := r.Votes[get("candidate")]
					if !ok || strconv.FormatInt(v, 10) != get("votes") {
						t.Fatalf("area %s candidate %s: csv votes %q, API %d (present %v)", id, get("candidate"), get("votes"), v, ok)
					}
				}
				if get("rank") != "" || get("elected") != "" || get("status") != "" {
					t.Fatalf("area row with rank/elected/status: %q", row)
				}
			case "unit":
				r, ok := units[id]
				if !ok {
					r = ts.unit(c.ID, id)
					units[id] = r
				}
				counts = [11]int64{r.StationsExpected, r.StationsReporting, r.StationsFinal, r.Registered, r.Voted, r.Issued, r.Received, r.Valid, r.Invalid, int64(r.AppliedSeq)}
				name, level = r.Name, r.Level
				rank, err := strconv.Atoi(get("rank"))
				if err != nil || rank < 1 || rank > len(r.Candidates) {
					t.Fatalf("unit %s: rank %q", id, get("rank"))
				}
				cand := r.Candidates[rank-1]
				if cand.ID != get("candidate") || cand.Name != get("candidate_name") || cand.Born != get("born") || strconv.FormatInt(cand.Votes, 10) != get("votes") {
					t.Fatalf("unit %s rank %d: csv %q, API %+v", id, rank, row[14:], cand)
				}
				if want := strconv.FormatBool(slices.Contains(r.Winners, cand.ID)); get("elected") != want {
					t.Fatalf("unit %s candidate %s: elected %q, want %s", id, cand.ID, get("elected"), want)
				}
				if get("status") != r.Status {
					t.Fatalf("unit %s: status %q, API %q", id, get("status"), r.Status)
				}
			default:
				t.Fatalf("row %d: kind %q", n, get("kind"))
			}
			if get("name") != name || get("level") != level {
				t.Fatalf("%s %s: name/level %q %q, API %q %q", get("kind"), id, get("name"), get("level"), name, level)
			}
			for i, f := range []string{"stations_expected", "stations_reporting", "stations_final", "registered", "voted", "issued", "received", "valid", "invalid", "applied_seq"} {
				if get(f) != strconv.FormatInt(counts[i], 10) {
					t.Fatalf("%s %s: %s %q, API %d", get("kind"), id, f, get(f), counts[i])
				}
			}
		}
		// Every area and unit of the election, with a row per candidate.
		for _, a := range ts.e.Areas {
			want := max(1, len(areas[a.ID].Votes))
			if seen["area/"+a.ID] != want {
				t.Errorf("%s: area %s has %d rows, want %d", c.ID, a.ID, seen["area/"+a.ID], want)
			}
		}
		for _, u := range c.Units {
			if seen["unit/"+u.ID] != len(u.Candidates) {
				t.Errorf("%s: unit %s has %d rows, want %d", c.ID, u.ID, seen["unit/"+u.ID], len(u.Candidates))
			}
		}
	}
}
