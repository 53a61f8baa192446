// Package broker runs the NATS server tally needs and connects to it: an
// embedded nats-server with JetStream (the default, one process, nothing to
// install) or an external server or cluster given by URL.
//
// The embedded server stores its stream under the data directory and fsyncs
// every acknowledged write (SyncAlways): nats-server's default is to fsync
// every two minutes, and a count minutes acknowledged with 202 must survive
// a power cut. It listens on loopback only, for stations that publish
// straight to NATS; tally itself talks to it in-process.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Embedded is an in-process nats-server with JetStream.
type Embedded struct {
	srv *server.Server
}

// EmbeddedOptions configures an embedded server.
type EmbeddedOptions struct {
	// Dir is where JetStream keeps its store (Dir/jetstream).
	Dir string
	// Listen is the host:port stations connect to; "" or "none" for no
	// listener (in-process connections only). Port 0 picks a free port.
	Listen string
	// Logger receives the server's notices and errors; nil discards them.
	Logger *slog.Logger
	// Users, if any, are the only identities allowed to connect (see
	// Users); with none, any local client may connect.
	Users []*server.NkeyUser
}

// StartEmbedded starts an embedded server and waits until it accepts
// connections.
func StartEmbedded(o EmbeddedOptions) (*Embedded, error) {
	opts := &server.Options{
		ServerName: "tally-embedded",
		JetStream:  true,
		StoreDir:   filepath.Join(o.Dir, "nats"),
		SyncAlways: true,
		NoSigs:     true,
		NoLog:      o.Logger == nil,
		MaxPayload: 1 << 20,
		Nkeys:      o.Users,
	}
	switch o.Listen {
	case "", "none":
		opts.DontListen = true
	default:
		host, port, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", o.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("nats listen address %q: bad port", o.Listen)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		} else {
			// nats-server only logs a busy port; find out first and say so.
			l, err := net.Listen("tcp", o.Listen)
			if err != nil {
				return nil, fmt.Errorf("nats listen address %s is not available (use --nats-listen to pick another, or none): %w", o.Listen, err)
			}
			l.Close()
		}
		opts.Host, opts.Port = host, p
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats server: %w", err)
	}
	if o.Logger != nil {
		srv.SetLoggerV2(slogAdapter{o.Logger.With("component", "nats")}, false, false, false)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded nats server did not become ready in 30s")
	}
	return &Embedded{srv: srv}, nil
}

// ClientURL returns the URL stations can connect to, or "" when the server
// does not listen.
func (e *Embedded) ClientURL() string {
	if e.srv.Addr() == nil {
		return ""
	}
	return e.srv.ClientURL()
}

// Connect returns an in-process client connection; opts may carry an
// identity (Identity.Option).
func (e *Embedded) Connect(name string, opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.InProcessServer(e.srv), nats.Name(name), nats.MaxReconnects(-1)}, opts...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to embedded nats: %w", err)
	}
	return nc, nil
}

// Shutdown stops the server and waits for it to finish.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// ReconnectWait is how long a connection to an external server waits
// between attempts to reconnect, before jitter. A cluster elects a new
// stream leader in a few seconds; a short wait lets tally publish again
// soon after, and the jitter keeps many clients from reconnecting in step.
const ReconnectWait = 250 * time.Millisecond

// Dial connects to an external NATS server or cluster. urls is one URL or
// several separated by commas (members of one cluster: the client tries
// them all, and learns the others from the cluster). Once connected it
// reconnects forever, to any member, every ReconnectWait plus jitter.
func Dial(urls, name string, opts ...nats.Option) (*nats.Conn, error) {
	if err := CheckURLs(urls); err != nil {
		return nil, err
	}
	opts = append([]nats.Option{
		nats.Name(name), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(false),
		nats.ReconnectWait(ReconnectWait), nats.ReconnectJitter(100*time.Millisecond, time.Second),
	}, opts...)
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", urls, err)
	}
	return nc, nil
}

// CheckURLs checks a comma-separated list of NATS server URLs
// ("nats://host:port", "tls://host:port", or "host:port").
func CheckURLs(urls string) error {
	for i, u := range strings.Split(urls, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			return fmt.Errorf("nats URL list %q: URL %d is empty", urls, i+1)
		}
		if !strings.Contains(u, "://") {
			u = "nats://" + u
		}
		p, err := url.Parse(u)
		if err != nil {
			return fmt.Errorf("nats URL %d of %q: %w", i+1, urls, err)
		}
		switch p.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("nats URL %d of %q: scheme %q (want nats, tls, ws or wss)", i+1, urls, p.Scheme)
		}
		if p.Host == "" {
			return fmt.Errorf("nats URL %d of %q: no host", i+1, urls)
		}
	}
	return nil
}

// ErrStreamMismatch is returned by EnsureStream when the stream exists with
// a configuration tally cannot use: waiting does not cure it.
var ErrStreamMismatch = errors.New("broker: the stream exists with another configuration")

// EnsureStream creates the stream described by cfg if it is missing and
// returns it. An existing stream is left as it is (its subjects must match,
// or the error is ErrStreamMismatch).
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	st, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", cfg.Name, err)
	}
	got := st.CachedInfo().Config
	if len(got.Subjects) != 1 || got.Subjects[0] != cfg.Subjects[0] {
		return nil, fmt.Errorf("%w: stream %s exists with subjects %v, want %v", ErrStreamMismatch, cfg.Name, got.Subjects, cfg.Subjects)
	}
	if got.Storage != jetstream.FileStorage {
		return nil, fmt.Errorf("%w: stream %s exists with %v storage; tally needs file storage so minutes survive a restart", ErrStreamMismatch, cfg.Name, got.Storage)
	}
	return st, nil
}

// slogAdapter routes nats-server logs to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(format string, v ...any) { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Tracef(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
