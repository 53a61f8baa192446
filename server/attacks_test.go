package server_test

// The attacks of issue 13, each reproduced against a running server over
// real HTTP and real NATS TCP connections (embedded nats-server with
// JetStream, Pebble on disk). These tests use only what the server offered
// before the fix, so that each can be run against the old code too: every
// one of them failed there.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/server"
)

// TestAttackNATSSideDoor (issue 13, 1): an unsealed election served with an
// operator token and a NATS listener. The token guards HTTP; an anonymous
// NATS client must not get around it: it is refused at connect, so it can
// neither publish minutes nor purge the stream.
func TestAttackNATSSideDoor(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *server.Config) {
		c.Gateway.Token = testToken
		c.NATS.Listen = "127.0.0.1:0"
	})
	ts.submitAs("Bearer "+testToken, object(qhFinal["LB-BD-01"]))
	if code, _, _ := ts.postAs("", object(qhFinal["LB-NT-01"])); code != http.StatusUnauthorized {
		t.Fatalf("POST without the token: %d, want 401", code)
	}
	url := ts.srv.NATSURL()
	if url == "" {
		t.Fatal("no NATS listener")
	}
	before := snapshot(ts, true)
	nc, err := nats.Connect(url, nats.MaxReconnects(0), nats.Timeout(3*time.Second))
	if err == nil {
		defer nc.Close()
		// What the attacker gets: minutes stored, the stream purged.
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ack, perr := js.Publish(ctx, events.Subject(ts.e, stationIndex(t, ts.e, "LB-NT-01"), "QH"), qhFinal["LB-NT-01"].json())
		_, rerr := nc.Request("$JS.API.STREAM.PURGE."+events.StreamName(ts.e.ID), nil, 2*time.Second)
		t.Fatalf("an anonymous NATS client was admitted: publish %+v %v; purge: %v", ack, perr, rerr)
	}
	t.Logf("attack %q: %v", "anonymous NATS client", err)
	if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("anonymous connection: %v, want an authorization error", err)
	}
	requireUnchanged(t, "anonymous NATS client", before, snapshot(ts, true))
}

