// Package server runs tally as a service: the NATS connection (embedded
// server by default), the minutes stream, the aggregator folding it into
// the projections, and the HTTP API of CONTRACT §5 (the ingest gateway and
// the queries).
//
// Imports flow one way: server → projections → events → tally.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	// NATSURL selects an external NATS server or cluster, one URL or
	// several separated by commas; "" runs an embedded server.
	NATSURL string
	// NATSListen is where the embedded server listens for stations
	// ("none": no listener). Default 127.0.0.1:4222.
	NATSListen string
	// Replicas of the stream on an external cluster. Default 1; more than 1
	// is refused with the embedded server, which is a single server.
	Replicas int
	// Node names this tally node (CONTRACT §6 v2): its fold follows the
	// stream with its own durable consumer (projections.FoldConsumer), so
	// several nodes on one cluster, each with its own DataDir, never touch
	// one another's. "" is projections.DefaultNode.
	Node string
	// BatchSize is the most messages per fold commit.
	BatchSize int
	// MaxBodyBytes caps a submission body. Default 8 MiB.
	MaxBodyBytes int64
	// MaxMinutes caps the minutes in one submission. Default 10,000.
	MaxMinutes int
	// PublishTimeout bounds the wait for JetStream's acknowledgements of
	// one submission; past it the answer is 503. Default 10 s.
	PublishTimeout time.Duration
	// NoGroupCommit publishes every minutes on its own instead of storing
	// concurrent submissions together in JetStream atomic batches
	// (events.GroupCommit).
	NoGroupCommit bool
	// MaxPending bounds how far the fold may fall behind the stream (in
	// events) before submissions are refused with 429. Default 100,000.
	MaxPending uint64
	// MaxInFlight caps the submissions being read, checked and published
	// at once; beyond it the answer is 429. Default 512.
	MaxInFlight int
	// MaxInFlightBytes caps the bytes of the submissions in flight (by
	// Content-Length, MaxBodyBytes when unknown). Default 128 MiB.
	MaxInFlightBytes int64
	// MinFreeBytes is the free space the data directory's filesystem must
	// keep for a submission to be accepted (503 below it). Default 64 MiB;
	// negative: not checked.
	MinFreeBytes int64
	// GatewayNATS and AggregatorNATS are tally's own NATS identities, both
	// or neither: the gateway publishes the minutes it accepted, the
	// aggregator manages the stream and folds it (broker.Roles). With an
	// external server (NATSURL) they are the keys its configuration grants
	// those permissions (`tally nats-config`); nil there: one anonymous
	// connection. In embedded mode they are generated in memory when nil.
	GatewayNATS, AggregatorNATS *broker.Identity
	// NATSUsers are the identities the operator admits to the embedded
	// server's listener besides the sealed stations (broker.Authorized).
	// The embedded server never admits anonymous clients: with neither
	// seals nor NATSUsers, its listener admits only tally's own
	// identities (see NATSAdmits).
	NATSUsers []broker.Authorized
	// AllowOrigins are the origins (scheme://host[:port]) besides the
	// server's own whose pages may POST minutes; "*" allows any. A POST
	// with another Origin header is refused with 403.
	AllowOrigins []string
	// MaxStreams caps the event streams (GET /api/v1/stream) open at once;
	// MaxStreamsPerClient caps those of one remote IP address. Past
	// either the answer is 503. Defaults 1,000 and 16.
	MaxStreams, MaxStreamsPerClient int
	// Token, when not empty, is the operator token: a submission must carry
	// "Authorization: Bearer TOKEN" unless every minutes in it is for a
	// sealed station (whose signature vouches for it instead).
	Token string
	// TLSCertFile and TLSKeyFile (PEM), both or neither, make the API and
	// the dashboard HTTPS.
	TLSCertFile, TLSKeyFile string
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout bound a
	// client's request headers, whole request, answer (event streams are
	// exempt) and idle keep-alive connection. Defaults 10 s, 60 s, 60 s,
	// 120 s.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// ShutdownTimeout bounds a clean shutdown: draining HTTP requests, then
	// letting the fold apply what the stream holds. Default 15 s.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
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
	if c.MaxPending == 0 {
		c.MaxPending = 100_000
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 512
	}
	if c.MaxInFlightBytes <= 0 {
		c.MaxInFlightBytes = 128 << 20
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = 64 << 20
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 60 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 60 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 120 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = 1000
	}
	if c.MaxStreamsPerClient <= 0 {
		c.MaxStreamsPerClient = 16
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
	// nc is the aggregator's connection (the stream, the fold's consumer);
	// gw is the gateway's (publishing accepted minutes). They are one and
	// the same connection unless tally has NATS identities.
	nc, gw *nats.Conn
	js     jetstream.JetStream
	tls    bool // the HTTP listener serves TLS
	// tlsConfig is the HTTP listener's TLS configuration, nil without TLS.
	tlsConfig *tls.Config
	streams   *streamLimit
	stream    jetstream.Stream
	store     *projections.Store
	pub       *events.Publisher
	gc        *events.GroupCommit // nil with NoGroupCommit
	ln        net.Listener
	http      *http.Server
	metrics   *metrics
	hub       *hub
	adm       *admission
	// refusals keeps the gateway's 422 refusals (refusals.go); times and
	// reports serve the officials' views (officials.go).
	refusals *refusalLog
	times    msgTimes
	reports  reportCache
	// durable is the fold's consumer, this node's own.
	durable string
	// rebuildMarker exists while the projections are being rebuilt from
	// the stream, so that a crash during the rebuild does not let a
	// restarted server serve a half-built store as results.
	rebuildMarker string

	mu struct {
		sync.Mutex
		meta    projections.Meta
		changed chan struct{} // closed and replaced at every commit
		state   State
		target  uint64 // the stream's last sequence at start: caught up once applied
		// down is closed when the NATS connection drops and replaced
		// when it is back: a submission waiting for acknowledgements
		// then answers 503 at once instead of at PublishTimeout.
		down   chan struct{}
		isDown bool
	}
}

