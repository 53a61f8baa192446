package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

type station struct {
	id   string
	seed []byte
	pub  string
}

func newStation(t *testing.T, id string) station {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	return station{id: id, seed: seed, pub: pub}
}

// sealedElection has two sealed stations and one without a seal.
func sealedElection(t *testing.T, a, b station) *tally.Election {
	t.Helper()
	file := map[string]any{
		"id": "hn-2021", "name": "Bầu cử", "date": "2021-05-23",
		"areas": []map[string]any{
			{"id": "HN", "name": "Hà Nội", "level": "province"},
			{"id": "LB", "name": "Long Biên", "level": "district", "parent": "HN"},
			{"id": "LB-NT", "name": "Ngọc Thụy", "level": "ward", "parent": "LB"},
		},
		"stations": []map[string]any{
			{"id": a.id, "name": "Khu vực 1", "ward": "LB-NT", "registered": 1000, "seal": a.pub},
			{"id": b.id, "name": "Khu vực 2", "ward": "LB-NT", "registered": 1000, "seal": b.pub},
			{"id": "LB-NT-03", "name": "Khu vực 3", "ward": "LB-NT", "registered": 1000},
		},
		"contests": []map[string]any{{"id": "QH", "name": "Quốc hội", "level": "national", "units": []map[string]any{{
			"id": "U", "name": "Đơn vị", "seats": 1, "areas": []string{"LB"}, "stations": []string{},
			"candidates": []map[string]any{{"id": "A", "name": "A", "born": "1970-01-01"}, {"id": "B", "name": "B", "born": "1971-01-01"}},
		}}}},
	}
	data, _ := json.Marshal(file)
	e, err := tally.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestStationsMaySpeakOnlyForThemselves starts the embedded server with an
// election's users and checks, over real TCP connections: a station
// publishes its own minutes (acknowledged by JetStream); publishing on
// another station's subject, subscribing to another station's inbox, an
// unknown key and an anonymous connection are all refused by the server;
// the gateway and the aggregator can do their work.
func TestStationsMaySpeakOnlyForThemselves(t *testing.T) {
	a, b := newStation(t, "LB-NT-01"), newStation(t, "LB-NT-02")
	e := sealedElection(t, a, b)
	gw, err := broker.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	agg, _ := broker.NewIdentity()
	emb, err := broker.StartEmbedded(broker.EmbeddedOptions{Dir: t.TempDir(), Listen: "127.0.0.1:0",
		Users: broker.Users(e, broker.Roles{Gateway: gw.Public, Aggregator: agg.Public})})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	url := emb.ClientURL()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// The aggregator creates the stream and a consumer.
	aggConn, err := broker.Dial(url, "aggregator", agg.Option())
	if err != nil {
		t.Fatal(err)
	}
	defer aggConn.Close()
	aggJS, _ := jetstream.New(aggConn)
	st, err := broker.EnsureStream(ctx, aggJS, events.StreamConfig(e.ID, 1))
	if err != nil {
		t.Fatalf("aggregator cannot create the stream: %v", err)
	}

	// Station A publishes its own minutes.
	stationConn := func(s station) *nats.Conn {
		t.Helper()
		id, err := broker.IdentityFromSeed(s.seed)
		if err != nil {
			t.Fatal(err)
		}
		nc, err := broker.Dial(url, s.id, id.Option(), nats.CustomInboxPrefix(broker.StationInbox(s.id)))
		if err != nil {
			t.Fatalf("station %s cannot connect: %v", s.id, err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	ncA := stationConn(a)
	jsA, _ := jetstream.New(ncA)
	m := tally.Minutes{Election: e.ID, Contest: "QH", Station: a.id, Version: 1, Status: tally.Partial,
		Counts: tally.Counts{Registered: 1000, Voted: 10, Issued: 10, Received: 10, Valid: 10}, Present: tally.HasAllCounts}
	if _, err := jsA.Publish(ctx, events.Subject(e, 0, "QH"), events.AppendJSON(nil, &m)); err != nil {
		t.Fatalf("station %s cannot publish its own minutes: %v", a.id, err)
	}

	// Station A on station B's subject: refused by the server.
	errs := make(chan error, 4)
	ncA.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err })
	short, stop := context.WithTimeout(ctx, 2*time.Second)
	_, err = jsA.Publish(short, events.Subject(e, 1, "QH"), events.AppendJSON(nil, &m))
	stop()
	if err == nil {
		t.Fatal("station A published on station B's subject")
	}
	select {
	case perr := <-errs:
		if !strings.Contains(strings.ToLower(perr.Error()), "permissions violation") {
			t.Fatalf("async error %v, want a permissions violation", perr)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no permissions violation reported for the publish on B's subject")
	}
	// Station A listening to B's replies: refused.
	if _, err := ncA.SubscribeSync(broker.StationInbox(b.id) + ".x"); err == nil {
		ncA.Flush()
		select {
		case perr := <-errs:
			if !strings.Contains(strings.ToLower(perr.Error()), "permissions violation") {
				t.Fatalf("async error %v, want a permissions violation", perr)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("station A subscribed to station B's inbox")
		}
	}

	// Anonymous and unknown keys are refused at connect.
	if nc, err := nats.Connect(url, nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("anonymous connection accepted")
	} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("anonymous connection: %v, want an authorization error", err)
	}
	stranger, _ := broker.NewIdentity()
	if nc, err := broker.Dial(url, "stranger", stranger.Option(), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("unknown key accepted")
	}

	// The gateway publishes for any station and reads the stream.
	gwConn, err := broker.Dial(url, "gateway", gw.Option())
	if err != nil {
		t.Fatal(err)
	}
	defer gwConn.Close()
	gwJS, _ := jetstream.New(gwConn)
	m.Station, m.Version = "LB-NT-03", 1
	if _, err := gwJS.Publish(ctx, events.Subject(e, 2, "QH"), events.AppendJSON(nil, &m)); err != nil {
		t.Fatalf("gateway cannot publish: %v", err)
	}
	gst, err := gwJS.Stream(ctx, events.StreamName(e.ID))
	if err != nil {
		t.Fatalf("gateway cannot read the stream: %v", err)
	}
	if info, _ := gst.Info(ctx); info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages, want 2 (station A's own and the gateway's)", info.State.Msgs)
	}

	// The aggregator consumes and acknowledges.
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "tally-fold", AckPolicy: jetstream.AckAllPolicy})
	if err != nil {
		t.Fatalf("aggregator cannot create its consumer: %v", err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for msg := range batch.Messages() {
		n++
		if err := msg.DoubleAck(ctx); err != nil {
			t.Fatalf("aggregator cannot ack: %v", err)
		}
	}
	if n != 2 {
		t.Fatalf("aggregator fetched %d messages, want 2", n)
	}
}

func TestConfigSnippetNamesEveryStation(t *testing.T) {
	a, b := newStation(t, "LB-NT-01"), newStation(t, "LB-NT-02")
	e := sealedElection(t, a, b)
	out := broker.ConfigSnippet(e, broker.Users(e, broker.Roles{Gateway: "UGW", Aggregator: "UAGG"}))
	for _, want := range []string{"authorization {", a.pub, b.pub, `"tally.hn-2021.minutes.HN.LB-NT-01.*"`, `"_INBOX.LB-NT-02.>"`, "sync_interval: always"} {
		if !strings.Contains(out, want) {
			t.Fatalf("config lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "LB-NT-03") {
		t.Fatalf("a station without a seal got a NATS identity:\n%s", out)
	}
}

// TestParseAuthorized: a --nats-users file lists nkey public keys, each
// optionally bound to one station; every bad line is named.
func TestParseAuthorized(t *testing.T) {
	a, b := newStation(t, "LB-NT-01"), newStation(t, "LB-NT-02")
	e := sealedElection(t, a, b)
	k1, _ := broker.NewIdentity()
	k2, _ := broker.NewIdentity()
	got, err := broker.ParseAuthorized(e, []byte("# operators\n"+k1.Public+"\n\n  "+k2.Public+" LB-NT-03  \n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []broker.Authorized{{Key: k1.Public}, {Key: k2.Public, Station: "LB-NT-03"}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, tc := range []struct{ name, file, want string }{
		{"not a key", "hello\n", "line 1: \"hello\" is not an nkey user public key"},
		{"a seed", "SUAM\n", "not an nkey user public key"},
		{"unknown station", k1.Public + " XX-1\n", `line 1: station "XX-1" is not in election`},
		{"too many words", k1.Public + " LB-NT-03 extra\n", "want KEY [STATION]"},
		{"a key twice", k1.Public + "\n" + k1.Public + "\n", "line 2: key " + k1.Public + " is already on line 1"},
		{"a station's seal", a.pub + "\n", `is the seal of station "LB-NT-01"`},
		{"empty", "# nothing\n", "no key"},
	} {
		if _, err := broker.ParseAuthorized(e, []byte(tc.file)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
