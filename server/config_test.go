package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/server"
)

// TestDefaultConfigValidates: the defaults, with the two required fields,
// are a valid Config, and EnsureDefaults gives a zero Config exactly them.
func TestDefaultConfigValidates(t *testing.T) {
	d := server.DefaultConfig()
	d.Election, d.DataDir = parseElection(t), t.TempDir()
	if err := d.Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	var c server.Config
	c.Election, c.DataDir = d.Election, d.DataDir
	c.EnsureDefaults()
	if c.Logger == nil {
		t.Error("EnsureDefaults left the Logger nil")
	}
	c.Logger = nil
	if c.NATS.Listen != d.NATS.Listen || c.NATS.Replicas != d.NATS.Replicas || c.Fold != d.Fold || c.HTTP != d.HTTP ||
		c.Gateway.MaxBodyBytes != d.Gateway.MaxBodyBytes || c.Gateway.MinFreeBytes != d.Gateway.MinFreeBytes ||
		c.Gateway.MaxPending != d.Gateway.MaxPending || c.Gateway.PublishTimeout != d.Gateway.PublishTimeout {
		t.Errorf("EnsureDefaults on a zero Config:\n%+v\nwant DefaultConfig's:\n%+v", c, d)
	}
	if c.Fold.BatchSize != projections.DefaultBatchSize || c.Fold.Node != projections.DefaultNode {
		t.Errorf("fold defaults %+v, want the projections' own", c.Fold)
	}
}

// TestEnsureDefaultsKeepsWhatIsSet: only zero fields take defaults; a
// value given, even one Validate refuses, is kept for Validate to name.
func TestEnsureDefaultsKeepsWhatIsSet(t *testing.T) {
	c := server.Config{
		Gateway: server.GatewayConfig{MaxMinutes: 4, MinFreeBytes: -1, MaxInFlight: -3},
		HTTP:    server.HTTPConfig{Addr: "127.0.0.1:0", ReadTimeout: -time.Second},
	}
	c.EnsureDefaults()
	if c.Gateway.MaxMinutes != 4 || c.Gateway.MinFreeBytes != -1 || c.Gateway.MaxInFlight != -3 ||
		c.HTTP.Addr != "127.0.0.1:0" || c.HTTP.ReadTimeout != -time.Second {
		t.Errorf("EnsureDefaults changed fields that were set: %+v %+v", c.Gateway, c.HTTP)
	}
}

