package main

// Security at the command line (issue 5): `tally serve` hardened with an
// operator token, TLS, a body limit and a sealed election (nkey-only
// embedded NATS), attacked with the real `tally submit` and a plain NATS
// client; results compared before and after every attack.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/server"
)

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and its
// key into dir and returns their paths and a pool trusting it.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "tally test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

const cliToken = "3c1f0e9a8b7d6c5e4f3a2b1c0d9e8f7a"

func writeToken(t *testing.T, dir, name, token string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServeSecurityUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	election := filepath.Join("testdata", "election.json")
	empty := writeToken(t, dir, "empty.token", "")
	spaced := writeToken(t, dir, "spaced.token", "two words")
	notPEM := writeToken(t, dir, "ca.pem", "not a certificate")
	serve := []string{"serve", "--election", election, "--data", dir, "--http", "127.0.0.1:0", "--nats-listen", "none"}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"cert without key", append(serve, "--tls-cert", "c.pem"), 2, "--tls-cert c.pem: needs --tls-key too"},
		{"key without cert", append(serve, "--tls-key", "k.pem"), 2, "--tls-key k.pem: needs --tls-cert too"},
		{"seed dir without --nats", append(serve, "--nats-seed-dir", dir), 2, "--nats-seed-dir is for an external server"},
		{"tiny body limit", append(serve, "--max-body", "10"), 2, "--max-body 10: want at least 1KiB"},
		{"bad size", append(serve, "--max-body", "lots"), 2, "want a size in bytes"},
		{"rebuild: tiny memory limit", []string{"rebuild", "--election", election, "--data", dir, "--memory-limit", "1MiB"}, 2, "--memory-limit 1MiB is below the 64MiB"},
		{"rebuild: bad memory limit", []string{"rebuild", "--election", election, "--data", dir, "--memory-limit", "much"}, 2, "want a size in bytes"},
		{"no minutes per request", append(serve, "--max-minutes", "0"), 2, "--max-minutes 0"},
		{"zero timeout", append(serve, "--write-timeout", "0s"), 2, "--write-timeout 0s: must be positive"},
		{"zero in flight", append(serve, "--max-inflight", "0"), 2, "--max-inflight 0: want at least 1"},
		{"missing token file", append(serve, "--token-file", filepath.Join(dir, "none")), 1, "token file"},
		{"empty token file", append(serve, "--token-file", empty), 1, "is empty"},
		{"token with a space", append(serve, "--token-file", spaced), 1, "printable ASCII without spaces"},
		{"missing seed dir", []string{"serve", "--election", election, "--data", dir, "--nats", "nats://127.0.0.1:1", "--nats-seed-dir", filepath.Join(dir, "none")}, 1, "tally nats-config --seed-dir"},
		{"submit: missing token file", []string{"submit", "--token-file", filepath.Join(dir, "none"), "x.json"}, 1, "token file"},
		{"submit: CA file not PEM", []string{"submit", "--ca-file", notPEM, "x.json"}, 1, "holds no PEM certificate"},
		{"simulate: empty token file", []string{"simulate", "--election", election, "--token-file", empty}, 1, "is empty"},
	} {
		r := runInProcess(tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tc.name, r.code, r.stderr, tc.code, tc.want)
		}
		if strings.Contains(r.stderr, "two words") {
			t.Errorf("%s: the token file's content is printed", tc.name)
		}
	}
	for cmd, flags := range map[string][]string{
		"serve":    {"-token-file FILE", "-tls-cert FILE", "-tls-key FILE", "-nats-seed-dir DIR", "-max-body SIZE", "-max-minutes", "-read-timeout", "-write-timeout", "-idle-timeout", "-max-pending", "-max-inflight", "-max-inflight-bytes SIZE", "-min-free SIZE", "Securing an election"},
		"submit":   {"-token-file FILE", "-ca-file FILE", "operator token"},
		"simulate": {"-token-file FILE", "-ca-file FILE"},
		"rebuild":  {"-memory-limit SIZE", "GOMEMLIMIT"},
	} {
		r := runInProcess(cmd, "--help")
		for _, f := range flags {
			if r.code != 0 || !strings.Contains(r.stdout, f) {
				t.Errorf("tally %s --help (exit %d) lacks %q", cmd, r.code, f)
			}
		}
	}
}

// hardenedServe is `tally serve` with TLS, started as a child process.
type hardenedServe struct {
	*serverProc
	client *http.Client
}

