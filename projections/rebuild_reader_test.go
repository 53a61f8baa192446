package projections

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/internal/natstest"
)

// TestReadStreamEndsAfterTheFoldClearedTheLastChunk plays the fold at its
// quickest: each chunk is applied and cleared before the reader looks
// again (onChunkSent waits for that). The reader must still end at the
// stream's last message, knowing it without the chunk, and not wait for a
// message past the end (it did, until the watchdog gave up: a rebuild
// failed so on loaded machines, now and then).
func TestReadStreamEndsAfterTheFoldClearedTheLastChunk(t *testing.T) {
	js := natstest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R", Subjects: []string{"r.>"}})
	if err != nil {
		t.Fatal(err)
	}
	const msgs = rebuildChunk + 3 // a full chunk, then the last, short one
	for i := range msgs {
		if _, err := js.Publish(ctx, "r.x", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}

	// The stall watchdog turns the old reader's endless wait into an
	// error, quickly.
	oldStall := rebuildStall
	rebuildStall = 200 * time.Millisecond
	cleared := make(chan struct{})
	onChunkSent = func() { <-cleared }
	defer func() { rebuildStall, onChunkSent = oldStall, nil }()

	last, it, err := startRead(ctx, st, 0, 100)
	if err != nil || it == nil {
		t.Fatalf("startRead: %v (iterator %v)", err, it)
	}
	cur := &iterator{it: it}
	defer cur.stop()
	reopen := func(from uint64) (jetstream.MessagesContext, error) {
		cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from})
		if err != nil {
			return nil, err
		}
		return cons.Messages()
	}
	chunks := make(chan []Msg, 1)
	free := make(chan []Msg, 2)
	for range cap(free) {
		free <- make([]Msg, 0, rebuildChunk)
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(chunks)
		readErr <- readStream(ctx, cur, reopen, last, chunks, free)
	}()
	var got uint64
	for c := range chunks {
		for i := range c {
			if got++; c[i].Seq != got {
				t.Fatalf("message %d has sequence %d", got, c[i].Seq)
			}
		}
		clear(c)
		cleared <- struct{}{}
		free <- c
	}
	if err := <-readErr; err != nil {
		t.Fatalf("reader: %v", err)
	}
	if got != msgs || last != msgs {
		t.Fatalf("read %d messages up to %d, published %d", got, last, msgs)
	}
}
