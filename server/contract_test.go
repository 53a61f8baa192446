package server_test

// Contract tests (CONTRACT §3–§5) over real HTTP against a running server:
// an embedded NATS server with JetStream on a temporary directory, real
// Pebble projections, no mocks. Each top-level test starts its own server
// (startup takes a few tens of milliseconds) and runs its subtests in order
// against it, so later subtests see the state earlier ones left.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/server"
	"github.com/tallyvn/tally/tally"
)

// electionJSON is one province, one district, three wards and six stations.
// Contest QH (national) has one unit over the whole district; contest
// HDND-LB (district People's Council) has unit Q-01 over Bồ Đề and Q-02 over
// Ngọc Thụy, so Thạch Bàn's stations do not vote in it.
//
// Q-01-2 and Q-01-3 share a birth date (a tie is possible). Q-02-1's name is
// written in decomposed form (NFD: combining marks), which must come back
// unchanged, not normalized.
const electionJSON = `{
  "id": "hn-2021",
  "name": "Bầu cử đại biểu Quốc hội khóa XV và đại biểu HĐND các cấp nhiệm kỳ 2021-2026",
  "date": "2021-05-23",
  "areas": [
    {"id": "HN", "name": "Thành phố Hà Nội", "level": "province"},
    {"id": "LB", "name": "Quận Long Biên", "level": "district", "parent": "HN"},
    {"id": "LB-BD", "name": "Phường Bồ Đề", "level": "ward", "parent": "LB"},
    {"id": "LB-NT", "name": "Phường Ngọc Thụy", "level": "ward", "parent": "LB"},
    {"id": "LB-TB", "name": "Phường Thạch Bàn", "level": "ward", "parent": "LB"}
  ],
  "stations": [
    {"id": "LB-BD-01", "name": "Khu vực bỏ phiếu số 1 phường Bồ Đề", "ward": "LB-BD", "registered": 1000},
    {"id": "LB-BD-02", "name": "Khu vực bỏ phiếu số 2 phường Bồ Đề", "ward": "LB-BD", "registered": 800},
    {"id": "LB-NT-01", "name": "Khu vực bỏ phiếu số 1 phường Ngọc Thụy", "ward": "LB-NT", "registered": 900},
    {"id": "LB-NT-02", "name": "Khu vực bỏ phiếu số 2 phường Ngọc Thụy", "ward": "LB-NT", "registered": 700},
    {"id": "LB-TB-01", "name": "Khu vực bỏ phiếu số 1 phường Thạch Bàn", "ward": "LB-TB", "registered": 600},
    {"id": "LB-TB-02", "name": "Khu vực bỏ phiếu số 2 phường Thạch Bàn", "ward": "LB-TB", "registered": 500}
  ],
  "contests": [
    {
      "id": "QH", "name": "Đại biểu Quốc hội khóa XV", "level": "national",
      "units": [
        {
          "id": "QH-HN-03", "name": "Đơn vị bầu cử số 3", "seats": 3,
          "areas": ["LB"], "stations": [],
          "candidates": [
            {"id": "QH-HN-03-1", "name": "Nguyễn Văn An", "born": "1968-04-12"},
            {"id": "QH-HN-03-2", "name": "Trần Thị Bích Ngọc", "born": "1975-09-30"},
            {"id": "QH-HN-03-3", "name": "Lê Hoàng Đức", "born": "1960-01-15"},
            {"id": "QH-HN-03-4", "name": "Phạm Thị Thu Hương", "born": "1982-11-02"},
            {"id": "QH-HN-03-5", "name": "Đỗ Quang Vinh", "born": "1971-06-21"}
          ]
        }
      ]
    },
    {
      "id": "HDND-LB", "name": "Đại biểu HĐND quận Long Biên nhiệm kỳ 2021-2026", "level": "district",
      "units": [
        {
          "id": "Q-01", "name": "Đơn vị bầu cử số 1 (phường Bồ Đề)", "seats": 2,
          "areas": ["LB-BD"], "stations": [],
          "candidates": [
            {"id": "Q-01-1", "name": "Ngô Thị Mai", "born": "1970-01-01"},
            {"id": "Q-01-2", "name": "Vũ Đình Khoa", "born": "1965-05-05"},
            {"id": "Q-01-3", "name": "Hoàng Văn Tú", "born": "1965-05-05"}
          ]
        },
        {
          "id": "Q-02", "name": "Đơn vị bầu cử số 2 (phường Ngọc Thụy)", "seats": 3,
          "areas": ["LB-NT"], "stations": [],
          "candidates": [
            {"id": "Q-02-1", "name": "Nguye\u0302\u0303n Thi\u0323 Hoa", "born": "1980-02-02"},
            {"id": "Q-02-2", "name": "Lý Văn Phúc", "born": "1972-07-07"},
            {"id": "Q-02-3", "name": "Đinh Thị Thủy", "born": "1990-09-09"},
            {"id": "Q-02-4", "name": "Trịnh Quốc Bảo", "born": "1985-03-03"}
          ]
        }
      ]
    }
  ]
}`

const electionID = "hn-2021"

func parseElection(t *testing.T) *tally.Election {
	t.Helper()
	e, err := tally.Parse([]byte(electionJSON))
	if err != nil {
		t.Fatalf("fixture election: %v", err)
	}
	return e
}

// ---------------------------------------------------------------------------
// The running server.

type testServer struct {
	t      *testing.T
	e      *tally.Election
	srv    *server.Server
	url    string
	client *http.Client
	nats   broker.Identity // admitted to publish any station's minutes over NATS
}