func startHardened(t *testing.T, electionFile, dataDir string, pool *x509.CertPool, extra ...string) *hardenedServe {
	t.Helper()
	addr := freeAddr(t)
	args := append([]string{"serve", "--election", electionFile, "--data", dataDir, "--http", addr}, extra...)
	p := &serverProc{addr: addr, url: "https://" + addr, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(tallyBin, args...)
	p.cmd.Stderr, p.cmd.Stdout = p.stderr, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	h := &hardenedServe{serverProc: p, client: &http.Client{Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}}
	for w := newStallWatch(); ; time.Sleep(10 * time.Millisecond) {
		select {
		case <-p.done:
			t.Fatalf("tally serve exited: %v\n%s", p.waitErr, p.stderr.String())
		default:
		}
		if strings.Contains(p.stderr.String(), "http=https://"+addr) {
			var st apiStatus
			if getJSON(h.client, p.url+"/api/v1/status", &st) == nil {
				return h
			}
		}
		if w.stalled(len(p.stderr.String())) {
			t.Fatalf("tally serve did not log https://%s and answer, and its log stood still for %s:\n%s", addr, stallWindow, p.stderr.String())
		}
	}
}

// results is what the server publishes: the status counters and every
// result of the test election, as raw answers.
func (h *hardenedServe) results(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{"/api/v1/status", "/api/v1/contests/QH/areas/LB", "/api/v1/contests/QH/units/QH-HN-03",
		"/api/v1/contests/HDND-LB/areas/LB", "/api/v1/rejections"} {
		resp, err := h.client.Get(h.url + p)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(&b, "%s %d %s\n", p, resp.StatusCode, withoutRefusals(t, p, raw))
	}
	return b.String()
}

// withoutRefusals drops what a refused attack leaves for officials (the
// gateway's refusals, kept apart from the stream and the results) from a
// rejections or status answer.
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
			if r["source"] != "gateway" {
				kept = append(kept, r)
			}
		}
		raw, _ = json.Marshal(kept)
	}
	return raw
}

