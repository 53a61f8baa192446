package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrStreamBehind is returned when the stream ends below the checkpoint: the
// broker lost minutes it had acknowledged (or the stream was replaced).
var ErrStreamBehind = errors.New("projections: stream is behind the checkpoint")

// ErrStreamGap is returned when the stream no longer holds messages right
// after the checkpoint (they were purged or deleted).
var ErrStreamGap = errors.New("projections: stream lost messages after the checkpoint")

// ErrConsumerStopped is returned when the stream's consumer ended while the
// fold was running (it was deleted, or JetStream went away).
var ErrConsumerStopped = errors.New("projections: the fold's consumer stopped")

// ErrDeliveryGap is returned when the fold's consumer delivered a message
// past the next stream sequence: a message was lost in transit (see
// seqCheck). Nothing after the gap was applied; a new consumer started
// after the checkpoint delivers the lost message again, which is what
// Follower does.
var ErrDeliveryGap = errors.New("projections: the fold's consumer skipped messages")

// consumerCheckEvery is how often a running fold checks that its consumer
// still exists.
const consumerCheckEvery = 2 * time.Second

// DefaultBatchSize is AggregatorConfig.BatchSize when not set: 10,000
// messages per Pebble commit.
const DefaultBatchSize = 10_000

// AggregatorConfig configures an Aggregator.
type AggregatorConfig struct {
	// Durable is the durable consumer name. Default "tally-fold".
	Durable string
	// BatchSize is the most messages folded in one Pebble commit while the
	// fold keeps up: default DefaultBatchSize. It is a bound: a batch holds
	// what the consumer has delivered, so it is that large only when the
	// fold is behind (catching up, rebuilding), where larger batches
	// rewrite the busy district and province aggregates less often. While
	// the stream holds more than BatchSize messages the consumer has not
	// delivered yet, a batch may hold four times as many.
	BatchSize int
	// Logger; nil discards.
	Logger *slog.Logger
	// OnCommit, if set, is called by the fold goroutine after each commit.
	// The slices in the BatchInfo are valid only during the call. It must
	// not block: the fold waits for it.
	OnCommit func(*BatchInfo)
}

func (c *AggregatorConfig) ensureDefaults() {
	if c.Durable == "" {
		c.Durable = "tally-fold"
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// BatchInfo describes one committed fold batch.
type BatchInfo struct {
	Meta     Meta              // after the commit
	Changed  []Ref             // aggregates the batch changed
	Outcomes [Rejected + 1]int // messages per Outcome
	Times    []time.Time       // when the stream stored each message
	Commit   time.Duration     // how long the Pebble commit took
	Pending  uint64            // messages left in the stream for the consumer after this batch
	Done     time.Time         // when the commit finished
}

// Aggregator feeds a stream to a store's Fold with a durable pull consumer.
//
// It pipelines: while one batch commits (and fsyncs) on a committer
// goroutine, the next is decoded and applied in memory. Each batch is
// acknowledged only after its own commit.
type Aggregator struct {
	store  *Store
	stream jetstream.Stream
	cfg    AggregatorConfig
}

// inflight is an ended batch on its way to the committer.
type inflight struct {
	done *Batch
	last jetstream.Msg // acknowledged (AckAll) once committed
	info *BatchInfo
}

// NewAggregator returns an aggregator folding stream into store.
func NewAggregator(store *Store, stream jetstream.Stream, cfg AggregatorConfig) *Aggregator {
	cfg.ensureDefaults()
	return &Aggregator{store: store, stream: stream, cfg: cfg}
}

// CheckStream compares the stream with the checkpoint: the stream must hold
// every message above it. It returns ErrStreamBehind or ErrStreamGap.
func CheckStream(ctx context.Context, stream jetstream.Stream, checkpoint uint64) error {
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream info: %w", err)
	}
	st := info.State
	if st.LastSeq < checkpoint {
		return fmt.Errorf("%w: stream %s ends at sequence %d but the projections have folded up to %d. "+
			"The NATS server lost acknowledged minutes, or this is not the stream the projections were built from. "+
			"Restore the NATS store from a backup, or run `tally rebuild` to rebuild the projections from what the stream holds now",
			ErrStreamBehind, info.Config.Name, st.LastSeq, checkpoint)
	}
	if st.Msgs > 0 && st.FirstSeq > checkpoint+1 {
		return fmt.Errorf("%w: stream %s starts at sequence %d but the projections have folded only up to %d; messages %d..%d are gone. "+
			"Restore the NATS store from a backup", ErrStreamGap, info.Config.Name, st.FirstSeq, checkpoint, checkpoint+1, st.FirstSeq-1)
	}
	return nil
}

// Run folds the stream until ctx is cancelled or the fold fails. It resumes
// after the store's checkpoint. On cancellation it finishes and commits the
// batch in hand and returns nil.
func (a *Aggregator) Run(ctx context.Context) error {
	err := a.run(ctx)
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil // shutdown arrived while setting up: not a failure
	}
	return err
}

