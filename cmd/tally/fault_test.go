package main

// Fault injection against the real binary: each test produces one fault for
// real (a NATS server stopped under load, SIGKILL during large commits, a
// projections directory deleted or damaged, a broker store rolled back, a
// full disk, SIGTERM under load) and ends by comparing every result with the
// reference fold of workload_test.go over exactly the minutes that were
// answered 202. RELIABILITY.md lists them.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tallyvn/tally/broker"
)

// natsServer is a NATS server with JetStream run by the test itself, as an
// operator would run one for `tally serve --nats URL`: it can be stopped
// and started again on the same port and store while tally runs.
type natsServer struct {
	t    *testing.T
	dir  string
	addr string
	emb  *broker.Embedded
}

func startNATS(t *testing.T) *natsServer {
	t.Helper()
	n := &natsServer{t: t, dir: t.TempDir(), addr: freeAddr(t)}
	n.start()
	t.Cleanup(func() {
		if n.emb != nil {
			n.emb.Shutdown()
		}
	})
	return n
}

func (n *natsServer) url() string { return "nats://" + n.addr }

func (n *natsServer) start() {
	n.t.Helper()
	// The port is released a moment after shutdown: a wait with nothing
	// to measure, so bounded by the stall window.
	w := newStallWatch()
	for {
		emb, err := broker.StartEmbedded(broker.EmbeddedOptions{Dir: n.dir, Listen: n.addr})
		if err == nil {
			n.emb = emb
			return
		}
		if w.stalled() {
			n.t.Fatalf("start NATS on %s: %v", n.addr, err)
		}
		time.Sleep(50 * time.Millisecond) // the port is released a moment after shutdown
	}
}

func (n *natsServer) stop() {
	n.emb.Shutdown()
	n.emb = nil
}

