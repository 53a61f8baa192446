package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// Config configures a Server, in parts: where the minutes are stored
// (NATS), how they are folded (Fold), what the ingest gateway admits
// (Gateway) and how HTTP clients are served (HTTP).
//
// A zero field takes its default (DefaultConfig) in New, which then
// refuses a Config that does not Validate. The defaults are written once,
// in DefaultConfig: `tally serve` takes its flags' defaults from it.
type Config struct {
	// Election is the election served. Required.
	Election *tally.Election
	// onAccept, if set (by tests), is called with every TCP connection
	// the API accepts, before anything is read from it.
	onAccept func(net.Conn)
	// DataDir holds the projections (DataDir/projections, or one directory
	// per partition), the gateway's refusals and, in embedded mode, the
	// NATS store (DataDir/nats). Required.
	DataDir string
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger

	NATS    NATSConfig
	Fold    FoldConfig
	Gateway GatewayConfig
	HTTP    HTTPConfig
}

// NATSConfig says where the minutes streams live and who may connect
// (broker.Connect).
type NATSConfig struct {
	// URL selects an external NATS server or cluster, one URL or several
	// separated by commas (broker.CheckURLs); "" runs an embedded server.
	URL string
	// Listen is where the embedded server listens for stations ("none":
	// no listener). Default 127.0.0.1:4222.
	Listen string
	// Replicas of the streams when tally creates them on an external
	// cluster. Default 1; more than 1 needs URL: the embedded server is a
	// single server and keeps one copy.
	Replicas int
	// Gateway and Aggregator are tally's own NATS identities, both or
	// neither: the gateway publishes the minutes it accepted, the
	// aggregator manages the streams and folds them (broker.Roles). With
	// an external server they are the keys its configuration grants those
	// permissions (`tally nats-config`); nil there: one anonymous
	// connection. In embedded mode they are generated in memory when nil.
	Gateway, Aggregator *broker.Identity
	// Users are the identities the operator admits to the embedded
	// server's listener besides the sealed stations (broker.Authorized).
	// The embedded server never admits anonymous clients: with neither
	// seals nor Users, its listener admits only tally's own identities
	// (see Server.NATSAdmits). Not with URL.
	Users []broker.Authorized
}

// FoldConfig says how this node folds the streams into its projections.
type FoldConfig struct {
	// Node names this tally node (CONTRACT §6 v2): its folds follow the
	// streams with their own durable consumers (projections.FoldConsumer,
	// PartitionConsumer), so several nodes on one cluster, each with its
	// own DataDir, never touch one another's. Default
	// projections.DefaultNode.
	Node string
	// Partitions splits the minutes into that many streams by province
	// (CONTRACT §6 v2, events.Partition), each folded by its own follower
	// into its own store (projections.PartitionDir) with its own durable
	// consumer (projections.PartitionConsumer), in parallel. Fixed when the
	// streams are first created: a start with another number is refused.
	// Default 1: the one stream, store and consumer tally always had; at
	// most MaxPartitions.
	Partitions int
	// BatchSize is the most messages per fold commit while the fold keeps
	// up, four times as many while it catches up
	// (projections.AggregatorConfig). Default projections.DefaultBatchSize.
	BatchSize int
}

// GatewayConfig bounds what the ingest gateway (POST /api/v1/minutes)
// accepts and says who may submit.
type GatewayConfig struct {
	// MaxBodyBytes caps a submission body. Default 8 MiB, at least 1 KiB.
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
	// Token, when not empty, is the operator token: a submission must carry
	// "Authorization: Bearer TOKEN" unless every minutes in it is for a
	// sealed station (whose signature vouches for it instead).
	Token string
	// AllowOrigins are the origins (scheme://host[:port]) besides the
	// server's own whose pages may POST minutes; "*" allows any. A POST
	// with another Origin header is refused with 403.
	AllowOrigins []string
}

// HTTPConfig says how the API, the event streams and the dashboard are
// served.
type HTTPConfig struct {
	// Addr is the API address. Default 127.0.0.1:8080; port 0 picks one.
	Addr string
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
	// MaxStreams caps the event streams (GET /api/v1/stream) open at once;
	// MaxStreamsPerClient caps those of one remote IP address. Past
	// either the answer is 503. Defaults 1,000 and 16.
	MaxStreams, MaxStreamsPerClient int
}

// MaxPartitions bounds FoldConfig.Partitions: each partition is a stream,
// a consumer, a Pebble store and a goroutine folding it.
const MaxPartitions = 64