func (a *Aggregator) run(ctx context.Context) error {
	fold := a.store.Fold()
	checkpoint := fold.Meta().Checkpoint
	if err := CheckStream(ctx, a.stream, checkpoint); err != nil {
		return err
	}
	// The checkpoint, not the consumer's ack floor, is the truth: recreate
	// the consumer to start right after it, so nothing waits for AckWait to
	// be redelivered after a restart.
	if err := a.stream.DeleteConsumer(ctx, a.cfg.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("reset consumer %s: %w", a.cfg.Durable, err)
	}
	ccfg := jetstream.ConsumerConfig{
		Durable:       a.cfg.Durable,
		Description:   "tally fold",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       time.Minute,
		// Above what can be in flight: two batches of catchUpBatches ×
		// BatchSize (one committing, one applying), the channel and a pull.
		MaxAckPending: 16 * a.cfg.BatchSize,
	}
	if checkpoint > 0 {
		ccfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		ccfg.OptStartSeq = checkpoint + 1
	}
	cons, err := a.stream.CreateOrUpdateConsumer(ctx, ccfg)
	if err != nil {
		return fmt.Errorf("create consumer %s: %w", a.cfg.Durable, err)
	}
	check := seqCheck{next: checkpoint + 1}
	if checkpoint == 0 {
		// Delivered from the stream's first message.
		info, err := a.stream.Info(ctx)
		if err != nil {
			return fmt.Errorf("stream info: %w", err)
		}
		check.next = info.State.FirstSeq
		if info.State.Msgs == 0 {
			check.next = info.State.LastSeq + 1
		}
	}

	done := make(chan struct{})
	defer close(done)
	msgs := make(chan jetstream.Msg, 2*a.cfg.BatchSize)
	gone := make(chan struct{}) // closed when the consumer no longer exists
	var goneOnce sync.Once
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-done:
		}
	}, jetstream.PullMaxMessages(a.cfg.BatchSize), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		a.cfg.Logger.Warn("consumer", "err", err)
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
			goneOnce.Do(func() { close(gone) })
		}
	}))
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	defer cc.Stop()
	a.cfg.Logger.Info("fold started", "checkpoint", checkpoint, "consumer", a.cfg.Durable)

	// The committer commits ended batches in order, then acknowledges and
	// reports them. Two BatchInfo values alternate: one being filled, one
	// being committed.
	commits := make(chan inflight)
	free := make(chan *BatchInfo, 2)
	free <- new(BatchInfo)
	free <- new(BatchInfo)
	commitErr := make(chan error, 1)
	go func() {
		defer close(commitErr)
		for in := range commits {
			if err := a.commit(in); err != nil {
				commitErr <- err
				for range commits { // let the fold loop finish sending
				}
				return
			}
			free <- in.info
		}
	}()
	stopped := make(chan struct{})
	go func() { // any sign that the consumer is gone
		// A consumer deleted before the first pull answers nothing at all
		// (no status message, only missed heartbeats): look for it too.
		tick := time.NewTicker(consumerCheckEvery)
		defer tick.Stop()
		for {
			select {
			case <-cc.Closed():
			case <-gone:
			case <-tick.C:
				if _, err := cons.Info(ctx); !errors.Is(err, jetstream.ErrConsumerNotFound) {
					continue
				}
			case <-done:
				return
			}
			close(stopped)
			return
		}
	}()
	err = a.foldLoop(ctx, &check, msgs, stopped, commits, free, commitErr)
	close(commits)
	if cerr := <-commitErr; err == nil {
		err = cerr
	}
	return err
}

// catchUpBatches is how many times BatchSize messages a batch may hold
// while the fold is behind by more than BatchSize: the hot district and
// province aggregates, restaged by every batch whatever its size, are
// then written a quarter as often.
const catchUpBatches = 4

// batchWait bounds how long a batch waits for the next message the stream
// holds for the consumer before it is committed without it.
const batchWait = 20 * time.Millisecond