// State is the server's readiness, in GET /api/v1/status.
type State string

const (
	// Rebuilding: the projections were missing or corrupt and are being
	// folded again from the whole stream. Results answer 503 until done.
	Rebuilding State = "rebuilding"
	// CatchingUp: the fold is applying what the stream received while
	// tally was stopped. Results are consistent with their applied_seq.
	CatchingUp State = "catching_up"
	// Ready: the fold has applied everything the stream held at start.
	Ready State = "ready"
)

// New opens everything a server needs: the NATS server or connection, the
// stream, the projections and the HTTP listener. On error, whatever was
// opened is closed again.
func New(ctx context.Context, cfg Config) (_ *Server, err error) {
	cfg.ensureDefaults()
	if cfg.Election == nil {
		return nil, errors.New("server: no election")
	}
	durable, err := projections.FoldConsumer(cfg.Node)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if cfg.NATSURL == "" && cfg.Replicas > 1 {
		return nil, fmt.Errorf("server: %d replicas need a NATS cluster (--nats URL); the embedded server is a single server and keeps one copy", cfg.Replicas)
	}
	s := &Server{cfg: cfg, e: cfg.Election, durable: durable}
	s.mu.changed = make(chan struct{})
	// What the law bounds but the file exceeds: said once at start, and
	// listed by GET /api/v1/election (CONTRACT §2).
	for _, w := range cfg.Election.Warnings() {
		cfg.Logger.Warn("election file", "warning", w)
	}
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if s.refusals, err = openRefusals(cfg.DataDir, cfg.Logger); err != nil {
		return nil, err
	}

	if err := s.connect(); err != nil {
		return nil, err
	}
	s.mu.down = make(chan struct{})
	// The gateway's connection decides whether submissions can be stored.
	s.gw.SetDisconnectErrHandler(func(_ *nats.Conn, err error) {
		if err == nil {
			return // closed by us, at shutdown
		}
		s.mu.Lock()
		if !s.mu.isDown {
			s.mu.isDown = true
			close(s.mu.down)
		}
		s.mu.Unlock()
		s.cfg.Logger.Warn("NATS connection lost; submissions answer 503 until it is back", "err", err)
	})
	s.gw.SetReconnectHandler(func(nc *nats.Conn) {
		s.mu.Lock()
		if s.mu.isDown {
			s.mu.isDown = false
			s.mu.down = make(chan struct{})
		}
		s.mu.Unlock()
		s.cfg.Logger.Info("NATS connection back", "url", nc.ConnectedUrlRedacted())
	})
	if s.nc != s.gw {
		s.nc.SetDisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				s.cfg.Logger.Warn("the aggregator's NATS connection was lost; the fold resumes when it is back", "err", err)
			}
		})
	}
	s.js, err = jetstream.New(s.nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	s.stream, err = s.ensureStream(ctx) // cluster.go
	if err != nil {
		return nil, err
	}
	if err := s.openProjections(ctx); err != nil {
		return nil, err
	}
	pubJS := s.js
	if s.gw != s.nc {
		if pubJS, err = jetstream.New(s.gw); err != nil {
			return nil, fmt.Errorf("jetstream: %w", err)
		}
	}
	s.pub = events.NewPublisher(pubJS, s.e)
	if !cfg.NoGroupCommit {
		s.gc = events.NewGroupCommit(pubJS, 0, cfg.PublishTimeout)
		s.gc.OnCommit = func(n int, atomic bool) {
			kind := "each"
			if atomic {
				kind = "atomic"
			}
			s.metrics.groupCommit.WithLabelValues(kind).Observe(float64(n))
		}
		s.pub.GroupCommit(s.gc)
	}
	var tlsConfig *tls.Config
	if cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" {
		if cfg.TLSCertFile == "" || cfg.TLSKeyFile == "" {
			return nil, errors.New("server: TLS needs both a certificate and a key")
		}
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate: %w", err)
		}
		// HTTP/1.1 only: the listener below hands the server wrapped
		// connections, which it serves as HTTP/1.1.
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
		s.tls = true
		s.tlsConfig = tlsConfig
	}
	s.ln, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("http listen %s: %w", cfg.HTTPAddr, err)
	}
	s.streams = &streamLimit{max: cfg.MaxStreams, perClient: cfg.MaxStreamsPerClient, byIP: map[string]int{}}
	s.http = &http.Server{
		Handler:           s.routes(),
		ConnContext:       connContext,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	s.http.RegisterOnShutdown(func() { close(s.hub.closing) }) // end event streams
	return s, nil
}

