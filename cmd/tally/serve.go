package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/server"
	"github.com/tallyvn/tally/tally"
)

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", "--election FILE --data DIR [flags]",
		`Runs tally: the HTTP gateway stations submit minutes to, the fold that
aggregates them into results, and the results API. Without --nats it starts
an embedded NATS server with JetStream that keeps the stream under DIR.
Restarting with the same DIR resumes where it stopped. SIGINT or SIGTERM
shut it down cleanly.`, stdout, stderr)
	electionFile := fs.String("election", "", "election file (JSON, CONTRACT §2); required")
	dataDir := fs.String("data", "", "data directory for the projections and the embedded NATS store; required")
	httpAddr := fs.String("http", "127.0.0.1:8080", "HTTP API address")
	natsURL := fs.String("nats", "", "external NATS server URL (default: embedded server)")
	natsListen := fs.String("nats-listen", "127.0.0.1:4222", "where the embedded NATS server listens for stations; 'none' for no listener")
	replicas := fs.Int("replicas", 1, "stream replicas on an external NATS cluster")
	batch := fs.Int("batch", 2000, "most minutes folded per Pebble commit")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	if *electionFile == "" || *dataDir == "" {
		return usageError(fs, "--election and --data are required")
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected arguments %q", fs.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageError(fs, "bad --log-level %q", *logLevel)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	e, err := loadElection(*electionFile)
	if err == nil {
		if p := events.CheckSeals(e); len(p) > 0 {
			err = fmt.Errorf("%s: %w", *electionFile, &tally.ElectionError{Problems: p})
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "tally serve: %v\n", err)
		return exitFailed
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, server.Config{
		Election: e, DataDir: *dataDir, HTTPAddr: *httpAddr,
		NATSURL: *natsURL, NATSListen: *natsListen, Replicas: *replicas,
		BatchSize: *batch, Logger: logger,
	})
	if err != nil {
		fmt.Fprintf(stderr, "tally serve: %v\n", err)
		return exitFailed
	}
	logger.Info("listening", "http", "http://"+srv.Addr(), "nats", srv.NATSURL(),
		"election", e.ID, "stations", len(e.Stations), "contests", len(e.Contests))
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "tally serve: %v\n", err)
		return exitFailed
	}
	logger.Info("stopped cleanly")
	return exitOK
}

// loadElection reads and validates an election file.
func loadElection(path string) (*tally.Election, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read election file: %w", err)
	}
	e, err := tally.Parse(data)
	if err != nil {
		var ee *tally.ElectionError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return nil, err
	}
	return e, nil
}
