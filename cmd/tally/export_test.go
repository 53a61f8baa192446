package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExportCommand: tally export writes each export of CONTRACT §8 from a
// running server (Long Biên, every minutes submitted), to --out or to
// standard output; bad usage exits 2 and an unknown id exits 1 naming it,
// leaving no file behind.
func TestExportCommand(t *testing.T) {
	url := simServer(t, simLongBien)
	var out, errb bytes.Buffer
	if code := run([]string{"submit", "--server", url, "../../examples/longbien/minutes.ndjson"}, &out, &errb); code != 0 {
		t.Fatalf("submit: exit %d: %s", code, errb.String())
	}
	simCaughtUp(t, url)
	dir := t.TempDir()
	tally := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(append([]string{"export", "--server", url}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}

	// CSV: byte for byte what the API answers, to a file and to stdout.
	resp, err := http.Get(url + "/api/v1/export/results.csv?contest=HDND-LB")
	if err != nil {
		t.Fatal(err)
	}
	api, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	file := filepath.Join(dir, "hdnd-lb.csv")
	if code, _, stderr := tally("--format", "csv", "--contest", "HDND-LB", "--out", file); code != 0 {
		t.Fatalf("export csv: exit %d: %s", code, stderr)
	}
	got, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(got, api) || !bytes.HasPrefix(got, []byte("\ufeffcontest,kind,id,")) {
		t.Fatalf("csv file (%v): %d bytes, API %d; starts %q", err, len(got), len(api), got[:min(len(got), 30)])
	}
	if code, stdout, _ := tally("--format", "csv", "--contest", "HDND-LB"); code != 0 || stdout != string(api) {
		t.Fatalf("csv to stdout: exit %d, %d bytes, want %d", code, len(stdout), len(api))
	}

	// NIST: every minutes folded; still partial, since QH-HN-02's stations
	// outside the file (stations_outside) never report.
	code, stdout, stderr := tally("--format", "nist")
	var rep struct{ Status, Notes string }
	if code != 0 || json.Unmarshal([]byte(stdout), &rep) != nil || rep.Status != "unofficial-partial" || !strings.Contains(rep.Notes, "applied_seq 584") {
		t.Fatalf("export nist: exit %d, %q %q; stderr %s", code, rep.Status, rep.Notes, stderr)
	}

	// PDF of a unit and of an area.
	for _, args := range [][]string{{"--unit", "HDND-LB-08"}, {"--area", "LB-BD"}} {
		file := filepath.Join(dir, args[1]+".pdf")
		if code, _, stderr := tally(append([]string{"--format", "pdf", "--contest", "HDND-LB", "--out", file}, args...)...); code != 0 {
			t.Fatalf("export pdf %v: exit %d: %s", args, code, stderr)
		}
		if _, err := exec.LookPath("pdftotext"); err != nil {
			t.Fatal("pdftotext not found: install poppler-utils (.ci/run does)")
		}
		text, err := exec.Command("pdftotext", file, "-").Output()
		if err != nil || !strings.Contains(string(text), "BIÊN BẢN") || !strings.Contains(string(text), "applied_seq 584") {
			t.Fatalf("pdf %v: %v\n%s", args, err, text)
		}
	}

	for _, tc := range []struct {
		args []string
		code int
		has  string
	}{
		{nil, 2, "--format"},
		{[]string{"--format", "xml"}, 2, "xml"},
		{[]string{"--format", "csv"}, 2, "--contest"},
		{[]string{"--format", "pdf", "--contest", "QH"}, 2, "exactly one"},
		{[]string{"--format", "pdf", "--contest", "QH", "--unit", "U", "--area", "A"}, 2, "exactly one"},
		{[]string{"--format", "nist", "--contest", "QH"}, 2, "whole election"},
		{[]string{"--format", "csv", "--contest", "NOPE", "--out", filepath.Join(dir, "nope.csv")}, 1, "NOPE"},
		{[]string{"--format", "pdf", "--contest", "QH", "--unit", "NOPE"}, 1, "NOPE"},
	} {
		code, stdout, stderr := tally(tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.has) || stdout != "" {
			t.Errorf("tally export %q: exit %d, stdout %q, stderr %q; want exit %d naming %q", tc.args, code, stdout, stderr, tc.code, tc.has)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("output directory holds %q, want the csv and the two pdfs only", names)
	}
}
