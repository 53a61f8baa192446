package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// longBien loads the example election and its minutes lines.
func longBien(t testing.TB) (*tally.Election, [][]byte) {
	t.Helper()
	data, err := os.ReadFile("../examples/longbien/election.json")
	if err != nil {
		t.Fatal(err)
	}
	e, err := tally.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../examples/longbien/minutes.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	return e, bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
}

// liveServer runs a server on the example election until the test ends.
func liveServer(t testing.TB, e *tally.Election) (*Server, string) {
	t.Helper()
	return liveServerAccepting(t, e, nil)
}

// liveServerAccepting is liveServer calling onAccept with every
// connection its API accepts (Config.onAccept).
func liveServerAccepting(t testing.TB, e *tally.Election, onAccept func(net.Conn)) (*Server, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	// The tests play hundreds of stream clients from one address.
	srv, err := New(ctx, Config{Election: e, DataDir: t.TempDir(), NATS: NATSConfig{Listen: "none"},
		HTTP:     HTTPConfig{Addr: "127.0.0.1:0", MaxStreams: 1 << 20, MaxStreamsPerClient: 1 << 20},
		onAccept: onAccept})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return srv, "http://" + srv.Addr()
}

// submitLines posts minutes lines as NDJSON and waits until they are folded.
func submitLines(t testing.TB, srv *Server, base string, lines [][]byte) uint64 {
	t.Helper()
	resp, err := http.Post(base+"/api/v1/minutes", "application/x-ndjson", bytes.NewReader(bytes.Join(lines, []byte("\n"))))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ok SubmitResponse
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("submit: %d %s", resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&ok); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.WaitApplied(ctx, ok.Seq); err != nil {
		t.Fatalf("seq %d not applied: %v", ok.Seq, err)
	}
	return ok.Seq
}

// sseEvent is one server-sent event.
type sseEvent struct {
	id, event string
	data      map[string]any
}

func (ev sseEvent) key() string {
	if u, ok := ev.data["unit"]; ok {
		return fmt.Sprintf("%v/unit/%v", ev.data["contest"], u)
	}
	return fmt.Sprintf("%v/area/%v", ev.data["contest"], ev.data["area"])
}

// sseConn reads events from a stream in the background.
type sseConn struct {
	resp   *http.Response
	events chan sseEvent
}

func openStream(t testing.TB, base, query, lastID string) *sseConn {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/stream"+query, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := &sseConn{resp: resp, events: make(chan sseEvent, 10000)}
	t.Cleanup(func() { resp.Body.Close() })
	go func() {
		defer close(c.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.event != "" {
					c.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(line[6:]), &ev.data); err != nil {
					panic(err)
				}
			}
		}
	}()
	return c
}

// collect gathers events until none arrives for quiet.
func (c *sseConn) collect(quiet time.Duration) []sseEvent {
	var out []sseEvent
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				return out
			}
			out = append(out, ev)
		case <-time.After(quiet):
			return out
		}
	}
}

func keys(evs []sseEvent) map[string]sseEvent {
	m := map[string]sseEvent{}
	for _, ev := range evs {
		m[ev.key()] = ev // later events win: the latest value
	}
	return m
}

