package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
)

func runRebuild(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("rebuild", "--election FILE --data DIR [--nats URL]",
		`Rebuilds every projection from the stream, from its first event, into a
fresh store, then replaces the projections under DIR with it. The server
must be stopped: rebuild takes the same lock as serve and verify, and
refuses to run beside them. The result equals what the live fold produced.`, stdout, stderr)
	electionFile := fs.String("election", "", "election file; required")
	dataDir := fs.String("data", "", "data directory of the server; required")
	natsURL := fs.String("nats", "", "external NATS server URL (default: the embedded store under DIR)")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
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
	lock, err := lockProjections(*dataDir, "rebuild", true)
	if err != nil {
		fmt.Fprintf(stderr, "tally rebuild: %v\n", err)
		return exitFailed
	}
	defer lock.Close()

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
	stream, err := js.Stream(ctx, events.StreamName(e.ID))
	if err != nil {
		fmt.Fprintf(stderr, "tally rebuild: stream %s: %v\n", events.StreamName(e.ID), err)
		return exitFailed
	}
	start := time.Now()
	n, err := projections.RebuildDir(ctx, stream, e, filepath.Join(*dataDir, "projections"))
	if err != nil {
		fmt.Fprintf(stderr, "tally rebuild: %v\n", err)
		return exitFailed
	}
	d := time.Since(start)
	fmt.Fprintf(stdout, "rebuilt projections from %d events in %s (%.0f events/s)\n", n, d.Round(time.Millisecond), float64(n)/d.Seconds())
	return exitOK
}