// startServer starts a server on a fresh data directory; configure, if not
// nil, adjusts the config first. The server stops when the test ends.
func startServer(t *testing.T, configure func(*server.Config)) *testServer {
	t.Helper()
	e := parseElection(t)
	// An identity the operator admits to NATS (the listener never admits
	// anonymous clients), for the tests that publish straight to NATS.
	op, err := broker.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{Election: e, DataDir: t.TempDir(), HTTP: server.HTTPConfig{Addr: "127.0.0.1:0"},
		NATS: server.NATSConfig{Listen: "none", Users: []broker.Authorized{{Key: op.Public}}}}
	if configure != nil {
		configure(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	ts := &testServer{t: t, e: e, srv: srv, url: "http://" + srv.Addr(), client: &http.Client{Timeout: 10 * time.Second}, nats: op}
	t.Cleanup(func() {
		ts.client.CloseIdleConnections()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Run did not return 20 s after cancel")
		}
	})
	return ts
}

// on returns ts reporting failures to t (a subtest).
func (ts *testServer) on(t *testing.T) *testServer {
	c := *ts
	c.t = t
	return &c
}

// do sends a request and returns the status code, the header and the body.
func (ts *testServer) do(method, path, contentType string, body []byte) (int, http.Header, []byte) {
	ts.t.Helper()
	req, err := http.NewRequest(method, ts.url+path, bytes.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, raw
}

// get GETs path, requires code and decodes the JSON answer into v (if not
// nil). It returns the raw body.
func (ts *testServer) get(path string, code int, v any) []byte {
	ts.t.Helper()
	got, h, raw := ts.do(http.MethodGet, path, "", nil)
	if got != code {
		ts.t.Fatalf("GET %s: status %d, want %d; body %s", path, got, code, raw)
	}
	requireJSON(ts.t, "GET "+path, h, raw)
	if v != nil {
		if err := json.Unmarshal(raw, v); err != nil {
			ts.t.Fatalf("GET %s: decode %s: %v", path, raw, err)
		}
	}
	return raw
}

// post POSTs a submission body and returns the status code and raw answer.
func (ts *testServer) post(body string) (int, []byte) {
	ts.t.Helper()
	code, h, raw := ts.do(http.MethodPost, "/api/v1/minutes", "application/json", []byte(body))
	requireJSON(ts.t, "POST /api/v1/minutes", h, raw)
	return code, raw
}

type submitAnswer struct {
	Accepted int    `json:"accepted"`
	Seq      uint64 `json:"seq"`
}

// submit POSTs body, requires 202 and waits until the fold applied it.
func (ts *testServer) submit(body string) submitAnswer {
	ts.t.Helper()
	code, raw := ts.post(body)
	if code != http.StatusAccepted {
		ts.t.Fatalf("POST /api/v1/minutes: status %d, want 202; body %s", code, raw)
	}
	requireKeys(ts.t, "202 answer", raw, "accepted", "seq")
	var a submitAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		ts.t.Fatalf("decode 202 answer %s: %v", raw, err)
	}
	ts.waitApplied(a.Seq)
	return a
}

type statusAnswer struct {
	Election   string `json:"election"`
	StreamSeq  uint64 `json:"stream_seq"`
	AppliedSeq uint64 `json:"applied_seq"`
	Applied    uint64 `json:"applied"`
	Rejected   uint64 `json:"rejected"`
	Duplicates uint64 `json:"duplicates"`
}

func (ts *testServer) status() statusAnswer {
	ts.t.Helper()
	var st statusAnswer
	raw := ts.get("/api/v1/status", http.StatusOK, &st)
	requireKeys(ts.t, "status", raw, "election", "stream_seq", "applied_seq", "applied", "rejected", "duplicates")
	return st
}

// waitApplied polls GET /api/v1/status until applied_seq ≥ seq, the way a
// client is told to (CONTRACT §5).
func (ts *testServer) waitApplied(seq uint64) {
	ts.t.Helper()
	// Bounded by progress: only an applied_seq that stands still for two
	// minutes fails (a slow, shared machine makes this slower, not red).
	const stall = 2 * time.Minute
	var last uint64
	moved := time.Now()
	for {
		st := ts.status()
		if st.AppliedSeq >= seq {
			return
		}
		if st.AppliedSeq != last {
			last, moved = st.AppliedSeq, time.Now()
		}
		if time.Since(moved) > stall {
			ts.t.Fatalf("applied_seq %d still below %d and did not move for %s", st.AppliedSeq, seq, stall)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func requireJSON(t *testing.T, what string, h http.Header, raw []byte) {
	t.Helper()
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	if !json.Valid(raw) {
		t.Fatalf("%s: body is not JSON: %q", what, raw)
	}
}

// requireKeys fails unless raw is a JSON object holding every key.
func requireKeys(t *testing.T, what string, raw []byte, keys ...string) {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatalf("%s: not a JSON object: %s", what, raw)
	}
	for _, k := range keys {
		if _, ok := obj[k]; !ok {
			t.Errorf("%s: key %q missing in %s", what, k, raw)
		}
	}
}

// requireErrorJSON fails unless raw is {"error": "non-empty text"}.
func requireErrorJSON(t *testing.T, what string, raw []byte) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(raw, &e); err != nil || e.Error == "" {
		t.Errorf("%s: want a JSON error {\"error\": ...}, got %s", what, raw)
	}
}

// ---------------------------------------------------------------------------
// Minutes.

// M is a minutes object as a station writes it.
type M map[string]any

// counts are registered, voted, issued, received, valid, invalid.
type counts [6]int64

var countNames = [6]string{"registered", "voted", "issued", "received", "valid", "invalid"}

func minutes(contest, station string, version int, status string, c counts, votes map[string]int64) M {
	m := M{"election": electionID, "contest": contest, "station": station, "version": version, "status": status}
	for i, n := range countNames {
		m[n] = c[i]
	}
	m["votes"] = votes
	return m
}

// withdrawn minutes carry no counts.
func withdrawn(contest, station string, version int, reason string) M {
	return M{"election": electionID, "contest": contest, "station": station, "version": version, "status": "withdrawn", "reason": reason}
}

// del, as a value in M.with, removes the key.
type deleteKey struct{}

var del deleteKey

// with returns a copy of m with the given key, value pairs set.
func (m M) with(kv ...any) M {
	out := make(M, len(m)+len(kv)/2)
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		if _, ok := kv[i+1].(deleteKey); ok {
			delete(out, k)
			continue
		}
		out[k] = kv[i+1]
	}
	return out
}

func (m M) json() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(map[string]any(m)); err != nil {
		panic(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func object(m M) string { return string(m.json()) }

func array(ms ...M) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = string(m.json())
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func ndjson(ms ...M) string {
	var b strings.Builder
	for _, m := range ms {
		b.Write(m.json())
		b.WriteByte('\n')
	}
	return b.String()
}

// qhVotes are the votes for QH-HN-03-1 … QH-HN-03-5.
func qhVotes(v ...int64) map[string]int64 { return candVotes("QH-HN-03-", v) }

// q1Votes are the votes for Q-01-1 … Q-01-3, q2Votes for Q-02-1 … Q-02-4.
func q1Votes(v ...int64) map[string]int64 { return candVotes("Q-01-", v) }
func q2Votes(v ...int64) map[string]int64 { return candVotes("Q-02-", v) }

func candVotes(prefix string, v []int64) map[string]int64 {
	out := make(map[string]int64, len(v))
	for i, n := range v {
		out[fmt.Sprintf("%s%d", prefix, i+1)] = n
	}
	return out
}

// The QH final minutes of the six stations. Summed: registered 4500, voted
// 4000, issued 4000, received 4000, valid 3930, invalid 70; votes 2500,
// 2290, 1770, 1150, 600.
var qhFinal = map[string]M{
	"LB-BD-01": minutes("QH", "LB-BD-01", 1, "final", counts{1000, 900, 900, 900, 880, 20}, qhVotes(700, 600, 500, 300, 200)),
	"LB-BD-02": minutes("QH", "LB-BD-02", 1, "final", counts{800, 700, 700, 700, 690, 10}, qhVotes(400, 500, 300, 200, 100)),
	"LB-NT-01": minutes("QH", "LB-NT-01", 1, "final", counts{900, 850, 850, 850, 840, 10}, qhVotes(500, 450, 420, 100, 90)),
	"LB-NT-02": minutes("QH", "LB-NT-02", 2, "final", counts{700, 600, 600, 600, 590, 10}, qhVotes(350, 300, 200, 250, 100)),
	"LB-TB-01": minutes("QH", "LB-TB-01", 1, "final", counts{600, 500, 500, 500, 490, 10}, qhVotes(300, 200, 250, 100, 50)),
	"LB-TB-02": minutes("QH", "LB-TB-02", 1, "final", counts{500, 450, 450, 450, 440, 10}, qhVotes(250, 240, 100, 200, 60)),
}

// ---------------------------------------------------------------------------
// Results as the contract spells them.

type areaResult struct {
	Contest           string `json:"contest"`
	Area              string `json:"area"`
	Level             string `json:"level"`
	Name              string `json:"name"`
	StationsExpected  int64  `json:"stations_expected"`
	StationsReporting int64  `json:"stations_reporting"`
	StationsFinal     int64  `json:"stations_final"`
	Registered        int64  `json:"registered"`
	Voted             int64  `json:"voted"`
	Issued            int64  `json:"issued"`
	Received          int64  `json:"received"`
	Valid             int64  `json:"valid"`
	Invalid           int64  `json:"invalid"`
	// Votes is nil when the key is absent: below the contest's council
	// level (CONTRACT §4 v2).
	Votes      map[string]int64 `json:"votes"`
	AppliedSeq uint64           `json:"applied_seq"`
}

// unitsSummary is an area result's units (CONTRACT §4 v2).
type unitsSummary struct {
	Total              int `json:"total"`
	Counting           int `json:"counting"`
	Decided            int `json:"decided"`
	Tie                int `json:"tie"`
	AdditionalElection int `json:"additional_election"`
	ReElection         int `json:"re_election"`
	Seats              int `json:"seats"`
	Winners            int `json:"winners"`
}

var areaKeys = []string{"contest", "area", "level", "name", "stations_expected", "stations_reporting", "stations_final",
	"registered", "voted", "issued", "received", "valid", "invalid", "units", "applied_seq"}

type candidateResult struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Born  string `json:"born"`
	Votes int64  `json:"votes"`
}

type unitResult struct {
	Contest           string            `json:"contest"`
	Unit              string            `json:"unit"`
	Level             string            `json:"level"`
	Name              string            `json:"name"`
	StationsExpected  int64             `json:"stations_expected"`
	StationsReporting int64             `json:"stations_reporting"`
	StationsFinal     int64             `json:"stations_final"`
	Registered        int64             `json:"registered"`
	Voted             int64             `json:"voted"`
	Issued            int64             `json:"issued"`
	Received          int64             `json:"received"`
	Valid             int64             `json:"valid"`
	Invalid           int64             `json:"invalid"`
	Votes             map[string]int64  `json:"votes"`
	Seats             int               `json:"seats"`
	Candidates        []candidateResult `json:"candidates"`
	Winners           []string          `json:"winners"`
	Status            string            `json:"status"`
	AppliedSeq        uint64            `json:"applied_seq"`
}

var unitKeys = []string{"contest", "unit", "level", "name", "stations_expected", "stations_reporting", "stations_final",
	"registered", "voted", "issued", "received", "valid", "invalid", "votes", "seats", "candidates", "winners", "status", "round", "applied_seq"}

func (ts *testServer) area(contest, area string) areaResult {
	ts.t.Helper()
	var r areaResult
	raw := ts.get("/api/v1/contests/"+contest+"/areas/"+area, http.StatusOK, &r)
	requireKeys(ts.t, "area result", raw, areaKeys...)
	return r
}

// areaUnits returns the units summary of an area result.
func (ts *testServer) areaUnits(contest, area string) unitsSummary {
	ts.t.Helper()
	var r struct {
		Units unitsSummary `json:"units"`
	}
	ts.get("/api/v1/contests/"+contest+"/areas/"+area, http.StatusOK, &r)
	return r.Units
}

func (ts *testServer) unit(contest, unit string) unitResult {
	ts.t.Helper()
	var r unitResult
	raw := ts.get("/api/v1/contests/"+contest+"/units/"+unit, http.StatusOK, &r)
	requireKeys(ts.t, "unit result", raw, unitKeys...)
	return r
}

type historyEntry struct {
	Seq     uint64 `json:"seq"`
	Version int64  `json:"version"`
	Status  string `json:"status"`
	Outcome string `json:"outcome"`
}

type stationAnswer struct {
	Current json.RawMessage `json:"current"`
	History []historyEntry  `json:"history"`
}

func (ts *testServer) station(contest, station string) (stationAnswer, []byte) {
	ts.t.Helper()
	var v stationAnswer
	raw := ts.get("/api/v1/contests/"+contest+"/stations/"+station, http.StatusOK, &v)
	requireKeys(ts.t, "station", raw, "current", "history")
	return v, raw
}

type violation struct {
	Index   int    `json:"index"`
	Field   string `json:"field"`
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

type rejection struct {
	Seq            uint64      `json:"seq"`
	Subject        string      `json:"subject"`
	SubjectStation string      `json:"subject_station"`
	Station        string      `json:"station"`
	Contest        string      `json:"contest"`
	Version        int64       `json:"version"`
	Reason         string      `json:"reason"`
	Errors         []violation `json:"errors"`
}

func (ts *testServer) rejections(query string) []rejection {
	ts.t.Helper()
	var out []rejection
	raw := ts.get("/api/v1/rejections"+query, http.StatusOK, &out)
	if out == nil {
		ts.t.Fatalf("rejections%s: want a JSON array, got %s", query, raw)
	}
	return out
}

func rules(vs []violation) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Rule
	}
	return out
}

func mustEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// ---------------------------------------------------------------------------
// 1. Submissions.

func TestSubmitAcceptsObjectArrayAndNDJSON(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	// The stream is empty: the seq of the last minutes is the number stored.
	tests := []struct {
		name    string
		body    string
		want    submitAnswer
		applied uint64
	}{
		{"object", object(qhFinal["LB-BD-01"]), submitAnswer{1, 1}, 1},
		{"array", array(qhFinal["LB-BD-02"], qhFinal["LB-NT-01"]), submitAnswer{2, 3}, 3},
		{"ndjson", ndjson(qhFinal["LB-NT-02"], qhFinal["LB-TB-01"], qhFinal["LB-TB-02"]), submitAnswer{3, 6}, 6},
		{"ndjson with CRLF and blank lines", "\r\n" + strings.ReplaceAll(ndjson(
			minutes("HDND-LB", "LB-BD-01", 1, "partial", counts{1000, 300, 300, 300, 290, 10}, q1Votes(100)),
			minutes("HDND-LB", "LB-NT-01", 1, "partial", counts{900, 200, 200, 200, 200, 0}, q2Votes(50, 40)),
		), "\n", "\r\n\r\n"), submitAnswer{2, 8}, 8},
		{"array with whitespace around", " \n\t" + array(minutes("HDND-LB", "LB-BD-02", 1, "partial", counts{800, 10, 10, 10, 10, 0}, nil)) + "\n ", submitAnswer{1, 9}, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := ts.on(t)
			got := ts.submit(tt.body)
			mustEqual(t, "202 answer", got, tt.want)
			st := ts.status()
			mustEqual(t, "status", st, statusAnswer{Election: electionID, StreamSeq: tt.applied, AppliedSeq: tt.applied, Applied: tt.applied})
		})
	}
	t.Run("identical resubmission is stored once", func(t *testing.T) {
		ts := ts.on(t)
		before := ts.status()
		district := ts.area("QH", "LB")
		unit := ts.unit("QH", "QH-HN-03")
		for _, body := range []string{tests[2].body, tests[1].body, tests[0].body} {
			code, raw := ts.post(body)
			if code != http.StatusAccepted {
				t.Fatalf("resubmission: status %d, want 202; body %s", code, raw)
			}
			var a struct {
				submitAnswer
				Duplicates *int `json:"duplicates"`
			}
			if err := json.Unmarshal(raw, &a); err != nil {
				t.Fatal(err)
			}
			// The minutes are the stream's already: seq is the position of
			// the last one, which a client can wait for like any other.
			if a.Seq == 0 || a.Seq > before.StreamSeq {
				t.Errorf("resubmission seq %d, want the original position (1..%d)", a.Seq, before.StreamSeq)
			}
			if a.Duplicates != nil && *a.Duplicates != a.Accepted {
				t.Errorf("resubmission: duplicates %d, want %d (every minutes was already stored)", *a.Duplicates, a.Accepted)
			}
			ts.waitApplied(a.Seq)
		}
		mustEqual(t, "status after resubmission", ts.status(), before)
		mustEqual(t, "district result after resubmission", ts.area("QH", "LB"), district)
		mustEqual(t, "unit result after resubmission", ts.unit("QH", "QH-HN-03"), unit)
	})
	t.Run("same minutes reformatted is the same minutes", func(t *testing.T) {
		ts := ts.on(t)
		before := ts.status()
		// Different key order, spacing and escapes: the same content.
		body := `{ "votes": {"QH-HN-03-5": 200, "QH-HN-03-4": 300, "QH-HN-03-3": 500, "QH-HN-03-2": 600, "QH-HN-03-1": 700},
		  "status": "final", "version": 1, "station": "LB-BD-01", "contest": "QH", "election": "hn\u002d2021",
		  "invalid": 20, "valid": 880, "received": 900, "issued": 900, "voted": 900, "registered": 1000 }`
		code, raw := ts.post(body)
		if code != http.StatusAccepted {
			t.Fatalf("status %d, want 202; body %s", code, raw)
		}
		mustEqual(t, "status", ts.status(), before)
	})
}

