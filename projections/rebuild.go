package projections

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/tally"
)

// RebuildDir rebuilds the projections kept in dir from the whole stream:
// it folds into a fresh store beside dir (dir + ".rebuild"), and only when
// that succeeded, and the fresh store is durable, replaces dir with it. No
// server may hold dir open. A rebuild that fails or crashes leaves dir as
// it was (and a dir + ".rebuild" that the next rebuild clears).
func RebuildDir(ctx context.Context, stream jetstream.Stream, e *tally.Election, dir string) (uint64, error) {
	return RebuildDirWith(ctx, stream, e, dir, RebuildOptions{})
}

// RebuildGCPercent is the garbage collector's target percentage that tally
// rebuild runs with (debug.SetGCPercent) unless GOGC is set: a rebuild
// allocates fast (every message read) over the fold's large live state,
// which at the default, 100, the collector scans 2 or 3 times a national
// rebuild, a sixth of its CPU; at 400, once or not at all (bench/README.md,
// "Rebuild, round 2"). The price is memory: the heap may grow to
// (1 + 400/100) times the live state, for the seconds of the rebuild.
const RebuildGCPercent = 400

// RebuildOptions tunes RebuildDirWith and RebuildPartitionsWith. The zero
// value is what RebuildDir and RebuildPartitions do; the other settings
// are the rebuild as it was before it was pipelined, for comparisons
// (tallybench --rebuild-variants) and tests.
type RebuildOptions struct {
	// BatchSize is the most messages per commit. Default DefaultBatchSize.
	BatchSize int
	// Serial reads, folds and commits on one goroutine, one after the
	// other, and fsyncs every commit, as rebuilds did before they were
	// pipelined.
	Serial bool
}

// RebuildDirWith is RebuildDir with options.
func RebuildDirWith(ctx context.Context, stream jetstream.Stream, e *tally.Election, dir string, opts RebuildOptions) (uint64, error) {
	tmp := dir + ".rebuild"
	if err := os.RemoveAll(tmp); err != nil {
		return 0, fmt.Errorf("clear %s: %w", tmp, err)
	}
	open := openFresh
	if opts.Serial {
		open = Open // as before
	}
	store, err := open(tmp, e)
	if err != nil {
		return 0, err
	}
	var n uint64
	if opts.Serial {
		n, err = rebuildSerial(ctx, stream, store, opts.BatchSize)
	} else {
		n, err = rebuild(ctx, stream, store, opts.BatchSize, false)
	}
	if err == nil {
		err = store.syncStore()
	}
	if cerr := store.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close rebuilt store: %w", cerr)
	}
	if err == nil {
		err = syncDir(tmp)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return n, err
	}
	old := dir + ".old"
	if err := os.RemoveAll(old); err != nil {
		return n, fmt.Errorf("clear %s: %w", old, err)
	}
	if _, err := os.Stat(dir); err == nil {
		if err := os.Rename(dir, old); err != nil {
			return n, fmt.Errorf("move old projections aside: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return n, fmt.Errorf("put rebuilt projections in place: %w", err)
	}
	// The rename is durable once the parent directory is synced.
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return n, err
	}
	if err := os.RemoveAll(old); err != nil {
		return n, fmt.Errorf("remove old projections: %w", err)
	}
	return n, nil
}

// Rebuild folds the whole stream, from its first message to the last one
// it holds when Rebuild starts, into store (which should be empty). It
// commits every batchSize messages, each commit fsynced, and returns the
// number of messages read. RebuildDir, which rebuilds into a fresh store,
// commits without fsyncs and syncs once at the end.
func Rebuild(ctx context.Context, stream jetstream.Stream, store *Store, batchSize int) (uint64, error) {
	return rebuild(ctx, stream, store, batchSize, true)
}

// rebuildAPITimeout bounds a rebuild's JetStream API requests (stream
// info, creating the ordered consumer) instead of the client's default of
// 5 s, which a busy server may exceed while it is otherwise fine.
const rebuildAPITimeout = time.Minute

// apiCtx returns ctx with rebuildAPITimeout as its deadline if it has
// none.
func apiCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, rebuildAPITimeout)
}

