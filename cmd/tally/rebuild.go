package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/projections"
)

func runRebuild(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("rebuild", "--election FILE --data DIR [--nats URL]",
		`Rebuilds every projection from the stream, from its first event, into a
fresh store, then replaces the projections under DIR with it. The server
must be stopped: rebuild takes the same lock as serve and verify, and
refuses to run beside them. The result equals what the live fold produced.

When the minutes are in partition streams (tally serve --partitions N), every
partition is rebuilt from its own stream into its own store
(DIR/projections-pK), all in parallel.

Reading, folding and committing overlap; the fresh store is synced once,
at the end, before it replaces the old one. Unless GOGC is set, the
garbage collector runs at GOGC=400 during the rebuild: less CPU, more
memory (about 2 GiB for a national election's stream). --memory-limit
caps that: the collector runs more often as the heap nears the limit
(Go's soft memory limit, as GOMEMLIMIT sets it).`, stdout, stderr)
	electionFile := fs.String("election", "", "election file; required")
	dataDir := fs.String("data", "", "data directory of the server; required")
	natsURL := fs.String("nats", "", "external NATS server URL (default: the embedded store under DIR)")
	var memLimit byteSize
	fs.Var(&memLimit, "memory-limit", "soft limit on the process's memory, a `SIZE` such as 1GiB (default: GOMEMLIMIT, or none)")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	if memLimit > 0 && memLimit < 64<<20 {
		return usageError(fs, "--memory-limit %s is below the 64MiB a rebuild needs at the least", memLimit.String())
	}
	if *electionFile == "" || *dataDir == "" {
		return usageError(fs, "--election and --data are required")
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected arguments %q", fs.Args())
	}
	e, err := loadElection(*electionFile)
	if err != nil {
		fmt.Fprintf(stderr, "tally rebuild: %v\n", err)
		return exitFailed
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The lock first: it says whether a server runs on DIR, before a
	// second NATS server is started over its store. It is held until the
	// rebuilt projections are in place.
	lock, err := lockProjections(*dataDir, dataPartitions(*dataDir), "rebuild", true)
	if err != nil {
		fmt.Fprintf(stderr, "tally rebuild: %v\n", err)
		return exitFailed
	}
	defer func() { lock.Close() }()

	var nc *nats.Conn
	if *natsURL == "" {
		if _, err := os.Stat(filepath.Join(*dataDir, "nats")); err != nil {
			fmt.Fprintf(stderr, "tally rebuild: no embedded NATS store under %s: %v\n", *dataDir, err)
			return exitFailed
		}
		emb, err := broker.StartEmbedded(broker.EmbeddedOptions{Dir: *dataDir, Listen: "none"})
		if err != nil {
			fmt.Fprintf(stderr, "tally rebuild: %v\n", err)
			return exitFailed
		}
		defer emb.Shutdown()
		nc, err = emb.Connect("tally-rebuild")
		if err != nil {
			fmt.Fprintf(stderr, "tally rebuild: %v\n", err)
			return exitFailed
		}
	} else {
		nc, err = broker.Dial(*natsURL, "tally-rebuild")
		if err != nil {
			fmt.Fprintf(stderr, "tally rebuild: %v\n", err)
			return exitFailed
		}
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintf(stderr, "tally rebuild: %v\n", err)
		return exitFailed
	}
	streams, err := broker.PartitionStreams(ctx, js, e.ID)
	if err != nil {
		fmt.Fprintf(stderr, "tally rebuild: %v\n", err)
		return exitFailed
	}
	if len(streams) > 1 {
		if err := projections.CheckPartitionDirs(*dataDir, len(streams)); err != nil {
			fmt.Fprintf(stderr, "tally rebuild: %v\n", err)
			return exitFailed
		}
		if dataPartitions(*dataDir) == 1 { // locked DIR/projections: lock partition 0's instead
			lock.Close()
			if lock, err = lockProjections(*dataDir, len(streams), "rebuild", true); err != nil {
				fmt.Fprintf(stderr, "tally rebuild: %v\n", err)
				return exitFailed
			}
		}
	}
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(projections.RebuildGCPercent))
	}
	if memLimit > 0 {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(int64(memLimit)))
	}
	start := time.Now()
	read, err := projections.RebuildPartitions(ctx, streams, e, *dataDir)
	if err != nil {
		fmt.Fprintf(stderr, "tally rebuild: %v\n", err)
		return exitFailed
	}
	d := time.Since(start)
	var n uint64
	for _, k := range read {
		n += k
	}
	if len(streams) > 1 {
		fmt.Fprintf(stdout, "rebuilt %d partitions in parallel from %d events in %s (%.0f events/s); events per partition %v\n",
			len(streams), n, d.Round(time.Millisecond), float64(n)/d.Seconds(), read)
		return exitOK
	}
	fmt.Fprintf(stdout, "rebuilt projections from %d events in %s (%.0f events/s)\n", n, d.Round(time.Millisecond), float64(n)/d.Seconds())
	return exitOK
}

// dataPartitions returns how many partitions' projections dataDir holds
// (DIR/projections-pK, at least 2 when any), else 1 (DIR/projections, or
// nothing yet): lockProjections locks partition 0's store or
// DIR/projections accordingly, as serve does.
func dataPartitions(dataDir string) int {
	n := 0
	for {
		if fi, err := os.Stat(projections.PartitionDir(dataDir, n, 2)); err != nil || !fi.IsDir() {
			break
		}
		n++
	}
	if n == 0 {
		return 1
	}
	return max(n, 2)
}
