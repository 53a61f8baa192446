package server

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/tallyvn/tally/broker"
)

// TestExternalNATS runs tally against a NATS server it did not start (as
// with --nats URL on a real cluster): the stream is created there, minutes
// flow, and a second tally process started later on a fresh data dir
// resumes from the same stream (its projections rebuilt by folding it).
func TestExternalNATS(t *testing.T) {
	ext, err := broker.StartEmbedded(broker.EmbeddedOptions{Dir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Shutdown()
	url := ext.ClientURL()
	if url == "" {
		t.Fatal("external server has no client URL")
	}
	e, lines := longBien(t)

	start := func() (*Server, string, context.CancelFunc, chan error) {
		ctx, cancel := context.WithCancel(context.Background())
		srv, err := New(ctx, Config{Election: e, DataDir: t.TempDir(), HTTP: HTTPConfig{Addr: "127.0.0.1:0"}, NATS: NATSConfig{URL: url}})
		if err != nil {
			t.Fatal(err)
		}
		if srv.NATSURL() != url {
			t.Fatalf("NATSURL %q, want %q", srv.NATSURL(), url)
		}
		done := make(chan error, 1)
		go func() { done <- srv.Run(ctx) }()
		return srv, "http://" + srv.Addr(), cancel, done
	}
	srv, base, cancel, done := start()
	seq := submitLines(t, srv, base, lines)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	srv2, base2, cancel2, done2 := start()
	defer func() {
		cancel2()
		if err := <-done2; err != nil {
			t.Error(err)
		}
	}()
	ctx, stop := context.WithTimeout(context.Background(), 20e9)
	defer stop()
	if err := srv2.WaitApplied(ctx, seq); err != nil {
		t.Fatalf("second server did not fold the external stream: %v", err)
	}
	resp, err := http.Get(base2 + "/api/v1/contests/QH/units/QH-HN-02")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var u map[string]any
	json.NewDecoder(resp.Body).Decode(&u)
	// QH-HN-02 spans Hoàn Kiếm and Đông Anh too (stations_outside): with
	// all 183 Long Biên stations final it is still counting.
	if u["status"] != "counting" || u["stations_final"] != float64(183) || u["stations_expected"] != float64(183+342) {
		t.Fatalf("unit after refolding the external stream: status %v, final %v of %v", u["status"], u["stations_final"], u["stations_expected"])
	}
}
