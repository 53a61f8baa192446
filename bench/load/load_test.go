package load

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tallyvn/tally/server"
)

// TestLoadShort is a bounded run of the load tool: 300 stations for two
// seconds, then every result compared with the reference.
func TestLoadShort(t *testing.T) {
	t.Parallel()
	rep, err := Run(context.Background(), Config{Stations: 300, Duration: 2 * time.Second, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep)
	if rep.Accepted == 0 || len(rep.Mismatches) > 0 {
		t.Fatalf("accepted %d, %d mismatches", rep.Accepted, len(rep.Mismatches))
	}
}

// TestFloodShedsLoad floods a server bounded to 16 submissions in flight
// and a fold at most 500 events behind (committing 10 at a time, so it
// falls behind) with 1,500 stations submitting without pause: the gateway
// must shed load with 429 and Retry-After rather than queue it, the Go heap
// must stay bounded, and every minutes answered 202 must be in the results.
func TestFloodShedsLoad(t *testing.T) {
	t.Parallel()
	rep, err := Run(context.Background(), Config{
		Stations: 1500, Duration: 3 * time.Second, DataDir: t.TempDir(),
		Server: func(c *server.Config) {
			c.Gateway.MaxInFlight = 16
			c.Gateway.MaxPending = 500
			c.Fold.BatchSize = 10
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep)
	var inFlight, behind, noRetryAfter int
	for kind, n := range rep.Errors {
		switch {
		case strings.Contains(kind, "without Retry-After"):
			noRetryAfter += n
		case kind == "429 in flight":
			inFlight += n
		case kind == "429 fold behind":
			behind += n
		}
	}
	if inFlight == 0 {
		t.Errorf("no 429 for submissions in flight under a flood: %v", rep.Errors)
	}
	if noRetryAfter > 0 {
		t.Errorf("%d refusals without Retry-After", noRetryAfter)
	}
	if len(rep.Mismatches) > 0 || rep.Accepted == 0 {
		t.Errorf("accepted %d, %d mismatches with the reference", rep.Accepted, len(rep.Mismatches))
	}
	// Server and 1,500 stations share this process; what the server may
	// hold for them is bounded by MaxInFlight, not by the flood.
	const bound = 400 << 20
	if rep.PeakHeap > bound {
		t.Errorf("peak Go heap in use %d MiB, bound %d MiB", rep.PeakHeap>>20, bound>>20)
	}
	t.Logf("429 in flight %d, 429 fold behind %d", inFlight, behind)
}
