// Package server runs tally as a service: the NATS connection (embedded
// server by default), the minutes stream, the aggregator folding it into
// the projections, and the HTTP API of CONTRACT §5 (the ingest gateway and
// the queries).
//
// Imports flow one way: server → projections → events → tally.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// Config configures a Server.
type Config struct {
	Election *tally.Election
	// DataDir holds the projections (DataDir/projections) and, in embedded
	// mode, the NATS store (DataDir/nats).
	DataDir string
	// HTTPAddr is the API address. Default 127.0.0.1:8080; port 0 picks one.
	HTTPAddr string
	// NATSURL selects an external NATS server; "" runs an embedded one.
	NATSURL string
	// NATSListen is where the embedded server listens for stations
	// ("none": no listener). Default 127.0.0.1:4222.
	NATSListen string
	// Replicas of the stream on an external cluster. Default 1.
	Replicas int
	// BatchSize is the most messages per fold commit.
	BatchSize int
	// MaxBodyBytes caps a submission body. Default 8 MiB.
	MaxBodyBytes int64
	// MaxMinutes caps the minutes in one submission. Default 10,000.
	MaxMinutes int
	// PublishTimeout bounds the wait for JetStream's acknowledgements of
	// one submission; past it the answer is 503. Default 10 s.
	PublishTimeout time.Duration
	Logger         *slog.Logger
}

func (c *Config) ensureDefaults() {
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8080"
	}
	if c.NATSListen == "" {
		c.NATSListen = "127.0.0.1:4222"
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 8 << 20
	}
	if c.MaxMinutes <= 0 {
		c.MaxMinutes = 10_000
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Server is a running tally. Create it with New, run it with Run.
type Server struct {
	cfg      Config
	e        *tally.Election
	embedded *broker.Embedded // nil with an external server
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   jetstream.Stream
	store    *projections.Store
	pub      *events.Publisher
	agg      *projections.Aggregator
	ln       net.Listener
	http     *http.Server
	metrics  *metrics
	hub      *hub

	mu struct {
		sync.Mutex
		meta    projections.Meta
		changed chan struct{} // closed and replaced at every commit
	}
}

// New opens everything a server needs: the NATS server or connection, the
// stream, the projections and the HTTP listener. On error, whatever was
// opened is closed again.
func New(ctx context.Context, cfg Config) (_ *Server, err error) {
	cfg.ensureDefaults()
	if cfg.Election == nil {
		return nil, errors.New("server: no election")
	}
	s := &Server{cfg: cfg, e: cfg.Election}
	s.mu.changed = make(chan struct{})
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}

	if cfg.NATSURL == "" {
		s.embedded, err = broker.StartEmbedded(broker.EmbeddedOptions{Dir: cfg.DataDir, Listen: cfg.NATSListen, Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
		s.nc, err = s.embedded.Connect("tally")
	} else {
		s.nc, err = broker.Dial(cfg.NATSURL, "tally")
	}
	if err != nil {
		return nil, err
	}
	s.js, err = jetstream.New(s.nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	s.stream, err = broker.EnsureStream(ctx, s.js, events.StreamConfig(s.e.ID, cfg.Replicas))
	if err != nil {
		return nil, err
	}
	s.store, err = projections.Open(filepath.Join(cfg.DataDir, "projections"), s.e)
	if err != nil {
		return nil, err
	}
	meta, err := s.store.Meta()
	if err != nil {
		return nil, err
	}
	s.mu.meta = meta
	s.metrics = newMetrics(s.store)
	s.metrics.appliedSeq.Set(float64(meta.Checkpoint))
	s.hub = newHub(s.store, s.metrics, meta.Checkpoint)
	// Refuse a stream that lost minutes before serving anything from it.
	if err := projections.CheckStream(ctx, s.stream, meta.Checkpoint); err != nil {
		return nil, err
	}
	s.pub = events.NewPublisher(s.js, s.e)
	s.agg = projections.NewAggregator(s.store, s.stream, projections.AggregatorConfig{
		BatchSize: cfg.BatchSize,
		Logger:    cfg.Logger,
		OnCommit:  s.committed,
	})
	s.ln, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("http listen %s: %w", cfg.HTTPAddr, err)
	}
	s.http = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	s.http.RegisterOnShutdown(func() { close(s.hub.closing) }) // end event streams
	return s, nil
}

// Addr returns the HTTP address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// NATSURL returns the URL stations can publish to, "" if none.
func (s *Server) NATSURL() string {
	if s.embedded != nil {
		return s.embedded.ClientURL()
	}
	return s.cfg.NATSURL
}

// Run serves until ctx is cancelled or a component fails, then shuts down:
// HTTP requests in flight are drained, the fold commits what it holds, and
// the store, connection and embedded server are closed.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		s.hub.run(ctx)
	}()
	go func() {
		defer wg.Done()
		err := s.agg.Run(ctx)
		if err != nil {
			err = fmt.Errorf("fold: %w", err)
		}
		errc <- err
		cancel()
	}()
	go func() {
		defer wg.Done()
		err := s.http.Serve(s.ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
		cancel()
	}()
	<-ctx.Done()
	shutdownCtx, stop := context.WithTimeout(context.Background(), 15*time.Second)
	defer stop()
	if err := s.http.Shutdown(shutdownCtx); err != nil {
		s.cfg.Logger.Warn("http shutdown", "err", err)
	}
	wg.Wait()
	close(errc)
	var first error
	for err := range errc {
		if err != nil && first == nil {
			first = err
		}
	}
	s.closeAll()
	return first
}

func (s *Server) closeAll() {
	if s.ln != nil && s.http == nil {
		s.ln.Close()
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			s.cfg.Logger.Warn("close projections", "err", err)
		}
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.embedded != nil {
		s.embedded.Shutdown()
	}
}

// committed is the fold's OnCommit hook.
func (s *Server) committed(b *projections.BatchInfo) {
	s.metrics.batch(b)
	s.hub.changed(b.Changed)
	s.mu.Lock()
	s.mu.meta = b.Meta
	close(s.mu.changed)
	s.mu.changed = make(chan struct{})
	s.mu.Unlock()
}

// WaitApplied blocks until the fold has committed seq or ctx is done.
func (s *Server) WaitApplied(ctx context.Context, seq uint64) error {
	for {
		s.mu.Lock()
		applied, ch := s.mu.meta.Checkpoint, s.mu.changed
		s.mu.Unlock()
		if applied >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
