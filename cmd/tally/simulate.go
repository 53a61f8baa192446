package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tallyvn/tally/bench/workload"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/server"
	"github.com/tallyvn/tally/tally"
)

func runSimulate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("simulate", "--election FILE [--server URL] [flags]",
		`Plays an election night against a running server: every station sends
its count minutes for each contest it votes in (partials, then the final;
some corrections, withdrawals and recounts, duplicates, late partials and
invalid minutes) at its simulated time from 19:00, divided by --speed.
A station's minutes are sent in order by one of --concurrency senders.
Invalid minutes are expected to be refused (422); a submission the server
could not store (503, 429, network error) is retried with the same body.
Exits 1 if any answer was not the one expected.

Play a night once per server data directory: a night with another seed
sends other counts under the same versions, which the fold rejects as
conflicts.

Against a server run with --token-file, give the same file with
--token-file; for an https:// server with a self-signed certificate,
--ca-file names the certificate to trust.`, stdout, stderr)
	serverURL := fs.String("server", "http://127.0.0.1:8080", "tally server URL")
	electionFile := fs.String("election", "", "the election file the server runs (JSON, CONTRACT §2); required")
	speed := fs.Float64("speed", 600, "simulated time per real time: 600 plays the night (7 hours and more) in about a minute; 0 sends as fast as possible")
	seed := fs.Uint64("seed", 1, "seed of the night: the same seed sends the same minutes in the same order")
	stations := fs.Int("stations", 0, "only the first N stations of the election report (0: all)")
	concurrency := fs.Int("concurrency", 16, "concurrent senders")
	retryFor := fs.Duration("retry-for", 30*time.Second, "keep retrying a submission the server could not store for this long")
	tokenFile := fs.String("token-file", "", "`FILE` holding the server's operator token")
	caFile := fs.String("ca-file", "", "PEM certificate `FILE` to trust for an https:// server (besides the system's)")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	switch {
	case *electionFile == "":
		return usageError(fs, "--election is required")
	case fs.NArg() > 0:
		return usageError(fs, "unexpected arguments %q", fs.Args())
	case *speed < 0:
		return usageError(fs, "--speed %g is negative", *speed)
	case *concurrency < 1:
		return usageError(fs, "--concurrency %d, want at least 1", *concurrency)
	case *stations < 0:
		return usageError(fs, "--stations %d is negative", *stations)
	}
	base, ok := checkServerURL(fs, *serverURL)
	if !ok {
		return exitUsage
	}
	e, err := loadElection(*electionFile)
	if err != nil {
		fmt.Fprintf(stderr, "tally simulate: %v\n", err)
		return exitFailed
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	transport, err := clientTransport(*caFile)
	if err != nil {
		fmt.Fprintf(stderr, "tally simulate: %v\n", err)
		return exitFailed
	}
	var token string
	if *tokenFile != "" {
		if token, err = readTokenFile(*tokenFile, stderr); err != nil {
			fmt.Fprintf(stderr, "tally simulate: %v\n", err)
			return exitFailed
		}
	}
	transport.MaxIdleConnsPerHost = *concurrency
	sim := &simulator{
		base:     base,
		client:   &http.Client{Transport: transport, Timeout: 60 * time.Second},
		retryFor: *retryFor,
		token:    token,
		speed:    *speed,
		workers:  *concurrency,
		e:        e,
		night:    workload.NightConfig{Seed: *seed, Stations: *stations},
		stderr:   stderr,
		tty:      simIsTerminal(stderr),
	}
	defer transport.CloseIdleConnections()
	if err := sim.checkServer(ctx); err != nil {
		fmt.Fprintf(stderr, "tally simulate: %v\n", err)
		return exitFailed
	}
	err = sim.run(ctx)
	sim.summary(stdout)
	if err != nil {
		fmt.Fprintf(stderr, "tally simulate: %v\n", err)
		return exitFailed
	}
	if sim.mu.unexpected > 0 {
		return exitFailed
	}
	return exitOK
}

// simulator plays one night.
type simulator struct {
	base     string
	client   *http.Client
	retryFor time.Duration
	token    string // operator token, "" for none
	speed    float64
	workers  int
	e        *tally.Election
	night    workload.NightConfig
	stderr   io.Writer
	tty      bool

	total    int           // submissions in the night
	stations int           // stations reporting
	first    time.Duration // simulated time of the first and last submission
	last     time.Duration
	started  time.Time
	elapsed  time.Duration

	mu struct {
		sync.Mutex
		dispatched int
		at         time.Duration // simulated time of the last dispatched
		done       int
		codes      map[int]int // HTTP status → answers; 0: no answer
		kinds      map[workload.Kind]int
		accepted   int
		duplicates int // accepted, already stored
		expected   int // refused, as expected
		unexpected int
		problems   []string // the first unexpected answers
	}
}

