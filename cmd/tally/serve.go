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

	"github.com/tallyvn/tally/broker"
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
	d := server.DefaultConfig()
	httpAddr := fs.String("http", d.HTTP.Addr, "HTTP API address")
	natsURL := fs.String("nats", "", "`URL[,URL...]` of an external NATS server or cluster (several members for failover; tally reconnects to any of them, forever); default: an embedded server")
	natsListen := fs.String("nats-listen", d.NATS.Listen, "where the embedded NATS server listens for stations; 'none' for no listener")
	replicas := fs.Int("replicas", d.NATS.Replicas, "replication factor of the stream when tally creates it on a NATS cluster (needs --nats)")
	node := fs.String("node", d.Fold.Node, "`NAME` of this tally node: its fold keeps its own consumer (tally-fold-NAME; tally-fold for the default), so several nodes, each with its own --data, can share one NATS cluster; letters, digits, '-' and '_'")
	partitions := fs.Int("partitions", d.Fold.Partitions, "`N` minutes streams, split by province, each folded in parallel into its own store (DIR/projections-pK) by its own consumer (tally-fold[-NAME]-K); fixed when the streams are first created: a start with another N is refused. 1: the one stream, DIR/projections")
	noGroupCommit := fs.Bool("no-group-commit", d.Gateway.NoGroupCommit, "publish every submitted minutes on its own, instead of storing the minutes of concurrent submissions together in one JetStream atomic batch (one batch costs a few fsyncs whatever its size); a stream created by an older tally refuses batches and gets them one by one anyway")
	publishTimeout := fs.Duration("publish-timeout", d.Gateway.PublishTimeout, "how long a submission waits for JetStream to store it before the answer is 503 (retry): on a cluster, a request in flight when the stream's leader dies waits this long")
	batch := fs.Int("batch", d.Fold.BatchSize, "most minutes folded per Pebble commit while the fold keeps up; four times as many while it catches up with the stream")
	seedDir := fs.String("nats-seed-dir", "", "with --nats: `DIR` holding tally's NATS keys, gateway.seed and aggregator.seed, as 'tally nats-config' makes them")
	tokenFile := fs.String("token-file", "", "`FILE` holding the operator token; when set, submissions whose minutes are not all sealed need 'Authorization: Bearer TOKEN'")
	tlsCert := fs.String("tls-cert", "", "TLS certificate `FILE` (PEM) to serve HTTPS; needs --tls-key")
	tlsKey := fs.String("tls-key", "", "TLS private key `FILE` (PEM); needs --tls-cert")
	maxBody := byteSize(d.Gateway.MaxBodyBytes)
	fs.Var(&maxBody, "max-body", "largest submission body, a `SIZE` such as 8MiB (413 above it)")
	maxMinutes := fs.Int("max-minutes", d.Gateway.MaxMinutes, "most minutes in one submission (413 above it)")
	readTimeout := fs.Duration("read-timeout", d.HTTP.ReadTimeout, "time a client has to send its whole request")
	writeTimeout := fs.Duration("write-timeout", d.HTTP.WriteTimeout, "time to write an answer (event streams are exempt)")
	idleTimeout := fs.Duration("idle-timeout", d.HTTP.IdleTimeout, "how long an idle keep-alive connection stays open")
	maxPending := fs.Uint64("max-pending", d.Gateway.MaxPending, "minutes the fold may lag behind the stream before submissions are refused with 429")
	maxInFlight := fs.Int("max-inflight", d.Gateway.MaxInFlight, "submissions handled at once; beyond it the answer is 429")
	maxInFlightBytes := byteSize(d.Gateway.MaxInFlightBytes)
	fs.Var(&maxInFlightBytes, "max-inflight-bytes", "`SIZE` of the submissions handled at once; beyond it the answer is 429")
	minFree := byteSize(d.Gateway.MinFreeBytes)
	fs.Var(&minFree, "min-free", "free space (`SIZE`) the data directory must keep to accept submissions (503 below it); 0: not checked")
	memLimit := byteSize(768 << 20)
	fs.Var(&memLimit, "memory-limit", "soft limit (`SIZE`) of the Go heap: the garbage collector works harder near it instead of letting the heap double; 0: none. GOMEMLIMIT, when set, wins")
	natsUsers := fs.String("nats-users", "", "`FILE` of NATS identities the embedded server admits besides sealed stations: one nkey public key a line, optionally followed by the one station it may publish for")
	allowOrigin := fs.String("allow-origin", "", "comma-separated `ORIGINS` (scheme://host:port) whose web pages may POST minutes besides tally's own; * for any")
	maxStreams := fs.Int("max-streams", d.HTTP.MaxStreams, "event streams open at once (503 beyond)")
	maxStreamsPerClient := fs.Int("max-streams-per-client", d.HTTP.MaxStreamsPerClient, "event streams one client IP address may keep open at once (503 beyond)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	switch {
	case *electionFile == "" || *dataDir == "":
		return usageError(fs, "--election and --data are required")
	case fs.NArg() > 0:
		return usageError(fs, "unexpected arguments %q", fs.Args())
	case *seedDir != "" && *natsURL == "":
		return usageError(fs, "--nats-seed-dir is for an external server (--nats URL); the embedded server makes its own keys")
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
	// The flags' defaults are DefaultConfig's: every field is set here, and
	// a zero is a value given, which Validate refuses where it needs more.
	cfg := server.Config{
		Election: e, DataDir: *dataDir, Logger: logger,
		NATS: server.NATSConfig{URL: *natsURL, Listen: *natsListen, Replicas: *replicas},
		Fold: server.FoldConfig{Node: *node, Partitions: *partitions, BatchSize: *batch},
		Gateway: server.GatewayConfig{
			MaxBodyBytes: int64(maxBody), MaxMinutes: *maxMinutes,
			PublishTimeout: *publishTimeout, NoGroupCommit: *noGroupCommit,
			MaxPending: *maxPending, MaxInFlight: *maxInFlight, MaxInFlightBytes: int64(maxInFlightBytes),
			MinFreeBytes: int64(minFree),
		},
		HTTP: server.HTTPConfig{
			Addr: *httpAddr, TLSCertFile: *tlsCert, TLSKeyFile: *tlsKey,
			ReadHeaderTimeout: d.HTTP.ReadHeaderTimeout, ReadTimeout: *readTimeout,
			WriteTimeout: *writeTimeout, IdleTimeout: *idleTimeout, ShutdownTimeout: d.HTTP.ShutdownTimeout,
			MaxStreams: *maxStreams, MaxStreamsPerClient: *maxStreamsPerClient,
		},
	}
	if *readTimeout > 0 {
		cfg.HTTP.ReadHeaderTimeout = min(cfg.HTTP.ReadHeaderTimeout, *readTimeout)
	}
	if minFree == 0 {
		cfg.Gateway.MinFreeBytes = -1 // not checked
	}
	if err := cfg.Validate(); err != nil {
		return usageError(fs, "%s", strings.Join(describeConfigError(err), "\ntally serve: "))
	}
	if *allowOrigin != "" {
		cfg.Gateway.AllowOrigins = strings.Split(*allowOrigin, ",")
	}
	if *natsUsers != "" {
		data, err := os.ReadFile(*natsUsers)
		if err == nil {
			cfg.NATS.Users, err = broker.ParseAuthorized(e, data)
		}
		if err != nil {
			fmt.Fprintf(stderr, "tally serve: --nats-users %s: %v\n", *natsUsers, err)
			return exitFailed
		}
	}
	listenGiven := false
	fs.Visit(func(f *flag.Flag) { listenGiven = listenGiven || f.Name == "nats-listen" })
	if *natsURL == "" && cfg.NATS.Listen != "none" && !e.Sealed() && len(cfg.NATS.Users) == 0 {
		if listenGiven {
			logger.Warn("the NATS listener admits only tally's own identities: the election has no seals and no --nats-users was given, so no station can publish over NATS", "nats_listen", cfg.NATS.Listen)
		} else {
			cfg.NATS.Listen = "none"
			logger.Info("no NATS listener: the election has no seals and no --nats-users was given, and anonymous NATS clients are never admitted; stations submit over HTTP")
		}
	}
	if *tokenFile != "" {
		if cfg.Gateway.Token, err = readTokenFile(*tokenFile, stderr); err != nil {
			fmt.Fprintf(stderr, "tally serve: %v\n", err)
			return exitFailed
		}
	}
	if *seedDir != "" {
		roles, err := broker.LoadRoleSeeds(*seedDir, false)
		if err != nil {
			fmt.Fprintf(stderr, "tally serve: --nats-seed-dir: %v (make them with 'tally nats-config --seed-dir %s')\n", err, *seedDir)
			return exitFailed
		}
		cfg.NATS.Gateway, cfg.NATS.Aggregator = &roles.Gateway, &roles.Aggregator
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
		"token", cfg.Gateway.Token != "", "node", *node, "election", e.ID, "stations", len(e.Stations), "contests", len(e.Contests))
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

// configFlags names the flag that sets each field of server.Config.
var configFlags = map[string]string{
	"Election": "--election", "DataDir": "--data",
	"NATS.URL": "--nats", "NATS.Listen": "--nats-listen", "NATS.Replicas": "--replicas",
	"NATS.Gateway": "--nats-seed-dir", "NATS.Aggregator": "--nats-seed-dir", "NATS.Users": "--nats-users",
	"Fold.Node": "--node", "Fold.Partitions": "--partitions", "Fold.BatchSize": "--batch",
	"Gateway.MaxBodyBytes": "--max-body", "Gateway.MaxMinutes": "--max-minutes",
	"Gateway.PublishTimeout": "--publish-timeout", "Gateway.MaxPending": "--max-pending",
	"Gateway.MaxInFlight": "--max-inflight", "Gateway.MaxInFlightBytes": "--max-inflight-bytes",
	"Gateway.MinFreeBytes": "--min-free", "Gateway.Token": "--token-file", "Gateway.AllowOrigins": "--allow-origin",
	"HTTP.Addr": "--http", "HTTP.TLSCertFile": "--tls-cert", "HTTP.TLSKeyFile": "--tls-key",
	"HTTP.ReadHeaderTimeout": "--read-timeout", "HTTP.ReadTimeout": "--read-timeout",
	"HTTP.WriteTimeout": "--write-timeout", "HTTP.IdleTimeout": "--idle-timeout",
	"HTTP.MaxStreams": "--max-streams", "HTTP.MaxStreamsPerClient": "--max-streams-per-client",
}

// describeConfigError says every rule err (from server.Config.Validate)
// names, one a line, with the flags in place of the fields: the rules are
// the server's, so the command line and a library user read the same ones.
func describeConfigError(err error) []string {
	flagOf := func(field string) string {
		if f, ok := configFlags[field]; ok {
			return f
		}
		return field
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	lines := make([]string, len(errs))
	for i, e := range errs {
		var ce *server.ConfigError
		if errors.As(e, &ce) {
			lines[i] = ce.Describe(flagOf)
		} else {
			lines[i] = e.Error()
		}
	}
	return lines
}
