package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// harness drives one `tally serve` child through a generated workload,
// submitting the minutes over HTTP in small sequential requests, killing
// and restarting the child when asked, and folding every acknowledged
// request into the reference.
type harness struct {
	t            *testing.T
	rng          *rand.Rand
	w            *world
	electionFile string
	dataDir      string
	client       *http.Client
	proc         *serverProc
	ref          *refFold

	// killEvery > 0: SIGKILL the child after every killEvery..2×killEvery
	// minutes submitted.
	killEvery int

	kills, inFlightKills, interrupted, partlyStored, retries, requests, checks int
	restartTime                                                                time.Duration
}

func newHarness(t *testing.T, seed uint64) *harness {
	rng := rand.New(rand.NewPCG(seed, seed^0x7a11))
	w := genWorld(rng)
	dir := t.TempDir()
	h := &harness{
		t: t, rng: rng, w: w,
		electionFile: filepath.Join(dir, "election.json"),
		dataDir:      filepath.Join(dir, "data"),
		client:       &http.Client{Timeout: 20 * time.Second},
		ref:          newRefFold(w),
	}
	writeJSONFile(t, h.electionFile, w.file)
	return h
}

func (h *harness) start() {
	t0 := time.Now()
	var extra []string
	if h.killEvery > 0 && h.rng.IntN(2) == 0 {
		// Small fold batches: more commits, so kills land between them.
		extra = []string{"--batch", strconv.Itoa(1 + h.rng.IntN(50))}
	}
	h.proc = startServe(h.t, h.electionFile, h.dataDir, extra...)
	h.restartTime += time.Since(t0)
}

// encode writes a request body the three ways CONTRACT §5 accepts.
func (h *harness) encode(batch []*minutes) []byte {
	var b bytes.Buffer
	switch r := h.rng.IntN(3); {
	case len(batch) == 1 && r == 0:
		json.NewEncoder(&b).Encode(batch[0])
	case r == 1:
		for _, m := range batch {
			json.NewEncoder(&b).Encode(m) // NDJSON
		}
	default:
		json.NewEncoder(&b).Encode(batch)
	}
	return b.Bytes()
}