// store posts body until it is answered 202 and folds batch into the
// reference. Only "not stored" answers are retried (a transport error, 503
// or 429, each of which must carry Retry-After); it returns how many were.
func (h *harness) store(batch []*minutes, body []byte) (refused int) {
	h.t.Helper()
	w := newStallWatch()
	for {
		code, _, resp, hdr, err := postMinutesHeader(h.client, h.proc.url, body)
		if err == nil && code == http.StatusAccepted {
			h.ref.submit(batch)
			h.requests++
			return refused
		}
		if err == nil && code != http.StatusServiceUnavailable && code != http.StatusTooManyRequests {
			h.t.Fatalf("submission answered %d: %s\nbody: %s", code, resp, body)
		}
		if err == nil && hdr.Get("Retry-After") == "" {
			h.t.Errorf("a %d answer without Retry-After: %s", code, resp)
		}
		refused++
		// Retried while the server makes progress: its stream or fold
		// moves, or it logs (a reconnection, a restarted fold).
		var st apiStatus
		getJSON(h.client, h.proc.url+"/api/v1/status", &st)
		if w.stalled(st.StreamSeq, st.AppliedSeq, len(h.proc.stderr.String())) {
			h.t.Fatalf("not stored, and the server made no progress for %s of retries: last %d %v %s\nserver stderr:\n%s", stallWindow, code, err, resp, tail(h.proc.stderr.String(), 30))
		}
		if ra, perr := strconv.Atoi(hdr.Get("Retry-After")); err == nil && perr == nil && ra > 0 {
			time.Sleep(min(time.Duration(ra)*time.Second, time.Second)) // honoured, capped: the test wants the earliest moment it is stored
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// postMinutesHeader is postMinutes that also returns the answer's header.
func postMinutesHeader(client *http.Client, url string, body []byte) (int, submitAnswer, []byte, http.Header, error) {
	req, err := http.NewRequest(http.MethodPost, url+"/api/v1/minutes", bytes.NewReader(body))
	if err != nil {
		return 0, submitAnswer{}, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, submitAnswer{}, nil, nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		return 0, submitAnswer{}, nil, nil, err
	}
	var a submitAnswer
	if resp.StatusCode == http.StatusAccepted {
		if err := json.Unmarshal(b.Bytes(), &a); err != nil {
			return resp.StatusCode, a, b.Bytes(), resp.Header, fmt.Errorf("bad 202 answer %s: %v", b.Bytes(), err)
		}
	}
	return resp.StatusCode, a, b.Bytes(), resp.Header, nil
}

// submitAll stores every minutes, 1–max per request, in order.
func (h *harness) submitAll(all []*minutes, maxPer int) {
	h.t.Helper()
	for len(all) > 0 {
		n := min(len(all), 1+h.rng.IntN(maxPer))
		h.store(all[:n], h.encode(all[:n]))
		all = all[n:]
	}
}

// TestFaultNATSRestart stops the (external) NATS server while a station
// submits, and starts it again on the same port and store. While it is
// down the gateway answers 503 with Retry-After (never 202); `tally submit`
// retries the same body (same Nats-Msg-Id) until it is stored; the fold
// reconnects by itself; and the results equal the reference.
func TestFaultNATSRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 20210601)
	all, stats := genMinutes(h.rng, h.w, 24)
	nats := startNATS(t)
	h.proc = startServe(t, h.electionFile, h.dataDir, "--nats", nats.url())

	// Some requests, then a large one that NATS stops right after: the
	// fold is still receiving and committing it when its server goes.
	third := len(all) / 3
	h.submitAll(all[:third/2], 5)
	h.store(all[third/2:third], h.encode(all[third/2:third]))
	all = all[third:]

	// NATS goes away while a one-minutes request is in flight. One
	// minutes per request: a request cut in half could otherwise be
	// stored in a different order by its retry.
	inflight := all[:1]
	all = all[1:]
	body := h.encode(inflight)
	type answer struct {
		code int
		resp []byte
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		code, _, resp, _, err := postMinutesHeader(h.client, h.proc.url, body)
		got <- answer{code, resp, err}
	}()
	time.Sleep(time.Duration(h.rng.IntN(3000)) * time.Microsecond)
	nats.stop()
	a := <-got
	pending := inflight
	if a.err == nil && a.code == http.StatusAccepted {
		h.ref.submit(inflight) // acknowledged before the server went away: stored
		h.requests++
		pending = all[:1]
		all = all[1:]
	} else if a.err != nil || a.code != http.StatusServiceUnavailable {
		t.Fatalf("request in flight when NATS stopped: %d %v %s; want 202 or 503", a.code, a.err, a.resp)
	}
	t.Logf("request in flight when NATS stopped: %d %s", a.code, bytes.TrimSpace(a.resp))

	// While NATS is down: 503 with Retry-After, never 202.
	body = h.encode(pending)
	for i := 0; i < 3; i++ {
		code, _, resp, hdr, err := postMinutesHeader(h.client, h.proc.url, body)
		if err != nil || code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
			t.Fatalf("submission while NATS is down: %d %v Retry-After %q %s; want 503 with Retry-After", code, err, hdr.Get("Retry-After"), resp)
		}
		if i == 0 {
			t.Logf("while NATS is down: %d %s", code, bytes.TrimSpace(resp))
		}
	}

	// `tally submit` retries the same body until NATS is back.
	file := filepath.Join(t.TempDir(), "pending.json")
	if err := os.WriteFile(file, body, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tallyBin, "submit", "--server", h.proc.url, "--retry-for", "60s", file)
	var out, errOut syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for !strings.Contains(errOut.String(), "retrying") {
		select {
		case err := <-done:
			t.Fatalf("tally submit exited (%v) while NATS was down; stdout %q stderr %q", err, out.String(), errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	down := time.Now()
	time.Sleep(500 * time.Millisecond)
	nats.start()
	t.Logf("NATS restarted after %s down", time.Since(down).Round(time.Millisecond))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tally submit: %v\nstdout %s\nstderr %s\nserver:\n%s", err, out.String(), errOut.String(), tail(h.proc.stderr.String(), 30))
		}
	case <-stalledOutput(t, &out, &errOut):
		cmd.Process.Kill()
		t.Fatalf("tally submit did not finish and printed nothing for %s after NATS restarted; stderr %s", stallWindow, errOut.String())
	}
	h.ref.submit(pending)
	h.requests++
	t.Logf("tally submit: %s; %d retries logged", strings.TrimSpace(out.String()), strings.Count(errOut.String(), "retrying"))

	h.submitAll(all, 5)
	st := waitCaughtUp(t, h.client, h.proc.url)
	compareAll(t, h.client, h.proc.url, h.ref, true)
	if !strings.Contains(h.proc.stderr.String(), "NATS connection back") {
		t.Errorf("tally did not log its reconnection; stderr:\n%s", tail(h.proc.stderr.String(), 30))
	}
	t.Logf("%s; %d requests; status %+v", stats, h.requests, st)
	if code := h.proc.stop(t); code != 0 {
		t.Errorf("tally serve exited %d after SIGTERM; stderr:\n%s", code, tail(h.proc.stderr.String(), 20))
	}
}

// tcpProxy forwards TCP connections to a target until cut: a network
// partition between tally and its NATS server that leaves both running.
type tcpProxy struct {
	ln net.Listener
	mu struct {
		sync.Mutex
		conns []net.Conn
		down  bool
	}
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); p.cut(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.mu.down
			p.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.mu.conns = append(p.mu.conns, c, u)
			p.mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); copyConn(u, c) }()
			go func() { defer wg.Done(); copyConn(c, u) }()
		}
	}()
	return p
}