// foldLoop applies batches and hands them to the committer until ctx is
// done or something fails. A batch applies messages as they come and ends
// at its bound (BatchSize messages, or catchUpBatches times that while the
// stream holds more than BatchSize messages not yet delivered), or when
// no message is waiting and the stream holds none for the consumer, or
// after batchWait without one.
func (a *Aggregator) foldLoop(ctx context.Context, check *seqCheck, msgs <-chan jetstream.Msg, closed <-chan struct{}, commits chan<- inflight, free chan *BatchInfo, commitErr <-chan error) error {
	fold := a.store.Fold()
	windowBuf := make([]Msg, 0, applyWindow)
	wait := time.NewTimer(batchWait)
	wait.Stop()
	defer wait.Stop()
	for {
		var m jetstream.Msg
		select {
		case m = <-msgs:
		case err := <-commitErr:
			return err
		case <-closed:
			if ctx.Err() != nil {
				return nil
			}
			// The consumer ended by itself (deleted on the server, JetStream
			// gone): say so, so that the caller restarts the fold.
			return ErrConsumerStopped
		case <-ctx.Done():
			return nil
		}
		var info *BatchInfo
		select {
		case info = <-free:
		case err := <-commitErr:
			return err
		}
		info.Outcomes = [Rejected + 1]int{}
		info.Times = info.Times[:0]
		var (
			msg   Msg
			gap   error
			last  jetstream.Msg // the last message of the batch, acknowledged with it
			n     int
			limit = a.cfg.BatchSize
			// window holds the messages read but not yet applied: up to
			// a window of them while more are waiting (Fold.ApplyAll).
			window = windowBuf[:0]
		)
		for m != nil {
			var ack ackInfo
			var err error
			if msg, ack, err = readMsg(m); err != nil {
				return err
			}
			if gap = check.check(ack.streamSeq); gap != nil {
				break // commit what came before the gap; drop the rest
			}
			window = append(window, msg)
			info.Times = append(info.Times, ack.stored)
			info.Pending = ack.pending
			last = m
			if n++; ack.pending > uint64(a.cfg.BatchSize) {
				limit = catchUpBatches * a.cfg.BatchSize
			}
			m = nil
			if n >= limit {
				break
			}
			select {
			case m = <-msgs:
				if len(window) == cap(window) {
					if window, err = applyWindowed(fold, window, info); err != nil {
						return err
					}
				}
				continue
			default:
			}
			// Nothing waiting: apply what came before waiting for more.
			if window, err = applyWindowed(fold, window, info); err != nil {
				return err
			}
			if ack.pending == 0 {
				break // caught up: commit what came
			}
			// The stream holds more for the consumer: wait for it rather
			// than commit a batch as small as the channel's momentary
			// content, a bounded time.
			wait.Reset(batchWait)
			select {
			case m = <-msgs:
			case <-wait.C:
			case <-closed:
			case <-ctx.Done():
			}
			wait.Stop()
		}
		if _, err := applyWindowed(fold, window, info); err != nil {
			return err
		}
		done, err := fold.EndBatch()
		if err != nil {
			return err
		}
		if done == nil { // every message was at or below the checkpoint
			if last != nil {
				last.Ack()
			}
			free <- info
			if gap != nil {
				return gap
			}
			continue
		}
		select {
		case commits <- inflight{done: done, last: last, info: info}:
		case err := <-commitErr:
			return err
		}
		if gap != nil {
			return gap // after handing the batch before it to the committer
		}
	}
}

// applyWindowed applies the messages of window (Fold.ApplyAll), counts
// their outcomes in info, and returns window emptied.
func applyWindowed(fold *Fold, window []Msg, info *BatchInfo) ([]Msg, error) {
	err := fold.ApplyAll(window, func(_ int, o Outcome) { info.Outcomes[o]++ })
	clear(window) // drop the references to the messages' data
	return window[:0], err
}

// seqCheck checks that the fold's consumer delivers every stream sequence,
// in order.
//
// Why: the fold takes a message at or below its checkpoint as already
// applied, so a message that arrives after a later one would be skipped
// for good. A pull consumer can deliver out of order after a
// disconnection: messages the server sent while the connection was
// dropping count as delivered and come back only after AckWait, after
// later ones (and an AckAll of a later message acknowledges them). Tests
// cutting the connection under load have not produced such a gap with
// nats-server 2.15, but nothing in the protocol rules it out, and its cost
// would be minutes answered 202 and never counted. The check costs a
// comparison per message: the sequence is parsed from the ack subject
// anyway.
//
// The stream of an election never deletes messages (the stream is the
// source of truth), so a gap can only be a lost delivery.
type seqCheck struct {
	next uint64 // the stream sequence that must come next
}

// check returns nil for the next sequence and for a redelivery (at or
// below the last one seen, which the fold skips), and an error wrapping
// ErrDeliveryGap for a sequence past the next one.
func (c *seqCheck) check(seq uint64) error {
	switch {
	case seq < c.next:
		return nil
	case seq == c.next:
		c.next++
		return nil
	default:
		return fmt.Errorf("%w: expected stream sequence %d, got %d", ErrDeliveryGap, c.next, seq)
	}
}

// commit commits one ended batch, then acknowledges and reports it.
func (a *Aggregator) commit(in inflight) error {
	start := time.Now()
	if err := a.store.Fold().CommitBatch(in.done); err != nil {
		return err
	}
	info := in.info
	info.Done = time.Now()
	info.Commit = info.Done.Sub(start)
	// Commit, then ack: a crash in between only causes a redelivery that
	// the checkpoint skips. AckAll acknowledges the whole batch.
	if err := in.last.Ack(); err != nil {
		a.cfg.Logger.Warn("ack", "err", err) // harmless: redelivered and skipped
	}
	if a.cfg.OnCommit != nil {
		info.Meta, info.Changed = in.done.Meta, in.done.Changed
		a.cfg.OnCommit(info)
	}
	return nil
}
