package projections_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/audit"
	"github.com/tallyvn/tally/bench/workload"
	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

const partitionChildEnv = "TALLY_PARTITION_CHILD"

// foldPartitions opens one store per partition under dir and runs one
// aggregator per partition, each with its own durable consumer, in
// parallel, until ctx ends. It returns the stores and a function waiting
// for the aggregators' errors.
func foldPartitions(ctx context.Context, e *tally.Election, streams []jetstream.Stream, dir string) ([]*projections.Store, func() error, error) {
	stores := make([]*projections.Store, len(streams))
	for p := range streams {
		st, err := projections.Open(filepath.Join(dir, "p"+strconv.Itoa(p)), e)
		if err != nil {
			return nil, nil, err
		}
		stores[p] = st
	}
	errs := make([]error, len(streams))
	var wg sync.WaitGroup
	for p := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			agg := projections.NewAggregator(stores[p], streams[p], projections.AggregatorConfig{Durable: "tally-fold-test-" + strconv.Itoa(p), BatchSize: 50})
			errs[p] = agg.Run(ctx)
		}()
	}
	return stores, func() error {
		wg.Wait()
		for p, err := range errs {
			if err != nil {
				return fmt.Errorf("partition %d: %w", p, err)
			}
		}
		return nil
	}, nil
}

// TestPartitionChild is the process TestPartitionsSurviveKill kills: it
// folds every partition until it is killed.
func TestPartitionChild(t *testing.T) {
	if os.Getenv(partitionChildEnv) == "" {
		t.Skip("run by TestPartitionsSurviveKill")
	}
	data, err := os.ReadFile(os.Getenv(partitionChildEnv + "_ELECTION"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := tally.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(os.Getenv(partitionChildEnv + "_N"))
	nc, err := broker.Dial(os.Getenv(partitionChildEnv+"_URL"), "child")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	streams, err := broker.EnsurePartitionStreams(ctx, js, e, n, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, wait, err := foldPartitions(ctx, e, streams, os.Getenv(partitionChildEnv+"_DIR"))
	if err != nil {
		t.Fatal(err)
	}
	t.Fatal(wait()) // only a kill ends it
}

// TestPartitionsSurviveKill: an election of several provinces, its minutes
// in 4 partition streams of a real embedded server, folded by a process
// running one aggregator and one store per partition in parallel, killed
// with SIGKILL mid-fold; a restart over the same stores catches up, and
// each partition's store equals the audit fold of its own stream, every
// message counted once (the exactly-once INVARIANT, per partition).
func TestPartitionsSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	const n = 4
	f, err := workload.National(workload.NationalConfig{Seed: 7, Scale: 0.02, Provinces: 8, TwoTier: true})
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.Parse()
	if err != nil {
		t.Fatal(err)
	}
	if err := events.CheckPartitionable(e); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	electionPath := filepath.Join(tmp, "election.json")
	out, err := os.Create(electionPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.WriteJSON(out); err != nil {
		t.Fatal(err)
	}
	out.Close()

	emb, err := broker.StartEmbedded(broker.EmbeddedOptions{Dir: filepath.Join(tmp, "nats"), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	nc, err := emb.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	streams, err := broker.EnsurePartitionStreams(ctx, js, e, n, 1)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*nats.Msg
	perPartition := make([]int, n)
	err = workload.Night(e, workload.NightConfig{Seed: 7}, func(sub *workload.Submission) error {
		msgs = append(msgs, &nats.Msg{Subject: events.Subject(e, sub.Station, sub.Minutes.Contest), Data: events.AppendBinary(nil, &sub.Minutes)})
		perPartition[events.StationPartition(e, sub.Station, n)]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, k := range perPartition {
		if k == 0 {
			t.Fatalf("partition %d gets no minutes (%v): the test would prove little", p, perPartition)
		}
	}
	publish := func(ms []*nats.Msg) {
		t.Helper()
		var acks []jetstream.PubAckFuture
		for _, m := range ms {
			a, err := js.PublishMsgAsync(m)
			if err != nil {
				t.Fatal(err)
			}
			acks = append(acks, a)
		}
		for _, a := range acks {
			select {
			case <-a.Ok():
			case err := <-a.Err():
				t.Fatal(err)
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
		}
	}
	half := len(msgs) / 2
	publish(msgs[:half])

	storeDir := filepath.Join(tmp, "projections")
	child := exec.Command(os.Args[0], "-test.run=^TestPartitionChild$", "-test.count=1")
	child.Env = append(os.Environ(), partitionChildEnv+"=1", partitionChildEnv+"_ELECTION="+electionPath,
		partitionChildEnv+"_N="+strconv.Itoa(n), partitionChildEnv+"_URL="+emb.ClientURL(), partitionChildEnv+"_DIR="+storeDir)
	child.Stdout, child.Stderr = os.Stderr, os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once it has committed (and acknowledged) something in every
	// partition, while the second half is still arriving.
	done := make(chan struct{})
	go func() { defer close(done); publish(msgs[half:]) }()
	for {
		acked := 0
		for p, st := range streams {
			ci, err := st.Consumer(ctx, "tally-fold-test-"+strconv.Itoa(p))
			if err == nil {
				if info, err := ci.Info(ctx); err == nil && info.AckFloor.Stream > 0 {
					acked++
				}
			}
		}
		if acked == n {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the child never committed in every partition")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	<-done

	// Where the killed process stopped, partition by partition.
	atKill := make([]uint64, n)
	for p := range n {
		st, err := projections.Open(filepath.Join(storeDir, "p"+strconv.Itoa(p)), e)
		if err != nil {
			t.Fatal(err)
		}
		m, err := st.Meta()
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		atKill[p] = m.Checkpoint
	}

	runCtx, stop := context.WithCancel(ctx)
	stores, wait, err := foldPartitions(runCtx, e, streams, storeDir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, s := range stores {
			s.Close()
		}
	}()
	last := make([]uint64, n)
	for p, st := range streams {
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		last[p] = info.State.LastSeq
		if info.State.Msgs != uint64(perPartition[p]) {
			t.Fatalf("partition %d stream holds %d, %d published", p, info.State.Msgs, perPartition[p])
		}
	}
	// Bounded by progress: the checkpoints only climb while the streams
	// are not exhausted; ctx bounds the whole test.
	for p := range stores {
		for {
			m, err := stores[p].Meta()
			if err != nil {
				t.Fatal(err)
			}
			if m.Checkpoint >= last[p] {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("partition %d: checkpoint %d of %d", p, m.Checkpoint, last[p])
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	stop()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	applied := 0
	for p := range stores {
		rep, err := audit.Verify(ctx, e, streams[p], stores[p])
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK || len(rep.Differences) > 0 || rep.Compared.Messages != perPartition[p] {
			t.Fatalf("partition %d: audit compared %+v, %d differences: %v", p, rep.Compared, len(rep.Differences), rep.Differences[:min(10, len(rep.Differences))])
		}
		m, _ := stores[p].Meta()
		applied += int(m.Applied)
	}
	if applied == 0 {
		t.Fatal("nothing applied")
	}
	t.Logf("%d minutes over %d partitions %v, checkpoints at the kill %v, %d applied", len(msgs), n, perPartition, atKill, applied)
}