// Addr returns the HTTP address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns the base URL of the API and the dashboard: https:// when the
// server has a TLS certificate.
func (s *Server) URL() string {
	if s.tls {
		return "https://" + s.Addr()
	}
	return "http://" + s.Addr()
}

// NATSAuth reports whether tally's NATS connections authenticate with
// their own identities (always with the embedded server, whose clients
// must all be known).
func (s *Server) NATSAuth() bool { return s.gw != s.nc }

// NATSAdmits says who the embedded server's listener admits: sealed
// stations, the operator's identities (Config.NATSUsers), or only tally's
// own identities; "" with no listener or an external server.
func (s *Server) NATSAdmits() string {
	if s.embedded == nil || s.embedded.ClientURL() == "" {
		return ""
	}
	var who []string
	n := 0
	for i := range s.e.Stations {
		if s.e.Stations[i].Seal != "" {
			n++
		}
	}
	if n > 0 {
		who = append(who, fmt.Sprintf("%d sealed stations", n))
	}
	if n = len(s.cfg.NATSUsers); n > 0 {
		who = append(who, fmt.Sprintf("%d operator identities", n))
	}
	if len(who) == 0 {
		return "only tally's own identities: no station can connect"
	}
	return strings.Join(who, " and ") + ", by nkey; no anonymous client"
}