// TestStreamSendsChangedResults: a client gets the current state on
// connect, then one event per result a submission changed, with the new
// figures; filters select contest, area (and the areas under it) and unit.
func TestStreamSendsChangedResults(t *testing.T) {
	e, lines := longBien(t)
	srv, base := liveServer(t, e)

	all := openStream(t, base, "", "")
	ward := openStream(t, base, "?contest=QH&area=LB-NT", "")
	district := openStream(t, base, "?contest=HDND-LB&area=LB", "")
	unit := openStream(t, base, "?unit=QH-HN-02", "")

	// Initial state: every result the filter selects, once.
	initAll := keys(all.collect(300 * time.Millisecond))
	var nAreas, nUnits int
	for c := range e.Contests {
		for a := range e.Areas {
			if e.Expected(c, a) > 0 {
				nAreas++
			}
		}
		nUnits += len(e.Contests[c].Units)
	}
	if len(initAll) != nAreas+nUnits {
		t.Fatalf("initial state: %d results, want %d", len(initAll), nAreas+nUnits)
	}
	if got := keys(ward.collect(100 * time.Millisecond)); len(got) != 1 || got["QH/area/LB-NT"].event != "result" {
		t.Fatalf("ward filter initial state: %v", got)
	}
	if got := keys(district.collect(100 * time.Millisecond)); len(got) != 15 { // the district and its 14 wards
		t.Fatalf("district filter initial state: %d results, want 15", len(got))
	}
	keys(unit.collect(100 * time.Millisecond))

	// One Ngọc Thụy station's QH final.
	var nt [][]byte
	for _, l := range lines {
		if bytes.Contains(l, []byte(`"station":"LB-NT-01"`)) && bytes.Contains(l, []byte(`"contest":"QH"`)) {
			nt = append(nt, l)
		}
	}
	seq := submitLines(t, srv, base, nt)

	got := keys(all.collect(300 * time.Millisecond))
	want := []string{"QH/area/LB-NT", "QH/area/LB", "QH/area/HN", "QH/unit/QH-HN-02"}
	if len(got) != len(want) {
		t.Fatalf("after one station: events for %v, want %v", got, want)
	}
	for _, k := range want {
		ev, ok := got[k]
		if !ok {
			t.Fatalf("no event for %s", k)
		}
		if ev.id != fmt.Sprint(seq) || ev.data["applied_seq"] != float64(seq) {
			t.Fatalf("%s: id %s applied_seq %v, want %d", k, ev.id, ev.data["applied_seq"], seq)
		}
		if ev.data["stations_reporting"] != float64(1) {
			t.Fatalf("%s: stations_reporting %v, want 1", k, ev.data["stations_reporting"])
		}
	}
	if got := keys(ward.collect(200 * time.Millisecond)); len(got) != 1 || got["QH/area/LB-NT"].data["stations_final"] != float64(1) {
		t.Fatalf("ward filter: %v", got)
	}
	if got := district.collect(200 * time.Millisecond); len(got) != 0 {
		t.Fatalf("HDND-LB filter got %d events for a QH submission", len(got))
	}
	if got := keys(unit.collect(200 * time.Millisecond)); len(got) != 1 || got["QH/unit/QH-HN-02"].data["status"] != "counting" {
		t.Fatalf("unit filter: %v", got)
	}

	// Unknown filter ids are a 404, not an empty stream.
	for _, q := range []string{"?contest=NOPE", "?area=NOPE", "?unit=NOPE", "?contest=QH&unit=HDND-LB-01"} {
		resp, err := http.Get(base + "/api/v1/stream" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("stream%s: %d, want 404", q, resp.StatusCode)
		}
	}
}

// TestStreamResumesWithLastEventID: a client that reconnects with the id of
// the last event it saw gets the results that changed since, and only them.
func TestStreamResumesWithLastEventID(t *testing.T) {
	e, lines := longBien(t)
	srv, base := liveServer(t, e)
	pick := func(station, contest string) [][]byte {
		var out [][]byte
		for _, l := range lines {
			if bytes.Contains(l, []byte(`"station":"`+station+`"`)) && bytes.Contains(l, []byte(`"contest":"`+contest+`"`)) {
				out = append(out, l)
			}
		}
		return out
	}
	c := openStream(t, base, "?contest=HDND-LB", "")
	c.collect(200 * time.Millisecond)
	seq1 := submitLines(t, srv, base, pick("LB-NT-02", "HDND-LB"))
	evs := c.collect(300 * time.Millisecond)
	last := evs[len(evs)-1].id
	if last != fmt.Sprint(seq1) {
		t.Fatalf("last id %s, want %d", last, seq1)
	}
	c.resp.Body.Close() // the connection drops

	submitLines(t, srv, base, pick("LB-PL-01", "HDND-LB")) // Phúc Lợi: another ward and unit
	again := keys(openStream(t, base, "?contest=HDND-LB", last).collect(300 * time.Millisecond))
	want := map[string]bool{"HDND-LB/area/LB-PL": true, "HDND-LB/area/LB": true, "HDND-LB/area/HN": true}
	u := e.StationUnit(mustContest(t, e, "HDND-LB"), mustStation(t, e, "LB-PL-01"))
	want["HDND-LB/unit/"+e.Contests[mustContest(t, e, "HDND-LB")].Units[u].ID] = true
	if len(again) != len(want) {
		t.Fatalf("resumed with %s: got %d results %v, want %v", last, len(again), again, want)
	}
	for k := range want {
		if _, ok := again[k]; !ok {
			t.Fatalf("resumed stream lacks %s", k)
		}
	}
	if again["HDND-LB/area/LB"].data["stations_reporting"] != float64(2) {
		t.Fatalf("district after resume: %v", again["HDND-LB/area/LB"].data)
	}
	// Without Last-Event-ID: the whole current state.
	if n := len(keys(openStream(t, base, "?contest=HDND-LB", "").collect(300 * time.Millisecond))); n <= len(want) {
		t.Fatalf("fresh connection got %d results, want the whole state", n)
	}
}