func copyConn(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

// cut drops every connection (what is in flight is lost) and refuses new
// ones until restore.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.down = true
	for _, c := range p.mu.conns {
		c.Close()
	}
	p.mu.conns = nil
}

func (p *tcpProxy) restore() {
	p.mu.Lock()
	p.mu.down = false
	p.mu.Unlock()
}

// TestFaultNATSPartition cuts the TCP connection between tally and its NATS
// server (both keep running) while the fold is busy with a large request,
// and restores it: the gateway answers 503 meanwhile, tally reconnects by
// itself, and the fold misses nothing (see projections.Follower and the
// aggregator's seqCheck).
func TestFaultNATSPartition(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 20210602)
	all, stats := genMinutes(h.rng, h.w, 24)
	nats := startNATS(t)
	proxy := newTCPProxy(t, nats.addr)
	// Small fold batches: many commits, so the cut lands mid-stream.
	h.proc = startServe(t, h.electionFile, h.dataDir, "--nats", "nats://"+proxy.addr(), "--batch", "20")
	half := len(all) / 2
	h.store(all[:half], h.encode(all[:half]))
	var st apiStatus
	if err := getJSON(h.client, h.proc.url+"/api/v1/status", &st); err != nil {
		t.Fatal(err)
	}
	proxy.cut()
	t.Logf("cut with the fold at %d of %d", st.AppliedSeq, st.StreamSeq)
	body := h.encode(all[half : half+1])
	w := newStallWatch()
	for {
		code, _, resp, hdr, err := postMinutesHeader(h.client, h.proc.url, body)
		if err != nil || code == http.StatusAccepted {
			t.Fatalf("submission during the partition: %d %v %s; want 503", code, err, resp)
		}
		if code == http.StatusServiceUnavailable && hdr.Get("Retry-After") != "" {
			break
		}
		if w.stalled(len(h.proc.stderr.String())) {
			t.Fatalf("no 503 with Retry-After after the cut, and nothing logged for %s: %d %s", stallWindow, code, resp)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	proxy.restore()
	h.submitAll(all[half:], 5)
	st = waitCaughtUp(t, h.client, h.proc.url)
	compareAll(t, h.client, h.proc.url, h.ref, true)
	t.Logf("%s; status %+v", stats, st)
	if code := h.proc.stop(t); code != 0 {
		t.Errorf("tally serve exited %d after SIGTERM; stderr:\n%s", code, tail(h.proc.stderr.String(), 20))
	}
}

// genBigWorld is genWorld with extra wards: nLB more wards in Long Biên
// (in unit LB-01 of HDND-LB) and nGL in Gia Lâm (QH only), perWard
// stations each, so a long night keeps each station's history short.
func genBigWorld(rng *rand.Rand, nLB, nGL, perWard int) *world {
	w := genWorld(rng)
	e := w.file
	add := func(district string, n int) []string {
		var wards []string
		for i := 1; i <= n; i++ {
			id := fmt.Sprintf("%s-X%02d", district, i)
			wards = append(wards, id)
			e.Areas = append(e.Areas, gArea{ID: id, Name: fmt.Sprintf("Phường số %d", i), Level: "ward", Parent: district})
			for j := 1; j <= perWard; j++ {
				e.Stations = append(e.Stations, gStation{ID: fmt.Sprintf("%s-%02d", id, j), Name: fmt.Sprintf("Khu vực bỏ phiếu số %d", j),
					Ward: id, Registered: 800 + rng.Int64N(1200)})
			}
		}
		return wards
	}
	lb := add("LB", nLB)
	add("GL", nGL)
	u := &e.Contests[1].Units[0]
	u.Areas = append(append([]string{}, u.Areas...), lb...)
	return newWorld(e)
}

// TestFaultKillLargeBatches SIGKILLs tally while it folds requests of 2,000
// minutes with fold batches of up to 5,000: kills land while the gateway
// publishes, while the fold applies, and during large Pebble commits.
// Every restart must give exactly the reference.
func TestFaultKillLargeBatches(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5000, 2000))
	w := genBigWorld(rng, 12, 12, 12)
	dir := t.TempDir()
	h := &harness{t: t, rng: rng, w: w, electionFile: filepath.Join(dir, "election.json"), dataDir: filepath.Join(dir, "data"),
		client: &http.Client{Timeout: 60 * time.Second}, ref: newRefFold(w)}
	writeJSONFile(t, h.electionFile, w.file)
	all, stats := genMinutes(rng, w, 30)
	start := func() { h.proc = startServe(t, h.electionFile, h.dataDir, "--batch", "5000") }
	start()
	const per = 2000
	var kills, midFold, midRequest int
	for len(all) > 0 {
		n := min(per, len(all))
		batch := all[:n]
		all = all[n:]
		body := h.encode(batch)
		type answer struct {
			code int
			err  error
		}
		got := make(chan answer, 1)
		p := h.proc
		go func() {
			code, _, _, _, err := postMinutesHeader(h.client, p.url, body)
			got <- answer{code, err}
		}()
		var a answer
		if rng.IntN(3) == 0 {
			// Kill while the request is in flight.
			time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
			p.kill()
			a = <-got
			midRequest++
		} else {
			// Kill after the 202, while the fold applies and commits it.
			a = <-got
			time.Sleep(time.Duration(rng.IntN(4000)) * time.Microsecond)
			p.kill()
		}
		kills++
		start()
		var checkpoint uint64
		if m := regexp.MustCompile(`"fold started" checkpoint=(\d+)`).FindStringSubmatch(h.proc.stderr.String()); m != nil {
			checkpoint, _ = strconv.ParseUint(m[1], 10, 64)
		}
		if a.err == nil && a.code == http.StatusAccepted {
			h.ref.submit(batch)
			h.requests++
		} else {
			h.store(batch, body) // the identical body: what was stored is deduplicated
		}
		if st := waitCaughtUp(t, h.client, h.proc.url); checkpoint < st.StreamSeq && a.code == http.StatusAccepted {
			midFold++ // killed after the 202, before the fold committed all of it
		}
		compareAll(t, h.client, h.proc.url, h.ref, false)
		if t.Failed() {
			t.Fatalf("after kill %d; stderr:\n%s", kills, tail(h.proc.stderr.String(), 20))
		}
	}
	compareAll(t, h.client, h.proc.url, h.ref, true)
	t.Logf("%s; %d stations; %d kills (%d with a request in flight, %d after the 202 with the fold still behind); stream %d messages",
		stats, len(w.file.Stations), kills, midRequest, midFold, h.ref.streamSeq)
	if code := h.proc.stop(t); code != 0 {
		t.Errorf("tally serve exited %d after SIGTERM", code)
	}
}