func TestSubmitMalformedIs400(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	valid := object(qhFinal["LB-BD-01"])
	tests := []struct{ name, body string }{
		{"empty body", ""},
		{"only whitespace", " \n\t\r\n"},
		{"truncated object", `{"election": "hn-2021", "contest": "QH"`},
		{"not JSON", `election=hn-2021&contest=QH`},
		{"trailing garbage after object", valid + ` xyz`},
		{"second NDJSON line broken", valid + "\n{\"election\": \n"},
		{"array with trailing garbage", "[" + valid + "] x"},
		{"unterminated array", "[" + valid},
		{"empty array", "[]"},
		{"number", "42"},
		{"string", `"minutes"`},
		{"null", "null"},
		{"true", "true"},
		{"array of numbers", "[1, 2]"},
		{"array holding an array", "[[" + valid + "]]"},
		{"array mixing object and string", "[" + valid + `, "x"]`},
		{"NDJSON line that is an array", valid + "\n[" + valid + "]\n"},
		{"NDJSON line that is null", valid + "\nnull\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := ts.on(t)
			code, raw := ts.post(tt.body)
			if code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; body %s", code, raw)
			}
			requireErrorJSON(t, "400 answer", raw)
		})
	}
	if st := ts.status(); st.StreamSeq != 0 {
		t.Errorf("stream_seq %d after malformed submissions, want 0", st.StreamSeq)
	}
}

func TestSubmitRuleViolationsAre422(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)

	// Every base minutes is valid; each case breaks one rule.
	qh := minutes("QH", "LB-BD-01", 1, "final", counts{100, 100, 100, 100, 95, 5}, qhVotes(90, 80, 70, 40, 0))
	qhPartial := minutes("QH", "LB-BD-01", 1, "partial", counts{100, 50, 50, 50, 50, 0}, qhVotes(10))
	council := minutes("HDND-LB", "LB-BD-01", 1, "final", counts{100, 100, 100, 100, 100, 0}, q1Votes(60, 50, 40))
	type raw = json.RawMessage
	type want struct{ field, rule string }
	tests := []struct {
		name string
		m    M
		want []want // exactly these violations, in any order
	}{
		{"unknown election", qh.with("election", "hcm-2021"), []want{{"election", tally.RuleUnknown}}},
		{"missing election", qh.with("election", del), []want{{"election", tally.RuleRequired}}},
		{"unknown contest", qh.with("contest", "HDND-HN"), []want{{"contest", tally.RuleUnknown}}},
		{"unknown station", qh.with("station", "LB-BD-99"), []want{{"station", tally.RuleUnknown}}},
		{"missing station", qh.with("station", del), []want{{"station", tally.RuleRequired}}},
		{"station not voting in contest", council.with("station", "LB-TB-01"), []want{{"station", tally.RuleNotVoting}}},
		{"candidate of another unit", council.with("votes", map[string]int64{"Q-01-1": 60, "Q-01-2": 50, "Q-01-3": 40, "Q-02-1": 1}), []want{{"votes.Q-02-1", tally.RuleCandidate}}},
		{"unknown candidate", qh.with("votes", map[string]int64{"QH-HN-03-1": 90, "QH-HN-03-2": 80, "QH-HN-03-3": 70, "QH-HN-03-4": 40, "QH-HN-03-5": 0, "QH-HN-03-9": 1}), []want{{"votes.QH-HN-03-9", tally.RuleCandidate}}},
		{"negative count", qh.with("valid", 101, "invalid", -1), []want{{"invalid", tally.RuleNonNegative}}},
		{"negative candidate votes", qh.with("votes", qhVotes(90, 80, 70, 40, -1)), []want{{"votes.QH-HN-03-5", tally.RuleNonNegative}}},
		{"non-integer count", qh.with("voted", raw("99.5")), []want{{"voted", tally.RuleInteger}}},
		{"integral count written as a float", qh.with("voted", raw("99.0")), []want{{"voted", tally.RuleInteger}}},
		{"count in exponent form", qh.with("voted", raw("1e2")), []want{{"voted", tally.RuleInteger}}},
		{"non-integer candidate votes", qhPartial.with("votes", map[string]any{"QH-HN-03-1": raw("1.5")}), []want{{"votes.QH-HN-03-1", tally.RuleInteger}}},
		{"string count", qh.with("voted", "100"), []want{{"voted", tally.RuleType}}},
		{"boolean count", qh.with("voted", true), []want{{"voted", tally.RuleType}}},
		// A count that could not be read takes part in no other rule: it
		// is not 0.
		{"string count used by other rules", qh.with("valid", "95"), []want{{"valid", tally.RuleType}}},
		{"non-integer count used by other rules", qh.with("registered", raw("100.5")), []want{{"registered", tally.RuleInteger}}},
		{"count above the maximum", qh.with("registered", int64(tally.MaxCount)+1), []want{{"registered", tally.RuleRange}}},
		{"missing required count", qh.with("issued", del), []want{{"issued", tally.RuleRequired}}},
		{"missing status", qh.with("status", del), []want{{"status", tally.RuleRequired}}},
		{"missing version", qh.with("version", del), []want{{"version", tally.RuleRequired}}},
		{"voted above registered", qh.with("voted", 101), []want{{"voted", tally.RuleVoted}}},
		{"issued above registered", qh.with("registered", 100, "voted", 100, "issued", 101), []want{{"issued", tally.RuleIssued}}},
		{"received above issued", qh.with("issued", 99), []want{{"received", tally.RuleReceived}}},
		{"valid plus invalid not received", qh.with("invalid", 4), []want{{"valid", tally.RuleValidInvalid}}},
		{"candidate votes above valid", qh.with("votes", qhVotes(96, 80, 70, 30, 0)), []want{{"votes.QH-HN-03-1", tally.RuleCandidateValid}}},
		{"sum of votes above valid times seats", qh.with("votes", qhVotes(95, 95, 95, 1, 0)), []want{{"votes", tally.RuleSumVotes}}},
		{"final missing a candidate", qh.with("votes", map[string]int64{"QH-HN-03-1": 90, "QH-HN-03-2": 80, "QH-HN-03-3": 70, "QH-HN-03-4": 40}), []want{{"votes", tally.RuleFinalComplete}}},
		{"final with no votes", qh.with("votes", del), []want{{"votes", tally.RuleFinalComplete}}},
		{"bad status", qh.with("status", "done"), []want{{"status", tally.RuleStatus}}},
		{"empty status", qh.with("status", ""), []want{{"status", tally.RuleStatus}}},
		{"version 0", qh.with("version", 0), []want{{"version", tally.RuleVersion}}},
		{"negative version", qh.with("version", -3), []want{{"version", tally.RuleVersion}}},
		{"unknown field", qh.with("signed_by", "Tổ trưởng"), []want{{"signed_by", tally.RuleUnknownField}}},
		{"withdrawn with counts", withdrawn("QH", "LB-BD-01", 2, "").with("voted", 5), []want{{"voted", tally.RuleWithdrawn}}},
		{"every broken rule named at once", qh.with("election", "x", "version", 0, "voted", 101, "invalid", 4, "extra", 1),
			[]want{{"election", tally.RuleUnknown}, {"version", tally.RuleVersion}, {"voted", tally.RuleVoted}, {"valid", tally.RuleValidInvalid}, {"extra", tally.RuleUnknownField}}},
	}
	sortWants := func(ws []want) {
		sort.Slice(ws, func(i, j int) bool { return ws[i].field+"\x00"+ws[i].rule < ws[j].field+"\x00"+ws[j].rule })
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := ts.on(t)
			// Alone, and second in an array behind valid minutes: the index
			// points at the culprit, and nothing of the request is stored.
			for _, c := range []struct {
				body  string
				index int
			}{
				{object(tt.m), 0},
				{array(qhPartial.with("station", "LB-NT-01"), tt.m), 1},
			} {
				code, body := ts.post(c.body)
				if code != http.StatusUnprocessableEntity {
					t.Fatalf("status %d, want 422; body %s", code, body)
				}
				var ans struct {
					Errors []violation `json:"errors"`
				}
				if err := json.Unmarshal(body, &ans); err != nil {
					t.Fatalf("decode 422 answer %s: %v", body, err)
				}
				var got []want
				for _, v := range ans.Errors {
					if v.Index != c.index {
						t.Errorf("violation %+v: index %d, want %d", v, v.Index, c.index)
					}
					if v.Message == "" {
						t.Errorf("violation %+v has no message", v)
					}
					got = append(got, want{v.Field, v.Rule})
				}
				wantSorted := slices.Clone(tt.want)
				sortWants(got)
				sortWants(wantSorted)
				mustEqual(t, "violations (field, rule) of "+c.body, got, wantSorted)
			}
		})
	}

	t.Run("valid minutes of the same set are accepted", func(t *testing.T) {
		ts := ts.on(t)
		// The bases themselves pass, so every case above broke exactly the
		// rule it names.
		for _, m := range []M{qh, qhPartial.with("station", "LB-NT-01"), council, withdrawn("QH", "LB-BD-02", 1, "")} {
			if code, body := ts.post(object(m)); code != http.StatusAccepted {
				t.Errorf("base minutes %s: status %d, want 202; body %s", m.json(), code, body)
			}
		}
	})

	t.Run("a rejected request stores nothing", func(t *testing.T) {
		ts := ts.on(t)
		before := ts.status()
		bad := qh.with("station", "LB-NT-02", "invalid", 4)
		good := qh.with("station", "LB-TB-01")
		code, body := ts.post(ndjson(good, bad, good.with("station", "LB-TB-02"), bad.with("version", 0)))
		if code != http.StatusUnprocessableEntity {
			t.Fatalf("status %d, want 422; body %s", code, body)
		}
		var ans struct {
			Errors []violation `json:"errors"`
		}
		if err := json.Unmarshal(body, &ans); err != nil {
			t.Fatal(err)
		}
		var idx []int
		for _, v := range ans.Errors {
			idx = append(idx, v.Index)
		}
		mustEqual(t, "violation indexes", idx, []int{1, 3, 3})
		// Minutes are stored before the answer is written, so the stream
		// would already hold anything this request stored.
		after := ts.status()
		if after.StreamSeq != before.StreamSeq {
			t.Errorf("stream_seq %d → %d: a 422 request stored minutes", before.StreamSeq, after.StreamSeq)
		}
		st, _ := ts.station("QH", "LB-TB-01")
		if string(st.Current) != "null" || len(st.History) != 0 {
			t.Errorf("station LB-TB-01 after a 422 request: %+v, want nothing", st)
		}
	})
}

