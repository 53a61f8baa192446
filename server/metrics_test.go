package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches /metrics over HTTP and parses it.
func scrape(t *testing.T, base string) map[string][]*model.Sample {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, body)
	}
	dec := expfmt.SampleDecoder{Dec: expfmt.NewDecoder(bytes.NewReader(body), expfmt.NewFormat(expfmt.TypeTextPlain)), Opts: &expfmt.DecodeOptions{Timestamp: model.Now()}}
	out := map[string][]*model.Sample{}
	for {
		var v model.Vector
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("parse /metrics: %v", err)
		}
		for _, s := range v {
			name := string(s.Metric[model.MetricNameLabel])
			out[name] = append(out[name], s)
		}
	}
	return out
}

// value returns the sample of name whose labels include want.
func value(t *testing.T, m map[string][]*model.Sample, name string, want map[string]string) float64 {
	t.Helper()
	for _, s := range m[name] {
		ok := true
		for k, v := range want {
			if string(s.Metric[model.LabelName(k)]) != v {
				ok = false
			}
		}
		if ok {
			return float64(s.Value)
		}
	}
	t.Fatalf("metric %s%v not exported", name, want)
	return 0
}

// TestMetricsAfterKnownWorkload submits the example night plus a stale
// version, a conflicting version and an invalid request, then scrapes
// /metrics over HTTP and checks the counters.
func TestMetricsAfterKnownWorkload(t *testing.T) {
	e, lines := longBien(t)
	srv, base := liveServer(t, e)
	sse := openStream(t, base, "?contest=QH", "")
	sse.collect(100 * 1e6)

	seq := submitLines(t, srv, base, lines) // 584 applied
	// LB-CK-08's QH minutes went up to version 3. Version 1 with another
	// reason is a new message (new Nats-Msg-Id) and stale; version 3 with
	// another reason is a conflict.
	variant := func(version int) []byte {
		for _, l := range lines {
			var m map[string]any
			if err := json.Unmarshal(l, &m); err != nil {
				t.Fatal(err)
			}
			if m["station"] == "LB-CK-08" && m["contest"] == "QH" && m["version"] == float64(version) {
				m["reason"] = "bản gửi lại khác nội dung"
				b, _ := json.Marshal(m)
				return b
			}
		}
		t.Fatalf("no LB-CK-08 QH version %d", version)
		return nil
	}
	stale, conflict := variant(1), variant(3)
	submitLines(t, srv, base, [][]byte{stale})
	last := submitLines(t, srv, base, [][]byte{conflict})
	resp, err := http.Post(base+"/api/v1/minutes", "application/json", strings.NewReader(`{"election":"hn-2021"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("invalid minutes: %d", resp.StatusCode)
	}

	m := scrape(t, base)
	for outcome, want := range map[string]float64{"applied": 584, "stale": 1, "duplicate": 0, "rejected": 1} {
		if got := value(t, m, "tally_events_total", map[string]string{"outcome": outcome}); got != want {
			t.Errorf("tally_events_total{outcome=%q} = %v, want %v", outcome, got, want)
		}
	}
	if got := value(t, m, "tally_applied_sequence", nil); got != float64(last) || last != seq+2 {
		t.Errorf("tally_applied_sequence = %v, want %d (= %d + 2)", got, last, seq)
	}
	if got := value(t, m, "tally_http_requests_total", map[string]string{"route": "minutes", "code": "202"}); got != 3 {
		t.Errorf("202 answers to POST minutes = %v, want 3", got)
	}
	if got := value(t, m, "tally_http_requests_total", map[string]string{"route": "minutes", "code": "422"}); got != 1 {
		t.Errorf("422 answers = %v, want 1", got)
	}
	if got := value(t, m, "tally_sse_clients", nil); got != 1 {
		t.Errorf("tally_sse_clients = %v, want 1", got)
	}
	if got := value(t, m, "tally_fold_lag_seconds_count", nil); got != 586 {
		t.Errorf("fold lag observations = %v, want 586 (one per event)", got)
	}
	if got := value(t, m, "tally_fold_batch_events_sum", nil); got != 586 {
		t.Errorf("events in fold batches = %v, want 586", got)
	}
	// Every stored minutes went through the group committer once: the
	// example night in atomic batches, the two single ones alone.
	if got := value(t, m, "tally_gateway_commit_minutes_sum", map[string]string{"kind": "atomic"}) + value(t, m, "tally_gateway_commit_minutes_sum", map[string]string{"kind": "each"}); got != 586 {
		t.Errorf("minutes through the group committer = %v, want 586", got)
	}
	if value(t, m, "tally_fold_commit_seconds_count", nil) < 3 {
		t.Error("fewer than 3 commits observed")
	}
	// Progress per contest: the province's result (the example's one
	// top-level area) as the API gives it.
	for _, contest := range []string{"QH", "HDND-HN", "HDND-LB"} {
		resp, err := http.Get(base + "/api/v1/contests/" + contest + "/areas/HN")
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Expected  float64 `json:"stations_expected"`
			Reporting float64 `json:"stations_reporting"`
			Final     float64 `json:"stations_final"`
		}
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil || r.Expected == 0 {
			t.Fatalf("%s result: %+v %v", contest, r, err)
		}
		label := map[string]string{"contest": contest}
		for name, want := range map[string]float64{"tally_stations_expected": r.Expected, "tally_stations_reporting": r.Reporting, "tally_stations_final": r.Final} {
			if got := value(t, m, name, label); got != want {
				t.Errorf("%s{contest=%q} = %v, want %v", name, contest, got, want)
			}
		}
	}
	if value(t, m, "tally_gateway_refusals_total", nil) != 1 {
		t.Error("the refused minutes were not counted in tally_gateway_refusals_total")
	}
	if value(t, m, "tally_pebble_disk_usage_bytes", nil) <= 0 {
		t.Error("pebble disk usage not reported")
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "tally_consumer_pending_messages", "tally_pebble_compaction_debt_bytes", "tally_pebble_memtable_size_bytes", "tally_http_request_duration_seconds_bucket"} {
		if len(m[name]) == 0 {
			t.Errorf("%s not exported", name)
		}
	}
}

// TestGrafanaDashboardUsesExportedMetrics: every tally_ metric the shipped
// Grafana dashboard queries is one the server exports.
func TestGrafanaDashboardUsesExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile("../deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	e, _ := longBien(t)
	_, base := liveServer(t, e)
	if resp, err := http.Get(base + "/api/v1/status"); err == nil { // so per-route series exist
		resp.Body.Close()
	}
	m := scrape(t, base)
	used := regexp.MustCompile(`\b(tally|process|go)_[a-z_]+`).FindAllString(string(raw), -1)
	if len(used) < 10 {
		t.Fatalf("only %d metric references in the dashboard", len(used))
	}
	for _, name := range used {
		if len(m[name]) == 0 && len(m[name+"_bucket"]) == 0 && len(m[strings.TrimSuffix(name, "_bucket")+"_bucket"]) == 0 {
			t.Errorf("dashboard queries %s, which /metrics does not export", name)
		}
	}
}