// TestAttackMsgIDPoisoning (issue 13, 2): station A, a real NATS identity,
// publishes junk on its own subject with the Nats-Msg-Id the gateway will
// give station B's next minutes. B's genuine minutes must still be stored
// and applied: a 202 means stored.
func TestAttackMsgIDPoisoning(t *testing.T) {
	t.Parallel()
	a, b := newStationKey(t, "LB-BD-01"), newStationKey(t, "LB-BD-02")
	e := sealedElection(t, a, b)
	ts := startSealed(t, e, func(c *server.Config) { c.NATS.Listen = "127.0.0.1:0" })
	ts.submit(object(seal(t, b.seed, qhFinal["LB-BD-02"])))

	// B's next version, and the id the gateway derives from it.
	bodyV2 := object(seal(t, b.seed, qhFinal["LB-BD-02"].with("version", 2, "votes", qhVotes(100, 500, 300, 200, 100))))
	d, err := events.DecodeJSON([]byte(bodyV2))
	if err != nil || len(d) != 1 {
		t.Fatal(err)
	}
	id := events.MsgID(&d[0].Minutes, events.AppendBinary(nil, &d[0].Minutes))

	errs := make(chan error, 8)
	ncA := stationConn(t, ts.srv.NATSURL(), a, errs)
	jsA, err := jetstream.New(ncA)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	junk := &nats.Msg{Subject: events.Subject(e, stationIndex(t, e, a.id), "QH"), Data: []byte(`{"junk":true}`),
		Header: nats.Header{jetstream.MsgIDHeader: []string{id}}}
	ack, err := jsA.PublishMsg(ctx, junk)
	if err != nil {
		t.Fatalf("station A's publish on its own subject: %v", err)
	}
	ts.waitApplied(ack.Sequence)

	code, _, raw := ts.postAs("", bodyV2)
	t.Logf("attack %q: B's genuine minutes got %d %s", "message id claimed by another station", code, strings.TrimSpace(string(raw)))
	if code != http.StatusAccepted {
		t.Fatalf("B's genuine minutes: %d %s, want 202", code, raw)
	}
	var got struct {
		Seq        uint64 `json:"seq"`
		Duplicates int    `json:"duplicates"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	ts.waitApplied(got.Seq)
	st, rawSt := ts.station("QH", b.id)
	var cur struct {
		Version int64 `json:"version"`
	}
	json.Unmarshal(st.Current, &cur)
	if cur.Version != 2 || got.Duplicates != 0 || got.Seq == ack.Sequence {
		t.Fatalf("202 %s, but station B's record is %s: its genuine minutes were not stored", raw, rawSt)
	}
	// A retry is stored again (the id is still A's), and the fold sees a
	// duplicate: nothing changes.
	if code, _, raw := ts.postAs("", bodyV2); code != http.StatusAccepted {
		t.Errorf("retry: %d %s, want 202", code, raw)
	}
}

// TestAttackCrossSiteSubmission (issue 13, 3): a web page on another site
// makes its visitor's browser POST minutes to a tally it can reach
// (loopback included). A simple request (text/plain, no preflight) is
// refused with 415, a foreign Origin with 403; tally's own page and
// clients without Origin still submit.
func TestAttackCrossSiteSubmission(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	post := func(contentType, origin, body string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodPost, ts.url+"/api/v1/minutes", strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := ts.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, raw
	}
	body := object(qhFinal["LB-NT-01"])
	before := snapshot(ts, true)
	for _, tc := range []struct {
		name, contentType, origin string
		code                      int
	}{
		{"text/plain from another site", "text/plain", "http://evil.example", 415},
		{"text/plain without Origin", "text/plain;charset=UTF-8", "", 415},
		{"form from another site", "application/x-www-form-urlencoded", "http://evil.example", 415},
		{"no Content-Type", "", "", 415},
		{"JSON from another site", "application/json", "http://evil.example", 403},
		{"JSON from another port of the same host", "application/json", "http://" + strings.Replace(ts.srv.Addr(), ":", ":1", 1), 403},
		{"JSON from the https twin of the page", "application/json", "https://" + ts.srv.Addr(), 403},
	} {
		code, raw := post(tc.contentType, tc.origin, body)
		t.Logf("attack %q: got %d %s", tc.name, code, strings.TrimSpace(string(raw)))
		if code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, code, raw, tc.code)
		}
	}
	requireUnchanged(t, "cross-site submissions", before, snapshot(ts, true))
	for _, tc := range []struct{ name, contentType, origin string }{
		{"tally's own page", "application/json; charset=utf-8", ts.url},
		{"NDJSON without Origin", "application/x-ndjson", ""},
	} {
		if code, raw := post(tc.contentType, tc.origin, body); code != http.StatusAccepted {
			t.Errorf("%s: %d %s, want 202", tc.name, code, raw)
		}
	}
}

// TestAttackHSTS (issue 13, 3): over TLS every answer carries
// Strict-Transport-Security, so a browser never falls back to plain HTTP.
func TestAttackHSTS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := selfSigned(t)
	ts := startServer(t, func(c *server.Config) { c.HTTP.TLSCertFile, c.HTTP.TLSKeyFile = certFile, keyFile })
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	for _, path := range []string{"/", "/api/v1/status"} {
		resp, err := client.Get("https://" + ts.srv.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if h := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(h, "max-age=") {
			t.Errorf("GET %s over TLS: Strict-Transport-Security %q, want max-age=...", path, h)
		}
	}
}

// TestAttackTooManyStreams (issue 13, 5): one client opening event streams
// without end gets 503 past its cap (16 by default), counted in
// tally_sse_refused_total; closing one lets it open another.
func TestAttackTooManyStreams(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0}}
	defer client.CloseIdleConnections()
	open := func() *http.Response {
		resp, err := client.Get(ts.url + "/api/v1/stream?contest=QH&area=LB")
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	var streams []*http.Response
	defer func() {
		for _, r := range streams {
			r.Body.Close()
		}
	}()
	const perClient = 16
	for len(streams) < perClient {
		r := open()
		if r.StatusCode != http.StatusOK {
			r.Body.Close()
			t.Fatalf("stream %d: %d, want 200 up to %d", len(streams)+1, r.StatusCode, perClient)
		}
		streams = append(streams, r)
	}
	r := open()
	if r.StatusCode == http.StatusOK { // a stream: its body never ends
		streams = append(streams, r)
		t.Fatalf("stream %d from one client: 200, want 503", perClient+1)
	}
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
	r.Body.Close()
	t.Logf("attack %q: stream %d got %d %s", "stream flood from one client", perClient+1, r.StatusCode, strings.TrimSpace(string(raw)))
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("stream %d from one client: %d, want 503 with Retry-After", perClient+1, r.StatusCode)
	}
	if _, _, m := ts.do(http.MethodGet, "/metrics", "", nil); !strings.Contains(string(m), "tally_sse_refused_total 1\n") {
		t.Errorf("/metrics lacks tally_sse_refused_total 1")
	}
	// One closed, one more may open: wait until the server has let go of
	// it (the refusal count is the progress bound: each try that is
	// refused adds one, and a try is made only after the last was
	// answered).
	streams[0].Body.Close()
	streams = streams[1:]
	for {
		r := open()
		if r.StatusCode == http.StatusOK {
			streams = append(streams, r)
			break
		}
		r.Body.Close()
		if r.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("after closing a stream: %d", r.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAttackDuplicateMemberNames (issue 13): JSON repeating a member name
// reads differently to different parsers (first wins, last wins). The
// gateway answers 400; minutes published straight to NATS with one are
// rejected by the fold with rule duplicate_name.
func TestAttackDuplicateMemberNames(t *testing.T) {
	t.Parallel()
	a, b := newStationKey(t, "LB-BD-01"), newStationKey(t, "LB-BD-02")
	e := sealedElection(t, a, b)
	ts := startSealed(t, e, func(c *server.Config) { c.NATS.Listen = "127.0.0.1:0" })
	genuine := string(seal(t, a.seed, qhFinal["LB-BD-01"]).json())
	before := snapshot(ts, true)
	for _, tc := range []struct{ name, body string }{
		{"a count twice", strings.Replace(genuine, `"valid":`, `"valid":1,"valid":`, 1)},
		{"a candidate twice", strings.Replace(genuine, `"QH-HN-03-1":`, `"QH-HN-03-1":0,"QH-HN-03-1":`, 1)},
		{"a name twice, once escaped", strings.Replace(genuine, `"status":`, `"st\u0061tus":"partial","status":`, 1)},
		{"the station twice", strings.Replace(genuine, `{`, `{"station":"LB-BD-02",`, 1)},
	} {
		if tc.body == genuine {
			t.Fatalf("%s: the fixture did not change", tc.name)
		}
		code, _, raw := ts.postAs("", tc.body)
		t.Logf("attack %q: got %d %s", tc.name, code, strings.TrimSpace(string(raw)))
		if code != http.StatusBadRequest || !strings.Contains(string(raw), "twice") {
			t.Errorf("%s: %d %s, want 400 naming the repeated member", tc.name, code, raw)
		}
	}
	requireUnchanged(t, "duplicate member names", before, snapshot(ts, true))

	errs := make(chan error, 8)
	jsA, _ := jetstream.New(stationConn(t, ts.srv.NATSURL(), a, errs))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ack, err := jsA.Publish(ctx, events.Subject(e, stationIndex(t, e, a.id), "QH"), []byte(strings.Replace(genuine, `"valid":`, `"valid":1,"valid":`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	ts.waitApplied(ack.Sequence)
	var found bool
	for _, r := range ts.rejections("") {
		if r.Seq == ack.Sequence {
			found = true
			if !slices.Contains(rules(r.Errors), "duplicate_name") {
				t.Errorf("the fold's rejection names rules %v, want duplicate_name", rules(r.Errors))
			}
		}
	}
	if !found {
		t.Errorf("minutes with a repeated member published to NATS were not rejected")
	}
}

// TestAttackRejectionInOwnHistory (issue 13): station A publishes station
// B's minutes on its own subject. The rejection goes into A's history (the
// publisher's), not B's, which A could otherwise fill.
func TestAttackRejectionInOwnHistory(t *testing.T) {
	t.Parallel()
	a, b := newStationKey(t, "LB-BD-01"), newStationKey(t, "LB-BD-02")
	e := sealedElection(t, a, b)
	ts := startSealed(t, e, func(c *server.Config) { c.NATS.Listen = "127.0.0.1:0" })
	errs := make(chan error, 8)
	jsA, _ := jetstream.New(stationConn(t, ts.srv.NATSURL(), a, errs))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ack, err := jsA.Publish(ctx, events.Subject(e, stationIndex(t, e, a.id), "QH"), seal(t, b.seed, qhFinal["LB-BD-02"]).json())
	if err != nil {
		t.Fatal(err)
	}
	ts.waitApplied(ack.Sequence)
	inHistory := func(station string) string {
		st, _ := ts.station("QH", station)
		for _, h := range st.History {
			if h.Seq == ack.Sequence {
				return h.Outcome
			}
		}
		return ""
	}
	if got := inHistory(b.id); got != "" {
		t.Errorf("station B's history holds A's message %d (%s)", ack.Sequence, got)
	}
	if got := inHistory(a.id); got != "rejected" {
		t.Errorf("station A's history: message %d %q, want rejected", ack.Sequence, got)
	}
}

// TestAttackVersionBound (issue 13): version is at most 2^53 − 1; above it
// the answer is 422 on field version, saying so.
func TestAttackVersionBound(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	before := snapshot(ts, true)
	code, raw := ts.post(object(qhFinal["LB-NT-01"].with("version", json.Number("9007199254740992"))))
	t.Logf("attack %q: got %d %s", "version 2^53", code, strings.TrimSpace(string(raw)))
	if code != http.StatusUnprocessableEntity || !strings.Contains(string(raw), `"field":"version"`) || !strings.Contains(string(raw), "2^53") {
		t.Fatalf("version 2^53: %d %s, want 422 on version naming 2^53 − 1", code, raw)
	}
	requireUnchanged(t, "version 2^53", before, snapshot(ts, true))
	ts.submit(object(qhFinal["LB-NT-01"].with("version", json.Number("9007199254740991"))))
}

// TestAttackContentLengthWithTransferEncoding (issue 13): a request with
// both Content-Length and Transfer-Encoding (request smuggling through a
// proxy that frames it by the other) gets its answer, then the connection
// is closed (RFC 9112 §6.3).
func TestAttackContentLengthWithTransferEncoding(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	for _, tc := range []struct{ name, headers string }{
		{"Content-Length first", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"},
		{"Transfer-Encoding first, odd case", "transfer-encoding: chunked\r\nCONTENT-LENGTH: 5\r\n"},
	} {
		conn, err := net.Dial("tcp", ts.srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		body := object(qhFinal["LB-NT-01"])
		req := "POST /api/v1/minutes HTTP/1.1\r\nHost: " + ts.srv.Addr() + "\r\nContent-Type: application/json\r\n" + tc.headers + "\r\n" +
			strconv.FormatInt(int64(len(body)), 16) + "\r\n" + body + "\r\n0\r\n\r\n"
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Logf("attack %q: got %d, Connection: %q", tc.name, resp.StatusCode, resp.Header.Get("Connection"))
		if !resp.Close {
			t.Errorf("%s: the answer does not close the connection", tc.name)
		}
		if n, err := br.ReadByte(); err != io.EOF {
			t.Errorf("%s: the connection stays open after the answer (read %v, %v)", tc.name, n, err)
		}
		conn.Close()
	}
	// A plain keep-alive request keeps its connection.
	resp, err := ts.client.Post(ts.url+"/api/v1/minutes", "application/json", strings.NewReader(object(qhFinal["LB-NT-02"])))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Close {
		t.Error("a request with Content-Length only closes its connection")
	}
}
