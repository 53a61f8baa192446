package harness

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tallyvn/tally/internal/natstest"
	"github.com/tallyvn/tally/tally"
)

// TestResetStreamsAgainAndAgain deletes and creates the election's stream
// many times on one server. A plain create right after the delete fails
// now and then (nats-server empties the account's directories in a
// goroutine, seen about once in 100); resetStreams must never fail.
func TestResetStreamsAgainAndAgain(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "longbien", "election.json"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := tally.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	js := natstest.JetStream(t)
	ctx := context.Background()
	for i := range 300 {
		sts, err := resetStreams(ctx, js, e, 1)
		if err != nil {
			t.Fatalf("reset %d: %v", i, err)
		}
		if len(sts) != 1 {
			t.Fatalf("reset %d: %d streams, want 1", i, len(sts))
		}
	}
}
