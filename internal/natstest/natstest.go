// Package natstest starts the embedded NATS server with JetStream that
// tests fold, rebuild and audit against: a real server, storing in the
// test's temporary directory, stopped when the test ends.
package natstest

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/broker"
)

// JetStream starts an embedded server with no listener (in-process
// connections only) in a temporary directory of t, connects to it, and
// returns the JetStream context. The connection and the server are closed
// when t ends.
func JetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	emb, err := broker.StartEmbedded(broker.EmbeddedOptions{Dir: t.TempDir(), Listen: "none"})
	if err != nil {
		t.Fatalf("start embedded NATS: %v", err)
	}
	t.Cleanup(emb.Shutdown)
	nc, err := emb.Connect("test")
	if err != nil {
		t.Fatalf("connect to embedded NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return js
}
