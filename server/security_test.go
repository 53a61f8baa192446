package server_test

// Security tests (issue 5): attacks on a running server over real HTTP and
// real NATS TCP connections, an embedded NATS server with JetStream and
// real Pebble projections, no mocks. Each attack compares what the server
// publishes before and after it, to prove the attack changed nothing, and
// logs what the attacker got.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/server"
	"github.com/tallyvn/tally/tally"
)

// stationKey is a station's seal key pair.
type stationKey struct {
	id   string
	seed []byte
	pub  string
}

func newStationKey(t *testing.T, id string) stationKey {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	return stationKey{id: id, seed: seed, pub: pub}
}

// sealedElection is the contract fixture with LB-BD-01 and LB-BD-02 sealed
// (same ward, same units: one's minutes fit the other's); the other
// stations have no seal.
func sealedElection(t *testing.T, keys ...stationKey) *tally.Election {
	t.Helper()
	var file map[string]any
	if err := json.Unmarshal([]byte(electionJSON), &file); err != nil {
		t.Fatal(err)
	}
	for _, st := range file["stations"].([]any) {
		st := st.(map[string]any)
		for _, k := range keys {
			if st["id"] == k.id {
				st["seal"] = k.pub
			}
		}
	}
	data, _ := json.Marshal(file)
	e, err := tally.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if p := events.CheckSeals(e); len(p) > 0 {
		t.Fatal(p)
	}
	return e
}

// startSealed starts a server for e; configure may adjust the config.
func startSealed(t *testing.T, e *tally.Election, configure func(*server.Config)) *testServer {
	t.Helper()
	ts := startServer(t, func(c *server.Config) {
		c.Election = e
		if configure != nil {
			configure(c)
		}
	})
	ts.e = e
	return ts
}

// seal returns m signed with seed, as a station's software sends it.
func seal(t *testing.T, seed []byte, m M) M {
	t.Helper()
	d, err := events.DecodeJSON(m.with("signature", del).json())
	if err != nil || len(d) != 1 || len(d[0].Problems) > 0 {
		t.Fatalf("seal %v: %v %v", m, err, d)
	}
	sig, err := events.Sign(seed, &d[0].Minutes)
	if err != nil {
		t.Fatal(err)
	}
	return m.with("signature", sig)
}

// snapshot is everything the server publishes about the fixture: status,
// results of every area and unit, the sealed stations' records and the
// rejections, as raw answers. exact keeps them byte for byte (an attack
// refused at the gateway stores nothing, so not even a sequence moves);
// otherwise (an attack that reaches the stream, rejected by the fold)
// sequences, the stations' histories and the rejections are left out and
// the status keeps its applied and duplicates counters only.
func snapshot(ts *testServer, exact bool) map[string]string {
	ts.t.Helper()
	paths := []string{"/api/v1/status"}
	for _, a := range []string{"HN", "LB", "LB-BD", "LB-NT", "LB-TB"} {
		paths = append(paths, "/api/v1/contests/QH/areas/"+a)
	}
	paths = append(paths, "/api/v1/contests/QH/units/QH-HN-03", "/api/v1/contests/HDND-LB/units/Q-01",
		"/api/v1/contests/HDND-LB/units/Q-02", "/api/v1/contests/HDND-LB/areas/LB")
	for _, s := range []string{"LB-BD-01", "LB-BD-02", "LB-NT-01"} {
		paths = append(paths, "/api/v1/contests/QH/stations/"+s, "/api/v1/contests/HDND-LB/stations/"+s)
	}
	if exact {
		paths = append(paths, "/api/v1/rejections")
	}
	out := map[string]string{}
	for _, p := range paths {
		raw := ts.get(p, http.StatusOK, nil)
		// A refused attack is recorded for officials (a gateway refusal,
		// apart from the stream and the results): leave those out.
		raw = withoutRefusals(ts.t, p, raw)
		if !exact {
			var v map[string]any
			if err := json.Unmarshal(raw, &v); err != nil {
				ts.t.Fatalf("%s: %v", p, err)
			}
			delete(v, "applied_seq")
			delete(v, "history")
			if p == "/api/v1/status" {
				v = map[string]any{"applied": v["applied"], "duplicates": v["duplicates"]}
			}
			raw, _ = json.Marshal(v)
		}
		out[p] = string(raw)
	}
	return out
}

