package server_test

import (
	"context"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tallyvn/tally/server"
)

// runServerOn starts a server on dir and returns it with a stop function
// that waits for it to end (so another may open the same directory).
func runServerOn(t *testing.T, dir string) (*testServer, func()) {
	t.Helper()
	e := parseElection(t)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Config{Election: e, DataDir: dir, HTTP: server.HTTPConfig{Addr: "127.0.0.1:0"}, NATS: server.NATSConfig{Listen: "none"}})
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	ts := &testServer{t: t, e: e, srv: srv, url: "http://" + srv.Addr(), client: &http.Client{Timeout: 10 * time.Second}}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ts.client.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return ts, stop
}

type gatewayRejection struct {
	Seq     uint64      `json:"seq"`
	Time    time.Time   `json:"time"`
	Station string      `json:"station"`
	Contest string      `json:"contest"`
	Version int64       `json:"version"`
	Source  string      `json:"source"`
	Errors  []violation `json:"errors"`
}

// TestGatewayRefusalsKeptApartAndDurable: minutes the gateway refuses (422)
// are listed by GET /api/v1/rejections, marked "gateway", beside the fold's
// rejections (marked "fold"); they survive a restart; and they never reach
// the stream or change a result.
func TestGatewayRefusalsKeptApartAndDurable(t *testing.T) {
	dir := t.TempDir()
	ts, stop := runServerOn(t, dir)
	ts.submit(array(qhFinal["LB-BD-01"], qhFinal["LB-BD-02"]))
	// A conflict: the fold rejects it.
	ts.submit(object(qhFinal["LB-BD-01"].with("reason", "khác nội dung")))

	results := func(ts *testServer) string {
		var b strings.Builder
		for _, p := range []string{"/api/v1/contests/QH/areas/LB", "/api/v1/contests/QH/areas/HN", "/api/v1/contests/QH/units/QH-HN-03"} {
			b.Write(ts.get(p, http.StatusOK, nil))
		}
		return b.String()
	}
	before, stBefore := results(ts), ts.status()

	// One request with a valid and two invalid minutes: 422, nothing
	// stored; the two invalid ones are refusals.
	code, raw := ts.post(array(
		qhFinal["LB-NT-01"],
		qhFinal["LB-NT-02"].with("voted", 800), // voted > registered (700)
		minutes("QH", "LB-TB-01", 1, "final", counts{600, 500, 500, 500, 490, 10}, map[string]int64{"QH-HN-03-1": 100, "X-9": 5}),
	))
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("invalid minutes: %d %s", code, raw)
	}

	check := func(ts *testServer) []gatewayRejection {
		t.Helper()
		var all []gatewayRejection
		ts.get("/api/v1/rejections", http.StatusOK, &all)
		var got []string
		for _, r := range all {
			got = append(got, r.Source+":"+r.Station)
			if r.Source == server.SourceGateway && (r.Seq != 0 || len(r.Errors) == 0 || r.Contest != "QH" || r.Version == 0 || r.Time.IsZero()) {
				t.Errorf("gateway refusal %+v: want no seq, its contest, version, time and errors", r)
			}
		}
		if want := []string{"fold:LB-BD-01", "gateway:LB-NT-02", "gateway:LB-TB-01"}; !reflect.DeepEqual(got, want) {
			t.Errorf("rejections %v, want %v", got, want)
		}
		var one []gatewayRejection
		ts.get("/api/v1/rejections?station=LB-TB-01", http.StatusOK, &one)
		if len(one) != 1 || one[0].Source != server.SourceGateway || !strings.Contains(strings.Join(rules(one[0].Errors), ","), "candidate") {
			t.Errorf("rejections of LB-TB-01: %+v, want one gateway refusal naming the candidate rule", one)
		}
		if after := results(ts); after != before {
			t.Errorf("results changed by refused minutes:\nbefore %s\nafter  %s", before, after)
		}
		var st struct {
			StreamSeq uint64 `json:"stream_seq"`
			Rejected  uint64 `json:"rejected"`
			Refused   uint64 `json:"refused"`
		}
		ts.get("/api/v1/status", http.StatusOK, &st)
		if st.StreamSeq != stBefore.StreamSeq || st.Rejected != 1 || st.Refused != 2 {
			t.Errorf("status after refusals: stream_seq %d (before %d), rejected %d, refused %d; want the stream unchanged, 1 rejected, 2 refused",
				st.StreamSeq, stBefore.StreamSeq, st.Rejected, st.Refused)
		}
		return all
	}
	first := check(ts)
	stop()

	ts2, _ := runServerOn(t, dir)
	ts2.waitApplied(stBefore.AppliedSeq)
	if second := check(ts2); !reflect.DeepEqual(first, second) {
		t.Errorf("after a restart the rejections are\n%+v\nwere\n%+v", second, first)
	}
}

