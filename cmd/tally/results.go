package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

func runResults(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("results", "--contest C (--area A | --unit U | --station S) [--server URL] [--json]\n       tally results --list [--contest C] [--server URL]",
		`Prints the result of a contest in an area (at any level of the file) or in an electoral unit, or a station's current minutes and their history:
a table by default, the JSON of CONTRACT §4 with --json. --list prints the
contests, their electoral units and the areas, with their ids.`, stdout, stderr)
	serverURL := fs.String("server", "http://127.0.0.1:8080", "tally server URL")
	contest := fs.String("contest", "", "contest id; required but with --list")
	area := fs.String("area", "", "area id")
	unit := fs.String("unit", "", "electoral unit id")
	station := fs.String("station", "", "station id: its current minutes and history")
	list := fs.Bool("list", false, "list the contests, units and areas (of --contest only, if given)")
	asJSON := fs.Bool("json", false, "print the JSON result")
	caFile := fs.String("ca-file", "", "PEM certificate `FILE` to trust for an https:// server (besides the system's)")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	given := 0
	for _, s := range []string{*area, *unit, *station} {
		if s != "" {
			given++
		}
	}
	switch {
	case *list && given > 0:
		return usageError(fs, "--list lists; give it without --area, --unit or --station")
	case !*list && (*contest == "" || given != 1):
		return usageError(fs, "give --contest and exactly one of --area, --unit or --station (or --list to see the ids)")
	case fs.NArg() > 0:
		return usageError(fs, "unexpected arguments %q", fs.Args())
	}
	base, ok := checkServerURL(fs, *serverURL)
	if !ok {
		return exitUsage
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "tally results: "+format+"\n", a...)
		return exitFailed
	}
	transport, err := clientTransport(*caFile)
	if err != nil {
		return fail("%v", err)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: transport}
	ctx := context.Background()
	if *list {
		e, err := fetchElection(ctx, client, base)
		if err != nil {
			return fail("%v", err)
		}
		if *contest != "" && e.contest(*contest) == nil {
			return fail("no contest %q; the contests are %s", *contest, idList(e.contestIDs()))
		}
		printList(stdout, e, *contest)
		return exitOK
	}

	kind, id := "areas", *area
	switch {
	case *unit != "":
		kind, id = "units", *unit
	case *station != "":
		kind, id = "stations", *station
	}
	path := "/api/v1/contests/" + url.PathEscape(*contest) + "/" + kind + "/" + url.PathEscape(id)
	var raw json.RawMessage
	if err := fetchJSON(ctx, client, base, path, &raw); err != nil {
		if isNotFound(err) {
			if hint := notFoundHint(ctx, client, base, *contest, kind, id); hint != "" {
				return fail("%v\n%s", err, hint)
			}
		}
		return fail("%v", err)
	}
	if *asJSON {
		var out bytes.Buffer
		if err := json.Indent(&out, raw, "", "  "); err != nil {
			return fail("bad answer: %v", err)
		}
		out.WriteByte('\n')
		stdout.Write(out.Bytes())
		return exitOK
	}
	switch kind {
	case "units":
		var r projections.UnitResult
		if err := json.Unmarshal(raw, &r); err != nil {
			return fail("bad answer: %v", err)
		}
		printUnit(stdout, &r)
	case "areas":
		var r projections.AreaResult
		if err := json.Unmarshal(raw, &r); err != nil {
			return fail("bad answer: %v", err)
		}
		// Candidate names come from the election file the server holds.
		names := map[string]string{}
		if e, err := fetchElection(ctx, client, base); err == nil {
			names = e.candidateNames(r.Contest)
		}
		printArea(stdout, &r, names)
	default:
		var v projections.StationView
		if err := json.Unmarshal(raw, &v); err != nil {
			return fail("bad answer: %v", err)
		}
		e, err := fetchElection(ctx, client, base)
		if err != nil {
			return fail("%v", err)
		}
		printStation(stdout, e, *contest, *station, &v)
	}
	return exitOK
}

// electionView is what the results command reads of GET /api/v1/election:
// ids and names.
type electionView struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Areas []struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Level  string `json:"level"`
		Parent string `json:"parent"`
	} `json:"areas"`
	Stations []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Ward string `json:"ward"`
	} `json:"stations"`
	Contests []contestView `json:"contests"`
}