// simJob is one submission on its way to a sender.
type simJob struct {
	body []byte
	kind workload.Kind
	what string // contest, station and version, for messages
}

// simMaxProblems bounds the unexpected answers kept for the summary.
const simMaxProblems = 10

// checkServer makes sure the server answers and runs the same election.
func (s *simulator) checkServer(ctx context.Context) error {
	var st server.Status
	code, body, err := s.do(ctx, http.MethodGet, s.base+"/api/v1/status", nil)
	if err != nil {
		return fmt.Errorf("server %s: %w", s.base, err)
	}
	if code != http.StatusOK {
		return fmt.Errorf("server %s: status answered %d: %s", s.base, code, errorText(body))
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("server %s: bad status answer: %v", s.base, err)
	}
	if st.Election != s.e.ID {
		return fmt.Errorf("server %s runs election %q, the file is election %q", s.base, st.Election, s.e.ID)
	}
	return nil
}

// run counts the night, then plays it: the dispatcher (this goroutine)
// releases each submission at its time and routes it by station to a
// sender, so a station's minutes are sent in order.
func (s *simulator) run(ctx context.Context) error {
	s.mu.codes = map[int]int{}
	s.mu.kinds = map[workload.Kind]int{}
	seen := map[int]bool{}
	s.first = -1
	if err := workload.Night(s.e, s.night, func(sub *workload.Submission) error {
		s.total++
		if s.first < 0 {
			s.first = sub.At
		}
		s.last = sub.At
		seen[sub.Station] = true
		return nil
	}); err != nil {
		return err
	}
	s.stations = len(seen)

	jobs := make([]chan simJob, s.workers)
	var wg sync.WaitGroup
	for i := range jobs {
		jobs[i] = make(chan simJob, 64)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs[i] {
				if ctx.Err() == nil { // once interrupted, drain without sending
					s.send(ctx, j)
				}
			}
		}()
	}
	progressDone := make(chan struct{})
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() {
		defer pwg.Done()
		s.progress(progressDone)
	}()

	s.started = time.Now()
	err := workload.Night(s.e, s.night, func(sub *workload.Submission) error {
		if s.speed > 0 {
			due := s.started.Add(time.Duration(float64(sub.At) / s.speed))
			if d := time.Until(due); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-t.C:
				}
			}
		}
		m := &sub.Minutes
		j := simJob{
			body: events.AppendJSON(nil, m),
			kind: sub.Kind,
			what: fmt.Sprintf("%s %s v%d (%s)", m.Contest, m.Station, m.Version, sub.Kind),
		}
		s.mu.Lock()
		s.mu.dispatched++
		s.mu.at = sub.At
		s.mu.kinds[sub.Kind]++
		s.mu.Unlock()
		select {
		case jobs[sub.Station%len(jobs)] <- j:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	for _, ch := range jobs {
		close(ch)
	}
	wg.Wait()
	s.elapsed = time.Since(s.started)
	close(progressDone)
	pwg.Wait()
	if errors.Is(err, context.Canceled) {
		return errors.New("interrupted")
	}
	return err
}

// send posts one submission, retrying what the server could not store,
// and counts the answer against what its kind expects.
func (s *simulator) send(ctx context.Context, j simJob) {
	code, body, err := s.do(ctx, http.MethodPost, s.base+"/api/v1/minutes", j.body)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.done++
	if err != nil {
		s.mu.codes[0]++
		s.problemLocked("%s: %v", j.what, err)
		return
	}
	s.mu.codes[code]++
	invalid := j.kind == workload.Invalid
	switch {
	case code == http.StatusAccepted && !invalid:
		s.mu.accepted++
		var ok server.SubmitResponse
		if json.Unmarshal(body, &ok) == nil {
			s.mu.duplicates += ok.Duplicates
		}
	case code == http.StatusUnprocessableEntity && invalid:
		s.mu.expected++
	case code == http.StatusAccepted:
		s.problemLocked("%s: invalid minutes accepted: %s", j.what, j.body)
	default:
		s.problemLocked("%s: server answered %d: %s", j.what, code, errorText(body))
	}
}

// problemLocked counts an unexpected answer. REQUIRES: s.mu held.
func (s *simulator) problemLocked(format string, args ...any) {
	s.mu.unexpected++
	if len(s.mu.problems) < simMaxProblems {
		s.mu.problems = append(s.mu.problems, fmt.Sprintf(format, args...))
	}
}

