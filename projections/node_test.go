package projections_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
)

func TestFoldConsumerNames(t *testing.T) {
	for _, tc := range []struct{ node, want, err string }{
		{"", "tally-fold", ""},
		{"default", "tally-fold", ""},
		{"hn-1", "tally-fold-hn-1", ""},
		{"Node_2", "tally-fold-Node_2", ""},
		{"a.b", "", "'.'"},
		{"a b", "", "' '"},
		{"a>", "", "'>'"},
		{"a*", "", "'*'"},
		{"nút", "", "not allowed"},
		{strings.Repeat("n", 65), "", "longer than 64"},
	} {
		got, err := projections.FoldConsumer(tc.node)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("FoldConsumer(%q): %v", tc.node, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("FoldConsumer(%q) = %q, %v; want an error naming %s", tc.node, got, err, tc.err)
		case got != tc.want:
			t.Errorf("FoldConsumer(%q) = %q, want %q", tc.node, got, tc.want)
		}
	}
}

// TestNodesKeepTheirOwnConsumers runs two nodes' folds on one stream, each
// into its own store, and restarts one of them again and again while
// minutes arrive: every restart deletes and recreates that node's consumer
// (Aggregator.Run), and must never touch the other's, which keeps running
// on the consumer it created. Both end with the same store.
func TestNodesKeepTheirOwnConsumers(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 2026))
	fx := genElection(t, rng, 4, 8)
	ms := genMinutes(rng, fx)
	js, st := startStream(t, fx.e)
	pub := events.NewPublisher(js, fx.e)
	ctx := context.Background()
	nameA, err := projections.FoldConsumer("a")
	if err != nil {
		t.Fatal(err)
	}
	nameB, err := projections.FoldConsumer("b")
	if err != nil {
		t.Fatal(err)
	}
	open := func(name string) *projections.Store {
		s, err := projections.Open(filepath.Join(t.TempDir(), name), fx.e)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	storeA, storeB := open("a"), open("b")
	run := func(store *projections.Store, durable string) (stop func() error) {
		runCtx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		agg := projections.NewAggregator(store, st, projections.AggregatorConfig{Durable: durable, BatchSize: 50})
		go func() { errc <- agg.Run(runCtx) }()
		var once sync.Once
		var runErr error
		stop = func() error {
			once.Do(func() { cancel(); runErr = <-errc })
			return runErr
		}
		t.Cleanup(func() { stop() }) // before the stores close, on failure too
		return stop
	}
	stopB := run(storeB, nameB)
	// B's consumer exists once its fold has started.
	stopA := run(storeA, nameA)
	created := func(name string) string {
		c, err := st.Consumer(ctx, name)
		if err != nil {
			return ""
		}
		return c.CachedInfo().Created.String()
	}
	var aCreated, bCreated string
	waitFor(t, func() bool { bCreated = created(nameB); return bCreated != "" })
	waitFor(t, func() bool { aCreated = created(nameA); return aCreated != "" })
	var last uint64
	restarts := 0
	for i := 0; i < len(ms); {
		n := min(1+rng.IntN(30), len(ms)-i)
		p, err := pub.Publish(ctx, ms[i:i+n])
		if err != nil {
			t.Fatal(err)
		}
		i, last = i+n, p.Seq
		if rng.IntN(3) > 0 {
			continue
		}
		if err := stopA(); err != nil {
			t.Fatalf("node a: %v", err)
		}
		stopA = run(storeA, nameA)
		restarts++
		// Wait until a's new fold has recreated its consumer (the
		// delete and create happen then), and check b's is the one b made.
		waitFor(t, func() bool {
			c := created(nameA)
			if c == "" || c == aCreated {
				return false
			}
			aCreated = c
			return true
		})
		c, err := st.Consumer(ctx, nameB)
		if err != nil {
			t.Fatalf("after %d restarts of node a: node b's consumer %s: %v", restarts, nameB, err)
		}
		if got := c.CachedInfo().Created.String(); got != bCreated {
			t.Fatalf("after %d restarts of node a: node b's consumer was recreated (created %s, first %s)", restarts, got, bCreated)
		}
	}
	waitCheckpoint(t, storeA, last)
	waitCheckpoint(t, storeB, last)
	if err := stopA(); err != nil {
		t.Fatalf("node a: %v", err)
	}
	if err := stopB(); err != nil {
		t.Fatalf("node b: %v", err)
	}
	assertSameStore(t, storeA, storeB)
	t.Logf("%d minutes, stream at %d, node a restarted %d times", len(ms), last, restarts)
}

// waitFor waits until cond holds, failing the test after 20 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 20 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
