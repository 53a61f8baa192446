// Package server runs tally as a service: it wires tally's NATS
// connections per role (broker.Connect: an embedded server by default),
// the minutes streams, the folds following them into the projections
// (projections.Follower, one per partition), and serves the HTTP API of
// CONTRACT §5 (the ingest gateway and the queries), the event streams, the
// dashboard and the metrics. Config (config.go) holds its settings in
// parts, with their defaults (DefaultConfig) and rules (Validate).
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
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// Server is a running tally. Create it with New, run it with Run.
type Server struct {
	cfg Config
	e   *tally.Election
	// conns are tally's NATS connections per role (and the embedded
	// server); nc is the aggregator's (the streams, the folds' consumers),
	// gw the gateway's (publishing accepted minutes). They are one and the
	// same connection unless tally has NATS identities.
	conns  *broker.Conns
	nc, gw *nats.Conn
	js     jetstream.JetStream
	tls    bool // the HTTP listener serves TLS
	// tlsConfig is the HTTP listener's TLS configuration, nil without TLS.
	tlsConfig *tls.Config
	sse       *streamLimit
	// streams holds the minutes streams, partition p at index p; parts
	// the projections, one store per partition.
	streams []jetstream.Stream
	parts   *projections.Parts
	pub     *events.Publisher
	gc      *events.GroupCommit // nil with NoGroupCommit
	ln      net.Listener
	http    *http.Server
	metrics *metrics
	hub     *hub
	adm     *admission
	// refusals keeps the gateway's 422 refusals (refusals.go); times and
	// reports serve the officials' views (officials.go).
	refusals *refusalLog
	times    msgTimes
	reports  reportCache
	// durables are the folds' consumers, this node's own, partition p at
	// index p.
	durables []string
	// rebuildMarkers (one per partition) exist while the projections are
	// being rebuilt from the stream, so that a crash during the rebuild
	// does not let a restarted server serve a half-built store as results.
	rebuildMarkers []string

	mu struct {
		sync.Mutex
		// metas holds each partition's committed meta; meta their sum
		// (meta.Checkpoint is applied_seq: the sum of the positions).
		metas   []projections.Meta
		meta    projections.Meta
		changed chan struct{} // closed and replaced at every commit
		state   State
		// targets are the streams' last sequences at start: caught up
		// once every partition has applied its own.
		targets []uint64
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
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := cfg.Fold.Partitions
	durables := make([]string, n)
	for p := range durables {
		d, err := projections.PartitionConsumer(cfg.Fold.Node, p, n)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		durables[p] = d
	}
	s := &Server{cfg: cfg, e: cfg.Election, durables: durables}
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

	s.conns, err = broker.Connect(broker.ConnectOptions{
		URL: cfg.NATS.URL, Dir: cfg.DataDir, Listen: cfg.NATS.Listen,
		Election: cfg.Election, Partitions: n,
		Gateway: cfg.NATS.Gateway, Aggregator: cfg.NATS.Aggregator, Users: cfg.NATS.Users,
		Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	s.nc, s.gw = s.conns.Aggregator, s.conns.Gateway
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
	// An external cluster may need seconds to elect a meta leader.
	wait := broker.StreamWait
	if s.conns.Embedded != nil {
		wait = 0
	}
	s.streams, err = broker.WaitPartitionStreams(ctx, s.js, s.e, n, cfg.NATS.Replicas, wait, cfg.Logger)
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
	s.pub = events.NewPartitionedPublisher(pubJS, s.e, n)
	if !cfg.Gateway.NoGroupCommit {
		s.gc = events.NewGroupCommit(pubJS, 0, cfg.Gateway.PublishTimeout)
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
	if cfg.HTTP.TLSCertFile != "" { // and TLSKeyFile: Validate
		cert, err := tls.LoadX509KeyPair(cfg.HTTP.TLSCertFile, cfg.HTTP.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS certificate: %w", err)
		}
		// HTTP/1.1 only: the listener below hands the server wrapped
		// connections, which it serves as HTTP/1.1.
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
		s.tls = true
		s.tlsConfig = tlsConfig
	}
	s.ln, err = net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return nil, fmt.Errorf("http listen %s: %w", cfg.HTTP.Addr, err)
	}
	s.sse = &streamLimit{max: cfg.HTTP.MaxStreams, perClient: cfg.HTTP.MaxStreamsPerClient, byIP: map[string]int{}}
	s.http = &http.Server{
		Handler:           s.routes(),
		ConnContext:       connContext,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
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
func (s *Server) NATSAuth() bool { return s.conns.Authenticated() }

// NATSAdmits says who the embedded server's listener admits: sealed
// stations, the operator's identities (NATSConfig.Users), or only tally's
// own identities; "" with no listener or an external server.
func (s *Server) NATSAdmits() string {
	if s.conns.ClientURL() == "" {
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
	if n = len(s.cfg.NATS.Users); n > 0 {
		who = append(who, fmt.Sprintf("%d operator identities", n))
	}
	if len(who) == 0 {
		return "only tally's own identities: no station can connect"
	}
	return strings.Join(who, " and ") + ", by nkey; no anonymous client"
}

// NATSURL returns the URL stations can publish to, "" if none.
func (s *Server) NATSURL() string {
	if s.conns.Embedded != nil {
		return s.conns.ClientURL()
	}
	return s.cfg.NATS.URL
}

// openProjections opens the projections, one store per partition, setting
// aside corrupt ones, and decides the server's state: a missing or corrupt
// store is rebuilt by folding its whole stream into a fresh one (the fold
// from checkpoint 0 is the rebuild: the same code as `tally rebuild`, byte
// for byte the same store), and results are withheld until every
// partition has caught up.
func (s *Server) openProjections(ctx context.Context) error {
	n := s.cfg.Fold.Partitions
	if err := projections.CheckPartitionDirs(s.cfg.DataDir, n); err != nil {
		return err
	}
	elections, err := projections.PartElections(s.e, n)
	if err != nil {
		return err
	}
	stores := make([]*projections.Store, n)
	defer func() {
		if s.parts == nil { // failed: close what was opened
			for _, st := range stores {
				if st != nil {
					st.Close()
				}
			}
		}
	}()
	s.rebuildMarkers = make([]string, n)
	s.mu.metas = make([]projections.Meta, n)
	s.mu.targets = make([]uint64, n)
	rebuild, catchUp := false, false
	for p := range n {
		dir := projections.PartitionDir(s.cfg.DataDir, p, n)
		s.rebuildMarkers[p] = dir + ".rebuilding"
		store, rec, err := projections.OpenOrReset(dir, elections[p])
		if err != nil {
			return err
		}
		stores[p] = store
		meta, err := store.Meta()
		if err != nil {
			return err
		}
		s.mu.metas[p] = meta
		stream := s.streams[p]
		// Refuse a stream that lost minutes before serving anything from it.
		if err := projections.CheckStream(ctx, stream, meta.Checkpoint); err != nil {
			return err
		}
		info, err := stream.Info(ctx)
		if err != nil {
			return fmt.Errorf("stream info: %w", err)
		}
		last := info.State.LastSeq
		if info.State.Msgs == 0 {
			last = meta.Checkpoint
		}
		_, statErr := os.Stat(s.rebuildMarkers[p])
		interrupted := statErr == nil
		log := s.cfg.Logger
		if n > 1 {
			log = log.With("partition", p)
		}
		switch {
		case rec.Corrupt != "" && last > 0:
			log.Error("projections corrupt: set aside, rebuilding them from the stream; results are withheld until done",
				"reason", rec.Corrupt, "set_aside", rec.SetAside, "stream_seq", last)
		case rec.Corrupt != "":
			log.Error("projections corrupt: set aside; the stream is empty, starting afresh", "reason", rec.Corrupt, "set_aside", rec.SetAside)
		case rec.Missing && last > 0:
			log.Warn("no projections but the stream holds minutes: rebuilding them from the stream; results are withheld until done",
				"dir", dir, "stream_seq", last)
		case interrupted:
			log.Warn("an earlier rebuild of the projections did not finish: going on with it; results are withheld until done",
				"checkpoint", meta.Checkpoint, "stream_seq", last)
		}
		s.mu.targets[p] = last
		switch {
		case (rec.Fresh() || interrupted) && meta.Checkpoint < last:
			rebuild = true
			if err := os.WriteFile(s.rebuildMarkers[p], []byte(strconv.FormatUint(last, 10)+"\n"), 0o640); err != nil {
				return fmt.Errorf("mark the rebuild: %w", err)
			}
		case meta.Checkpoint < last:
			catchUp = true
			log.Info("catching up with the stream", "checkpoint", meta.Checkpoint, "stream_seq", last)
		}
	}
	s.parts = projections.NewParts(s.e, stores)
	var stored uint64
	for p := range n {
		s.mu.meta.Add(s.mu.metas[p])
		stored += s.mu.targets[p]
	}
	s.metrics = newMetrics(s.parts)
	s.metrics.appliedSeq.Set(float64(s.mu.meta.Checkpoint))
	s.hub = newHub(s.parts, s.metrics, s.mu.meta.Checkpoint)
	s.adm = &admission{
		maxInFlight: s.cfg.Gateway.MaxInFlight, maxBytes: s.cfg.Gateway.MaxInFlightBytes, maxPending: s.cfg.Gateway.MaxPending,
		minFree: s.cfg.Gateway.MinFreeBytes, dir: s.cfg.DataDir, freeBytes: diskFree,
		parts: make([]partBacklog, n),
	}
	for p := range n {
		s.adm.parts[p].stored.Store(s.mu.targets[p])
		s.adm.parts[p].applied.Store(s.mu.metas[p].Checkpoint)
	}
	switch {
	case rebuild:
		s.mu.state = Rebuilding
	case catchUp:
		s.mu.state = CatchingUp
	default:
		s.setReadyLocked()
	}
	return nil
}

// setReadyLocked marks the fold caught up. REQUIRES: s.mu held, or no other
// goroutine running yet.
func (s *Server) setReadyLocked() {
	for _, marker := range s.rebuildMarkers {
		if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.cfg.Logger.Warn("remove rebuild marker", "err", err)
		}
	}
	switch s.mu.state {
	case Rebuilding:
		s.cfg.Logger.Info("projections rebuilt from the stream; serving results", "applied_seq", s.mu.meta.Checkpoint)
	case CatchingUp:
		s.cfg.Logger.Info("caught up with the stream", "applied_seq", s.mu.meta.Checkpoint)
	}
	s.mu.state = Ready
	s.adm.folding.Store(true)
}

// State returns the server's readiness and the applied sequence (with
// partitions, the sum of the positions).
func (s *Server) State() (State, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.state, s.mu.meta.Checkpoint
}

// Positions returns every partition's applied position, partition p at
// index p.
func (s *Server) Positions() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]uint64, len(s.mu.metas))
	for p, m := range s.mu.metas {
		out[p] = m.Checkpoint
	}
	return out
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
		err := s.runFolds(foldCtx)
		if err != nil {
			err = fmt.Errorf("fold: %w", err)
		}
		errc <- err
		cancel()
	}()
	go func() {
		defer wg.Done()
		ln := s.ln
		if hook := s.cfg.onAccept; hook != nil {
			ln = hookListener{ln, hook}
		}
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
	shutdownCtx, stop := context.WithTimeout(context.Background(), s.cfg.HTTP.ShutdownTimeout)
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
	if s.parts != nil {
		if err := s.parts.Close(); err != nil {
			s.cfg.Logger.Warn("close projections", "err", err)
		}
	}
	if s.refusals != nil {
		if err := s.refusals.close(); err != nil {
			s.cfg.Logger.Warn("close gateway refusals", "err", err)
		}
	}
	if s.conns != nil {
		s.conns.Close()
	}
}

// committed returns partition p's OnCommit hook. The partitions' folds
// call their hooks concurrently.
func (s *Server) committed(p int) func(*projections.BatchInfo) {
	return func(b *projections.BatchInfo) {
		changed := b.Changed
		if s.parts.N() > 1 { // by index in the whole file, not p's part
			changed = make([]projections.Ref, len(b.Changed))
			for i, r := range b.Changed {
				changed[i] = s.parts.WholeRef(p, r)
			}
		}
		s.hub.changed(changed)
		s.adm.parts[p].applied.Store(b.Meta.Checkpoint)
		s.adm.parts[p].pending.Store(b.Pending)
		s.mu.Lock()
		s.mu.metas[p] = b.Meta
		var sum projections.Meta
		ready := true
		for q, m := range s.mu.metas {
			sum.Add(m)
			ready = ready && m.Checkpoint >= s.mu.targets[q]
		}
		s.mu.meta = sum
		s.metrics.batch(b, sum.Checkpoint, s.adm.pendingTotal())
		if s.mu.state != Ready && ready {
			s.setReadyLocked()
		}
		close(s.mu.changed)
		s.mu.changed = make(chan struct{})
		s.mu.Unlock()
	}
}

// WaitApplied blocks until the fold has committed seq or ctx is done. With
// partitions seq is a sum of positions, which says nothing about any one
// partition: wait with WaitPositions.
func (s *Server) WaitApplied(ctx context.Context, seq uint64) error {
	return s.waitFor(ctx, func() bool { return s.mu.meta.Checkpoint >= seq })
}

// WaitPositions blocks until every partition p of pos has applied pos[p]
// (a submission's positions), or ctx is done.
func (s *Server) WaitPositions(ctx context.Context, pos map[int]uint64) error {
	return s.waitFor(ctx, func() bool {
		for p, seq := range pos {
			if p < 0 || p >= len(s.mu.metas) || s.mu.metas[p].Checkpoint < seq {
				return false
			}
		}
		return true
	})
}

// waitFor waits until done, called with s.mu held, is true.
func (s *Server) waitFor(ctx context.Context, done func() bool) error {
	for {
		s.mu.Lock()
		ok, ch := done(), s.mu.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// runFolds follows every partition's stream, one projections.Follower per
// partition in parallel, until ctx is done (each restarted with backoff
// after an error a new consumer can cure). The first fatal error (of a
// store or of a stream's integrity) stops them all and is returned.
func (s *Server) runFolds(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := s.parts.N()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for p := range n {
		log := s.cfg.Logger
		if n > 1 {
			log = log.With("partition", p)
		}
		f := projections.NewFollower(s.parts.Store(p), s.streams[p], projections.FollowerConfig{
			Aggregator: projections.AggregatorConfig{
				Durable:   s.durables[p],
				BatchSize: s.cfg.Fold.BatchSize,
				OnCommit:  s.committed(p),
			},
			Logger: log,
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[p] = f.Run(ctx); errs[p] != nil {
				cancel() // one partition lost: stop, the server refuses to go on
			}
		}()
	}
	wg.Wait()
	for p, err := range errs {
		if err != nil {
			if n > 1 {
				return fmt.Errorf("partition %d: %w", p, err)
			}
			return err
		}
	}
	return nil
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
	last, err := s.streamPositions(ctx)
	if err != nil {
		s.cfg.Logger.Warn("shutdown: stream info", "err", err)
		return
	}
	if err := s.WaitPositions(ctx, last); err != nil {
		st, applied := s.State()
		s.cfg.Logger.Warn("shutdown: the fold did not apply the whole stream; the rest is applied at the next start",
			"applied_seq", applied, "stream_seq", sumPositions(last), "state", st)
	}
}

// streamPositions returns every partition stream's last sequence (its
// applied position once the fold has caught up: an empty stream counts as
// caught up wherever the fold is).
func (s *Server) streamPositions(ctx context.Context) (map[int]uint64, error) {
	out := make(map[int]uint64, len(s.streams))
	applied := s.Positions()
	for p, st := range s.streams {
		info, err := st.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", st.CachedInfo().Config.Name, err)
		}
		out[p] = info.State.LastSeq
		if info.State.Msgs == 0 {
			out[p] = min(out[p], applied[p])
		}
	}
	return out, nil
}

func sumPositions(pos map[int]uint64) uint64 {
	var sum uint64
	for _, s := range pos {
		sum += s
	}
	return sum
}

// natsDown returns a channel closed when the NATS connection drops.
func (s *Server) natsDown() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.down
}
