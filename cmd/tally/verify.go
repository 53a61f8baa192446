package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/audit"
	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

func runVerify(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("verify", "--election FILE --data DIR [--nats URL [--nats-seed-dir DIR]] [--json]",
		`Audits the published results against what the stations signed. It reads
the whole minutes stream of the election, independently of the projections,
re-checks every minutes against the rules of the election file and every
seal (signature) of a sealed station, recomputes every result with a fold
of its own, then compares every area result (every level, units summary),
every unit result (figures, ranking, winners, status), every station's
current minutes, the outcome of every message and the outcome counters
with the projections under DIR/projections. Every difference is listed
with the projections' value and the recomputed one.

The projections have folded the stream up to a checkpoint; verify
recomputes up to that same sequence and says how much more the stream
holds. Stop tally serve first: the projections (and the embedded NATS
store under DIR) may only be open in one process at a time.

Exit status: 0 when everything matches, 1 on any difference, on a seal
that fails to verify on minutes the projections counted as applied, or
when the audit cannot run; 2 on bad usage. A signature failure the
projections rejected too is reported but is no failure of the audit.`, stdout, stderr)
	electionFile := fs.String("election", "", "election file; required")
	dataDir := fs.String("data", "", "data directory of the server; required")
	natsURL := fs.String("nats", "", "external NATS server URL (default: the embedded store under DIR)")
	seedDir := fs.String("nats-seed-dir", "", "with --nats on a sealed election: directory of tally's NATS keys (reads as the aggregator)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	if *electionFile == "" || *dataDir == "" {
		return usageError(fs, "--election and --data are required")
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected arguments %q", fs.Args())
	}
	if *seedDir != "" && *natsURL == "" {
		return usageError(fs, "--nats-seed-dir needs --nats (the embedded store needs no keys)")
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "tally verify: "+format+"\n", a...)
		return exitFailed
	}
	e, err := loadElection(*electionFile)
	if err == nil {
		if p := events.CheckSeals(e); len(p) > 0 {
			err = fmt.Errorf("%s: %w", *electionFile, &tally.ElectionError{Problems: p})
		}
	}
	if err != nil {
		return fail("%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The projections first: their lock says whether a server runs on DIR,
	// before a second NATS server is started over its store.
	// With partitions (DIR/projections-pK), each partition's store holds
	// the part of the election in its provinces and is audited against
	// its own stream, all in parallel.
	n := dataPartitions(*dataDir)
	if st, err := os.Stat(projections.PartitionDir(*dataDir, 0, n)); err != nil || !st.IsDir() {
		return fail("no projections under %s (is --data the directory tally serve ran with?)", *dataDir)
	}
	elections, err := projections.PartElections(e, n)
	if err != nil {
		return fail("%v", err)
	}
	stores := make([]*projections.Store, n)
	defer func() {
		for _, st := range stores {
			if st != nil {
				st.Close()
			}
		}
	}()
	for p := range n {
		if stores[p], err = projections.Open(projections.PartitionDir(*dataDir, p, n), elections[p]); err != nil {
			if locked(err) {
				return fail("%v", lockedError(*dataDir, "verify", err))
			}
			return fail("%v", err)
		}
	}

	var nc *nats.Conn
	if *natsURL == "" {
		if _, err := os.Stat(filepath.Join(*dataDir, "nats")); err != nil {
			return fail("no embedded NATS store under %s: %v (give --nats URL for an external server)", *dataDir, err)
		}
		emb, err := broker.StartEmbedded(broker.EmbeddedOptions{Dir: *dataDir, Listen: "none"})
		if err != nil {
			return fail("%v", err)
		}
		defer emb.Shutdown()
		if nc, err = emb.Connect("tally-verify"); err != nil {
			return fail("%v", err)
		}
	} else {
		var opts []nats.Option
		if *seedDir != "" {
			roles, err := broker.LoadRoleSeeds(*seedDir, false)
			if err != nil {
				return fail("%v", err)
			}
			opts = append(opts, roles.Aggregator.Option())
		}
		if nc, err = broker.Dial(*natsURL, "tally-verify", opts...); err != nil {
			return fail("%v", err)
		}
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fail("%v", err)
	}
	streams, err := broker.PartitionStreams(ctx, js, e.ID)
	if err != nil {
		return fail("%v", err)
	}
	if len(streams) != n {
		return fail("the projections under %s are in %d partitions, the minutes streams in %d: give the data directory of these streams", *dataDir, n, len(streams))
	}
	reps := make([]*audit.Report, n)
	err = projections.EachPartition(n, func(p int) error {
		var err error
		reps[p], err = audit.Verify(ctx, elections[p], streams[p], stores[p])
		return err
	})
	if err != nil {
		return fail("%v", err)
	}
	if n > 1 {
		return printPartitionReports(reps, *asJSON, stdout, stderr)
	}
	rep := reps[0]
	if *asJSON {
		if rep.Differences == nil {
			rep.Differences = []audit.Difference{}
		}
		if rep.Seals.Failed == nil {
			rep.Seals.Failed = []audit.SealFailure{}
		}
		if rep.Seals.FailedApplied == nil {
			rep.Seals.FailedApplied = []audit.SealFailure{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fail("%v", err)
		}
	} else {
		printReport(stdout, rep)
	}
	if !rep.OK {
		return exitFailed
	}
	return exitOK
}

// printPartitionReports prints the audit of every partition, each as
// printReport does (or, with asJSON, {"partitions": [REPORT...], "ok": B}),
// and returns exitFailed unless every partition is OK.
func printPartitionReports(reps []*audit.Report, asJSON bool, stdout, stderr io.Writer) int {
	ok := true
	for _, r := range reps {
		ok = ok && r.OK
		if r.Differences == nil {
			r.Differences = []audit.Difference{}
		}
		if r.Seals.Failed == nil {
			r.Seals.Failed = []audit.SealFailure{}
		}
		if r.Seals.FailedApplied == nil {
			r.Seals.FailedApplied = []audit.SealFailure{}
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Partitions []*audit.Report `json:"partitions"`
			OK         bool            `json:"ok"`
		}{reps, ok}); err != nil {
			fmt.Fprintf(stderr, "tally verify: %v\n", err)
			return exitFailed
		}
	} else {
		for p, r := range reps {
			fmt.Fprintf(stdout, "partition %d of %d:\n", p, len(reps))
			printReport(stdout, r)
		}
		if ok {
			fmt.Fprintf(stdout, "all %d partitions match\n", len(reps))
		} else {
			fmt.Fprintf(stdout, "some of the %d partitions differ: see above\n", len(reps))
		}
	}
	if !ok {
		return exitFailed
	}
	return exitOK
}

// locked reports whether err is Pebble failing to take the store's lock.
func locked(err error) bool {
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "lock held") || strings.Contains(msg, "resource temporarily unavailable")
}