func TestSubmitTooLargeIs413(t *testing.T) {
	t.Parallel()
	const maxBody, maxMinutes = 2048, 3
	ts := startServer(t, func(c *server.Config) {
		c.Gateway.MaxBodyBytes = maxBody
		c.Gateway.MaxMinutes = maxMinutes
	})
	var ms []M
	for _, s := range []string{"LB-BD-01", "LB-BD-02", "LB-NT-01", "LB-NT-02", "LB-TB-01", "LB-TB-02"} {
		ms = append(ms, minutes("QH", s, 1, "partial", counts{100, 50, 50, 50, 50, 0}, qhVotes(10)))
	}
	fits := array(ms[:maxMinutes]...)
	tooMany := array(ms[:maxMinutes+1]...)
	if len(tooMany) >= maxBody {
		t.Fatalf("fixture: %d minutes take %d bytes, not under the body limit %d", maxMinutes+1, len(tooMany), maxBody)
	}
	padded := object(ms[0].with("reason", strings.Repeat("Kiểm phiếu lại. ", maxBody/16+1)))
	if len(padded) <= maxBody {
		t.Fatalf("fixture: padded minutes take %d bytes, not over %d", len(padded), maxBody)
	}
	tests := []struct {
		name, body string
		code       int
	}{
		{"body over MaxBodyBytes", padded, http.StatusRequestEntityTooLarge},
		{"NDJSON body over MaxBodyBytes", ndjson(ms...) + strings.Repeat(" ", maxBody), http.StatusRequestEntityTooLarge},
		{"more minutes than MaxMinutes in an array", tooMany, http.StatusRequestEntityTooLarge},
		{"more minutes than MaxMinutes in NDJSON", ndjson(ms[:maxMinutes+1]...), http.StatusRequestEntityTooLarge},
		{"exactly MaxMinutes", fits, http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := ts.on(t)
			before := ts.status()
			code, body := ts.post(tt.body)
			if code != tt.code {
				t.Fatalf("status %d, want %d; body %s", code, tt.code, body)
			}
			if code == http.StatusRequestEntityTooLarge {
				requireErrorJSON(t, "413 answer", body)
				if after := ts.status(); after.StreamSeq != before.StreamSeq {
					t.Errorf("stream_seq %d → %d: a 413 request stored minutes", before.StreamSeq, after.StreamSeq)
				}
			}
		})
	}
}

func TestHighestVersionWinsWhateverTheArrivalOrder(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	const versions = 8
	stations := []string{"LB-BD-01", "LB-BD-02"}
	version := func(st string, v int) M {
		return minutes("QH", st, v, "final", counts{1000, 900, 900, 900, 880, 20}, qhVotes(int64(100+v), 100, 100, 100, 100))
	}
	// Every version of both stations at once, from concurrent clients.
	type result struct {
		code int
		body []byte
		err  error
	}
	results := make(chan result, versions*len(stations))
	for v := versions; v >= 1; v-- {
		for _, st := range stations {
			go func() { // no t.Fatal off the test goroutine
				resp, err := ts.client.Post(ts.url+"/api/v1/minutes", "application/json", bytes.NewReader(version(st, v).json()))
				if err != nil {
					results <- result{err: err}
					return
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				results <- result{resp.StatusCode, body, err}
			}()
		}
	}
	var last uint64
	for range versions * len(stations) {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.code != http.StatusAccepted {
			t.Fatalf("status %d, want 202; body %s", r.code, r.body)
		}
		var a submitAnswer
		if err := json.Unmarshal(r.body, &a); err != nil {
			t.Fatal(err)
		}
		last = max(last, a.Seq)
	}
	if last != versions*uint64(len(stations)) {
		t.Errorf("highest seq %d, want %d", last, versions*len(stations))
	}
	ts.waitApplied(last)
	for _, st := range stations {
		v, _ := ts.station("QH", st)
		var cur struct {
			Version int `json:"version"`
		}
		if err := json.Unmarshal(v.Current, &cur); err != nil {
			t.Fatal(err)
		}
		if cur.Version != versions {
			t.Errorf("%s: current version %d, want %d", st, cur.Version, versions)
		}
		if len(v.History) != versions {
			t.Errorf("%s: %d history entries, want %d", st, len(v.History), versions)
		}
		for i, h := range v.History {
			if i > 0 && h.Seq <= v.History[i-1].Seq {
				t.Errorf("%s: history not in stream order: %+v", st, v.History)
			}
			if h.Outcome != "applied" && h.Outcome != "stale" {
				t.Errorf("%s: history entry %+v, want applied or stale", st, h)
			}
		}
	}
	mustEqual(t, "ward", ts.area("QH", "LB-BD"), areaResult{
		Contest: "QH", Area: "LB-BD", Level: "ward", Name: "Phường Bồ Đề",
		StationsExpected: 2, StationsReporting: 2, StationsFinal: 2,
		Registered: 2000, Voted: 1800, Issued: 1800, Received: 1800, Valid: 1760, Invalid: 40,
		Votes: qhVotes(2*(100+versions), 200, 200, 200, 200), AppliedSeq: last,
	})
}

func TestSubmitLargeBatchAcrossPublishWindows(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	// More minutes than one publish window (512) in one NDJSON request:
	// every version of every station, interleaved.
	const versions = 90
	stations := []string{"LB-BD-01", "LB-BD-02", "LB-NT-01", "LB-NT-02", "LB-TB-01", "LB-TB-02"}
	var ms []M
	for v := 1; v <= versions; v++ {
		for _, st := range stations {
			ms = append(ms, minutes("QH", st, v, "partial", counts{500, int64(v), int64(v), int64(v), int64(v), 0}, qhVotes(int64(v))))
		}
	}
	a := ts.submit(ndjson(ms...))
	n := versions * len(stations)
	mustEqual(t, "202 answer", a, submitAnswer{Accepted: n, Seq: uint64(n)})
	mustEqual(t, "status", ts.status(), statusAnswer{Election: electionID, StreamSeq: uint64(n), AppliedSeq: uint64(n), Applied: uint64(n)})
	mustEqual(t, "district", ts.area("QH", "LB"), areaResult{
		Contest: "QH", Area: "LB", Level: "district", Name: "Quận Long Biên",
		StationsExpected: 6, StationsReporting: 6,
		Registered: 3000, Voted: 6 * versions, Issued: 6 * versions, Received: 6 * versions, Valid: 6 * versions,
		Votes: qhVotes(6*versions, 0, 0, 0, 0), AppliedSeq: uint64(n),
	})
}

// ---------------------------------------------------------------------------
// 2. Status.

func TestStatusCountsAfterKnownWorkload(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *server.Config) { c.NATS.Listen = "127.0.0.1:0" })
	mustEqual(t, "status of a new server", ts.status(), statusAnswer{Election: electionID})

	bd01v2 := qhFinal["LB-BD-01"].with("version", 2)
	// seq 1–3: applied.
	ts.submit(array(bd01v2, qhFinal["LB-BD-02"], qhFinal["LB-NT-01"]))
	// seq 4: stale (version 1 after version 2).
	ts.submit(object(qhFinal["LB-BD-01"]))
	// seq 5: conflict (version 2 again, different content): rejected.
	ts.submit(object(bd01v2.with("reason", "nhầm")))
	// Not stored: an identical resubmission, and a 422.
	ts.submit(array(qhFinal["LB-BD-02"], qhFinal["LB-NT-01"]))
	if code, body := ts.post(object(qhFinal["LB-NT-02"].with("version", 0))); code != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422; body %s", code, body)
	}
	// seq 6: duplicate: the same content straight from a station over NATS
	// (no Nats-Msg-Id, so the stream keeps it and the fold sees it).
	seq := publish(t, ts, events.Subject(ts.e, stationIndex(t, ts.e, "LB-NT-01"), "QH"), qhFinal["LB-NT-01"].json())
	if seq != 6 {
		t.Errorf("NATS publish stored at seq %d, want 6", seq)
	}
	ts.waitApplied(seq)

	mustEqual(t, "status", ts.status(), statusAnswer{
		Election: electionID, StreamSeq: 6, AppliedSeq: 6, Applied: 3, Rejected: 1, Duplicates: 1,
	})
}