func mustContest(t testing.TB, e *tally.Election, id string) int {
	c, ok := e.ContestIndex(id)
	if !ok {
		t.Fatal(id)
	}
	return c
}

func mustStation(t testing.TB, e *tally.Election, id string) int {
	s, ok := e.StationIndex(id)
	if !ok {
		t.Fatal(id)
	}
	return s
}

// stalledClient opens an event stream and never reads it. Its TCP buffers
// fill up and the server's writes to it block.
func stalledClient(t testing.TB, addr string) net.Conn {
	t.Helper()
	// A tiny receive window, set before the handshake so it holds.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048)
		})
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /api/v1/stream HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestStalledClientDoesNotSlowFold folds the whole example night on fresh
// servers, alternately with one live stream client only and with 20 more
// clients that never read (their receive windows are tiny, so the server's
// writes to them block once the kernel buffers fill). The fold must finish
// either way, the live client must end with the final state, the stalled
// clients must have had updates coalesced (proof they stalled), and the
// time with stalled clients is reported against the baseline; outside the
// race detector it must stay within 3× (the figure of interest is the log).
func TestStalledClientDoesNotSlowFold(t *testing.T) {
	e, lines := longBien(t)
	const stalled = 20
	// The server's send buffer of every connection is small too: a client
	// that never reads blocks the server's writes after a few KiB, early
	// in the night, on any machine. (With the kernel's default, which grows
	// with the connection, the whole night's events could fit on a loaded
	// machine, whose fold commits fewer, larger batches: no update then
	// waited long enough to be coalesced.)
	smallSendBuffer := func(c net.Conn) {
		if tc, ok := c.(*net.TCPConn); ok {
			if err := tc.SetWriteBuffer(4096); err != nil {
				t.Errorf("set send buffer: %v", err)
			}
		}
	}
	run := func(stalled int) (time.Duration, *Server, string, *sseConn) {
		srv, base := liveServerAccepting(t, e, smallSendBuffer)
		for i := 0; i < stalled; i++ {
			stalledClient(t, srv.Addr())
		}
		// HDND-HN-01 ends decided (QH-HN-02 has stations outside the file).
		live := openStream(t, base, "?unit=HDND-HN-01", "")
		start := time.Now()
		// Many small requests: many commits, many result changes.
		for i := 0; i < len(lines); i += 8 {
			submitLines(t, srv, base, lines[i:min(i+8, len(lines))])
		}
		return time.Since(start), srv, base, live
	}
	best := func(a, b time.Duration) time.Duration { return min(a, b) }
	b1, _, _, _ := run(0)
	d1, srv, base, live := run(stalled)
	b2, _, _, _ := run(0)
	d2, _, _, _ := run(stalled)
	base0, d := best(b1, b2), best(d1, d2)

	// The stalled clients really stalled: updates for them piled up and
	// were coalesced to the latest value per result.
	coalesced := testutil.ToFloat64(srv.metrics.sseDropped)
	if coalesced == 0 {
		t.Fatal("no update was coalesced: the stalled clients were not stalled")
	}
	ratio := float64(d) / float64(base0)
	t.Logf("folding %d minutes in %d requests: best %v with 1 live stream client, best %v with %d stalled clients more (ratio %.2f); %.0f updates coalesced",
		len(lines), (len(lines)+7)/8, base0.Round(time.Millisecond), d.Round(time.Millisecond), stalled, ratio, coalesced)
	if ratio > 3 && !raceEnabled {
		t.Fatalf("stalled clients slowed the fold %.1f×", ratio)
	}
	// The live client ends with the final state of the unit.
	var final map[string]any
	// Bounded by progress: every event resets the wait.
	for final == nil || final["status"] == "counting" {
		select {
		case ev := <-live.events:
			final = ev.data
		case <-time.After(sseStall):
			t.Fatalf("live client never saw the decided unit (no event for %s); last %v", sseStall, final)
		}
	}
	resp, err := http.Get(base + "/api/v1/contests/HDND-HN/units/HDND-HN-01")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var want map[string]any
	json.NewDecoder(resp.Body).Decode(&want)
	if fmt.Sprint(final["winners"]) != fmt.Sprint(want["winners"]) || final["status"] != want["status"] {
		t.Fatalf("live client's last unit event %v %v, API says %v %v", final["winners"], final["status"], want["winners"], want["status"])
	}
}

