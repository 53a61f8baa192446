package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/internal/natstest"
	"github.com/tallyvn/tally/tally"
)

// provincesElection has k provinces, one commune and one station each, and
// one National Assembly unit per province.
func provincesElection(t *testing.T, k int) *tally.Election {
	t.Helper()
	var areas, stations, units []string
	for i := range k {
		p := fmt.Sprintf("P%02d", i)
		areas = append(areas, fmt.Sprintf(`{"id":%q,"name":"Tỉnh %d","level":"province"},{"id":"%s-X","name":"Xã","level":"commune","parent":%[1]q}`, p, i, p))
		stations = append(stations, fmt.Sprintf(`{"id":"%s-1","name":"Khu vực 1","area":"%s-X","registered":100}`, p, p))
		units = append(units, fmt.Sprintf(`{"id":"QH-%s","name":"Đơn vị","seats":1,"areas":[%q],"stations":[],"candidates":[{"id":"A-%[1]s","name":"A","born":"1970-01-01"},{"id":"B-%[1]s","name":"B","born":"1970-01-01"}]}`, p, p))
	}
	e, err := tally.Parse([]byte(`{"id":"vn","name":"Bầu cử","date":"2026-03-15","levels":["province","commune"],"areas":[` +
		strings.Join(areas, ",") + `],"stations":[` + strings.Join(stations, ",") + `],"contests":[{"id":"QH","name":"Quốc hội","level":"national","units":[` +
		strings.Join(units, ",") + `]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestPartitionStreamsAreFixedAtCreation: --partitions 4 creates four
// streams, each holding the minutes of its provinces; a start with 4
// again uses them; a start with another N is refused, saying what exists,
// and creates nothing.
func TestPartitionStreamsAreFixedAtCreation(t *testing.T) {
	e := provincesElection(t, 12)
	js := natstest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	streams, err := broker.EnsurePartitionStreams(ctx, js, e, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(streams) != 4 {
		t.Fatalf("%d streams", len(streams))
	}
	want := make([]uint64, 4)
	for s := range e.Stations {
		if _, err := js.Publish(ctx, events.Subject(e, s, "QH"), []byte("{}")); err != nil {
			t.Fatalf("publish for %s: %v", e.Stations[s].ID, err)
		}
		want[events.StationPartition(e, s, 4)]++
	}
	for p, st := range streams {
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Name != events.PartitionStreamName(e.ID, p, 4) || info.State.Msgs != want[p] {
			t.Errorf("partition %d: stream %s holds %d, want %s holding %d", p, info.Config.Name, info.State.Msgs, events.PartitionStreamName(e.ID, p, 4), want[p])
		}
	}
	if _, err := broker.EnsurePartitionStreams(ctx, js, e, 4, 1); err != nil {
		t.Fatalf("a second start with the same N: %v", err)
	}
	for _, n := range []int{1, 2, 8} {
		_, err := broker.EnsurePartitionStreams(ctx, js, e, n, 1)
		if !errors.Is(err, broker.ErrPartitionMismatch) || !strings.Contains(err.Error(), "TALLY_vn_P0") || !strings.Contains(err.Error(), "--partitions 4") {
			t.Fatalf("a start with --partitions %d: %v, want a refusal naming the 4 streams", n, err)
		}
	}
	// The tools that read what serve wrote find the same streams, in
	// partition order, and create none.
	found, err := broker.PartitionStreams(ctx, js, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 4 {
		t.Fatalf("PartitionStreams found %d streams, want 4", len(found))
	}
	for p, st := range found {
		if name := st.CachedInfo().Config.Name; name != events.PartitionStreamName(e.ID, p, 4) {
			t.Errorf("PartitionStreams: partition %d is %s", p, name)
		}
	}
	if _, err := broker.PartitionStreams(ctx, js, "other"); !errors.Is(err, jetstream.ErrStreamNotFound) || !strings.Contains(err.Error(), "TALLY_other") {
		t.Errorf("PartitionStreams of an election without streams: %v, want stream not found naming TALLY_other", err)
	}
	names := js.StreamNames(ctx)
	var got []string
	for name := range names.Name() {
		got = append(got, name)
	}
	if len(got) != 4 {
		t.Fatalf("streams after the refused starts: %v", got)
	}
}

// TestOneStreamRefusesPartitions: a v1 stream (--partitions 1) stays one.
func TestOneStreamRefusesPartitions(t *testing.T) {
	e := provincesElection(t, 3)
	js := natstest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := broker.EnsurePartitionStreams(ctx, js, e, 1, 1); err != nil {
		t.Fatal(err)
	}
	_, err := broker.EnsurePartitionStreams(ctx, js, e, 4, 1)
	if !errors.Is(err, broker.ErrPartitionMismatch) || !strings.Contains(err.Error(), "TALLY_vn (--partitions 1)") {
		t.Fatalf("--partitions 4 over one stream: %v", err)
	}
}

// TestPartitionedPublisherPositions: the gateway's publisher sends each
// minutes to its province's partition and says, for each partition the
// submission touched, the position of its last minutes there; seq is
// their sum. The same submission again is a duplicate in every partition.
func TestPartitionedPublisherPositions(t *testing.T) {
	e := provincesElection(t, 12)
	js := natstest.JetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	streams, err := broker.EnsurePartitionStreams(ctx, js, e, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	var ms []tally.Minutes
	for s := range e.Stations {
		if s%3 == 0 {
			continue // leave some partition stream shorter than another
		}
		ms = append(ms, tally.Minutes{Election: e.ID, Contest: "QH", Station: e.Stations[s].ID, Version: 1, Status: tally.Partial})
	}
	pub := events.NewPartitionedPublisher(js, e, 4)
	got, err := pub.Publish(ctx, ms)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]uint64{}
	var sum uint64
	for p, st := range streams {
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.LastSeq > 0 {
			want[p] = info.State.LastSeq
			sum += info.State.LastSeq
		}
	}
	if len(want) < 2 {
		t.Fatalf("the minutes touched partitions %v: the test would prove little", want)
	}
	if fmt.Sprint(got.Positions) != fmt.Sprint(want) || got.Seq != sum {
		t.Fatalf("published %+v, want positions %v and seq %d", got, want, sum)
	}
	again, err := pub.Publish(ctx, ms)
	if err != nil {
		t.Fatal(err)
	}
	if again.Duplicates != len(ms) || fmt.Sprint(again.Positions) != fmt.Sprint(want) {
		t.Fatalf("published again %+v, want %d duplicates at %v", again, len(ms), want)
	}
}

// TestPartitionRolesOnTheirStreams: with Roles.Partitions 4 the aggregator
// identity can create the four streams and a consumer on each, and the
// gateway identity can publish to them and check a duplicate, on a server
// that admits only those identities.
func TestPartitionRolesOnTheirStreams(t *testing.T) {
	e := provincesElection(t, 12)
	gw, _ := broker.NewIdentity()
	agg, _ := broker.NewIdentity()
	emb, err := broker.StartEmbedded(broker.EmbeddedOptions{Dir: t.TempDir(),
		Users: broker.Users(e, broker.Roles{Gateway: gw.Public, Aggregator: agg.Public, Partitions: 4})})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	aggConn, err := emb.Connect("aggregator", agg.Option())
	if err != nil {
		t.Fatal(err)
	}
	defer aggConn.Close()
	aggJS, _ := jetstream.New(aggConn)
	streams, err := broker.EnsurePartitionStreams(ctx, aggJS, e, 4, 1)
	if err != nil {
		t.Fatalf("the aggregator cannot create the partition streams: %v", err)
	}
	for p, st := range streams {
		if _, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "tally-fold-x-" + fmt.Sprint(p), AckPolicy: jetstream.AckAllPolicy}); err != nil {
			t.Fatalf("the aggregator cannot create a consumer on partition %d: %v", p, err)
		}
	}
	gwConn, err := emb.Connect("gateway", gw.Option())
	if err != nil {
		t.Fatal(err)
	}
	defer gwConn.Close()
	gwJS, _ := jetstream.New(gwConn)
	var ms []tally.Minutes
	for s := range e.Stations {
		ms = append(ms, tally.Minutes{Election: e.ID, Contest: "QH", Station: e.Stations[s].ID, Version: 1, Status: tally.Partial})
	}
	pub := events.NewPartitionedPublisher(gwJS, e, 4)
	for range 2 { // the second time, every minutes is a duplicate to check
		if _, err := pub.Publish(ctx, ms); err != nil {
			t.Fatalf("the gateway cannot publish to the partitions: %v", err)
		}
	}
}
