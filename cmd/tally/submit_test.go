package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSubmitWaitsForTheFold: a 202 means stored, not counted. By default
// `tally submit` waits until the fold has applied what it stored and says
// how many minutes objects were applied, stale, duplicate or rejected,
// with the reasons, and exits 1 when any was rejected; --no-wait does not
// wait. A --server without a scheme is bad usage, refused at once.
func TestSubmitWaitsForTheFold(t *testing.T) {
	t.Parallel()
	const quick = 30 * time.Second
	srv := startServe(t, filepath.Join("testdata", "election.json"), t.TempDir())
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gt := func(version int, received, valid, invalid, v1, v2 int) string {
		return `{"election": "lb-2021", "contest": "QH", "station": "LB-GT-01", "version": ` + strconv.Itoa(version) + `, "status": "partial",` +
			` "registered": 1400, "voted": 1300, "issued": 1300, "received": ` + strconv.Itoa(received) + `, "valid": ` + strconv.Itoa(valid) + `, "invalid": ` + strconv.Itoa(invalid) + `,` +
			` "votes": {"QH-HN-03-1": ` + strconv.Itoa(v1) + `, "QH-HN-03-2": ` + strconv.Itoa(v2) + `}}` + "\n"
	}

	res := runTally(t, quick, nil, "submit", "--server", srv.url, filepath.Join("testdata", "minutes_valid.json"))
	if res.code != 0 || !strings.Contains(res.stdout, "accepted 3 minutes objects, seq 3") || !strings.Contains(res.stdout, "folded: 3 applied") {
		t.Fatalf("valid minutes: exit %d, stdout %q, stderr %q; want 0, \"accepted 3 minutes objects, seq 3\" and \"folded: 3 applied\"", res.code, res.stdout, res.stderr)
	}

	// Version 1 of LB-GT-01 again with other figures: stored (its content
	// is new), then rejected by the fold as a conflict.
	conflict := write("conflict.json", gt(1, 600, 590, 10, 300, 250))
	res = runTally(t, quick, nil, "submit", "--server", srv.url, conflict)
	if res.code != 1 || !strings.Contains(res.stdout, "accepted 1 minutes object, seq 4") || !strings.Contains(res.stdout, "0 applied, 1 rejected") ||
		!regexp.MustCompile(`QH/LB-GT-01 version 1 \(seq 4\) rejected: .+`).MatchString(res.stderr) {
		t.Errorf("conflicting minutes: exit %d, stdout %q, stderr %q; want 1, \"0 applied, 1 rejected\" and the reason", res.code, res.stdout, res.stderr)
	}
	t.Logf("a rejection: %s", strings.TrimSpace(res.stderr))

	// Version 2, then a different version 1 that comes too late: stale.
	newer := write("v2.json", gt(2, 700, 690, 10, 400, 250))
	if res = runTally(t, quick, nil, "submit", "--server", srv.url, newer); res.code != 0 || !strings.Contains(res.stdout, "1 applied") {
		t.Errorf("version 2: exit %d, stdout %q, stderr %q; want 0 and 1 applied", res.code, res.stdout, res.stderr)
	}
	late := write("late.json", gt(1, 650, 640, 10, 350, 250))
	if res = runTally(t, quick, nil, "submit", "--server", srv.url, late); res.code != 0 || !strings.Contains(res.stdout, "0 applied, 1 stale") {
		t.Errorf("a late version 1: exit %d, stdout %q, stderr %q; want 0 and \"0 applied, 1 stale\"", res.code, res.stdout, res.stderr)
	}

	// --no-wait: the gateway's answer only.
	late2 := write("late2.json", gt(1, 660, 650, 10, 350, 250))
	if res = runTally(t, quick, nil, "submit", "--no-wait", "--server", srv.url, late2); res.code != 0 || strings.Contains(res.stdout, "folded") ||
		!strings.Contains(res.stdout, "accepted 1 minutes object") {
		t.Errorf("--no-wait: exit %d, stdout %q, stderr %q; want 0 and only the gateway's answer", res.code, res.stdout, res.stderr)
	}

	// A server address without a scheme: bad usage, at once, not retried.
	for _, args := range [][]string{
		{"submit", "--server", strings.TrimPrefix(srv.url, "http://"), late},
		{"results", "--server", strings.TrimPrefix(srv.url, "http://"), "--contest", "QH", "--unit", "QH-HN-03"},
		{"simulate", "--server", "127.0.0.1:1", "--election", filepath.Join("testdata", "election.json")},
	} {
		start := time.Now()
		res = runTally(t, quick, nil, args...)
		if res.code != 2 || !strings.Contains(res.stderr, "want a URL with a scheme") || strings.Contains(res.stderr, "retrying") {
			t.Errorf("tally %q: exit %d, stderr %q; want 2 naming the missing scheme, no retry", args, res.code, res.stderr)
		}
		t.Logf("tally %s without a scheme: %s in %s", args[0], strings.TrimSpace(res.stderr), time.Since(start).Round(time.Millisecond))
	}
}