// TestManyStreamClients holds many district-dashboard clients (QH results
// of the district and its wards) while the example night is folded, and
// checks every client ends with the final district figures. The count is
// 200 here; TALLY_SSE_CLIENTS raises it for a capacity measurement.
func TestManyStreamClients(t *testing.T) {
	n := 200
	if v, err := strconv.Atoi(os.Getenv("TALLY_SSE_CLIENTS")); err == nil && v > 0 {
		n = v
	}
	e, lines := longBien(t)
	srv, base := liveServer(t, e)
	clients := make([]*sseConn, n)
	for i := range clients {
		clients[i] = openStream(t, base, "?contest=QH&area=LB", "")
	}
	start := time.Now()
	var seq uint64
	for i := 0; i < len(lines); i += 8 {
		seq = submitLines(t, srv, base, lines[i:min(i+8, len(lines))])
	}
	folded := time.Since(start)
	resp, err := http.Get(base + "/api/v1/contests/QH/areas/LB")
	if err != nil {
		t.Fatal(err)
	}
	var final map[string]any
	json.NewDecoder(resp.Body).Decode(&final)
	resp.Body.Close()
	if final["applied_seq"] != float64(seq) {
		t.Fatalf("district applied_seq %v, want %d", final["applied_seq"], seq)
	}
	same := func(ev sseEvent) bool {
		return ev.key() == "QH/area/LB" && ev.data["stations_final"] == final["stations_final"] &&
			ev.data["valid"] == final["valid"] && fmt.Sprint(ev.data["votes"]) == fmt.Sprint(final["votes"])
	}
	for i, c := range clients {
		for done := false; !done; {
			select {
			case ev, ok := <-c.events:
				if !ok {
					t.Fatalf("client %d: stream ended", i)
				}
				done = same(ev)
			case <-time.After(sseStall): // bounded by progress: every event resets the wait
				t.Fatalf("client %d never got the final district result %v (no event for %s)", i, final, sseStall)
			}
		}
	}
	t.Logf("%d SSE clients held; %d minutes folded in %v; every client had the final district result after %v",
		n, len(lines), folded.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// TestStreamIDsNeverGoDown: within one flush, events go out in ascending
// sequence order, so a client resuming from the last id it saw never skips
// an event that came before it. The cache is set up so that result order
// and sequence order disagree, as they do for a client lagging over several
// commits.
func TestStreamIDsNeverGoDown(t *testing.T) {
	e, _ := longBien(t)
	srv, _ := liveServer(t, e)
	h := srv.hub
	c := &sseClient{h: h, filter: sseFilter{contest: -1, area: -1, unit: -1}, signal: make(chan struct{}, 1)}
	c.mu.pending = map[projections.Ref]struct{}{}
	var refs []projections.Ref
	for a := 0; a < 10; a++ {
		r := projections.Ref{Contest: 0, Index: int32(a)}
		refs = append(refs, r)
		h.cache.Lock()
		h.cache.latest[r] = rendered{seq: uint64(100 - a), data: []byte(`{}`)} // later results, older values
		h.cache.Unlock()
	}
	c.offer(refs, nil)
	buf, _ := c.appendEvents(nil, nil)
	var last uint64
	n := 0
	for _, line := range strings.Split(string(buf), "\n") {
		if !strings.HasPrefix(line, "id: ") {
			continue
		}
		id, err := strconv.ParseUint(line[4:], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if id < last {
			t.Fatalf("event %d has id %d after id %d:\n%s", n, id, last, buf)
		}
		last = id
		n++
	}
	if n != len(refs) {
		t.Fatalf("%d events, want %d", n, len(refs))
	}
}

// sseStall is how long an SSE test waits without any event before it fails:
// a wait bounded by progress, not by the time the whole test may take.
const sseStall = 2 * time.Minute