// publish sends data on subject through JetStream (acknowledged) and returns
// its stream sequence.
func publish(t *testing.T, ts *testServer, subject string, data []byte) uint64 {
	t.Helper()
	nc, err := nats.Connect(ts.srv.NATSURL(), ts.nats.Option())
	if err != nil {
		t.Fatalf("connect to %q: %v", ts.srv.NATSURL(), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := js.Publish(ctx, subject, data)
	if err != nil {
		t.Fatalf("publish on %s: %v", subject, err)
	}
	return ack.Sequence
}

func stationIndex(t *testing.T, e *tally.Election, id string) int {
	t.Helper()
	s, ok := e.StationIndex(id)
	if !ok {
		t.Fatalf("fixture has no station %q", id)
	}
	return s
}

// ---------------------------------------------------------------------------
// 3. Area results.

func TestAreaResults(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)

	zeroQH := qhVotes(0, 0, 0, 0, 0)
	t.Run("before any minutes", func(t *testing.T) {
		ts := ts.on(t)
		mustEqual(t, "district", ts.area("QH", "LB"), areaResult{
			Contest: "QH", Area: "LB", Level: "district", Name: "Quận Long Biên", StationsExpected: 6, Votes: zeroQH,
		})
		mustEqual(t, "ward not voting in HDND-LB", ts.area("HDND-LB", "LB-TB"), areaResult{
			Contest: "HDND-LB", Area: "LB-TB", Level: "ward", Name: "Phường Thạch Bàn", Votes: map[string]int64{},
		})
	})

	a := ts.submit(ndjson(
		qhFinal["LB-BD-01"],
		minutes("QH", "LB-BD-02", 1, "partial", counts{800, 400, 400, 400, 390, 10}, qhVotes(200, 150)),
		qhFinal["LB-NT-01"],
		qhFinal["LB-TB-01"],
		minutes("HDND-LB", "LB-BD-01", 1, "final", counts{1000, 900, 900, 900, 880, 20}, q1Votes(600, 500, 500)),
		minutes("HDND-LB", "LB-NT-02", 1, "partial", counts{700, 300, 300, 300, 290, 10}, q2Votes(100, 0, 80)),
	))
	seq := a.Seq
	if seq != 6 {
		t.Fatalf("seq %d, want 6", seq)
	}

	tests := []struct {
		contest, area string
		want          areaResult
	}{
		{"QH", "LB-BD", areaResult{
			Contest: "QH", Area: "LB-BD", Level: "ward", Name: "Phường Bồ Đề",
			StationsExpected: 2, StationsReporting: 2, StationsFinal: 1,
			Registered: 1800, Voted: 1300, Issued: 1300, Received: 1300, Valid: 1270, Invalid: 30,
			Votes: qhVotes(900, 750, 500, 300, 200), AppliedSeq: seq,
		}},
		{"QH", "LB-NT", areaResult{
			Contest: "QH", Area: "LB-NT", Level: "ward", Name: "Phường Ngọc Thụy",
			StationsExpected: 2, StationsReporting: 1, StationsFinal: 1,
			Registered: 900, Voted: 850, Issued: 850, Received: 850, Valid: 840, Invalid: 10,
			Votes: qhVotes(500, 450, 420, 100, 90), AppliedSeq: seq,
		}},
		{"QH", "LB-TB", areaResult{
			Contest: "QH", Area: "LB-TB", Level: "ward", Name: "Phường Thạch Bàn",
			StationsExpected: 2, StationsReporting: 1, StationsFinal: 1,
			Registered: 600, Voted: 500, Issued: 500, Received: 500, Valid: 490, Invalid: 10,
			Votes: qhVotes(300, 200, 250, 100, 50), AppliedSeq: seq,
		}},
		{"QH", "LB", areaResult{
			Contest: "QH", Area: "LB", Level: "district", Name: "Quận Long Biên",
			StationsExpected: 6, StationsReporting: 4, StationsFinal: 3,
			Registered: 3300, Voted: 2650, Issued: 2650, Received: 2650, Valid: 2600, Invalid: 50,
			Votes: qhVotes(1700, 1400, 1170, 500, 340), AppliedSeq: seq,
		}},
		{"QH", "HN", areaResult{
			Contest: "QH", Area: "HN", Level: "province", Name: "Thành phố Hà Nội",
			StationsExpected: 6, StationsReporting: 4, StationsFinal: 3,
			Registered: 3300, Voted: 2650, Issued: 2650, Received: 2650, Valid: 2600, Invalid: 50,
			Votes: qhVotes(1700, 1400, 1170, 500, 340), AppliedSeq: seq,
		}},
		{"HDND-LB", "LB-BD", areaResult{
			Contest: "HDND-LB", Area: "LB-BD", Level: "ward", Name: "Phường Bồ Đề",
			StationsExpected: 2, StationsReporting: 1, StationsFinal: 1,
			Registered: 1000, Voted: 900, Issued: 900, Received: 900, Valid: 880, Invalid: 20,
			Votes: q1Votes(600, 500, 500), AppliedSeq: seq,
		}},
		{"HDND-LB", "LB-TB", areaResult{
			Contest: "HDND-LB", Area: "LB-TB", Level: "ward", Name: "Phường Thạch Bàn",
			Votes: map[string]int64{}, AppliedSeq: seq,
		}},
		{"HDND-LB", "LB", areaResult{
			Contest: "HDND-LB", Area: "LB", Level: "district", Name: "Quận Long Biên",
			StationsExpected: 4, StationsReporting: 2, StationsFinal: 1,
			Registered: 1700, Voted: 1200, Issued: 1200, Received: 1200, Valid: 1170, Invalid: 30,
			Votes: map[string]int64{"Q-01-1": 600, "Q-01-2": 500, "Q-01-3": 500, "Q-02-1": 100, "Q-02-2": 0, "Q-02-3": 80, "Q-02-4": 0}, AppliedSeq: seq,
		}},
		// A district council seen from its province: no votes key (v2).
		{"HDND-LB", "HN", areaResult{
			Contest: "HDND-LB", Area: "HN", Level: "province", Name: "Thành phố Hà Nội",
			StationsExpected: 4, StationsReporting: 2, StationsFinal: 1,
			Registered: 1700, Voted: 1200, Issued: 1200, Received: 1200, Valid: 1170, Invalid: 30,
			AppliedSeq: seq,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.contest+"/"+tt.area, func(t *testing.T) {
			ts := ts.on(t)
			mustEqual(t, "area result", ts.area(tt.contest, tt.area), tt.want)
		})
	}
	t.Run("units summary", func(t *testing.T) {
		ts := ts.on(t)
		// HDND-LB's two units lie wholly in the district and the province;
		// neither has all its stations final. Seats from the fixture.
		seats := 0
		c, ok := ts.e.ContestIndex("HDND-LB")
		if !ok {
			t.Fatal("fixture has no HDND-LB")
		}
		for _, u := range ts.e.Contests[c].Units {
			seats += u.Seats
		}
		for _, area := range []string{"LB", "HN"} {
			got := ts.areaUnits("HDND-LB", area)
			if got.Total != 2 || got.Counting != 2 || got.Seats != seats || got.Decided+got.Tie+got.AdditionalElection+got.ReElection != 0 {
				t.Errorf("HDND-LB %s units %+v, want 2 units counting, %d seats", area, got, seats)
			}
		}
		// A ward holds neither unit whole: Ngọc Thụy's stations are split.
		if got := ts.areaUnits("HDND-LB", "LB-TB"); got != (unitsSummary{}) {
			t.Errorf("HDND-LB LB-TB units %+v, want none", got)
		}
	})

	t.Run("unknown ids are 404", func(t *testing.T) {
		ts := ts.on(t)
		for _, path := range []string{
			"/api/v1/contests/HDND-HN/areas/LB",
			"/api/v1/contests/QH/areas/GL",
			"/api/v1/contests/QH/areas/LB-BD-01", // a station is not an area
			"/api/v1/contests/QH/areas/QH-HN-03", // nor a unit
			"/api/v1/contests/qh/areas/LB",       // ids are case-sensitive
		} {
			raw := ts.get(path, http.StatusNotFound, nil)
			requireErrorJSON(t, path, raw)
		}
	})
}

// ---------------------------------------------------------------------------
// 4. Unit results.

func TestUnitResults(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)

	qhCands := map[string]candidateResult{
		"1": {"QH-HN-03-1", "Nguyễn Văn An", "1968-04-12", 0},
		"2": {"QH-HN-03-2", "Trần Thị Bích Ngọc", "1975-09-30", 0},
		"3": {"QH-HN-03-3", "Lê Hoàng Đức", "1960-01-15", 0},
		"4": {"QH-HN-03-4", "Phạm Thị Thu Hương", "1982-11-02", 0},
		"5": {"QH-HN-03-5", "Đỗ Quang Vinh", "1971-06-21", 0},
	}
	// ranked lists candidates in the expected order, each written
	// "n:votes" (n: the candidate's number in the unit).
	ranked := func(cands map[string]candidateResult, order ...string) []candidateResult {
		out := make([]candidateResult, len(order))
		for i, o := range order {
			n, votes, _ := strings.Cut(o, ":")
			v, err := strconv.ParseInt(votes, 10, 64)
			if err != nil {
				panic(o)
			}
			out[i] = cands[n]
			out[i].Votes = v
		}
		return out
	}

	t.Run("QH before any minutes: ranked by birth date, no winner", func(t *testing.T) {
		ts := ts.on(t)
		mustEqual(t, "unit", ts.unit("QH", "QH-HN-03"), unitResult{
			Contest: "QH", Unit: "QH-HN-03", Level: "unit", Name: "Đơn vị bầu cử số 3",
			StationsExpected: 6, Votes: qhVotes(0, 0, 0, 0, 0), Seats: 3,
			Candidates: ranked(qhCands, "3:0", "1:0", "5:0", "2:0", "4:0"),
			Winners:    []string{}, Status: "counting",
		})
	})

	t.Run("QH counting: provisional winners", func(t *testing.T) {
		ts := ts.on(t)
		a := ts.submit(array(qhFinal["LB-BD-01"], qhFinal["LB-BD-02"], qhFinal["LB-NT-01"],
			minutes("QH", "LB-NT-02", 1, "partial", counts{700, 300, 300, 300, 295, 5}, qhVotes(150, 100))))
		// valid 2705: a winner needs more than 1352.5.
		mustEqual(t, "unit", ts.unit("QH", "QH-HN-03"), unitResult{
			Contest: "QH", Unit: "QH-HN-03", Level: "unit", Name: "Đơn vị bầu cử số 3",
			StationsExpected: 6, StationsReporting: 4, StationsFinal: 3,
			Registered: 3400, Voted: 2750, Issued: 2750, Received: 2750, Valid: 2705, Invalid: 45,
			Votes: qhVotes(1750, 1650, 1220, 600, 390), Seats: 3,
			Candidates: ranked(qhCands, "1:1750", "2:1650", "3:1220", "4:600", "5:390"),
			Winners:    []string{"QH-HN-03-1", "QH-HN-03-2"}, Status: "counting", AppliedSeq: a.Seq,
		})
	})

	t.Run("QH all final, two of three seats: additional election", func(t *testing.T) {
		ts := ts.on(t)
		a := ts.submit(array(qhFinal["LB-NT-02"], qhFinal["LB-TB-01"], qhFinal["LB-TB-02"]))
		// valid 3930: a winner needs more than 1965; QH-HN-03-3 has 1770.
		mustEqual(t, "unit", ts.unit("QH", "QH-HN-03"), unitResult{
			Contest: "QH", Unit: "QH-HN-03", Level: "unit", Name: "Đơn vị bầu cử số 3",
			StationsExpected: 6, StationsReporting: 6, StationsFinal: 6,
			Registered: 4500, Voted: 4000, Issued: 4000, Received: 4000, Valid: 3930, Invalid: 70,
			Votes: qhVotes(2500, 2290, 1770, 1150, 600), Seats: 3,
			Candidates: ranked(qhCands, "1:2500", "2:2290", "3:1770", "4:1150", "5:600"),
			Winners:    []string{"QH-HN-03-1", "QH-HN-03-2"}, Status: "additional_election", AppliedSeq: a.Seq,
		})
	})

	t.Run("QH corrected minutes: decided", func(t *testing.T) {
		ts := ts.on(t)
		a := ts.submit(object(qhFinal["LB-TB-02"].with("version", 2, "votes", qhVotes(250, 240, 300, 200, 60), "reason", "kiểm lại phiếu của ứng cử viên số 3")))
		mustEqual(t, "unit", ts.unit("QH", "QH-HN-03"), unitResult{
			Contest: "QH", Unit: "QH-HN-03", Level: "unit", Name: "Đơn vị bầu cử số 3",
			StationsExpected: 6, StationsReporting: 6, StationsFinal: 6,
			Registered: 4500, Voted: 4000, Issued: 4000, Received: 4000, Valid: 3930, Invalid: 70,
			Votes: qhVotes(2500, 2290, 1970, 1150, 600), Seats: 3,
			Candidates: ranked(qhCands, "1:2500", "2:2290", "3:1970", "4:1150", "5:600"),
			Winners:    []string{"QH-HN-03-1", "QH-HN-03-2", "QH-HN-03-3"}, Status: "decided", AppliedSeq: a.Seq,
		})
	})

	q1Cands := map[string]candidateResult{
		"1": {"Q-01-1", "Ngô Thị Mai", "1970-01-01", 0},
		"2": {"Q-01-2", "Vũ Đình Khoa", "1965-05-05", 0},
		"3": {"Q-01-3", "Hoàng Văn Tú", "1965-05-05", 0},
	}
	t.Run("Q-01 tie at the last seat", func(t *testing.T) {
		ts := ts.on(t)
		a := ts.submit(array(
			minutes("HDND-LB", "LB-BD-01", 1, "final", counts{1000, 900, 900, 900, 880, 20}, q1Votes(600, 500, 500)),
			minutes("HDND-LB", "LB-BD-02", 1, "final", counts{800, 700, 700, 700, 690, 10}, q1Votes(500, 400, 400)),
		))
		// Q-01-2 and Q-01-3: equal votes, equal birth date, ranked by id.
		mustEqual(t, "unit", ts.unit("HDND-LB", "Q-01"), unitResult{
			Contest: "HDND-LB", Unit: "Q-01", Level: "unit", Name: "Đơn vị bầu cử số 1 (phường Bồ Đề)",
			StationsExpected: 2, StationsReporting: 2, StationsFinal: 2,
			Registered: 1800, Voted: 1600, Issued: 1600, Received: 1600, Valid: 1570, Invalid: 30,
			Votes: q1Votes(1100, 900, 900), Seats: 2,
			Candidates: ranked(q1Cands, "1:1100", "2:900", "3:900"),
			Winners:    []string{"Q-01-1"}, Status: "tie", AppliedSeq: a.Seq,
		})
	})

	t.Run("Q-01 turnout not above half: re-election", func(t *testing.T) {
		ts := ts.on(t)
		// voted 900 of registered 1800: exactly half is not above half.
		a := ts.submit(array(
			minutes("HDND-LB", "LB-BD-01", 2, "final", counts{1000, 500, 500, 500, 490, 10}, q1Votes(400, 300, 200)),
			minutes("HDND-LB", "LB-BD-02", 2, "final", counts{800, 400, 400, 400, 390, 10}, q1Votes(300, 200, 100)),
		))
		mustEqual(t, "unit", ts.unit("HDND-LB", "Q-01"), unitResult{
			Contest: "HDND-LB", Unit: "Q-01", Level: "unit", Name: "Đơn vị bầu cử số 1 (phường Bồ Đề)",
			StationsExpected: 2, StationsReporting: 2, StationsFinal: 2,
			Registered: 1800, Voted: 900, Issued: 900, Received: 900, Valid: 880, Invalid: 20,
			Votes: q1Votes(700, 500, 300), Seats: 2,
			Candidates: ranked(q1Cands, "1:700", "2:500", "3:300"),
			Winners:    []string{}, Status: "re_election", AppliedSeq: a.Seq,
		})
	})

	t.Run("Q-01 registered in the minutes counts, not the file's", func(t *testing.T) {
		ts := ts.on(t)
		// One more voter on the day's list at LB-BD-02 (801 instead of 800)
		// keeps turnout at 900 of 1801; one more voter who voted makes it
		// 901 of 1801: above half.
		a := ts.submit(object(minutes("HDND-LB", "LB-BD-02", 3, "final", counts{801, 401, 401, 401, 391, 10}, q1Votes(300, 200, 100))))
		u := ts.unit("HDND-LB", "Q-01")
		if u.Registered != 1801 || u.Voted != 901 || u.AppliedSeq != a.Seq {
			t.Fatalf("registered %d voted %d applied_seq %d, want 1801, 901, %d", u.Registered, u.Voted, u.AppliedSeq, a.Seq)
		}
		// valid 881: a winner needs more than 440.5.
		mustEqual(t, "status", u.Status, "decided")
		mustEqual(t, "winners", u.Winners, []string{"Q-01-1", "Q-01-2"})
	})

	q2Cands := map[string]candidateResult{
		"1": {"Q-02-1", "Nguye\u0302\u0303n Thi\u0323 Hoa", "1980-02-02", 0},
		"2": {"Q-02-2", "Lý Văn Phúc", "1972-07-07", 0},
		"3": {"Q-02-3", "Đinh Thị Thủy", "1990-09-09", 0},
		"4": {"Q-02-4", "Trịnh Quốc Bảo", "1985-03-03", 0},
	}
	t.Run("Q-02 council unit decided with a seat left empty", func(t *testing.T) {
		ts := ts.on(t)
		a := ts.submit(array(
			minutes("HDND-LB", "LB-NT-01", 1, "final", counts{900, 800, 800, 800, 780, 20}, q2Votes(500, 400, 300, 200)),
			minutes("HDND-LB", "LB-NT-02", 1, "final", counts{700, 600, 600, 600, 590, 10}, q2Votes(400, 300, 200, 100)),
		))
		// valid 1370: a winner needs more than 685; two of three seats is
		// not fewer than two-thirds.
		mustEqual(t, "unit", ts.unit("HDND-LB", "Q-02"), unitResult{
			Contest: "HDND-LB", Unit: "Q-02", Level: "unit", Name: "Đơn vị bầu cử số 2 (phường Ngọc Thụy)",
			StationsExpected: 2, StationsReporting: 2, StationsFinal: 2,
			Registered: 1600, Voted: 1400, Issued: 1400, Received: 1400, Valid: 1370, Invalid: 30,
			Votes: q2Votes(900, 700, 500, 300), Seats: 3,
			Candidates: ranked(q2Cands, "1:900", "2:700", "3:500", "4:300"),
			Winners:    []string{"Q-02-1", "Q-02-2"}, Status: "decided", AppliedSeq: a.Seq,
		})
	})

	t.Run("Q-02 one winner of three seats: additional election", func(t *testing.T) {
		ts := ts.on(t)
		a := ts.submit(object(minutes("HDND-LB", "LB-NT-02", 2, "final", counts{700, 600, 600, 600, 590, 10}, q2Votes(400, 200, 200, 100))))
		mustEqual(t, "unit", ts.unit("HDND-LB", "Q-02"), unitResult{
			Contest: "HDND-LB", Unit: "Q-02", Level: "unit", Name: "Đơn vị bầu cử số 2 (phường Ngọc Thụy)",
			StationsExpected: 2, StationsReporting: 2, StationsFinal: 2,
			Registered: 1600, Voted: 1400, Issued: 1400, Received: 1400, Valid: 1370, Invalid: 30,
			Votes: q2Votes(900, 600, 500, 300), Seats: 3,
			Candidates: ranked(q2Cands, "1:900", "2:600", "3:500", "4:300"),
			Winners:    []string{"Q-02-1"}, Status: "additional_election", AppliedSeq: a.Seq,
		})
	})

	t.Run("Q-02 a final station withdrawn: counting again", func(t *testing.T) {
		ts := ts.on(t)
		a := ts.submit(object(withdrawn("HDND-LB", "LB-NT-02", 3, "kiểm phiếu lại")))
		u := ts.unit("HDND-LB", "Q-02")
		mustEqual(t, "status", u.Status, "counting")
		mustEqual(t, "stations reporting, final", [2]int64{u.StationsReporting, u.StationsFinal}, [2]int64{1, 1})
		mustEqual(t, "votes", u.Votes, q2Votes(500, 400, 300, 200))
		// valid 780: a winner needs more than 390.
		mustEqual(t, "provisional winners", u.Winners, []string{"Q-02-1", "Q-02-2"})
		mustEqual(t, "applied_seq", u.AppliedSeq, a.Seq)
	})

	t.Run("unknown units are 404", func(t *testing.T) {
		ts := ts.on(t)
		for _, path := range []string{
			"/api/v1/contests/QH/units/QH-HN-04",
			"/api/v1/contests/QH/units/Q-01",          // a unit of another contest
			"/api/v1/contests/HDND-LB/units/QH-HN-03", // and the other way round
			"/api/v1/contests/HDND-HN/units/Q-01",     // unknown contest
			"/api/v1/contests/QH/units/LB",            // an area is not a unit
		} {
			raw := ts.get(path, http.StatusNotFound, nil)
			requireErrorJSON(t, path, raw)
		}
	})
}

// ---------------------------------------------------------------------------
// 5. History of one station over HTTP.

func TestStationHistory(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	const (
		st      = "LB-TB-01"
		reason2 = "sửa số phiếu sau kiểm lại — Tổ bầu cử số 3"
		// Decomposed (NFD) text must not be normalized on the way.
		reason4 = "To\u0302\u0309 bầu cử số 3 gửi lại biên bản \"chính thức\" <kèm chữ ký> & con dấu\tđủ"
	)
	v1 := minutes("QH", st, 1, "partial", counts{600, 300, 300, 300, 295, 5}, qhVotes(100, 50))
	v2 := minutes("QH", st, 2, "final", counts{620, 500, 500, 500, 490, 10}, qhVotes(300, 200, 250, 100, 50)).with("reason", reason2)
	// Also reporting in the ward throughout: LB-TB-02.
	other := qhFinal["LB-TB-02"]
	ward := func(reporting, final int64, c counts, votes map[string]int64, seq uint64) areaResult {
		return areaResult{
			Contest: "QH", Area: "LB-TB", Level: "ward", Name: "Phường Thạch Bàn",
			StationsExpected: 2, StationsReporting: reporting, StationsFinal: final,
			Registered: c[0], Voted: c[1], Issued: c[2], Received: c[3], Valid: c[4], Invalid: c[5],
			Votes: votes, AppliedSeq: seq,
		}
	}
	var history []historyEntry
	// requireCurrent checks the station's current minutes are m, and the
	// history what the subtests recorded.
	requireCurrent := func(t *testing.T, m M) {
		t.Helper()
		v, raw := ts.station("QH", st)
		var got, want any
		if err := json.Unmarshal(v.Current, &got); err != nil {
			t.Fatal(err)
		}
		if m == nil {
			want = nil
		} else if err := json.Unmarshal(m.json(), &want); err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "current minutes", got, want)
		if r, ok := m["reason"].(string); ok && !bytes.Contains(raw, []byte(r)) && !bytes.Contains(raw, reasonJSON(r)) {
			t.Errorf("reason %q not in the answer byte for byte: %s", r, raw)
		}
		mustEqual(t, "history", v.History, history)
	}

	var seqOther uint64
	t.Run("partial v1 then final v2: both applied, results are v2's", func(t *testing.T) {
		ts := ts.on(t)
		seqOther = ts.submit(object(other)).Seq
		s1 := ts.submit(object(v1)).Seq
		mustEqual(t, "ward after v1", ts.area("QH", "LB-TB"),
			ward(2, 1, counts{1100, 750, 750, 750, 735, 15}, qhVotes(350, 290, 100, 200, 60), s1))
		s2 := ts.submit(object(v2)).Seq
		mustEqual(t, "ward after v2", ts.area("QH", "LB-TB"),
			ward(2, 2, counts{1120, 950, 950, 950, 930, 20}, qhVotes(550, 440, 350, 300, 110), s2))
		history = []historyEntry{{s1, 1, "partial", "applied"}, {s2, 2, "final", "applied"}}
		requireCurrent(t, v2)
	})

	t.Run("stale v1 after v2 changes nothing", func(t *testing.T) {
		ts := ts.on(t)
		before := ts.area("QH", "LB-TB")
		// Not byte-identical to the first v1, so the stream stores it.
		s := ts.submit(object(v1.with("reason", "gửi lại"))).Seq
		after := ts.area("QH", "LB-TB")
		before.AppliedSeq = s
		mustEqual(t, "ward", after, before)
		history = append(history, historyEntry{s, 1, "partial", "stale"})
		requireCurrent(t, v2)
	})

	t.Run("same version, different content: conflict", func(t *testing.T) {
		ts := ts.on(t)
		before := ts.area("QH", "LB-TB")
		s := ts.submit(object(v2.with("votes", qhVotes(310, 190, 250, 100, 50)))).Seq
		after := ts.area("QH", "LB-TB")
		before.AppliedSeq = s
		mustEqual(t, "ward", after, before)
		history = append(history, historyEntry{s, 2, "final", "rejected"})
		requireCurrent(t, v2)
		rej := ts.rejections("?station=" + st)
		if len(rej) != 1 {
			t.Fatalf("rejections of %s: %+v, want one", st, rej)
		}
		r := rej[0]
		if r.Seq != s || r.Station != st || r.Contest != "QH" || r.Version != 2 || r.Reason == "" {
			t.Errorf("rejection %+v, want seq %d station %s contest QH version 2 with a reason", r, s, st)
		}
		mustEqual(t, "rules", rules(r.Errors), []string{tally.RuleConflict})
	})

	t.Run("identical v2 again: stored once, no history entry", func(t *testing.T) {
		ts := ts.on(t)
		ts.submit(object(v2))
		requireCurrent(t, v2)
	})

	t.Run("withdrawn v3 removes the station's contribution", func(t *testing.T) {
		ts := ts.on(t)
		w := withdrawn("QH", st, 3, "rút biên bản để kiểm phiếu lại theo yêu cầu của Ủy ban bầu cử")
		s := ts.submit(object(w)).Seq
		mustEqual(t, "ward", ts.area("QH", "LB-TB"),
			ward(1, 1, counts{500, 450, 450, 450, 440, 10}, qhVotes(250, 240, 100, 200, 60), s))
		district := ts.area("QH", "LB")
		mustEqual(t, "district stations reporting", district.StationsReporting, int64(1))
		history = append(history, historyEntry{s, 3, "withdrawn", "applied"})
		requireCurrent(t, w)
	})

	t.Run("final v4 after withdrawal counts again", func(t *testing.T) {
		ts := ts.on(t)
		v4 := v2.with("version", 4, "reason", reason4)
		s := ts.submit(object(v4)).Seq
		mustEqual(t, "ward", ts.area("QH", "LB-TB"),
			ward(2, 2, counts{1120, 950, 950, 950, 930, 20}, qhVotes(550, 440, 350, 300, 110), s))
		history = append(history, historyEntry{s, 4, "final", "applied"})
		requireCurrent(t, v4)
	})

	t.Run("other station's history is its own", func(t *testing.T) {
		ts := ts.on(t)
		v, _ := ts.station("QH", "LB-TB-02")
		mustEqual(t, "history", v.History, []historyEntry{{seqOther, 1, "final", "applied"}})
		v, _ = ts.station("HDND-LB", "LB-BD-01")
		if string(v.Current) != "null" || len(v.History) != 0 {
			t.Errorf("station with no minutes: %+v, want current null and empty history", v)
		}
		_, raw := ts.station("HDND-LB", "LB-BD-01")
		requireKeys(t, "station", raw, "current", "history")
		if !bytes.Contains(raw, []byte(`"history":[]`)) {
			t.Errorf("empty history must be [], got %s", raw)
		}
	})

	t.Run("unknown station or contest is 404", func(t *testing.T) {
		ts := ts.on(t)
		for _, path := range []string{
			"/api/v1/contests/QH/stations/LB-TB-09",
			"/api/v1/contests/HDND-HN/stations/LB-TB-01",
			"/api/v1/contests/QH/stations/LB-TB", // an area is not a station
		} {
			raw := ts.get(path, http.StatusNotFound, nil)
			requireErrorJSON(t, path, raw)
		}
	})
}

