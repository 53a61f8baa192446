// Package load drives a tally server with many simulated polling stations
// submitting as fast as they can, then checks that the results equal a
// reference computed here, and reports what the server held: requests per
// second, latency of the 202 answers, fold lag, memory, and every refusal
// by kind.
//
// Each station is one goroutine. For a fixed time it submits, in rounds,
// partial minutes of every contest it votes in (one request per round,
// version r for round r, counts growing); when the time is up it submits
// its final minutes (the next version) and retries them, honouring
// Retry-After with jitter, until they are stored. A refused partial is not
// retried: the next round's higher version supersedes it, as a station
// would do. So at the end every participating station's current minutes
// are its finals, and every version answered 202 must appear, applied, in
// its history: the reference (plain sums of the finals over each area and
// unit, no code shared with package projections) is what every area and
// unit result must equal.
//
// Traffic stays on the loopback interface: Run starts the server itself,
// in process, with an embedded NATS server that does not listen.
package load

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tallyvn/tally/bench/workload"
	"github.com/tallyvn/tally/server"
	"github.com/tallyvn/tally/tally"
)

// Config configures Run.
type Config struct {
	// Stations is the number of simulated stations (the first Stations of
	// the election). Default 2,000.
	Stations int
	// Duration is how long stations submit partial minutes. Default 30 s.
	Duration time.Duration
	// Scale of the generated national election (bench/workload); 0.05,
	// about 4,000 stations, by default.
	Scale float64
	// Seed of the generated election.
	Seed uint64
	// DataDir for the server; "" uses a temporary directory, removed after.
	DataDir string
	// Server adjusts the server's configuration (backpressure bounds,
	// batch size) before it starts; nil keeps the defaults.
	Server func(*server.Config)
	// Logger for the server; nil discards.
	Logger *slog.Logger
	// Progress, if set, receives a line every second.
	Progress io.Writer
	// StallWindow is how long the server may make no progress at all (its
	// stream not growing, its fold not applying, no minutes answered 202)
	// while stations still wait for it, before Run gives up. Every wait is
	// bounded by this, never by a count of attempts or a fixed time, so a
	// slow machine makes a run longer, not a failure. Default 2 minutes.
	StallWindow time.Duration
}

func (c *Config) ensureDefaults() {
	if c.Stations <= 0 {
		c.Stations = 2000
	}
	if c.Duration <= 0 {
		c.Duration = 30 * time.Second
	}
	if c.Scale == 0 {
		c.Scale = 0.05
	}
	if c.StallWindow <= 0 {
		c.StallWindow = 2 * time.Minute
	}
}

// progress records when the server last moved: its stream grew, its fold
// applied, or a submission was answered 202.
type progress struct {
	last            atomic.Int64 // UnixNano
	stream, applied atomic.Uint64
}

func newProgress() *progress {
	p := &progress{}
	p.mark()
	return p
}

func (p *progress) mark() { p.last.Store(time.Now().UnixNano()) }

// idle returns how long ago the server last made progress.
func (p *progress) idle() time.Duration {
	return time.Since(time.Unix(0, p.last.Load()))
}

