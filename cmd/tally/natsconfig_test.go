package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
)

// userBlock returns the entry of the authorization block for nkey, from
// its "nkey:" line to the end of its permissions.
func userBlock(t *testing.T, conf, nkey string) string {
	t.Helper()
	i := strings.Index(conf, "nkey: "+nkey)
	if i < 0 {
		t.Fatalf("the block has no user %s:\n%s", nkey, conf)
	}
	rest := conf[i:]
	if j := strings.Index(rest, "\n    }"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// TestNATSConfigUnsealed: `tally nats-config` writes the authorization
// block for an election without seals too. A real nats-server run with it
// (built from the module tally depends on) refuses anonymous clients,
// admits tally serve with its keys, lets an identity bound to one station
// publish that station's minutes (CONTRACT §7) and nothing else, with no
// JetStream API, and lets an identity bound to no station publish any
// station's minutes.
func TestNATSConfigUnsealed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	election := filepath.Join("testdata", "election.json")
	seedDir := filepath.Join(dir, "tally-keys")

	// Without --nats-users: tally's identities only, and it says so.
	r := runTally(t, 30*time.Second, nil, "nats-config", "--election", election, "--seed-dir", seedDir)
	if r.code != 0 || !strings.Contains(r.stdout, "authorization {") || !strings.Contains(r.stderr, "no station can publish over NATS") {
		t.Fatalf("nats-config on an unsealed election without --nats-users: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if n := strings.Count(r.stdout, "nkey: "); n != 2 {
		t.Errorf("without --nats-users the block has %d users, want tally's 2:\n%s", n, r.stdout)
	}

	_, station, err := broker.NewSeed()
	if err != nil {
		t.Fatal(err)
	}
	_, room, err := broker.NewSeed()
	if err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(dir, "nats-users")
	if err := os.WriteFile(usersFile, []byte("# Bồ Đề's polling group\n"+station.Public+" LB-BD-01\n# the results room\n"+room.Public+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := runTally(t, 30*time.Second, nil, "nats-config", "--election", election, "--seed-dir", seedDir, "--nats-users", filepath.Join(dir, "none"))
	if bad.code != 1 || !strings.Contains(bad.stderr, "--nats-users") {
		t.Errorf("nats-config with a missing --nats-users file: exit %d, stderr %q", bad.code, bad.stderr)
	}
	r = runTally(t, 30*time.Second, nil, "nats-config", "--election", election, "--seed-dir", seedDir, "--nats-users", usersFile)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("nats-config --nats-users: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	conf := r.stdout
	// The station's identity: its own §7 subject and inbox, nothing else.
	sb := userBlock(t, conf, station.Public)
	if !strings.Contains(sb, `publish: { allow: ["tally.lb-2021.minutes.HN.LB-BD-01.*"] }`) || !strings.Contains(sb, `subscribe: { allow: ["_INBOX.LB-BD-01.>"] }`) || strings.Contains(sb, "$JS") {
		t.Errorf("the station's permissions:\n%s", sb)
	}
	if rb := userBlock(t, conf, room.Public); strings.Contains(rb, "$JS") || !strings.Contains(rb, `"tally.lb-2021.minutes.>"`) {
		t.Errorf("the room's permissions:\n%s", rb)
	}

	// --partitions: tally's identities get every partition's stream, as
	// tally serve --partitions uses them.
	if r := runInProcess("nats-config", "--election", election, "--seed-dir", seedDir, "--partitions", "0"); r.code != exitUsage || !strings.Contains(r.stderr, "--partitions 0") {
		t.Errorf("--partitions 0: exit %d, stderr %q", r.code, r.stderr)
	}
	r2 := runInProcess("nats-config", "--election", election, "--seed-dir", seedDir, "--nats-users", usersFile, "--partitions", "2")
	for p := range 2 {
		if name := events.PartitionStreamName("lb-2021", p, 2); r2.code != 0 || !strings.Contains(r2.stdout, "$JS.API.STREAM.INFO."+name) {
			t.Errorf("--partitions 2: exit %d, no rights on stream %s:\n%s%s", r2.code, name, r2.stdout, r2.stderr)
		}
	}

	// A real nats-server with that block.
	bin := buildNATSServer(t, dir)
	addr := freeAddr(t)
	confFile := filepath.Join(dir, "nats.conf")
	text := fmt.Sprintf("listen: %s\njetstream {\n  store_dir: %q\n  sync_interval: always\n}\n%s", addr, filepath.Join(dir, "js"), conf)
	if err := os.WriteFile(confFile, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	ns := exec.Command(bin, "-c", confFile)
	var nsLog syncBuffer
	ns.Stdout, ns.Stderr = &nsLog, &nsLog
	if err := ns.Start(); err != nil {
		t.Fatal(err)
	}
	nsDone := make(chan struct{})
	go func() { ns.Wait(); close(nsDone) }()
	t.Cleanup(func() { ns.Process.Kill(); <-nsDone })
	waitFor(t, "nats-server ready", func() (bool, any) {
		select {
		case <-nsDone:
			t.Fatalf("nats-server exited:\n%s", nsLog.String())
		default:
		}
		return strings.Contains(nsLog.String(), "Server is ready"), len(nsLog.String())
	})
	url := "nats://" + addr

	if nc, err := nats.Connect(url, nats.MaxReconnects(0), nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Fatal("the nats-server admitted an anonymous client")
	} else if !strings.Contains(err.Error(), "Authorization Violation") {
		t.Errorf("anonymous client: %v, want an authorization violation", err)
	}

	srv := startServe(t, election, filepath.Join(dir, "data"), "--nats", url, "--nats-seed-dir", seedDir)
	client := &http.Client{Timeout: 10 * time.Second}

	raw, err := os.ReadFile(filepath.Join("testdata", "minutes_valid.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ms []json.RawMessage
	if err := json.Unmarshal(raw, &ms); err != nil {
		t.Fatal(err)
	}
	dial := func(who broker.Identity, name string, opts ...nats.Option) (*nats.Conn, <-chan error) {
		errs := make(chan error, 8)
		opts = append(opts, who.Option(), nats.MaxReconnects(0), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
		nc, err := broker.Dial(url, name, opts...)
		if err != nil {
			t.Fatalf("%s refused: %v", name, err)
		}
		t.Cleanup(nc.Close)
		return nc, errs
	}
	violation := func(errs <-chan error, what string) {
		t.Helper()
		// The server reports a violation on the connection; nothing else
		// to wait on than its arrival.
		select {
		case err := <-errs:
			if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				t.Errorf("%s: %v, want a permissions violation", what, err)
			}
		case <-time.After(stallWindow):
			t.Errorf("%s: no permissions violation reported", what)
		}
	}
	ctx := context.Background()

	// The station publishes its own minutes (ms[0] is LB-BD-01's QH).
	nc, errs := dial(station, "LB-BD-01", nats.CustomInboxPrefix(broker.StationInbox("LB-BD-01")))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	ack, err := js.Publish(pctx, "tally.lb-2021.minutes.HN.LB-BD-01.QH", ms[0])
	cancel()
	if err != nil || ack.Sequence != 1 {
		t.Fatalf("the station's own minutes: %v %+v", err, ack)
	}
	// Another station's subject (ms[1] is LB-GT-01's): refused.
	if err := nc.Publish("tally.lb-2021.minutes.HN.LB-GT-01.QH", ms[1]); err != nil {
		t.Fatal(err)
	}
	violation(errs, "publishing another station's minutes")
	// The JetStream API: refused.
	if _, err := nc.Request("$JS.API.STREAM.PURGE.TALLY_lb-2021", nil, time.Second); err == nil {
		t.Error("the station purged the stream")
	}
	violation(errs, "purging the stream")

	// The room, bound to no station, publishes another station's minutes.
	rc, _ := dial(room, "results-room")
	rjs, err := jetstream.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	ack, err = rjs.Publish(pctx, "tally.lb-2021.minutes.HN.LB-GT-01.QH", ms[1])
	cancel()
	if err != nil || ack.Sequence != 2 {
		t.Fatalf("the room's minutes: %v %+v", err, ack)
	}

	st := waitCaughtUp(t, client, srv.url)
	if st.StreamSeq != 2 || st.Applied != 2 || st.Rejected != 0 {
		t.Errorf("status %+v; want the two minutes published, both applied", st)
	}
	if code := srv.stop(t); code != 0 {
		t.Errorf("tally serve exited %d; stderr:\n%s", code, tail(srv.stderr.String(), 20))
	}
}