// run submits every minutes, 1–5 per request, in order.
func (h *harness) run(all []*minutes) {
	t := h.t
	submitted := 0
	nextKill := -1
	if h.killEvery > 0 {
		nextKill = h.killEvery + h.rng.IntN(h.killEvery+1)
	}
	for len(all) > 0 {
		n := min(len(all), 1+h.rng.IntN(5))
		batch := all[:n]
		all = all[n:]
		body := h.encode(batch)

		killNow := nextKill >= 0 && submitted >= nextKill
		var (
			code int
			ans  submitAnswer
			resp []byte
			err  error
		)
		switch {
		case killNow && h.rng.IntN(4) != 0:
			// Kill while this request is in flight: a random moment after
			// the request (or only its headers) went out, while the server
			// validates, publishes and waits for JetStream's acks.
			p := h.proc
			delay := time.Duration(h.rng.IntN(600)) * time.Microsecond
			onHeaders := h.rng.IntN(3) == 0
			sent := make(chan struct{})
			var once sync.Once
			trace := &httptrace.ClientTrace{
				WroteHeaders: func() {
					if onHeaders {
						once.Do(func() { close(sent) })
					}
				},
				WroteRequest: func(httptrace.WroteRequestInfo) { once.Do(func() { close(sent) }) },
			}
			killed := make(chan struct{})
			go func() {
				select {
				case <-sent:
				case <-time.After(2 * time.Second):
				}
				time.Sleep(delay)
				p.cmd.Process.Kill()
				close(killed)
			}()
			code, ans, resp, err = postMinutesCtx(httptrace.WithClientTrace(context.Background(), trace), h.client, p.url, body)
			<-killed
			p.kill()
			h.kills++
			h.inFlightKills++
			h.start()
			if code != http.StatusAccepted {
				h.interrupted++
				var st apiStatus
				if err := getJSON(h.client, h.proc.url+"/api/v1/status", &st); err == nil && st.StreamSeq > h.ref.streamSeq {
					h.partlyStored++ // the retry below must not store those twice
				}
			}
		case killNow:
			h.proc.kill()
			h.kills++
			h.start()
			code, ans, resp, err = postMinutes(h.client, h.proc.url, body)
		default:
			code, ans, resp, err = postMinutes(h.client, h.proc.url, body)
		}
		h.requests++
		attempts := 1
		w := newStallWatch()
		for code != http.StatusAccepted {
			// Only "not stored" answers may be retried: a transport error
			// or 503. Anything else is a failure of the test or the server.
			if err == nil && code != http.StatusServiceUnavailable {
				t.Fatalf("request %d answered %d: %s\nbody: %s", h.requests, code, resp, body)
			}
			var st apiStatus
			getJSON(h.client, h.proc.url+"/api/v1/status", &st) // progress: the stream, the fold, the log
			if w.stalled(st.StreamSeq, st.AppliedSeq, len(h.proc.stderr.String())) {
				t.Fatalf("request %d not stored, and the server logged nothing for %s of retries: last %d %v %s\nserver stderr:\n%s", h.requests, stallWindow, code, err, resp, h.proc.stderr.String())
			}
			time.Sleep(5 * time.Millisecond)
			attempts++
			h.retries++
			code, ans, resp, err = postMinutes(h.client, h.proc.url, body) // identical body
		}
		if err != nil {
			t.Fatalf("request %d: %v", h.requests, err)
		}
		seqs, deduped := h.ref.submit(batch)
		var maxSeq uint64
		for _, s := range seqs {
			maxSeq = max(maxSeq, s)
		}
		// S is the stream position a reader must wait for to see the whole
		// request: the highest of its minutes' positions.
		if ans.Accepted != len(batch) || ans.Seq != maxSeq {
			t.Errorf("request %d (%d minutes): answer %s; want accepted %d, seq %d", h.requests, len(batch), resp, len(batch), maxSeq)
		}
		if attempts == 1 && ans.Duplicates != deduped {
			t.Errorf("request %d: answer %s says %d already stored, the reference says %d", h.requests, resp, ans.Duplicates, deduped)
		}
		submitted += n
		if killNow {
			nextKill = submitted + h.killEvery + h.rng.IntN(h.killEvery+1)
			// After every restart: the server must have lost nothing it
			// acknowledged and folded nothing twice.
			waitCaughtUp(t, h.client, h.proc.url)
			compareAll(t, h.client, h.proc.url, h.ref, true)
			h.checks++
			if t.Failed() {
				t.Fatalf("after kill %d (%d minutes submitted); server stderr:\n%s", h.kills, submitted, tail(h.proc.stderr.String(), 40))
			}
		}
	}
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

func (h *harness) unitStatuses() string {
	var out []string
	for ci := range h.w.file.Contests {
		c := &h.w.file.Contests[ci]
		for ui := range c.Units {
			r := h.ref.unitResult(c.ID, &c.Units[ui])
			out = append(out, fmt.Sprintf("%s %s (%d/%d final, winners %v)", r.Unit, r.Status, r.StationsFinal, r.StationsExpected, r.Winners))
		}
	}
	return strings.Join(out, "; ")
}

// TestCrashSafety submits a generated election night to `tally serve`
// while SIGKILLing it every 100–200 minutes (mostly while a
// request is in flight) and restarting it on the same data directory.
// Every request without a 202 is retried with the identical body. After
// every restart and at the end, every area, unit and station answer must
// equal the reference fold over exactly the minutes acknowledged.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	// A few election nights, each on its own data directory: the kills
	// land at different moments in each.
	for _, seed := range []uint64{20210523, 20160522, 20110522} {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { crashSafety(t, seed) })
	}
}

func crashSafety(t *testing.T, seed uint64) {
	start := time.Now()
	h := newHarness(t, seed)
	all, stats := genMinutes(h.rng, h.w, 26)
	h.killEvery = 100
	h.start()
	h.run(all)

	st := waitCaughtUp(t, h.client, h.proc.url)
	compareAll(t, h.client, h.proc.url, h.ref, true)
	h.checks++
	if h.kills < 5 {
		t.Errorf("only %d kills; the test wants at least 5", h.kills)
	}
	if code := h.proc.stop(t); code != 0 {
		t.Errorf("tally serve exited %d after SIGTERM, want 0; stderr:\n%s", code, tail(h.proc.stderr.String(), 20))
	}
	t.Logf("%s", stats)
	t.Logf("%d requests, %d kills (%d while a request was in flight, %d of those without a 202, %d of those partly stored), %d retries, %d full comparisons; stream %d messages: %d applied, %d stale, %d rejected, %d duplicates folded, %d deduplicated at the gateway; server status %+v",
		h.requests, h.kills, h.inFlightKills, h.interrupted, h.partlyStored, h.retries, h.checks, h.ref.streamSeq, h.ref.applied, h.ref.stale, h.ref.rejected, h.ref.dupInStream, h.ref.dedupedAtGateway, st)
	t.Logf("units: %s", h.unitStatuses())
	t.Logf("took %s, of which %s starting servers", time.Since(start).Round(time.Millisecond), h.restartTime.Round(time.Millisecond))
}