// minBodyBytes is the least GatewayConfig.MaxBodyBytes: one minutes with
// its envelope.
const minBodyBytes = 1 << 10

// DefaultConfig returns the defaults of every field that has one: what New
// gives a zero field, and what `tally serve` gives a flag not set.
func DefaultConfig() Config {
	return Config{
		NATS: NATSConfig{Listen: "127.0.0.1:4222", Replicas: 1},
		Fold: FoldConfig{Node: projections.DefaultNode, Partitions: 1, BatchSize: projections.DefaultBatchSize},
		Gateway: GatewayConfig{
			MaxBodyBytes:     8 << 20,
			MaxMinutes:       10_000,
			PublishTimeout:   10 * time.Second,
			MaxPending:       100_000,
			MaxInFlight:      512,
			MaxInFlightBytes: 128 << 20,
			MinFreeBytes:     64 << 20,
		},
		HTTP: HTTPConfig{
			Addr:                "127.0.0.1:8080",
			ReadHeaderTimeout:   10 * time.Second,
			ReadTimeout:         60 * time.Second,
			WriteTimeout:        60 * time.Second,
			IdleTimeout:         120 * time.Second,
			ShutdownTimeout:     15 * time.Second,
			MaxStreams:          1000,
			MaxStreamsPerClient: 16,
		},
	}
}