// startRead returns stream's last sequence, whether there is anything to
// fold above checkpoint, and an iterator over the whole stream.
func startRead(ctx context.Context, stream jetstream.Stream, checkpoint uint64, batchSize int) (uint64, jetstream.MessagesContext, error) {
	actx, cancel := apiCtx(ctx)
	defer cancel()
	info, err := stream.Info(actx)
	if err != nil {
		return 0, nil, fmt.Errorf("stream info: %w", err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 || checkpoint >= last {
		return last, nil, nil
	}
	cons, err := stream.OrderedConsumer(actx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return 0, nil, fmt.Errorf("ordered consumer: %w", err)
	}
	if onOrderedConsumer != nil {
		onOrderedConsumer(cons)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(batchSize))
	if err != nil {
		return 0, nil, fmt.Errorf("read stream: %w", err)
	}
	return last, it, nil
}

// rebuildChunk is how many messages the reader hands the fold at a time.
const rebuildChunk = 512

// rebuild is Rebuild, on three goroutines: a reader pulls the stream and
// parses each message's ack subject, the caller's goroutine folds, and a
// committer commits each ended batch (fsynced if synced) while the fold
// goes on with the next, as the Aggregator does. Batches are committed in
// the order they were ended, one at a time (Fold.EndBatch's invariant).
func rebuild(ctx context.Context, stream jetstream.Stream, store *Store, batchSize int, synced bool) (uint64, error) {
	if batchSize <= 0 {
		batchSize = DefaultBatchSize
	}
	fold := store.Fold()
	last, it, err := startRead(ctx, stream, fold.Meta().Checkpoint, batchSize)
	if it == nil || err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	cur := &iterator{it: it}
	var wg sync.WaitGroup
	defer func() {
		cancel()
		cur.stop() // unblocks the reader's Next
		wg.Wait()
	}()
	reopen := func(from uint64) (jetstream.MessagesContext, error) {
		actx, cancel := apiCtx(ctx)
		defer cancel()
		cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
		if from > 0 {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
		}
		cons, err := stream.OrderedConsumer(actx, cfg)
		if err != nil {
			return nil, fmt.Errorf("ordered consumer from sequence %d: %w", from, err)
		}
		if onOrderedConsumer != nil {
			onOrderedConsumer(cons)
		}
		return cons.Messages(jetstream.PullMaxMessages(batchSize))
	}

	// The reader: chunks of parsed messages, recycled through free.
	chunks := make(chan []Msg, 8)
	free := make(chan []Msg, cap(chunks)+2)
	for range cap(free) {
		free <- make([]Msg, 0, rebuildChunk)
	}
	readErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(chunks)
		readErr <- readStream(ctx, cur, reopen, last, chunks, free)
	}()

	// The committer.
	commits := make(chan *Batch, 1)
	commitErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(commitErr)
		for b := range commits {
			var err error
			if synced {
				err = fold.CommitBatch(b)
			} else {
				err = fold.commitBatchUnsynced(b)
			}
			if err != nil {
				commitErr <- err
				for b := range commits { // let the fold finish sending
					discardBatch(b)
				}
				return
			}
		}
	}()
	n, err := foldChunks(ctx, fold, chunks, free, commits, commitErr, batchSize)
	if err == nil {
		// The reader closed chunks: at the end of the stream, or on an
		// error, sent before.
		err = <-readErr
	}
	if err == nil {
		err = handOff(fold, commits, commitErr)
	}
	close(commits)
	if cerr := <-commitErr; err == nil {
		err = cerr
	}
	return n, err
}

// handOff ends the fold's pending batch, if any, and hands it to the
// committer.
func handOff(fold *Fold, commits chan<- *Batch, commitErr <-chan error) error {
	b, err := fold.EndBatch()
	if b == nil || err != nil {
		return err
	}
	select {
	case commits <- b:
		return nil
	case err := <-commitErr:
		discardBatch(b)
		return err
	}
}

