package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tallyvn/tally/bench/workload"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// partitionedAnswer is a 202 answer with partitions (CONTRACT §6 v2).
type partitionedAnswer struct {
	Accepted  int               `json:"accepted"`
	Seq       uint64            `json:"seq"`
	Positions map[string]uint64 `json:"positions"`
}

// partitionedStatus is GET /api/v1/status with partitions.
type partitionedStatus struct {
	StreamSeq        uint64            `json:"stream_seq"`
	AppliedSeq       uint64            `json:"applied_seq"`
	Applied          uint64            `json:"applied"`
	StreamPositions  map[string]uint64 `json:"stream_positions"`
	AppliedPositions map[string]uint64 `json:"applied_positions"`
	State            string            `json:"state"`
}

// nightFixture is a multi-province election and its night of minutes, as
// JSON request bodies of up to 8 minutes each.
type nightFixture struct {
	e            *tally.Election
	electionFile string
	bodies       [][]byte
	partitionOf  func(body []byte) map[int]bool // partitions a body touches
}

func newNightFixture(t *testing.T, n int) *nightFixture {
	t.Helper()
	f, err := workload.National(workload.NationalConfig{Seed: 11, Scale: 0.03, Provinces: 8, TwoTier: true})
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.Parse()
	if err != nil {
		t.Fatal(err)
	}
	if err := events.CheckPartitionable(e); err != nil {
		t.Fatal(err)
	}
	fx := &nightFixture{e: e, electionFile: filepath.Join(t.TempDir(), "election.json")}
	out, err := os.Create(fx.electionFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.WriteJSON(out); err != nil {
		t.Fatal(err)
	}
	out.Close()
	// One JSON per submission, written at once: the generator reuses its
	// minutes.
	var subs [][]byte
	var stations []int
	err = workload.Night(e, workload.NightConfig{Seed: 11, Invalid: -1}, func(s *workload.Submission) error {
		subs = append(subs, events.AppendJSON(nil, &s.Minutes))
		stations = append(stations, s.Station)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	perPartition := make([]int, n)
	for len(subs) > 0 {
		k := min(len(subs), 8)
		var b bytes.Buffer
		b.WriteByte('[')
		for i := range k {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(subs[i])
			perPartition[events.StationPartition(e, stations[i], n)]++
		}
		b.WriteByte(']')
		fx.bodies = append(fx.bodies, b.Bytes())
		subs, stations = subs[k:], stations[k:]
	}
	for p, c := range perPartition {
		if c == 0 {
			t.Fatalf("partition %d of %d gets no minutes (%v): the test would prove little", p, n, perPartition)
		}
	}
	fx.partitionOf = func(body []byte) map[int]bool {
		var ms []struct{ Station string }
		if err := json.Unmarshal(body, &ms); err != nil {
			t.Fatal(err)
		}
		out := map[int]bool{}
		for i := range ms {
			s, _ := e.StationIndex(ms[i].Station)
			out[events.StationPartition(e, s, n)] = true
		}
		return out
	}
	t.Logf("%d provinces, %d stations, %d requests, minutes per partition of %d: %v", len(events.Provinces(e)), len(e.Stations), len(fx.bodies), n, perPartition)
	return fx
}

// submitAll POSTs bodies in order, each until it is answered 202, and
// returns the 202 answers.
func submitAll(t *testing.T, client *http.Client, url string, bodies [][]byte) []partitionedAnswer {
	t.Helper()
	var out []partitionedAnswer
	for i, body := range bodies {
		code, _, resp, err := postMinutes(client, url, body)
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("request %d: %d %s (%v)", i, code, resp, err)
		}
		var a partitionedAnswer
		if err := json.Unmarshal(resp, &a); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

var appliedPositionsRE = regexp.MustCompile(`,"applied_positions":\{[^}]*\}`)

// TestPartitionsEndToEnd: tally serve --partitions 4 over HTTP, with
// corrections, withdrawals, duplicates and stale minutes, killed (SIGKILL)
// right after a share of the night was acknowledged and restarted, then
// stopped and restarted again: every area and unit result, and every CSV
// export, is byte for byte what tally serve --partitions 1 serves for the
// same requests, once applied_positions is left out (applied_seq, a sum of
// positions, equals the one stream's seq). The 202 answers carry positions
// summing to seq, the status and results applied_positions; tally submit
// waits on positions; tally verify and tally rebuild work per partition.
func TestPartitionsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several servers")
	}
	const n = 4
	fx := newNightFixture(t, n)
	client := &http.Client{Timeout: 30 * time.Second}
	root := t.TempDir()
	dirN, dir1 := filepath.Join(root, "n"), filepath.Join(root, "one")

	// --partitions 4: a third from 4 clients at once, SIGKILLed halfway
	// (requests in flight, the folds behind), the requests not answered
	// resent after a restart (deduplicated by content where stored); a
	// third; SIGTERM; the rest. Results depend only on each station's
	// highest version, so the order of arrival does not change them.
	srv := startServe(t, fx.electionFile, dirN, "--partitions", strconv.Itoa(n), "--batch", "7")
	third := len(fx.bodies) / 3
	answers := make([]partitionedAnswer, len(fx.bodies))
	answered := make([]bool, len(fx.bodies))
	var mu sync.Mutex
	var wg sync.WaitGroup
	killed := make(chan struct{})
	var killOnce sync.Once
	var atKill partitionedStatus
	next := 0
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= third {
					return
				}
				code, _, resp, err := postMinutes(client, srv.url, fx.bodies[i])
				if err != nil || code != http.StatusAccepted {
					continue // killed: sent again below
				}
				var a partitionedAnswer
				if err := json.Unmarshal(resp, &a); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				answers[i], answered[i] = a, true
				done := 0
				for _, ok := range answered {
					if ok {
						done++
					}
				}
				mu.Unlock()
				if done >= third/2 {
					killOnce.Do(func() {
						getJSON(client, srv.url+"/api/v1/status", &atKill)
						srv.cmd.Process.Kill()
						close(killed)
					})
				}
			}
		}()
	}
	wg.Wait()
	<-killed
	srv.kill()
	resent := 0
	t.Logf("SIGKILL with applied %v of stream %v", atKill.AppliedPositions, atKill.StreamPositions)
	srv = startServe(t, fx.electionFile, dirN, "--partitions", strconv.Itoa(n))
	for i := range third {
		if !answered[i] {
			answers[i] = submitAll(t, client, srv.url, fx.bodies[i:i+1])[0]
			resent++
		}
	}
	t.Logf("%d requests of %d sent again after the kill", resent, third)
	copy(answers[third:], submitAll(t, client, srv.url, fx.bodies[third:2*third]))
	if code := srv.stop(t); code != 0 {
		t.Fatalf("tally serve exited %d:\n%s", code, srv.stderr.String())
	}
	srv = startServe(t, fx.electionFile, dirN, "--partitions", strconv.Itoa(n))
	copy(answers[2*third:], submitAll(t, client, srv.url, fx.bodies[2*third:]))

	// Positions: the partitions each request touched (one that was all
	// duplicates still names them, with its first copy's position), seq
	// the sum.
	last := map[string]uint64{}
	for i, a := range answers {
		want := fx.partitionOf(fx.bodies[i])
		var sum uint64
		for k, pos := range a.Positions {
			p, err := strconv.Atoi(k)
			if err != nil || !want[p] {
				t.Fatalf("request %d: positions %v name partition %q; it touched %v", i, a.Positions, k, want)
			}
			last[k] = max(last[k], pos) // a duplicate's is its first copy's, earlier
			sum += pos
		}
		if len(a.Positions) != len(want) || a.Seq != sum {
			t.Fatalf("request %d: positions %v (seq %d) for partitions %v", i, a.Positions, a.Seq, want)
		}
	}
	waitCaughtUp(t, client, srv.url)
	var st partitionedStatus
	if err := getJSON(client, srv.url+"/api/v1/status", &st); err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for p := range n {
		k := strconv.Itoa(p)
		if st.AppliedPositions[k] != st.StreamPositions[k] || st.StreamPositions[k] != last[k] {
			t.Fatalf("status %+v: partition %d not at the last acknowledged position %d", st, p, last[k])
		}
		sum += st.AppliedPositions[k]
	}
	if len(st.AppliedPositions) != n || st.AppliedSeq != sum || st.StreamSeq != sum || st.State != "ready" {
		t.Fatalf("status %+v: want %d partitions summing to applied_seq", st, n)
	}

	// The same requests to --partitions 1.
	one := startServe(t, fx.electionFile, dir1)
	submitAll(t, client, one.url, fx.bodies)
	waitCaughtUp(t, client, one.url)

	get := func(base, path string) []byte {
		t.Helper()
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s (%v)", path, resp.StatusCode, b, err)
		}
		return b
	}
	compared := 0
	compare := func(path string) {
		t.Helper()
		a, b := get(srv.url, path), get(one.url, path)
		var res struct {
			AppliedSeq       uint64            `json:"applied_seq"`
			AppliedPositions map[string]uint64 `json:"applied_positions"`
		}
		if err := json.Unmarshal(a, &res); err != nil {
			t.Fatal(err)
		}
		var sum uint64
		for _, pos := range res.AppliedPositions {
			sum += pos
		}
		if len(res.AppliedPositions) != n || sum != res.AppliedSeq {
			t.Fatalf("%s: applied_positions %v, applied_seq %d", path, res.AppliedPositions, res.AppliedSeq)
		}
		if stripped := appliedPositionsRE.ReplaceAll(a, nil); !bytes.Equal(stripped, b) {
			t.Fatalf("%s differs:\n--partitions %d: %s\n--partitions 1: %s", path, n, stripped, b)
		}
		compared++
	}
	e := fx.e
	for c := range e.Contests {
		contest := url.PathEscape(e.Contests[c].ID)
		for a := range e.Areas {
			compare("/api/v1/contests/" + contest + "/areas/" + url.PathEscape(e.Areas[a].ID))
		}
		for u := range e.Contests[c].Units {
			compare("/api/v1/contests/" + contest + "/units/" + url.PathEscape(e.Contests[c].Units[u].ID))
		}
		path := "/api/v1/export/results.csv?contest=" + url.QueryEscape(e.Contests[c].ID)
		if a, b := get(srv.url, path), get(one.url, path); !bytes.Equal(a, b) {
			t.Fatalf("%s differs (%d and %d bytes)", path, len(a), len(b))
		}
	}
	t.Logf("%d results identical; status %+v", compared, st)

	// tally submit waits on positions: a correction, then its outcome.
	var ms []struct{ Contest, Station string }
	if err := json.Unmarshal(fx.bodies[len(fx.bodies)-1], &ms); err != nil {
		t.Fatal(err)
	}
	m := ms[len(ms)-1]
	var view struct {
		Current   map[string]any `json:"current"`
		Partition *int           `json:"partition"`
	}
	if err := getJSON(client, srv.url+"/api/v1/contests/"+m.Contest+"/stations/"+m.Station, &view); err != nil {
		t.Fatal(err)
	}
	s, _ := e.StationIndex(m.Station)
	if view.Partition == nil || *view.Partition != events.StationPartition(e, s, n) || view.Current == nil {
		t.Fatalf("station view: partition %v, current %v; want partition %d", view.Partition, view.Current, events.StationPartition(e, s, n))
	}
	// The live stream of the station's unit: its current result first,
	// then the correction's change (the fold of its partition names the
	// unit by its index in the partition's part of the file).
	c, _ := e.ContestIndex(m.Contest)
	unit := e.Contests[c].Units[e.StationUnit(c, s)].ID
	stream := sseEvents(t, srv.url+"/api/v1/stream?contest="+url.QueryEscape(m.Contest)+"&unit="+url.QueryEscape(unit))
	var first sseResult
	select {
	case first = <-stream:
	case <-time.After(time.Minute):
		t.Fatal("no first event")
	}
	if first.Unit != unit || len(first.AppliedPositions) != n {
		t.Fatalf("first event: %+v", first)
	}
	corr := view.Current
	corr["version"] = corr["version"].(float64) + 1
	corr["reason"] = "sửa sau kiểm phiếu lại"
	file := filepath.Join(root, "correction.json")
	writeJSONFile(t, file, corr)
	r := runTally(t, time.Minute, nil, "submit", "--server", srv.url, file)
	if r.code != 0 || !strings.Contains(r.stdout, "(positions "+strconv.Itoa(*view.Partition)+":") || !strings.Contains(r.stdout, "folded: 1 applied") {
		t.Fatalf("tally submit: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	select {
	case ev := <-stream:
		// The correction's position, as tally submit printed it.
		k := strconv.Itoa(*view.Partition)
		mm := regexp.MustCompile(`\(positions ` + k + `:(\d+)\)`).FindStringSubmatch(r.stdout)
		if mm == nil {
			t.Fatalf("tally submit printed no position: %s", r.stdout)
		}
		if ev.Unit != unit || ev.AppliedSeq <= first.AppliedSeq || strconv.FormatUint(ev.AppliedPositions[k], 10) != mm[1] {
			t.Fatalf("after the correction: %+v, before %+v", ev, first)
		}
	case <-time.After(time.Minute): // tally submit returned once it was applied
		t.Fatal("no event for the corrected unit")
	}
	nist := get(srv.url, "/api/v1/export/nist-1500-100.json")
	if !bytes.Contains(nist, []byte("partition 3 at ")) {
		t.Fatalf("the NIST export does not state the partitions' positions: %.300s", nist)
	}

	// tally verify and tally rebuild, per partition.
	if code := srv.stop(t); code != 0 {
		t.Fatalf("tally serve exited %d:\n%s", code, srv.stderr.String())
	}
	r = runTally(t, time.Minute, nil, "verify", "--election", fx.electionFile, "--data", dirN)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("all %d partitions match", n)) {
		t.Fatalf("tally verify: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	before := dumpPartitions(t, dirN, e, n)
	r = runTally(t, time.Minute, nil, "rebuild", "--election", fx.electionFile, "--data", dirN)
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("rebuilt %d partitions", n)) {
		t.Fatalf("tally rebuild: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	after := dumpPartitions(t, dirN, e, n)
	for p := range n {
		if !slicesEqual(before[p], after[p]) {
			t.Fatalf("partition %d: the rebuilt store differs from the live one", p)
		}
	}
	t.Logf("rebuild: %s", strings.TrimSpace(r.stdout))
}

// dumpPartitions returns every key and value of each partition's store.
func dumpPartitions(t *testing.T, dataDir string, e *tally.Election, n int) [][][]byte {
	t.Helper()
	parts, err := projections.PartElections(e, n)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][][]byte, n)
	for p := range n {
		s, err := projections.Open(projections.PartitionDir(dataDir, p, n), parts[p])
		if err != nil {
			t.Fatalf("open partition %d: %v", p, err)
		}
		err = s.Dump(func(k, v []byte) error {
			out[p] = append(out[p], bytes.Clone(k), bytes.Clone(v))
			return nil
		})
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(out[p]) == 0 {
			t.Fatalf("partition %d: empty store", p)
		}
	}
	return out
}