// reasonJSON is r as encoding/json writes it inside a string (for <, >, &).
func reasonJSON(r string) []byte {
	b, _ := json.Marshal(r)
	return b[1 : len(b)-1]
}

// ---------------------------------------------------------------------------
// 6. Rejections of minutes published straight to NATS.

func TestRejectionsOfMinutesPublishedToNATS(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *server.Config) { c.NATS.Listen = "127.0.0.1:0" })
	if ts.srv.NATSURL() == "" {
		t.Fatal("NATSURL is empty with NATSListen 127.0.0.1:0")
	}
	subject := func(station, contest string) string {
		return events.Subject(ts.e, stationIndex(t, ts.e, station), contest)
	}
	if raw := ts.get("/api/v1/rejections?station=LB-TB-02", http.StatusOK, nil); strings.TrimSpace(string(raw)) != "[]" {
		t.Errorf("no rejections must be [], got %s", raw)
	}
	base := ts.submit(object(qhFinal["LB-BD-01"])).Seq
	district := ts.area("QH", "LB")
	unit := ts.unit("QH", "QH-HN-03")

	tests := []struct {
		name       string
		subject    string
		data       []byte
		station    string // of the rejection
		field      string
		rule       string
		historyFor string // station whose history records it: the subject's (the publisher's), else the payload's
	}{
		{"minutes breaking a rule on the proper subject", subject("LB-BD-02", "QH"),
			qhFinal["LB-BD-02"].with("invalid", 11).json(), "LB-BD-02", "valid", tally.RuleValidInvalid, "LB-BD-02"},
		{"valid minutes of another station", subject("LB-BD-02", "QH"),
			qhFinal["LB-BD-01"].with("version", 5).json(), "LB-BD-01", "station", tally.RuleSubject, "LB-BD-02"},
		{"valid minutes of another contest", subject("LB-BD-01", "QH"),
			minutes("HDND-LB", "LB-BD-01", 1, "final", counts{1000, 900, 900, 900, 880, 20}, q1Votes(600, 500, 500)).json(), "LB-BD-01", "station", tally.RuleSubject, "LB-BD-01"},
		{"valid minutes on a subject of the wrong shape", events.SubjectPrefix(electionID) + "LB.LB-NT-01",
			qhFinal["LB-NT-01"].json(), "LB-NT-01", "station", tally.RuleSubject, "LB-NT-01"},
		{"garbage bytes", subject("LB-NT-02", "QH"),
			[]byte("\x00\xff\xfe rác không phải biên bản"), "", "payload", tally.RuleType, "LB-NT-02"},
		{"truncated JSON", subject("LB-NT-02", "QH"),
			qhFinal["LB-NT-02"].json()[:40], "", "payload", tally.RuleType, "LB-NT-02"},
		{"binary magic then garbage", subject("LB-TB-01", "QH"),
			[]byte{events.BinaryMagic, 0x7f, 1, 2, 3}, "", "payload", tally.RuleType, "LB-TB-01"},
		{"empty payload", subject("LB-TB-02", "QH"), []byte{}, "", "payload", tally.RuleType, "LB-TB-02"},
	}
	var seqs []uint64
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := ts.on(t)
			seq := publish(t, ts, tt.subject, tt.data)
			seqs = append(seqs, seq)
			ts.waitApplied(seq)
			mustEqual(t, "district result", ts.area("QH", "LB"), withSeq(district, seq))
			mustEqual(t, "unit result", ts.unit("QH", "QH-HN-03"), withUnitSeq(unit, seq))
			all := ts.rejections("")
			if len(all) == 0 || all[len(all)-1].Seq != seq {
				t.Fatalf("last rejection %+v, want seq %d", all, seq)
			}
			r := all[len(all)-1]
			if r.Subject != tt.subject || r.Station != tt.station || r.Reason == "" {
				t.Errorf("rejection %+v, want subject %s, station %q and a reason", r, tt.subject, tt.station)
			}
			found := false
			for _, v := range r.Errors {
				found = found || v.Field == tt.field && v.Rule == tt.rule
			}
			if !found {
				t.Errorf("rejection errors %+v, want field %q rule %q", r.Errors, tt.field, tt.rule)
			}
			if tt.historyFor != "" {
				v, _ := ts.station("QH", tt.historyFor)
				if v2, _ := ts.station("HDND-LB", tt.historyFor); len(v2.History) > 0 {
					v.History = append(v.History, v2.History...)
				}
				if len(v.History) == 0 || v.History[len(v.History)-1].Seq != seq || v.History[len(v.History)-1].Outcome != "rejected" {
					t.Errorf("history of %s: %+v, want a last entry seq %d outcome rejected", tt.historyFor, v.History, seq)
				}
			}
		})
	}

	t.Run("rejections in stream order, filtered by station", func(t *testing.T) {
		ts := ts.on(t)
		all := ts.rejections("")
		var got []uint64
		for _, r := range all {
			got = append(got, r.Seq)
		}
		mustEqual(t, "rejection seqs", got, seqs)
		for _, f := range []struct {
			station string
			want    []uint64
		}{
			// A station's rejections are those naming it in the payload or
			// in the subject they were published on.
			{"LB-BD-02", []uint64{seqs[0], seqs[1]}},
			{"LB-BD-01", []uint64{seqs[1], seqs[2]}},
			{"LB-NT-01", []uint64{seqs[3]}},
			{"LB-NT-02", []uint64{seqs[4], seqs[5]}},
			{"LB-TB-01", []uint64{seqs[6]}},
			{"LB-TB-02", []uint64{seqs[7]}},
		} {
			var got []uint64
			for _, r := range ts.rejections("?station=" + f.station) {
				if r.Station != f.station && r.SubjectStation != f.station {
					t.Errorf("?station=%s returned a rejection of %q", f.station, r.Station)
				}
				got = append(got, r.Seq)
			}
			mustEqual(t, "rejections of "+f.station, got, f.want)
		}
		raw := ts.get("/api/v1/rejections?station=LB-XX-01", http.StatusNotFound, nil)
		requireErrorJSON(t, "unknown station filter", raw)
	})

	t.Run("valid minutes over NATS apply; identical ones are duplicates", func(t *testing.T) {
		ts := ts.on(t)
		seq := publish(t, ts, subject("LB-NT-02", "QH"), qhFinal["LB-NT-02"].json())
		ts.waitApplied(seq)
		dup := publish(t, ts, subject("LB-BD-01", "QH"), qhFinal["LB-BD-01"].json())
		ts.waitApplied(dup)
		v, _ := ts.station("QH", "LB-BD-01")
		mustEqual(t, "history of LB-BD-01", v.History, []historyEntry{
			{base, 1, "final", "applied"}, {seqs[2], 1, "final", "rejected"}, {dup, 1, "final", "duplicate"},
		})
		mustEqual(t, "status", ts.status(), statusAnswer{
			Election: electionID, StreamSeq: dup, AppliedSeq: dup, Applied: 2, Rejected: uint64(len(tests)), Duplicates: 1,
		})
		d := ts.area("QH", "LB")
		mustEqual(t, "district stations reporting", d.StationsReporting, int64(2))
		mustEqual(t, "district votes", d.Votes, qhVotes(1050, 900, 700, 550, 300))
	})
}