// EnsureDefaults gives every zero field its default (DefaultConfig) and a
// nil Logger one that discards. Fields that are not zero are kept, even
// when Validate refuses them.
func (c *Config) EnsureDefaults() {
	d := DefaultConfig()
	orDefault(&c.NATS.Listen, d.NATS.Listen)
	orDefault(&c.NATS.Replicas, d.NATS.Replicas)
	orDefault(&c.Fold.Node, d.Fold.Node)
	orDefault(&c.Fold.Partitions, d.Fold.Partitions)
	orDefault(&c.Fold.BatchSize, d.Fold.BatchSize)
	g := &c.Gateway
	orDefault(&g.MaxBodyBytes, d.Gateway.MaxBodyBytes)
	orDefault(&g.MaxMinutes, d.Gateway.MaxMinutes)
	orDefault(&g.PublishTimeout, d.Gateway.PublishTimeout)
	orDefault(&g.MaxPending, d.Gateway.MaxPending)
	orDefault(&g.MaxInFlight, d.Gateway.MaxInFlight)
	orDefault(&g.MaxInFlightBytes, d.Gateway.MaxInFlightBytes)
	orDefault(&g.MinFreeBytes, d.Gateway.MinFreeBytes)
	h := &c.HTTP
	orDefault(&h.Addr, d.HTTP.Addr)
	orDefault(&h.ReadHeaderTimeout, d.HTTP.ReadHeaderTimeout)
	orDefault(&h.ReadTimeout, d.HTTP.ReadTimeout)
	orDefault(&h.WriteTimeout, d.HTTP.WriteTimeout)
	orDefault(&h.IdleTimeout, d.HTTP.IdleTimeout)
	orDefault(&h.ShutdownTimeout, d.HTTP.ShutdownTimeout)
	orDefault(&h.MaxStreams, d.HTTP.MaxStreams)
	orDefault(&h.MaxStreamsPerClient, d.HTTP.MaxStreamsPerClient)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// ConfigError is one field of a Config that breaks a rule.
type ConfigError struct {
	// Field is the field's path in Config, such as "Gateway.MaxMinutes".
	Field string
	// Value is the field's value as given; "" when Rule quotes it.
	Value string
	// Rule is what the value breaks. When Related is set, Rule holds one
	// %s: the name of the field it relates to.
	Rule    string
	Related string
}

// Error returns the field, its value and the rule, such as
// "server: config Gateway.MaxMinutes 0: want at least 1".
func (e *ConfigError) Error() string { return "server: config " + e.Describe(nil) }

// Describe says the error with the fields named by name (nil: their paths
// in Config), so that a command line can name its flags instead.
func (e *ConfigError) Describe(name func(field string) string) string {
	if name == nil {
		name = func(f string) string { return f }
	}
	rule := e.Rule
	if e.Related != "" {
		rule = fmt.Sprintf(rule, name(e.Related))
	}
	if e.Value == "" {
		return name(e.Field) + ": " + rule
	}
	return name(e.Field) + " " + e.Value + ": " + rule
}

// Validate checks c as New would run it: call it after EnsureDefaults, or
// on a Config filled from DefaultConfig, where a zero is a value given and
// is refused where a field needs more. It returns every broken rule, each
// a *ConfigError (errors.Join; errors.As finds the first), nil if none.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, value, rule string) {
		errs = append(errs, &ConfigError{Field: field, Value: value, Rule: rule})
	}
	badWith := func(field, value, rule, related string) {
		errs = append(errs, &ConfigError{Field: field, Value: value, Rule: rule, Related: related})
	}
	atLeast := func(field string, v, least int64, rule string) {
		if v < least {
			bad(field, strconv.FormatInt(v, 10), rule)
		}
	}
	positive := func(field string, d time.Duration) {
		if d <= 0 {
			bad(field, d.String(), "must be positive")
		}
	}
	if c.Election == nil {
		bad("Election", "", "required")
	}
	if c.DataDir == "" {
		bad("DataDir", "", "required")
	}

	n := &c.NATS
	if n.URL != "" {
		if err := broker.CheckURLs(n.URL); err != nil {
			bad("NATS.URL", "", err.Error())
		}
		if len(n.Users) > 0 {
			badWith("NATS.Users", "", "for the embedded server's listener, not with %s: an external server's configuration admits its own", "NATS.URL")
		}
	} else if n.Listen == "" {
		bad("NATS.Listen", "", "required with the embedded server (host:port, or none)")
	}
	atLeast("NATS.Replicas", int64(n.Replicas), 1, "want at least 1")
	if n.Replicas > 1 && n.URL == "" {
		badWith("NATS.Replicas", strconv.Itoa(n.Replicas), "needs a NATS cluster (%s); the embedded server keeps one copy", "NATS.URL")
	}
	if (n.Gateway == nil) != (n.Aggregator == nil) {
		if n.Gateway == nil {
			badWith("NATS.Aggregator", "", "needs %s too, or neither", "NATS.Gateway")
		} else {
			badWith("NATS.Gateway", "", "needs %s too, or neither", "NATS.Aggregator")
		}
	}

	f := &c.Fold
	if err := projections.CheckNodeName(f.Node); err != nil {
		bad("Fold.Node", "", err.Error())
	}
	atLeast("Fold.Partitions", int64(f.Partitions), 1, "want at least 1")
	if f.Partitions > MaxPartitions {
		bad("Fold.Partitions", strconv.Itoa(f.Partitions), fmt.Sprintf("at most %d", MaxPartitions))
	}
	if c.Election != nil && f.Partitions > 1 {
		if err := events.CheckPartitionable(c.Election); err != nil {
			bad("Fold.Partitions", strconv.Itoa(f.Partitions), err.Error())
		}
	}
	atLeast("Fold.BatchSize", int64(f.BatchSize), 1, "want at least 1")

	g := &c.Gateway
	atLeast("Gateway.MaxBodyBytes", g.MaxBodyBytes, minBodyBytes, "want at least 1KiB")
	atLeast("Gateway.MaxMinutes", int64(g.MaxMinutes), 1, "want at least 1")
	positive("Gateway.PublishTimeout", g.PublishTimeout)
	if g.MaxPending < 1 {
		bad("Gateway.MaxPending", "0", "want at least 1")
	}
	atLeast("Gateway.MaxInFlight", int64(g.MaxInFlight), 1, "want at least 1")
	atLeast("Gateway.MaxInFlightBytes", g.MaxInFlightBytes, 1, "want at least 1")

	h := &c.HTTP
	if h.Addr == "" {
		bad("HTTP.Addr", "", "required (host:port; port 0 picks one)")
	}
	if (h.TLSCertFile == "") != (h.TLSKeyFile == "") {
		if h.TLSCertFile == "" {
			badWith("HTTP.TLSKeyFile", h.TLSKeyFile, "needs %s too, or neither", "HTTP.TLSCertFile")
		} else {
			badWith("HTTP.TLSCertFile", h.TLSCertFile, "needs %s too, or neither", "HTTP.TLSKeyFile")
		}
	}
	positive("HTTP.ReadHeaderTimeout", h.ReadHeaderTimeout)
	positive("HTTP.ReadTimeout", h.ReadTimeout)
	positive("HTTP.WriteTimeout", h.WriteTimeout)
	positive("HTTP.IdleTimeout", h.IdleTimeout)
	positive("HTTP.ShutdownTimeout", h.ShutdownTimeout)
	atLeast("HTTP.MaxStreams", int64(h.MaxStreams), 1, "want at least 1")
	atLeast("HTTP.MaxStreamsPerClient", int64(h.MaxStreamsPerClient), 1, "want at least 1")
	return errors.Join(errs...)
}
