package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// Run measures tally as Config says and returns what it measured. Results
// are returned, as far as they got, with an error too.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	cfg.ensureDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(cfg.TempDir, "tallybench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	r := &runner{cfg: &cfg, tmp: tmp, prof: profiler{prefix: cfg.CPUProfile}, res: &Results{
		Started: time.Now().UTC(),
		Machine: machine(),
		Config: RunConfig{Seed: cfg.Seed, Scale: cfg.Scale, Provinces: cfg.Provinces, MsgID: cfg.MsgID,
			PublishWindow: cfg.PublishWindow, BatchSize: cfg.BatchSize, Runs: cfg.Runs, Peers: cfg.Peers,
			Loads: cfg.Loads, LoadSeconds: cfg.LoadDuration.Seconds(), Conns: cfg.Conns},
		Memory: Memory{PhasePeakRSSMiB: map[string]float64{}},
	}}
	if cfg.NATSURL != "" {
		r.res.Machine.NATS = cfg.NATSURL
	}
	err = r.run(ctx)
	r.res.Memory.PeakRSSMiB = r.overallPeak
	r.res.Finished = time.Now().UTC()
	r.res.Targets = targets(r.res)
	return r.res, err
}

// runner holds one run's state.
type runner struct {
	cfg  *Config
	tmp  string
	prof profiler
	res  *Results

	e        *tally.Election
	embedded *broker.Embedded
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   jetstream.Stream   // the one stream (Partitions ≤ 1), else nil
	streams  []jetstream.Stream // every stream, partition p's at index p
	natsURL  string             // for tally serve
	n        uint64             // messages in the streams

	electionFile string
	lastSeq      uint64

	overallPeak float64
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// phase runs fn as a named phase: its time, its own peak RSS and, when
// asked, its CPU profile are recorded.
func (r *runner) phase(name string, profile bool, fn func() error) error {
	r.overallPeak = max(r.overallPeak, peakRSSMiB())
	resetPeakRSS()
	if profile {
		r.prof.start(name)
	}
	start := time.Now()
	err := fn()
	pr := PhaseRun{Name: name, Seconds: time.Since(start).Seconds(), PeakRSSMiB: peakRSSMiB()}
	if profile {
		pr.Profile = r.prof.stop()
	}
	r.overallPeak = max(r.overallPeak, pr.PeakRSSMiB)
	r.res.Phases = append(r.res.Phases, pr)
	r.res.Memory.PhasePeakRSSMiB[name] = max(r.res.Memory.PhasePeakRSSMiB[name], pr.PeakRSSMiB)
	return err
}

func (r *runner) run(ctx context.Context) error {
	cfg := r.cfg
	defer r.closeNATS()
	if err := r.phase("generate", false, func() error {
		var err error
		r.electionFile = filepath.Join(r.tmp, "election.json")
		r.e, r.res.Workload, err = generate(cfg, r.electionFile)
		return err
	}); err != nil {
		return err
	}
	w := &r.res.Workload
	r.logf("election %s: %d provinces, %d districts, %d wards, %d stations, %d units, %d candidates (generated and parsed in %.1fs)",
		r.e.ID, w.Provinces, w.Districts, w.Wards, w.Stations, w.Units, w.Candidates, w.GenerateSeconds)

	if err := r.openNATS(ctx); err != nil {
		return err
	}
	if err := r.phase("load", true, func() error {
		var err error
		r.res.Load, r.res.ExpectedOutcomes, err = preload(ctx, cfg, r.js, r.e, w)
		if err != nil {
			return err
		}
		for _, st := range r.streams {
			info, err := st.Info(ctx)
			if err != nil {
				return fmt.Errorf("stream info: %w", err)
			}
			r.n += info.State.Msgs
			r.lastSeq = info.State.LastSeq // of the one stream when it is one
			r.res.Load.Stored += info.State.Msgs
			r.res.Load.Bytes += info.State.Bytes
		}
		r.res.Memory.StreamMiB = float64(r.res.Load.Bytes) / mib
		return nil
	}); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	ld := r.res.Load
	r.logf("loaded %d events (%d deduplicated by Nats-Msg-Id) into %d stream(s), %.1f MiB, in %.1fs: %.0f events/s",
		ld.Stored, ld.Deduped, len(r.streams), float64(ld.Bytes)/mib, ld.Seconds, ld.EventsPerS)

	if r.stream == nil || cfg.SkipDrains {
		// The drains, the peers, serve and the core read one stream.
		if r.stream == nil {
			r.logf("%d partition streams: no ceiling, fold or core drains (they read one stream); the rebuild rebuilds the partitions in parallel", len(r.streams))
		} else {
			r.logf("no ceiling, fold or core drains, as asked")
		}
		if cfg.Rebuild {
			if err := r.phase("rebuild", false, func() error { return r.rebuild(ctx) }); err != nil {
				return fmt.Errorf("rebuild: %w", err)
			}
		}
		r.closeNATS()
		if len(cfg.Loads) > 0 {
			if err := r.phase("latency", true, func() error { return r.latency(ctx) }); err != nil {
				return fmt.Errorf("latency: %w", err)
			}
		}
		return nil
	}
	last, err := r.drains(ctx)
	if err != nil {
		return err
	}
	defer last.close()
	for _, design := range cfg.Peers {
		name := "peer"
		if design == PeerPostgresStrong {
			name = "peer-strong"
		}
		if err := r.phase(name, true, func() error { return r.peer(ctx, design, last.store) }); err != nil {
			return fmt.Errorf("%s peer: %w", design, err)
		}
	}
	// What follows gets the memory to itself.
	if err := last.close(); err != nil {
		return err
	}
	if cfg.Rebuild {
		if err := r.phase("rebuild", false, func() error { return r.rebuild(ctx) }); err != nil {
			return fmt.Errorf("rebuild: %w", err)
		}
	}
	if cfg.Serve {
		if err := r.phase("serve", false, func() error { return r.serve(ctx) }); err != nil {
			return fmt.Errorf("tally serve: %w", err)
		}
	}
	// Last: it holds a copy of the stream in memory.
	if !cfg.SkipCore {
		if err := r.phase("core", true, func() error { return r.core(ctx) }); err != nil {
			return fmt.Errorf("fold core: %w", err)
		}
	}
	// The latency phase runs a server of its own: free the bench stream and
	// the embedded server first.
	r.closeNATS()
	if len(cfg.Loads) > 0 {
		if err := r.phase("latency", true, func() error { return r.latency(ctx) }); err != nil {
			return fmt.Errorf("latency: %w", err)
		}
	}
	return nil
}

func (r *runner) openNATS(ctx context.Context) error {
	var err error
	if r.cfg.NATSURL == "" {
		listen := "none"
		if r.cfg.Serve {
			listen = "127.0.0.1:0" // for tally serve
		}
		r.embedded, err = broker.StartEmbedded(broker.EmbeddedOptions{Dir: filepath.Join(r.tmp, "nats"), Listen: listen})
		if err != nil {
			return err
		}
		r.natsURL = r.embedded.ClientURL()
		r.nc, err = r.embedded.Connect("tallybench")
	} else {
		r.natsURL = r.cfg.NATSURL
		r.nc, err = broker.Dial(r.cfg.NATSURL, "tallybench")
	}
	if err != nil {
		return err
	}
	r.js, err = jetstream.New(r.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	r.streams, err = resetStreams(ctx, r.js, r.e, max(1, r.cfg.Partitions))
	if err != nil {
		return err
	}
	if len(r.streams) == 1 {
		r.stream = r.streams[0]
	}
	return nil
}

// closeNATS deletes the bench stream from an external server, closes the
// connection and stops the embedded server. It may be called twice.
func (r *runner) closeNATS() {
	if r.nc == nil {
		return
	}
	if r.embedded == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for _, st := range r.streams {
			_ = r.js.DeleteStream(ctx, st.CachedInfo().Config.Name)
		}
		cancel()
	}
	r.nc.Close()
	r.nc = nil
	if r.embedded != nil {
		r.embedded.Shutdown()
		r.embedded = nil
	}
}

// drains alternates the ceiling and the fold, cfg.Runs times each, and
// returns the last fold run, its store open.
func (r *runner) drains(ctx context.Context) (*foldRun, error) {
	cfg := r.cfg
	var last *foldRun
	for i := range cfg.Runs {
		final := i == cfg.Runs-1
		var elapsed time.Duration
		if err := r.phase("ceiling", final, func() error {
			var err error
			elapsed, err = ceiling(ctx, r.stream, r.n, cfg.BatchSize)
			return err
		}); err != nil {
			return nil, fmt.Errorf("ceiling: %w", err)
		}
		r.res.Ceiling.add(r.n, elapsed)
		r.logf("ceiling run %d: %d events in %.2fs: %.0f events/s", i+1, r.n, elapsed.Seconds(), float64(r.n)/elapsed.Seconds())

		var run *foldRun
		if err := r.phase("fold", final, func() error {
			var err error
			run, err = fold(ctx, r.stream, r.e, filepath.Join(r.tmp, fmt.Sprintf("fold-%d", i+1)), r.lastSeq, cfg.BatchSize)
			return err
		}); err != nil {
			return nil, err
		}
		r.res.Fold.add(r.n, run.elapsed)
		r.res.FoldOverCeilingRuns = append(r.res.FoldOverCeilingRuns, elapsed.Seconds()/run.elapsed.Seconds())
		r.logf("fold run %d: %d events in %.2fs: %.0f events/s", i+1, r.n, run.elapsed.Seconds(), float64(r.n)/run.elapsed.Seconds())
		got := outcomesOf(run.meta)
		if i > 0 && got != r.res.FoldOutcomes {
			r.problem("fold run %d outcomes %+v differ from run %d's %+v", i+1, got, i, r.res.FoldOutcomes)
		}
		r.res.FoldOutcomes = got
		if !final {
			if err := run.close(); err != nil {
				return nil, err
			}
			continue
		}
		last = run
	}
	r.res.Ceiling.PeakRSSMiB = r.res.Memory.PhasePeakRSSMiB["ceiling"]
	r.res.Fold.PeakRSSMiB = r.res.Memory.PhasePeakRSSMiB["fold"]
	r.res.Fold.PebbleMiB = dirMiB(last.dir)
	r.res.Fold.Commits = last.commits
	r.res.Fold.WALMiBPerCommit = last.walMiB / float64(max(1, last.commits))
	r.res.Memory.PebbleMiB = r.res.Fold.PebbleMiB
	r.res.FoldOverCeiling = r.res.Fold.Best / r.res.Ceiling.Best
	r.res.FoldOverCeilingMedian = median(r.res.FoldOverCeilingRuns)
	r.res.OutcomesMatch = r.res.FoldOutcomes == r.res.ExpectedOutcomes
	if !r.res.OutcomesMatch {
		r.problem("the fold's outcomes %+v differ from the workload's %+v", r.res.FoldOutcomes, r.res.ExpectedOutcomes)
	}
	r.logf("fold/ceiling %.2f (best %.0f / %.0f events/s); run by run %s, median %.2f; outcomes %+v", r.res.FoldOverCeiling,
		r.res.Fold.Best, r.res.Ceiling.Best, ratios(r.res.FoldOverCeilingRuns), r.res.FoldOverCeilingMedian, r.res.FoldOutcomes)
	return last, nil
}

func (r *runner) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.res.Problems = append(r.res.Problems, msg)
	r.logf("PROBLEM: %s", msg)
}