// watch polls the server's status until ctx is done and marks progress
// whenever the stream or the fold moved.
func (r *runner) watch(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/api/v1/status", nil)
		if err != nil {
			return
		}
		if resp, err := r.client.Do(req); err == nil {
			var st server.Status
			if resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&st) == nil {
				if st.StreamSeq > r.progress.stream.Load() || st.AppliedSeq > r.progress.applied.Load() {
					r.progress.stream.Store(st.StreamSeq)
					r.progress.applied.Store(st.AppliedSeq)
					r.progress.mark()
				}
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Report is what a run measured.
type Report struct {
	Stations, Contests int
	Duration           time.Duration // of the partials phase
	Accepted           int           // requests answered 202
	Minutes            int           // minutes in them
	// RequestsPerSec is Accepted over the whole run; MinPerSec the
	// slowest whole second of the partials phase (what was held).
	RequestsPerSec, MinPerSec float64
	P50, P99, Max             time.Duration // latency of 202 answers
	FoldLagP99                time.Duration // from tally_fold_lag_seconds (bucket upper bound)
	PeakRSS                   int64         // bytes, the whole process (server and stations)
	PeakHeap                  uint64        // bytes in use on the Go heap, sampled
	Errors                    map[string]int
	StreamSeq, AppliedSeq     uint64
	Drain                     time.Duration // from the last final stored to the fold caught up
	Checked                   int           // results compared with the reference
	Mismatches                []string
}

// String formats the report as the lines RELIABILITY.md quotes.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "stations %d (%d contests), partials for %s then finals\n", r.Stations, r.Contests, r.Duration)
	fmt.Fprintf(&b, "requests answered 202: %d (%d minutes); %.0f requests/s overall, slowest second %.0f/s\n", r.Accepted, r.Minutes, r.RequestsPerSec, r.MinPerSec)
	fmt.Fprintf(&b, "latency of 202 answers: p50 %s, p99 %s, max %s\n", r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond))
	lag := "≤ " + r.FoldLagP99.String()
	if r.FoldLagP99 == time.Duration(math.MaxInt64) {
		lag = "above the histogram's largest bucket"
	}
	fmt.Fprintf(&b, "fold lag p99 %s; fold caught up %s after the last final; stream %d, applied %d\n", lag, r.Drain.Round(time.Millisecond), r.StreamSeq, r.AppliedSeq)
	fmt.Fprintf(&b, "peak RSS %.0f MiB (server and stations in one process), peak Go heap in use %.0f MiB\n", float64(r.PeakRSS)/(1<<20), float64(r.PeakHeap)/(1<<20))
	kinds := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	b.WriteString("refusals and errors:")
	if len(kinds) == 0 {
		b.WriteString(" none")
	}
	for _, k := range kinds {
		fmt.Fprintf(&b, " %s %d;", k, r.Errors[k])
	}
	fmt.Fprintf(&b, "\nresults compared with the reference: %d, mismatches %d\n", r.Checked, len(r.Mismatches))
	for i, m := range r.Mismatches {
		if i == 10 {
			fmt.Fprintf(&b, "  ... and %d more\n", len(r.Mismatches)-10)
			break
		}
		fmt.Fprintf(&b, "  %s\n", m)
	}
	return b.String()
}

// Run generates the election, starts a server, plays the stations against
// it and checks the results. An error means the run could not be made; a
// wrong result is reported in Report.Mismatches.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.ensureDefaults()
	file, err := workload.National(workload.NationalConfig{Seed: cfg.Seed, Scale: cfg.Scale})
	if err != nil {
		return nil, err
	}
	e, err := file.Parse()
	if err != nil {
		return nil, err
	}
	if cfg.Stations > len(e.Stations) {
		return nil, fmt.Errorf("load: %d stations asked, the election has %d", cfg.Stations, len(e.Stations))
	}
	dir := cfg.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "tallyload-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	}
	scfg := server.Config{Election: e, DataDir: dir, Logger: cfg.Logger,
		HTTP: server.HTTPConfig{Addr: "127.0.0.1:0"}, NATS: server.NATSConfig{Listen: "none"}}
	if cfg.Server != nil {
		cfg.Server(&scfg)
	}
	srv, err := server.New(ctx, scfg)
	if err != nil {
		return nil, err
	}
	srvCtx, stop := context.WithCancel(context.Background())
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(srvCtx) }()
	defer func() {
		stop()
		<-srvDone
	}()
	base := "http://" + srv.Addr()

	r := &runner{cfg: cfg, e: e, base: base, rep: &Report{Stations: cfg.Stations, Contests: len(e.Contests), Errors: map[string]int{}}}
	r.client = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		MaxIdleConns: cfg.Stations + 16, MaxIdleConnsPerHost: cfg.Stations + 16, IdleConnTimeout: time.Minute,
	}}
	defer r.client.CloseIdleConnections()
	r.progress = newProgress()
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		r.watch(watchCtx)
	}()
	defer func() {
		stopWatch()
		<-watchDone
	}()
	if err := r.play(ctx); err != nil {
		return r.rep, err
	}
	if err := r.check(ctx, srv); err != nil {
		return r.rep, err
	}
	return r.rep, nil
}

