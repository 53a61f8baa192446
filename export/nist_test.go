package export_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaFile is NIST's own JSON schema for SP 1500-100 version 2 (branch
// version2 of github.com/usnistgov/ElectionResultsReporting), unchanged.
const schemaFile = "testdata/NIST_V2_election_results_reporting.json"

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat() // dates, date-times and URIs are checked too
	if err := c.AddResource("nist.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("nist.json")
	if err != nil {
		t.Fatalf("compile NIST schema: %v", err)
	}
	return s
}

type nistReport struct {
	Status string
	Notes  string
	GpUnit []struct {
		ID                 string `json:"@id"`
		Type               string
		OtherType          string
		Name               string
		ComposingGpUnitIds []string
		VotersRegistered   *int64
		VotersParticipated *int64
	}
	Election []struct {
		Contest []struct {
			ID                  string `json:"@id"`
			ElectoralDistrictID string `json:"ElectoralDistrictId"`
			NumberElected       int
			VotesAllowed        int
			CountStatus         []struct{ Status, Type string }
			SummaryCounts       []struct {
				GpUnitID                     string `json:"GpUnitId"`
				BallotsCast, BallotsRejected int64
			}
			BallotSelection []struct {
				CandidateIDs []string `json:"CandidateIds"`
				VoteCounts   []struct {
					GpUnitID string `json:"GpUnitId"`
					Type     string
					Count    int64
				}
			}
		}
		Candidate []struct {
			ID                 string `json:"@id"`
			PostElectionStatus string
		}
	}
}

// TestNISTValidatesAndRoundTrips: the NIST export, halfway through the
// night and at its end, validates against NIST's schema; summing a
// candidate's station VoteCounts gives the unit result's votes; its area
// VoteCounts and ballot counts are the sums of the unit's stations there,
// and the national contest's area voters are the API's.
func TestNISTValidatesAndRoundTrips(t *testing.T) {
	schema := compileSchema(t)
	ts := startServer(t)
	half := len(ts.lines) / 2
	for _, step := range []struct {
		to     int
		status string
	}{{half, "unofficial-partial"}, {len(ts.lines), "unofficial-partial"}} { // QH-HN-02's stations outside the file never report
		ts.submit(ts.submitted(), step.to)
		body := ts.ok("/api/v1/export/nist-1500-100.json", "application/json")
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("export is not JSON: %v", err)
		}
		if err := schema.Validate(doc); err != nil {
			t.Fatalf("export does not validate against NIST's schema: %v", err)
		}
		var rep nistReport
		if err := json.Unmarshal(body, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Status != step.status {
			t.Errorf("after %d minutes: Status %q, want %q", step.to, rep.Status, step.status)
		}
		checkNIST(t, ts, &rep)
	}

	// The validator is not a rubber stamp: the same report without a
	// required field, or with a count of the wrong type, fails.
	body := ts.ok("/api/v1/export/nist-1500-100.json", "application/json")
	for name, broken := range map[string]string{
		"no Issuer":      strings.Replace(string(body), `"Issuer":"tally",`, "", 1),
		"string Count":   strings.Replace(string(body), `"Count":`, `"Count":"x","Other":`, 1),
		"unknown status": strings.Replace(string(body), `"Status":"unofficial-partial"`, `"Status":"final"`, 1),
	} {
		if broken == string(body) {
			t.Fatalf("%s: nothing replaced", name)
		}
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(broken))
		if err != nil {
			t.Fatal(err)
		}
		if schema.Validate(doc) == nil {
			t.Errorf("%s: validates", name)
		}
	}
}

