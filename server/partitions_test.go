package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tallyvn/tally/bench/workload"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/server"
)

// TestPartitionsInProcess runs a server with 4 partitions and one with 1 in
// this process (so -race sees the partitions' folds committing at once),
// submits the same night to both from several goroutines each, waits on
// the 202s' positions (Server.WaitPositions), and checks that every result
// is the same, once applied_positions is left out of the partitioned one,
// and that the status, /readyz and /metrics gather every partition.
func TestPartitionsInProcess(t *testing.T) {
	const n = 4
	f, err := workload.National(workload.NationalConfig{Seed: 5, Scale: 0.01, Provinces: 12, TwoTier: true})
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.Parse()
	if err != nil {
		t.Fatal(err)
	}
	// Requests of up to 5 minutes, each request one station's: the
	// goroutines below send different stations, so both servers see each
	// station's minutes in the same order.
	byStation := map[int][][]byte{}
	var order []int
	err = workload.Night(e, workload.NightConfig{Seed: 5, Invalid: -1}, func(s *workload.Submission) error {
		if _, ok := byStation[s.Station]; !ok {
			order = append(order, s.Station)
		}
		byStation[s.Station] = append(byStation[s.Station], events.AppendJSON(nil, &s.Minutes))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	start := func(partitions int) *server.Server {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		srv, err := server.New(ctx, server.Config{Election: e, DataDir: t.TempDir(), HTTP: server.HTTPConfig{Addr: "127.0.0.1:0"}, NATS: server.NATSConfig{Listen: "none"},
			Fold: server.FoldConfig{Partitions: partitions, BatchSize: 16}})
		if err != nil {
			cancel()
			t.Fatalf("server.New: %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- srv.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
		return srv
	}
	srvN, srv1 := start(n), start(1)
	client := &http.Client{Timeout: time.Minute}
	post := func(srv *server.Server, body []byte) server.SubmitResponse {
		resp, err := client.Post(srv.URL()+"/api/v1/minutes", "application/x-ndjson", bytes.NewReader(body))
		if err != nil {
			t.Error(err)
			return server.SubmitResponse{}
		}
		defer resp.Body.Close()
		var a server.SubmitResponse
		if resp.StatusCode != http.StatusAccepted || json.NewDecoder(resp.Body).Decode(&a) != nil {
			t.Errorf("POST: %d", resp.StatusCode)
		}
		return a
	}
	var wg sync.WaitGroup
	answers := make(chan server.SubmitResponse, len(order)*8)
	const workers = 6
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(order); i += workers {
				ms := byStation[order[i]]
				for len(ms) > 0 {
					k := min(len(ms), 5)
					body := bytes.Join(ms[:k], []byte("\n"))
					answers <- post(srvN, body)
					post(srv1, body)
					ms = ms[k:]
				}
			}
		}()
	}
	wg.Wait()
	close(answers)
	if t.Failed() {
		t.FailNow()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	touched := map[int]bool{}
	for a := range answers {
		var sum uint64
		for p, seq := range a.Positions {
			touched[p] = true
			sum += seq
		}
		if len(a.Positions) == 0 || sum != a.Seq {
			t.Fatalf("202 %+v: positions must sum to seq", a)
		}
		if err := srvN.WaitPositions(ctx, a.Positions); err != nil {
			t.Fatal(err)
		}
	}
	if len(touched) != n {
		t.Fatalf("the night touched partitions %v of %d", touched, n)
	}
	var st1 server.Status
	getJSON(t, client, srv1.URL()+"/api/v1/status", &st1)
	if err := srv1.WaitApplied(ctx, st1.StreamSeq); err != nil {
		t.Fatal(err)
	}
	getJSON(t, client, srv1.URL()+"/api/v1/status", &st1)
	var stN server.Status
	getJSON(t, client, srvN.URL()+"/api/v1/status", &stN)
	var sum uint64
	for p := range n {
		if stN.AppliedPositions[p] != stN.StreamPositions[p] {
			t.Fatalf("status %+v: partition %d behind after WaitPositions of every 202", stN, p)
		}
		sum += stN.AppliedPositions[p]
	}
	if sum != stN.AppliedSeq || stN.AppliedSeq != st1.StreamSeq || stN.Applied != st1.Applied || stN.Stale != st1.Stale || stN.Duplicates != st1.Duplicates {
		t.Fatalf("status with %d partitions %+v, with one %+v", n, stN, st1)
	}
	if resp, err := client.Get(srvN.URL() + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	strip := regexp.MustCompile(`,"applied_positions":\{[^}]*\}`)
	compared := 0
	for c := range e.Contests {
		contest := url.PathEscape(e.Contests[c].ID)
		var paths []string
		for a := range e.Areas {
			paths = append(paths, "/api/v1/contests/"+contest+"/areas/"+url.PathEscape(e.Areas[a].ID))
		}
		for u := range e.Contests[c].Units {
			paths = append(paths, "/api/v1/contests/"+contest+"/units/"+url.PathEscape(e.Contests[c].Units[u].ID))
		}
		for _, p := range paths {
			a, b := getBody(t, client, srvN.URL()+p), getBody(t, client, srv1.URL()+p)
			if !bytes.Contains(a, []byte(`"applied_positions":{"0":`)) {
				t.Fatalf("%s: no applied_positions: %s", p, a)
			}
			if got := strip.ReplaceAll(a, nil); !bytes.Equal(got, b) {
				t.Fatalf("%s:\n%d partitions: %s\none:          %s", p, n, got, b)
			}
			compared++
		}
	}
	// The progress metrics sum every partition's provinces.
	mN, m1 := getBody(t, client, srvN.URL()+"/metrics"), getBody(t, client, srv1.URL()+"/metrics")
	for _, name := range []string{"tally_stations_expected", "tally_stations_reporting", "tally_stations_final"} {
		re := regexp.MustCompile(`(?m)^` + name + `\{contest="[^"]+"\} \d+$`)
		a, b := re.FindAll(mN, -1), re.FindAll(m1, -1)
		if len(a) != len(e.Contests) || fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("%s: %d partitions %q, one %q", name, n, a, b)
		}
	}
	if !bytes.Contains(mN, []byte("tally_applied_sequence "+strconv.FormatUint(stN.AppliedSeq, 10))) {
		t.Errorf("metrics: tally_applied_sequence is not the sum %d", stN.AppliedSeq)
	}
	t.Logf("%d stations, %d results identical, status %+v", len(order), compared, stN)
}

func getBody(t *testing.T, client *http.Client, u string) []byte {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s %v", u, resp.StatusCode, b.Bytes(), err)
	}
	return b.Bytes()
}

func getJSON(t *testing.T, client *http.Client, u string, v any) {
	t.Helper()
	if err := json.Unmarshal(getBody(t, client, u), v); err != nil {
		t.Fatal(err)
	}
}
