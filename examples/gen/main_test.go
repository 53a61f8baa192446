package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyvn/tally/tally"
)

// committed is where the Long Biên example files live, relative to this
// package.
var committed = filepath.Join("..", "longbien")

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGenerateMatchesCommitted regenerates the example and requires the
// committed files to be byte for byte what the generator writes, so they
// never drift from it.
func TestGenerateMatchesCommitted(t *testing.T) {
	for _, ex := range examples {
		dir := t.TempDir()
		if _, err := generate(ex, dir); err != nil {
			t.Fatalf("%s: %v", ex.dir, err)
		}
		for _, name := range []string{"election.json", "minutes.ndjson"} {
			got, want := readFile(t, dir, name), readFile(t, filepath.Join("..", ex.dir), name)
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from examples/%s/%s (%d vs %d bytes); run `go run ./examples/gen` from the module root and commit the result", name, ex.dir, name, len(got), len(want))
			}
		}
	}
}

// TestCommittedElection checks the committed election file against the
// published figures.
func TestCommittedElection(t *testing.T) {
	e, err := tally.Parse(readFile(t, committed, "election.json"))
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "hn-2021" || e.Date != "2021-05-23" {
		t.Errorf("election %q of %s, want hn-2021 of 2021-05-23", e.ID, e.Date)
	}
	type ward struct {
		n          int
		sum        int64
		least, top int64
	}
	wards := map[string]*ward{}
	for _, s := range e.Stations {
		w := wards[s.AreaID()]
		if w == nil {
			w = &ward{least: s.Registered, top: s.Registered}
			wards[s.AreaID()] = w
		}
		w.n++
		w.sum += s.Registered
		w.least = min(w.least, s.Registered)
		w.top = max(w.top, s.Registered)
	}
	if len(wards) != 14 {
		t.Errorf("%d wards with stations, want 14", len(wards))
	}
	if w := wards["LB-NT"]; w == nil || w.n != 17 || w.sum != 28388 || w.least != 92 || w.top != 2944 {
		t.Errorf("Ngọc Thụy: %+v, want 17 stations, 28388 voters, 92 to 2944", w)
	}
	if w := wards["LB-PL"]; w == nil || w.n != 8 || w.least != 610 || w.top != 2337 {
		t.Errorf("Phúc Lợi: %+v, want 8 stations of 610 to 2337", w)
	}

	// Legal candidate margins and the names' fiction mark.
	for _, c := range e.Contests {
		for _, u := range c.Units {
			margin := 1
			switch {
			case c.Level == tally.National:
				margin = 2
			case u.Seats == 3:
				margin = 2
			case u.Seats >= 4:
				margin = 3
			}
			if u.Seats > 5 || c.Level == tally.National && u.Seats > 3 {
				t.Errorf("unit %s: %d seats, above the legal maximum", u.ID, u.Seats)
			}
			if len(u.Candidates) < u.Seats+margin {
				t.Errorf("unit %s: %d candidates for %d seats, need at least %d", u.ID, len(u.Candidates), u.Seats, u.Seats+margin)
			}
			for _, cand := range u.Candidates {
				if !strings.HasSuffix(cand.Name, fictional) {
					t.Errorf("candidate %s %q is not marked fictional", cand.ID, cand.Name)
				}
			}
		}
	}
}