// rebuildStall is how long the reader waits for the next message before
// it takes the ordered consumer as stalled and reads on with a new one,
// from the message after the last it got: for a consumer that stops
// delivering while the stream holds more, as one paused on the server
// does. (The stalls seen in loaded test runs until 2026-12-02 were the
// reader's own: it looked at a chunk after handing it to the fold, found
// it cleared, missed the stream's end and waited for a message past it.)
var rebuildStall = 20 * time.Second // a variable for tests

// onOrderedConsumer, if set (by tests), is called with every ordered
// consumer a rebuild creates.
var onOrderedConsumer func(jetstream.Consumer)

// onChunkSent, if set (by tests), is called by the reader after each chunk
// it handed the fold.
var onChunkSent func()

// rebuildStallsInARow is how many times in a row, without a message, the
// reader restarts its consumer before it gives up.
const rebuildStallsInARow = 3

// iterator is the reader's current stream iterator, which the rebuild
// stops to unblock the reader, and the reader replaces after a stall.
type iterator struct {
	mu      sync.Mutex
	it      jetstream.MessagesContext
	stopped bool
	stalled bool
}

func (i *iterator) get() jetstream.MessagesContext {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.it
}

// stall stops the current iterator, so that Next returns, marking it as
// stalled: the reader then reads on with a new one.
func (i *iterator) stall() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.stalled = true
	i.it.Stop()
}

// takeStall reports whether the current iterator was stopped by stall,
// and clears the mark.
func (i *iterator) takeStall() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	st := i.stalled
	i.stalled = false
	return st
}

func (i *iterator) stop() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.stopped = true
	i.it.Stop()
}

// replace stops the current iterator and makes next current. It returns
// false, next stopped, if the rebuild stopped reading.
func (i *iterator) replace(next jetstream.MessagesContext) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.it.Stop()
	if i.stopped {
		next.Stop()
		return false
	}
	i.it = next
	return true
}

// readStream reads the stream up to sequence last into chunks of parsed
// messages, taking empty chunks from free. After rebuildStall waiting for
// a message it reads on from the next sequence with an iterator from
// reopen.
func readStream(ctx context.Context, cur *iterator, reopen func(from uint64) (jetstream.MessagesContext, error), last uint64, chunks chan<- []Msg, free <-chan []Msg) error {
	var n, next uint64 // next: the sequence after the last message read (0: from the start)
	stalls := 0
	// A watchdog stops the iterator when no message came for rebuildStall
	// while the reader was waiting for one (not for the fold): a timeout
	// on every Next would cost a timer a message.
	var lastMsg atomic.Int64 // unix nanoseconds; 0 while the reader waits for the fold
	lastMsg.Store(time.Now().UnixNano())
	done, exited := make(chan struct{}), make(chan struct{})
	defer func() { close(done); <-exited }()
	stall := rebuildStall
	go func() {
		defer close(exited)
		tick := time.NewTicker(stall / 4)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if t := lastMsg.Load(); t != 0 && time.Since(time.Unix(0, t)) > stall {
					lastMsg.Store(time.Now().UnixNano())
					cur.stall()
				}
			}
		}
	}()
	for {
		var c []Msg
		lastMsg.Store(0)
		select {
		case c = <-free:
		case <-ctx.Done():
			return ctx.Err()
		}
		lastMsg.Store(time.Now().UnixNano())
		c = c[:0]
		end := false // c holds the stream's last message
		for len(c) < cap(c) && !end {
			jm, err := cur.get().Next()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if !cur.takeStall() {
					return fmt.Errorf("read stream after %d messages: %w", n, err)
				}
				if stalls++; stalls > rebuildStallsInARow {
					return fmt.Errorf("read stream after %d messages: no message for %s, %d times in a row, each time with a new consumer",
						n, stall, stalls)
				}
				it, err := reopen(next)
				if err != nil {
					return fmt.Errorf("read stream after %d messages, stalled: %w", n, err)
				}
				if !cur.replace(it) {
					return ctx.Err()
				}
				continue
			}
			msg, ack, err := readMsg(jm)
			if err != nil {
				return err
			}
			if ack.streamSeq < next {
				continue // already read (a restarted consumer never sends one)
			}
			c = append(c, msg)
			n++
			next, stalls = ack.streamSeq+1, 0
			if n%256 == 0 {
				lastMsg.Store(time.Now().UnixNano())
			}
			end = ack.streamSeq >= last
		}
		lastMsg.Store(0) // waiting for the fold is no stall
		select {
		case chunks <- c:
			// c is the fold's now, until it comes back through free: the
			// fold clears it when done with it.
		case <-ctx.Done():
			return ctx.Err()
		}
		if onChunkSent != nil {
			onChunkSent()
		}
		if end {
			return nil
		}
		lastMsg.Store(time.Now().UnixNano())
	}
}