// connect starts the embedded NATS server or dials the external one and
// opens tally's connections: on the embedded server (whose only users are
// the sealed stations, the operator's identities, the gateway and the
// aggregator: anonymous clients are refused), and on an external server
// given identities, one connection per role, each allowed only what that
// role needs; on an external server without identities, one anonymous
// connection.
func (s *Server) connect() error {
	cfg := &s.cfg
	gw, agg := cfg.GatewayNATS, cfg.AggregatorNATS
	if (gw == nil) != (agg == nil) {
		return errors.New("server: give both NATS identities (gateway and aggregator) or neither")
	}
	// Asynchronous errors (a permission refused, a slow consumer) are
	// logged, not printed to stderr by the client library.
	logErrs := nats.ErrorHandler(func(nc *nats.Conn, _ *nats.Subscription, err error) {
		cfg.Logger.Warn("NATS error", "connection", nc.Opts.Name, "err", err)
	})
	var err error
	if cfg.NATSURL == "" {
		if gw == nil {
			g, err := broker.NewIdentity()
			if err != nil {
				return err
			}
			a, err := broker.NewIdentity()
			if err != nil {
				return err
			}
			gw, agg = &g, &a
		}
		opts := broker.EmbeddedOptions{Dir: cfg.DataDir, Listen: cfg.NATSListen, Logger: cfg.Logger,
			Users: broker.Users(s.e, broker.Roles{Gateway: gw.Public, Aggregator: agg.Public}, cfg.NATSUsers...)}
		if s.embedded, err = broker.StartEmbedded(opts); err != nil {
			return err
		}
		if s.nc, err = s.embedded.Connect("tally-aggregator", agg.Option(), logErrs); err != nil {
			return fmt.Errorf("aggregator: %w", err)
		}
		if s.gw, err = s.embedded.Connect("tally-gateway", gw.Option(), logErrs); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		return nil
	}
	if len(cfg.NATSUsers) > 0 {
		return errors.New("server: NATS users are for the embedded server; an external server's configuration admits its own")
	}
	if gw == nil {
		s.nc, err = broker.Dial(cfg.NATSURL, "tally", logErrs)
		s.gw = s.nc
		return err
	}
	if s.nc, err = broker.Dial(cfg.NATSURL, "tally-aggregator", agg.Option(), logErrs); err != nil {
		return fmt.Errorf("aggregator (key %s): %w", agg.Public, err)
	}
	if s.gw, err = broker.Dial(cfg.NATSURL, "tally-gateway", gw.Option(), logErrs); err != nil {
		return fmt.Errorf("gateway (key %s): %w", gw.Public, err)
	}
	return nil
}

// NATSURL returns the URL stations can publish to, "" if none.
func (s *Server) NATSURL() string {
	if s.embedded != nil {
		return s.embedded.ClientURL()
	}
	return s.cfg.NATSURL
}

