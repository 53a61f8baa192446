package export_test

// The exports of CONTRACT §8 over real HTTP against a running server (an
// embedded NATS server with JetStream on a temporary directory, real Pebble
// projections) loaded with the Long Biên example.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyvn/tally/server"
	"github.com/tallyvn/tally/tally"
)

const exampleDir = "../examples/longbien"

type testServer struct {
	t      *testing.T
	e      *tally.Election
	url    string
	client *http.Client
	lines  []string // the example's minutes, one JSON object a line
	sent   int      // lines submitted so far
}

// submitted returns how many of the example's lines were submitted.
func (ts *testServer) submitted() int { return ts.sent }

// startServer starts a server for the Long Biên election on a fresh data
// directory; it stops when the test ends.
func startServer(t *testing.T) *testServer {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(exampleDir, "election.json"))
	if err != nil {
		t.Fatal(err)
	}
	minutes, err := os.ReadFile(filepath.Join(exampleDir, "minutes.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	return startServerWith(t, raw, minutes)
}

// startServerWith starts a server for the election file raw, with minutes
// (NDJSON) ready to submit.
func startServerWith(t *testing.T, raw, minutes []byte) *testServer {
	t.Helper()
	e, err := tally.Parse(raw)
	if err != nil {
		t.Fatalf("example election: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Config{Election: e, DataDir: t.TempDir(), HTTP: server.HTTPConfig{Addr: "127.0.0.1:0"}, NATS: server.NATSConfig{Listen: "none"}})
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	ts := &testServer{t: t, e: e, url: "http://" + srv.Addr(), client: &http.Client{Timeout: 60 * time.Second}}
	t.Cleanup(func() {
		ts.client.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v after cancel", err)
		}
	})
	sc := bufio.NewScanner(bytes.NewReader(minutes))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			ts.lines = append(ts.lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ts
}

// get GETs path and returns the status code, the header and the body.
func (ts *testServer) get(path string) (int, http.Header, []byte) {
	ts.t.Helper()
	resp, err := ts.client.Get(ts.url + path)
	if err != nil {
		ts.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, resp.Header, body
}

// ok GETs path, requires 200 and the content type, and returns the body.
func (ts *testServer) ok(path, contentType string) []byte {
	ts.t.Helper()
	code, h, body := ts.get(path)
	if code != http.StatusOK {
		ts.t.Fatalf("GET %s: %d, want 200: %s", path, code, body)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, contentType) {
		ts.t.Fatalf("GET %s: Content-Type %q, want %s", path, ct, contentType)
	}
	return body
}

// json GETs path and decodes the JSON answer into v.
func (ts *testServer) json(path string, v any) {
	ts.t.Helper()
	if err := json.Unmarshal(ts.ok(path, "application/json"), v); err != nil {
		ts.t.Fatalf("GET %s: %v", path, err)
	}
}

// submit posts the example's minutes lines [from, to) and waits until the
// fold applied them.
func (ts *testServer) submit(from, to int) {
	ts.t.Helper()
	for i := from; i < to; i += 100 {
		body := strings.Join(ts.lines[i:min(i+100, to)], "\n") + "\n"
		resp, err := ts.client.Post(ts.url+"/api/v1/minutes", "application/x-ndjson", strings.NewReader(body))
		if err != nil {
			ts.t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			ts.t.Fatalf("POST minutes: %d: %s", resp.StatusCode, raw)
		}
		var a struct{ Seq uint64 }
		if err := json.Unmarshal(raw, &a); err != nil {
			ts.t.Fatal(err)
		}
		ts.waitApplied(a.Seq)
	}
	ts.sent = max(ts.sent, to)
}

// waitApplied polls the status until applied_seq reaches seq, failing only
// when the fold makes no progress for 20 s.
func (ts *testServer) waitApplied(seq uint64) {
	ts.t.Helper()
	last, since := uint64(0), time.Now()
	for {
		var st struct {
			AppliedSeq uint64 `json:"applied_seq"`
		}
		ts.json("/api/v1/status", &st)
		if st.AppliedSeq >= seq {
			return
		}
		if st.AppliedSeq != last {
			last, since = st.AppliedSeq, time.Now()
		}
		if time.Since(since) > 20*time.Second {
			ts.t.Fatalf("applied_seq stuck at %d below %d for 20 s", st.AppliedSeq, seq)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type areaResult struct {
	Contest           string           `json:"contest"`
	Area              string           `json:"area"`
	Level             string           `json:"level"`
	Name              string           `json:"name"`
	StationsExpected  int64            `json:"stations_expected"`
	StationsReporting int64            `json:"stations_reporting"`
	StationsFinal     int64            `json:"stations_final"`
	Registered        int64            `json:"registered"`
	Voted             int64            `json:"voted"`
	Issued            int64            `json:"issued"`
	Received          int64            `json:"received"`
	Valid             int64            `json:"valid"`
	Invalid           int64            `json:"invalid"`
	Votes             map[string]int64 `json:"votes"`
	AppliedSeq        uint64           `json:"applied_seq"`
}

type unitResult struct {
	Contest           string           `json:"contest"`
	Unit              string           `json:"unit"`
	Level             string           `json:"level"`
	Name              string           `json:"name"`
	StationsExpected  int64            `json:"stations_expected"`
	StationsReporting int64            `json:"stations_reporting"`
	StationsFinal     int64            `json:"stations_final"`
	Registered        int64            `json:"registered"`
	Voted             int64            `json:"voted"`
	Issued            int64            `json:"issued"`
	Received          int64            `json:"received"`
	Valid             int64            `json:"valid"`
	Invalid           int64            `json:"invalid"`
	Votes             map[string]int64 `json:"votes"`
	Seats             int              `json:"seats"`
	Candidates        []struct {
		ID    string `json:"id"`
		Name  string `json:"name"`
		Born  string `json:"born"`
		Votes int64  `json:"votes"`
	} `json:"candidates"`
	Winners    []string `json:"winners"`
	Status     string   `json:"status"`
	AppliedSeq uint64   `json:"applied_seq"`
}

func (ts *testServer) area(contest, area string) areaResult {
	ts.t.Helper()
	var r areaResult
	ts.json("/api/v1/contests/"+contest+"/areas/"+area, &r)
	return r
}

func (ts *testServer) unit(contest, unit string) unitResult {
	ts.t.Helper()
	var r unitResult
	ts.json("/api/v1/contests/"+contest+"/units/"+unit, &r)
	return r
}

// TestExportsUnknownIDsAre404: every export answers an unknown id with 404
// and a JSON error naming it, and a CSV without a contest with 400.
func TestExportsUnknownIDsAre404(t *testing.T) {
	ts := startServer(t)
	for _, path := range []string{
		"/api/v1/export/results.csv?contest=NOPE",
		"/api/v1/contests/NOPE/units/QH-HN-02/minutes.pdf",
		"/api/v1/contests/QH/units/NOPE/minutes.pdf",
		"/api/v1/contests/QH/areas/NOPE/minutes.pdf",
		"/api/v1/contests/NOPE/areas/LB/minutes.pdf",
	} {
		code, h, body := ts.get(path)
		var e struct{ Error string }
		if code != http.StatusNotFound || !strings.HasPrefix(h.Get("Content-Type"), "application/json") || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, "NOPE") {
			t.Errorf("GET %s: %d %s %s; want 404 with a JSON error naming NOPE", path, code, h.Get("Content-Type"), body)
		}
	}
	code, _, body := ts.get("/api/v1/export/results.csv")
	if code != http.StatusBadRequest || !bytes.Contains(body, []byte("contest")) {
		t.Errorf("CSV without contest: %d %s; want 400 naming contest", code, body)
	}
}
