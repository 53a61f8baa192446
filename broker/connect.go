package broker

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"

	"github.com/tallyvn/tally/tally"
)

// ConnectOptions says how tally reaches NATS: an embedded server (URL "")
// or an external server or cluster, and the identities its roles use.
type ConnectOptions struct {
	// URL is one external server URL or several separated by commas
	// (CheckURLs); "" starts an embedded server.
	URL string
	// Dir is where the embedded server keeps its store (Dir/nats).
	Dir string
	// Listen is where the embedded server listens for stations ("none":
	// no listener; see EmbeddedOptions.Listen).
	Listen string
	// Election and Partitions decide what the embedded server's users may
	// publish (Users): the sealed stations, each its own minutes, and
	// the roles their rights on every partition's stream.
	Election   *tally.Election
	Partitions int
	// Gateway and Aggregator are tally's own identities, both or neither.
	// With an external server they are the keys its configuration grants
	// those roles (`tally nats-config`); nil there: one anonymous
	// connection serves both roles. The embedded server makes them in
	// memory when nil: it never admits anonymous clients.
	Gateway, Aggregator *Identity
	// Users are the identities the operator admits to the embedded
	// server's listener besides the sealed stations. Refused with an
	// external server, whose own configuration admits its users.
	Users []Authorized
	// Logger receives the embedded server's logs and the connections'
	// asynchronous errors (a permission refused, a slow consumer); nil
	// discards them.
	Logger *slog.Logger
}

// Conns are tally's NATS connections, one per role. Gateway and Aggregator
// are one and the same connection when tally connects anonymously to an
// external server (Authenticated reports false).
type Conns struct {
	// Embedded is the in-process server, nil with an external one.
	Embedded *Embedded
	// Aggregator manages the streams and folds them; Gateway publishes the
	// minutes tally accepted.
	Aggregator, Gateway *nats.Conn
}

// Connect starts the embedded server or dials the external one and opens a
// connection per role (Roles), each allowed only what that role needs: on
// the embedded server, whose only users are the sealed stations, the
// operator's identities (Users), the gateway and the aggregator; on an
// external server given identities, one connection per identity; on an
// external server without them, one anonymous connection for both. On
// error whatever was opened is closed again.
func Connect(o ConnectOptions) (_ *Conns, err error) {
	gw, agg := o.Gateway, o.Aggregator
	if (gw == nil) != (agg == nil) {
		return nil, errors.New("broker: give both NATS identities (gateway and aggregator) or neither")
	}
	if o.URL != "" && len(o.Users) > 0 {
		return nil, errors.New("broker: NATS users are for the embedded server; an external server's configuration admits its own")
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// Asynchronous errors are logged, not printed to stderr by the client
	// library.
	logErrs := nats.ErrorHandler(func(nc *nats.Conn, _ *nats.Subscription, err error) {
		logger.Warn("NATS error", "connection", nc.Opts.Name, "err", err)
	})
	c := &Conns{}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if o.URL == "" {
		if o.Election == nil {
			return nil, errors.New("broker: the embedded server needs the election (its stations are its users)")
		}
		if gw == nil {
			g, err := NewIdentity()
			if err != nil {
				return nil, err
			}
			a, err := NewIdentity()
			if err != nil {
				return nil, err
			}
			gw, agg = &g, &a
		}
		opts := EmbeddedOptions{Dir: o.Dir, Listen: o.Listen, Logger: o.Logger,
			Users: Users(o.Election, Roles{Gateway: gw.Public, Aggregator: agg.Public, Partitions: o.Partitions}, o.Users...)}
		if c.Embedded, err = StartEmbedded(opts); err != nil {
			return nil, err
		}
		if c.Aggregator, err = c.Embedded.Connect("tally-aggregator", agg.Option(), logErrs); err != nil {
			return nil, fmt.Errorf("aggregator: %w", err)
		}
		if c.Gateway, err = c.Embedded.Connect("tally-gateway", gw.Option(), logErrs); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
		return c, nil
	}
	if gw == nil {
		if c.Aggregator, err = Dial(o.URL, "tally", logErrs); err != nil {
			return nil, err
		}
		c.Gateway = c.Aggregator
		return c, nil
	}
	if c.Aggregator, err = Dial(o.URL, "tally-aggregator", agg.Option(), logErrs); err != nil {
		return nil, fmt.Errorf("aggregator (key %s): %w", agg.Public, err)
	}
	if c.Gateway, err = Dial(o.URL, "tally-gateway", gw.Option(), logErrs); err != nil {
		return nil, fmt.Errorf("gateway (key %s): %w", gw.Public, err)
	}
	return c, nil
}

// Authenticated reports whether the roles connect with their own
// identities (always on the embedded server, whose clients must all be
// known).
func (c *Conns) Authenticated() bool { return c.Gateway != c.Aggregator }

// ClientURL returns the URL stations can publish to on the embedded
// server, "" with no listener or an external server.
func (c *Conns) ClientURL() string {
	if c.Embedded == nil {
		return ""
	}
	return c.Embedded.ClientURL()
}

// Close closes the connections, then stops the embedded server and waits
// for it. Safe on partly opened Conns.
func (c *Conns) Close() {
	if c.Gateway != nil && c.Gateway != c.Aggregator {
		c.Gateway.Close()
	}
	if c.Aggregator != nil {
		c.Aggregator.Close()
	}
	if c.Embedded != nil {
		c.Embedded.Shutdown()
	}
}
