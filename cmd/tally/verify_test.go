package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/audit"
	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

// verifyJSON runs tally verify --json and decodes its report.
func verifyJSON(t *testing.T, electionFile, dataDir string) (int, audit.Report) {
	t.Helper()
	res := runTally(t, 60*time.Second, nil, "verify", "--election", electionFile, "--data", dataDir, "--json")
	var rep audit.Report
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("verify --json: exit %d, %v in stdout %q, stderr %q", res.code, err, res.stdout, res.stderr)
	}
	return res.code, rep
}

// tamperAggregate rewrites the stored aggregate of contest in area (the
// projections' own varint encoding, see projections/keys.go) with
// registered raised by delta: a valid record with a different count.
func tamperAggregate(t *testing.T, dataDir, contest, area string, delta int64) {
	t.Helper()
	db, err := pebble.Open(filepath.Join(dataDir, "projections"), &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key := []byte("a/" + contest + "\x00" + area)
	v, closer, err := db.Get(key)
	if err != nil {
		t.Fatalf("aggregate %q: %v", key, err)
	}
	b := append([]byte(nil), v...)
	closer.Close()
	var fields [8]int64 // reporting, final, registered, voted, issued, received, valid, invalid
	for i := range fields {
		x, n := binary.Varint(b)
		if n <= 0 {
			t.Fatalf("aggregate %q does not decode", key)
		}
		fields[i], b = x, b[n:]
	}
	fields[2] += delta
	var out []byte
	for _, x := range fields {
		out = binary.AppendVarint(out, x)
	}
	out = append(out, b...) // the vote vector, unchanged
	if err := db.Set(key, out, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// TestVerify runs a real tally serve, submits minutes (applied, stale,
// a conflict), stops it and audits the data directory: everything matches.
// Then one area aggregate is rewritten in Pebble, and verify names it.
func TestVerify(t *testing.T) {
	t.Parallel()
	election := filepath.Join("testdata", "election.json")
	dir := t.TempDir()
	client := &http.Client{Timeout: 10 * time.Second}

	t.Run("usage", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			code int
			out  string
		}{
			{[]string{"verify"}, 2, "--election"},
			{[]string{"verify", "--election", election}, 2, "--data"},
			{[]string{"verify", "--election", election, "--data", dir, "x"}, 2, "unexpected"},
			{[]string{"verify", "--election", election, "--data", dir, "--nats-seed-dir", dir}, 2, "--nats"},
			{[]string{"verify", "--election", election, "--data", filepath.Join(dir, "none")}, 1, "no projections"},
		} {
			if r := runTally(t, 30*time.Second, nil, tc.args...); r.code != tc.code || !strings.Contains(r.stderr, tc.out) {
				t.Errorf("tally %q: exit %d, stderr %q; want %d naming %q", tc.args, r.code, r.stderr, tc.code, tc.out)
			}
		}
		r := runTally(t, 30*time.Second, nil, "verify", "--help")
		if r.code != 0 || !strings.Contains(r.stdout, "Usage: tally verify") || !strings.Contains(r.stdout, "checkpoint") {
			t.Errorf("verify --help: exit %d, %q", r.code, r.stdout)
		}
	})

	srv := startServe(t, election, dir)
	if r := runTally(t, 30*time.Second, nil, "submit", "--server", srv.url, filepath.Join("testdata", "minutes_valid.json")); r.code != 0 {
		t.Fatalf("submit: %d %s", r.code, r.stderr)
	}
	post := func(body string, want int) {
		t.Helper()
		code, _, resp, err := postMinutes(client, srv.url, []byte(body))
		if err != nil || code != want {
			t.Fatalf("POST %s: %d %s %v; want %d", body, code, resp, err, want)
		}
	}
	v2 := `{"election":"lb-2021","contest":"QH","station":"LB-GT-01","version":2,"status":"final","registered":1400,"voted":1300,"issued":1300,"received":1290,"valid":1280,"invalid":10,"votes":{"QH-HN-03-1":700,"QH-HN-03-2":650,"QH-HN-03-3":400}}`
	post(v2, 202)
	post(strings.Replace(v2, `"version":2`, `"version":1`, 1), 202)                       // stale
	post(strings.Replace(v2, `"final"`, `"final","reason":"bản khác"`, 1), 202)           // conflict
	post(strings.Replace(v2, `"LB-GT-01","version":2`, `"LB-GT-02","version":1`, 1), 202) // another station
	st := waitCaughtUp(t, client, srv.url)

	// While the server runs, the store is locked: verify says so.
	if r := runTally(t, 30*time.Second, nil, "verify", "--election", election, "--data", dir); r.code != 1 || !strings.Contains(r.stderr, "stop tally serve") {
		t.Errorf("verify beside a running server: exit %d, stderr %q; want 1 telling to stop tally serve", r.code, r.stderr)
	}
	if code := srv.stop(t); code != 0 {
		t.Fatalf("serve exited %d", code)
	}

	r := runTally(t, 60*time.Second, nil, "verify", "--election", election, "--data", dir)
	t.Logf("verify on a clean store:\n%s", r.stdout)
	if r.code != 0 || !strings.Contains(r.stdout, "OK: the projections match the stream") {
		t.Fatalf("verify: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// Areas compared: those holding stations of each contest (7).
	code, rep := verifyJSON(t, election, dir)
	if code != 0 || !rep.OK || rep.EventsRead != st.StreamSeq || rep.Checkpoint != st.AppliedSeq || rep.Beyond != 0 ||
		rep.Outcomes != (audit.Counts{Applied: 5, Stale: 1, Rejected: 1}) || len(rep.Differences) != 0 ||
		rep.Compared.Areas != 7 || rep.Compared.Units != 2 || rep.Compared.Messages != int(st.StreamSeq) {
		t.Fatalf("verify --json: exit %d, report %+v; status %+v", code, rep, st)
	}

	// Minutes stored while no server folds: the stream is ahead of the
	// projections; verify audits up to their checkpoint and says so.
	emb, err := broker.StartEmbedded(broker.EmbeddedOptions{Dir: dir, Listen: "none"})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := emb.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	e, _ := loadElection(election)
	gt2, _ := e.StationIndex("LB-GT-02")
	ctx, cancel := context.WithTimeout(context.Background(), stallWindow) // one publish; only a server that stands still fails
	defer cancel()
	if _, err := js.Publish(ctx, events.Subject(e, gt2, "QH"), []byte(strings.Replace(v2, `"LB-GT-01","version":2`, `"LB-GT-02","version":2`, 1))); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	emb.Shutdown()
	r = runTally(t, 60*time.Second, nil, "verify", "--election", election, "--data", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "the stream holds 1 more (through seq 8) the projections have not folded yet") {
		t.Fatalf("verify with the stream ahead: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}

	// A different count for district LB in contest QH, as a valid record.
	tamperAggregate(t, dir, "QH", "LB", 1000)
	r = runTally(t, 60*time.Second, nil, "verify", "--election", election, "--data", dir)
	t.Logf("verify on a tampered store:\n%s", r.stdout)
	if r.code != 1 || !strings.Contains(r.stdout, "area LB contest QH: registered: projections 5650, recomputed 4650") || !strings.Contains(r.stdout, "FAILED") {
		t.Fatalf("verify after tampering: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	code, rep = verifyJSON(t, election, dir)
	want := audit.Difference{Kind: "area", Contest: "QH", ID: "LB", Field: "registered", Projections: "5650", Recomputed: "4650"}
	if code != 1 || rep.OK || len(rep.Differences) != 1 || rep.Differences[0] != want || rep.Beyond != 1 {
		t.Fatalf("verify --json after tampering: exit %d, differences %+v; want exactly %+v", code, rep.Differences, want)
	}
}

// TestVerifySealed runs a sealed election: the gateway takes minutes signed
// by their stations' keys, and station LB-BD-01 publishes straight to NATS
// minutes signed with LB-GT-01's key. The fold rejects them (rule seal);
// verify re-verifies every seal, reports the failure as rejected by the
// projections too, and exits 0.
func TestVerifySealed(t *testing.T) {
	t.Parallel()
	e, sealedDir := sealedTestElection(t)
	electionFile := filepath.Join(sealedDir, "election.json")
	dir := t.TempDir()
	natsAddr := freeAddr(t)
	srv := startServe(t, electionFile, dir, "--nats-listen", natsAddr)
	client := &http.Client{Timeout: 10 * time.Second}
	if r := runTally(t, 30*time.Second, nil, "submit", "--server", srv.url, "--seal-dir", sealedDir, filepath.Join("testdata", "minutes_valid.json")); r.code != 0 {
		t.Fatalf("submit --seal-dir: %d %s", r.code, r.stderr)
	}

	// LB-BD-01 connects as itself and publishes on its own subject minutes
	// sealed with another station's key.
	seed, err := os.ReadFile(filepath.Join(sealedDir, "seeds", "LB-BD-01.seed"))
	if err != nil {
		t.Fatal(err)
	}
	otherSeed, err := os.ReadFile(filepath.Join(sealedDir, "seeds", "LB-GT-01.seed"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := broker.IdentityFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	inbox := nats.CustomInboxPrefix(broker.StationInbox("LB-BD-01"))
	nc, err := broker.Dial("nats://"+natsAddr, "LB-BD-01", id.Option(), inbox)
	if err != nil && strings.Contains(err.Error(), "nkeys not supported") {
		// An embedded server that does not authenticate stations (yet)
		// takes the same publish without the identity.
		nc, err = broker.Dial("nats://"+natsAddr, "LB-BD-01", inbox)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	m := tally.Minutes{Election: e.ID, Contest: "QH", Station: "LB-BD-01", Version: 2, Status: tally.Final,
		Counts:  tally.Counts{Registered: 1850, Voted: 1832, Issued: 1832, Received: 1831, Valid: 1810, Invalid: 21},
		Present: tally.HasAllCounts,
		Votes:   []tally.Vote{{Candidate: "QH-HN-03-1", Count: 1800}, {Candidate: "QH-HN-03-2", Count: 1700}, {Candidate: "QH-HN-03-3", Count: 10}}}
	if m.Signature, err = events.Sign(otherSeed, &m); err != nil {
		t.Fatal(err)
	}
	s, _ := e.StationIndex("LB-BD-01")
	ctx, cancel := context.WithTimeout(context.Background(), stallWindow) // one publish; only a server that stands still fails
	defer cancel()
	ack, err := js.Publish(ctx, events.Subject(e, s, "QH"), events.AppendJSON(nil, &m))
	if err != nil {
		t.Fatalf("publish straight to NATS: %v", err)
	}
	waitCaughtUp(t, client, srv.url)
	var rej []struct {
		Seq    uint64            `json:"seq"`
		Errors []tally.Violation `json:"errors"`
	}
	if err := getJSON(client, srv.url+"/api/v1/rejections", &rej); err != nil {
		t.Fatal(err)
	}
	if len(rej) != 1 || rej[0].Seq != ack.Sequence || len(rej[0].Errors) != 1 || rej[0].Errors[0].Rule != tally.RuleSeal {
		t.Fatalf("rejections %+v; want seq %d rejected for its seal", rej, ack.Sequence)
	}
	nc.Close()
	if code := srv.stop(t); code != 0 {
		t.Fatalf("serve exited %d", code)
	}

	r := runTally(t, 60*time.Second, nil, "verify", "--election", electionFile, "--data", dir)
	t.Logf("verify on a sealed election:\n%s", r.stdout)
	if r.code != 0 || !strings.Contains(r.stdout, "seals: 4 checked, 3 verified, 1 failed (rejected by the projections too)") {
		t.Fatalf("verify: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	code, rep := verifyJSON(t, electionFile, dir)
	if code != 0 || !rep.OK || len(rep.Seals.Failed) != 1 || rep.Seals.Failed[0].Seq != ack.Sequence ||
		rep.Seals.Failed[0].Projections != "rejected" || len(rep.Seals.FailedApplied) != 0 {
		t.Fatalf("verify --json: exit %d, seals %+v, differences %v", code, rep.Seals, rep.Differences)
	}
}