// maxListed bounds the differences printed in the human summary (--json
// has them all).
const maxListed = 50

func printReport(w io.Writer, r *audit.Report) {
	fmt.Fprintf(w, "election %s, stream %s\n", r.Election, r.Stream)
	fmt.Fprintf(w, "events read: %d (through seq %d, the projections' checkpoint)\n", r.EventsRead, min(r.Checkpoint, r.StreamLastSeq))
	if r.Beyond > 0 {
		fmt.Fprintf(w, "the stream holds %d more (through seq %d) the projections have not folded yet: not audited\n", r.Beyond, r.StreamLastSeq)
	}
	o := r.Outcomes
	fmt.Fprintf(w, "outcomes: %d applied, %d stale, %d duplicates, %d rejected\n", o.Applied, o.Stale, o.Duplicates, o.Rejected)
	fmt.Fprintf(w, "seals: %d checked, %d verified, %d failed", r.Seals.Checked, r.Seals.Verified, len(r.Seals.Failed))
	switch {
	case len(r.Seals.FailedApplied) > 0:
		fmt.Fprintf(w, ", %d of them APPLIED by the projections\n", len(r.Seals.FailedApplied))
	case len(r.Seals.Failed) > 0:
		fmt.Fprintf(w, " (rejected by the projections too)\n")
	default:
		fmt.Fprintln(w)
	}
	for _, f := range r.Seals.Failed {
		fmt.Fprintf(w, "  seal failure: seq %d station %s contest %s (projections: %s): %s\n", f.Seq, f.Station, f.Contest, f.Projections, f.Reason)
	}
	c := r.Compared
	fmt.Fprintf(w, "compared: %d area results, %d unit results, %d station records, %d messages, %d counters\n",
		c.Areas, c.Units, c.Stations, c.Messages, c.Counters)
	for i, d := range r.Differences {
		if i == maxListed {
			fmt.Fprintf(w, "  ... and %d more (--json lists them all)\n", len(r.Differences)-maxListed)
			break
		}
		fmt.Fprintf(w, "  DIFFERENCE %s\n", d)
	}
	if r.OK {
		fmt.Fprintln(w, "OK: the projections match the stream")
		return
	}
	fmt.Fprintf(w, "FAILED: %d differences, %d seal failures on applied minutes\n", len(r.Differences), len(r.Seals.FailedApplied))
}
