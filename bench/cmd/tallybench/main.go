// Command tallybench measures tally end to end on a national-scale
// election night: the JetStream ceiling, the fold, the fold core, the
// PostgreSQL peer, the rebuild, the POST-to-SSE latency and the memory.
// See bench/README.md. It only binds flags into harness.Config and calls
// harness.Run.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tallyvn/tally/bench/harness"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tallybench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./bench/cmd/tallybench [flags]\n\n"+
			"Generates a national election night, pre-loads it into a JetStream stream and measures\n"+
			"tally on it (see bench/README.md). Progress goes to stderr, a table to stdout, every\n"+
			"figure to the JSON file of --out.\n\nflags:\n")
		fs.PrintDefaults()
	}
	var cfg harness.Config
	fs.Uint64Var(&cfg.Seed, "seed", 2021, "seed of the election and the night")
	fs.Float64Var(&cfg.Scale, "scale", 1, "election scale: 1 is Vietnam 2021 (about 85,000 stations), 10 about Indonesia")
	fs.IntVar(&cfg.Provinces, "provinces", 0, "keep only the first N provinces (0: all 63), for quick runs")
	structure := fs.String("structure", "2021", "2021 (one contest per ballot), 2021-councils (one contest per council) or 2026 (two tiers)")
	fs.StringVar(&cfg.ElectionID, "election-id", "vn-2021-bench", "election id; the stream TALLY_<id> is deleted and recreated")
	fs.StringVar(&cfg.NATSURL, "nats", "", "external NATS server URL (default: an embedded server in a temporary directory)")
	fs.BoolVar(&cfg.MsgID, "msgid", true, "set Nats-Msg-Id on every event as the gateway does (the night's duplicates are then stored once)")
	fs.IntVar(&cfg.PublishWindow, "window", 1000, "asynchronous publishes in flight while pre-loading (at most 1000)")
	fs.IntVar(&cfg.BatchSize, "batch", 10000, "fold batch size, ceiling ack interval, peer transaction size")
	fs.IntVar(&cfg.Runs, "runs", 2, "runs of the ceiling and of the fold, alternating (at least 2)")
	peer := fs.String("peer", "none", "PostgreSQL peers to compare with, comma-separated: postgres (naive: an upsert per aggregate row per event), postgres-strong (deltas summed per batch, one unnest statement per table), or none (installs the Debian package postgresql if needed)")
	fs.StringVar(&cfg.PostgresSharedBuffers, "pg-shared-buffers", "1GB", "shared_buffers of the PostgreSQL peer")
	drains := fs.Bool("drains", true, "drain the stream with the ceiling and the fold (false: skip them and the fold core, for a run measuring the rebuild; the peers and --serve need them)")
	core := fs.Bool("core", true, "measure the fold core (the stream folded from memory, without NATS)")
	floor := fs.Float64("min-fold-over-ceiling", 0, "fail (exit 1) if fold/ceiling (the median of the runs' ratios, each fold run over the ceiling run before it) is below this ratio or the run found a problem: the CI guard (0: no guard)")
	fs.BoolVar(&cfg.Rebuild, "rebuild", true, "measure the rebuild of the whole stream (projections.RebuildPartitions: every partition stream in parallel)")
	fs.IntVar(&cfg.RebuildRuns, "rebuild-runs", 1, "times the rebuild is measured, per variant (the fastest and the median are reported)")
	variants := fs.String("rebuild-variants", harness.RebuildPipelined, "rebuilds to measure, comma-separated, alternating run by run: "+harness.RebuildPipelined+" (tally rebuild's, garbage collector included), "+harness.RebuildPipelinedGC100+" (the same at GOGC 100) or "+harness.RebuildSerial+" (the one before round 2: one goroutine, every commit fsynced, GOGC 100)")
	fs.BoolVar(&cfg.Serve, "serve", true, "run tally serve as a process of its own on the stream and measure its memory (builds ./cmd/tally)")
	fs.StringVar(&cfg.TallyBinary, "tally", "", "tally binary for --serve (default: go build ./cmd/tally)")
	loads := fs.String("loads", "1000,5000,20000", "offered loads of the latency phase, minutes/s, comma-separated (empty: skip)")
	fs.DurationVar(&cfg.LoadDuration, "load-duration", 10*time.Second, "how long each load is offered")
	fs.DurationVar(&cfg.LoadGrace, "load-grace", 10*time.Second, "wait at most this long after a load for its last answers and events")
	fs.IntVar(&cfg.Conns, "conns", 256, "concurrent HTTP connections of the latency phase")
	fs.IntVar(&cfg.Partitions, "partitions", 1, "minutes streams (by province, as tally serve --partitions) of the pre-loaded night and of the latency phase's server; above 1 the phases that read one stream (ceiling, fold, core) are skipped, serve and the peers refused, and the rebuild rebuilds the partitions in parallel")
	fs.BoolVar(&cfg.NoGroupCommit, "no-group-commit", false, "the latency phase's server publishes every minutes on its own (tally serve --no-group-commit)")
	fs.IntVar(&cfg.Replicas, "replicas", 1, "replicas of the latency phase's streams, on an external NATS cluster (--nats; tally serve --replicas)")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write one CPU profile per phase to PREFIX-<phase>.pprof")
	out := fs.String("out", filepath.Join("bench", "results", time.Now().Format(time.DateOnly)+".json"), "JSON results file ('' for none)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tallybench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	switch *structure {
	case "2021":
	case "2021-councils":
		cfg.PerCouncil = true
	case "2026":
		cfg.TwoTier = true
	default:
		fmt.Fprintf(stderr, "tallybench: --structure %q: want 2021, 2021-councils or 2026\n", *structure)
		return 2
	}
	cfg.SkipCore = !*core
	cfg.SkipDrains = !*drains
	if *floor < 0 || *floor > 1 {
		fmt.Fprintf(stderr, "tallybench: --min-fold-over-ceiling %g: want a ratio from 0 to 1\n", *floor)
		return 2
	}
	for _, s := range strings.Split(*peer, ",") {
		switch s = strings.TrimSpace(s); s {
		case "none", "":
		case harness.PeerPostgres, harness.PeerPostgresStrong:
			if slices.Contains(cfg.Peers, s) {
				fmt.Fprintf(stderr, "tallybench: --peer: %q given twice\n", s)
				return 2
			}
			cfg.Peers = append(cfg.Peers, s)
		default:
			fmt.Fprintf(stderr, "tallybench: --peer: %q is not a peer: want none, %s or %s, comma-separated\n", s, harness.PeerPostgres, harness.PeerPostgresStrong)
			return 2
		}
	}
	for _, s := range strings.Split(*variants, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.RebuildVariants = append(cfg.RebuildVariants, s)
		}
	}
	for _, s := range strings.Split(*loads, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			fmt.Fprintf(stderr, "tallybench: --loads: %q is not a positive rate\n", s)
			return 2
		}
		cfg.Loads = append(cfg.Loads, n)
	}
	cfg.Log = stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := harness.Run(ctx, cfg)
	if res != nil {
		res.Config.Args = args
		if werr := harness.WriteTable(stdout, res); werr != nil && err == nil {
			err = werr
		}
		if *out != "" {
			if werr := writeJSON(*out, res); werr != nil {
				fmt.Fprintf(stderr, "tallybench: %v\n", werr)
				return 1
			}
			fmt.Fprintf(stderr, "results written to %s\n", *out)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "tallybench: %v\n", err)
		return 1
	}
	if *floor > 0 {
		if err := harness.Guard(res, *floor); err != nil {
			fmt.Fprintf(stderr, "tallybench: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "tallybench: fold/ceiling %.2f (median of the runs %s), floor %.2f: passed\n",
			res.FoldOverCeilingMedian, harness.Ratios(res), *floor)
	}
	return 0
}

func writeJSON(path string, res *harness.Results) error {
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
