package main

// The v2 contract end to end over HTTP on a two-tier election (province,
// commune; CONTRACT §2 v2): the real binary, SIGKILLed at several points of
// a submission and restarted on the same data directory, ending with every
// 202-acknowledged minutes stored and counted exactly once, its results
// equal to the audit fold's and byte-identical to those of a fresh server
// folding the same stream. crash_test.go does the same on generated
// three-tier elections.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/audit"
	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

const hanoi2026 = "../../examples/hanoi-2026"

// Derived from the example for this test (CONTRACT §2 v2): the National
// Assembly unit as if the file held only part of it, and two commune-council
// units in a later round.
const (
	outsideUnit     = "QH-HN-10"
	outsideStations = 6
	reElectionUnit  = "X-BT-2" // round re_election, voted at low turnout
	additionalUnit  = "X-TA-2" // round additional, one candidate over the bar
)

// twoTierElection writes the example's election file with the changes above
// into dir and returns its path and the parsed election.
func twoTierElection(t *testing.T, dir string) (string, *tally.Election) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(hanoi2026, "election.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	changed := 0
	for _, c := range file["contests"].([]any) {
		for _, u := range c.(map[string]any)["units"].([]any) {
			u := u.(map[string]any)
			switch u["id"] {
			case outsideUnit:
				u["stations_outside"] = outsideStations
				changed++
			case reElectionUnit:
				u["round"] = "re_election"
				changed++
			case additionalUnit:
				u["round"] = "additional"
				changed++
			}
		}
	}
	if changed != 3 {
		t.Fatalf("the example lost units %s, %s or %s", outsideUnit, reElectionUnit, additionalUnit)
	}
	path := filepath.Join(dir, "election.json")
	writeJSONFile(t, path, file)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	e, err := tally.Parse(data)
	if err != nil {
		t.Fatalf("derived election: %v", err)
	}
	if levels := e.AreaLevels(); len(levels) != 2 || levels[1] != "commune" {
		t.Fatalf("the example is not two-tier: levels %v", levels)
	}
	return path, e
}