// TestCommittedMinutes checks every committed minutes line with
// tally.Election.Check, and the whole stream with verify.
func TestCommittedMinutes(t *testing.T) {
	for _, ex := range examples {
		dir := filepath.Join("..", ex.dir)
		electionJSON := readFile(t, dir, "election.json")
		minutesNDJSON := readFile(t, dir, "minutes.ndjson")
		e, err := tally.Parse(electionJSON)
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Warnings()) > 0 {
			t.Errorf("%s: warnings %q", ex.dir, e.Warnings())
		}
		lines := bytes.Split(bytes.TrimSuffix(minutesNDJSON, []byte("\n")), []byte("\n"))
		var r tally.Resolved
		for i, line := range lines {
			m, err := decodeMinutes(line)
			if err != nil {
				t.Fatalf("%s line %d: %v", ex.dir, i+1, err)
			}
			if vs := e.Check(m, i, &r, nil); len(vs) > 0 {
				t.Errorf("%s line %d: %v", ex.dir, i+1, vs)
			}
		}

		sum, err := verify(electionJSON, minutesNDJSON)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Lines != len(lines) {
			t.Errorf("%s: verify saw %d lines, the file has %d", ex.dir, sum.Lines, len(lines))
		}
		for _, u := range sum.Units {
			want := tally.Decided
			if ex.findUnit(u.Unit).outside > 0 {
				want = tally.Counting // stations outside the file never report
			}
			if u.Status != want {
				t.Errorf("%s unit %s: %s, want %s", ex.dir, u.Unit, u.Status, want)
			}
		}
	}
}

// TestHanoi2026 checks the two-tier example's shape: the thirteen communes
// of National Assembly unit no. 10 directly under Hà Nội, every station
// voting on three ballots, every commune council's units inferred or named.
func TestHanoi2026(t *testing.T) {
	e, err := tally.Parse(readFile(t, filepath.Join("..", "hanoi-2026"), "election.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.AreaLevels(); len(got) != 2 || got[0] != tally.Province || got[1] != tally.Commune {
		t.Fatalf("levels %v, want province, commune", got)
	}
	communes := 0
	for _, a := range e.Areas {
		if a.Level == tally.Commune {
			communes++
			if a.Parent != "HN" {
				t.Errorf("commune %s under %q, want HN", a.ID, a.Parent)
			}
		}
	}
	if communes != 13 {
		t.Errorf("%d communes, want 13", communes)
	}
	var contests []int
	for s := range e.Stations {
		if contests = e.StationContests(s, contests[:0]); len(contests) != 3 {
			t.Errorf("station %s votes in %d contests, want 3", e.Stations[s].ID, len(contests))
		}
	}
	x, _ := e.ContestIndex("HDND-X")
	for u := range e.Contests[x].Units {
		co := e.UnitCouncil(x, u)
		if co < 0 || e.Areas[co].Level != tally.Commune {
			t.Errorf("unit %s elects no commune council", e.Contests[x].Units[u].ID)
		}
	}
}

// TestVerifyFailsLoudly makes sure verification rejects broken minutes and
// version gaps rather than writing them.
func TestVerifyFailsLoudly(t *testing.T) {
	electionJSON := readFile(t, committed, "election.json")
	minutesNDJSON := readFile(t, committed, "minutes.ndjson")
	// LB-NT-01 sends only version-1 finals.
	for name, tc := range map[string]struct{ line, want string }{
		"votes above valid": {
			`{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":2,"status":"final","registered":92,"voted":92,"issued":92,"received":92,"valid":90,"invalid":2,"votes":{"QH-HN-02-1":91,"QH-HN-02-2":0,"QH-HN-02-3":0,"QH-HN-02-4":0,"QH-HN-02-5":0}}`,
			tally.RuleCandidateValid,
		},
		"version gap": {
			`{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":3,"status":"final","registered":92,"voted":92,"issued":92,"received":92,"valid":90,"invalid":2,"votes":{"QH-HN-02-1":90,"QH-HN-02-2":0,"QH-HN-02-3":0,"QH-HN-02-4":0,"QH-HN-02-5":0}}`,
			"version 3 follows version 1",
		},
		"unknown field": {
			`{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":2,"status":"withdrawn","note":"x"}`,
			"unknown field",
		},
		"ends withdrawn": {
			`{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":2,"status":"withdrawn"}`,
			"QH/LB-NT-01: current minutes are not final",
		},
	} {
		data := append(bytes.Clone(minutesNDJSON), tc.line+"\n"...)
		_, err := verify(electionJSON, data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: verify returned %v, want an error naming %q", name, err, tc.want)
		}
	}
}
