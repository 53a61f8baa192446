package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
	stream   jetstream.Stream
	natsURL  string // for tally serve
	n        uint64 // messages in the stream

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
		info, err := r.stream.Info(ctx)
		if err != nil {
			return fmt.Errorf("stream info: %w", err)
		}
		r.n, r.lastSeq = info.State.Msgs, info.State.LastSeq
		r.res.Load.Stored, r.res.Load.Bytes = info.State.Msgs, info.State.Bytes
		r.res.Memory.StreamMiB = float64(info.State.Bytes) / mib
		return nil
	}); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	ld := r.res.Load
	r.logf("loaded %d events (%d deduplicated by Nats-Msg-Id), %.1f MiB, in %.1fs: %.0f events/s",
		ld.Stored, ld.Deduped, float64(ld.Bytes)/mib, ld.Seconds, ld.EventsPerS)

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
		if err := r.phase("rebuild", true, func() error { return r.rebuild(ctx) }); err != nil {
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
	r.stream, err = resetStream(ctx, r.js, r.e.ID)
	return err
}

// closeNATS deletes the bench stream from an external server, closes the
// connection and stops the embedded server. It may be called twice.
func (r *runner) closeNATS() {
	if r.nc == nil {
		return
	}
	if r.embedded == nil && r.stream != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = r.js.DeleteStream(ctx, r.stream.CachedInfo().Config.Name)
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

// rebuild measures projections.RebuildDir of the whole stream into a new
// directory.
func (r *runner) rebuild(ctx context.Context) error {
	dir := filepath.Join(r.tmp, "rebuild")
	start := time.Now()
	n, err := projections.RebuildDir(ctx, r.stream, r.e, dir)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	r.res.Rebuild = &Rebuild{Events: n, Seconds: elapsed.Seconds(), EventsPerS: float64(n) / elapsed.Seconds(), PebbleMiB: dirMiB(dir)}
	r.logf("rebuild: %d events in %.2fs: %.0f events/s, %.1f MiB of Pebble", n, elapsed.Seconds(), r.res.Rebuild.EventsPerS, r.res.Rebuild.PebbleMiB)
	if n != r.n {
		r.problem("rebuild read %d events, the stream holds %d", n, r.n)
	}
	return os.RemoveAll(dir)
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