func withSeq(r areaResult, seq uint64) areaResult     { r.AppliedSeq = seq; return r }
func withUnitSeq(r unitResult, seq uint64) unitResult { r.AppliedSeq = seq; return r }

// ---------------------------------------------------------------------------
// 7. Routing.

func TestUnknownPathIs404AndWrongMethodIs405(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	t.Run("unknown paths", func(t *testing.T) {
		ts := ts.on(t)
		for _, path := range []string{
			"/api/v1/nope",
			"/api/v2/status",
			"/api/v1/contests",
			"/api/v1/contests/QH",
			"/api/v1/contests/QH/areas",
			"/api/v1/contests/QH/areas/LB/extra",
			"/api/v1/contests/QH/wards/LB-BD",
			"/api/v1/rejections/LB-BD-01",
		} {
			code, h, raw := ts.do(http.MethodGet, path, "", nil)
			if code != http.StatusNotFound {
				t.Errorf("GET %s: status %d, want 404", path, code)
				continue
			}
			requireJSON(t, "GET "+path, h, raw)
			requireErrorJSON(t, "GET "+path, raw)
		}
	})
	t.Run("wrong methods", func(t *testing.T) {
		ts := ts.on(t)
		for _, c := range []struct{ method, path, allow string }{
			{http.MethodGet, "/api/v1/minutes", "POST"},
			{http.MethodPut, "/api/v1/minutes", "POST"},
			{http.MethodDelete, "/api/v1/status", "GET"},
			{http.MethodPost, "/api/v1/status", "GET"},
			{http.MethodPost, "/api/v1/contests/QH/areas/LB", "GET"},
			{http.MethodPut, "/api/v1/contests/QH/units/QH-HN-03", "GET"},
			{http.MethodDelete, "/api/v1/contests/QH/stations/LB-BD-01", "GET"},
			{http.MethodPost, "/api/v1/rejections", "GET"},
		} {
			code, h, raw := ts.do(c.method, c.path, "application/json", []byte("{}"))
			if code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: status %d, want 405; body %s", c.method, c.path, code, raw)
				continue
			}
			if allow := h.Get("Allow"); !strings.Contains(allow, c.allow) {
				t.Errorf("%s %s: Allow %q, want it to list %s", c.method, c.path, allow, c.allow)
			}
		}
		if st := ts.status(); st.StreamSeq != 0 {
			t.Errorf("stream_seq %d after wrong-method requests, want 0", st.StreamSeq)
		}
	})
}