// requireUnchanged fails if the server publishes anything different from
// before.
// withoutRefusals drops the gateway's refusals from a rejections answer and
// their count from a status answer.
func withoutRefusals(t *testing.T, path string, raw []byte) []byte {
	t.Helper()
	switch path {
	case "/api/v1/status":
		var v map[string]any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		delete(v, "refused")
		raw, _ = json.Marshal(v)
	case "/api/v1/rejections":
		var list []map[string]any
		if err := json.Unmarshal(raw, &list); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		kept := []map[string]any{}
		for _, r := range list {
			if r["source"] != server.SourceGateway {
				kept = append(kept, r)
			}
		}
		raw, _ = json.Marshal(kept)
	}
	return raw
}

func requireUnchanged(t *testing.T, attack string, before, after map[string]string) {
	t.Helper()
	for p, b := range before {
		if after[p] != b {
			t.Errorf("%s changed %s:\nbefore %s\nafter  %s", attack, p, b, after[p])
		}
	}
}

// postAs POSTs a submission with an optional Authorization header value.
func (ts *testServer) postAs(auth, body string) (int, http.Header, []byte) {
	ts.t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.url+"/api/v1/minutes", strings.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		ts.t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatalf("POST: read answer: %v", err)
	}
	return resp.StatusCode, resp.Header, raw
}

// submitAs POSTs body with auth, requires 202 and waits until it is applied.
func (ts *testServer) submitAs(auth, body string) {
	ts.t.Helper()
	code, _, raw := ts.postAs(auth, body)
	if code != http.StatusAccepted {
		ts.t.Fatalf("POST /api/v1/minutes: status %d, want 202; body %s", code, raw)
	}
	var a submitAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		ts.t.Fatal(err)
	}
	ts.waitApplied(a.Seq)
}

const testToken = "0f9d6c1e2b7a4c3d8e5f60718293a4b5c6d7e8f9"