// foldChunks applies the chunks in order, until the reader closes chunks,
// and hands a batch to the committer every batchSize messages. It returns
// the number of messages applied; the last batch is left pending.
func foldChunks(ctx context.Context, fold *Fold, chunks <-chan []Msg, free chan<- []Msg, commits chan<- *Batch, commitErr <-chan error, batchSize int) (uint64, error) {
	var n uint64
	pending := 0
	for c := range chunks {
		for rest := c; len(rest) > 0; {
			k := min(len(rest), batchSize-pending)
			if err := fold.ApplyAll(rest[:k], nil); err != nil {
				return n, err
			}
			n += uint64(k)
			rest = rest[k:]
			if pending += k; pending >= batchSize {
				if err := handOff(fold, commits, commitErr); err != nil {
					return n, err
				}
				pending = 0
			}
		}
		clear(c) // drop the references to the messages' data
		free <- c
		if err := ctx.Err(); err != nil {
			return n, err
		}
	}
	return n, nil
}

// rebuildSerial is Rebuild as it was before it was pipelined: one
// goroutine reads a message, folds it and, every batchSize messages,
// commits with fsync, waiting for each step.
func rebuildSerial(ctx context.Context, stream jetstream.Stream, store *Store, batchSize int) (uint64, error) {
	if batchSize <= 0 {
		batchSize = DefaultBatchSize
	}
	fold := store.Fold()
	last, it, err := startRead(ctx, stream, fold.Meta().Checkpoint, batchSize)
	if it == nil || err != nil {
		return 0, err
	}
	defer it.Stop()
	var n uint64
	var msg Msg
	for pending := 0; ; {
		jm, err := it.Next()
		if err != nil {
			return n, fmt.Errorf("read stream after %d messages: %w", n, err)
		}
		if msg, _, err = readMsg(jm); err != nil {
			return n, err
		}
		if _, err := fold.Apply(&msg); err != nil {
			return n, fmt.Errorf("fold seq %d: %w", msg.Seq, err)
		}
		n++
		pending++
		if pending >= batchSize || msg.Seq >= last {
			if _, err := fold.Commit(); err != nil {
				return n, err
			}
			pending = 0
		}
		if msg.Seq >= last {
			return n, nil
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
	}
}

// RebuildPartitions rebuilds the projections of every partition under
// dataDir (PartitionDir) from its own stream, streams[p] for partition p,
// in parallel: each partition folds the part of the election in its
// provinces (PartElections) into a store of its own, exactly as
// RebuildDir does for one. It returns the messages read per partition.
// With one stream it is RebuildDir of DataDir/projections.
func RebuildPartitions(ctx context.Context, streams []jetstream.Stream, e *tally.Election, dataDir string) ([]uint64, error) {
	return RebuildPartitionsWith(ctx, streams, e, dataDir, RebuildOptions{})
}

// RebuildPartitionsWith is RebuildPartitions with options.
func RebuildPartitionsWith(ctx context.Context, streams []jetstream.Stream, e *tally.Election, dataDir string, opts RebuildOptions) ([]uint64, error) {
	n := len(streams)
	elections, err := PartElections(e, n)
	if err != nil {
		return nil, err
	}
	read := make([]uint64, n)
	err = EachPartition(n, func(p int) error {
		var err error
		read[p], err = RebuildDirWith(ctx, streams[p], elections[p], PartitionDir(dataDir, p, n), opts)
		return err
	})
	return read, err
}