// dumpStore returns every key and value of the projections under dataDir.
func dumpStore(t *testing.T, dataDir string, e *tally.Election) (keys, values [][]byte) {
	t.Helper()
	s, err := projections.Open(filepath.Join(dataDir, "projections"), e)
	if err != nil {
		t.Fatalf("open projections: %v", err)
	}
	defer s.Close()
	err = s.Dump(func(k, v []byte) error {
		keys = append(keys, bytes.Clone(k))
		values = append(values, bytes.Clone(v))
		return nil
	})
	if err != nil {
		t.Fatalf("dump projections: %v", err)
	}
	return keys, values
}

// TestRebuildEqualsLive checks that `tally rebuild` reproduces, byte for
// byte, the projections the live fold built, and that the server resumes
// on them.
func TestRebuildEqualsLive(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 19460106)
	all, stats := genMinutes(h.rng, h.w, 24)
	// Kills too: what the live fold built across crashes must be what a
	// rebuild from the stream builds.
	h.killEvery = 150
	h.start()
	h.run(all)
	st := waitCaughtUp(t, h.client, h.proc.url)
	compareAll(t, h.client, h.proc.url, h.ref, false)
	if code := h.proc.stop(t); code != 0 {
		t.Fatalf("tally serve exited %d after SIGTERM, want 0; stderr:\n%s", code, tail(h.proc.stderr.String(), 20))
	}
	t.Logf("%s; %d kills; stream %d messages, status %+v", stats, h.kills, h.ref.streamSeq, st)

	data, err := os.ReadFile(h.electionFile)
	if err != nil {
		t.Fatal(err)
	}
	e, err := tally.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	liveKeys, liveValues := dumpStore(t, h.dataDir, e)

	res := runTally(t, 60*time.Second, nil, "rebuild", "--election", h.electionFile, "--data", h.dataDir)
	if res.code != 0 {
		t.Fatalf("tally rebuild exited %d, want 0\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
	m := regexp.MustCompile(`(\d+) events`).FindStringSubmatch(res.stdout)
	if m == nil {
		t.Errorf("tally rebuild did not print the event count: %q", res.stdout)
	} else if n, _ := strconv.ParseUint(m[1], 10, 64); n != h.ref.streamSeq {
		t.Errorf("tally rebuild says %d events, the stream holds %d: %q", n, h.ref.streamSeq, res.stdout)
	}
	rebuiltKeys, rebuiltValues := dumpStore(t, h.dataDir, e)

	if len(liveKeys) == 0 {
		t.Fatal("the live projections are empty")
	}
	for i := 0; i < max(len(liveKeys), len(rebuiltKeys)); i++ {
		switch {
		case i >= len(liveKeys):
			t.Fatalf("rebuilt projections have %d keys, live %d; first extra key %q = %x", len(rebuiltKeys), len(liveKeys), rebuiltKeys[i], rebuiltValues[i])
		case i >= len(rebuiltKeys):
			t.Fatalf("rebuilt projections have %d keys, live %d; first missing key %q = %x", len(rebuiltKeys), len(liveKeys), liveKeys[i], liveValues[i])
		case !bytes.Equal(liveKeys[i], rebuiltKeys[i]):
			t.Fatalf("key %d differs: live %q, rebuilt %q (live %d keys, rebuilt %d)", i, liveKeys[i], rebuiltKeys[i], len(liveKeys), len(rebuiltKeys))
		case !bytes.Equal(liveValues[i], rebuiltValues[i]):
			t.Fatalf("value of key %q differs:\nlive    %x\nrebuilt %x", liveKeys[i], liveValues[i], rebuiltValues[i])
		}
	}
	t.Logf("live and rebuilt projections: %d keys, identical", len(liveKeys))

	// The server resumes on the rebuilt projections where it stopped.
	h.start()
	var st2 apiStatus
	if err := getJSON(h.client, h.proc.url+"/api/v1/status", &st2); err != nil {
		t.Fatal(err)
	}
	if st2.AppliedSeq != st.AppliedSeq || st2.StreamSeq != st.StreamSeq || st2.Applied != st.Applied || st2.Rejected != st.Rejected {
		t.Errorf("status after rebuild %+v, before %+v", st2, st)
	}
	compareAll(t, h.client, h.proc.url, h.ref, true)
	if code := h.proc.stop(t); code != 0 {
		t.Errorf("tally serve exited %d after SIGTERM, want 0", code)
	}
}