// fullStatus is the status with the readiness state.
type fullStatus struct {
	apiStatus
	State string `json:"state"`
}

// damage functions for TestFaultProjectionsLostOrCorrupt: each harms the
// projections of a stopped server as a disk or an operator could.
func damageProjections(t *testing.T, how, dir string) {
	t.Helper()
	files := func(match func(string) bool) []string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ents {
			if match(e.Name()) {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
		return out
	}
	// flush writes the memtable to an sstable with Pebble itself (tally
	// keeps recent commits in its WAL), so that there is a table to harm.
	flush := func() {
		db, err := pebble.Open(dir, &pebble.Options{Logger: quietPebble{}})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	switch how {
	case "deleted":
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	case "garbage-manifest":
		ms := files(func(n string) bool { return strings.HasPrefix(n, "MANIFEST-") })
		if len(ms) == 0 {
			t.Fatal("no MANIFEST")
		}
		for _, m := range ms {
			f, err := os.OpenFile(m, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte("this is not a manifest, this is garbage"), 12)
			f.Close()
		}
	case "truncated-sstable", "garbled-sstable":
		flush()
		ssts := files(func(n string) bool { return strings.HasSuffix(n, ".sst") })
		if len(ssts) == 0 {
			t.Fatal("no sstable after a flush")
		}
		for _, p := range ssts {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if how == "truncated-sstable" {
				err = os.Truncate(p, st.Size()/2)
			} else {
				var f *os.File
				if f, err = os.OpenFile(p, os.O_WRONLY, 0); err == nil {
					_, err = f.WriteAt(bytes.Repeat([]byte{0xA5}, 64), st.Size()/3)
					f.Close()
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	case "bad-meta-record":
		db, err := pebble.Open(dir, &pebble.Options{Logger: quietPebble{}})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Set([]byte("m"), []byte("not a checkpoint"), pebble.Sync); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown damage %q", how)
	}
}

// TestFaultProjectionsLostOrCorrupt stops tally, harms its projections
// (deleted; garbage in the MANIFEST; a truncated or garbled sstable; a bad
// checkpoint record) and starts it again: it detects the damage at start,
// sets corrupt files aside, rebuilds the projections from the stream with
// the status saying "rebuilding" and results answering 503 with
// Retry-After until it has caught up, then serves exactly the reference.
func TestFaultProjectionsLostOrCorrupt(t *testing.T) {
	t.Parallel()
	for i, how := range []string{"deleted", "garbage-manifest", "truncated-sstable", "garbled-sstable", "bad-meta-record"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, uint64(31+i))
			all, _ := genMinutes(h.rng, h.w, 24)
			h.proc = startServe(t, h.electionFile, h.dataDir)
			h.store(all, h.encode(all))
			waitCaughtUp(t, h.client, h.proc.url)
			if code := h.proc.stop(t); code != 0 {
				t.Fatalf("tally serve exited %d after SIGTERM", code)
			}
			damageProjections(t, how, filepath.Join(h.dataDir, "projections"))

			// Small commits (130 fsyncs): the rebuild lasts long enough
			// to be seen from outside.
			h.proc = startServe(t, h.electionFile, h.dataDir, "--batch", "10")
			var st fullStatus
			if err := getJSON(h.client, h.proc.url+"/api/v1/status", &st); err != nil {
				t.Fatal(err)
			}
			if st.State != "rebuilding" || st.AppliedSeq >= st.StreamSeq {
				t.Fatalf("status right after a start on %s projections: %+v; want state rebuilding, applied_seq < stream_seq\nstderr:\n%s",
					how, st, tail(h.proc.stderr.String(), 10))
			}
			resp, err := h.client.Get(h.proc.url + "/api/v1/contests/QH/areas/HN")
			if err != nil {
				t.Fatal(err)
			}
			var msg bytes.Buffer
			msg.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Errorf("a result during the rebuild: %d (Retry-After %q) %s; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), msg.Bytes())
			}
			caught := waitCaughtUp(t, h.client, h.proc.url)
			if err := getJSON(h.client, h.proc.url+"/api/v1/status", &st); err != nil || st.State != "ready" {
				t.Errorf("status once caught up: %+v %v; want ready", st, err)
			}
			compareAll(t, h.client, h.proc.url, h.ref, true)
			logs := h.proc.stderr.String()
			if how == "deleted" {
				if !strings.Contains(logs, "rebuilding them from the stream") {
					t.Errorf("no log of the rebuild:\n%s", tail(logs, 10))
				}
			} else {
				if !strings.Contains(logs, "projections corrupt") {
					t.Errorf("no log of the corruption:\n%s", tail(logs, 10))
				}
				if _, err := os.Stat(filepath.Join(h.dataDir, "projections.corrupt")); err != nil {
					t.Errorf("the corrupt projections were not set aside: %v", err)
				}
			}
			if _, err := os.Stat(filepath.Join(h.dataDir, "projections.rebuilding")); err == nil {
				t.Errorf("the rebuild marker is still there once caught up")
			}
			t.Logf("during the rebuild: %s; caught up at %d", bytes.TrimSpace(msg.Bytes()), caught.AppliedSeq)
			if code := h.proc.stop(t); code != 0 {
				t.Errorf("tally serve exited %d after SIGTERM", code)
			}
		})
	}
}

// copyDir copies a directory tree (regular files only).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o750)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o640)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFaultStreamBehindCheckpoint rolls the embedded NATS store back to an
// older copy (a broker that lost acknowledged minutes): `tally serve`
// refuses to start, exit 1, naming `tally rebuild`; after the rebuild it
// serves what the older stream holds.
func TestFaultStreamBehindCheckpoint(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 20210603)
	all, _ := genMinutes(h.rng, h.w, 10)
	h.proc = startServe(t, h.electionFile, h.dataDir)
	half := len(all) / 2
	h.submitAll(all[:half], 5)
	waitCaughtUp(t, h.client, h.proc.url)
	if code := h.proc.stop(t); code != 0 {
		t.Fatalf("tally serve exited %d", code)
	}
	natsDir := filepath.Join(h.dataDir, "nats")
	backup := filepath.Join(t.TempDir(), "nats")
	copyDir(t, natsDir, backup)
	old := newRefFold(h.w) // what the older copy holds
	for _, m := range all[:half] {
		old.submit([]*minutes{m})
	}

	h.proc = startServe(t, h.electionFile, h.dataDir)
	h.submitAll(all[half:], 5)
	waitCaughtUp(t, h.client, h.proc.url)
	if code := h.proc.stop(t); code != 0 {
		t.Fatalf("tally serve exited %d", code)
	}
	if err := os.RemoveAll(natsDir); err != nil {
		t.Fatal(err)
	}
	copyDir(t, backup, natsDir)

	res := runTally(t, 60*time.Second, nil, "serve", "--election", h.electionFile, "--data", h.dataDir, "--http", freeAddr(t), "--nats-listen", "none")
	if res.code != 1 || !strings.Contains(res.stderr, "tally rebuild") || !strings.Contains(res.stderr, "behind the checkpoint") {
		t.Fatalf("tally serve on a stream behind the checkpoint: exit %d, stderr:\n%s\nwant exit 1 naming `tally rebuild`", res.code, res.stderr)
	}
	t.Logf("refused: %s", strings.TrimSpace(res.stderr))

	res = runTally(t, 60*time.Second, nil, "rebuild", "--election", h.electionFile, "--data", h.dataDir)
	if res.code != 0 {
		t.Fatalf("tally rebuild: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	h.proc = startServe(t, h.electionFile, h.dataDir)
	waitCaughtUp(t, h.client, h.proc.url)
	compareAll(t, h.client, h.proc.url, old, true)
	if code := h.proc.stop(t); code != 0 {
		t.Errorf("tally serve exited %d", code)
	}
}

// quietPebble drops Pebble's informational logs in the tests that open a
// store directly.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)         {}
func (quietPebble) Errorf(f string, args ...any) { pebble.DefaultLogger.Errorf(f, args...) }
func (quietPebble) Fatalf(f string, args ...any) { pebble.DefaultLogger.Fatalf(f, args...) }

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory, unmounted
// when the test ends (after the servers it runs are stopped: register it
// first). It skips the test where mounting is not permitted.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN), so no real full disk to test on: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk writes a file until the filesystem is full and returns its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			break
		}
	}
	for n := len(chunk) / 2; n > 0; n /= 2 { // the last crumbs
		if _, err := f.Write(chunk[:n]); err != nil && !errors.Is(err, syscall.ENOSPC) {
			t.Fatal(err)
		}
	}
	return p
}

