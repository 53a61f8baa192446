package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

func runExport(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("export", "--format nist|csv|pdf [--server URL] [--contest C] [--unit U | --area A] [--out FILE]",
		`Writes an export of CONTRACT §8, read from one snapshot of the server's
projections: the whole election as NIST SP 1500-100 v2 JSON (nist), a
contest's results as CSV (csv, needs --contest), or the printable minutes
of an electoral unit (pdf with --contest and --unit) or the committee's
summary of an area (pdf with --contest and --area). Standard output when no
--out; with --out the file appears only once the export is complete.`, stdout, stderr)
	serverURL := fs.String("server", "http://127.0.0.1:8080", "tally server URL")
	format := fs.String("format", "", "nist, csv or pdf; required")
	contest := fs.String("contest", "", "contest id (csv, pdf)")
	unit := fs.String("unit", "", "electoral unit id (pdf)")
	area := fs.String("area", "", "area id (pdf)")
	out := fs.String("out", "", "write to `FILE` instead of standard output")
	caFile := fs.String("ca-file", "", "PEM certificate `FILE` to trust for an https:// server (besides the system's)")
	timeout := fs.Duration("timeout", 15*time.Minute, "give up after this long (a national NIST export takes a while)")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected arguments %q", fs.Args())
	}
	base, ok := checkServerURL(fs, *serverURL)
	if !ok {
		return exitUsage
	}
	var path string
	switch *format {
	case "nist":
		if *contest != "" || *unit != "" || *area != "" {
			return usageError(fs, "--format nist exports the whole election: no --contest, --unit or --area")
		}
		path = "/api/v1/export/nist-1500-100.json"
	case "csv":
		if *contest == "" || *unit != "" || *area != "" {
			return usageError(fs, "--format csv needs --contest (and no --unit or --area)")
		}
		path = "/api/v1/export/results.csv?contest=" + url.QueryEscape(*contest)
	case "pdf":
		if *contest == "" || (*unit == "") == (*area == "") {
			return usageError(fs, "--format pdf needs --contest and exactly one of --unit or --area")
		}
		kind, id := "units", *unit
		if *area != "" {
			kind, id = "areas", *area
		}
		path = "/api/v1/contests/" + url.PathEscape(*contest) + "/" + kind + "/" + url.PathEscape(id) + "/minutes.pdf"
	case "":
		return usageError(fs, "--format is required: nist, csv or pdf")
	default:
		return usageError(fs, "--format %q: want nist, csv or pdf", *format)
	}
	if err := export(base+path, *out, *caFile, *timeout, stdout); err != nil {
		fmt.Fprintf(stderr, "tally export: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// export GETs u and copies the answer to the file out (through a temporary
// file renamed at the end, so a cut-short export leaves no file) or to
// stdout.
func export(u, out, caFile string, timeout time.Duration, stdout io.Writer) error {
	transport, err := clientTransport(caFile)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: timeout, Transport: transport}
	resp, err := client.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return fmt.Errorf("server answered %d: %s", resp.StatusCode, errorText(body))
	}
	if out == "" {
		if _, err := io.Copy(stdout, resp.Body); err != nil {
			return fmt.Errorf("export cut short: %w", err)
		}
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename, nothing to remove
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("export cut short: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), out)
}