// ---------------------------------------------------------------------------
// 8. Vietnamese names.

func TestVietnameseNamesRoundTrip(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	e := parseElection(t) // the names as the file holds them
	t.Run("areas", func(t *testing.T) {
		ts := ts.on(t)
		for _, a := range e.Areas {
			for _, c := range []string{"QH", "HDND-LB"} {
				raw := ts.get("/api/v1/contests/"+c+"/areas/"+a.ID, http.StatusOK, nil)
				var r areaResult
				if err := json.Unmarshal(raw, &r); err != nil {
					t.Fatal(err)
				}
				if r.Name != a.Name {
					t.Errorf("area %s name %q (% x), want %q (% x)", a.ID, r.Name, r.Name, a.Name, a.Name)
				}
				if !bytes.Contains(raw, []byte(`"name":"`+a.Name+`"`)) {
					t.Errorf("area %s: name not written as raw UTF-8: %s", a.ID, raw)
				}
			}
		}
	})
	t.Run("units and candidates", func(t *testing.T) {
		ts := ts.on(t)
		for _, c := range e.Contests {
			for _, u := range c.Units {
				raw := ts.get("/api/v1/contests/"+c.ID+"/units/"+u.ID, http.StatusOK, nil)
				var r unitResult
				if err := json.Unmarshal(raw, &r); err != nil {
					t.Fatal(err)
				}
				if r.Name != u.Name {
					t.Errorf("unit %s name %q, want %q", u.ID, r.Name, u.Name)
				}
				names := map[string]string{}
				for _, cand := range r.Candidates {
					names[cand.ID] = cand.Name
				}
				for _, cand := range u.Candidates {
					if names[cand.ID] != cand.Name {
						t.Errorf("candidate %s name %q (% x), want %q (% x)", cand.ID, names[cand.ID], names[cand.ID], cand.Name, cand.Name)
					}
					if !bytes.Contains(raw, []byte(`"name":"`+cand.Name+`"`)) {
						t.Errorf("candidate %s: name not written as raw UTF-8: %s", cand.ID, raw)
					}
				}
			}
		}
	})
	t.Run("the decomposed name stays decomposed", func(t *testing.T) {
		ts := ts.on(t)
		u := ts.unit("HDND-LB", "Q-02")
		const nfd = "Nguye\u0302\u0303n Thi\u0323 Hoa"
		var got string
		for _, c := range u.Candidates {
			if c.ID == "Q-02-1" {
				got = c.Name
			}
		}
		if got != nfd {
			t.Errorf("Q-02-1 name % x, want % x", got, nfd)
		}
	})
}

// TestElectionListsLevelsAndWarnings: GET /api/v1/election holds the file
// as loaded plus its levels from the top (the default three for a file that
// declares none) and the warnings Parse found (CONTRACT §2 v2).
func TestElectionListsLevelsAndWarnings(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	var got struct {
		ID       string   `json:"id"`
		Levels   []string `json:"levels"`
		Warnings []string `json:"warnings"`
	}
	raw := ts.get("/api/v1/election", http.StatusOK, &got)
	requireKeys(t, "election", raw, "id", "levels", "warnings", "areas", "stations", "contests")
	if got.ID != ts.e.ID || strings.Join(got.Levels, ",") != "province,district,ward" {
		t.Errorf("election %q levels %v, want %q and province, district, ward", got.ID, got.Levels, ts.e.ID)
	}
	if len(got.Warnings) != len(ts.e.Warnings()) {
		t.Errorf("warnings %q, Parse found %q", got.Warnings, ts.e.Warnings())
	}
}
