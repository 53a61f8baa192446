package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestCLI checks the command line of CONTRACT §6: exit codes (0 success,
// 1 rejected or failed operation, 2 bad usage), help, and what submit,
// results and serve print.
func TestCLI(t *testing.T) {
	t.Parallel()
	const quick = 30 * time.Second
	election := filepath.Join("testdata", "election.json")

	t.Run("usage", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			code int
			// stderrHas must appear on stderr.
			stderrHas string
		}{
			{nil, 2, "Usage:"},
			{[]string{"nope"}, 2, `unknown command "nope"`},
			{[]string{"serve"}, 2, "--election"},
			{[]string{"serve", "--election", election}, 2, "--data"},
			{[]string{"serve", "--election", election, "--data", t.TempDir(), "extra"}, 2, "extra"},
			{[]string{"serve", "--no-such-flag"}, 2, "no-such-flag"},
			{[]string{"submit", "--no-such-flag"}, 2, "no-such-flag"},
			{[]string{"results"}, 2, "--contest"},
			{[]string{"results", "--contest", "QH"}, 2, "--area"},
			{[]string{"results", "--contest", "QH", "--area", "LB", "--unit", "QH-HN-03"}, 2, "exactly one"},
			{[]string{"rebuild"}, 2, "--election"},
			{[]string{"rebuild", "--election", election}, 2, "--data"},
			{[]string{"serve", "--electon", election}, 2, "Did you mean --election?"},
			{[]string{"results", "--unti", "X"}, 2, "Did you mean --unit?"},
			{[]string{"submit", "--server", "127.0.0.1:8080"}, 2, "want a URL with a scheme"},
			{[]string{"results", "--server", "localhost:8080", "--list"}, 2, "want a URL with a scheme"},
			{[]string{"export", "--server", "127.0.0.1:8080", "--format", "csv", "--contest", "QH"}, 2, "want a URL with a scheme"},
		} {
			res := runTally(t, quick, nil, tc.args...)
			if res.code != tc.code || !strings.Contains(res.stderr, tc.stderrHas) {
				t.Errorf("tally %q: exit %d, stderr %q; want exit %d and stderr naming %q", tc.args, res.code, res.stderr, tc.code, tc.stderrHas)
			}
			if res.stdout != "" {
				t.Errorf("tally %q printed on stdout for bad usage: %q", tc.args, res.stdout)
			}
			// The error, a hint, and one line pointing to --help: not the
			// whole help, where the error scrolls away.
			if tc.args != nil && tc.args[0] != "nope" && (strings.Contains(res.stderr, "Flags:") || strings.Count(res.stderr, "\n") > 3 ||
				!strings.Contains(res.stderr, "--help' for usage")) {
				t.Errorf("tally %q: want the error and a pointer to --help, got:\n%s", tc.args, res.stderr)
			}
		}
	})

	t.Run("version", func(t *testing.T) {
		for _, args := range [][]string{{"version"}, {"--version"}} {
			res := runTally(t, quick, nil, args...)
			if res.code != 0 || !strings.HasPrefix(res.stdout, "tally ") || !strings.Contains(res.stdout, "revision") || !strings.Contains(res.stdout, "github.com/tallyvn/tally") {
				t.Errorf("tally %q: exit %d, stdout %q; want the version, the revision and the module", args, res.code, res.stdout)
			}
		}
	})

	t.Run("help", func(t *testing.T) {
		for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
			res := runTally(t, quick, nil, args...)
			if res.code != 0 || !strings.Contains(res.stdout, "Commands:") {
				t.Errorf("tally %q: exit %d, stdout %q; want 0 and the command list", args, res.code, res.stdout)
			}
			for _, c := range []string{"serve", "submit", "results", "rebuild"} {
				if !strings.Contains(res.stdout, c) {
					t.Errorf("tally %q does not list %s: %q", args, c, res.stdout)
				}
			}
		}
		for _, c := range []string{"serve", "submit", "results", "rebuild"} {
			for _, args := range [][]string{{c, "--help"}, {c, "-h"}, {"help", c}} {
				res := runTally(t, quick, nil, args...)
				if res.code != 0 || !strings.Contains(res.stdout, "Usage: tally "+c) || !strings.Contains(res.stdout, "Flags:") {
					t.Errorf("tally %q: exit %d, stdout %q; want 0 and the usage of %s on stdout", args, res.code, res.stdout, c)
				}
				// Help is the answer, not an error: it belongs on stdout only
				// (`tally serve --help | less` and `2>&1` must not show it twice).
				if res.stderr != "" {
					first, _, _ := strings.Cut(res.stderr, "\n")
					t.Errorf("tally %q: usage printed on stderr too (%d bytes: %q...), stdout holds it already", args, len(res.stderr), first)
				}
			}
		}
	})

	t.Run("serve refuses an invalid election file listing every problem", func(t *testing.T) {
		res := runTally(t, quick, nil, "serve", "--election", filepath.Join("testdata", "election_invalid.json"),
			"--data", t.TempDir(), "--http", freeAddr(t), "--nats-listen", "none")
		if res.code != 1 {
			t.Errorf("exit %d, want 1; stderr:\n%s", res.code, res.stderr)
		}
		for _, p := range []string{
			`unknown parent "HCM"`,
			`"LB-BD-01": duplicate station id`,
			`unknown ward "LB-XX"`,
			`"bad id!" is not a valid id`,
			`unit "LB-DV1": seats 0, must be at least 1`,
			`born "08/03/1980" is not an ISO date`,
			`station "LB-BD-02" is already in unit "LB-DV1"`,
		} {
			if !strings.Contains(res.stderr, p) {
				t.Errorf("stderr does not name the problem %q:\n%s", p, res.stderr)
			}
		}
		if strings.Contains(res.stderr, "listening") {
			t.Errorf("the server started:\n%s", res.stderr)
		}
	})

	t.Run("serve with a missing election file", func(t *testing.T) {
		res := runTally(t, quick, nil, "serve", "--election", filepath.Join(t.TempDir(), "none.json"),
			"--data", t.TempDir(), "--http", freeAddr(t), "--nats-listen", "none")
		if res.code != 1 || !strings.Contains(res.stderr, "none.json") {
			t.Errorf("exit %d, stderr %q; want 1 naming the file", res.code, res.stderr)
		}
	})

	t.Run("serve with a busy NATS port", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		busy := l.Addr().String()
		res := runTally(t, quick, nil, "serve", "--election", election, "--data", t.TempDir(),
			"--http", freeAddr(t), "--nats-listen", busy)
		if res.code != 1 {
			t.Errorf("exit %d, want 1; stderr:\n%s", res.code, res.stderr)
		}
		if !strings.Contains(res.stderr, busy) || !strings.Contains(res.stderr, "not available") || !strings.Contains(res.stderr, "--nats-listen") {
			t.Errorf("stderr does not say clearly that %s is busy:\n%s", busy, res.stderr)
		}
	})

	t.Run("serve with a busy HTTP port", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		busy := l.Addr().String()
		res := runTally(t, quick, nil, "serve", "--election", election, "--data", t.TempDir(),
			"--http", busy, "--nats-listen", "none")
		if res.code != 1 || !strings.Contains(res.stderr, busy) || !strings.Contains(res.stderr, "--http") {
			t.Errorf("exit %d, stderr %q; want 1 naming %s and the --http flag", res.code, res.stderr, busy)
		}
	})

	// From here on, a running server.
	srv := startServe(t, election, t.TempDir())
	client := &http.Client{Timeout: 10 * time.Second}
	streamSeq := func() uint64 {
		t.Helper()
		var st apiStatus
		if err := getJSON(client, srv.url+"/api/v1/status", &st); err != nil {
			t.Fatal(err)
		}
		return st.StreamSeq
	}

	t.Run("submit rejected", func(t *testing.T) {
		res := runTally(t, quick, nil, "submit", "--server", srv.url, filepath.Join("testdata", "minutes_invalid.json"))
		if res.code != 1 {
			t.Errorf("exit %d, want 1; stdout %q stderr %q", res.code, res.stdout, res.stderr)
		}
		// Every broken rule of minutes 1, with its field and rule.
		for _, want := range [][2]string{
			{"voted", "voted_le_registered"},
			{"valid", "valid_plus_invalid_eq_received"},
			{"votes.QH-HN-99", "candidate"},
		} {
			re := regexp.MustCompile(`minutes\[1\] ` + regexp.QuoteMeta(want[0]) + `:.*\brule ` + regexp.QuoteMeta(want[1]) + `\b`)
			if !re.MatchString(res.stderr) {
				t.Errorf("stderr does not name field %q and rule %q:\n%s", want[0], want[1], res.stderr)
			}
		}
		if strings.Contains(res.stderr, "minutes[0]") {
			t.Errorf("stderr blames the valid minutes[0]:\n%s", res.stderr)
		}
		if s := streamSeq(); s != 0 {
			t.Errorf("stream holds %d messages after a rejected submission; none of it may be stored", s)
		}
	})

	t.Run("submit malformed", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "bad.json")
		os.WriteFile(f, []byte(`{"election": "lb-2021", "contest": `), 0o644)
		res := runTally(t, quick, nil, "submit", "--server", srv.url, f)
		if res.code != 1 || res.stderr == "" {
			t.Errorf("exit %d, stderr %q; want 1 with the error", res.code, res.stderr)
		}
	})

	acceptedRe := regexp.MustCompile(`accepted (\d+) minutes objects?, seq (\d+)`)
	t.Run("submit accepted", func(t *testing.T) {
		res := runTally(t, quick, nil, "submit", "--server", srv.url, filepath.Join("testdata", "minutes_valid.json"))
		m := acceptedRe.FindStringSubmatch(res.stdout)
		if res.code != 0 || m == nil || m[1] != "3" || m[2] != "3" {
			t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and \"accepted 3 minutes, seq 3\"", res.code, res.stdout, res.stderr)
		}
		// The same file again: same content, stored once.
		res = runTally(t, quick, nil, "submit", "--server", srv.url, filepath.Join("testdata", "minutes_valid.json"))
		m = acceptedRe.FindStringSubmatch(res.stdout)
		if res.code != 0 || m == nil || m[1] != "3" || m[2] != "3" {
			t.Errorf("resubmitted: exit %d, stdout %q, stderr %q; want 0 and \"accepted 3 minutes, seq 3\"", res.code, res.stdout, res.stderr)
		}
		if s := streamSeq(); s != 3 {
			t.Errorf("stream holds %d messages after submitting the same 3 minutes twice, want 3", s)
		}
		// Standard input, NDJSON.
		in := `{"election": "lb-2021", "contest": "HDND-LB", "station": "LB-BD-02", "version": 1, "status": "final",` +
			` "registered": 1500, "voted": 1400, "issued": 1400, "received": 1400, "valid": 1380, "invalid": 20,` +
			` "votes": {"LB-DV1-1": 700, "LB-DV1-2": 600}}` + "\n"
		res = runTally(t, quick, strings.NewReader(in), "submit", "--server", srv.url)
		m = acceptedRe.FindStringSubmatch(res.stdout)
		if res.code != 0 || m == nil || m[1] != "1" || m[2] != "4" {
			t.Errorf("from stdin: exit %d, stdout %q, stderr %q; want 0 and \"accepted 1 minutes, seq 4\"", res.code, res.stdout, res.stderr)
		}
		waitCaughtUp(t, client, srv.url)
	})

	t.Run("results table", func(t *testing.T) {
		res := runTally(t, quick, nil, "results", "--server", srv.url, "--contest", "QH", "--unit", "QH-HN-03")
		if res.code != 0 {
			t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
		}
		for _, want := range []string{"Nguyễn Văn Hùng", "Trần Thị Thu Hương", "Lê Đức Việt", "Đơn vị bầu cử số 3", "counting", "1,800", "1,461", "900"} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("table does not show %q:\n%s", want, res.stdout)
			}
		}
		res = runTally(t, quick, nil, "results", "--server", srv.url, "--contest", "HDND-LB", "--unit", "LB-DV1")
		if res.code != 0 {
			t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
		}
		for _, want := range []string{"Phạm Thị Ngọc Ánh", "Đỗ Mạnh Cường", "decided", "winner", "1,800", "1,250", "Round: first", "Council: LB"} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("table does not show %q:\n%s", want, res.stdout)
			}
		}
		// A district council seen from the province: its units, no votes.
		res = runTally(t, quick, nil, "results", "--server", srv.url, "--contest", "HDND-LB", "--area", "HN")
		if res.code != 0 {
			t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
		}
		for _, want := range []string{"1/1 decided", "not summed here"} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("province table does not show %q:\n%s", want, res.stdout)
			}
		}
		res = runTally(t, quick, nil, "results", "--server", srv.url, "--contest", "QH", "--area", "LB-BD")
		if res.code != 0 {
			t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
		}
		for _, want := range []string{"Phường Bồ Đề", "1,500", "1,211", "900", "1,810", "Nguyễn Văn Hùng"} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("area table does not show %q:\n%s", want, res.stdout)
			}
		}
		// Numbers are right-aligned: the votes column ends in one place.
		ends := map[int]bool{}
		for _, line := range strings.Split(res.stdout, "\n") {
			for _, n := range []string{"1,500", "1,211"} {
				if i := strings.Index(line, " "+n+" "); i >= 0 {
					ends[len([]rune(line[:i+1+len(n)]))] = true
				}
			}
		}
		if len(ends) != 1 {
			t.Errorf("the votes column is not right-aligned (ends at %v):\n%s", ends, res.stdout)
		}

		res = runTally(t, quick, nil, "results", "--server", srv.url, "--contest", "QH", "--station", "LB-BD-01")
		for _, want := range []string{"LB-BD-01", "version 1, final", "1,850", "Nguyễn Văn Hùng", "1,500", "applied"} {
			if res.code != 0 || !strings.Contains(res.stdout, want) {
				t.Errorf("station view: exit %d, stdout lacks %q:\n%s%s", res.code, want, res.stdout, res.stderr)
			}
		}
		res = runTally(t, quick, nil, "results", "--server", srv.url, "--list")
		for _, want := range []string{"contest QH", "QH-HN-03", "contest HDND-LB", "LB-DV1", "LB-BD", "Phường Bồ Đề"} {
			if res.code != 0 || !strings.Contains(res.stdout, want) {
				t.Errorf("--list: exit %d, stdout lacks %q:\n%s%s", res.code, want, res.stdout, res.stderr)
			}
		}
	})

	t.Run("results json", func(t *testing.T) {
		res := runTally(t, quick, nil, "results", "--server", srv.url, "--contest", "QH", "--unit", "QH-HN-03", "--json")
		if res.code != 0 {
			t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(res.stdout), &raw); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, res.stdout)
		}
		for _, f := range []string{"contest", "unit", "level", "name", "stations_expected", "stations_reporting", "stations_final",
			"registered", "voted", "issued", "received", "valid", "invalid", "votes", "seats", "candidates", "winners", "status", "applied_seq"} {
			if _, ok := raw[f]; !ok {
				t.Errorf("unit JSON has no %q: %s", f, res.stdout)
			}
		}
		var u unitResult
		json.Unmarshal([]byte(res.stdout), &u)
		want := unitResult{
			Contest: "QH", Unit: "QH-HN-03", Level: "unit", Name: "Đơn vị bầu cử số 3",
			StationsExpected: 4, StationsReporting: 2, StationsFinal: 1,
			Registered: 3250, Voted: 3132, Issued: 3132, Received: 2331, Valid: 2300, Invalid: 31,
			Votes: map[string]int64{"QH-HN-03-1": 1800, "QH-HN-03-2": 1461, "QH-HN-03-3": 900}, Seats: 2,
			Candidates: []candidateResult{
				{ID: "QH-HN-03-1", Name: "Nguyễn Văn Hùng", Born: "1968-04-12", Votes: 1800},
				{ID: "QH-HN-03-2", Name: "Trần Thị Thu Hương", Born: "1975-09-02", Votes: 1461},
				{ID: "QH-HN-03-3", Name: "Lê Đức Việt", Born: "1971-01-30", Votes: 900},
			},
			Winners: []string{"QH-HN-03-1", "QH-HN-03-2"}, Status: "counting", AppliedSeq: 4,
		}
		if d := diffJSON(u, want); d != "" {
			t.Errorf("unit JSON: %s", d)
		}

		res = runTally(t, quick, nil, "results", "--server", srv.url, "--contest", "HDND-LB", "--area", "LB", "--json")
		if res.code != 0 {
			t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
		}
		raw = nil
		if err := json.Unmarshal([]byte(res.stdout), &raw); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, res.stdout)
		}
		for _, f := range []string{"contest", "area", "level", "name", "stations_expected", "stations_reporting", "stations_final",
			"registered", "voted", "issued", "received", "valid", "invalid", "votes", "applied_seq"} {
			if _, ok := raw[f]; !ok {
				t.Errorf("area JSON has no %q: %s", f, res.stdout)
			}
		}
		var a areaResult
		json.Unmarshal([]byte(res.stdout), &a)
		wantA := areaResult{
			Contest: "HDND-LB", Area: "LB", Level: "district", Name: "Quận Long Biên",
			StationsExpected: 2, StationsReporting: 2, StationsFinal: 2,
			Registered: 3350, Voted: 3232, Issued: 3232, Received: 3230, Valid: 3180, Invalid: 50,
			Votes: map[string]int64{"LB-DV1-1": 1800, "LB-DV1-2": 1250}, AppliedSeq: 4,
		}
		if d := diffJSON(a, wantA); d != "" {
			t.Errorf("area JSON: %s", d)
		}
	})

	t.Run("results failures", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			has  string
		}{
			{[]string{"--contest", "QH", "--unit", "QH-HN-99"}, "QH-HN-99"},
			{[]string{"--contest", "QH", "--unit", "LB-DV1"}, "LB-DV1"}, // a unit of another contest
			{[]string{"--contest", "QH", "--area", "LB-XX"}, "LB-XX"},
			{[]string{"--contest", "NOPE", "--area", "LB"}, "the contests are QH, HDND-LB"},
			{[]string{"--contest", "QH", "--unit", "QH-HN-99"}, "the units of contest QH are QH-HN-03"},
			{[]string{"--contest", "QH", "--station", "LB-BD-99"}, "LB-BD-01"},
		} {
			res := runTally(t, quick, nil, append([]string{"results", "--server", srv.url}, tc.args...)...)
			if res.code != 1 || !strings.Contains(res.stderr, tc.has) {
				t.Errorf("tally results %q: exit %d, stderr %q; want 1 naming %q", tc.args, res.code, res.stderr, tc.has)
			}
		}
	})

	t.Run("no server", func(t *testing.T) {
		dead := "http://" + freeAddr(t)
		res := runTally(t, quick, nil, "results", "--server", dead, "--contest", "QH", "--unit", "QH-HN-03")
		if res.code != 1 || res.stderr == "" {
			t.Errorf("results from a dead server: exit %d, stderr %q; want 1", res.code, res.stderr)
		}
		res = runTally(t, quick, nil, "submit", "--server", dead, "--retry-for", "0", filepath.Join("testdata", "minutes_valid.json"))
		if res.code != 1 || res.stderr == "" {
			t.Errorf("submit to a dead server: exit %d, stderr %q; want 1", res.code, res.stderr)
		}
	})

	if code := srv.stop(t); code != 0 {
		t.Errorf("tally serve exited %d after SIGTERM, want 0; stderr:\n%s", code, srv.stderr.String())
	}
}