// TestFaultDiskFull runs tally with its data directory on a small tmpfs,
// fills the filesystem to the last byte, and checks that ingest fails
// loudly (503 naming the full disk, with Retry-After; nothing stored, no
// 202), that the server stays up, and that once the space is freed the
// same requests are stored and the results equal the reference.
func TestFaultDiskFull(t *testing.T) {
	t.Parallel()
	mnt := mountTmpfs(t, 256<<20)
	h := newHarness(t, 20210604)
	h.dataDir = filepath.Join(mnt, "data")
	all, stats := genMinutes(h.rng, h.w, 12)
	h.proc = startServe(t, h.electionFile, h.dataDir)
	half := len(all) / 2
	h.submitAll(all[:half], 5)
	before := waitCaughtUp(t, h.client, h.proc.url)

	filler := fillDisk(t, mnt)
	var fs syscall.Statfs_t
	if err := syscall.Statfs(mnt, &fs); err != nil {
		t.Fatal(err)
	}
	t.Logf("disk full: %d bytes free", fs.Bavail*uint64(fs.Bsize))
	next := all[half : half+3]
	body := h.encode(next)
	for i := 0; i < 3; i++ {
		code, _, resp, hdr, err := postMinutesHeader(h.client, h.proc.url, body)
		if err != nil || code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(string(resp), "disk full") {
			t.Fatalf("submission on a full disk: %d %v Retry-After %q %s; want 503 naming the full disk, with Retry-After", code, err, hdr.Get("Retry-After"), resp)
		}
		if i == 0 {
			t.Logf("on a full disk: %d %s", code, bytes.TrimSpace(resp))
		}
	}
	var st fullStatus
	if err := getJSON(h.client, h.proc.url+"/api/v1/status", &st); err != nil {
		t.Fatal(err)
	}
	if st.StreamSeq != before.StreamSeq || st.AppliedSeq != before.AppliedSeq {
		t.Fatalf("status after refusals on a full disk %+v, before %+v: something was stored", st, before)
	}
	compareAll(t, h.client, h.proc.url, h.ref, false) // results still served, unchanged

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if refused := h.store(next, body); refused > 0 {
		t.Errorf("the same request was refused %d more times once space was freed", refused)
	}
	h.submitAll(all[half+3:], 5)
	waitCaughtUp(t, h.client, h.proc.url)
	compareAll(t, h.client, h.proc.url, h.ref, true)
	t.Logf("%s", stats)
	if code := h.proc.stop(t); code != 0 {
		t.Errorf("tally serve exited %d after SIGTERM; stderr:\n%s", code, tail(h.proc.stderr.String(), 20))
	}
}