// TestConfigValidate: every rule, one broken at a time on a valid Config,
// is refused naming the field, the value and the rule.
func TestConfigValidate(t *testing.T) {
	e := parseElection(t)
	id, err := broker.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	valid := func() server.Config {
		c := server.DefaultConfig()
		c.Election, c.DataDir = e, "data"
		return c
	}
	for _, tc := range []struct {
		rule   string
		break_ func(c *server.Config)
		want   string
	}{
		{"election required", func(c *server.Config) { c.Election = nil }, "Election: required"},
		{"data dir required", func(c *server.Config) { c.DataDir = "" }, "DataDir: required"},
		{"NATS URLs well formed", func(c *server.Config) { c.NATS.URL = "http://127.0.0.1:1" }, `NATS.URL: nats URL 1 of "http://127.0.0.1:1": scheme "http"`},
		{"NATS users only embedded", func(c *server.Config) {
			c.NATS.URL, c.NATS.Users = "nats://127.0.0.1:1", []broker.Authorized{{Key: id.Public}}
		}, "NATS.Users: for the embedded server's listener, not with NATS.URL"},
		{"embedded listener required", func(c *server.Config) { c.NATS.Listen = "" }, "NATS.Listen: required with the embedded server"},
		{"replicas at least 1", func(c *server.Config) { c.NATS.URL, c.NATS.Replicas = "nats://127.0.0.1:1", 0 }, "NATS.Replicas 0: want at least 1"},
		{"replicas need a cluster", func(c *server.Config) { c.NATS.Replicas = 3 }, "NATS.Replicas 3: needs a NATS cluster (NATS.URL)"},
		{"identities both or neither", func(c *server.Config) { c.NATS.Gateway = &id }, "NATS.Gateway: needs NATS.Aggregator too, or neither"},
		{"identities neither or both", func(c *server.Config) { c.NATS.Aggregator = &id }, "NATS.Aggregator: needs NATS.Gateway too, or neither"},
		{"node name", func(c *server.Config) { c.Fold.Node = "a.b" }, `Fold.Node: node name "a.b"`},
		{"partitions at least 1", func(c *server.Config) { c.Fold.Partitions = 0 }, "Fold.Partitions 0: want at least 1"},
		{"partitions at most", func(c *server.Config) { c.Fold.Partitions = server.MaxPartitions + 1 }, "Fold.Partitions 65: at most 64"},
		{"batch at least 1", func(c *server.Config) { c.Fold.BatchSize = -1 }, "Fold.BatchSize -1: want at least 1"},
		{"body at least 1KiB", func(c *server.Config) { c.Gateway.MaxBodyBytes = 1023 }, "Gateway.MaxBodyBytes 1023: want at least 1KiB"},
		{"minutes at least 1", func(c *server.Config) { c.Gateway.MaxMinutes = 0 }, "Gateway.MaxMinutes 0: want at least 1"},
		{"publish timeout positive", func(c *server.Config) { c.Gateway.PublishTimeout = 0 }, "Gateway.PublishTimeout 0s: must be positive"},
		{"pending at least 1", func(c *server.Config) { c.Gateway.MaxPending = 0 }, "Gateway.MaxPending 0: want at least 1"},
		{"in flight at least 1", func(c *server.Config) { c.Gateway.MaxInFlight = 0 }, "Gateway.MaxInFlight 0: want at least 1"},
		{"in flight bytes at least 1", func(c *server.Config) { c.Gateway.MaxInFlightBytes = -5 }, "Gateway.MaxInFlightBytes -5: want at least 1"},
		{"HTTP address required", func(c *server.Config) { c.HTTP.Addr = "" }, "HTTP.Addr: required"},
		{"certificate needs a key", func(c *server.Config) { c.HTTP.TLSCertFile = "c.pem" }, "HTTP.TLSCertFile c.pem: needs HTTP.TLSKeyFile too, or neither"},
		{"key needs a certificate", func(c *server.Config) { c.HTTP.TLSKeyFile = "k.pem" }, "HTTP.TLSKeyFile k.pem: needs HTTP.TLSCertFile too, or neither"},
		{"header timeout positive", func(c *server.Config) { c.HTTP.ReadHeaderTimeout = 0 }, "HTTP.ReadHeaderTimeout 0s: must be positive"},
		{"read timeout positive", func(c *server.Config) { c.HTTP.ReadTimeout = -time.Second }, "HTTP.ReadTimeout -1s: must be positive"},
		{"write timeout positive", func(c *server.Config) { c.HTTP.WriteTimeout = 0 }, "HTTP.WriteTimeout 0s: must be positive"},
		{"idle timeout positive", func(c *server.Config) { c.HTTP.IdleTimeout = 0 }, "HTTP.IdleTimeout 0s: must be positive"},
		{"shutdown timeout positive", func(c *server.Config) { c.HTTP.ShutdownTimeout = 0 }, "HTTP.ShutdownTimeout 0s: must be positive"},
		{"streams at least 1", func(c *server.Config) { c.HTTP.MaxStreams = 0 }, "HTTP.MaxStreams 0: want at least 1"},
		{"streams per client at least 1", func(c *server.Config) { c.HTTP.MaxStreamsPerClient = 0 }, "HTTP.MaxStreamsPerClient 0: want at least 1"},
	} {
		c := valid()
		tc.break_(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "server: config "+tc.want) {
			t.Errorf("%s: %v, want %q", tc.rule, err, tc.want)
			continue
		}
		if strings.Count(err.Error(), "server: config ") != 1 {
			t.Errorf("%s: %v, want that one rule broken", tc.rule, err)
		}
		var ce *server.ConfigError
		if !errors.As(err, &ce) || !strings.HasPrefix(tc.want, ce.Field) {
			t.Errorf("%s: %v is not a *ConfigError for the field of %q", tc.rule, err, tc.want)
		}
	}
}

// TestConfigValidateEveryRule: several broken rules are all reported, and
// Describe names them as the caller says (tally serve: by their flags).
func TestConfigValidateEveryRule(t *testing.T) {
	c := server.DefaultConfig()
	c.Election, c.DataDir = parseElection(t), "data"
	c.Gateway.MaxMinutes, c.HTTP.TLSKeyFile = 0, "k.pem"
	err := c.Validate()
	j, ok := err.(interface{ Unwrap() []error })
	if !ok || len(j.Unwrap()) != 2 {
		t.Fatalf("two rules broken: %v, want both", err)
	}
	flags := map[string]string{"Gateway.MaxMinutes": "--max-minutes", "HTTP.TLSKeyFile": "--tls-key", "HTTP.TLSCertFile": "--tls-cert"}
	var got []string
	for _, e := range j.Unwrap() {
		var ce *server.ConfigError
		if !errors.As(e, &ce) {
			t.Fatalf("%v is not a *ConfigError", e)
		}
		got = append(got, ce.Describe(func(f string) string { return flags[f] }))
	}
	want := "--max-minutes 0: want at least 1|--tls-key k.pem: needs --tls-cert too, or neither"
	if strings.Join(got, "|") != want {
		t.Errorf("described %q, want %q", strings.Join(got, "|"), want)
	}
}

// TestNewValidates: New refuses a Config that does not Validate before it
// opens anything, with Validate's error.
func TestNewValidates(t *testing.T) {
	dir := t.TempDir()
	_, err := server.New(context.Background(), server.Config{Election: parseElection(t), DataDir: dir,
		HTTP: server.HTTPConfig{Addr: "127.0.0.1:0"}, Gateway: server.GatewayConfig{MaxBodyBytes: 100}})
	var ce *server.ConfigError
	if !errors.As(err, &ce) || ce.Field != "Gateway.MaxBodyBytes" {
		t.Fatalf("New with MaxBodyBytes 100: %v, want the ConfigError of Gateway.MaxBodyBytes", err)
	}
}
