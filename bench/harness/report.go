package harness

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// targets checks the results against the targets of the issue. At a scale
// other than the national one, the figures are not comparable and say so.
func targets(res *Results) []Target {
	var out []Target
	national := res.Config.Scale == 1 && res.Config.Provinces == 0
	note := ""
	if !national {
		note = fmt.Sprintf("scale %g, %d provinces: not the national workload", res.Config.Scale, res.Workload.Provinces)
	}
	add := func(name, want string, got float64, unit string, met bool) {
		out = append(out, Target{Name: name, Want: want, Got: got, Unit: unit, Met: met, Note: note})
	}
	if res.Ceiling.Best > 0 && res.Fold.Best > 0 {
		add("fold/ceiling", "≥ 0.9", res.FoldOverCeiling, "ratio", res.FoldOverCeiling >= 0.9)
	}
	if res.Core != nil {
		add("fold core (one goroutine, binary events)", "≥ 1,000,000", res.Core.ApplyPerS, "minutes/s", res.Core.ApplyPerS >= 1e6)
	}
	if res.Peer != nil && res.Peer.EventsPerS > 0 {
		add("tally/PostgreSQL peer (naive)", "≥ 20", res.Peer.TallyOverPeer, "ratio", res.Peer.TallyOverPeer >= 20)
	}
	if res.StrongPeer != nil && res.StrongPeer.EventsPerS > 0 {
		add("tally/PostgreSQL peer (strong)", "≥ 1.5", res.StrongPeer.TallyOverPeer, "ratio", res.StrongPeer.TallyOverPeer >= 1.5)
	}
	if res.Rebuild != nil {
		add(fmt.Sprintf("rebuild of the whole stream (%d partitions)", max(1, res.Rebuild.Partitions)), "≤ 3", res.Rebuild.Seconds, "s", res.Rebuild.Seconds <= 3)
	}
	for _, l := range res.Latency {
		if l.OfferedPerS == 5000 {
			add("latency p99 at 5k minutes/s", "≤ 50", l.P99Ms, "ms", l.P99Ms <= 50 && l.Missing == 0 && l.NotSent == 0)
		}
	}
	if res.Serve != nil {
		add("peak RSS of tally serve, national stream folded", "≤ 1024", res.Serve.PeakRSSMiB, "MiB", res.Serve.PeakRSSMiB <= 1024)
	} else {
		peak := tallyPeakRSS(res)
		add("peak RSS (fold, rebuild, latency phases, NATS included)", "≤ 1024", peak, "MiB", peak <= 1024)
	}
	return out
}

// tallyPeakRSS is the highest peak of the phases where only tally (and its
// embedded NATS server) runs: not the harness's own in-memory copy of the
// stream (core) nor the PostgreSQL client.
func tallyPeakRSS(res *Results) float64 {
	var peak float64
	for _, p := range []string{"fold", "rebuild", "latency"} {
		peak = max(peak, res.Memory.PhasePeakRSSMiB[p])
	}
	return peak
}

