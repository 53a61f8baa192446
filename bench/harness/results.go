package harness

import (
	"slices"
	"time"
)

// Results is everything one run measured. It is written as JSON, so every
// field is a plain figure with its unit in its name.
type Results struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Machine  Machine   `json:"machine"`
	Config   RunConfig `json:"config"`

	Workload Workload `json:"workload"`
	Load     Load     `json:"load"`
	Ceiling  Drain    `json:"ceiling"`
	Fold     Drain    `json:"fold"`
	// FoldOverCeiling is the best fold rate over the best ceiling rate.
	FoldOverCeiling float64 `json:"fold_over_ceiling"`
	// FoldOverCeilingRuns is each fold run's rate over that of the ceiling
	// run just before it (the two closest in time, so under the most
	// similar load), FoldOverCeilingMedian their median: the figure the CI
	// guard checks, steadier than FoldOverCeiling on a busy machine.
	FoldOverCeilingRuns   []float64 `json:"fold_over_ceiling_runs"`
	FoldOverCeilingMedian float64   `json:"fold_over_ceiling_median"`
	// FoldOutcomes counts what the fold made of the stream (the last run);
	// ExpectedOutcomes what the workload says it should have.
	FoldOutcomes     Outcomes `json:"fold_outcomes"`
	ExpectedOutcomes Outcomes `json:"expected_outcomes"`
	OutcomesMatch    bool     `json:"outcomes_match"`

	// Core is the fold without NATS, the best of Runs runs.
	Core *Core `json:"core,omitempty"`

	// Peer is the naive PostgreSQL peer (PeerPostgres), StrongPeer the
	// strong one (PeerPostgresStrong).
	Peer       *Peer    `json:"peer,omitempty"`
	StrongPeer *Peer    `json:"peer_strong,omitempty"`
	Rebuild    *Rebuild `json:"rebuild,omitempty"`
	// Rebuilds are every variant's rebuild; Rebuild is RebuildPipelined's
	// if measured, else the first.
	Rebuilds []*Rebuild `json:"rebuilds,omitempty"`
	Serve    *Serve     `json:"serve,omitempty"`
	Latency  []Latency  `json:"latency,omitempty"`
	Memory   Memory     `json:"memory"`
	Problems []string   `json:"problems,omitempty"`
	Targets  []Target   `json:"targets"`
	Phases   []PhaseRun `json:"phases"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	MemoryMiB int64  `json:"memory_mib"`
	GoVersion string `json:"go_version"`
	Kernel    string `json:"kernel"`
	NATS      string `json:"nats"` // "embedded" or the external URL
}

// RunConfig is the configuration the run used, after defaults.
type RunConfig struct {
	Seed          uint64   `json:"seed"`
	Scale         float64  `json:"scale"`
	Provinces     int      `json:"provinces"`
	MsgID         bool     `json:"msg_id"`
	PublishWindow int      `json:"publish_window"`
	BatchSize     int      `json:"batch_size"`
	Runs          int      `json:"runs"`
	Peers         []string `json:"peers"`
	Loads         []int    `json:"loads_per_s"`
	LoadSeconds   float64  `json:"load_seconds"`
	Conns         int      `json:"conns"`
	Args          []string `json:"args,omitempty"`
}

// Workload is the size of the generated election and night.
type Workload struct {
	Provinces   int            `json:"provinces"`
	Districts   int            `json:"districts"`
	Wards       int            `json:"wards"`
	Stations    int            `json:"stations"`
	Voters      int64          `json:"voters"`
	Units       int            `json:"units"`
	Candidates  int            `json:"candidates"`
	Submissions int            `json:"submissions"`
	Kinds       map[string]int `json:"kinds"`
	// GenerateSeconds is the time to generate and parse the election.
	GenerateSeconds float64 `json:"generate_seconds"`
}

// Load is the pre-loading of the stream.
type Load struct {
	Published  int     `json:"published"`
	Deduped    int     `json:"deduped"` // acknowledged as duplicates (Nats-Msg-Id)
	Stored     uint64  `json:"stored"`  // messages in the stream afterwards
	Bytes      uint64  `json:"bytes"`   // stream bytes
	Seconds    float64 `json:"seconds"`
	EventsPerS float64 `json:"events_per_s"`
}

// Drain is the repeated runs of one reader over the whole stream.
type Drain struct {
	Runs      []float64 `json:"runs_events_per_s"`
	Seconds   []float64 `json:"runs_seconds"`
	Best      float64   `json:"best_events_per_s"`
	Median    float64   `json:"median_events_per_s"`
	PebbleMiB float64   `json:"pebble_mib,omitempty"` // fold: the store's size on disk after the last run
	// Fold, last run: its commits and the bytes they wrote to Pebble's WAL.
	Commits         int     `json:"commits,omitempty"`
	WALMiBPerCommit float64 `json:"wal_mib_per_commit,omitempty"`
	PeakRSSMiB      float64 `json:"peak_rss_mib"` // the highest of the runs' peaks
}

func (d *Drain) add(events uint64, elapsed time.Duration) {
	d.Seconds = append(d.Seconds, elapsed.Seconds())
	d.Runs = append(d.Runs, float64(events)/elapsed.Seconds())
	d.Best = slices.Max(d.Runs)
	d.Median = median(d.Runs)
}

// median returns the median of xs (not modified); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	}
	n := len(s)
	return (s[n/2-1] + s[n/2]) / 2
}

// Outcomes counts what a fold made of the stream.
type Outcomes struct {
	Applied    uint64 `json:"applied"`
	Stale      uint64 `json:"stale"`
	Duplicates uint64 `json:"duplicates"`
	Rejected   uint64 `json:"rejected"`
}

// Peer is one PostgreSQL peer's run.
type Peer struct {
	Design     string   `json:"design"` // PeerPostgres or PeerPostgresStrong
	Server     string   `json:"server"` // version
	Settings   []string `json:"settings"`
	Install    string   `json:"install,omitempty"` // what the harness did to get PostgreSQL
	Events     uint64   `json:"events"`
	Seconds    float64  `json:"seconds"`
	EventsPerS float64  `json:"events_per_s"`
	// TallyOverPeer is the best fold rate over the peer's.
	TallyOverPeer float64  `json:"tally_over_peer"`
	Outcomes      Outcomes `json:"outcomes"`
	// Statements and RoundTrips per event, on average.
	StatementsPerEvent float64 `json:"statements_per_event"`
	RoundTripsPerEvent float64 `json:"round_trips_per_event"`
	DatabaseMiB        float64 `json:"database_mib"`
	// Compared is the number of area and unit results compared with
	// tally's; Mismatches those that differ (must be 0).
	Compared   int      `json:"compared"`
	Mismatches int      `json:"mismatches"`
	Examples   []string `json:"mismatch_examples,omitempty"`
}

// Rebuild is projections.RebuildPartitions of the whole stream (or of
// every partition stream), in one variant.
type Rebuild struct {
	// Variant is RebuildPipelined or RebuildSerial.
	Variant string `json:"variant"`
	// Partitions is the number of streams rebuilt in parallel.
	Partitions int `json:"partitions"`
	// Events, Seconds, EventsPerS and PebbleMiB are the fastest run's.
	Events     uint64  `json:"events"`
	Seconds    float64 `json:"seconds"`
	EventsPerS float64 `json:"events_per_s"`
	PebbleMiB  float64 `json:"pebble_mib"`
	// Runs are every run's seconds, Median their median.
	Runs   []float64 `json:"runs_seconds"`
	Median float64   `json:"median_seconds"`
	// GCPercent is the garbage collector's setting during the runs, and
	// GCCycles the collections of each run.
	GCPercent int      `json:"gc_percent"`
	GCCycles  []uint64 `json:"gc_cycles"`
	// CPUSeconds is each run's CPU time, user and system, of the whole
	// process (the embedded NATS server's included), MedianCPUSeconds
	// their median: less sensitive than the time to other work on the
	// machine.
	CPUSeconds       []float64 `json:"cpu_seconds"`
	MedianCPUSeconds float64   `json:"median_cpu_seconds"`
	// LoadAverages are the machine's 1-minute load average at each run's
	// start.
	LoadAverages []float64 `json:"load_averages"`
	// Outcomes are the rebuilt stores' counters, summed over partitions,
	// read back by reopening them.
	Outcomes Outcomes `json:"outcomes"`
}

// Latency is one offered load of the latency phase.
type Latency struct {
	OfferedPerS  int     `json:"offered_per_s"`
	Seconds      float64 `json:"seconds"`
	Scheduled    int     `json:"scheduled"`
	Accepted     int     `json:"accepted"` // 202 answers
	Failed       int     `json:"failed"`   // errors and other answers
	NotSent      int     `json:"not_sent"` // still queued when the grace ended
	Seen         int     `json:"seen"`     // changes that arrived on the SSE client
	Missing      int     `json:"missing"`  // accepted but never seen
	AchievedPerS float64 `json:"achieved_per_s"`
	// From each POST's scheduled start to its 202.
	AckP50Ms float64 `json:"ack_p50_ms"`
	AckP99Ms float64 `json:"ack_p99_ms"`
	// From each POST's scheduled start to the change on the SSE client.
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
	SSEMiB    float64 `json:"sse_mib"` // bytes the SSE client read during the load
	PeakRSSMB float64 `json:"peak_rss_mib"`
}

// Memory is what the process held.
type Memory struct {
	// PeakRSSMiB is VmHWM at the end of the run: the whole process's
	// high-water mark, over every phase (the embedded NATS server included).
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// PhasePeakRSSMiB is each phase's own high-water mark.
	PhasePeakRSSMiB map[string]float64 `json:"phase_peak_rss_mib"`
	// PebbleMiB is the fold's store on disk after a full fold.
	PebbleMiB float64 `json:"pebble_mib"`
	// StreamMiB is the JetStream stream's bytes.
	StreamMiB float64 `json:"stream_mib"`
}

// Target is one target of the issue and whether this run met it.
type Target struct {
	Name string  `json:"name"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Unit string  `json:"unit"`
	Met  bool    `json:"met"`
	Note string  `json:"note,omitempty"`
}

// PhaseRun is one phase's wall time.
type PhaseRun struct {
	Name       string  `json:"name"`
	Seconds    float64 `json:"seconds"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	Profile    string  `json:"cpu_profile,omitempty"`
}