type runner struct {
	cfg      Config
	e        *tally.Election
	base     string
	client   *http.Client
	rep      *Report
	progress *progress

	mu struct {
		sync.Mutex
		latencies []time.Duration
		perSecond []int // 202 answers per second of the partials phase
		errors    map[string]int
	}
	// finals and accepted, by station index: written by that station's
	// goroutine only, read after they all ended.
	finals   [][]minutesJSON
	accepted [][]acceptedVersion
}

type acceptedVersion struct {
	contest string
	version int64
}

// minutesJSON is one minutes object of CONTRACT §3.
type minutesJSON struct {
	Election   string           `json:"election"`
	Contest    string           `json:"contest"`
	Station    string           `json:"station"`
	Version    int64            `json:"version"`
	Status     string           `json:"status"`
	Registered int64            `json:"registered"`
	Voted      int64            `json:"voted"`
	Issued     int64            `json:"issued"`
	Received   int64            `json:"received"`
	Valid      int64            `json:"valid"`
	Invalid    int64            `json:"invalid"`
	Votes      map[string]int64 `json:"votes"`
}

// minutes returns station s's minutes for contest c at round (final: the
// full count). Counts grow with the round and stay within every rule.
func (r *runner) minutes(c, s int, round int64, final bool) minutesJSON {
	st := &r.e.Stations[s]
	contest := &r.e.Contests[c]
	unit := &contest.Units[r.e.StationUnit(c, s)]
	rng := rand.New(rand.NewPCG(uint64(s)<<8|uint64(c), 0x10ad))
	reg := st.Registered
	voted := reg * (70 + rng.Int64N(25)) / 100
	received := voted
	if !final {
		received = min(voted, round*max(1, voted/40))
	}
	invalid := received / 50
	valid := received - invalid
	m := minutesJSON{Election: r.e.ID, Contest: contest.ID, Station: st.ID, Version: round, Status: "partial",
		Registered: reg, Voted: voted, Issued: voted, Received: received, Valid: valid, Invalid: invalid,
		Votes: make(map[string]int64, len(unit.Candidates))}
	if final {
		m.Status = "final"
	}
	// Shares summing to less than one: each candidate ≤ valid, and the sum
	// ≤ valid ≤ valid × seats.
	w := make([]int64, len(unit.Candidates))
	var sum int64
	for k := range w {
		w[k] = 1 + rng.Int64N(100)
		sum += w[k]
	}
	for k, cand := range unit.Candidates {
		m.Votes[cand.ID] = valid * w[k] / sum
	}
	return m
}

func (r *runner) contestsOf(s int) []int {
	var cs []int
	for c := range r.e.Contests {
		if r.e.StationUnit(c, s) >= 0 {
			cs = append(cs, c)
		}
	}
	return cs
}

// post sends body once and returns the code, the Retry-After (0 if none)
// and an error kind for anything but 202.
func (r *runner) post(ctx context.Context, body []byte) (int, time.Duration, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/api/v1/minutes", bytes.NewReader(body))
	if err != nil {
		return 0, 0, "request"
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, 0, "transport"
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var ra time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		ra = time.Duration(s) * time.Second
	}
	if resp.StatusCode == http.StatusAccepted {
		d := time.Since(start)
		r.mu.Lock()
		r.mu.latencies = append(r.mu.latencies, d)
		r.mu.Unlock()
		return resp.StatusCode, ra, ""
	}
	kind := strconv.Itoa(resp.StatusCode)
	msg := string(b)
	switch {
	case strings.Contains(msg, "in flight"):
		kind += " in flight"
	case strings.Contains(msg, "fold is"):
		kind += " fold behind"
	case strings.Contains(msg, "NATS"):
		kind += " NATS down"
	case strings.Contains(msg, "disk full"):
		kind += " disk full"
	case strings.Contains(msg, "JetStream"):
		kind += " JetStream"
	}
	if ra == 0 && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		kind += " without Retry-After"
	}
	return resp.StatusCode, ra, kind
}

