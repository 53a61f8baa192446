package main

// Issue 13's attacks on `tally serve` as an operator runs it, written
// against what the command offered before the fix so that they run on the
// old code too (where each failed).

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestServeNATSSideDoor (issue 13, 1): `tally serve --token-file T
// --nats-listen ADDR` on an unsealed election. Without the token HTTP
// answers 401; an anonymous NATS client must not get in either.
func TestServeNATSSideDoor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokenFile := writeToken(t, dir, "operator.token", cliToken)
	natsAddr := freeAddr(t)
	srv := startServe(t, filepath.Join("testdata", "election.json"), t.TempDir(), "--token-file", tokenFile, "--nats-listen", natsAddr)
	if r := runTally(t, 30*time.Second, nil, "submit", "--server", srv.url, filepath.Join("testdata", "minutes_valid.json")); r.code != 1 || !strings.Contains(r.stderr, "401") {
		t.Errorf("submit without the token: exit %d %s, want 1 and 401", r.code, r.stderr)
	}
	nc, err := nats.Connect("nats://"+natsAddr, nats.MaxReconnects(0), nats.Timeout(3*time.Second))
	if err == nil {
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		raw, _ := os.ReadFile(filepath.Join("testdata", "minutes_valid.json"))
		var ms []json.RawMessage
		json.Unmarshal(raw, &ms)
		ack, perr := js.Publish(ctx, "tally.lb-2021.minutes.HN.LB-BD-01.QH", ms[0])
		_, rerr := nc.Request("$JS.API.STREAM.PURGE.TALLY_lb-2021", nil, 2*time.Second)
		t.Fatalf("an anonymous NATS client was admitted: publish %+v %v; purge: %v", ack, perr, rerr)
	}
	t.Logf("attack %q: %v", "anonymous NATS client", err)
	if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("anonymous NATS: %v, want an authorization error", err)
	}
}

// TestServeRefusesSharedSeal (issue 13, 4): an election file in which two
// stations have the same seal is refused at start, naming both.
func TestServeRefusesSharedSeal(t *testing.T) {
	t.Parallel()
	_, sealedDir := sealedTestElection(t)
	electionFile := filepath.Join(sealedDir, "election.json")
	var file map[string]any
	raw, _ := os.ReadFile(electionFile)
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	stations := file["stations"].([]any)
	first := stations[0].(map[string]any)
	second := stations[1].(map[string]any)
	second["seal"] = first["seal"]
	writeJSONFile(t, electionFile, file)
	// A server that accepts the file keeps running: the time limit only
	// ends that failure.
	r := runTally(t, 60*time.Second, nil, "serve", "--election", electionFile, "--data", t.TempDir(), "--http", "127.0.0.1:0", "--nats-listen", "none")
	t.Logf("attack %q: exit %d, %s", "two stations with one seal", r.code, strings.TrimSpace(r.stderr))
	if r.code != 1 || !strings.Contains(r.stderr, first["id"].(string)) || !strings.Contains(r.stderr, second["id"].(string)) || !strings.Contains(r.stderr, "seal") {
		t.Errorf("exit %d, stderr %q; want 1, naming stations %s and %s and their seal", r.code, r.stderr, first["id"], second["id"])
	}
}
