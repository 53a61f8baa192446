package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tallyvn/tally/server"
	"github.com/tallyvn/tally/tally"
)

func runSubmit(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("submit", "[--server URL] [--seal SEEDFILE | --seal-dir DIR] [FILE ...]",
		`Submits count minutes (one JSON object, a JSON array or NDJSON per file;
'-' or no file reads standard input). Each file is one request: either all
of its minutes are stored or, when any breaks a rule, none is and every
problem is printed. A request the server could not store (503, 429, network
error) is retried with the same content, so it is never stored twice.

With --seal, every minutes object is signed with the station seed in
SEEDFILE (CONTRACT §7; a signature it already has is replaced) and sent as
NDJSON; with --seal-dir, each is signed with the seed of the station it
names, DIR/seeds/<station>.seed as 'tally keys seal --out DIR' writes them.
A file with minutes that cannot be read as such is then not sent.

A 202 means stored, not counted: by default submit then waits until the
fold has applied the stored minutes (GET /api/v1/status), for as long as
the fold makes progress, and prints how many were applied, stale,
duplicate or rejected, with the reason of each rejection (exit 1 if any
was rejected). --no-wait prints only what the gateway stored.

A server run with --token-file accepts minutes that are not all sealed only
with its operator token: give the same file with --token-file (sent as
'Authorization: Bearer TOKEN'). For an https:// server with a self-signed
certificate, --ca-file names the certificate to trust.`, stdout, stderr)
	serverURL := fs.String("server", "http://127.0.0.1:8080", "tally server URL")
	retryFor := fs.Duration("retry-for", 30*time.Second, "keep retrying a request the server could not store for this long (0: no retry)")
	noWait := fs.Bool("no-wait", false, "do not wait for the fold: print what the gateway stored and exit")
	waitIdle := fs.Duration("wait-idle", time.Minute, "while waiting for the fold, give up when its applied_seq has not moved for this long")
	sealFile := fs.String("seal", "", "sign every minutes with the station seed in this file (SU...)")
	sealDir := fs.String("seal-dir", "", "sign each minutes with DIR/seeds/<station>.seed")
	tokenFile := fs.String("token-file", "", "`FILE` holding the server's operator token")
	caFile := fs.String("ca-file", "", "PEM certificate `FILE` to trust for an https:// server (besides the system's)")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	if *sealFile != "" && *sealDir != "" {
		return usageError(fs, "give --seal or --seal-dir, not both")
	}
	base, ok := checkServerURL(fs, *serverURL)
	if !ok {
		return exitUsage
	}
	if *waitIdle <= 0 {
		return usageError(fs, "--wait-idle %s: want a positive duration", *waitIdle)
	}
	transport, err := clientTransport(*caFile)
	if err != nil {
		fmt.Fprintf(stderr, "tally submit: %v\n", err)
		return exitFailed
	}
	var token string
	if *tokenFile != "" {
		if token, err = readTokenFile(*tokenFile, stderr); err != nil {
			fmt.Fprintf(stderr, "tally submit: %v\n", err)
			return exitFailed
		}
	}
	client := &http.Client{Transport: transport, Timeout: 60 * time.Second}
	var seedFor func(station string) ([]byte, error)
	switch {
	case *sealFile != "":
		seed, err := readSeedFile(*sealFile, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "tally submit: %v\n", err)
			return exitFailed
		}
		seedFor = func(string) ([]byte, error) { return seed, nil }
	case *sealDir != "":
		if st, err := os.Stat(*sealDir); err != nil || !st.IsDir() {
			fmt.Fprintf(stderr, "tally submit: --seal-dir %s is not a directory\n", *sealDir)
			return exitFailed
		}
		seedFor = seedDirSource(*sealDir, stderr)
	}
	files := fs.Args()
	if len(files) == 0 {
		files = []string{"-"}
	}
	code := exitOK
	for _, f := range files {
		var body []byte
		var err error
		if f == "-" {
			body, err = io.ReadAll(os.Stdin)
		} else {
			body, err = os.ReadFile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "tally submit: %v\n", err)
			return exitFailed
		}
		var signers []string
		if seedFor != nil {
			if body, signers, err = signBody(body, seedFor); err != nil {
				printSignError(f, err, stderr)
				code = exitFailed
				continue
			}
		}
		c, ans := submitOne(client, base, token, f, body, *retryFor, stdout, stderr)
		if c == exitOK && ans != nil && !*noWait {
			c = waitOutcomes(client, base, f, body, ans, *waitIdle, stdout, stderr)
		}
		if c != exitOK {
			code = c
			if keys := slices.Compact(slices.Sorted(slices.Values(signers))); len(keys) == 1 {
				fmt.Fprintf(stderr, "%s: signed with the key whose seal is %s\n", f, keys[0])
			} else if len(keys) > 1 {
				fmt.Fprintf(stderr, "%s: signed with %d station keys\n", f, len(keys))
			}
		}
	}
	return code
}

