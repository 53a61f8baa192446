package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
)

// getHealth GETs path and decodes the Health answer.
func getHealth(t *testing.T, base, path string) (int, Health) {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var h Health
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("GET %s: %d %q: %v", path, resp.StatusCode, raw, err)
	}
	if resp.StatusCode != http.StatusOK && resp.Header.Get("Retry-After") == "" {
		t.Errorf("GET %s: %d without Retry-After", path, resp.StatusCode)
	}
	return resp.StatusCode, h
}

// awaitReady polls GET /readyz until it answers 200, failing the test if
// the node's applied_seq stops moving for 20 s before it does.
func awaitReady(t *testing.T, base string) Health {
	t.Helper()
	var last uint64
	progress := time.Now()
	for {
		code, h := getHealth(t, base, "/readyz")
		if code == http.StatusOK {
			return h
		}
		if h.AppliedSeq != last {
			last, progress = h.AppliedSeq, time.Now()
		}
		if time.Since(progress) > 20*time.Second {
			t.Fatalf("/readyz still %d (%+v), no progress in 20 s", code, h)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHealthAndReadiness follows one node (on an external NATS server)
// through the states a load balancer must tell apart: live and ready on an
// empty stream; alive but not ready while it catches up with minutes stored
// while it was down, and while it rebuilds lost projections; ready once it
// has; alive but not ready when NATS is gone.
func TestHealthAndReadiness(t *testing.T) {
	ext, err := broker.StartEmbedded(broker.EmbeddedOptions{Dir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	extUp := true
	defer func() {
		if extUp {
			ext.Shutdown()
		}
	}()
	e, lines := longBien(t)
	cfg := Config{Election: e, DataDir: t.TempDir(), HTTP: HTTPConfig{Addr: "127.0.0.1:0"}, NATS: NATSConfig{URL: ext.ClientURL()}, Fold: FoldConfig{Node: "hn-1"}}
	type running struct {
		srv    *Server
		base   string
		cancel context.CancelFunc
		done   chan error
	}
	open := func() *running {
		ctx, cancel := context.WithCancel(context.Background())
		srv, err := New(ctx, cfg)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		return &running{srv: srv, base: "http://" + srv.Addr(), cancel: cancel, done: make(chan error, 1)}
	}
	run := func(r *running) {
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel = cancel
		go func() { r.done <- r.srv.Run(ctx) }()
	}
	stop := func(r *running) {
		r.cancel()
		if err := <-r.done; err != nil {
			t.Fatal(err)
		}
	}

	r := open()
	run(r)
	if code, h := getHealth(t, r.base, "/healthz"); code != http.StatusOK || h.Node != "hn-1" {
		t.Fatalf("/healthz: %d %+v", code, h)
	}
	if h := awaitReady(t, r.base); h.AppliedSeq != 0 || h.StreamSeq != 0 || h.Node != "hn-1" {
		t.Fatalf("/readyz on an empty stream: %+v", h)
	}
	seq := submitLines(t, r.srv, r.base, lines[:20])
	stop(r)

	// Minutes stored while the node is down (a station publishing straight
	// to NATS, or another node): the restarted node is behind until its
	// fold has applied them.
	nc, err := nats.Connect(ext.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// A JetStream publish returns once the message is stored, so the
	// stream's last position below is known; a core publish is stored
	// some time after Flush.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines[20:40] {
		if _, err := js.Publish(context.Background(), events.SubjectPrefix(e.ID)+"x.z.QH", l); err != nil {
			t.Fatal(err)
		}
	}
	want := seq + 20
	r = open()
	// Not running yet: its fold applies nothing.
	h := r.srv.readiness(context.Background())
	if h.Ready || h.State != CatchingUp || h.StreamSeq != want || h.AppliedSeq != seq || !strings.Contains(h.Reason, "catching up") {
		t.Fatalf("readiness before the fold runs, behind the stream: %+v (want not ready, applied %d, stream %d)", h, seq, want)
	}
	run(r)
	if h := awaitReady(t, r.base); h.AppliedSeq != want || h.StreamSeq != want || h.State != Ready {
		t.Fatalf("/readyz once caught up: %+v, want applied_seq = stream_seq = %d", h, want)
	}
	stop(r)

	// Projections lost: rebuilt from the stream, not ready until done.
	if err := os.RemoveAll(filepath.Join(cfg.DataDir, "projections")); err != nil {
		t.Fatal(err)
	}
	r = open()
	h = r.srv.readiness(context.Background())
	if h.Ready || h.State != Rebuilding || !strings.Contains(h.Reason, "rebuilt") {
		t.Fatalf("readiness while rebuilding: %+v", h)
	}
	run(r)
	if h := awaitReady(t, r.base); h.AppliedSeq != want {
		t.Fatalf("/readyz after the rebuild: %+v, want applied_seq %d", h, want)
	}

	// NATS gone: alive, not ready.
	ext.Shutdown()
	extUp = false
	// The client notices the lost connection by itself; nothing else moves.
	for deadline := time.Now().Add(20 * time.Second); ; {
		code, h := getHealth(t, r.base, "/readyz")
		if code == http.StatusServiceUnavailable {
			if h.Ready || h.Reason == "" {
				t.Fatalf("/readyz 503 without a reason: %+v", h)
			}
			t.Logf("NATS down: /readyz %d %q", code, h.Reason)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d 20 s after NATS went away: %+v", code, h)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, h := getHealth(t, r.base, "/healthz"); code != http.StatusOK || !h.Ready {
		t.Fatalf("/healthz with NATS down: %d %+v", code, h)
	}
	stop(r)
}