// TestSealedGatewayRefusesForgeries: on a sealed election with an operator
// token, a station's sealed minutes are accepted without the token; forged,
// misattributed, altered, replayed or unsigned minutes are 422 rule seal
// (the token does not excuse a bad seal), unsealed minutes without the
// token are 401, oversized requests 413, and none of them changes anything
// the server publishes.
func TestSealedGatewayRefusesForgeries(t *testing.T) {
	t.Parallel()
	a, b := newStationKey(t, "LB-BD-01"), newStationKey(t, "LB-BD-02")
	e := sealedElection(t, a, b)
	ts := startSealed(t, e, func(c *server.Config) {
		c.Gateway.Token = testToken
		c.Gateway.MaxBodyBytes = 16 << 10
		c.Gateway.MaxMinutes = 4
	})

	// The genuine minutes: station A's, sealed, need no token.
	genuine := seal(t, a.seed, qhFinal["LB-BD-01"])
	ts.submit(object(genuine))
	ts.submit(object(seal(t, b.seed, minutes("HDND-LB", "LB-BD-02", 1, "partial", counts{800, 700, 700, 300, 290, 10}, q1Votes(200, 100, 90)))))
	ts.submitAs("Bearer "+testToken, object(qhFinal["LB-NT-01"]))

	// Station A's next version, which an attacker would like to count.
	v2 := qhFinal["LB-BD-01"].with("version", 2, "votes", qhVotes(100, 700, 500, 300, 200))
	random := make([]byte, 64)
	rand.Read(random)
	altered := seal(t, a.seed, v2)
	altered["votes"] = qhVotes(700, 100, 500, 300, 200) // after signing
	replayed := genuine.with("station", "LB-BD-02")     // A's seal, B's name

	for _, tc := range []struct {
		name, auth, body string
		code             int
		rule             string // of every error, for 422
		want             string // in the answer
	}{
		{"forged signature", "", object(v2.with("signature", base64.RawURLEncoding.EncodeToString(random))), 422, tally.RuleSeal, "does not verify with the seal of station"},
		{"signature by another station's key", "", object(seal(t, b.seed, v2)), 422, tally.RuleSeal, "does not verify with the seal of station"},
		{"content changed after signing", "", object(altered), 422, tally.RuleSeal, "does not verify"},
		{"station A's sealed minutes replayed as station B's", "", object(replayed), 422, tally.RuleSeal, `seal of station \"LB-BD-02\"`},
		{"sealed station's minutes without a signature", "", object(v2), 422, tally.RuleSeal, "carry no signature"},
		{"signature that is not base64url", "", object(v2.with("signature", "not a signature!")), 422, tally.RuleSeal, "not base64url"},
		{"a valid operator token does not excuse a forged seal", "Bearer " + testToken, object(seal(t, b.seed, v2)), 422, tally.RuleSeal, "does not verify"},
		{"forgery hidden among genuine minutes", "", array(seal(t, a.seed, v2), seal(t, a.seed, v2.with("version", 3, "contest", "HDND-LB", "votes", q1Votes(1, 2, 3))).with("valid", 800)), 422, "", "does not verify"},
		{"unsealed station's minutes without the token", "", object(qhFinal["LB-NT-02"]), 401, "", "operator token is required"},
		{"sealed minutes smuggling unsealed ones, no token", "", ndjson(seal(t, a.seed, v2), qhFinal["LB-NT-02"]), 401, "", "operator token"},
		{"wrong operator token", "Bearer " + strings.Repeat("x", len(testToken)), object(qhFinal["LB-NT-02"]), 401, "", "operator token is wrong"},
		{"oversized body", "", `[` + strings.Repeat(" ", 64<<10) + `]`, 413, "", "body larger than 16384 bytes"},
		{"too many minutes in one request", "Bearer " + testToken, array(qhFinal["LB-NT-02"], qhFinal["LB-NT-02"], qhFinal["LB-NT-02"], qhFinal["LB-NT-02"], qhFinal["LB-NT-02"]), 413, "", "at most 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := ts.on(t)
			before := snapshot(ts, true)
			code, h, raw := ts.postAs(tc.auth, tc.body)
			t.Logf("attack %q: got %d %s", tc.name, code, strings.TrimSpace(string(raw)))
			if code != tc.code {
				t.Fatalf("status %d, want %d; body %s", code, tc.code, raw)
			}
			requireJSON(t, tc.name, h, raw)
			if !strings.Contains(string(raw), tc.want) {
				t.Errorf("answer lacks %q: %s", tc.want, raw)
			}
			if strings.Contains(string(raw), testToken) {
				t.Errorf("the answer echoes the operator token: %s", raw)
			}
			if code == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if code == http.StatusUnprocessableEntity {
				var bad struct{ Errors []violation }
				json.Unmarshal(raw, &bad)
				if len(bad.Errors) == 0 {
					t.Fatalf("422 without errors: %s", raw)
				}
				hasSeal := false
				for _, v := range bad.Errors {
					hasSeal = hasSeal || v.Rule == tally.RuleSeal && v.Field == "signature"
					if tc.rule != "" && v.Rule != tc.rule {
						t.Errorf("rule %q, want only %q: %s", v.Rule, tc.rule, raw)
					}
				}
				if !hasSeal {
					t.Errorf("no error of rule seal on field signature: %s", raw)
				}
			}
			requireUnchanged(t, tc.name, before, snapshot(ts, true))
		})
	}

	// The genuine next version, sealed, is still accepted without a token,
	// and an unsealed station's minutes with it.
	ts.submit(object(seal(t, a.seed, v2)))
	if code, _, raw := ts.postAs("Bearer "+testToken, object(qhFinal["LB-NT-02"])); code != http.StatusAccepted {
		t.Fatalf("unsealed minutes with the token: %d %s", code, raw)
	}
}