func slicesEqual(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestPartitionsRefuseAnotherCount: the partitioning is fixed when the
// streams are first created; a start with another --partitions is refused
// (exit 1) with a message saying what exists.
func TestPartitionsRefuseAnotherCount(t *testing.T) {
	fx := newNightFixture(t, 4)
	client := &http.Client{Timeout: 30 * time.Second}
	root := t.TempDir()
	for _, tc := range []struct {
		first, then int
		want        string
	}{
		{4, 2, "already in 4 streams, TALLY_vn-2026_P0 to TALLY_vn-2026_P3 (--partitions 4); this start asks for --partitions 2"},
		{4, 1, "already in 4 streams, TALLY_vn-2026_P0 to TALLY_vn-2026_P3 (--partitions 4); this start asks for --partitions 1"},
		{1, 3, "already in one stream, TALLY_vn-2026 (--partitions 1); this start asks for --partitions 3"},
	} {
		dir := filepath.Join(root, fmt.Sprintf("%d-%d", tc.first, tc.then))
		srv := startServe(t, fx.electionFile, dir, "--partitions", strconv.Itoa(tc.first))
		submitAll(t, client, srv.url, fx.bodies[:3])
		if code := srv.stop(t); code != 0 {
			t.Fatalf("tally serve exited %d:\n%s", code, srv.stderr.String())
		}
		r := runTally(t, time.Minute, nil, "serve", "--election", fx.electionFile, "--data", dir, "--http", "127.0.0.1:0",
			"--nats-listen", "none", "--partitions", strconv.Itoa(tc.then))
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Fatalf("--partitions %d after %d: exit %d, want 1 and %q in:\n%s", tc.then, tc.first, r.code, tc.want, r.stderr)
		}
		t.Logf("--partitions %d after %d: %s", tc.then, tc.first, lastLine(r.stderr))
	}

	// Each partition's store holds the fingerprint of its part of the
	// file: a station renamed in one province changes that part, and the
	// start is refused.
	data, err := os.ReadFile(fx.electionFile)
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	st := file["stations"].([]any)
	last := st[len(st)-1].(map[string]any)
	last["name"] = last["name"].(string) + " (mới)"
	changed := filepath.Join(root, "changed.json")
	writeJSONFile(t, changed, file)
	r := runTally(t, time.Minute, nil, "serve", "--election", changed, "--data", filepath.Join(root, "4-2"), "--http", "127.0.0.1:0",
		"--nats-listen", "none", "--partitions", "4")
	si, _ := fx.e.StationIndex(last["id"].(string))
	dir := fmt.Sprintf("projections-p%d: ", events.StationPartition(fx.e, si, 4))
	if want := `the projections were built for a different election file: both are election "vn-2026", but the file's content changed`; r.code != 1 || !strings.Contains(r.stderr, dir+want) {
		t.Fatalf("a changed election file: exit %d, want 1 and %q in:\n%s", r.code, dir+want, r.stderr)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// sseResult is what the tests read of a result event.
type sseResult struct {
	Unit             string            `json:"unit"`
	AppliedSeq       uint64            `json:"applied_seq"`
	AppliedPositions map[string]uint64 `json:"applied_positions"`
}

// sseEvents reads the result events of GET url (an event stream) until the
// test ends.
func sseEvents(t *testing.T, url string) <-chan sseResult {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	t.Cleanup(func() { resp.Body.Close() })
	out := make(chan sseResult, 100)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var r sseResult
				if json.Unmarshal([]byte(line), &r) == nil {
					out <- r
				}
			}
		}
	}()
	return out
}
