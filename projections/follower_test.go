package projections_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/audit"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
)

// lossyStream is a real stream whose consumers lose the delivery of one
// stream sequence, once: what a pull consumer may do when its connection
// drops while the server sends (the message counts as delivered and comes
// back only after AckWait, after later ones).
type lossyStream struct {
	jetstream.Stream
	mu      sync.Mutex
	lose    uint64 // the sequence to lose
	lost    bool
	creates int
}

func (s *lossyStream) CreateOrUpdateConsumer(ctx context.Context, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := s.Stream.CreateOrUpdateConsumer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.creates++
	s.mu.Unlock()
	return &lossyConsumer{Consumer: c, s: s}, nil
}

type lossyConsumer struct {
	jetstream.Consumer
	s *lossyStream
}

func (c *lossyConsumer) Consume(h jetstream.MessageHandler, opts ...jetstream.PullConsumeOpt) (jetstream.ConsumeContext, error) {
	return c.Consumer.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err == nil {
			c.s.mu.Lock()
			drop := !c.s.lost && md.Sequence.Stream == c.s.lose
			if drop {
				c.s.lost = true
			}
			c.s.mu.Unlock()
			if drop {
				return
			}
		}
		h(m)
	}, opts...)
}

// TestFollowerRecoversLostDelivery: a consumer that skips a message (real
// stream, real store) stops the aggregator at the gap (ErrDeliveryGap, the
// batch before the gap committed, nothing after it applied); the follower
// starts a new consumer after the checkpoint, which delivers the lost
// message, and the store ends equal to the audit fold of the stream, every
// message counted once.
func TestFollowerRecoversLostDelivery(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	fx := genElection(t, rng, 4, 10)
	ms := genMinutes(rng, fx)
	js, st := startStream(t, fx.e)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pub, err := events.NewPublisher(js, fx.e).Publish(ctx, ms)
	if err != nil {
		t.Fatal(err)
	}
	if pub.Seq < 10 {
		t.Fatalf("only %d messages: the test would prove little", pub.Seq)
	}
	lossy := &lossyStream{Stream: st, lose: pub.Seq / 2}

	// The aggregator alone stops at the gap with the messages before it
	// committed.
	store, err := projections.Open(filepath.Join(t.TempDir(), "p"), fx.e)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	err = projections.NewAggregator(store, lossy, projections.AggregatorConfig{BatchSize: 7}).Run(ctx)
	if !errors.Is(err, projections.ErrDeliveryGap) {
		t.Fatalf("Run = %v, want ErrDeliveryGap", err)
	}
	if m, _ := store.Meta(); m.Checkpoint != lossy.lose-1 {
		t.Fatalf("checkpoint %d after the gap, want %d (everything before it, nothing after)", m.Checkpoint, lossy.lose-1)
	}

	// The follower gets past it.
	lossy = &lossyStream{Stream: st, lose: pub.Seq / 2}
	store2, err := projections.Open(filepath.Join(t.TempDir(), "p2"), fx.e)
	if err != nil {
		t.Fatal(err)
	}
	defer store2.Close()
	runCtx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- projections.NewFollower(store2, lossy, projections.FollowerConfig{Aggregator: projections.AggregatorConfig{BatchSize: 7}}).Run(runCtx)
	}()
	waitCheckpoint(t, store2, pub.Seq)
	stop()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	lossy.mu.Lock()
	lost, creates := lossy.lost, lossy.creates
	lossy.mu.Unlock()
	if !lost || creates < 2 {
		t.Fatalf("lost %v, %d consumers created: the gap was not exercised", lost, creates)
	}
	rep, err := audit.Verify(ctx, fx.e, st, store2)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Differences) > 0 || rep.Compared.Messages != int(pub.Seq) {
		t.Fatalf("audit compared %+v, %d differences: %v", rep.Compared, len(rep.Differences), rep.Differences[:min(10, len(rep.Differences))])
	}
}

// TestFollowerStopsOnFatal: a stream behind the checkpoint is not retried.
func TestFollowerStopsOnFatal(t *testing.T) {
	for _, err := range []error{projections.ErrBroken, projections.ErrStreamBehind, projections.ErrStreamGap, projections.ErrCorrupt} {
		if !projections.Fatal(err) {
			t.Errorf("Fatal(%v) = false", err)
		}
	}
	for _, err := range []error{projections.ErrDeliveryGap, projections.ErrConsumerStopped, context.DeadlineExceeded} {
		if projections.Fatal(err) {
			t.Errorf("Fatal(%v) = true", err)
		}
	}
}