// WriteTable writes a short human summary of res.
func WriteTable(w io.Writer, res *Results) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	wl := res.Workload
	p("workload\t%d provinces, %d districts, %d wards, %d stations, %d units, %d candidates (scale %g)",
		wl.Provinces, wl.Districts, wl.Wards, wl.Stations, wl.Units, wl.Candidates, res.Config.Scale)
	p("stream\t%d events (%d submissions, %d deduplicated), %.1f MiB, NATS %s", res.Load.Stored, wl.Submissions, res.Load.Deduped, res.Memory.StreamMiB, res.Machine.NATS)
	p("load (async publish, window %d)\t%s events/s", res.Config.PublishWindow, rate(res.Load.EventsPerS))
	p("ceiling (ack-only pull consumer)\tbest %s, median %s events/s", rate(res.Ceiling.Best), rate(res.Ceiling.Median))
	p("fold (aggregator, empty store)\tbest %s, median %s events/s; %d commits of %.2f MiB (Pebble WAL)", rate(res.Fold.Best), rate(res.Fold.Median), res.Fold.Commits, res.Fold.WALMiBPerCommit)
	p("fold/ceiling\t%.2f best over best; run by run %s, median %.2f", res.FoldOverCeiling, ratios(res.FoldOverCeilingRuns), res.FoldOverCeilingMedian)
	if c := res.Core; c != nil {
		p("fold core, no NATS: apply\t%s events/s", rate(c.ApplyPerS))
		p("fold core, no NATS: with commits\t%s events/s (%.1f ms a commit of %d)", rate(c.CommitPerS), c.CommitMs, res.Config.BatchSize)
	}
	p("outcomes\tapplied %d, stale %d, duplicates %d, rejected %d (as expected: %v)",
		res.FoldOutcomes.Applied, res.FoldOutcomes.Stale, res.FoldOutcomes.Duplicates, res.FoldOutcomes.Rejected, res.OutcomesMatch)
	for _, pr := range []*Peer{res.Peer, res.StrongPeer} {
		if pr == nil {
			continue
		}
		p("PostgreSQL peer, %s (%s)\t%s events/s, %.3f statements and %.4f round trips an event", pr.Design, pr.Server, rate(pr.EventsPerS), pr.StatementsPerEvent, pr.RoundTripsPerEvent)
		p("tally/PostgreSQL (%s)\t%.2f×", pr.Design, pr.TallyOverPeer)
		p("results compared with PostgreSQL (%s)\t%d, %d differ", pr.Design, pr.Compared, pr.Mismatches)
	}
	for _, rb := range res.Rebuilds {
		p("rebuild (%s), %d partition(s) in parallel\t%.2f s (fastest of %v s, median %.2f), %s events/s; outcomes %+v", rb.Variant, max(1, rb.Partitions), rb.Seconds, rb.Runs, rb.Median, rate(rb.EventsPerS), rb.Outcomes)
	}
	if sv := res.Serve; sv != nil {
		p("tally serve (own process) catching up\t%.2f s from start, %s events/s; peak RSS %.0f MiB", sv.CaughtUpSeconds, rate(sv.EventsPerS), sv.PeakRSSMiB)
	}
	for _, l := range res.Latency {
		p("latency at %d/s offered\tachieved %s/s; POST→SSE p50 %.1f ms, p99 %.1f ms, max %.1f ms; POST→202 p50 %.1f ms, p99 %.1f ms%s",
			l.OfferedPerS, rate(l.AchievedPerS), l.P50Ms, l.P99Ms, l.MaxMs, l.AckP50Ms, l.AckP99Ms, lossNote(l))
	}
	ph := res.Memory.PhasePeakRSSMiB
	p("peak RSS of this process\t%.0f MiB; by phase: fold %.0f, peer %.0f, strong peer %.0f, rebuild %.0f, core %.0f, latency %.0f MiB (NATS and harness included)",
		res.Memory.PeakRSSMiB, ph["fold"], ph["peer"], ph["peer-strong"], ph["rebuild"], ph["core"], ph["latency"])
	p("Pebble on disk\t%.1f MiB", res.Memory.PebbleMiB)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\twant\tgot\t")
	for _, t := range res.Targets {
		mark := "met"
		if !t.Met {
			mark = "NOT MET"
		}
		fmt.Fprintf(tw, "%s\t%s %s\t%s %s\t%s\n", t.Name, t.Want, t.Unit, num(t.Got), t.Unit, mark)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(res.Targets) > 0 && res.Targets[0].Note != "" {
		fmt.Fprintf(w, "(%s)\n", res.Targets[0].Note)
	}
	for _, pb := range res.Problems {
		fmt.Fprintf(w, "PROBLEM: %s\n", pb)
	}
	return nil
}

func lossNote(l Latency) string {
	var parts []string
	if l.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed", l.Failed))
	}
	if l.NotSent > 0 {
		parts = append(parts, fmt.Sprintf("%d not sent", l.NotSent))
	}
	if l.Missing > 0 {
		parts = append(parts, fmt.Sprintf("%d never seen", l.Missing))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// rate formats events per second with thousands separators.
func rate(v float64) string { return group(int64(v + 0.5)) }

func num(v float64) string {
	if v >= 1000 {
		return group(int64(v + 0.5))
	}
	return fmt.Sprintf("%.2f", v)
}

func group(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + group(-n)
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Guard is the CI guard on the fold: it returns an error when res's
// fold/ceiling is below floor, when the run measured no ratio, or when the
// run found a problem (outcomes or results that differ). The ratio is
// FoldOverCeilingMedian: the median, over the runs, of a fold run's rate
// over that of the ceiling run just before it, both drained by the same
// consumer kind in the same process. It is a ratio within one run, so a
// slow machine slows both sides; it never looks at an absolute time.
func Guard(res *Results, floor float64) error {
	var errs []error
	if len(res.FoldOverCeilingRuns) == 0 {
		errs = append(errs, errors.New("guard: the run measured no fold/ceiling ratio"))
	} else if res.FoldOverCeilingMedian < floor {
		errs = append(errs, fmt.Errorf("guard: fold/ceiling %.3f (median of the runs %s) is below the floor %.2f (fold runs %s, ceiling runs %s events/s)",
			res.FoldOverCeilingMedian, ratios(res.FoldOverCeilingRuns), floor, rates(res.Fold.Runs), rates(res.Ceiling.Runs)))
	}
	for _, pb := range res.Problems {
		errs = append(errs, fmt.Errorf("guard: %s", pb))
	}
	return errors.Join(errs...)
}

func ratios(rs []float64) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprintf("%.2f", r)
	}
	return strings.Join(s, " ")
}

func rates(rs []float64) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = rate(r)
	}
	return strings.Join(s, ", ")
}

// Ratios formats res's run-by-run fold/ceiling ratios.
func Ratios(res *Results) string { return ratios(res.FoldOverCeilingRuns) }
