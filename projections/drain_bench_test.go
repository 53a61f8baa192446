package projections_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/projections"
)

// preload publishes n minutes of the bench workload to a fresh stream.
func preload(b *testing.B, n int) (*benchWorkload, jetstream.Stream) {
	b.Helper()
	w := newBenchWorkload(b)
	js, st := startStream(b, w.fx.e)
	var msgs []projections.Msg
	for done := 0; done < n; {
		msgs = w.chunk(msgs, done, min(2000, n-done))
		var futs []jetstream.PubAckFuture
		for i := range msgs {
			f, err := js.PublishMsgAsync(&nats.Msg{Subject: msgs[i].Subject, Data: msgs[i].Data})
			if err != nil {
				b.Fatal(err)
			}
			futs = append(futs, f)
		}
		for _, f := range futs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				b.Fatal(err)
			}
		}
		done += len(msgs)
	}
	return w, st
}

// BenchmarkDrain compares, on one preloaded stream, a durable pull consumer
// that only acknowledges (the ceiling) with the aggregator folding into an
// empty store. Each iteration drains the whole stream; events/s is reported.
func BenchmarkDrain(b *testing.B) {
	const n = 200_000
	w, st := preload(b, n)
	ctx := context.Background()
	b.Run("ceiling", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "ceiling", AckPolicy: jetstream.AckAllPolicy, MaxAckPending: 64000})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			it, err := cons.Messages(jetstream.PullMaxMessages(2000))
			if err != nil {
				b.Fatal(err)
			}
			for k := 0; k < n; k++ {
				m, err := it.Next()
				if err != nil {
					b.Fatal(err)
				}
				if k%2000 == 1999 || k == n-1 {
					m.Ack()
				}
			}
			it.Stop()
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
			st.DeleteConsumer(ctx, "ceiling")
		}
	})
	b.Run("fold", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			store, err := projections.Open(filepath.Join(b.TempDir(), "p"), w.fx.e)
			if err != nil {
				b.Fatal(err)
			}
			if path := os.Getenv("TALLY_FOLD_PROFILE"); path != "" && i == b.N-1 {
				f, err := os.Create(path)
				if err != nil {
					b.Fatal(err)
				}
				pprof.StartCPUProfile(f)
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			}
			start := time.Now()
			stop := runAggregator(b, store, st, 2000)
			waitCheckpoint(b, store, n)
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
			if err := stop(); err != nil {
				b.Fatal(err)
			}
			store.Close()
		}
	})
}
