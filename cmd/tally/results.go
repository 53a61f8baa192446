package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

func runResults(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("results", "--contest C (--area A | --unit U) [--server URL] [--json]",
		`Prints the result of a contest in an area (at any level of the file) or
in an electoral unit: a table by default, the JSON of CONTRACT §4 with --json.`, stdout, stderr)
	serverURL := fs.String("server", "http://127.0.0.1:8080", "tally server URL")
	contest := fs.String("contest", "", "contest id; required")
	area := fs.String("area", "", "area id")
	unit := fs.String("unit", "", "electoral unit id")
	asJSON := fs.Bool("json", false, "print the JSON result")
	caFile := fs.String("ca-file", "", "PEM certificate `FILE` to trust for an https:// server (besides the system's)")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	if *contest == "" || (*area == "") == (*unit == "") {
		return usageError(fs, "give --contest and exactly one of --area or --unit")
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected arguments %q", fs.Args())
	}
	kind, id := "areas", *area
	if *unit != "" {
		kind, id = "units", *unit
	}
	u := strings.TrimRight(*serverURL, "/") + "/api/v1/contests/" + url.PathEscape(*contest) + "/" + kind + "/" + url.PathEscape(id)
	transport, err := clientTransport(*caFile)
	if err != nil {
		fmt.Fprintf(stderr, "tally results: %v\n", err)
		return exitFailed
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: transport}
	resp, err := client.Get(u)
	if err != nil {
		fmt.Fprintf(stderr, "tally results: %v\n", err)
		return exitFailed
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		fmt.Fprintf(stderr, "tally results: %v\n", err)
		return exitFailed
	}
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "tally results: server answered %d: %s\n", resp.StatusCode, errorText(body))
		return exitFailed
	}
	if *asJSON {
		var out bytes.Buffer
		if err := json.Indent(&out, body, "", "  "); err != nil {
			fmt.Fprintf(stderr, "tally results: bad answer: %v\n", err)
			return exitFailed
		}
		stdout.Write(out.Bytes())
		return exitOK
	}
	if *unit != "" {
		var r projections.UnitResult
		if err := json.Unmarshal(body, &r); err != nil {
			fmt.Fprintf(stderr, "tally results: bad answer: %v\n", err)
			return exitFailed
		}
		printUnit(stdout, &r)
	} else {
		var r projections.AreaResult
		if err := json.Unmarshal(body, &r); err != nil {
			fmt.Fprintf(stderr, "tally results: bad answer: %v\n", err)
			return exitFailed
		}
		printArea(stdout, &r)
	}
	return exitOK
}

func pct(a, b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(a)/float64(b))
}

func printCounts(tw io.Writer, expected int, reporting, final, registered, voted, issued, received, valid, invalid int64) {
	fmt.Fprintf(tw, "Stations\t%d expected, %d reporting, %d final\n", expected, reporting, final)
	fmt.Fprintf(tw, "Registered voters (cử tri)\t%d\n", registered)
	fmt.Fprintf(tw, "Voted (đã bỏ phiếu)\t%d\t%s\n", voted, pct(voted, registered))
	fmt.Fprintf(tw, "Ballots issued / received\t%d / %d\n", issued, received)
	fmt.Fprintf(tw, "Valid / invalid ballots\t%d / %d\n", valid, invalid)
}

func printArea(w io.Writer, r *projections.AreaResult) {
	fmt.Fprintf(w, "%s (%s %s), contest %s, at seq %d\n\n", r.Name, r.Level, r.Area, r.Contest, r.AppliedSeq)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	printCounts(tw, r.StationsExpected, r.StationsReporting, r.StationsFinal, r.Registered, r.Voted, r.Issued, r.Received, r.Valid, r.Invalid)
	u := r.Units
	fmt.Fprintf(tw, "Units wholly here (đơn vị bầu cử)\t%d/%d decided, %d counting, %d tie, %d additional election, %d re-election; %d winners for %d seats\n",
		u.Decided, u.Total, u.Counting, u.Tie, u.AdditionalElection, u.ReElection, u.Winners, u.Seats)
	fmt.Fprintln(tw)
	if r.Votes == nil {
		// CONTRACT §4 v2: below the councils' level there are no votes.
		fmt.Fprintln(tw, "Votes\tnot summed here: the contest's councils lie below this level")
		tw.Flush()
		return
	}
	fmt.Fprintln(tw, "CANDIDATE\tVOTES\tOF VALID")
	ids := make([]string, 0, len(r.Votes))
	for id := range r.Votes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if r.Votes[ids[i]] != r.Votes[ids[j]] {
			return r.Votes[ids[i]] > r.Votes[ids[j]]
		}
		return ids[i] < ids[j]
	})
	for _, id := range ids {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", id, r.Votes[id], pct(r.Votes[id], r.Valid))
	}
	tw.Flush()
}

var statusWords = map[string]string{
	"counting":            "counting (đang kiểm phiếu)",
	"decided":             "decided (đã xác định người trúng cử)",
	"re_election":         "re-election (bầu cử lại)",
	"additional_election": "additional election (bầu thêm)",
	"tie":                 "tie at the last seat (bằng phiếu, cần quyết định)",
}

func printUnit(w io.Writer, r *projections.UnitResult) {
	fmt.Fprintf(w, "%s (unit %s), contest %s, %d seats, at seq %d\n", r.Name, r.Unit, r.Contest, r.Seats, r.AppliedSeq)
	status := string(r.Status)
	if s, ok := statusWords[status]; ok {
		status = s
	}
	fmt.Fprintf(w, "Status: %s\n", status)
	round := map[tally.Round]string{tally.FirstRound: "first", tally.Additional: "additional election (bầu thêm)", tally.ReVote: "re-election (bầu cử lại)"}[r.Round]
	if round == "" {
		round = string(r.Round)
	}
	fmt.Fprintf(w, "Round: %s\n", round)
	if r.Council != "" {
		fmt.Fprintf(w, "Council: %s\n", r.Council)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	printCounts(tw, r.StationsExpected, r.StationsReporting, r.StationsFinal, r.Registered, r.Voted, r.Issued, r.Received, r.Valid, r.Invalid)
	fmt.Fprintln(tw)
	winner := map[string]bool{}
	for _, id := range r.Winners {
		winner[id] = true
	}
	fmt.Fprintln(tw, "#\tCANDIDATE\tBORN\tVOTES\tOF VALID\t")
	for i, c := range r.Candidates {
		mark := ""
		if winner[c.ID] {
			mark = "winner"
			if r.Status == "counting" {
				mark = "provisional winner"
			}
		}
		fmt.Fprintf(tw, "%d\t%s (%s)\t%s\t%d\t%s\t%s\n", i+1, c.Name, c.ID, c.Born, c.Votes, pct(c.Votes, r.Valid), mark)
	}
	tw.Flush()
}