func (r *runner) countError(kind string) {
	r.mu.Lock()
	r.mu.errors[kind]++
	r.mu.Unlock()
}

// play runs every station: partials until Duration, then finals.
func (r *runner) play(ctx context.Context) error {
	n := r.cfg.Stations
	r.finals = make([][]minutesJSON, n)
	r.accepted = make([][]acceptedVersion, n)
	r.mu.errors = map[string]int{}
	secs := int(math.Ceil(r.cfg.Duration.Seconds()))
	r.mu.perSecond = make([]int, secs+1)
	start := time.Now()
	partialsEnd := start.Add(r.cfg.Duration)

	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		r.sample(sampleCtx, start)
	}()

	var wg sync.WaitGroup
	var failed sync.Once
	var failure error
	for s := 0; s < n; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.station(ctx, s, start, partialsEnd); err != nil {
				failed.Do(func() { failure = err })
			}
		}()
	}
	wg.Wait()
	stopSampling()
	sampler.Wait()
	total := time.Since(start)

	rep := r.rep
	rep.Duration = r.cfg.Duration
	for s := range r.accepted {
		rep.Minutes += len(r.accepted[s])
	}
	lat := r.mu.latencies
	slices.Sort(lat)
	rep.Accepted = len(lat)
	if len(lat) > 0 {
		rep.P50, rep.P99, rep.Max = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)], lat[len(lat)-1]
	}
	rep.RequestsPerSec = float64(len(lat)) / total.Seconds()
	rep.MinPerSec = math.Inf(1)
	for i, c := range r.mu.perSecond {
		if i < secs-1 || secs == 1 { // whole seconds only
			rep.MinPerSec = min(rep.MinPerSec, float64(c))
		}
	}
	if math.IsInf(rep.MinPerSec, 1) {
		rep.MinPerSec = 0
	}
	rep.Errors = r.mu.errors
	return failure
}

