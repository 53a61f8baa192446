package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/server"
)

// submitted identifies one minutes object of a request body.
type submitted struct {
	Contest string `json:"contest"`
	Station string `json:"station"`
	Version int64  `json:"version"`
}

// parseSubmitted reads the minutes of a body the three ways CONTRACT §5
// accepts (one object, an array, NDJSON) as far as waitOutcomes needs them.
func parseSubmitted(body []byte) ([]submitted, error) {
	var out []submitted
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) > 0 && raw[0] == '[' {
			var ms []submitted
			if err := json.Unmarshal(raw, &ms); err != nil {
				return nil, err
			}
			out = append(out, ms...)
			continue
		}
		var m submitted
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
}

// waitOutcomes waits until the fold has applied the stored minutes (its
// applied_seq reaches ans.Seq; with partitions, every partition of
// ans.Positions has an applied position at least as high, CONTRACT §6
// v2), for as long as applied_seq keeps moving:
// it gives up only when applied_seq stood still for idle. Then it prints
// the outcome of every minutes object, from its station's history, and the
// reasons of the rejected ones. It returns exitFailed if any was rejected
// or the outcomes could not be learnt.
func waitOutcomes(client *http.Client, base, name string, body []byte, ans *server.SubmitResponse, idle time.Duration, stdout, stderr io.Writer) int {
	ms, err := parseSubmitted(body)
	if err != nil {
		fmt.Fprintf(stderr, "tally submit: %s: stored, but its minutes cannot be read back to learn their outcome: %v\n", name, err)
		return exitFailed
	}
	ctx := context.Background()
	var last uint64
	lastMove := time.Now()
	var st server.Status
	for {
		sctx, cancel := context.WithTimeout(ctx, idle)
		err := fetchJSON(sctx, client, base, "/api/v1/status", &st)
		cancel()
		if err == nil && applied(&st, ans) {
			break
		}
		if err == nil && st.AppliedSeq > last {
			last, lastMove = st.AppliedSeq, time.Now()
		}
		if time.Since(lastMove) > idle {
			if err != nil {
				fmt.Fprintf(stderr, "tally submit: %s: stored (seq %d), but the server's status could not be read for %s: %v\n", name, ans.Seq, idle, err)
			} else {
				fmt.Fprintf(stderr, "tally submit: %s: stored (seq %d), but the fold did not move for %s (applied_seq %d of %d): its outcome is not known yet; see GET /api/v1/status\n",
					name, ans.Seq, idle, st.AppliedSeq, st.StreamSeq)
			}
			return exitFailed
		}
		time.Sleep(50 * time.Millisecond)
	}

	counts := map[string]int{}
	var problems []string
	// The fold's rejections (the list holds the gateway's refusals too,
	// which have no stream seq), by station, fetched once.
	type rejection struct {
		projections.Rejection
		Source string `json:"source"`
	}
	rejections := map[string][]rejection{}
	for _, m := range ms {
		var view server.TimedStationView
		path := "/api/v1/contests/" + url.PathEscape(m.Contest) + "/stations/" + url.PathEscape(m.Station)
		if err := fetchJSON(ctx, client, base, path, &view); err != nil {
			fmt.Fprintf(stderr, "tally submit: %s: stored, but the history of %s/%s cannot be read: %v\n", name, m.Contest, m.Station, err)
			return exitFailed
		}
		// The entry of this version stored last, at or before the
		// submission's position (in the station's partition): an
		// identical earlier copy (deduplicated) has its earlier seq.
		upTo := ans.Seq
		if ans.Positions != nil && view.Partition != nil {
			upTo = ans.Positions[*view.Partition]
		}
		var h *projections.HistoryEntry
		for i := range view.History {
			e := &view.History[i].HistoryEntry
			if e.Version == m.Version && e.Seq <= upTo && (h == nil || e.Seq > h.Seq) {
				h = e
			}
		}
		if h == nil {
			counts["unknown"]++
			problems = append(problems, fmt.Sprintf("  %s/%s version %d: not in the station's history", m.Contest, m.Station, m.Version))
			continue
		}
		counts[h.Outcome]++
		if h.Outcome != "rejected" {
			continue
		}
		rs, ok := rejections[m.Station]
		if !ok {
			if err := fetchJSON(ctx, client, base, "/api/v1/rejections?station="+url.QueryEscape(m.Station), &rs); err != nil {
				fmt.Fprintf(stderr, "tally submit: %s: the rejections of %s cannot be read: %v\n", name, m.Station, err)
			}
			rejections[m.Station] = rs
		}
		reason := "see GET /api/v1/rejections"
		for _, r := range rs {
			if r.Seq == h.Seq && (r.Source == "" || r.Source == server.SourceFold) {
				reason = r.Reason
			}
		}
		problems = append(problems, fmt.Sprintf("  %s/%s version %d (seq %d) rejected: %s", m.Contest, m.Station, m.Version, h.Seq, reason))
	}
	var parts []string
	for _, o := range []string{"applied", "stale", "duplicate", "rejected", "unknown"} {
		if n := counts[o]; n > 0 || o == "applied" {
			parts = append(parts, fmt.Sprintf("%d %s", n, o))
		}
	}
	fmt.Fprintf(stdout, "%s: folded: %s\n", name, strings.Join(parts, ", "))
	if counts["stale"] > 0 {
		fmt.Fprintf(stdout, "%s: stale: the station already has a higher version of those minutes\n", name)
	}
	for _, p := range problems {
		fmt.Fprintln(stderr, p)
	}
	if counts["rejected"] > 0 || counts["unknown"] > 0 {
		return exitFailed
	}
	return exitOK
}

// applied reports whether the status shows the submission ans applied:
// every partition of its positions applied at least that far, or, without
// partitions, applied_seq at least its seq.
func applied(st *server.Status, ans *server.SubmitResponse) bool {
	if ans.Positions == nil {
		return st.AppliedSeq >= ans.Seq
	}
	for p, seq := range ans.Positions {
		if st.AppliedPositions[p] < seq {
			return false
		}
	}
	return true
}