// exampleMinutes reads the example's minutes, in file order.
func exampleMinutes(t *testing.T) []*minutes {
	t.Helper()
	f, err := os.Open(filepath.Join(hanoi2026, "minutes.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []*minutes
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m minutes
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("example minutes line %d: %v", len(out)+1, err)
		}
		out = append(out, &m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// roundMinutes are the final corrections of the two later-round units: in
// reElectionUnit a turnout of 40% (which a first round would send to a
// re-election) with three candidates over the bar; in additionalUnit one
// candidate over the bar (which a first round would send to an additional
// election). Each is one version above the last of ms.
func roundMinutes(t *testing.T, e *tally.Election, ms []*minutes) []*minutes {
	t.Helper()
	top := map[string]int64{}
	for _, m := range ms {
		k := m.Contest + "/" + m.Station
		top[k] = max(top[k], m.Version)
	}
	var out []*minutes
	for _, c := range e.Contests {
		for _, u := range c.Units {
			if u.ID != reElectionUnit && u.ID != additionalUnit {
				continue
			}
			for _, sid := range u.Stations {
				si, _ := e.StationIndex(sid)
				reg := e.Stations[si].Registered
				voted := reg * 9 / 10
				if u.ID == reElectionUnit {
					voted = reg * 2 / 5
				}
				valid := voted - 3
				votes := map[string]int64{}
				for i, cand := range u.Candidates {
					switch {
					case u.ID == reElectionUnit && i < 3:
						votes[cand.ID] = valid * 4 / 5
					case u.ID == additionalUnit && i == 0:
						votes[cand.ID] = valid * 3 / 4
					default:
						votes[cand.ID] = valid / 5
					}
				}
				out = append(out, &minutes{Election: e.ID, Contest: c.ID, Station: sid, Version: top[c.ID+"/"+sid] + 1, Status: "final",
					Counts: &Counts{Registered: reg, Voted: voted, Issued: voted, Received: voted, Valid: valid, Invalid: 3},
					Votes:  votes, Reason: "vòng " + string(u.Round)})
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no stations in the later-round units")
	}
	return out
}

// twoTier drives one `tally serve` child through the night.
type twoTier struct {
	t            *testing.T
	rng          *rand.Rand
	e            *tally.Election
	electionFile string
	dataDir      string
	client       *http.Client
	proc         *serverProc
	ref          *refFold // what the 202s stored: seqs, outcomes, history, current
	log          []string // what each kill hit
}

func (s *twoTier) start() {
	// Small fold batches: many commits, so kills land between them.
	s.proc = startServe(s.t, s.electionFile, s.dataDir, "--batch", "3")
}

func (s *twoTier) status() apiStatus {
	var st apiStatus
	getJSON(s.client, s.proc.url+"/api/v1/status", &st)
	return st
}

// retry posts body, identical, until it is answered 202, as long as the
// server makes progress; only "not stored" answers (transport error, 503,
// 429) are retried. It folds batch into the reference.
func (s *twoTier) retry(batch []*minutes, body []byte, code int, ans submitAnswer, resp []byte, err error) submitAnswer {
	s.t.Helper()
	w := newStallWatch()
	for code != http.StatusAccepted {
		if err == nil && code != http.StatusServiceUnavailable && code != http.StatusTooManyRequests {
			s.t.Fatalf("submission answered %d: %s\nbody: %s", code, resp, body)
		}
		st := s.status()
		if w.stalled(st.StreamSeq, st.AppliedSeq, len(s.proc.stderr.String())) {
			s.t.Fatalf("not stored, and the server made no progress for %s: last %d %v %s\nserver stderr:\n%s", stallWindow, code, err, resp, tail(s.proc.stderr.String(), 30))
		}
		time.Sleep(10 * time.Millisecond)
		code, ans, resp, err = postMinutes(s.client, s.proc.url, body)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	seqs, _ := s.ref.submit(batch)
	if ans.Accepted != len(batch) || ans.Seq != slices.Max(seqs) {
		s.t.Errorf("answer %s for %d minutes; the reference puts the last at seq %d", resp, len(batch), slices.Max(seqs))
	}
	return ans
}

func (s *twoTier) post(batch []*minutes) submitAnswer {
	s.t.Helper()
	body := jsonBody(batch)
	code, ans, resp, err := postMinutes(s.client, s.proc.url, body)
	return s.retry(batch, body, code, ans, resp, err)
}

// postAll posts ms, 1–5 minutes a request, in order.
func (s *twoTier) postAll(ms []*minutes) {
	s.t.Helper()
	for len(ms) > 0 {
		n := min(len(ms), 1+s.rng.IntN(5))
		s.post(ms[:n])
		ms = ms[n:]
	}
}

func jsonBody(batch []*minutes) []byte {
	b, err := json.Marshal(batch)
	if err != nil {
		panic(err)
	}
	return b
}

// restart starts the server again after a kill, and checks that it lost
// nothing acknowledged and folded nothing twice.
func (s *twoTier) restart(what string) {
	s.t.Helper()
	s.start()
	st := waitCaughtUp(s.t, s.client, s.proc.url)
	s.log = append(s.log, what)
	s.checkStatus(st, "after "+what)
}

func (s *twoTier) checkStatus(st apiStatus, when string) {
	s.t.Helper()
	if st.StreamSeq != s.ref.streamSeq || st.AppliedSeq != s.ref.streamSeq || st.Applied != s.ref.applied || st.Rejected != s.ref.rejected {
		s.t.Fatalf("%s: status %+v; the 202s stored %d messages: %d applied, %d rejected, %d stale\nserver stderr:\n%s",
			when, st, s.ref.streamSeq, s.ref.applied, s.ref.rejected, s.ref.stale, tail(s.proc.stderr.String(), 30))
	}
}

// killWhileStoring posts batch as one request and SIGKILLs the server as
// soon as the stream has grown by part of it (or the 202 came first): the
// request is cut while the gateway publishes. The request is then retried
// with the identical body on the restarted server.
func (s *twoTier) killWhileStoring(batch []*minutes) {
	s.t.Helper()
	body := jsonBody(batch)
	before := s.ref.streamSeq
	type answer struct {
		code int
		ans  submitAnswer
		resp []byte
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		code, ans, resp, err := postMinutes(s.client, s.proc.url, body)
		got <- answer{code, ans, resp, err}
	}()
	var a answer
	answered := false
	w := newStallWatch()
	for {
		select {
		case a = <-got:
			answered = true
		default:
		}
		st := s.status()
		if answered || st.StreamSeq > before {
			break
		}
		if w.stalled(st.StreamSeq, len(s.proc.stderr.String())) {
			s.t.Fatalf("a %d-minutes request stored nothing for %s", len(batch), stallWindow)
		}
		time.Sleep(time.Millisecond)
	}
	s.proc.kill()
	if !answered {
		a = <-got
	}
	s.start()
	stored := s.status().StreamSeq - before
	what := fmt.Sprintf("SIGKILL while storing a %d-minutes request: %d stored before the kill, answered %d", len(batch), stored, a.code)
	if a.err != nil {
		what = fmt.Sprintf("SIGKILL while storing a %d-minutes request: %d stored before the kill, no answer (%v)", len(batch), stored, a.err)
	}
	s.retry(batch, body, a.code, a.ans, a.resp, a.err)
	st := waitCaughtUp(s.t, s.client, s.proc.url)
	s.log = append(s.log, what)
	s.checkStatus(st, what)
}

// killInFlight posts batch and SIGKILLs the server the moment the request
// has been written, before any answer.
func (s *twoTier) killInFlight(batch []*minutes) {
	s.t.Helper()
	body := jsonBody(batch)
	p := s.proc
	sent := make(chan struct{})
	var once sync.Once
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { once.Do(func() { close(sent) }) }}
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		<-sent
		p.cmd.Process.Kill()
	}()
	code, ans, resp, err := postMinutesCtx(httptrace.WithClientTrace(context.Background(), trace), s.client, p.url, body)
	once.Do(func() { close(sent) }) // a request that failed before it was written
	<-killed
	p.kill()
	before := s.ref.streamSeq
	s.start()
	s.log = append(s.log, fmt.Sprintf("SIGKILL as a %d-minutes request was written: %d stored, answered %d %v", len(batch), s.status().StreamSeq-before, code, err))
	s.retry(batch, body, code, ans, resp, err)
	s.checkStatus(waitCaughtUp(s.t, s.client, s.proc.url), "after the in-flight kill")
}

// killFoldBehind posts batch, and SIGKILLs the server right after its 202,
// while the fold has not applied all of it yet.
func (s *twoTier) killFoldBehind(batch []*minutes) {
	s.t.Helper()
	s.post(batch)
	st := s.status()
	s.proc.kill()
	s.restart(fmt.Sprintf("SIGKILL right after a 202 for %d minutes, the fold at %d of %d", len(batch), st.AppliedSeq, st.StreamSeq))
}

// TestTwoTierCrashSafety submits the Hà Nội 2026 example (two tiers:
// province, commune; a commune-council ballot holding 26 units of 13
// councils, half of them inferred) with corrections over HTTP, SIGKILLs
// `tally serve` at three different points of a submission and restarts it
// gracefully once, then checks that every acknowledged minutes is stored
// and counted exactly once, that the results follow CONTRACT §4 v2 and
// equal the audit fold's (tally verify), and that a fresh server folding
// the same stream serves the same bytes.
func TestTwoTierCrashSafety(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	electionFile, e := twoTierElection(t, dir)
	s := &twoTier{t: t, rng: rand.New(rand.NewPCG(20260315, 34)), e: e, electionFile: electionFile,
		dataDir: filepath.Join(dir, "data"), client: &http.Client{Timeout: 30 * time.Second}, ref: newRefFold(nil)}
	all := exampleMinutes(t)
	rounds := roundMinutes(t, e, all)
	s.start()

	// The first third in small requests, then a large request cut while
	// it is being stored.
	third := len(all) / 3
	s.postAll(all[:third])
	s.killWhileStoring(all[third : 2*third])

	// Noise (CONTRACT §3), each over HTTP:
	// on a station whose current minutes are a correction (version 2 or
	// more) of its own,
	latest := map[string]*minutes{}
	var cur *minutes
	for _, m := range all[:2*third] {
		latest[m.Contest+"/"+m.Station] = m
	}
	for _, m := range all[:2*third] {
		if l := latest[m.Contest+"/"+m.Station]; cur == nil && l.Version > 1 && l.Status == "final" {
			cur = l
		}
	}
	if cur == nil {
		t.Fatal("no correction in the first two thirds of the example")
	}
	// a duplicate: identical content again, kept once by the stream;
	ans := s.post([]*minutes{cur})
	if ans.Duplicates != 1 {
		t.Errorf("an identical resubmission answered %+v; want duplicates 1", ans)
	}
	// a stale one: a lower version sent late (new content, so stored);
	late := cur.clone()
	late.Version--
	late.Reason = "gửi muộn"
	s.post([]*minutes{late})
	// a conflict: the current version again with other content, stored and
	// rejected by the fold;
	conflict := cur.clone()
	conflict.Reason = "nội dung khác, cùng phiên bản"
	s.post([]*minutes{conflict})
	// a rejection at the gateway: counts that do not add up (valid +
	// invalid ≠ received), answered 422 naming the rule, nothing stored.
	bad := cur.clone()
	bad.Version++
	bad.Invalid++
	before := s.status().StreamSeq
	code, _, resp, err := postMinutes(s.client, s.proc.url, jsonBody([]*minutes{bad}))
	if err != nil || code != http.StatusUnprocessableEntity || !strings.Contains(string(resp), `"rule"`) || !strings.Contains(string(resp), "invalid") {
		t.Errorf("minutes whose valid + invalid ≠ received: %d %v %s; want 422 naming the rule", code, err, resp)
	}
	if after := s.status().StreamSeq; after != before {
		t.Errorf("a 422 stored %d messages", after-before)
	}

	// The rest, with a kill the moment a request is written and a kill
	// right after a 202 (the fold still behind), then the later rounds'
	// corrections (higher versions) across a graceful restart.
	rest := all[2*third:]
	s.killInFlight(rest[:4])
	rest = rest[4:]
	s.postAll(rest[:len(rest)/2])
	s.killFoldBehind(rest[len(rest)/2:])
	s.post(rounds[:len(rounds)/2])
	if code := s.proc.stop(t); code != 0 {
		t.Fatalf("tally serve exited %d after SIGTERM; stderr:\n%s", code, tail(s.proc.stderr.String(), 20))
	}
	s.restart("SIGTERM and restart")
	s.post(rounds[len(rounds)/2:])

	st := waitCaughtUp(t, s.client, s.proc.url)
	s.checkStatus(st, "at the end")
	if s.ref.stale == 0 || s.ref.rejected == 0 || s.ref.dedupedAtGateway == 0 {
		t.Errorf("the night lacks noise: %d stale, %d rejected, %d deduplicated", s.ref.stale, s.ref.rejected, s.ref.dedupedAtGateway)
	}
	got := s.fetchAll()
	if code := s.proc.stop(t); code != 0 {
		t.Errorf("tally serve exited %d after SIGTERM; stderr:\n%s", code, tail(s.proc.stderr.String(), 20))
	}

	// The stream holds each acknowledged minutes exactly once, at the
	// position its 202 named, with the outcome the reference gives it.
	oracle := s.readStream()
	s.checkResults(got, oracle)

	// tally verify: the audit fold of the stream equals the projections.
	units := 0
	for _, c := range e.Contests {
		units += len(c.Units)
	}
	res := runTally(t, 60*time.Second, nil, "verify", "--election", electionFile, "--data", s.dataDir, "--json")
	var rep audit.Report
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || res.code != 0 || !rep.OK || rep.EventsRead != s.ref.streamSeq || rep.Compared.Units != units {
		t.Errorf("tally verify: exit %d, %v; report ok %v, read %d of %d, compared %+v\nstdout:\n%.3000s\nstderr:\n%s",
			res.code, err, rep.OK, rep.EventsRead, s.ref.streamSeq, rep.Compared, res.stdout, res.stderr)
	}

	// A fresh server folding a copy of the same stream from nothing serves
	// the same bytes.
	fresh := filepath.Join(dir, "fresh")
	copyDir(t, filepath.Join(s.dataDir, "nats"), filepath.Join(fresh, "nats"))
	p := startServe(t, electionFile, fresh)
	waitCaughtUp(t, s.client, p.url)
	again := fetchAllFrom(t, s.client, p.url, e)
	var differ []string
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if !bytes.Equal(got[k], again[k]) {
			differ = append(differ, fmt.Sprintf("%s:\n  crashed %s\n  fresh   %s", k, got[k], again[k]))
		}
	}
	if len(differ) > 0 || len(again) != len(got) {
		t.Errorf("a fresh server on the same stream answers differently (%d of %d answers):\n%s", len(differ), len(got), strings.Join(differ[:min(5, len(differ))], "\n"))
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("fresh tally serve exited %d", code)
	}
	t.Logf("%d minutes submitted, %d of them deduplicated at the gateway; stream %d messages: %d applied, %d stale, %d rejected; %d answers compared byte for byte",
		len(all)+len(rounds), s.ref.dedupedAtGateway, s.ref.streamSeq, s.ref.applied, s.ref.stale, s.ref.rejected, len(got))
	for _, l := range s.log {
		t.Log(l)
	}
}

func (s *twoTier) fetchAll() map[string][]byte { return fetchAllFrom(s.t, s.client, s.proc.url, s.e) }

// fetchAllFrom returns the raw answer of every area, unit and station
// path of every contest, keyed by path.
func fetchAllFrom(t *testing.T, client *http.Client, url string, e *tally.Election) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	get := func(path string) {
		resp, err := client.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v %s", path, resp.StatusCode, err, b)
		}
		out[path] = b
	}
	for _, c := range e.Contests {
		for _, a := range e.Areas {
			get("/api/v1/contests/" + c.ID + "/areas/" + a.ID)
		}
		for _, u := range c.Units {
			get("/api/v1/contests/" + c.ID + "/units/" + u.ID)
		}
		for _, st := range e.Stations {
			get("/api/v1/contests/" + c.ID + "/stations/" + st.ID)
		}
	}
	return out
}

// readStream reads the stopped server's stream through the embedded store,
// checks each message against the reference, and returns the audit fold of
// it.
func (s *twoTier) readStream() *audit.Fold {
	t := s.t
	t.Helper()
	emb, err := broker.StartEmbedded(broker.EmbeddedOptions{Dir: s.dataDir, Listen: "none"})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	nc, err := emb.Connect("twotier-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stream, err := js.Stream(ctx, events.StreamName(s.e.ID))
	if err != nil {
		t.Fatal(err)
	}
	outcome := map[uint64]histEntry{}
	for _, h := range s.ref.history {
		for _, x := range h {
			outcome[x.Seq] = x
		}
	}
	stored := map[uint64]string{}
	for k, seq := range s.ref.stored {
		stored[seq] = k
	}
	oracle := audit.New(s.e)
	n, _, err := audit.ReadStream(ctx, stream, s.ref.streamSeq+1, func(seq uint64, subject string, data []byte) {
		r := oracle.Apply(seq, subject, data)
		want, ok := stored[seq]
		if !ok || !sameMinutes(want, r) || string(r.Outcome) != outcome[seq].Outcome {
			t.Errorf("stream seq %d holds %s %s v%d (%s), the 202s put %q there (%s)", seq, r.Station, r.Contest, r.Version, r.Outcome, want, outcome[seq].Outcome)
		}
	})
	if err != nil || n != s.ref.streamSeq {
		t.Fatalf("read %d stream messages (%v); the 202s stored %d", n, err, s.ref.streamSeq)
	}
	return oracle
}

// votesString shows a votes object, or that it is absent.
func votesString(v map[string]int64) string {
	if v == nil {
		return "absent"
	}
	return fmt.Sprint(v)
}

// Decoded answers, with the fields of CONTRACT §4 v2 this test checks.
type v2Units struct {
	Total              int64 `json:"total"`
	Counting           int64 `json:"counting"`
	Decided            int64 `json:"decided"`
	Tie                int64 `json:"tie"`
	AdditionalElection int64 `json:"additional_election"`
	ReElection         int64 `json:"re_election"`
	Seats              int64 `json:"seats"`
	Winners            int64 `json:"winners"`
}

type v2Result struct {
	StationsExpected  int64            `json:"stations_expected"`
	StationsReporting int64            `json:"stations_reporting"`
	StationsFinal     int64            `json:"stations_final"`
	Registered        int64            `json:"registered"`
	Voted             int64            `json:"voted"`
	Issued            int64            `json:"issued"`
	Received          int64            `json:"received"`
	Valid             int64            `json:"valid"`
	Invalid           int64            `json:"invalid"`
	Votes             map[string]int64 `json:"votes"`
	Units             *v2Units         `json:"units"`
	Winners           []string         `json:"winners"`
	Candidates        []struct {
		ID string `json:"id"`
	} `json:"candidates"`
	Status     string `json:"status"`
	Round      string `json:"round"`
	Council    string `json:"council"`
	AppliedSeq uint64 `json:"applied_seq"`
}

// checkResults compares every answer with the audit fold of the stream
// and with the v2 rules, and the stations' history and current minutes
// with the reference.
func (s *twoTier) checkResults(got map[string][]byte, oracle *audit.Fold) {
	t := s.t
	t.Helper()
	re := oracle.Results()
	var problems []string
	bad := func(f string, a ...any) { problems = append(problems, fmt.Sprintf(f, a...)) }
	decode := func(path string) (v2Result, map[string]json.RawMessage) {
		var r v2Result
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(got[path], &r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		json.Unmarshal(got[path], &raw)
		return r, raw
	}
	sameTotals := func(path string, r v2Result, w *audit.Totals) {
		c := tally.Counts{Registered: r.Registered, Voted: r.Voted, Issued: r.Issued, Received: r.Received, Valid: r.Valid, Invalid: r.Invalid}
		if r.StationsExpected != w.Expected || r.StationsReporting != w.Reporting || r.StationsFinal != w.Final || c != w.Counts {
			bad("%s: stations %d/%d/%d, counts %+v; audit %d/%d/%d, %+v", path, r.StationsExpected, r.StationsReporting, r.StationsFinal, c, w.Expected, w.Reporting, w.Final, w.Counts)
		}
		if (r.Votes == nil) != (w.Votes == nil) || (w.Votes != nil && fmt.Sprint(r.Votes) != fmt.Sprint(w.Votes)) {
			bad("%s: votes %s; audit %s", path, votesString(r.Votes), votesString(w.Votes))
		}
		if r.AppliedSeq != s.ref.streamSeq {
			bad("%s: applied_seq %d, stream %d", path, r.AppliedSeq, s.ref.streamSeq)
		}
	}
	level := map[string]string{}
	for _, a := range s.e.Areas {
		level[a.ID] = string(a.Level)
	}
	for _, c := range s.e.Contests {
		for _, a := range s.e.Areas {
			path := "/api/v1/contests/" + c.ID + "/areas/" + a.ID
			r, raw := decode(path)
			w := re.Areas[c.ID][a.ID]
			if w == nil {
				bad("%s: the audit fold has no result", path)
				continue
			}
			sameTotals(path, r, w)
			// CONTRACT §4 v2: no votes below the council's level.
			_, hasVotes := raw["votes"]
			wantVotes := c.Level != tally.CommuneCouncil || level[a.ID] == "commune"
			if hasVotes != wantVotes {
				bad("%s (%s level, contest level %s): votes present %v, want %v", path, level[a.ID], c.Level, hasVotes, wantVotes)
			}
			u := w.Units
			want := v2Units{u.Total, u.Counting, u.Decided, u.Tie, u.AdditionalElection, u.ReElection, u.Seats, u.Winners}
			if r.Units == nil || *r.Units != want {
				bad("%s: units %+v; audit %+v", path, r.Units, want)
			}
		}
		for _, u := range c.Units {
			path := "/api/v1/contests/" + c.ID + "/units/" + u.ID
			r, _ := decode(path)
			w := re.Units[c.ID][u.ID]
			sameTotals(path, r, &w.Totals)
			var ranking []string
			for _, cand := range r.Candidates {
				ranking = append(ranking, cand.ID)
			}
			if r.Status != string(w.Status) || r.Round != string(w.Round) || fmt.Sprint(r.Winners) != fmt.Sprint(w.Winners) || fmt.Sprint(ranking) != fmt.Sprint(w.Ranking) {
				bad("%s: status %s round %s winners %v ranking %v; audit %s %s %v %v", path, r.Status, r.Round, r.Winners, ranking, w.Status, w.Round, w.Winners, w.Ranking)
			}
			if c.Level == tally.CommuneCouncil && (r.Council == "" || level[r.Council] != "commune") {
				bad("%s: council %q, want the commune (given or inferred)", path, r.Council)
			}
		}
		for _, st := range s.e.Stations {
			path := "/api/v1/contests/" + c.ID + "/stations/" + st.ID
			var v stationView
			if err := json.Unmarshal(got[path], &v); err != nil {
				t.Fatal(err)
			}
			pk := c.ID + "/" + st.ID
			if d := diffJSON(v.History, s.ref.history[pk]); d != "" && len(v.History)+len(s.ref.history[pk]) > 0 {
				bad("%s history: %s", path, d)
			}
			var cur *minutes
			json.Unmarshal(v.Current, &cur)
			if want := s.ref.current[pk]; (cur == nil) != (want == nil) || (want != nil && diffJSON(cur, want) != "") {
				bad("%s current: %s; want %v", path, v.Current, want)
			}
		}
	}

	// The v2 specifics, spelt out on this file.
	unit := func(contest, id string) v2Result {
		r, _ := decode("/api/v1/contests/" + contest + "/units/" + id)
		return r
	}
	if r := unit("QH", outsideUnit); r.StationsFinal != int64(len(s.e.Stations)) || r.StationsExpected != r.StationsFinal+outsideStations || r.Status != "counting" || len(r.Winners) == 0 {
		bad("%s with stations_outside %d: expected %d, final %d, status %s, winners %v; want final + %d expected, counting with provisional winners",
			outsideUnit, outsideStations, r.StationsExpected, r.StationsFinal, r.Status, r.Winners, outsideStations)
	}
	if r := unit("HDND-X", reElectionUnit); r.Round != "re_election" || r.Voted*2 > r.Registered || r.Status != "decided" || len(r.Winners) != 3 {
		bad("%s: round %s, voted %d of %d, status %s, winners %v; want a re-election that stands at low turnout: decided, 3 winners", reElectionUnit, r.Round, r.Voted, r.Registered, r.Status, r.Winners)
	}
	if r := unit("HDND-X", additionalUnit); r.Round != "additional" || r.Status != "decided" || len(r.Winners) != 1 {
		bad("%s: round %s, status %s, winners %v; want an additional round left decided with 1 winner", additionalUnit, r.Round, r.Status, r.Winners)
	}
	if r := unit("HDND-X", "X-GL-1"); r.Council != "HN-GL" || r.Round != "first" {
		bad("X-GL-1 (no council in the file): council %q round %q; want HN-GL inferred, first", r.Council, r.Round)
	}
	if r, raw := decode("/api/v1/contests/HDND-X/areas/HN"); raw["votes"] != nil || r.Units == nil || r.Units.Total != 26 || r.Units.Decided != 26 {
		bad("HDND-X in the province: votes %s, units %+v; want no votes, 26 units decided", raw["votes"], r.Units)
	}
	if r, _ := decode("/api/v1/contests/QH/areas/HN"); r.Units == nil || r.Units.Total != 1 || r.Units.Counting != 1 || r.StationsExpected != int64(len(s.e.Stations)) {
		bad("QH in the province: units %+v, stations_expected %d; want 1 unit counting, %d stations (stations_outside counts in the unit only)", r.Units, r.StationsExpected, len(s.e.Stations))
	}
	if len(problems) > 0 {
		t.Errorf("%d problems in the results:\n  %s", len(problems), strings.Join(problems[:min(20, len(problems))], "\n  "))
	}
}
