package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tallyvn/tally/bench/workload"
	"github.com/tallyvn/tally/server"
	"github.com/tallyvn/tally/tally"
)

const simLongBien = "../../examples/longbien/election.json"

// simServer starts a server in-process for election file path and returns
// its URL; it is stopped when the test ends.
func simServer(t *testing.T, path string) string {
	t.Helper()
	e, err := loadElection(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Config{Election: e, DataDir: t.TempDir(), HTTP: server.HTTPConfig{Addr: "127.0.0.1:0"}, NATS: server.NATSConfig{Listen: "none"}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return "http://" + srv.Addr()
}

func simGet(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, body)
	}
}

// simCaughtUp waits until the fold has applied the whole stream.
func simCaughtUp(t *testing.T, url string) server.Status {
	t.Helper()
	w := newStallWatch()
	for {
		var st server.Status
		simGet(t, url+"/api/v1/status", &st)
		if st.AppliedSeq == st.StreamSeq {
			return st
		}
		if w.stalled(st.AppliedSeq, st.StreamSeq) {
			t.Fatalf("the fold stopped catching up: applied_seq did not move for %s: %+v", stallWindow, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// simKinds counts the submissions of a night by kind.
func simKinds(t *testing.T, path string, cfg workload.NightConfig) (map[workload.Kind]int, time.Duration) {
	t.Helper()
	e, err := loadElection(path)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[workload.Kind]int{}
	var last time.Duration
	if err := workload.Night(e, cfg, func(s *workload.Submission) error {
		kinds[s.Kind]++
		last = s.At
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return kinds, last
}

func TestSimulateLongBien(t *testing.T) {
	t.Parallel()
	url := simServer(t, simLongBien)
	var stdout, stderr bytes.Buffer
	code := run([]string{"simulate", "--server", url, "--election", simLongBien, "--speed", "0"}, &stdout, &stderr)
	t.Logf("stdout:\n%sstderr:\n%s", &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("simulate exited %d, want 0", code)
	}
	kinds, _ := simKinds(t, simLongBien, workload.NightConfig{Seed: 1})
	for _, want := range []string{
		"unexpected errors           0",
		fmt.Sprintf("rejected as expected  %7d", kinds[workload.Invalid]),
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if !strings.Contains(stderr.String(), "100%") {
		t.Errorf("no final progress line on stderr")
	}

	st := simCaughtUp(t, url)
	if st.Applied == 0 || st.Rejected != 0 {
		t.Errorf("status %+v: want minutes applied and none rejected by the fold", st)
	}
	var unit struct {
		StationsExpected int              `json:"stations_expected"`
		StationsFinal    int              `json:"stations_final"`
		Status           tally.UnitStatus `json:"status"`
		Winners          []string         `json:"winners"`
	}
	// HDND-HN-01 lies wholly in the file (QH-HN-02 has stations outside it,
	// which never report).
	simGet(t, url+"/api/v1/contests/HDND-HN/units/HDND-HN-01", &unit)
	if unit.StationsFinal != unit.StationsExpected || unit.StationsExpected == 0 {
		t.Errorf("HDND-HN-01: %d of %d stations final, want all", unit.StationsFinal, unit.StationsExpected)
	}
	if unit.Status == tally.Counting {
		t.Errorf("HDND-HN-01 is still counting after the night")
	}
	t.Logf("HDND-HN-01: %s, winners %v", unit.Status, unit.Winners)
}

// TestSimulateNational plays a generated election with its four contests.
func TestSimulateNational(t *testing.T) {
	t.Parallel()
	f, err := workload.National(workload.NationalConfig{Seed: 1, Scale: 0.01, Provinces: 1})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "election.json")
	var buf bytes.Buffer
	if err := f.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	url := simServer(t, path)
	var stdout, stderr bytes.Buffer
	code := run([]string{"simulate", "--server", url, "--election", path, "--speed", "0", "--seed", "7", "--concurrency", "4"}, &stdout, &stderr)
	t.Logf("stdout:\n%sstderr:\n%s", &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("simulate exited %d, want 0", code)
	}
	st := simCaughtUp(t, url)
	if st.Applied == 0 || st.Rejected != 0 {
		t.Errorf("status %+v: want minutes applied and none rejected by the fold", st)
	}
	var area struct {
		StationsExpected int `json:"stations_expected"`
		StationsFinal    int `json:"stations_final"`
	}
	for _, c := range f.Contests {
		simGet(t, url+"/api/v1/contests/"+c.ID+"/areas/HN", &area)
		if area.StationsFinal != area.StationsExpected || area.StationsExpected == 0 {
			t.Errorf("%s in HN: %d of %d stations final, want all", c.ID, area.StationsFinal, area.StationsExpected)
		}
	}
}

// TestSimulatePace checks that --speed spreads the night: it cannot end
// before its last submission's simulated time divided by the speed.
func TestSimulatePace(t *testing.T) {
	t.Parallel()
	url := simServer(t, simLongBien)
	const speed = 30000
	_, last := simKinds(t, simLongBien, workload.NightConfig{Seed: 3, Stations: 4})
	start := time.Now()
	var stdout, stderr bytes.Buffer
	code := run([]string{"simulate", "--server", url, "--election", simLongBien, "--speed", fmt.Sprint(speed), "--seed", "3", "--stations", "4"}, &stdout, &stderr)
	elapsed := time.Since(start)
	if code != exitOK {
		t.Fatalf("simulate exited %d, want 0\n%s%s", code, &stdout, &stderr)
	}
	if want := last / speed; elapsed < want {
		t.Errorf("the night took %s, want at least %s (%s simulated at speed %d)", elapsed, want, workload.Clock(last), speed)
	}
}

func TestSimulateUsage(t *testing.T) {
	t.Parallel()
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		args      []string
		code      int
		outputHas string
	}{
		{[]string{"--help"}, exitOK, "Usage: tally simulate"},
		{nil, exitUsage, "--election is required"},
		{[]string{"--election", simLongBien, "--speed", "-1"}, exitUsage, "--speed"},
		{[]string{"--election", simLongBien, "--concurrency", "0"}, exitUsage, "--concurrency"},
		{[]string{"--election", simLongBien, "--stations", "-3"}, exitUsage, "--stations"},
		{[]string{"--election", simLongBien, "extra"}, exitUsage, "extra"},
		{[]string{"--no-such-flag"}, exitUsage, "no-such-flag"},
		{[]string{"--election", "no-such-file.json"}, exitFailed, "no-such-file.json"},
		{[]string{"--election", simLongBien, "--server", down, "--retry-for", "0"}, exitFailed, down},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"simulate"}, tc.args...), &stdout, &stderr)
		out := stdout.String() + stderr.String()
		if code != tc.code || !strings.Contains(out, tc.outputHas) {
			t.Errorf("simulate %q: exit %d, want %d, with %q in:\n%s", tc.args, code, tc.code, tc.outputHas, out)
		}
	}
}

// TestSimulateWrongElection refuses to play one election against a server
// running another.
func TestSimulateWrongElection(t *testing.T) {
	t.Parallel()
	url := simServer(t, simLongBien)
	f, err := workload.National(workload.NationalConfig{Scale: 0.01, Provinces: 1})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "other.json")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.WriteJSON(out); err != nil {
		t.Fatal(err)
	}
	out.Close()
	var stdout, stderr bytes.Buffer
	code := run([]string{"simulate", "--server", url, "--election", path}, &stdout, &stderr)
	if code != exitFailed || !strings.Contains(stderr.String(), `runs election "hn-2021"`) {
		t.Errorf("exit %d, want 1 naming the server's election; stderr:\n%s", code, &stderr)
	}
}