// TestOperatorTokenGuardsWrites: on an election without seals, a server
// with an operator token refuses every submission without it (401, a JSON
// error that repeats nothing sent), whatever the body; reads need no token.
func TestOperatorTokenGuardsWrites(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *server.Config) { c.Gateway.Token = testToken })
	ts.submitAs("Bearer "+testToken, object(qhFinal["LB-BD-01"]))
	before := snapshot(ts, true)
	wrong := "Bearer " + testToken[:len(testToken)-1] + "0"
	for _, tc := range []struct{ name, auth, body string }{
		{"missing token", "", object(qhFinal["LB-BD-02"])},
		{"wrong token", wrong, object(qhFinal["LB-BD-02"])},
		{"token as Basic credentials", "Basic " + base64.StdEncoding.EncodeToString([]byte("tally:"+testToken)), object(qhFinal["LB-BD-02"])},
		{"token without scheme", testToken, object(qhFinal["LB-BD-02"])},
		{"empty bearer", "Bearer ", object(qhFinal["LB-BD-02"])},
		{"missing token, malformed body", "", `{"election":`},
		{"missing token, oversized body", "", strings.Repeat("x", 9<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := ts.on(t)
			code, h, raw := ts.postAs(tc.auth, tc.body)
			t.Logf("attack %q: got %d %s", tc.name, code, strings.TrimSpace(string(raw)))
			if code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", code, raw)
			}
			requireJSON(t, tc.name, h, raw)
			requireErrorJSON(t, tc.name, raw)
			if h.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if strings.Contains(string(raw), testToken[:16]) || strings.Contains(string(raw), "tally:") {
				t.Errorf("the answer repeats a credential: %s", raw)
			}
			requireUnchanged(t, tc.name, before, snapshot(ts, true))
		})
	}
	ts.submitAs("Bearer "+testToken, object(qhFinal["LB-BD-02"]))
	if u := ts.unit("QH", "QH-HN-03"); u.StationsFinal != 2 {
		t.Errorf("with the token: %d stations final, want 2", u.StationsFinal)
	}
}

// TestSecurityHeaders: every answer, API or dashboard, forbids sniffing,
// framing and referrers; the dashboard keeps its own CSP, the API gets one
// that allows nothing.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *server.Config) { c.Gateway.Token = testToken })
	for _, tc := range []struct{ method, path, csp string }{
		{"GET", "/", "script-src 'self'"},
		{"GET", "/app.js", "script-src 'self'"},
		{"GET", "/api/v1/status", "default-src 'none'"},
		{"GET", "/api/v1/contests/QH/areas/LB", "default-src 'none'"},
		{"GET", "/api/v1/nope", "default-src 'none'"},
		{"DELETE", "/api/v1/status", "default-src 'none'"},
		{"POST", "/api/v1/minutes", "default-src 'none'"}, // 401
		{"GET", "/metrics", "default-src 'none'"},
	} {
		_, h, _ := ts.do(tc.method, tc.path, "application/json", nil)
		for k, want := range map[string]string{
			"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s %s: %s %q, want %q", tc.method, tc.path, k, got, want)
			}
		}
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, tc.csp) || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s %s: CSP %q, want %q and frame-ancestors 'none'", tc.method, tc.path, csp, tc.csp)
		}
	}
}