type areaReport struct {
	Stations []struct {
		Station      string     `json:"station"`
		Status       string     `json:"status"`
		LastTime     *time.Time `json:"last_time"`
		ReportedTime *time.Time `json:"reported_time"`
		FinalTime    *time.Time `json:"final_time"`
		Withdrawals  int        `json:"withdrawals"`
	} `json:"stations"`
	Warnings []struct {
		Code    string `json:"code"`
		Station string `json:"station"`
	} `json:"warnings"`
	Final struct {
		Stations int              `json:"stations_final"`
		Valid    int64            `json:"valid"`
		Votes    map[string]int64 `json:"votes"`
	} `json:"final"`
	AppliedSeq uint64 `json:"applied_seq"`
}

// TestAreaReportWarningsTimesAndFinalShares: one station per warning rule,
// each warning on its station only; times from the stream on every history
// entry and in the report; the final-only sums equal the final minutes'.
func TestAreaReportWarningsTimesAndFinalShares(t *testing.T) {
	ts := startServer(t, nil)
	start := time.Now().Add(-time.Second)
	bd01 := minutes("QH", "LB-BD-01", 1, "final", counts{1000, 1000, 1000, 1000, 980, 20}, qhVotes(700, 600, 500, 300, 200)) // W1: turnout 100%
	bd02 := minutes("QH", "LB-BD-02", 1, "final", counts{850, 700, 700, 700, 690, 10}, qhVotes(400, 500, 300, 200, 100))     // W3: 850 on the list, the file 800
	nt01 := minutes("QH", "LB-NT-01", 1, "partial", counts{900, 850, 850, 850, 650, 200}, qhVotes(300, 250, 220, 100, 90))   // W2: 23.5% invalid
	nt02 := func(v int, st string) M {
		if st == "withdrawn" {
			return withdrawn("QH", "LB-NT-02", v, "kiểm lại")
		}
		return minutes("QH", "LB-NT-02", v, st, counts{700, 600, 600, 600, 590, 10}, qhVotes(350, 300, 200, 250, 100))
	}
	tb02 := minutes("QH", "LB-TB-02", 1, "final", counts{500, 450, 450, 450, 440, 10}, qhVotes(250, 240, 100, 200, 60))
	ts.submit(array(bd01, bd02, nt01, nt02(1, "partial"), nt02(2, "withdrawn"), nt02(3, "partial"), nt02(4, "withdrawn"), nt02(5, "final"), tb02))
	ts.submit(object(tb02.with("reason", "khác"))) // W6: a conflict
	if code, raw := ts.post(object(minutes("QH", "LB-TB-01", 1, "final", counts{600, 700, 500, 500, 490, 10}, qhVotes(1)))); code != http.StatusUnprocessableEntity {
		t.Fatalf("invalid minutes: %d %s", code, raw) // W5: refused
	}

	var rep areaReport
	ts.get("/api/v1/contests/QH/areas/LB/report", http.StatusOK, &rep)
	var got []string
	for _, w := range rep.Warnings {
		got = append(got, w.Code+":"+w.Station)
	}
	sort.Strings(got)
	want := []string{"W1:LB-BD-01", "W2:LB-NT-01", "W3:LB-BD-02", "W4:LB-NT-02", "W5:LB-TB-01", "W6:LB-TB-02"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings %v, want %v", got, want)
	}
	now := time.Now().Add(time.Second)
	inRange := func(p *time.Time) bool { return p != nil && p.After(start) && p.Before(now) }
	var notReported, notFinal []string
	for _, s := range rep.Stations {
		switch s.Status {
		case "":
			notReported = append(notReported, s.Station)
			if s.LastTime != nil || s.ReportedTime != nil {
				t.Errorf("%s never reached the stream but has times %+v", s.Station, s)
			}
			continue
		case "partial":
			notFinal = append(notFinal, s.Station)
		}
		if !inRange(s.LastTime) || !inRange(s.ReportedTime) {
			t.Errorf("%s: last %v, reported %v; want both within the test", s.Station, s.LastTime, s.ReportedTime)
		}
		if (s.Status == "final") != (s.FinalTime != nil) {
			t.Errorf("%s: status %s, final time %v", s.Station, s.Status, s.FinalTime)
		}
	}
	if !reflect.DeepEqual(notReported, []string{"LB-TB-01"}) || !reflect.DeepEqual(notFinal, []string{"LB-NT-01"}) {
		t.Errorf("not reported %v, not final %v; want [LB-TB-01] and [LB-NT-01]", notReported, notFinal)
	}

	// Final minutes only: every station but LB-NT-01 (partial) and
	// LB-TB-01 (none).
	finals := []M{bd01, bd02, nt02(5, "final"), tb02}
	var valid int64
	votes := map[string]int64{}
	for _, m := range finals {
		valid += m["valid"].(int64)
		for k, v := range m["votes"].(map[string]int64) {
			votes[k] += v
		}
	}
	if rep.Final.Stations != 4 || rep.Final.Valid != valid || !reflect.DeepEqual(rep.Final.Votes, votes) {
		t.Errorf("area final shares %+v, want 4 stations, valid %d, votes %v", rep.Final, valid, votes)
	}
	var unit struct {
		Stations int              `json:"stations_final"`
		Partial  int              `json:"stations_partial"`
		Valid    int64            `json:"valid"`
		Votes    map[string]int64 `json:"votes"`
	}
	ts.get("/api/v1/contests/QH/units/QH-HN-03/final", http.StatusOK, &unit)
	if unit.Stations != 4 || unit.Partial != 1 || unit.Valid != valid || !reflect.DeepEqual(unit.Votes, votes) {
		t.Errorf("unit final shares %+v, want 4 final, 1 partial, valid %d, votes %v", unit, valid, votes)
	}

	// Station history: a time on every entry, in stream order.
	var st struct {
		History []struct {
			Seq  uint64     `json:"seq"`
			Time *time.Time `json:"time"`
		} `json:"history"`
	}
	ts.get("/api/v1/contests/QH/stations/LB-NT-02", http.StatusOK, &st)
	if len(st.History) != 5 {
		t.Fatalf("LB-NT-02 history has %d entries, want 5", len(st.History))
	}
	for i, h := range st.History {
		if !inRange(h.Time) || (i > 0 && h.Time.Before(*st.History[i-1].Time)) {
			t.Errorf("history entry %d (seq %d): time %v", i, h.Seq, h.Time)
		}
	}

	for _, p := range []string{"/api/v1/contests/XX/areas/LB/report", "/api/v1/contests/QH/areas/XX/report", "/api/v1/contests/QH/units/Q-01/final"} {
		raw := ts.get(p, http.StatusNotFound, nil)
		requireErrorJSON(t, p, raw)
	}
}