// rebuild measures projections.RebuildPartitions of the whole stream, or
// of every partition stream in parallel, into new directories,
// cfg.RebuildRuns times for each of cfg.RebuildVariants, the variants
// alternating run by run; it opens the stores of each variant's first run
// and checks their checkpoints and outcomes against the streams and the
// workload.
func (r *runner) rebuild(ctx context.Context) error {
	variants := r.cfg.RebuildVariants
	if len(variants) == 0 {
		variants = []string{RebuildPipelined}
	}
	results := make([]*Rebuild, len(variants))
	for v, name := range variants {
		results[v] = &Rebuild{Variant: name, Partitions: len(r.streams)}
	}
	for i := range max(1, r.cfg.RebuildRuns) {
		for v, name := range variants {
			res := results[v]
			opts := projections.RebuildOptions{BatchSize: r.cfg.BatchSize, Serial: name == RebuildSerial}
			dataDir := filepath.Join(r.tmp, fmt.Sprintf("rebuild-%s-%d", name, i+1))
			// tally rebuild's garbage collector setting, or the default.
			gcPercent := 100
			if name == RebuildPipelined {
				gcPercent = projections.RebuildGCPercent
			}
			runtime.GC() // the previous run's garbage is not this one's
			prev := debug.SetGCPercent(gcPercent)
			load := loadAverage()
			if i == 0 {
				r.prof.start("rebuild-" + name) // each variant's first run
			}
			gcBefore, cpuBefore := gcCycles(), cpuSeconds()
			start := time.Now()
			read, err := projections.RebuildPartitionsWith(ctx, r.streams, r.e, dataDir, opts)
			elapsed := time.Since(start)
			cycles, cpu := gcCycles()-gcBefore, cpuSeconds()-cpuBefore
			r.prof.stop()
			debug.SetGCPercent(prev)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			var n uint64
			for _, k := range read {
				n += k
			}
			res.Runs = append(res.Runs, elapsed.Seconds())
			dirs := make([]string, len(r.streams))
			for p := range dirs {
				dirs[p] = projections.PartitionDir(dataDir, p, len(dirs))
			}
			var mibs float64
			for _, d := range dirs {
				mibs += dirMiB(d)
			}
			r.logf("rebuild %s run %d: %d events from %d stream(s) in %.2fs (%.2fs of CPU): %.0f events/s, %.1f MiB of Pebble, %d GC cycles at GOGC %d; load average %.2f at the start",
				name, i+1, n, len(r.streams), elapsed.Seconds(), cpu, float64(n)/elapsed.Seconds(), mibs, cycles, gcPercent, load)
			res.LoadAverages = append(res.LoadAverages, load)
			res.GCPercent = gcPercent
			res.GCCycles = append(res.GCCycles, cycles)
			res.CPUSeconds = append(res.CPUSeconds, cpu)
			if i == 0 || elapsed.Seconds() < res.Seconds {
				res.Events, res.Seconds, res.EventsPerS, res.PebbleMiB = n, elapsed.Seconds(), float64(n)/elapsed.Seconds(), mibs
			}
			if n != r.n {
				r.problem("rebuild %s read %d events, the streams hold %d", name, n, r.n)
			}
			if i == 0 {
				if res.Outcomes, err = r.checkRebuilt(ctx, dirs); err != nil {
					return err
				}
			}
			if err := os.RemoveAll(dataDir); err != nil {
				return err
			}
		}
	}
	r.res.Rebuild, r.res.Rebuilds = results[0], results
	for _, res := range results {
		res.Median = median(res.Runs)
		res.MedianCPUSeconds = median(res.CPUSeconds)
		r.logf("rebuild %s, %d stream(s): fastest %.2fs, median %.2fs of %d runs; CPU median %.2fs", res.Variant, res.Partitions, res.Seconds, res.Median, len(res.Runs), res.MedianCPUSeconds)
		if res.Variant == RebuildPipelined {
			r.res.Rebuild = res // tally's, for the target
		}
	}
	return nil
}

