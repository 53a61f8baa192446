package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/server"
	"github.com/tallyvn/tally/tally"
)

// maxPartitions bounds --partitions: each partition is a stream, a
// consumer, a Pebble store and a goroutine folding it.
const maxPartitions = 64

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", "--election FILE --data DIR [flags]",
		`Runs tally: the HTTP gateway stations submit minutes to, the fold that
aggregates them into results, and the results API. Without --nats it starts
an embedded NATS server with JetStream that keeps the stream under DIR.
Restarting with the same DIR resumes where it stopped. SIGINT or SIGTERM
shut it down cleanly.

On a NATS cluster (--nats listing its members), any number of tally nodes
can run, each with its own --node NAME and --data DIR: each folds the whole
stream into its own projections with its own consumer, accepts submissions
and answers every query. --replicas sets the stream's replication factor
when tally creates it. GET /healthz answers while the process runs, GET
/readyz once the node has caught up with the stream.

Securing an election (CONTRACT §7): when stations in the election file have
a seal, their minutes are accepted only with a signature that verifies, and
the embedded NATS server admits only nkey users: each sealed station (its
seal is its NATS identity) may publish only its own minutes, tally's
gateway and aggregator get keys made at start; anonymous clients are
refused. With --nats, give tally its keys with --nats-seed-dir (see 'tally
nats-config'). --token-file makes an operator token (Authorization: Bearer)
necessary to submit minutes that are not all sealed. --tls-cert and
--tls-key serve HTTPS. Request bodies, minutes per request, timeouts and
the load admitted at once are bounded by the flags below.

The embedded NATS server never admits anonymous clients. For an election
without seals it admits only the identities listed in --nats-users; with
no such file and --nats-listen left at its default, it does not listen at
all (stations submit over HTTP), and says so at start.`, stdout, stderr)
	electionFile := fs.String("election", "", "election file (JSON, CONTRACT §2); required")
	dataDir := fs.String("data", "", "data directory for the projections and the embedded NATS store; required")
	httpAddr := fs.String("http", "127.0.0.1:8080", "HTTP API address")
	natsURL := fs.String("nats", "", "`URL[,URL...]` of an external NATS server or cluster (several members for failover; tally reconnects to any of them, forever); default: an embedded server")
	natsListen := fs.String("nats-listen", "127.0.0.1:4222", "where the embedded NATS server listens for stations; 'none' for no listener")
	replicas := fs.Int("replicas", 1, "replication factor of the stream when tally creates it on a NATS cluster (needs --nats)")
	node := fs.String("node", projections.DefaultNode, "`NAME` of this tally node: its fold keeps its own consumer (tally-fold-NAME; tally-fold for the default), so several nodes, each with its own --data, can share one NATS cluster; letters, digits, '-' and '_'")
	partitions := fs.Int("partitions", 1, "`N` minutes streams, split by province, each folded in parallel into its own store (DIR/projections-pK) by its own consumer (tally-fold[-NAME]-K); fixed when the streams are first created: a start with another N is refused. 1: the one stream, DIR/projections")
	noGroupCommit := fs.Bool("no-group-commit", false, "publish every submitted minutes on its own, instead of storing the minutes of concurrent submissions together in one JetStream atomic batch (one batch costs a few fsyncs whatever its size); a stream created by an older tally refuses batches and gets them one by one anyway")
	publishTimeout := fs.Duration("publish-timeout", 10*time.Second, "how long a submission waits for JetStream to store it before the answer is 503 (retry): on a cluster, a request in flight when the stream's leader dies waits this long")
	batch := fs.Int("batch", 10000, "most minutes folded per Pebble commit")
	seedDir := fs.String("nats-seed-dir", "", "with --nats: `DIR` holding tally's NATS keys, gateway.seed and aggregator.seed, as 'tally nats-config' makes them")
	tokenFile := fs.String("token-file", "", "`FILE` holding the operator token; when set, submissions whose minutes are not all sealed need 'Authorization: Bearer TOKEN'")
	tlsCert := fs.String("tls-cert", "", "TLS certificate `FILE` (PEM) to serve HTTPS; needs --tls-key")
	tlsKey := fs.String("tls-key", "", "TLS private key `FILE` (PEM); needs --tls-cert")
	maxBody := byteSize(8 << 20)
	fs.Var(&maxBody, "max-body", "largest submission body, a `SIZE` such as 8MiB (413 above it)")
	maxMinutes := fs.Int("max-minutes", 10_000, "most minutes in one submission (413 above it)")
	readTimeout := fs.Duration("read-timeout", 60*time.Second, "time a client has to send its whole request")
	writeTimeout := fs.Duration("write-timeout", 60*time.Second, "time to write an answer (event streams are exempt)")
	idleTimeout := fs.Duration("idle-timeout", 120*time.Second, "how long an idle keep-alive connection stays open")
	maxPending := fs.Uint64("max-pending", 100_000, "minutes the fold may lag behind the stream before submissions are refused with 429")
	maxInFlight := fs.Int("max-inflight", 512, "submissions handled at once; beyond it the answer is 429")
	maxInFlightBytes := byteSize(128 << 20)
	fs.Var(&maxInFlightBytes, "max-inflight-bytes", "`SIZE` of the submissions handled at once; beyond it the answer is 429")
	minFree := byteSize(64 << 20)
	fs.Var(&minFree, "min-free", "free space (`SIZE`) the data directory must keep to accept submissions (503 below it); 0: not checked")
	memLimit := byteSize(768 << 20)
	fs.Var(&memLimit, "memory-limit", "soft limit (`SIZE`) of the Go heap: the garbage collector works harder near it instead of letting the heap double; 0: none. GOMEMLIMIT, when set, wins")
	natsUsers := fs.String("nats-users", "", "`FILE` of NATS identities the embedded server admits besides sealed stations: one nkey public key a line, optionally followed by the one station it may publish for")
	allowOrigin := fs.String("allow-origin", "", "comma-separated `ORIGINS` (scheme://host:port) whose web pages may POST minutes besides tally's own; * for any")
	maxStreams := fs.Int("max-streams", 1000, "event streams open at once (503 beyond)")
	maxStreamsPerClient := fs.Int("max-streams-per-client", 16, "event streams one client IP address may keep open at once (503 beyond)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	switch {
	case *electionFile == "" || *dataDir == "":
		return usageError(fs, "--election and --data are required")
	case fs.NArg() > 0:
		return usageError(fs, "unexpected arguments %q", fs.Args())
	case (*tlsCert == "") != (*tlsKey == ""):
		return usageError(fs, "give both --tls-cert and --tls-key, or neither")
	case *seedDir != "" && *natsURL == "":
		return usageError(fs, "--nats-seed-dir is for an external server (--nats URL); the embedded server makes its own keys")
	case *natsURL != "" && broker.CheckURLs(*natsURL) != nil:
		return usageError(fs, "--nats: %v", broker.CheckURLs(*natsURL))
	case projections.CheckNodeName(*node) != nil:
		return usageError(fs, "--node: %v", projections.CheckNodeName(*node))
	case *partitions < 1:
		return usageError(fs, "--partitions %d: want at least 1", *partitions)
	case *partitions > maxPartitions:
		return usageError(fs, "--partitions %d: at most %d", *partitions, maxPartitions)
	case *replicas < 1:
		return usageError(fs, "--replicas %d: want at least 1", *replicas)
	case *replicas > 1 && *natsURL == "":
		return usageError(fs, "--replicas %d needs a NATS cluster (--nats URL[,URL...]); the embedded server keeps one copy", *replicas)
	case maxBody < 1024:
		return usageError(fs, "--max-body %d: want at least 1KiB", int64(maxBody))
	case *maxMinutes < 1:
		return usageError(fs, "--max-minutes %d: want at least 1", *maxMinutes)
	case *publishTimeout <= 0:
		return usageError(fs, "--publish-timeout must be positive")
	case *readTimeout <= 0 || *writeTimeout <= 0 || *idleTimeout <= 0:
		return usageError(fs, "--read-timeout, --write-timeout and --idle-timeout must be positive")
	case *maxPending < 1 || *maxInFlight < 1 || maxInFlightBytes < 1:
		return usageError(fs, "--max-pending, --max-inflight and --max-inflight-bytes must be at least 1")
	case *maxStreams < 1 || *maxStreamsPerClient < 1:
		return usageError(fs, "--max-streams and --max-streams-per-client must be at least 1")
	case *natsUsers != "" && (*natsURL != "" || *natsListen == "none"):
		return usageError(fs, "--nats-users is for the embedded server's listener: not with --nats or --nats-listen none")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageError(fs, "bad --log-level %q", *logLevel)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && memLimit > 0 {
		debug.SetMemoryLimit(int64(memLimit))
	}

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
	cfg := server.Config{
		Election: e, DataDir: *dataDir, HTTPAddr: *httpAddr,
		NATSURL: *natsURL, NATSListen: *natsListen, Replicas: *replicas, Node: *node, Partitions: *partitions,
		BatchSize: *batch, Logger: logger, PublishTimeout: *publishTimeout, NoGroupCommit: *noGroupCommit,
		TLSCertFile: *tlsCert, TLSKeyFile: *tlsKey,
		MaxBodyBytes: int64(maxBody), MaxMinutes: *maxMinutes,
		ReadHeaderTimeout: min(10*time.Second, *readTimeout), ReadTimeout: *readTimeout,
		WriteTimeout: *writeTimeout, IdleTimeout: *idleTimeout,
		MaxPending: *maxPending, MaxInFlight: *maxInFlight, MaxInFlightBytes: int64(maxInFlightBytes),
		MinFreeBytes: int64(minFree),
	}
	if minFree == 0 {
		cfg.MinFreeBytes = -1 // not checked
	}
	cfg.MaxStreams, cfg.MaxStreamsPerClient = *maxStreams, *maxStreamsPerClient
	if *allowOrigin != "" {
		cfg.AllowOrigins = strings.Split(*allowOrigin, ",")
	}
	if *natsUsers != "" {
		data, err := os.ReadFile(*natsUsers)
		if err == nil {
			cfg.NATSUsers, err = broker.ParseAuthorized(e, data)
		}
		if err != nil {
			fmt.Fprintf(stderr, "tally serve: --nats-users %s: %v\n", *natsUsers, err)
			return exitFailed
		}
	}
	listenGiven := false
	fs.Visit(func(f *flag.Flag) { listenGiven = listenGiven || f.Name == "nats-listen" })
	if *natsURL == "" && cfg.NATSListen != "none" && !e.Sealed() && len(cfg.NATSUsers) == 0 {
		if listenGiven {
			logger.Warn("the NATS listener admits only tally's own identities: the election has no seals and no --nats-users was given, so no station can publish over NATS", "nats_listen", cfg.NATSListen)
		} else {
			cfg.NATSListen = "none"
			logger.Info("no NATS listener: the election has no seals and no --nats-users was given, and anonymous NATS clients are never admitted; stations submit over HTTP")
		}
	}
	if *tokenFile != "" {
		if cfg.Token, err = readTokenFile(*tokenFile, stderr); err != nil {
			fmt.Fprintf(stderr, "tally serve: %v\n", err)
			return exitFailed
		}
	}
	if *seedDir != "" {
		roles, err := loadRoles(*seedDir, false)
		if err != nil {
			fmt.Fprintf(stderr, "tally serve: --nats-seed-dir: %v (make them with 'tally nats-config --seed-dir %s')\n", err, *seedDir)
			return exitFailed
		}
		cfg.GatewayNATS, cfg.AggregatorNATS = &roles.gateway, &roles.aggregator
	} else if *natsURL != "" && e.Sealed() {
		logger.Warn("the election is sealed but tally connects to the external NATS server anonymously; give it its keys with --nats-seed-dir (see 'tally nats-config')")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Is another process on DIR? Asked before the server starts a second
	// embedded NATS server over the live store; the server takes the lock
	// for good when it opens the projections.
	if lock, err := lockProjections(*dataDir, *partitions, "serve", false); err != nil {
		fmt.Fprintf(stderr, "tally serve: %v\n", err)
		return exitFailed
	} else if lock != nil {
		lock.Close()
	}
	logger.Info("data directory", "dir", absPath(*dataDir))
	srv, err := server.New(ctx, cfg)
	if err != nil {
		switch {
		case locked(err):
			err = lockedError(*dataDir, "serve", err)
		case isAddrInUse(err):
			err = fmt.Errorf("%w\n(another program listens on %s: give tally serve another address with --http HOST:PORT)", err, *httpAddr)
		}
		fmt.Fprintf(stderr, "tally serve: %v\n", err)
		return exitFailed
	}
	natsAuth := "none"
	if srv.NATSAuth() {
		natsAuth = "nkey"
	}
	logger.Info("listening", "http", srv.URL(), "nats", srv.NATSURL(), "nats_auth", natsAuth, "nats_admits", srv.NATSAdmits(),
		"token", cfg.Token != "", "node", *node, "election", e.ID, "stations", len(e.Stations), "contests", len(e.Contests))
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "tally serve: %v\n", err)
		return exitFailed
	}
	logger.Info("stopped cleanly")
	return exitOK
}

// absPath returns p made absolute, or p itself if that fails.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// isAddrInUse reports whether err is a listen failing on a busy port.
func isAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE)
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