// sample records the 202s per second and the peak Go heap.
func (r *runner) sample(ctx context.Context, start time.Time) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var ms runtime.MemStats
	lastLine := time.Now()
	for {
		runtime.ReadMemStats(&ms)
		r.rep.PeakHeap = max(r.rep.PeakHeap, ms.HeapInuse)
		if r.cfg.Progress != nil && time.Since(lastLine) >= time.Second {
			lastLine = time.Now()
			r.mu.Lock()
			n, errs := len(r.mu.latencies), 0
			for _, c := range r.mu.errors {
				errs += c
			}
			r.mu.Unlock()
			fmt.Fprintf(r.cfg.Progress, "%5.0fs  %8d accepted  %7d refused  heap %4.0f MiB\n", time.Since(start).Seconds(), n, errs, float64(ms.HeapInuse)/(1<<20))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// station plays one station.
func (r *runner) station(ctx context.Context, s int, start, partialsEnd time.Time) error {
	contests := r.contestsOf(s)
	if len(contests) == 0 {
		return nil
	}
	batch := make([]minutesJSON, len(contests))
	var round int64
	for time.Now().Before(partialsEnd) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		round++
		for i, c := range contests {
			batch[i] = r.minutes(c, s, round, false)
		}
		body, err := json.Marshal(batch)
		if err != nil {
			return err
		}
		code, ra, kind := r.post(ctx, body)
		if code == http.StatusAccepted {
			r.progress.mark()
			for _, m := range batch {
				r.accepted[s] = append(r.accepted[s], acceptedVersion{m.Contest, m.Version})
			}
			sec := int(time.Since(start) / time.Second)
			r.mu.Lock()
			if sec < len(r.mu.perSecond) {
				r.mu.perSecond[sec]++
			}
			r.mu.Unlock()
			continue
		}
		r.countError(kind)
		if code == http.StatusUnprocessableEntity || code == http.StatusBadRequest {
			return fmt.Errorf("load: station %s round %d refused as invalid (%d)", r.e.Stations[s].ID, round, code)
		}
		// A refused partial is not retried: the next round supersedes it.
		wait(ctx, ra, 1)
	}
	// The finals: retried, identical, until stored.
	round++
	for i, c := range contests {
		batch[i] = r.minutes(c, s, round, true)
	}
	body, err := json.Marshal(batch)
	if err != nil {
		return err
	}
	// Every refusal is honoured for as long as the server makes progress
	// (the stream grows or the fold applies): a slow machine only makes
	// this take longer. Only a server that stands still for StallWindow
	// while refusing fails the run.
	for attempt := int64(1); ; attempt++ {
		code, ra, kind := r.post(ctx, body)
		if code == http.StatusAccepted {
			r.progress.mark()
			break
		}
		r.countError(kind)
		if code == http.StatusUnprocessableEntity || code == http.StatusBadRequest {
			return fmt.Errorf("load: finals of station %s refused as invalid (%d)", r.e.Stations[s].ID, code)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if idle := r.progress.idle(); idle > r.cfg.StallWindow {
			return fmt.Errorf("load: finals of station %s not stored: the server made no progress for %s (stream %d, applied %d) while refusing them, %d attempts (last: %s)",
				r.e.Stations[s].ID, idle.Round(time.Second), r.progress.stream.Load(), r.progress.applied.Load(), attempt, kind)
		}
		wait(ctx, ra, attempt)
	}
	for _, m := range batch {
		r.accepted[s] = append(r.accepted[s], acceptedVersion{m.Contest, m.Version})
	}
	r.finals[s] = slices.Clone(batch)
	return nil
}

// wait sleeps at least retryAfter, plus jitter, with a backoff floor.
func wait(ctx context.Context, retryAfter time.Duration, attempt int64) {
	floor := min(50*time.Millisecond<<min(attempt, 5), 2*time.Second)
	d := max(retryAfter, floor)
	d += time.Duration(rand.Int64N(int64(d)/2 + 1))
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// check waits for the fold, then compares every area and unit result and
// every station's history with the reference, and reads the fold lag and
// the peak RSS.
func (r *runner) check(ctx context.Context, srv *server.Server) error {
	rep := r.rep
	finished := time.Now()
	var st server.Status
	for {
		if err := r.getJSON(ctx, "/api/v1/status", &st); err != nil {
			return err
		}
		if st.AppliedSeq >= st.StreamSeq {
			break
		}
		if idle := r.progress.idle(); idle > r.cfg.StallWindow {
			return fmt.Errorf("load: the fold stopped catching up: no progress for %s: %+v", idle.Round(time.Second), st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	rep.Drain = time.Since(finished)
	rep.StreamSeq, rep.AppliedSeq = st.StreamSeq, st.AppliedSeq

	// The reference: sums of the finals.
	type sums struct {
		reporting, final                                    int64
		registered, voted, issued, received, valid, invalid int64
		votes                                               map[string]int64
	}
	add := func(t *sums, m *minutesJSON) {
		t.reporting++
		t.final++
		t.registered += m.Registered
		t.voted += m.Voted
		t.issued += m.Issued
		t.received += m.Received
		t.valid += m.Valid
		t.invalid += m.Invalid
		for id, v := range m.Votes {
			t.votes[id] += v
		}
	}
	type key struct {
		c, idx int
		unit   bool
	}
	ref := map[key]*sums{}
	get := func(k key) *sums {
		t := ref[k]
		if t == nil {
			t = &sums{votes: map[string]int64{}}
			ref[k] = t
		}
		return t
	}
	for s, fs := range r.finals {
		for i := range fs {
			m := &fs[i]
			c, _ := r.e.ContestIndex(m.Contest)
			add(get(key{c, r.e.StationUnit(c, s), true}), m)
			for _, a := range r.e.StationAreas(s) {
				add(get(key{c, a, false}), m)
			}
		}
	}
	type result struct {
		StationsReporting int64            `json:"stations_reporting"`
		StationsFinal     int64            `json:"stations_final"`
		Registered        int64            `json:"registered"`
		Voted             int64            `json:"voted"`
		Issued            int64            `json:"issued"`
		Received          int64            `json:"received"`
		Valid             int64            `json:"valid"`
		Invalid           int64            `json:"invalid"`
		Votes             map[string]int64 `json:"votes"`
	}
	for k, want := range ref {
		var path string
		if k.unit {
			path = "/api/v1/contests/" + r.e.Contests[k.c].ID + "/units/" + r.e.Contests[k.c].Units[k.idx].ID
		} else {
			path = "/api/v1/contests/" + r.e.Contests[k.c].ID + "/areas/" + r.e.Areas[k.idx].ID
		}
		var got result
		if err := r.getJSON(ctx, path, &got); err != nil {
			return err
		}
		rep.Checked++
		w := result{want.reporting, want.final, want.registered, want.voted, want.issued, want.received, want.valid, want.invalid, want.votes}
		if !k.unit && !r.e.AreaHasVotes(k.c, k.idx) {
			w.Votes = nil // below the contest's council level (CONTRACT §4 v2)
		}
		for id, v := range got.Votes {
			if v == 0 {
				if _, ok := w.Votes[id]; !ok {
					w.Votes[id] = 0 // candidates of stations that did not report
				}
			}
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(w)
		if !bytes.Equal(gb, wb) {
			rep.Mismatches = append(rep.Mismatches, fmt.Sprintf("%s: got %s, want %s", path, gb, wb))
		}
	}
	// Every version answered 202 is in its station's history, applied.
	for s, acc := range r.accepted {
		byContest := map[string][]int64{}
		for _, a := range acc {
			byContest[a.contest] = append(byContest[a.contest], a.version)
		}
		for contest, versions := range byContest {
			var view struct {
				History []struct {
					Version int64  `json:"version"`
					Outcome string `json:"outcome"`
				} `json:"history"`
			}
			path := "/api/v1/contests/" + contest + "/stations/" + r.e.Stations[s].ID
			if err := r.getJSON(ctx, path, &view); err != nil {
				return err
			}
			applied := map[int64]bool{}
			for _, h := range view.History {
				if h.Outcome == "applied" {
					applied[h.Version] = true
				}
			}
			rep.Checked++
			for _, v := range versions {
				if !applied[v] {
					rep.Mismatches = append(rep.Mismatches, fmt.Sprintf("%s: version %d was answered 202 but is not applied in the history", path, v))
				}
			}
		}
	}
	rep.FoldLagP99 = r.foldLagP99(ctx)
	rep.PeakRSS = peakRSS()
	return nil
}

func (r *runner) getJSON(ctx context.Context, path string, v any) error {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+path, nil)
		if err != nil {
			return err
		}
		resp, err := r.client.Do(req)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusServiceUnavailable && r.progress.idle() <= r.cfg.StallWindow {
			var ra time.Duration
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
				ra = time.Duration(s) * time.Second
			}
			wait(ctx, ra, int64(attempt))
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return json.Unmarshal(b, v)
	}
}

// foldLagP99 reads the tally_fold_lag_seconds histogram and returns the
// upper bound of the bucket holding the 99th percentile.
func (r *runner) foldLagP99(ctx context.Context) time.Duration {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/metrics", nil)
	if err != nil {
		return 0
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	type bucket struct {
		le    float64
		count float64
	}
	var buckets []bucket
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, `tally_fold_lag_seconds_bucket{le="`)
		if !ok {
			continue
		}
		le, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		l, err1 := strconv.ParseFloat(le, 64)
		c, err2 := strconv.ParseFloat(val, 64)
		if err1 == nil && err2 == nil {
			buckets = append(buckets, bucket{l, c})
		}
	}
	if len(buckets) == 0 {
		return 0
	}
	total := buckets[len(buckets)-1].count
	for _, b := range buckets {
		if b.count >= 0.99*total {
			if math.IsInf(b.le, 1) {
				return time.Duration(math.MaxInt64)
			}
			return time.Duration(b.le * float64(time.Second))
		}
	}
	return 0
}

// peakRSS returns the process's peak resident set (VmHWM), 0 if unknown.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}