// gcCycles returns the number of garbage collections so far.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// checkRebuilt opens the rebuilt stores (partition p's in dirs[p]): each
// checkpoint must be its stream's last sequence, and the outcomes summed
// over the partitions those the workload expects.
func (r *runner) checkRebuilt(ctx context.Context, dirs []string) (Outcomes, error) {
	var sum Outcomes
	elections, err := projections.PartElections(r.e, len(dirs))
	if err != nil {
		return sum, err
	}
	for p, d := range dirs {
		info, err := r.streams[p].Info(ctx)
		if err != nil {
			return sum, fmt.Errorf("stream info: %w", err)
		}
		s, err := projections.Open(d, elections[p])
		if err != nil {
			return sum, fmt.Errorf("reopen rebuilt partition %d: %w", p, err)
		}
		meta, err := s.Meta()
		if cerr := s.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return sum, fmt.Errorf("rebuilt partition %d: %w", p, err)
		}
		if meta.Checkpoint != info.State.LastSeq {
			r.problem("rebuilt partition %d reopens at checkpoint %d, its stream ends at %d", p, meta.Checkpoint, info.State.LastSeq)
		}
		o := outcomesOf(meta)
		sum.Applied += o.Applied
		sum.Stale += o.Stale
		sum.Duplicates += o.Duplicates
		sum.Rejected += o.Rejected
	}
	if sum != r.res.ExpectedOutcomes {
		r.problem("the rebuilt stores' outcomes %+v differ from the workload's %+v", sum, r.res.ExpectedOutcomes)
	}
	return sum, nil
}