// openProjections opens the projections, setting aside corrupt ones, and
// decides the server's state: a missing or corrupt store is rebuilt by
// folding the whole stream into a fresh one (the fold from checkpoint 0 is
// the rebuild: the same code as `tally rebuild`, byte for byte the same
// store), and results are withheld until it has caught up.
func (s *Server) openProjections(ctx context.Context) error {
	dir := filepath.Join(s.cfg.DataDir, "projections")
	s.rebuildMarker = dir + ".rebuilding"
	store, rec, err := projections.OpenOrReset(dir, s.e)
	if err != nil {
		return err
	}
	s.store = store
	meta, err := s.store.Meta()
	if err != nil {
		return err
	}
	s.mu.meta = meta
	s.metrics = newMetrics(s.store)
	s.metrics.appliedSeq.Set(float64(meta.Checkpoint))
	s.hub = newHub(s.store, s.metrics, meta.Checkpoint)
	// Refuse a stream that lost minutes before serving anything from it.
	if err := projections.CheckStream(ctx, s.stream, meta.Checkpoint); err != nil {
		return err
	}
	info, err := s.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream info: %w", err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		last = meta.Checkpoint
	}
	_, statErr := os.Stat(s.rebuildMarker)
	interrupted := statErr == nil
	switch {
	case rec.Corrupt != "" && last > 0:
		s.cfg.Logger.Error("projections corrupt: set aside, rebuilding them from the stream; results are withheld until done",
			"reason", rec.Corrupt, "set_aside", rec.SetAside, "stream_seq", last)
	case rec.Corrupt != "":
		s.cfg.Logger.Error("projections corrupt: set aside; the stream is empty, starting afresh", "reason", rec.Corrupt, "set_aside", rec.SetAside)
	case rec.Missing && last > 0:
		s.cfg.Logger.Warn("no projections but the stream holds minutes: rebuilding them from the stream; results are withheld until done",
			"dir", dir, "stream_seq", last)
	case interrupted:
		s.cfg.Logger.Warn("an earlier rebuild of the projections did not finish: going on with it; results are withheld until done",
			"checkpoint", meta.Checkpoint, "stream_seq", last)
	}
	s.mu.target = last
	s.adm = &admission{
		maxInFlight: s.cfg.MaxInFlight, maxBytes: s.cfg.MaxInFlightBytes, maxPending: s.cfg.MaxPending,
		minFree: s.cfg.MinFreeBytes, dir: s.cfg.DataDir, freeBytes: diskFree,
	}
	s.adm.stored.Store(last)
	s.adm.applied.Store(meta.Checkpoint)
	switch {
	case (rec.Fresh() || interrupted) && meta.Checkpoint < last:
		s.mu.state = Rebuilding
		if err := os.WriteFile(s.rebuildMarker, []byte(strconv.FormatUint(last, 10)+"\n"), 0o640); err != nil {
			return fmt.Errorf("mark the rebuild: %w", err)
		}
	case meta.Checkpoint < last:
		s.mu.state = CatchingUp
		s.cfg.Logger.Info("catching up with the stream", "checkpoint", meta.Checkpoint, "stream_seq", last)
	default:
		s.setReadyLocked()
	}
	return nil
}

// setReadyLocked marks the fold caught up. REQUIRES: s.mu held, or no other
// goroutine running yet.
func (s *Server) setReadyLocked() {
	if s.mu.state == Rebuilding {
		if err := os.Remove(s.rebuildMarker); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.cfg.Logger.Warn("remove rebuild marker", "err", err)
		}
		s.cfg.Logger.Info("projections rebuilt from the stream; serving results", "applied_seq", s.mu.meta.Checkpoint)
	} else if s.mu.state == CatchingUp {
		s.cfg.Logger.Info("caught up with the stream", "applied_seq", s.mu.meta.Checkpoint)
	} else if err := os.Remove(s.rebuildMarker); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.cfg.Logger.Warn("remove rebuild marker", "err", err)
	}
	s.mu.state = Ready
	s.adm.folding.Store(true)
}

// State returns the server's readiness and the applied sequence.
func (s *Server) State() (State, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.state, s.mu.meta.Checkpoint
}

