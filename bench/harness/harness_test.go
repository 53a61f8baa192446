package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRunTiny runs every phase at a tiny scale, so the harness keeps
// working as the code under it changes. The PostgreSQL peers, naive and
// strong, run only with TALLY_BENCH_POSTGRES=1 (it may install the Debian
// package).
func TestRunTiny(t *testing.T) {
	cfg := Config{
		Scale:        0.02,
		Provinces:    2,
		MsgID:        true,
		BatchSize:    500,
		Rebuild:      true,
		Serve:        true,
		Loads:        []int{100, 300},
		LoadDuration: time.Second,
		LoadGrace:    5 * time.Second,
		Conns:        8,
		TempDir:      t.TempDir(),
	}
	if os.Getenv("TALLY_BENCH_POSTGRES") == "1" {
		cfg.Peers = []string{PeerPostgres, PeerPostgresStrong}
	}
	var log bytes.Buffer
	cfg.Log = &log
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	t.Logf("log:\n%s", &log)
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := WriteTable(&table, res); err != nil {
		t.Fatal(err)
	}
	t.Logf("table:\n%s", &table)

	if len(res.Problems) > 0 {
		t.Errorf("problems: %q", res.Problems)
	}
	if res.Load.Stored == 0 || res.Load.Stored != uint64(res.Load.Published-res.Load.Deduped) {
		t.Errorf("load %+v: want every published event stored but the deduplicated ones", res.Load)
	}
	if !res.OutcomesMatch {
		t.Errorf("fold outcomes %+v, workload expects %+v", res.FoldOutcomes, res.ExpectedOutcomes)
	}
	if res.FoldOutcomes.Rejected == 0 || res.FoldOutcomes.Stale == 0 {
		t.Errorf("fold outcomes %+v: the night should hold invalid and stale minutes", res.FoldOutcomes)
	}
	for name, d := range map[string]Drain{"ceiling": res.Ceiling, "fold": res.Fold} {
		if len(d.Runs) != 2 || d.Best <= 0 || d.Median <= 0 || d.Median > d.Best {
			t.Errorf("%s: %+v, want two runs, a best and a median", name, d)
		}
	}
	if res.FoldOverCeiling <= 0 || res.Core == nil || res.Core.ApplyPerS <= 0 || res.Core.CommitPerS <= 0 {
		t.Errorf("fold/ceiling %v, core %+v", res.FoldOverCeiling, res.Core)
	}
	if res.Rebuild == nil || res.Rebuild.Events != res.Load.Stored {
		t.Errorf("rebuild %+v, want all %d events", res.Rebuild, res.Load.Stored)
	}
	if res.Serve == nil || res.Serve.PeakRSSMiB <= 0 {
		t.Errorf("serve %+v, want tally serve's memory", res.Serve)
	}
	if len(res.Latency) != 2 {
		t.Fatalf("%d latency results, want 2", len(res.Latency))
	}
	for _, l := range res.Latency {
		if l.Accepted != l.Scheduled || l.Missing != 0 || l.Seen != l.Accepted || l.P50Ms <= 0 || l.MaxMs < l.P99Ms || l.P99Ms < l.P50Ms {
			t.Errorf("latency %+v: want every request accepted and seen, ordered percentiles", l)
		}
	}
	if res.Memory.PeakRSSMiB <= 0 || res.Memory.PebbleMiB <= 0 {
		t.Errorf("memory %+v", res.Memory)
	}
	if len(cfg.Peers) > 0 {
		for _, p := range []*Peer{res.Peer, res.StrongPeer} {
			if p == nil || p.Mismatches != 0 || p.Compared == 0 || p.Outcomes != res.FoldOutcomes || p.EventsPerS <= 0 {
				t.Errorf("peer %+v, want every result equal to tally's", p)
			}
		}
		// The strong peer sends a handful of statements per batch, the
		// naive one several per event.
		if s, n := res.StrongPeer, res.Peer; s != nil && n != nil && s.StatementsPerEvent*10 > n.StatementsPerEvent {
			t.Errorf("strong peer %.3f statements an event, naive %.3f: want the strong one far fewer", s.StatementsPerEvent, n.StatementsPerEvent)
		}
	}
	if _, err := json.Marshal(res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "fold/ceiling") {
		t.Errorf("the table has no fold/ceiling line")
	}
}