// printSignError says why a file was not signed (and so not sent).
func printSignError(name string, err error, stderr io.Writer) {
	var bad *tally.ValidationError
	if errors.As(err, &bad) {
		fmt.Fprintf(stderr, "%s: not signed, nothing sent; %s:\n", name, plural(len(bad.Violations), "problem", "problems"))
		for _, v := range bad.Violations {
			fmt.Fprintf(stderr, "  minutes[%d] %s: %s (rule %s)\n", v.Index, v.Field, v.Message, v.Rule)
		}
		return
	}
	fmt.Fprintf(stderr, "tally submit: %s: not signed, nothing sent: %v\n", name, err)
}

// submitOne sends one file's body, retrying what was not stored, and
// prints the gateway's answer; on 202 it returns the answer too.
func submitOne(client *http.Client, serverURL, token, name string, body []byte, retryFor time.Duration, stdout, stderr io.Writer) (int, *server.SubmitResponse) {
	url := serverURL + "/api/v1/minutes"
	deadline := time.Now().Add(retryFor)
	for attempt := 1; ; attempt++ {
		code, respBody, retryAfter, err := post(client, url, token, body)
		retry := err != nil || code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests
		if !retry {
			return report(name, code, respBody, stdout, stderr)
		}
		if time.Now().After(deadline) {
			if err != nil {
				fmt.Fprintf(stderr, "tally submit: %s: %v\n", name, err)
			} else {
				fmt.Fprintf(stderr, "tally submit: %s: server answered %d: %s\n", name, code, errorText(respBody))
			}
			return exitFailed, nil
		}
		// Exponential backoff with full jitter, at least what the server
		// asked, and then up to half as much again: stations told the
		// same Retry-After must not all come back in the same instant.
		wait := time.Duration(rand.Int64N(int64(min(100*time.Millisecond<<min(attempt, 6), 5*time.Second)) + 1))
		if retryAfter > 0 {
			wait = max(wait, retryAfter+time.Duration(rand.Int64N(int64(retryAfter)/2+1)))
		}
		fmt.Fprintf(stderr, "tally submit: %s: not stored yet (%s), retrying in %s\n", name, describe(code, err), wait.Round(time.Millisecond))
		time.Sleep(wait)
	}
}

func describe(code int, err error) string {
	if err != nil {
		return err.Error()
	}
	return strconv.Itoa(code) + " " + http.StatusText(code)
}

func post(client *http.Client, url, token string, body []byte) (int, []byte, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, 0, err
	}
	var ra time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		ra = time.Duration(s) * time.Second
	}
	return resp.StatusCode, b, ra, nil
}

// report prints the gateway's answer and returns the exit code and, for a
// 202, the answer.
func report(name string, code int, body []byte, stdout, stderr io.Writer) (int, *server.SubmitResponse) {
	switch code {
	case http.StatusAccepted:
		var ok server.SubmitResponse
		if err := json.Unmarshal(body, &ok); err != nil {
			fmt.Fprintf(stderr, "tally submit: %s: bad answer: %v\n", name, err)
			return exitFailed, nil
		}
		fmt.Fprintf(stdout, "%s: accepted %s, seq %d", name, plural(ok.Accepted, "minutes object", "minutes objects"), ok.Seq)
		if len(ok.Positions) > 0 {
			ps := slices.Sorted(maps.Keys(ok.Positions))
			fmt.Fprint(stdout, " (positions")
			for _, p := range ps {
				fmt.Fprintf(stdout, " %d:%d", p, ok.Positions[p])
			}
			fmt.Fprint(stdout, ")")
		}
		if ok.Duplicates > 0 {
			fmt.Fprintf(stdout, " (%d already stored)", ok.Duplicates)
		}
		fmt.Fprintln(stdout)
		return exitOK, &ok
	case http.StatusUnprocessableEntity:
		var bad server.ErrorsResponse
		if err := json.Unmarshal(body, &bad); err != nil {
			fmt.Fprintf(stderr, "tally submit: %s: rejected: %s\n", name, body)
			return exitFailed, nil
		}
		fmt.Fprintf(stderr, "%s: rejected, nothing stored; %s:\n", name, plural(len(bad.Errors), "problem", "problems"))
		for _, v := range bad.Errors {
			fmt.Fprintf(stderr, "  minutes[%d] %s: %s (rule %s)\n", v.Index, v.Field, v.Message, v.Rule)
		}
		return exitFailed, nil
	case http.StatusUnauthorized:
		fmt.Fprintf(stderr, "tally submit: %s: refused (401): %s\n", name, errorText(body))
		fmt.Fprintf(stderr, "tally submit: give the server's operator token with --token-file, or seal the minutes (--seal, --seal-dir)\n")
		return exitFailed, nil
	default:
		fmt.Fprintf(stderr, "tally submit: %s: server answered %d: %s\n", name, code, errorText(body))
		return exitFailed, nil
	}
}

// plural formats n with the singular or the plural noun.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// errorText extracts {"error": ...} from an answer, or returns it as is.
func errorText(body []byte) string {
	var e struct{ Error string }
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return strings.TrimSpace(string(body))
}
