package harness

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Peers the harness knows: two designs of the same fold in PostgreSQL.
const (
	// PeerPostgres is the naive design: an upsert per aggregate row per
	// event (peer.go).
	PeerPostgres = "postgres"
	// PeerPostgresStrong is the strong design: current minutes in memory,
	// deltas summed per batch, one unnest statement per table per batch
	// (strong.go).
	PeerPostgresStrong = "postgres-strong"
)

// Rebuild variants the harness knows (projections.RebuildOptions).
const (
	// RebuildPipelined is the rebuild tally does: reading, folding and
	// committing overlap, commits unsynced until one sync at the end, the
	// garbage collector at projections.RebuildGCPercent (as tally
	// rebuild sets it).
	RebuildPipelined = "pipelined"
	// RebuildPipelinedGC100 is RebuildPipelined with the garbage
	// collector at its default, 100.
	RebuildPipelinedGC100 = "pipelined-gc100"
	// RebuildSerial is the rebuild before it was pipelined: one goroutine,
	// every commit fsynced, the garbage collector at 100.
	RebuildSerial = "serial"
)

// Config configures a run. The zero value, after defaults, drains the
// national night (ceiling, fold, fold core) and measures nothing else; the
// peer, the rebuild and the latency phase are asked for by their fields.
type Config struct {
	// Seed fixes the election and the night. Default 2021.
	Seed uint64
	// Scale and Provinces shape the election (workload.NationalConfig):
	// scale 1 is Vietnam in 2021; Provinces keeps the first N provinces
	// (0: all 63).
	Scale     float64
	Provinces int
	// TwoTier generates the structure in force since 1 July 2025 (2026:
	// province, commune), PerCouncil the 2021 one written as one contest
	// per council (workload.NationalConfig).
	TwoTier, PerCouncil bool
	// ElectionID names the generated election, and so the stream
	// (TALLY_<id>), which the harness deletes and recreates. Default
	// "vn-2021-bench".
	ElectionID string

	// NATSURL is an external NATS server; "" starts an embedded one in a
	// temporary directory (SyncAlways, as broker.StartEmbedded does).
	NATSURL string
	// MsgID sets Nats-Msg-Id on every event as the gateway does, so the
	// night's duplicate submissions are stored once. Without it they reach
	// the fold, which counts them as duplicates.
	MsgID bool
	// PublishWindow is the most asynchronous publishes in flight while
	// pre-loading. Default (and maximum) 1000.
	PublishWindow int

	// BatchSize is the fold's batch (AggregatorConfig.BatchSize), the
	// ceiling's ack interval and the peer's transaction size. Default 10,000.
	BatchSize int
	// Runs is how many times ceiling and fold each drain the stream,
	// alternating. Default 2; at least 2.
	Runs int

	// Peers are the PostgreSQL peers to run, in this order, each on a
	// PostgreSQL cluster of its own: PeerPostgres, PeerPostgresStrong.
	Peers []string
	// PostgresSharedBuffers is the peer server's shared_buffers. Default
	// "1GB".
	PostgresSharedBuffers string

	// SkipDrains skips the ceiling and fold drains, and with them the
	// fold core (as with several partitions): for a run that measures the
	// rebuild alone. The peers and Serve need the drains.
	SkipDrains bool

	// SkipCore skips the fold core (the stream folded from memory without
	// NATS), which the zero value measures.
	SkipCore bool

	// Rebuild measures projections.RebuildPartitions of the whole stream
	// (or of every partition stream, in parallel), RebuildRuns times
	// (default 1) for each of RebuildVariants (default RebuildPipelined),
	// the variants alternating, and reopens the rebuilt stores to check
	// them.
	Rebuild         bool
	RebuildRuns     int
	RebuildVariants []string
	// Serve runs `tally serve` as a process of its own on the pre-loaded
	// stream (the embedded NATS server then listens on a loopback port)
	// and measures its catching up and its memory.
	Serve bool
	// TallyBinary is the tally binary Serve runs; "" builds one from this
	// module with the go command.
	TallyBinary string

	// Loads are the offered loads of the latency phase, in minutes per
	// second; none skips the phase.
	Loads []int
	// LoadDuration is how long each load is offered. Default 10 s.
	LoadDuration time.Duration
	// LoadGrace bounds the wait, after a load's last scheduled request, for
	// the last answers and SSE events. Default 10 s.
	LoadGrace time.Duration
	// Conns is the number of concurrent HTTP connections (and senders) of
	// the latency phase. Default 256.
	Conns int
	// Partitions is the number of minutes streams, by province (events'
	// partitions, as tally serve --partitions), both of the pre-loaded
	// night and of the latency phase's server. Default 1. With more than
	// one, the phases that read one stream (ceiling, fold, peers, serve,
	// core) do not run: the rebuild rebuilds the partitions in parallel.
	Partitions int
	// Replicas is the latency phase's server's --replicas, on an external
	// NATS cluster (--nats).
	Replicas int
	// NoGroupCommit turns off the latency phase's server's group commit
	// (tally serve --no-group-commit), for a comparison in one binary.
	NoGroupCommit bool

	// CPUProfile, if set, is a path prefix: each phase writes its CPU
	// profile to CPUProfile-<phase>.pprof (the last run of each, for the
	// ceiling and the fold); the rebuild writes one per variant, of its
	// first run, to CPUProfile-rebuild-<variant>.pprof.
	CPUProfile string

	// TempDir holds every directory the run makes (default os.TempDir());
	// they are removed at the end.
	TempDir string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

func (c *Config) ensureDefaults() {
	if c.Seed == 0 {
		c.Seed = 2021
	}
	if c.Scale == 0 {
		c.Scale = 1
	}
	if c.ElectionID == "" {
		c.ElectionID = "vn-2021-bench"
	}
	if c.PublishWindow <= 0 {
		c.PublishWindow = 1000
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 10_000
	}
	if c.Runs == 0 {
		c.Runs = 2
	}
	if c.PostgresSharedBuffers == "" {
		c.PostgresSharedBuffers = "1GB"
	}
	if c.LoadDuration <= 0 {
		c.LoadDuration = 10 * time.Second
	}
	if c.LoadGrace <= 0 {
		c.LoadGrace = 10 * time.Second
	}
	if c.Conns <= 0 {
		c.Conns = 256
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.PublishWindow > 1000 {
		errs = append(errs, fmt.Errorf("harness: publish window %d above 1000", c.PublishWindow))
	}
	if c.Runs < 2 {
		errs = append(errs, fmt.Errorf("harness: %d runs, want at least 2 (the first is cold)", c.Runs))
	}
	for i, p := range c.Peers {
		if p != PeerPostgres && p != PeerPostgresStrong {
			errs = append(errs, fmt.Errorf("harness: unknown peer %q (want %q or %q)", p, PeerPostgres, PeerPostgresStrong))
		}
		if slices.Contains(c.Peers[:i], p) {
			errs = append(errs, fmt.Errorf("harness: peer %q asked for twice", p))
		}
	}
	for i, v := range c.RebuildVariants {
		if v != RebuildPipelined && v != RebuildPipelinedGC100 && v != RebuildSerial {
			errs = append(errs, fmt.Errorf("harness: unknown rebuild variant %q (want %q, %q or %q)", v, RebuildPipelined, RebuildPipelinedGC100, RebuildSerial))
		}
		if slices.Contains(c.RebuildVariants[:i], v) {
			errs = append(errs, fmt.Errorf("harness: rebuild variant %q asked for twice", v))
		}
	}
	if c.SkipDrains && (len(c.Peers) > 0 || c.Serve) {
		errs = append(errs, errors.New("harness: the peers and serve need the drains"))
	}
	if c.Partitions > 1 && (len(c.Peers) > 0 || c.Serve) {
		errs = append(errs, fmt.Errorf("harness: partitions %d: the peers and serve read one stream; ask for them with 1 partition", c.Partitions))
	}
	for _, l := range c.Loads {
		if l <= 0 {
			errs = append(errs, fmt.Errorf("harness: offered load %d, want a positive rate", l))
		}
	}
	return errors.Join(errs...)
}