// do sends one request and returns the answer, retrying with the same body
// what the server could not handle (503, 429, network error) for up to
// s.retryFor: exponential backoff with full jitter, and at least the
// Retry-After the server asked for. A retried POST is safe: the server
// stores the same minutes once.
func (s *simulator) do(ctx context.Context, method, url string, body []byte) (int, []byte, error) {
	deadline := time.Now().Add(s.retryFor)
	for attempt := 1; ; attempt++ {
		code, b, retryAfter, err := s.once(ctx, method, url, body)
		retry := err != nil || code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests
		if !retry || ctx.Err() != nil || time.Now().After(deadline) {
			return code, b, err
		}
		wait := time.Duration(rand.Int64N(int64(min(100*time.Millisecond<<min(attempt, 6), 5*time.Second)) + 1))
		wait = max(wait, retryAfter)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, nil, ctx.Err()
		case <-t.C:
		}
	}
}

// once sends one request once.
func (s *simulator) once(ctx context.Context, method, url string, body []byte) (int, []byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, 0, err
	}
	return resp.StatusCode, b, simRetryAfter(resp.Header.Get("Retry-After")), nil
}

// simRetryAfter parses a Retry-After header: seconds or an HTTP date.
func simRetryAfter(h string) time.Duration {
	if h == "" {
		return 0
	}
	if n, err := strconv.Atoi(h); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}

// progress shows how the night goes until done is closed: a bar redrawn in
// place on a terminal, else a line every few seconds.
func (s *simulator) progress(done <-chan struct{}) {
	every := 5 * time.Second
	if s.tty {
		every = 200 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-done:
			if s.tty {
				fmt.Fprintf(s.stderr, "\r%s\n", s.progressLine())
			} else {
				fmt.Fprintln(s.stderr, s.progressLine())
			}
			return
		case <-tick.C:
			if s.tty {
				fmt.Fprintf(s.stderr, "\r%s\x1b[K", s.progressLine())
			} else {
				fmt.Fprintln(s.stderr, s.progressLine())
			}
		}
	}
}

// progressLine renders, e.g.:
//
//	[=========>        ]  52% 1234/2370 minutes  202:1200 422:30  19:00→23:14 simulated
func (s *simulator) progressLine() string {
	s.mu.Lock()
	done, at, dispatched := s.mu.done, s.mu.at, s.mu.dispatched
	codes := make([]int, 0, len(s.mu.codes))
	for c := range s.mu.codes {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var b strings.Builder
	for _, c := range codes {
		if c == 0 {
			fmt.Fprintf(&b, " err:%d", s.mu.codes[c])
		} else {
			fmt.Fprintf(&b, " %d:%d", c, s.mu.codes[c])
		}
	}
	s.mu.Unlock()

	const width = 30
	frac := 1.0
	if s.total > 0 {
		frac = float64(done) / float64(s.total)
	}
	filled := int(frac * width)
	bar := strings.Repeat("=", filled)
	if filled < width {
		bar += ">" + strings.Repeat(" ", width-filled-1)
	}
	clock := "19:00"
	if dispatched > 0 {
		clock = workload.Clock(at)
	}
	return fmt.Sprintf("[%s] %3d%% %d/%d minutes %s  %s→%s simulated",
		bar, int(100*frac), done, s.total, b.String(), workload.Clock(0), clock)
}

// summary prints what the night did.
func (s *simulator) summary(w io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rate := 0.0
	if s.elapsed > 0 {
		rate = float64(s.mu.done) / s.elapsed.Seconds()
	}
	fmt.Fprintf(w, "simulated %d minutes from %d stations, %s→%s, in %s (%.0f minutes/s)\n",
		s.total, s.stations, workload.Clock(max(0, s.first)), workload.Clock(s.last), s.elapsed.Round(time.Millisecond), rate)
	var kinds []string
	for _, k := range workload.AllKinds() {
		if n := s.mu.kinds[k]; n > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
	}
	fmt.Fprintf(w, "  sent                  %7d  (%s)\n", s.mu.done, strings.Join(kinds, ", "))
	fmt.Fprintf(w, "  accepted              %7d  (%d already stored)\n", s.mu.accepted, s.mu.duplicates)
	fmt.Fprintf(w, "  rejected as expected  %7d  (invalid minutes, 422)\n", s.mu.expected)
	fmt.Fprintf(w, "  unexpected errors     %7d\n", s.mu.unexpected)
	if n := s.total - s.mu.done; n > 0 {
		fmt.Fprintf(w, "  not sent              %7d\n", n)
	}
	for _, p := range s.mu.problems {
		fmt.Fprintf(s.stderr, "tally simulate: unexpected: %s\n", p)
	}
	if s.mu.unexpected > len(s.mu.problems) {
		fmt.Fprintf(s.stderr, "tally simulate: ... and %d more unexpected answers\n", s.mu.unexpected-len(s.mu.problems))
	}
}

// simIsTerminal reports whether w is a terminal, where the progress bar is
// redrawn in place.
func simIsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