// Run serves until ctx is cancelled or a component fails, then shuts down
// cleanly: HTTP requests in flight are drained (each gets its answer), the
// fold applies and commits what the stream holds (so a restart has nothing
// to replay), and the store, connection and embedded server are closed.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The fold outlives ctx: it must apply what the drained requests
	// stored before it stops.
	foldCtx, stopFold := context.WithCancel(context.Background())
	defer stopFold()
	hubCtx, stopHub := context.WithCancel(context.Background())
	defer stopHub()
	errc := make(chan error, 2)
	foldDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(3)
	if s.gc != nil {
		// The group committer serves the requests until the HTTP server
		// has drained them, like the hub.
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.gc.Run(hubCtx)
		}()
	}
	go func() {
		defer wg.Done()
		s.hub.run(hubCtx)
	}()
	go func() {
		defer wg.Done()
		defer close(foldDone)
		err := s.runFold(foldCtx)
		if err != nil {
			err = fmt.Errorf("fold: %w", err)
		}
		errc <- err
		cancel()
	}()
	go func() {
		defer wg.Done()
		ln := s.ln
		if tlsConfig := s.tlsConfig; tlsConfig != nil {
			ln = tls.NewListener(ln, tlsConfig)
		}
		// Connections are wrapped above TLS: the guard reads plain HTTP.
		err := s.http.Serve(guardListener{ln})
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
		cancel()
	}()
	<-ctx.Done()
	shutdownCtx, stop := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer stop()
	if err := s.http.Shutdown(shutdownCtx); err != nil {
		s.cfg.Logger.Warn("http shutdown", "err", err)
	}
	s.drainFold(shutdownCtx, foldDone)
	stopFold()
	stopHub()
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
	if s.refusals != nil {
		if err := s.refusals.close(); err != nil {
			s.cfg.Logger.Warn("close gateway refusals", "err", err)
		}
	}
	if s.gw != nil && s.gw != s.nc {
		s.gw.Close()
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
	s.adm.applied.Store(b.Meta.Checkpoint)
	s.adm.pending.Store(b.Pending)
	s.mu.Lock()
	s.mu.meta = b.Meta
	if s.mu.state != Ready && b.Meta.Checkpoint >= s.mu.target {
		s.setReadyLocked()
	}
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

// runFold runs the aggregator until ctx is done. When it stops on an error
// that a reconnection can cure (NATS gone, the consumer deleted, a JetStream
// request timing out) it is started again with backoff, from the
// checkpoint; an error of the store or of the stream's integrity ends it.
func (s *Server) runFold(ctx context.Context) error {
	const maxBackoff = 5 * time.Second
	backoff := 100 * time.Millisecond
	for {
		runCtx, stopRun := context.WithCancel(ctx)
		guard := newGapGuard(s.stream, stopRun)
		agg := projections.NewAggregator(s.store, guard, projections.AggregatorConfig{
			Durable:   s.durable,
			BatchSize: s.cfg.BatchSize,
			Logger:    s.cfg.Logger,
			OnCommit:  s.committed,
		})
		started := time.Now()
		err := agg.Run(runCtx)
		stopRun()
		if ctx.Err() != nil {
			return nil
		}
		if guard.tripped.Load() {
			s.cfg.Logger.Warn("the fold's consumer skipped messages (lost in transit on a reconnection); restarting it from the checkpoint",
				"expected_seq", guard.expected.Load(), "got_seq", guard.got.Load())
			continue
		}
		if err == nil || fatalFoldErr(err) {
			return err
		}
		if time.Since(started) > time.Minute {
			backoff = 100 * time.Millisecond // it ran well for a while
		}
		s.cfg.Logger.Warn("fold stopped; restarting it from the checkpoint", "err", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// fatalFoldErr reports whether the fold must not be restarted after err: the
// store can no longer be trusted, or the stream lost minutes.
func fatalFoldErr(err error) bool {
	return errors.Is(err, projections.ErrBroken) || errors.Is(err, projections.ErrStreamBehind) ||
		errors.Is(err, projections.ErrStreamGap) || errors.Is(err, projections.ErrCorrupt)
}

// drainFold waits, at most until ctx is done, for the fold to apply every
// message the stream holds, so that a restart has nothing to replay.
func (s *Server) drainFold(ctx context.Context, foldDone <-chan struct{}) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-foldDone:
			cancel()
		case <-ctx.Done():
		}
	}()
	if !s.nc.IsConnected() {
		return
	}
	info, err := s.stream.Info(ctx)
	if err != nil {
		s.cfg.Logger.Warn("shutdown: stream info", "err", err)
		return
	}
	if err := s.WaitApplied(ctx, info.State.LastSeq); err != nil {
		st, applied := s.State()
		s.cfg.Logger.Warn("shutdown: the fold did not apply the whole stream; the rest is applied at the next start",
			"applied_seq", applied, "stream_seq", info.State.LastSeq, "state", st)
	}
}

// natsDown returns a channel closed when the NATS connection drops.
func (s *Server) natsDown() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.down
}