func checkNIST(t *testing.T, ts *testServer, rep *nistReport) {
	t.Helper()
	kind := map[string]string{}
	for _, g := range rep.GpUnit {
		kind[g.ID] = g.Type
		if g.OtherType == "electoral-unit" {
			kind[g.ID] = "unit"
		}
	}
	// Voters of areas: the national contest's area results.
	for _, g := range rep.GpUnit {
		if id, ok := strings.CutPrefix(g.ID, "ru-area-"); ok {
			a := ts.area("QH", id)
			if g.VotersRegistered == nil || *g.VotersRegistered != a.Registered || *g.VotersParticipated != a.Voted {
				t.Fatalf("area %s: voters %v/%v, API %d/%d", id, g.VotersRegistered, g.VotersParticipated, a.Registered, a.Voted)
			}
			if g.OtherType != a.Level || g.Name != a.Name {
				t.Fatalf("area %s: %q %q, API %q %q", id, g.OtherType, g.Name, a.Level, a.Name)
			}
		}
	}
	if len(rep.Election) != 1 {
		t.Fatalf("%d elections", len(rep.Election))
	}
	el := rep.Election[0]
	units := 0
	winners := map[string]bool{}
	for _, cand := range el.Candidate {
		if cand.PostElectionStatus != "" {
			winners[strings.TrimPrefix(cand.ID, "cand-")] = true
		}
	}
	for _, c := range ts.e.Contests {
		for _, u := range c.Units {
			units++
			var cc = -1
			for i := range el.Contest {
				if el.Contest[i].ID == "cc-"+u.ID {
					cc = i
				}
			}
			if cc < 0 {
				t.Fatalf("no CandidateContest for unit %s", u.ID)
			}
			got := el.Contest[cc]
			r := ts.unit(c.ID, u.ID)
			if got.NumberElected != r.Seats || got.VotesAllowed != r.Seats || got.ElectoralDistrictID != "ru-unit-"+u.ID || kind[got.ElectoralDistrictID] != "unit" {
				t.Fatalf("unit %s: %+v", u.ID, got)
			}
			wantStatus := "in-process"
			if r.StationsFinal == r.StationsExpected {
				wantStatus = "completed"
			}
			if len(got.CountStatus) != 1 || got.CountStatus[0].Status != wantStatus {
				t.Fatalf("unit %s: CountStatus %+v, want %s", u.ID, got.CountStatus, wantStatus)
			}
			if len(got.BallotSelection) != len(u.Candidates) {
				t.Fatalf("unit %s: %d selections, want %d", u.ID, len(got.BallotSelection), len(u.Candidates))
			}
			// Ballots: the unit's own total and its stations' sum.
			var cast, rejected int64
			for _, sc := range got.SummaryCounts {
				switch kind[sc.GpUnitID] {
				case "unit":
					if sc.BallotsCast != r.Received || sc.BallotsRejected != r.Invalid {
						t.Fatalf("unit %s: ballots %d/%d, API %d/%d", u.ID, sc.BallotsCast, sc.BallotsRejected, r.Received, r.Invalid)
					}
				case "precinct":
					cast += sc.BallotsCast
					rejected += sc.BallotsRejected
				}
			}
			if cast != r.Received || rejected != r.Invalid {
				t.Fatalf("unit %s: stations' ballots sum to %d/%d, API %d/%d", u.ID, cast, rejected, r.Received, r.Invalid)
			}
			for _, sel := range got.BallotSelection {
				cand := strings.TrimPrefix(sel.CandidateIDs[0], "cand-")
				var stations int64
				n := 0
				for _, vc := range sel.VoteCounts {
					if vc.Type != "total" {
						t.Fatalf("VoteCounts type %q", vc.Type)
					}
					switch kind[vc.GpUnitID] {
					case "precinct":
						stations += vc.Count
						n++
					case "unit":
						if vc.Count != r.Votes[cand] {
							t.Fatalf("candidate %s: unit count %d, API %d", cand, vc.Count, r.Votes[cand])
						}
					case "other": // an area: its sum over the unit's stations
						a := ts.area(c.ID, strings.TrimPrefix(vc.GpUnitID, "ru-area-"))
						if vc.Count != a.Votes[cand] {
							t.Fatalf("candidate %s in %s: %d, API %d", cand, vc.GpUnitID, vc.Count, a.Votes[cand])
						}
					default:
						t.Fatalf("VoteCounts names %q, no reporting unit of the report", vc.GpUnitID)
					}
				}
				if stations != r.Votes[cand] || int64(n) != r.StationsReporting {
					t.Fatalf("candidate %s: %d stations sum to %d; API %d from %d stations", cand, n, stations, r.Votes[cand], r.StationsReporting)
				}
				if winners[cand] != contains(r.Winners, cand) {
					t.Fatalf("candidate %s: marked winner %v, API winners %v", cand, winners[cand], r.Winners)
				}
			}
		}
	}
	if len(el.Contest) != units {
		t.Fatalf("%d contests, want one per unit (%d)", len(el.Contest), units)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