// TestFaultGracefulShutdown sends SIGTERM while eight stations submit one
// minutes per request: every request that reached a handler gets its answer
// (202 means stored), the fold commits what the stream holds before exit,
// and the restart replays nothing: the fold starts at checkpoint = the
// stream's last sequence, status applied_seq = stream_seq from the first
// answer, and the counters equal the reference (nothing applied twice).
func TestFaultGracefulShutdown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 20210605)
	all, _ := genMinutes(h.rng, h.w, 10)
	h.proc = startServe(t, h.electionFile, h.dataDir)

	type stored struct {
		seq uint64
		m   *minutes
	}
	var (
		mu       sync.Mutex
		accepted []stored
		failed   []*minutes // not answered 202: retried after the restart
		next     int
		refused  = map[int]int{}
	)
	take := func() *minutes {
		mu.Lock()
		defer mu.Unlock()
		if next >= len(all) {
			return nil
		}
		next++
		return all[next-1]
	}
	p := h.proc
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 20 * time.Second}
			for m := take(); m != nil; m = take() {
				body, _ := json.Marshal(m)
				code, ans, _, _, err := postMinutesHeader(client, p.url, body)
				mu.Lock()
				if err == nil && code == http.StatusAccepted {
					accepted = append(accepted, stored{ans.Seq, m})
				} else {
					failed = append(failed, m)
					refused[code]++
				}
				mu.Unlock()
			}
		}()
	}
	// SIGTERM once a third is in, with requests in flight.
	for {
		mu.Lock()
		n := next
		mu.Unlock()
		if n >= len(all)/3 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("tally serve exited %d after SIGTERM; stderr:\n%s", code, tail(p.stderr.String(), 20))
	}
	wg.Wait()
	logs := p.stderr.String()

	// The reference gets the acknowledged minutes in stream order.
	sort.Slice(accepted, func(i, j int) bool { return accepted[i].seq < accepted[j].seq })
	for _, s := range accepted {
		h.ref.submit([]*minutes{s.m})
	}
	h.requests = len(accepted)

	h.proc = startServe(t, h.electionFile, h.dataDir)
	var st fullStatus
	if err := getJSON(h.client, h.proc.url+"/api/v1/status", &st); err != nil {
		t.Fatal(err)
	}
	if st.AppliedSeq != st.StreamSeq || st.StreamSeq != h.ref.streamSeq || st.State != "ready" {
		t.Errorf("first status after a clean shutdown: %+v; want applied_seq = stream_seq = %d (every minutes answered 202, nothing else), ready", st, h.ref.streamSeq)
	}
	want := fmt.Sprintf(`"fold started" checkpoint=%d `, h.ref.streamSeq)
	for w := newStallWatch(); !strings.Contains(h.proc.stderr.String(), want) && !w.stalled(len(h.proc.stderr.String())); {
		time.Sleep(5 * time.Millisecond) // the fold logs its start just after the first answers
	}
	if !strings.Contains(h.proc.stderr.String(), want) {
		t.Errorf("the restarted fold did not start at the last sequence (%q); stderr:\n%s", want, tail(h.proc.stderr.String(), 10))
	}
	compareAll(t, h.client, h.proc.url, h.ref, true) // counters: nothing applied twice
	t.Logf("before SIGTERM: %d minutes answered 202, %d not (%v) of %d sent; shutdown log:\n%s",
		len(accepted), len(failed), refused, next, tail(logs, 3))

	// The rest, and those not answered, go in now.
	rest := append(failed, all[next:]...)
	for _, m := range rest {
		h.store([]*minutes{m}, func() []byte { b, _ := json.Marshal(m); return b }())
	}
	waitCaughtUp(t, h.client, h.proc.url)
	compareAll(t, h.client, h.proc.url, h.ref, true)
	if code := h.proc.stop(t); code != 0 {
		t.Errorf("tally serve exited %d", code)
	}
}
