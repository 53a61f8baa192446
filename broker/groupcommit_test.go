package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/internal/natstest"
	"github.com/tallyvn/tally/tally"
)

// TestGroupCommitStoresEveryMinutesWhereItSays: many concurrent Publish
// calls through a group committer over four partition streams; each call's
// position holds exactly the minutes it sent, every minutes is stored once,
// and a later call mixing stored and new minutes falls back to one by one.
func TestGroupCommitStoresEveryMinutesWhereItSays(t *testing.T) {
	e := provincesElection(t, 12)
	js := natstest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	streams, err := broker.EnsurePartitionStreams(ctx, js, e, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	gc := events.NewGroupCommit(js, 0, 30*time.Second)
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- gc.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-ran; err != nil {
			t.Error(err)
		}
	}()
	pub := events.NewPartitionedPublisher(js, e, 4)
	pub.GroupCommit(gc)

	const versions = 20
	var wg sync.WaitGroup
	errs := make(chan error, len(e.Stations)*versions)
	for s := range e.Stations {
		for v := 1; v <= versions; v++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := tally.Minutes{Election: e.ID, Contest: "QH", Station: e.Stations[s].ID, Version: int64(v), Status: tally.Partial}
				got, err := pub.Publish(ctx, []tally.Minutes{m})
				if err != nil {
					errs <- err
					return
				}
				p := events.StationPartition(e, s, 4)
				if len(got.Positions) != 1 || got.Positions[p] == 0 || got.Seq != got.Positions[p] {
					errs <- fmt.Errorf("%s v%d: published %+v, want one position in partition %d", m.Station, v, got, p)
					return
				}
				stored, err := streams[p].GetMsg(ctx, got.Positions[p])
				if err != nil {
					errs <- err
					return
				}
				if want := events.AppendBinary(nil, &m); !bytes.Equal(stored.Data, want) || stored.Subject != events.Subject(e, s, "QH") {
					errs <- fmt.Errorf("%s v%d: position %d of partition %d holds another message (%s)", m.Station, v, got.Positions[p], p, stored.Subject)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var total uint64
	batches := map[string]int{}
	for p, st := range streams {
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total += info.State.Msgs
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if err != nil {
				t.Fatalf("partition %d message %d: %v", p, seq, err)
			}
			batches[fmt.Sprint(p, m.Header.Get("Nats-Batch-Id"))]++
		}
	}
	if want := uint64(len(e.Stations) * versions); total != want {
		t.Fatalf("the streams hold %d minutes, want %d", total, want)
	}
	t.Logf("%d minutes stored in %d batches or single publishes", total, len(batches))

	// A call holding a stored minutes and new ones, few (published one by
	// one) or many (an atomic batch, which the stream refuses since it
	// holds one of its message ids, so they go one by one): one
	// duplicate, the others stored.
	next := int64(versions + 1)
	for _, fresh := range []int{1, events.MinAtomicBatch + 1} {
		old := tally.Minutes{Election: e.ID, Contest: "QH", Station: e.Stations[0].ID, Version: 1, Status: tally.Partial}
		ms := []tally.Minutes{old}
		for range fresh {
			m := old
			m.Version = next
			next++
			ms = append(ms, m)
		}
		p := events.StationPartition(e, 0, 4)
		before, err := streams[p].Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pub.Publish(ctx, ms)
		if err != nil {
			t.Fatal(err)
		}
		if got.Duplicates != 1 || got.Claimed != 0 || got.Positions[p] != before.State.LastSeq+uint64(fresh) {
			t.Fatalf("%d new minutes: published %+v, want 1 duplicate and position %d", fresh, got, before.State.LastSeq+uint64(fresh))
		}
		stored, err := streams[p].GetMsg(ctx, got.Positions[p])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(stored.Data, events.AppendBinary(nil, &ms[fresh])) {
			t.Fatalf("position %d holds %q, not the last new minutes", got.Positions[p], stored.Data)
		}
	}
	// A call's minutes are stored in its order, whether one by one or in
	// one atomic batch.
	for _, k := range []int{events.MinAtomicBatch - 1, events.MinAtomicBatch + 4} {
		var ms []tally.Minutes
		for range k {
			ms = append(ms, tally.Minutes{Election: e.ID, Contest: "QH", Station: e.Stations[1].ID, Version: next, Status: tally.Partial})
			next++
		}
		got, err := pub.Publish(ctx, ms)
		if err != nil {
			t.Fatal(err)
		}
		p := events.StationPartition(e, 1, 4)
		for i := range ms {
			stored, err := streams[p].GetMsg(ctx, got.Positions[p]-uint64(k-1-i))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(stored.Data, events.AppendBinary(nil, &ms[i])) {
				t.Fatalf("a call of %d minutes: its minutes %d is not at position %d", k, i, got.Positions[p]-uint64(k-1-i))
			}
		}
	}
}

// TestGroupCommitOnAnOldStream: a stream created before group commit (no
// AllowAtomicPublish) refuses batches; the publisher then stores the
// minutes one by one, all of them.
func TestGroupCommitOnAnOldStream(t *testing.T) {
	e := provincesElection(t, 12)
	js := natstest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := events.StreamConfig(e.ID, 1)
	cfg.AllowAtomicPublish = false
	st, err := js.CreateStream(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	gc := events.NewGroupCommit(js, 0, 30*time.Second)
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- gc.Run(runCtx) }()
	defer func() { stop(); <-ran }()
	pub := events.NewPublisher(js, e)
	pub.GroupCommit(gc)
	var ms []tally.Minutes
	for s := range e.Stations {
		ms = append(ms, tally.Minutes{Election: e.ID, Contest: "QH", Station: e.Stations[s].ID, Version: 1, Status: tally.Partial})
	}
	got, err := pub.Publish(ctx, ms)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != 12 || info.State.Msgs != 12 || got.Duplicates != 0 {
		t.Fatalf("published %+v; the stream holds %d minutes, want 12 at seq 12", got, info.State.Msgs)
	}
}