// stationConn connects to NATS as station k, over TCP.
func stationConn(t *testing.T, url string, k stationKey, errs chan<- error) *nats.Conn {
	t.Helper()
	id, err := broker.IdentityFromSeed(k.seed)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := broker.Dial(url, k.id, id.Option(), nats.CustomInboxPrefix(broker.StationInbox(k.id)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("station %s cannot connect: %v", k.id, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// permissionViolation waits for the server's asynchronous refusal.
func permissionViolation(t *testing.T, errs <-chan error) string {
	t.Helper()
	select {
	case err := <-errs:
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Fatalf("async error %v, want a permissions violation", err)
		}
		return err.Error()
	case <-time.After(3 * time.Second):
		t.Fatal("the server reported no permissions violation")
		return ""
	}
}

// TestSealedNATSPermissions: with a sealed election the embedded server,
// reached over TCP, refuses anonymous and unknown clients; a station may
// publish its own minutes and nothing else: another station's subject, the
// stream's API and other inboxes are refused by the server. Minutes it
// publishes on its own subject that are not its sealed own (unsigned, or
// another station's) reach the fold and are rejections. Results change
// only with the genuine minutes.
func TestSealedNATSPermissions(t *testing.T) {
	t.Parallel()
	a, b := newStationKey(t, "LB-BD-01"), newStationKey(t, "LB-BD-02")
	e := sealedElection(t, a, b)
	ts := startSealed(t, e, func(c *server.Config) { c.NATS.Listen = "127.0.0.1:0" })
	url := ts.srv.NATSURL()
	if url == "" {
		t.Fatal("no NATS listener")
	}
	if !ts.srv.NATSAuth() {
		t.Error("NATSAuth false: the sealed election's embedded server does not authenticate")
	}
	// The gateway still works: an unsealed station's minutes (no token set).
	ts.submit(object(qhFinal["LB-NT-01"]))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("anonymous connection refused", func(t *testing.T) {
		before := snapshot(ts.on(t), true)
		nc, err := nats.Connect(url, nats.MaxReconnects(0), nats.Timeout(3*time.Second))
		if err == nil {
			nc.Close()
			t.Fatal("anonymous connection accepted")
		}
		t.Logf("attack %q: got %v", t.Name(), err)
		if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Fatalf("anonymous connection: %v, want an authorization error", err)
		}
		requireUnchanged(t, t.Name(), before, snapshot(ts.on(t), true))
	})
	t.Run("unknown key refused", func(t *testing.T) {
		stranger := newStationKey(t, "LB-NT-01") // a station without a seal has no NATS identity
		id, _ := broker.IdentityFromSeed(stranger.seed)
		nc, err := broker.Dial(url, "stranger", id.Option(), nats.MaxReconnects(0))
		if err == nil {
			nc.Close()
			t.Fatal("unknown key accepted")
		}
		t.Logf("attack %q: got %v", t.Name(), err)
	})

	errs := make(chan error, 8)
	ncA := stationConn(t, url, a, errs)
	jsA, err := jetstream.New(ncA)
	if err != nil {
		t.Fatal(err)
	}
	// Station A publishes its own sealed minutes: stored and applied.
	ack, err := jsA.Publish(ctx, events.Subject(e, stationIndex(t, e, a.id), "QH"), seal(t, a.seed, qhFinal["LB-BD-01"]).json())
	if err != nil {
		t.Fatalf("station A cannot publish its own minutes: %v", err)
	}
	ts.waitApplied(ack.Sequence)
	if st, _ := ts.station("QH", a.id); string(st.Current) == "null" {
		t.Fatal("station A's own sealed minutes were not applied")
	}

	subjectB := events.Subject(e, stationIndex(t, e, b.id), "QH")
	stream := events.StreamName(e.ID)
	t.Run("publish on another station's subject", func(t *testing.T) {
		before := snapshot(ts.on(t), true)
		short, stop := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := jsA.Publish(short, subjectB, seal(t, a.seed, qhFinal["LB-BD-02"]).json())
		stop()
		if err == nil {
			t.Fatal("station A published on station B's subject")
		}
		t.Logf("attack %q: publish got %v; server said %q", t.Name(), err, permissionViolation(t, errs))
		requireUnchanged(t, t.Name(), before, snapshot(ts.on(t), true))
	})
	t.Run("core publish on another station's subject", func(t *testing.T) {
		before := snapshot(ts.on(t), true)
		if err := ncA.Publish(subjectB, qhFinal["LB-BD-02"].json()); err != nil {
			t.Fatal(err)
		}
		ncA.Flush()
		t.Logf("attack %q: server said %q", t.Name(), permissionViolation(t, errs))
		requireUnchanged(t, t.Name(), before, snapshot(ts.on(t), true))
	})
	for _, api := range []string{"$JS.API.STREAM.PURGE." + stream, "$JS.API.STREAM.DELETE." + stream,
		"$JS.API.STREAM.MSG.DELETE." + stream, "$JS.API.CONSUMER.DELETE." + stream + ".tally-fold"} {
		t.Run("JetStream API "+api, func(t *testing.T) {
			before := snapshot(ts.on(t), true)
			_, err := ncA.Request(api, []byte(`{"seq":1}`), 200*time.Millisecond)
			if err == nil {
				t.Fatalf("station A's request to %s was answered", api)
			}
			t.Logf("attack %q: request got %v; server said %q", t.Name(), err, permissionViolation(t, errs))
			requireUnchanged(t, t.Name(), before, snapshot(ts.on(t), true))
		})
	}
	for _, subj := range []string{broker.StationInbox(b.id) + ".>", events.StreamSubjects(e.ID), ">"} {
		t.Run("subscribe to "+subj, func(t *testing.T) {
			if _, err := ncA.SubscribeSync(subj); err != nil {
				t.Logf("attack %q: got %v", t.Name(), err)
				return
			}
			ncA.Flush()
			t.Logf("attack %q: server said %q", t.Name(), permissionViolation(t, errs))
		})
	}

	// What a station may publish, on its own subject, but that is not its
	// own sealed minutes, reaches the fold and is rejected there.
	subjectA := events.Subject(e, stationIndex(t, e, a.id), "QH")
	v2 := qhFinal["LB-BD-01"].with("version", 2, "votes", qhVotes(100, 700, 500, 300, 200))
	for _, tc := range []struct {
		name  string
		data  []byte
		rules []string
	}{
		{"unsigned minutes on its own subject", v2.json(), []string{tally.RuleSeal}},
		{"forged signature on its own subject", v2.with("signature", seal(t, b.seed, v2)["signature"]).json(), []string{tally.RuleSeal}},
		{"another station's minutes signed with its own key", seal(t, a.seed, qhFinal["LB-BD-02"]).json(), []string{tally.RuleSubject, tally.RuleSeal}},
		{"an unsealed station's minutes", qhFinal["LB-NT-02"].json(), []string{tally.RuleSubject}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := ts.on(t)
			before := snapshot(ts, false)
			rejectedBefore := ts.status().Rejected
			ack, err := jsA.Publish(ctx, subjectA, tc.data)
			if err != nil {
				t.Fatalf("publish on its own subject: %v", err)
			}
			ts.waitApplied(ack.Sequence)
			if got := ts.status().Rejected; got != rejectedBefore+1 {
				t.Fatalf("rejected %d, want %d", got, rejectedBefore+1)
			}
			rej := ts.rejections("")
			var last rejection
			for _, r := range rej {
				if r.Seq == ack.Sequence {
					last = r
				}
			}
			got := slices.Sorted(slices.Values(rules(last.Errors)))
			t.Logf("attack %q: stored at seq %d, then rejected by the fold: %+v", tc.name, ack.Sequence, last.Errors)
			for _, r := range tc.rules {
				if !slices.Contains(got, r) {
					t.Errorf("rejection rules %v lack %q", got, r)
				}
			}
			requireUnchanged(t, tc.name, before, snapshot(ts, false))
		})
	}
}

// TestExternalNATSWithIdentities: against an external server that admits
// only the election's users, tally connects with the gateway's and the
// aggregator's keys and works; without them it does not start, saying why.
func TestExternalNATSWithIdentities(t *testing.T) {
	t.Parallel()
	a := newStationKey(t, "LB-BD-01")
	e := sealedElection(t, a)
	gw, _ := broker.NewIdentity()
	agg, _ := broker.NewIdentity()
	ext, err := broker.StartEmbedded(broker.EmbeddedOptions{Dir: t.TempDir(), Listen: "127.0.0.1:0",
		Users: broker.Users(e, broker.Roles{Gateway: gw.Public, Aggregator: agg.Public})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ext.Shutdown)

	_, err = server.New(context.Background(), server.Config{Election: e, DataDir: t.TempDir(), HTTP: server.HTTPConfig{Addr: "127.0.0.1:0"}, NATS: server.NATSConfig{URL: ext.ClientURL()}})
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("anonymous tally on an authenticated server: %v, want an authorization error", err)
	}
	t.Logf("tally without its keys: %v", err)
	// The gateway's key cannot stand for the aggregator (it may not create
	// the stream).
	short, stop := context.WithTimeout(context.Background(), time.Second)
	defer stop()
	_, err = server.New(short, server.Config{Election: e, DataDir: t.TempDir(), HTTP: server.HTTPConfig{Addr: "127.0.0.1:0"},
		NATS: server.NATSConfig{URL: ext.ClientURL(), Gateway: &gw, Aggregator: &gw}})
	if err == nil {
		t.Fatal("tally started with the gateway's key as the aggregator's")
	}
	t.Logf("tally with the gateway's key as aggregator: %v", err)

	ts := startServer(t, func(c *server.Config) {
		c.Election, c.NATS.URL, c.NATS.Gateway, c.NATS.Aggregator = e, ext.ClientURL(), &gw, &agg
		c.NATS.Users = nil // the external server's configuration admits its own
	})
	ts.e = e
	if !ts.srv.NATSAuth() {
		t.Fatal("NATSAuth false with identities")
	}
	ts.submit(object(seal(t, a.seed, qhFinal["LB-BD-01"])))
	ts.submit(object(qhFinal["LB-NT-01"]))
	if u := ts.unit("QH", "QH-HN-03"); u.StationsFinal != 2 {
		t.Fatalf("%d stations final, want 2", u.StationsFinal)
	}
	if code, _, raw := ts.postAs("", object(qhFinal["LB-BD-01"].with("version", 2))); code != http.StatusUnprocessableEntity {
		t.Fatalf("unsigned minutes of a sealed station: %d %s", code, raw)
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tally test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLS: with a certificate the API and the dashboard are HTTPS only;
// a certificate without its key does not start.
func TestTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := selfSigned(t)
	if _, err := server.New(context.Background(), server.Config{Election: parseElection(t), DataDir: t.TempDir(),
		HTTP: server.HTTPConfig{Addr: "127.0.0.1:0", TLSCertFile: certFile}, NATS: server.NATSConfig{Listen: "none"}}); err == nil {
		t.Fatal("a certificate without a key was accepted")
	}
	ts := startServer(t, func(c *server.Config) { c.HTTP.TLSCertFile, c.HTTP.TLSKeyFile = certFile, keyFile })
	if !strings.HasPrefix(ts.srv.URL(), "https://") {
		t.Fatalf("URL %q, want https://", ts.srv.URL())
	}
	ts.url = ts.srv.URL()
	ts.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	ts.submit(object(qhFinal["LB-BD-01"]))
	if u := ts.unit("QH", "QH-HN-03"); u.StationsFinal != 1 {
		t.Fatalf("over TLS: %d stations final, want 1", u.StationsFinal)
	}
	if code, _, _ := ts.do(http.MethodGet, "/", "", nil); code != http.StatusOK {
		t.Fatalf("dashboard over TLS: %d", code)
	}
	// Plain HTTP on the TLS port is refused; so is a client that does not
	// trust the certificate.
	resp, err := http.Get("http://" + ts.srv.Addr() + "/api/v1/status")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered 200 on the TLS port")
		}
		t.Logf("plain HTTP on the TLS port: %d", resp.StatusCode)
	}
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(ts.url + "/api/v1/status"); err == nil {
		t.Fatal("a client without the certificate connected")
	} else {
		t.Logf("client not trusting the certificate: %v", err)
	}
}

