package broker_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/internal/natstest"
)

// lockedBuffer is a log sink safe for the logger's concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWaitPartitionStreams: streams that exist are used as they are (a
// replication factor other than the one asked is said, not changed), and
// a refusal that waiting cannot cure comes at once, not after the wait.
func TestWaitPartitionStreams(t *testing.T) {
	e := provincesElection(t, 6)
	js := natstest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := broker.WaitPartitionStreams(ctx, js, e, 2, 1, 0, nil); err != nil {
		t.Fatal(err)
	}
	var log lockedBuffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	sts, err := broker.WaitPartitionStreams(ctx, js, e, 2, 3, broker.StreamWait, logger)
	if err != nil || len(sts) != 2 {
		t.Fatalf("existing streams, 3 replicas asked: %d streams, %v", len(sts), err)
	}
	if got := sts[0].CachedInfo().Config.Replicas; got > 1 {
		t.Errorf("the existing stream has %d replicas: it was changed", got)
	}
	if !strings.Contains(log.String(), "another replication factor") {
		t.Errorf("no warning that the stream keeps its replication factor; log:\n%s", log.String())
	}
	// The whole StreamWait would outlast ctx: a refusal must not wait.
	_, err = broker.WaitPartitionStreams(ctx, js, e, 3, 1, broker.StreamWait, logger)
	if !errors.Is(err, broker.ErrPartitionMismatch) {
		t.Fatalf("streams split in 2, 3 asked: %v, want ErrPartitionMismatch", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the refusal waited out the context")
	}
}
