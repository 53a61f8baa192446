package broker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
)

// TestConnectEmbeddedRoles: on the embedded server each role has its own
// authenticated connection with its own rights (the aggregator creates the
// stream, the gateway publishes to it), and the listener admits no
// anonymous client.
func TestConnectEmbeddedRoles(t *testing.T) {
	a, b := newStation(t, "LB-NT-01"), newStation(t, "LB-NT-02")
	e := sealedElection(t, a, b)
	c, err := broker.Connect(broker.ConnectOptions{Dir: t.TempDir(), Listen: "127.0.0.1:0", Election: e})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Embedded == nil || c.ClientURL() == "" {
		t.Fatalf("embedded %v, client URL %q: want an embedded server listening", c.Embedded, c.ClientURL())
	}
	if !c.Authenticated() || c.Gateway == c.Aggregator {
		t.Fatal("the roles share one connection on the embedded server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	aggJS, _ := jetstream.New(c.Aggregator)
	if _, err := broker.EnsureStream(ctx, aggJS, events.StreamConfig(e.ID, 1)); err != nil {
		t.Fatalf("the aggregator cannot create the stream: %v", err)
	}
	gwJS, _ := jetstream.New(c.Gateway)
	// Refused by permission, the request gets no answer: a short wait is
	// enough to see it fail, however slow the machine.
	denied, stop := context.WithTimeout(ctx, 2*time.Second)
	defer stop()
	if _, err := gwJS.CreateStream(denied, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}}); err == nil {
		t.Error("the gateway created a stream: it has the aggregator's rights")
	}
	if nc, err := nats.Connect(c.ClientURL(), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Error("an anonymous client connected to the embedded server")
	}
}

// TestConnectExternal: without identities one anonymous connection serves
// both roles; with them each role dials with its own key, which a server
// that does not know it refuses, naming the role and the key.
func TestConnectExternal(t *testing.T) {
	a, b := newStation(t, "LB-NT-01"), newStation(t, "LB-NT-02")
	e := sealedElection(t, a, b)
	ext, err := broker.StartEmbedded(broker.EmbeddedOptions{Dir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Shutdown()
	c, err := broker.Connect(broker.ConnectOptions{URL: ext.ClientURL(), Election: e})
	if err != nil {
		t.Fatal(err)
	}
	if c.Embedded != nil || c.ClientURL() != "" || c.Authenticated() || c.Gateway != c.Aggregator {
		t.Errorf("external without identities: embedded %v, URL %q, authenticated %v; want one anonymous connection",
			c.Embedded, c.ClientURL(), c.Authenticated())
	}
	c.Close()
	if !c.Aggregator.IsClosed() {
		t.Error("Close left the connection open")
	}

	gw, _ := broker.NewIdentity()
	agg, _ := broker.NewIdentity()
	locked, err := broker.StartEmbedded(broker.EmbeddedOptions{Dir: t.TempDir(), Listen: "127.0.0.1:0",
		Users: broker.Users(e, broker.Roles{Gateway: gw.Public})})
	if err != nil {
		t.Fatal(err)
	}
	defer locked.Shutdown()
	_, err = broker.Connect(broker.ConnectOptions{URL: locked.ClientURL(), Gateway: &gw, Aggregator: &agg})
	if err == nil || !strings.Contains(err.Error(), "aggregator (key "+agg.Public+")") {
		t.Errorf("aggregator key unknown to the server: %v, want an error naming the aggregator and its key", err)
	}
}

// TestConnectRefuses: what cannot work is refused before anything starts.
func TestConnectRefuses(t *testing.T) {
	id, _ := broker.NewIdentity()
	for _, tc := range []struct {
		name string
		o    broker.ConnectOptions
		want string
	}{
		{"one identity", broker.ConnectOptions{URL: "nats://127.0.0.1:1", Gateway: &id}, "both NATS identities"},
		{"users on an external server", broker.ConnectOptions{URL: "nats://127.0.0.1:1", Users: []broker.Authorized{{Key: id.Public}}}, "NATS users are for the embedded server"},
		{"embedded without the election", broker.ConnectOptions{Dir: t.TempDir()}, "needs the election"},
		{"bad URL", broker.ConnectOptions{URL: "http://127.0.0.1:1"}, `scheme "http"`},
	} {
		if c, err := broker.Connect(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			if c != nil {
				c.Close()
			}
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