// TestServeHardened runs `tally serve` on a sealed election (one station
// left unsealed) with an operator token, TLS, a body limit and an embedded
// NATS listener, and attacks it with `tally submit` and a NATS client.
func TestServeHardened(t *testing.T) {
	t.Parallel()
	_, sealedDir := sealedTestElection(t)
	// Leave LB-GT-01 without a seal: its minutes need the operator token.
	electionFile := filepath.Join(sealedDir, "election.json")
	var file map[string]any
	raw, _ := os.ReadFile(electionFile)
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	for _, st := range file["stations"].([]any) {
		if st := st.(map[string]any); st["id"] == "LB-GT-01" {
			delete(st, "seal")
		}
	}
	writeJSONFile(t, electionFile, file)

	dir := t.TempDir()
	certFile, keyFile, pool := writeSelfSigned(t, dir)
	tokenFile := writeToken(t, dir, "operator.token", cliToken)
	wrongToken := writeToken(t, dir, "wrong.token", strings.Repeat("9", len(cliToken)))
	natsAddr := freeAddr(t)
	srv := startHardened(t, electionFile, t.TempDir(), pool, "--nats-listen", natsAddr, "--token-file", tokenFile,
		"--tls-cert", certFile, "--tls-key", keyFile, "--max-body", "4KiB")
	if logs := srv.stderr.String(); !strings.Contains(logs, "nats_auth=nkey") || !strings.Contains(logs, "token=true") {
		t.Errorf("the start log does not say NATS needs nkeys and a token is set:\n%s", logs)
	}

	minutesFile := filepath.Join("testdata", "minutes_valid.json")
	all, _ := os.ReadFile(minutesFile)
	var ms []map[string]any
	json.Unmarshal(all, &ms)
	// LB-BD-01's QH minutes and LB-GT-01's, one file each.
	write := func(name string, v any) string {
		p := filepath.Join(dir, name)
		writeJSONFile(t, p, v)
		return p
	}
	bd01 := write("bd01.json", ms[0])
	gt01 := write("gt01.json", ms[1])
	bd02 := map[string]any{}
	for k, v := range ms[0] {
		bd02[k] = v
	}
	bd02["station"] = "LB-BD-02"
	bd02File := write("bd02.json", bd02)
	big := filepath.Join(dir, "big.json")
	os.WriteFile(big, append(bytes.Repeat([]byte(" "), 8<<10), all...), 0o644)
	seed := func(station string) string { return filepath.Join(sealedDir, "seeds", station+".seed") }
	submit := func(args ...string) runResult {
		return runInProcess(append([]string{"submit", "--server", srv.url, "--retry-for", "0"}, args...)...)
	}

	// The genuine sealed minutes of LB-BD-01 need no token.
	if r := submit("--ca-file", certFile, "--seal", seed("LB-BD-01"), bd01); r.code != 0 {
		t.Fatalf("sealed minutes without a token: exit %d %s", r.code, r.stderr)
	}
	waitCaughtUp(t, srv.client, srv.url)
	// tally results reads over HTTPS with the same CA file.
	if r := runInProcess("results", "--server", srv.url, "--ca-file", certFile, "--contest", "QH", "--area", "LB-BD", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"stations_reporting": 1`) {
		t.Errorf("results over HTTPS: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unsealed minutes without the token", []string{"--ca-file", certFile, gt01}, "operator token is required"},
		{"unsealed minutes with a wrong token", []string{"--ca-file", certFile, "--token-file", wrongToken, gt01}, "operator token is wrong"},
		{"LB-BD-02's minutes sealed with LB-BD-01's key", []string{"--ca-file", certFile, "--seal", seed("LB-BD-01"), bd02File}, "rule seal"},
		{"LB-BD-02's minutes sealed with LB-BD-01's key, with the token", []string{"--ca-file", certFile, "--token-file", tokenFile, "--seal", seed("LB-BD-01"), bd02File}, "rule seal"},
		{"sealed station's minutes unsigned, with the token", []string{"--ca-file", certFile, "--token-file", tokenFile, bd02File}, "carry no signature"},
		{"oversized body", []string{"--ca-file", certFile, "--token-file", tokenFile, big}, "body larger than 4096 bytes"},
		{"client not trusting the certificate", []string{"--token-file", tokenFile, gt01}, "certificate signed by unknown authority"},
	} {
		before := srv.results(t)
		r := submit(tc.args...)
		t.Logf("attack %q: exit %d, %s", tc.name, r.code, strings.TrimSpace(r.stderr))
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want 1 and %q", tc.name, r.code, r.stderr, tc.want)
		}
		if strings.Contains(r.stdout+r.stderr, cliToken) {
			t.Errorf("%s: the token is printed", tc.name)
		}
		if after := srv.results(t); after != before {
			t.Errorf("%s changed the results:\nbefore %s\nafter  %s", tc.name, before, after)
		}
	}
	// Plain HTTP on the TLS port.
	if r := submit("--token-file", tokenFile, "--server", "http://"+srv.addr, gt01); r.code != 1 {
		t.Errorf("plain HTTP: exit %d %s", r.code, r.stderr)
	} else {
		t.Logf("attack %q: exit %d, %s", "plain HTTP on the TLS port", r.code, strings.TrimSpace(r.stderr))
	}

	// Anonymous NATS: refused by the embedded server.
	before := srv.results(t)
	nc, err := nats.Connect("nats://"+natsAddr, nats.MaxReconnects(0), nats.Timeout(3*time.Second))
	if err == nil {
		nc.Close()
		t.Fatal("anonymous NATS connection accepted")
	}
	t.Logf("attack %q: %v", "anonymous NATS connection", err)
	if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("anonymous NATS: %v, want an authorization error", err)
	}
	if after := srv.results(t); after != before {
		t.Errorf("anonymous NATS changed the results")
	}

	// With the token, the unsealed station's minutes go in.
	if r := submit("--ca-file", certFile, "--token-file", tokenFile, gt01); r.code != 0 {
		t.Fatalf("with the token: exit %d %s", r.code, r.stderr)
	}
	if st := waitCaughtUp(t, srv.client, srv.url); st.Applied != 2 || st.Rejected != 0 {
		t.Errorf("status %+v: want the 2 genuine minutes applied, nothing rejected", st)
	}
	if strings.Contains(srv.stderr.String(), cliToken) {
		t.Error("the server logs the token")
	}
	if code := srv.stop(t); code != 0 {
		t.Errorf("serve exited %d", code)
	}
}

// TestSimulateWithToken: a night played against a server with an operator
// token is refused without it and accepted with it.
func TestSimulateWithToken(t *testing.T) {
	t.Parallel()
	e, err := loadElection(simLongBien)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Config{Election: e, DataDir: t.TempDir(), HTTP: server.HTTPConfig{Addr: "127.0.0.1:0"}, NATS: server.NATSConfig{Listen: "none"}, Gateway: server.GatewayConfig{Token: cliToken}})
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
	url := srv.URL()
	sim := []string{"simulate", "--server", url, "--election", simLongBien, "--speed", "0", "--stations", "3", "--retry-for", "0"}
	r := runInProcess(sim...)
	t.Logf("simulate without the token: exit %d\n%s", r.code, r.stdout)
	if r.code != 1 || !strings.Contains(r.stdout+r.stderr, "401") {
		t.Errorf("without the token: exit %d, want 1 and 401 answers:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if st := simCaughtUp(t, url); st.StreamSeq != 0 {
		t.Errorf("without the token %d minutes were stored", st.StreamSeq)
	}
	r = runInProcess(append(sim, "--token-file", writeToken(t, t.TempDir(), "t", cliToken))...)
	if r.code != 0 {
		t.Fatalf("with the token: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if st := simCaughtUp(t, url); st.Applied == 0 {
		t.Errorf("with the token nothing was applied: %+v", st)
	}
}

// TestServeExternalNATSSeedDir: `tally nats-config` makes tally's keys and
// the permissions; an external server run with them refuses a tally that
// does not present its keys, and `tally serve --nats-seed-dir` works.
func TestServeExternalNATSSeedDir(t *testing.T) {
	t.Parallel()
	e, sealedDir := sealedTestElection(t)
	electionFile := filepath.Join(sealedDir, "election.json")
	seedDir := filepath.Join(t.TempDir(), "tally-keys")
	if r := runInProcess("nats-config", "--election", electionFile, "--seed-dir", seedDir); r.code != 0 {
		t.Fatalf("nats-config: %d %s", r.code, r.stderr)
	}
	roles, err := broker.LoadRoleSeeds(seedDir, false)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := broker.StartEmbedded(broker.EmbeddedOptions{Dir: t.TempDir(), Listen: "127.0.0.1:0",
		Users: broker.Users(e, broker.Roles{Gateway: roles.Gateway.Public, Aggregator: roles.Aggregator.Public})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ext.Shutdown)

	r := runTally(t, 30*time.Second, nil, "serve", "--election", electionFile, "--data", t.TempDir(), "--http", "127.0.0.1:0", "--nats", ext.ClientURL())
	t.Logf("tally serve without its keys: exit %d, %s", r.code, strings.TrimSpace(r.stderr))
	if r.code != 1 || !strings.Contains(r.stderr, "Authorization Violation") {
		t.Errorf("without --nats-seed-dir: exit %d, stderr %q; want 1 and an authorization violation", r.code, r.stderr)
	}
	srv := startServe(t, electionFile, t.TempDir(), "--nats", ext.ClientURL(), "--nats-seed-dir", seedDir)
	if !strings.Contains(srv.stderr.String(), "nats_auth=nkey") {
		t.Errorf("start log lacks nats_auth=nkey:\n%s", srv.stderr.String())
	}
	if r := runInProcess("submit", "--server", srv.url, "--seal-dir", sealedDir, filepath.Join("testdata", "minutes_valid.json")); r.code != 0 {
		t.Fatalf("sealed submit: exit %d %s", r.code, r.stderr)
	}
	if st := waitCaughtUp(t, &http.Client{Timeout: 5 * time.Second}, srv.url); st.Applied != 3 || st.Rejected != 0 {
		t.Errorf("status %+v: want 3 applied", st)
	}
}

// startServeLogged starts `tally serve` with exactly args (after --election,
// --data and --http) and waits until it answers and has logged its start.
func startServeLogged(t *testing.T, electionFile string, args ...string) *serverProc {
	t.Helper()
	addr := freeAddr(t)
	args = append([]string{"serve", "--election", electionFile, "--data", t.TempDir(), "--http", addr}, args...)
	p := &serverProc{addr: addr, url: "http://" + addr, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(tallyBin, args...)
	p.cmd.Stderr, p.cmd.Stdout = p.stderr, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	client := &http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		select {
		case <-p.done:
			t.Fatalf("tally serve exited: %v\n%s", p.waitErr, p.stderr.String())
		default:
		}
		var st apiStatus
		if strings.Contains(p.stderr.String(), "http="+p.url) && getJSON(client, p.url+"/api/v1/status", &st) == nil {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("tally serve did not start within 30s:\n%s", p.stderr.String())
		}
	}
}

// TestServeNATSListenerDecision (issue 13, 1): what the embedded NATS
// listener admits for an unsealed election, as the start log says. The
// README's command (no --nats-listen) starts without a listener and says
// why; an explicit --nats-listen without identities admits only tally's
// own; --nats-users FILE admits the identities listed, which may publish
// minutes but not touch the stream.
func TestServeNATSListenerDecision(t *testing.T) {
	t.Parallel()
	election := filepath.Join("testdata", "election.json")

	t.Run("default", func(t *testing.T) {
		srv := startServeLogged(t, election)
		logs := srv.stderr.String()
		if !strings.Contains(logs, "no NATS listener") || !strings.Contains(logs, "--nats-users") || !strings.Contains(logs, `nats=""`) {
			t.Errorf("the start log does not say there is no NATS listener and why:\n%s", logs)
		}
		if r := runTally(t, 30*time.Second, nil, "submit", "--server", srv.url, filepath.Join("testdata", "minutes_valid.json")); r.code != 0 {
			t.Errorf("submit to the default server: exit %d %s", r.code, r.stderr)
		}
	})
	t.Run("listener without identities", func(t *testing.T) {
		natsAddr := freeAddr(t)
		srv := startServeLogged(t, election, "--nats-listen", natsAddr)
		if logs := srv.stderr.String(); !strings.Contains(logs, "admits only tally's own identities") {
			t.Errorf("the start log does not say the listener admits only tally's own identities:\n%s", logs)
		}
		if nc, err := nats.Connect("nats://"+natsAddr, nats.MaxReconnects(0), nats.Timeout(3*time.Second)); err == nil {
			nc.Close()
			t.Fatal("anonymous NATS client admitted")
		}
	})
	t.Run("--nats-users", func(t *testing.T) {
		dir := t.TempDir()
		seed, id, err := broker.NewSeed()
		if err != nil {
			t.Fatal(err)
		}
		usersFile := filepath.Join(dir, "nats-users")
		if err := os.WriteFile(usersFile, []byte("# the results room\n"+id.Public+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		natsAddr := freeAddr(t)
		srv := startServeLogged(t, election, "--nats-listen", natsAddr, "--nats-users", usersFile, "--token-file", writeToken(t, dir, "t", cliToken))
		if logs := srv.stderr.String(); !strings.Contains(logs, "1 operator identities") {
			t.Errorf("the start log does not say whom NATS admits:\n%s", logs)
		}
		if nc, err := nats.Connect("nats://"+natsAddr, nats.MaxReconnects(0), nats.Timeout(3*time.Second)); err == nil {
			nc.Close()
			t.Fatal("anonymous NATS client admitted")
		}
		who, _ := broker.IdentityFromSeed(seed)
		errs := make(chan error, 4)
		nc, err := broker.Dial("nats://"+natsAddr, "results-room", who.Option(), nats.MaxReconnects(0),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				select {
				case errs <- err:
				default:
				}
			}))
		if err != nil {
			t.Fatalf("listed identity refused: %v", err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		raw, _ := os.ReadFile(filepath.Join("testdata", "minutes_valid.json"))
		var ms []json.RawMessage
		json.Unmarshal(raw, &ms)
		if _, err := js.Publish(ctx, "tally.lb-2021.minutes.HN.LB-BD-01.QH", ms[0]); err != nil {
			t.Fatalf("listed identity cannot publish minutes: %v", err)
		}
		if _, err := nc.Request("$JS.API.STREAM.PURGE.TALLY_lb-2021", nil, 300*time.Millisecond); err == nil {
			t.Fatal("listed identity purged the stream")
		}
		select {
		case err := <-errs:
			if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				t.Errorf("purge: %v, want a permissions violation", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("no permissions violation reported for the purge")
		}
		var st apiStatus
		if err := getJSON(&http.Client{Timeout: 5 * time.Second}, srv.url+"/api/v1/status", &st); err != nil || st.StreamSeq != 1 {
			t.Errorf("status %+v %v, want the one published minutes in the stream", st, err)
		}
	})
}

// TestServeSecurityFlags: the flags of issue 13 are in the help and
// misuse is a usage error.
func TestServeSecurityFlags(t *testing.T) {
	t.Parallel()
	election := filepath.Join("testdata", "election.json")
	serve := []string{"serve", "--election", election, "--data", t.TempDir(), "--http", "127.0.0.1:0"}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"users without a listener", append(serve, "--nats-listen", "none", "--nats-users", "f"), 2, "--nats-users is for the embedded server"},
		{"users with an external server", append(serve, "--nats", "nats://127.0.0.1:1", "--nats-users", "f"), 2, "--nats-users is for the embedded server"},
		{"no streams", append(serve, "--max-streams", "0"), 2, "--max-streams"},
		{"missing users file", append(serve, "--nats-users", filepath.Join(t.TempDir(), "none")), 1, "--nats-users"},
	} {
		r := runInProcess(tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tc.name, r.code, r.stderr, tc.code, tc.want)
		}
	}
	r := runInProcess("serve", "--help")
	for _, f := range []string{"-nats-users FILE", "-allow-origin ORIGINS", "-max-streams", "-max-streams-per-client", "never admits anonymous"} {
		if !strings.Contains(r.stdout, f) {
			t.Errorf("tally serve --help lacks %q", f)
		}
	}
}