// TestRunTinyPartitions loads the night into 3 partition streams and
// rebuilds them in parallel, twice: every event is read, and the rebuilt
// stores reopen at their streams' last sequences with the workload's
// outcomes (checkRebuilt reports a problem otherwise).
func TestRunTinyPartitions(t *testing.T) {
	cfg := Config{
		Scale:           0.02,
		Provinces:       6,
		MsgID:           true,
		BatchSize:       500,
		Partitions:      3,
		Rebuild:         true,
		RebuildRuns:     2,
		RebuildVariants: []string{RebuildPipelined, RebuildSerial},
		SkipCore:        true,
		TempDir:         t.TempDir(),
	}
	var log bytes.Buffer
	cfg.Log = &log
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	t.Logf("log:\n%s", &log)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) > 0 {
		t.Errorf("problems: %q", res.Problems)
	}
	if len(res.Rebuilds) != 2 || res.Rebuild != res.Rebuilds[0] {
		t.Fatalf("rebuilds %+v, want the two variants", res.Rebuilds)
	}
	for i, rb := range res.Rebuilds {
		if rb.Variant != cfg.RebuildVariants[i] || rb.Partitions != 3 || len(rb.Runs) != 2 || rb.Events != res.Load.Stored || res.Load.Stored == 0 {
			t.Fatalf("rebuild %+v, want %s, 3 partitions, 2 runs, all %d events", rb, cfg.RebuildVariants[i], res.Load.Stored)
		}
		if rb.Outcomes != res.ExpectedOutcomes || rb.Outcomes.Applied == 0 || rb.Outcomes.Rejected == 0 {
			t.Errorf("%s: rebuilt outcomes %+v, workload expects %+v", rb.Variant, rb.Outcomes, res.ExpectedOutcomes)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []Config{{Runs: 1}, {PublishWindow: 1001}, {Peers: []string{"mysql"}}, {Peers: []string{PeerPostgres, PeerPostgres}}, {Loads: []int{0}},
		{Partitions: 2, Serve: true}, {Partitions: 2, Peers: []string{PeerPostgresStrong}},
		{RebuildVariants: []string{"fast"}}, {RebuildVariants: []string{RebuildSerial, RebuildSerial}}} {
		cfg.ensureDefaults()
		if err := cfg.validate(); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

func TestAreaOf(t *testing.T) {
	for _, tc := range []struct {
		in, contest, area string
		ok                bool
	}{
		{`{"contest":"QH","area":"HN-01","level":"ward"}`, "QH", "HN-01", true},
		{`{"contest":"QH","unit":"QH-1","level":"unit"}`, "", "", false},
		{`{"contest":"QH"`, "", "", false},
		{`[]`, "", "", false},
	} {
		c, a, ok := areaOf([]byte(tc.in))
		if c != tc.contest || a != tc.area || ok != tc.ok {
			t.Errorf("areaOf(%s) = %q, %q, %v; want %q, %q, %v", tc.in, c, a, ok, tc.contest, tc.area, tc.ok)
		}
	}
}

func TestPercentiles(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p50, p99, mx := percentiles(d)
	if p50 != 51 || p99 != 100 || mx != 100 {
		t.Errorf("percentiles of 1..100 ms = %v, %v, %v", p50, p99, mx)
	}
}

// TestTracker checks both orders an answer and its SSE event may arrive in.
func TestTracker(t *testing.T) {
	tr := newTracker(nil, 1)
	due := time.Unix(100, 0)
	// The answer first, then an event that covers it.
	tr.accepted(1, 10, due, due.Add(time.Millisecond))
	tr.event(1, 9, due.Add(2*time.Millisecond))
	tr.event(1, 12, due.Add(3*time.Millisecond))
	// The event first: the earliest one covering seq 20 counts.
	tr.event(2, 25, due.Add(4*time.Millisecond))
	tr.event(2, 30, due.Add(6*time.Millisecond))
	tr.accepted(2, 20, due, due.Add(7*time.Millisecond))
	// Never seen.
	tr.accepted(3, 40, due, due.Add(time.Millisecond))
	samples, acks, seen := tr.take()
	if seen != 2 || len(acks) != 3 {
		t.Fatalf("seen %d, %d acks; want 2 and 3", seen, len(acks))
	}
	if samples[0] != 3*time.Millisecond || samples[1] != 4*time.Millisecond {
		t.Errorf("samples %v, want [3ms 4ms]", samples)
	}
}

func TestGuard(t *testing.T) {
	// res makes the results of runs of ceiling and fold, alternating, at
	// the given rates (events/s): ceiling, fold, ceiling, fold...
	res := func(rates []float64, problems ...string) *Results {
		r := &Results{Problems: problems}
		for i := 0; i < len(rates); i += 2 {
			r.Ceiling.add(1000, time.Duration(float64(time.Second)*1000/rates[i]))
			r.Fold.add(1000, time.Duration(float64(time.Second)*1000/rates[i+1]))
			r.FoldOverCeilingRuns = append(r.FoldOverCeilingRuns, rates[i+1]/rates[i])
		}
		r.FoldOverCeilingMedian = median(r.FoldOverCeilingRuns)
		return r
	}
	for _, tc := range []struct {
		name  string
		res   *Results
		floor float64
		fail  string
	}{
		{"above", res([]float64{100_000, 50_000, 80_000, 40_000, 100_000, 45_000}), 0.4, ""},
		// One run under a burst of load on the ceiling's side, one on the
		// fold's: the median holds.
		{"bursts", res([]float64{100_000, 50_000, 20_000, 40_000, 100_000, 10_000}), 0.4, ""},
		{"below", res([]float64{100_000, 30_000, 100_000, 35_000, 100_000, 60_000}), 0.4, "fold/ceiling 0.350 (median of the runs 0.30 0.35 0.60) is below the floor 0.40"},
		{"no ratio", &Results{}, 0.4, "no fold/ceiling ratio"},
		{"problem", res([]float64{100_000, 50_000}, "3 of 9 results differ"), 0.4, "3 of 9 results differ"},
	} {
		err := Guard(tc.res, tc.floor)
		switch {
		case tc.fail == "" && err != nil:
			t.Errorf("%s: %v, want no error", tc.name, err)
		case tc.fail != "" && (err == nil || !strings.Contains(err.Error(), tc.fail)):
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.fail)
		}
	}
}