// core reads the stream into memory and folds it without NATS, cfg.Runs
// times, keeping the best rates.
func (r *runner) core(ctx context.Context) error {
	msgs, err := readAll(ctx, r.stream, r.n, r.cfg.BatchSize)
	if err != nil {
		return err
	}
	var best Core
	for i := range r.cfg.Runs {
		dir := filepath.Join(r.tmp, fmt.Sprintf("core-%d", i+1))
		c, meta, err := core(msgs, r.e, dir, r.cfg.BatchSize)
		if err != nil {
			return err
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		if got := outcomesOf(meta); got != r.res.FoldOutcomes {
			r.problem("fold core outcomes %+v differ from the aggregator's %+v", got, r.res.FoldOutcomes)
		}
		r.logf("fold core run %d: %d events: apply %.0f events/s, with commits %.0f events/s (%.2f ms a commit)", i+1, c.Events, c.ApplyPerS, c.CommitPerS, c.CommitMs)
		if c.ApplyPerS > best.ApplyPerS {
			best.Events, best.ApplyPerS = c.Events, c.ApplyPerS
		}
		if c.CommitPerS > best.CommitPerS {
			best.CommitPerS, best.CommitMs = c.CommitPerS, c.CommitMs
		}
	}
	r.res.Core = &best
	return nil
}
