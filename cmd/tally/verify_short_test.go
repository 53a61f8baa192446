package main

import (
	"context"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
)

// TestVerifyShortStream: a message deleted from the stream after the
// projections folded it makes `tally verify` fail (exit 1), saying how
// many messages it read and how many the checkpoint wants, instead of
// auditing a smaller election.
func TestVerifyShortStream(t *testing.T) {
	t.Parallel()
	election := filepath.Join("testdata", "election.json")
	dir := t.TempDir()
	srv := startServe(t, election, dir)
	if r := runTally(t, 30*time.Second, nil, "submit", "--server", srv.url, filepath.Join("testdata", "minutes_valid.json")); r.code != 0 {
		t.Fatalf("submit: %d %s", r.code, r.stderr)
	}
	st := waitCaughtUp(t, &http.Client{Timeout: 10 * time.Second}, srv.url)
	if code := srv.stop(t); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	if r := runTally(t, 60*time.Second, nil, "verify", "--election", election, "--data", dir); r.code != 0 {
		t.Fatalf("verify before the deletion: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	emb, err := broker.StartEmbedded(broker.EmbeddedOptions{Dir: dir, Listen: "none"})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := emb.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), stallWindow) // one request; only a server that stands still fails
	defer cancel()
	e, _ := loadElection(election)
	stream, err := js.Stream(ctx, events.StreamName(e.ID))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(ctx, 2); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	emb.Shutdown()

	r := runTally(t, 60*time.Second, nil, "verify", "--election", election, "--data", dir)
	t.Logf("verify after deleting seq 2: exit %d, %s", r.code, strings.TrimSpace(r.stderr))
	want := []string{"short read", "read " + strconv.FormatUint(st.AppliedSeq-1, 10) + " messages", "want " + strconv.FormatUint(st.AppliedSeq, 10)}
	for _, w := range want {
		if r.code != 1 || !strings.Contains(r.stderr, w) {
			t.Errorf("verify with a message missing: exit %d, stderr %q; want exit 1 and %q", r.code, r.stderr, w)
		}
	}
}