type contestView struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Units []struct {
		ID         string `json:"id"`
		Name       string `json:"name"`
		Seats      int    `json:"seats"`
		Candidates []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"candidates"`
	} `json:"units"`
}

func fetchElection(ctx context.Context, client *http.Client, base string) (*electionView, error) {
	var e electionView
	if err := fetchJSON(ctx, client, base, "/api/v1/election", &e); err != nil {
		return nil, fmt.Errorf("read the election: %w", err)
	}
	return &e, nil
}

func (e *electionView) contest(id string) *contestView {
	for i := range e.Contests {
		if e.Contests[i].ID == id {
			return &e.Contests[i]
		}
	}
	return nil
}

func (e *electionView) contestIDs() []string {
	ids := make([]string, len(e.Contests))
	for i, c := range e.Contests {
		ids[i] = c.ID
	}
	return ids
}

func (e *electionView) candidateNames(contest string) map[string]string {
	names := map[string]string{}
	if c := e.contest(contest); c != nil {
		for _, u := range c.Units {
			for _, k := range u.Candidates {
				names[k.ID] = k.Name
			}
		}
	}
	return names
}

// idList formats ids for a message, at most maxIDs of them.
func idList(ids []string) string {
	const maxIDs = 12
	if len(ids) <= maxIDs {
		return strings.Join(ids, ", ")
	}
	return fmt.Sprintf("%s, ... (%d in all)", strings.Join(ids[:maxIDs], ", "), len(ids))
}

// notFoundHint says which ids exist, for a 404: the contests when the
// contest is unknown, else the units of the contest, or a few areas or
// stations, and where to see them all. "" if the election cannot be read.
func notFoundHint(ctx context.Context, client *http.Client, base, contest, kind, id string) string {
	e, err := fetchElection(ctx, client, base)
	if err != nil {
		return ""
	}
	c := e.contest(contest)
	if c == nil {
		return "the contests are " + idList(e.contestIDs())
	}
	var ids []string
	switch kind {
	case "units":
		for _, u := range c.Units {
			ids = append(ids, u.ID)
		}
		return fmt.Sprintf("the units of contest %s are %s (tally results --list --contest %s)", contest, idList(ids), contest)
	case "areas":
		for _, a := range e.Areas {
			ids = append(ids, a.ID)
		}
		return fmt.Sprintf("the areas are %s (tally results --list)", idList(closest(ids, id)))
	default:
		for _, s := range e.Stations {
			ids = append(ids, s.ID)
		}
		return fmt.Sprintf("stations with a similar id: %s (%d stations in all)", strings.Join(closest(ids, id)[:min(5, len(ids))], ", "), len(ids))
	}
}

// closest orders ids by how long a prefix they share with id, the longest
// first (then by id), so that a short list shows the likely ones.
func closest(ids []string, id string) []string {
	common := func(a string) int {
		n := 0
		for n < len(a) && n < len(id) && a[n] == id[n] {
			n++
		}
		return n
	}
	out := append([]string(nil), ids...)
	sort.SliceStable(out, func(i, j int) bool {
		ci, cj := common(out[i]), common(out[j])
		if ci != cj {
			return ci > cj
		}
		return out[i] < out[j]
	})
	return out
}

// printList prints the contests with their units, and the areas.
func printList(w io.Writer, e *electionView, only string) {
	fmt.Fprintf(w, "election %s: %s\n", e.ID, e.Name)
	for _, c := range e.Contests {
		if only != "" && c.ID != only {
			continue
		}
		fmt.Fprintf(w, "\ncontest %s: %s, %s\n", c.ID, c.Name, plural(len(c.Units), "unit", "units"))
		rows := [][]string{{"UNIT", "NAME", "SEATS", "CANDIDATES"}}
		for _, u := range c.Units {
			rows = append(rows, []string{u.ID, u.Name, group(int64(u.Seats)), group(int64(len(u.Candidates)))})
		}
		table(w, rows, map[int]bool{2: true, 3: true})
	}
	if only != "" {
		return
	}
	fmt.Fprintf(w, "\nareas: %d\n", len(e.Areas))
	rows := [][]string{{"AREA", "LEVEL", "NAME", "IN"}}
	for _, a := range e.Areas {
		rows = append(rows, []string{a.ID, a.Level, a.Name, a.Parent})
	}
	table(w, rows, nil)
	fmt.Fprintf(w, "\nstations: %s (their ids: GET /api/v1/election)\n", group(int64(len(e.Stations))))
}

// group formats n with thousands separators: 1,234,567.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// table prints rows in columns two spaces apart; the columns in right are
// right-aligned (numbers). Widths count characters, not bytes, so that
// Vietnamese names line up.
func table(w io.Writer, rows [][]string, right map[int]bool) {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if right[i] {
				b.WriteString(pad + c)
			} else if i < len(r)-1 {
				b.WriteString(c + pad)
			} else {
				b.WriteString(c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

func pct(a, b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(a)/float64(b))
}

func printCounts(w io.Writer, expected int, reporting, final, registered, voted, issued, received, valid, invalid int64) {
	fmt.Fprintf(w, "Stations: %s expected, %s reporting, %s final\n", group(int64(expected)), group(reporting), group(final))
	table(w, [][]string{
		{"Registered voters (cử tri)", group(registered), ""},
		{"Voted (đã bỏ phiếu)", group(voted), pct(voted, registered)},
		{"Ballots issued", group(issued), ""},
		{"Ballots received", group(received), ""},
		{"Valid ballots", group(valid), pct(valid, received)},
		{"Invalid ballots", group(invalid), pct(invalid, received)},
	}, map[int]bool{1: true, 2: true})
}

func printArea(w io.Writer, r *projections.AreaResult, names map[string]string) {
	fmt.Fprintf(w, "%s (%s %s), contest %s, at seq %d\n\n", r.Name, r.Level, r.Area, r.Contest, r.AppliedSeq)
	printCounts(w, r.StationsExpected, r.StationsReporting, r.StationsFinal, r.Registered, r.Voted, r.Issued, r.Received, r.Valid, r.Invalid)
	u := r.Units
	fmt.Fprintf(w, "Units wholly here (đơn vị bầu cử): %d/%d decided, %d counting, %d tie, %d additional election, %d re-election; %d winners for %d seats\n",
		u.Decided, u.Total, u.Counting, u.Tie, u.AdditionalElection, u.ReElection, u.Winners, u.Seats)
	fmt.Fprintln(w)
	if r.Votes == nil {
		// CONTRACT §4 v2: below the councils' level there are no votes.
		fmt.Fprintln(w, "Votes: not summed here: the contest's councils lie below this level")
		return
	}
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
	rows := [][]string{{"CANDIDATE", "ID", "VOTES", "OF VALID"}}
	for _, id := range ids {
		name := names[id]
		if name == "" {
			name = id
		}
		rows = append(rows, []string{name, id, group(r.Votes[id]), pct(r.Votes[id], r.Valid)})
	}
	table(w, rows, map[int]bool{2: true, 3: true})
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
	printCounts(w, r.StationsExpected, r.StationsReporting, r.StationsFinal, r.Registered, r.Voted, r.Issued, r.Received, r.Valid, r.Invalid)
	fmt.Fprintln(w)
	winner := map[string]bool{}
	for _, id := range r.Winners {
		winner[id] = true
	}
	rows := [][]string{{"#", "CANDIDATE", "ID", "BORN", "VOTES", "OF VALID", ""}}
	for i, c := range r.Candidates {
		mark := ""
		if winner[c.ID] {
			mark = "winner"
			if r.Status == "counting" {
				mark = "provisional winner"
			}
		}
		rows = append(rows, []string{strconv.Itoa(i + 1), c.Name, c.ID, c.Born, group(c.Votes), pct(c.Votes, r.Valid), mark})
	}
	table(w, rows, map[int]bool{0: true, 4: true, 5: true})
}

// printStation prints a station's current minutes and their history.
func printStation(w io.Writer, e *electionView, contest, station string, v *projections.StationView) {
	name := station
	for _, s := range e.Stations {
		if s.ID == station {
			name = s.Name + " (" + s.ID + ")"
		}
	}
	fmt.Fprintf(w, "%s, contest %s, at seq %d\n\n", name, contest, v.AppliedSeq)
	var cur struct {
		Version int64            `json:"version"`
		Status  string           `json:"status"`
		Votes   map[string]int64 `json:"votes"`
		Reason  string           `json:"reason"`
	}
	var counts struct {
		Registered int64 `json:"registered"`
		Voted      int64 `json:"voted"`
		Issued     int64 `json:"issued"`
		Received   int64 `json:"received"`
		Valid      int64 `json:"valid"`
		Invalid    int64 `json:"invalid"`
	}
	if len(v.Current) == 0 || string(v.Current) == "null" {
		fmt.Fprintln(w, "No minutes applied yet.")
	} else if json.Unmarshal(v.Current, &cur) == nil && json.Unmarshal(v.Current, &counts) == nil {
		fmt.Fprintf(w, "Current minutes: version %d, %s\n", cur.Version, cur.Status)
		if cur.Reason != "" {
			fmt.Fprintf(w, "Note: %s\n", cur.Reason)
		}
		table(w, [][]string{
			{"Registered voters (cử tri)", group(counts.Registered), ""},
			{"Voted (đã bỏ phiếu)", group(counts.Voted), pct(counts.Voted, counts.Registered)},
			{"Ballots issued", group(counts.Issued), ""},
			{"Ballots received", group(counts.Received), ""},
			{"Valid ballots", group(counts.Valid), pct(counts.Valid, counts.Received)},
			{"Invalid ballots", group(counts.Invalid), pct(counts.Invalid, counts.Received)},
		}, map[int]bool{1: true, 2: true})
		names := e.candidateNames(contest)
		ids := make([]string, 0, len(cur.Votes))
		for id := range cur.Votes {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool {
			if cur.Votes[ids[i]] != cur.Votes[ids[j]] {
				return cur.Votes[ids[i]] > cur.Votes[ids[j]]
			}
			return ids[i] < ids[j]
		})
		rows := [][]string{{"CANDIDATE", "ID", "VOTES", "OF VALID"}}
		for _, id := range ids {
			n := names[id]
			if n == "" {
				n = id
			}
			rows = append(rows, []string{n, id, group(cur.Votes[id]), pct(cur.Votes[id], counts.Valid)})
		}
		fmt.Fprintln(w)
		table(w, rows, map[int]bool{2: true, 3: true})
	}
	fmt.Fprintln(w, "\nHistory (every minutes object received, in stream order):")
	rows := [][]string{{"SEQ", "VERSION", "STATUS", "OUTCOME"}}
	for _, h := range v.History {
		rows = append(rows, []string{group(int64(h.Seq)), strconv.FormatInt(h.Version, 10), h.Status, h.Outcome})
	}
	table(w, rows, map[int]bool{0: true, 1: true})
}