// TestNATSOperatorIdentities (issue 13, 1): an unsealed election's listener
// admits the identities the operator listed, each allowed only to publish
// the minutes it is for; none may call the JetStream API, so none can
// purge or delete the stream or the fold's consumer. Anonymous clients are
// refused. Without any identity the listener admits only tally's own.
func TestNATSOperatorIdentities(t *testing.T) {
	t.Parallel()
	op, _ := broker.NewIdentity()
	scoped, _ := broker.NewIdentity()
	ts := startServer(t, func(c *server.Config) {
		c.Gateway.Token = testToken
		c.NATS.Listen = "127.0.0.1:0"
		c.NATS.Users = []broker.Authorized{{Key: op.Public}, {Key: scoped.Public, Station: "LB-NT-01"}}
	})
	url := ts.srv.NATSURL()
	if got := ts.srv.NATSAdmits(); !strings.Contains(got, "2 operator identities") || !strings.Contains(got, "no anonymous") {
		t.Errorf("NATSAdmits %q, want it to name 2 operator identities and no anonymous client", got)
	}
	if nc, err := nats.Connect(url, nats.MaxReconnects(0), nats.Timeout(3*time.Second)); err == nil {
		nc.Close()
		t.Fatal("anonymous NATS client admitted")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	connect := func(id broker.Identity, inbox string) (*nats.Conn, jetstream.JetStream, chan error) {
		errs := make(chan error, 8)
		opts := []nats.Option{id.Option(), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		})}
		if inbox != "" {
			opts = append(opts, nats.CustomInboxPrefix(inbox))
		}
		nc, err := broker.Dial(url, "operator", opts...)
		if err != nil {
			t.Fatalf("operator identity refused: %v", err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		return nc, js, errs
	}
	nc, js, errs := connect(op, "")
	ack, err := js.Publish(ctx, events.Subject(ts.e, stationIndex(t, ts.e, "LB-NT-02"), "QH"), qhFinal["LB-NT-02"].json())
	if err != nil {
		t.Fatalf("operator identity cannot publish minutes: %v", err)
	}
	ts.waitApplied(ack.Sequence)
	if st, _ := ts.station("QH", "LB-NT-02"); string(st.Current) == "null" {
		t.Fatal("minutes the operator's identity published were not applied")
	}
	stream := events.StreamName(ts.e.ID)
	for _, api := range []string{"$JS.API.STREAM.PURGE." + stream, "$JS.API.STREAM.DELETE." + stream, "$JS.API.STREAM.MSG.DELETE." + stream,
		"$JS.API.CONSUMER.DELETE." + stream + ".tally-fold", "$JS.API.INFO", "$JS.API.STREAM.CREATE.EVIL"} {
		before := snapshot(ts.on(t), true)
		if _, err := nc.Request(api, []byte(`{"seq":1}`), 200*time.Millisecond); err == nil {
			t.Fatalf("the operator identity's request to %s was answered", api)
		}
		t.Logf("attack %q: server said %q", api, permissionViolation(t, errs))
		requireUnchanged(t, api, before, snapshot(ts.on(t), true))
	}
	if st := ts.status(); st.StreamSeq != ack.Sequence {
		t.Errorf("stream_seq %d, want %d", st.StreamSeq, ack.Sequence)
	}

	// An identity for one station publishes that station's minutes only.
	_, jsS, errsS := connect(scoped, broker.StationInbox("LB-NT-01"))
	if _, err := jsS.Publish(ctx, events.Subject(ts.e, stationIndex(t, ts.e, "LB-NT-01"), "QH"), qhFinal["LB-NT-01"].json()); err != nil {
		t.Fatalf("station identity cannot publish its own minutes: %v", err)
	}
	short, stop := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = jsS.Publish(short, events.Subject(ts.e, stationIndex(t, ts.e, "LB-TB-01"), "QH"), qhFinal["LB-TB-01"].json())
	stop()
	if err == nil {
		t.Fatal("an identity for LB-NT-01 published LB-TB-01's minutes")
	}
	t.Logf("attack %q: server said %q", "another station's subject", permissionViolation(t, errsS))

	// No identity listed: the listener admits only tally's own.
	bare := startServer(t, func(c *server.Config) { c.NATS.Listen, c.NATS.Users = "127.0.0.1:0", nil })
	if got := bare.srv.NATSAdmits(); !strings.Contains(got, "only tally's own") {
		t.Errorf("NATSAdmits %q without identities, want only tally's own", got)
	}
	if nc, err := nats.Connect(bare.srv.NATSURL(), nats.MaxReconnects(0), nats.Timeout(3*time.Second)); err == nil {
		nc.Close()
		t.Fatal("anonymous NATS client admitted by a listener without identities")
	}
	bare.submit(object(qhFinal["LB-NT-01"])) // the gateway works all the same
}
