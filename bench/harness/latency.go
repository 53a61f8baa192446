package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tallyvn/tally/bench/workload"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/server"
	"github.com/tallyvn/tally/tally"
)

// The latency phase. A full server (server.New: gateway, embedded NATS,
// fold, SSE hub) runs on a fresh stream. One unfiltered SSE client reads
// every change. At each offered load, requests are due at fixed intervals
// (open loop) and sent by Conns senders over as many connections, one
// minutes per POST; each is final minutes of a (contest, station) with a
// version higher than any before, so every one is applied and changes its
// ward's result. A POST answered 202 with seq S is seen when an event for
// its ward's result arrives with an id (the applied_seq of the result) of S
// or more: the fold committed it and the hub sent it. Its latency runs from
// the time it was due, not the time a sender got to it, so a saturated
// server shows in the figures instead of slowing the load down.

// template is final minutes of one (contest, station), compact: the votes
// are dense over the unit's candidates.
type template struct {
	station, contest int32
	counts           tally.Counts
	votes            []int64
}

// templates collects up to n final minutes from the night, one per
// (contest, station), in the order the night sends them.
func templates(e *tally.Election, cfg *Config, n int) ([]template, error) {
	var out []template
	errEnough := errors.New("enough")
	err := workload.Night(e, nightConfig(cfg), func(sub *workload.Submission) error {
		if sub.Kind != workload.Final {
			return nil
		}
		c, s := sub.Contest, sub.Station
		unit := &e.Contests[c].Units[e.StationUnit(c, s)]
		t := template{station: int32(s), contest: int32(c), counts: sub.Minutes.Counts, votes: make([]int64, len(unit.Candidates))}
		for _, v := range sub.Minutes.Votes {
			for k := range unit.Candidates {
				if unit.Candidates[k].ID == v.Candidate {
					t.votes[k] = v.Count
				}
			}
		}
		out = append(out, t)
		if len(out) >= n {
			return errEnough
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("the night has no final minutes")
	}
	return out, nil
}

// minutes fills m with request i's minutes: template i mod len(ts), at
// version i / len(ts) + 1, one vote short for the largest count on odd
// rounds, so every request changes its ward's figures.
func minutes(e *tally.Election, ts []template, i int, m *tally.Minutes) {
	t := &ts[i%len(ts)]
	round := i / len(ts)
	c, s := int(t.contest), int(t.station)
	unit := &e.Contests[c].Units[e.StationUnit(c, s)]
	*m = tally.Minutes{
		Election: e.ID, Contest: e.Contests[c].ID, Station: e.Stations[s].ID,
		Version: int64(round + 1), Status: tally.Final, Counts: t.counts, Present: tally.HasAllCounts,
		Votes: m.Votes[:0],
	}
	top := 0
	for k, v := range t.votes {
		if v > t.votes[top] {
			top = k
		}
	}
	for k, v := range t.votes {
		if k == top && round%2 == 1 && v > 0 {
			v--
		}
		m.Votes = append(m.Votes, tally.Vote{Candidate: unit.Candidates[k].ID, Count: v})
	}
}

// tracker matches accepted POSTs with the SSE events that show them.
type tracker struct {
	e  *tally.Election
	mu struct {
		sync.Mutex
		keys    map[int64]*keyState
		samples []time.Duration // due to seen
		acks    []time.Duration // due to 202
		seen    int
	}
}

type sentReq struct {
	seq uint64
	due time.Time
}

type sseEvent struct {
	seq uint64
	at  time.Time
}

// keyState is one ward result's waiting requests and its last events.
type keyState struct {
	pending []sentReq
	recent  [8]sseEvent // ring, by arrival
	next    int
}

func newTracker(e *tally.Election) *tracker {
	t := &tracker{e: e}
	t.mu.keys = map[int64]*keyState{}
	return t
}

func (t *tracker) key(contest, area int) int64 {
	return int64(contest)*int64(len(t.e.Areas)) + int64(area)
}

func (t *tracker) state(k int64) *keyState {
	ks := t.mu.keys[k]
	if ks == nil {
		ks = &keyState{}
		t.mu.keys[k] = ks
	}
	return ks
}

// accepted records a 202 for seq in ward result k.
func (t *tracker) accepted(k int64, seq uint64, due, answered time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.acks = append(t.mu.acks, answered.Sub(due))
	ks := t.state(k)
	// The change may have arrived before the answer did: take the earliest
	// event that covers seq.
	var best *sseEvent
	for i := range ks.recent {
		ev := &ks.recent[i]
		if ev.seq >= seq && !ev.at.IsZero() && (best == nil || ev.at.Before(best.at)) {
			best = ev
		}
	}
	if best != nil {
		t.mu.samples = append(t.mu.samples, best.at.Sub(due))
		t.mu.seen++
		return
	}
	ks.pending = append(ks.pending, sentReq{seq: seq, due: due})
}

// event records an SSE event for result k at applied_seq seq.
func (t *tracker) event(k int64, seq uint64, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ks := t.state(k)
	ks.recent[ks.next] = sseEvent{seq: seq, at: at}
	ks.next = (ks.next + 1) % len(ks.recent)
	keep := ks.pending[:0]
	for _, p := range ks.pending {
		if p.seq <= seq {
			t.mu.samples = append(t.mu.samples, at.Sub(p.due))
			t.mu.seen++
			continue
		}
		keep = append(keep, p)
	}
	ks.pending = keep
}

// take returns and clears the samples gathered so far.
func (t *tracker) take() (samples, acks []time.Duration, seen int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	samples, acks, seen = t.mu.samples, t.mu.acks, t.mu.seen
	t.mu.samples, t.mu.acks, t.mu.seen = nil, nil, 0
	for _, ks := range t.mu.keys {
		ks.pending = ks.pending[:0]
	}
	return samples, acks, seen
}

func (t *tracker) seenCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.seen
}

// readSSE reads the event stream at url until ctx is done, feeding every
// area result's event to t. It counts the bytes read in n.
func readSSE(ctx context.Context, client *http.Client, url string, t *tracker, ready chan<- error, n *atomic.Int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		ready <- err
		return err
	}
	// On a fresh server, "0" skips the initial state of every result.
	req.Header.Set("Last-Event-ID", "0")
	resp, err := client.Do(req)
	if err != nil {
		ready <- err
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("GET %s: %s", url, resp.Status)
		ready <- err
		return err
	}
	ready <- nil
	br := bufio.NewReaderSize(resp.Body, 1<<20)
	var id uint64
	for {
		line, err := br.ReadSlice('\n')
		n.Add(int64(len(line)))
		full := err == nil
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		switch {
		case bytes.HasPrefix(line, []byte("id: ")):
			id, _ = strconv.ParseUint(string(bytes.TrimSpace(line[4:])), 10, 64)
		case bytes.HasPrefix(line, []byte("data: ")):
			// {"contest":"QH","area":"X",...}: only the prefix is needed.
			if c, a, ok := areaOf(line[6:]); ok {
				ci, ok1 := t.e.ContestIndex(c)
				ai, ok2 := t.e.AreaIndex(a)
				if ok1 && ok2 {
					t.event(t.key(ci, ai), id, time.Now())
				}
			}
		}
		for !full { // the rest of a long line
			line, err = br.ReadSlice('\n')
			n.Add(int64(len(line)))
			full = err == nil
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

// areaOf returns the contest and area of an area result's JSON, from its
// first fields; ok is false for a unit result.
func areaOf(data []byte) (contest, area string, ok bool) {
	const c, a = `{"contest":"`, `","area":"`
	if !bytes.HasPrefix(data, []byte(c)) {
		return "", "", false
	}
	rest := data[len(c):]
	i := bytes.IndexByte(rest, '"')
	if i < 0 {
		return "", "", false
	}
	contest, rest = string(rest[:i]), rest[i:]
	if !bytes.HasPrefix(rest, []byte(a)) {
		return "", "", false
	}
	rest = rest[len(a):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return "", "", false
	}
	return contest, string(rest[:j]), true
}

// latency runs the latency phase.
func (r *runner) latency(ctx context.Context) error {
	cfg := r.cfg
	e := r.e
	total := 0
	for _, l := range cfg.Loads {
		total += int(float64(l) * cfg.LoadDuration.Seconds())
	}
	ts, err := templates(e, cfg, total)
	if err != nil {
		return err
	}
	if len(ts) < total {
		r.logf("latency: %d requests over %d (contest, station): versions cycle every %d requests", total, len(ts), len(ts))
	}

	srvCtx, stopSrv := context.WithCancel(ctx)
	defer stopSrv()
	srv, err := server.New(srvCtx, server.Config{
		Election: e,
		DataDir:  filepath.Join(r.tmp, "latency"),
		HTTP:     server.HTTPConfig{Addr: "127.0.0.1:0"},
		NATS:     server.NATSConfig{URL: cfg.NATSURL, Listen: "none"},
		Fold:     server.FoldConfig{BatchSize: cfg.BatchSize},
	})
	if err != nil {
		return fmt.Errorf("start server: %w", err)
	}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Run(srvCtx) }()
	defer func() {
		stopSrv()
		if err := <-srvErr; err != nil {
			r.problem("latency server: %v", err)
		}
	}()
	base := "http://" + srv.Addr()

	transport := &http.Transport{
		MaxIdleConns:        cfg.Conns + 1,
		MaxIdleConnsPerHost: cfg.Conns + 1,
		MaxConnsPerHost:     cfg.Conns + 1,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}

	t := newTracker(e)
	var sseBytes atomic.Int64
	sseCtx, stopSSE := context.WithCancel(ctx)
	ready := make(chan error, 1)
	sseDone := make(chan error, 1)
	go func() { sseDone <- readSSE(sseCtx, client, base+"/api/v1/stream", t, ready, &sseBytes) }()
	defer func() {
		stopSSE()
		<-sseDone
	}()
	if err := <-ready; err != nil {
		return err
	}

	next := 0 // index of the next request, over every load
	for _, load := range cfg.Loads {
		resetPeakRSS()
		before := sseBytes.Load()
		res, err := r.offer(ctx, client, base, t, ts, next, load)
		if err != nil {
			return err
		}
		next += res.Scheduled
		res.SSEMiB = float64(sseBytes.Load()-before) / mib
		res.PeakRSSMB = peakRSSMiB()
		r.overallPeak = max(r.overallPeak, res.PeakRSSMB)
		r.res.Latency = append(r.res.Latency, res)
		r.logf("latency at %d/s offered: achieved %.0f/s, %d accepted, %d failed, %d not sent, %d missing; POST→SSE p50 %.1f ms, p99 %.1f ms, max %.1f ms (POST→202 p50 %.1f ms, p99 %.1f ms)",
			load, res.AchievedPerS, res.Accepted, res.Failed, res.NotSent, res.Missing, res.P50Ms, res.P99Ms, res.MaxMs, res.AckP50Ms, res.AckP99Ms)
		if err := waitCaughtUp(ctx, client, base, time.Minute); err != nil {
			return err
		}
	}
	return nil
}

// offer sends load requests per second for cfg.LoadDuration, requests
// first, first+1, ... A request still queued cfg.LoadGrace after the last
// one was due is not sent. Then it waits at most cfg.LoadGrace more for the
// SSE events of the accepted ones.
func (r *runner) offer(ctx context.Context, client *http.Client, base string, t *tracker, ts []template, first, load int) (Latency, error) {
	cfg := r.cfg
	e := r.e
	n := int(float64(load) * cfg.LoadDuration.Seconds())
	res := Latency{OfferedPerS: load, Scheduled: n}
	type job struct {
		i   int
		due time.Time
	}
	jobs := make(chan job, n) // never blocks the schedule: open loop
	start := time.Now().Add(20 * time.Millisecond)
	deadline := start.Add(cfg.LoadDuration + cfg.LoadGrace)
	interval := time.Duration(float64(time.Second) / float64(load))

	var accepted, failed, notSent atomic.Int64
	var lastAnswer atomic.Int64 // unix nanos
	var wg sync.WaitGroup
	url := base + "/api/v1/minutes"
	for range cfg.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var m tally.Minutes
			var body []byte
			var ans server.SubmitResponse
			for j := range jobs {
				if time.Now().After(deadline) || ctx.Err() != nil {
					notSent.Add(1)
					continue
				}
				minutes(e, ts, first+j.i, &m)
				body = events.AppendJSON(body[:0], &m)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				if err != nil {
					failed.Add(1)
					continue
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				data, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				now := time.Now()
				if err != nil || resp.StatusCode != http.StatusAccepted || json.Unmarshal(data, &ans) != nil {
					failed.Add(1)
					continue
				}
				accepted.Add(1)
				lastAnswer.Store(now.UnixNano())
				tp := &ts[(first+j.i)%len(ts)]
				t.accepted(t.key(int(tp.contest), e.StationAreas(int(tp.station))[0]), ans.Seq, j.due, now)
			}
		}()
	}
	// The schedule: request i is due at start + i × interval.
	for i := 0; i < n; {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		for now := time.Now(); i < n; i++ {
			due := start.Add(time.Duration(i) * interval)
			if due.After(now) {
				break
			}
			jobs <- job{i: i, due: due}
		}
	}
	close(jobs)
	wg.Wait()
	// The last events may still be on their way: wait for them as long
	// again as the grace.
	for wait := time.Now().Add(cfg.LoadGrace); t.seenCount() < int(accepted.Load()) && time.Now().Before(wait); {
		time.Sleep(5 * time.Millisecond)
	}
	samples, acks, seen := t.take()
	res.Accepted, res.Failed, res.NotSent, res.Seen = int(accepted.Load()), int(failed.Load()), int(notSent.Load()), seen
	res.Missing = res.Accepted - seen
	if last := lastAnswer.Load(); last > 0 {
		res.Seconds = time.Unix(0, last).Sub(start).Seconds()
		res.AchievedPerS = float64(res.Accepted) / res.Seconds
	}
	res.P50Ms, res.P99Ms, res.MaxMs = percentiles(samples)
	res.AckP50Ms, res.AckP99Ms, _ = percentiles(acks)
	if res.Failed > 0 || res.Missing > 0 || res.NotSent > 0 {
		r.problem("latency at %d/s: %d failed, %d not sent before the grace ended, %d accepted but not seen on the SSE stream", load, res.Failed, res.NotSent, res.Missing)
	}
	return res, ctx.Err()
}

// percentiles returns p50, p99 and max in milliseconds.
func percentiles(d []time.Duration) (p50, p99, maxMs float64) {
	if len(d) == 0 {
		return 0, 0, 0
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		i := min(len(d)-1, int(q*float64(len(d))))
		return float64(d[i]) / float64(time.Millisecond)
	}
	return at(0.50), at(0.99), float64(d[len(d)-1]) / float64(time.Millisecond)
}

// waitCaughtUp polls the server's status until the fold has applied the
// whole stream.
func waitCaughtUp(ctx context.Context, client *http.Client, base string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/status", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		var st server.Status
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("status: %w", err)
		}
		if st.AppliedSeq >= st.StreamSeq {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the fold is still at %d of %d after %s", st.AppliedSeq, st.StreamSeq, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
