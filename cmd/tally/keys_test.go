package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

// runInProcess runs the command line in this process (the binary's
// dispatch without a child), for tests that only need exit codes, output
// and files.
func runInProcess(args ...string) runResult {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return runResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

var (
	seedLine   = regexp.MustCompile(`(?m)^seed: (SU[A-Z2-7]+)$`)
	publicLine = regexp.MustCompile(`(?m)^public: (U[A-Z2-7]+)$`)
)

func publicOf(t *testing.T, seed []byte) string {
	t.Helper()
	kp, err := nkeys.FromSeed(bytes.TrimSpace(seed))
	if err != nil {
		t.Fatalf("not a seed: %v", err)
	}
	pub, _ := kp.PublicKey()
	return pub
}

func fileMode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestKeysUsage(t *testing.T) {
	t.Parallel()
	const quick = 30 * time.Second
	for _, tc := range []struct {
		args      []string
		code      int
		stdoutHas string
		stderrHas string
	}{
		{[]string{"keys"}, 2, "", "Usage: tally keys"},
		{[]string{"keys", "nope"}, 2, "", `unknown command "nope"`},
		{[]string{"keys", "new", "extra"}, 2, "", "unexpected arguments"},
		{[]string{"keys", "new", "--force"}, 2, "", "--seed-file"},
		{[]string{"keys", "new", "--bogus"}, 2, "", "bogus"},
		{[]string{"keys", "seal"}, 2, "", "--election and --out"},
		{[]string{"keys", "seal", "--election", "x.json"}, 2, "", "--out"},
		{[]string{"keys", "public"}, 2, "", "one seed file"},
		{[]string{"keys", "--help"}, 0, "Usage: tally keys", ""},
		{[]string{"help", "keys"}, 0, "Usage: tally keys", ""},
		{[]string{"keys", "help", "seal"}, 0, "Usage: tally keys seal", ""},
		{[]string{"keys", "new", "--help"}, 0, "Usage: tally keys new", ""},
		{[]string{"keys", "seal", "-h"}, 0, "Usage: tally keys seal", ""},
		{[]string{"keys", "public", "--help"}, 0, "Usage: tally keys public", ""},
		{[]string{"submit", "--seal", "a", "--seal-dir", "b"}, 2, "", "not both"},
		{[]string{"submit", "--help"}, 0, "--seal", ""},
		{[]string{"help"}, 0, "keys", ""},
	} {
		res := runTally(t, quick, nil, tc.args...)
		if res.code != tc.code || !strings.Contains(res.stdout, tc.stdoutHas) || !strings.Contains(res.stderr, tc.stderrHas) {
			t.Errorf("tally %q: exit %d\nstdout %q\nstderr %q\nwant exit %d, stdout with %q, stderr with %q", tc.args, res.code, res.stdout, res.stderr, tc.code, tc.stdoutHas, tc.stderrHas)
		}
		if tc.code == 0 && res.stderr != "" || tc.code == 2 && res.stdout != "" {
			t.Errorf("tally %q: output on the wrong stream: stdout %q, stderr %q", tc.args, res.stdout, res.stderr)
		}
	}
}

func TestKeysNew(t *testing.T) {
	t.Parallel()
	res := runTally(t, 30*time.Second, nil, "keys", "new")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if len(lines) != 2 || !seedLine.MatchString(lines[0]) || !publicLine.MatchString(lines[1]) {
		t.Fatalf("stdout %q: want a line seed: SU... then public: U...", res.stdout)
	}
	seed := seedLine.FindStringSubmatch(res.stdout)[1]
	pub := publicLine.FindStringSubmatch(res.stdout)[1]
	if got := publicOf(t, []byte(seed)); got != pub || !nkeys.IsValidPublicUserKey(pub) {
		t.Fatalf("public %s is not the user key of the seed (%s)", pub, got)
	}
	if !strings.Contains(res.stderr, "secret") {
		t.Errorf("no warning that the seed is secret: %q", res.stderr)
	}
	// Saved as printed, the file works as a seed file.
	dir := t.TempDir()
	saved := filepath.Join(dir, "printed.seed")
	os.WriteFile(saved, []byte(res.stdout), 0o600)
	if r := runInProcess("keys", "public", saved); r.code != 0 || !strings.Contains(r.stdout, "public: "+pub) {
		t.Errorf("keys public on the printed pair: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	// Two runs, two keys.
	if again := runInProcess("keys", "new"); again.code != 0 || strings.Contains(again.stdout, pub) {
		t.Errorf("second key pair: exit %d, same public key: %v", again.code, strings.Contains(again.stdout, pub))
	}

	// --seed-file: mode 0600, a bare seed line (as nats.go reads it), only
	// the public key printed; no overwrite without --force.
	file := filepath.Join(dir, "station.seed")
	r := runInProcess("keys", "new", "--seed-file", file)
	if r.code != 0 {
		t.Fatalf("--seed-file: exit %d %s", r.code, r.stderr)
	}
	data, _ := os.ReadFile(file)
	if m := fileMode(t, file); m != 0o600 {
		t.Errorf("seed file mode %04o, want 0600", m)
	}
	if !regexp.MustCompile(`^SU[A-Z2-7]+\n$`).Match(data) || strings.Contains(r.stdout, strings.TrimSpace(string(data))) || strings.Contains(r.stdout, "seed:") {
		t.Errorf("seed file %q / stdout %q: want the seed in the file only", data, r.stdout)
	}
	if kp, err := nkeys.ParseDecoratedUserNKey(data); err != nil {
		t.Errorf("nats.go could not read the seed file: %v", err)
	} else if pub, _ := kp.PublicKey(); !strings.Contains(r.stdout, "public: "+pub) {
		t.Errorf("stdout %q does not print the file's public key %s", r.stdout, pub)
	}
	if r := runInProcess("keys", "new", "--seed-file", file); r.code != 1 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("overwrite without --force: exit %d %q", r.code, r.stderr)
	}
	if after, _ := os.ReadFile(file); !bytes.Equal(after, data) {
		t.Error("seed file changed by a refused overwrite")
	}
	os.Chmod(file, 0o644)
	if r := runInProcess("keys", "new", "--seed-file", file, "--force"); r.code != 0 {
		t.Errorf("--force: exit %d %q", r.code, r.stderr)
	}
	if after, _ := os.ReadFile(file); bytes.Equal(after, data) || fileMode(t, file) != 0o600 {
		t.Errorf("--force: seed unchanged or mode %04o", fileMode(t, file))
	}
}

func TestKeysPublic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kp, _ := nkeys.CreateUser()
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	account, _ := nkeys.CreateAccount()
	accountSeed, _ := account.Seed()
	for name, tc := range map[string]struct {
		content string
		mode    os.FileMode
		code    int
		out     string
	}{
		"bare":          {string(seed) + "\n", 0o600, 0, "public: " + pub},
		"labelled":      {"seed: " + string(seed) + "\npublic: " + pub + "\n", 0o600, 0, "public: " + pub},
		"creds":         {"-----BEGIN USER NKEY SEED-----\n" + string(seed) + "\n------END USER NKEY SEED------\n", 0o600, 0, "public: " + pub},
		"world-read":    {string(seed), 0o644, 0, "public: " + pub},
		"account seed":  {string(accountSeed), 0o600, 1, ""},
		"corrupt":       {string(seed[:len(seed)-2]) + "AA", 0o600, 1, ""},
		"no seed":       {"hello\n", 0o600, 1, ""},
		"missing file":  {"", 0, 1, ""},
		"public as key": {pub, 0o600, 1, ""},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if tc.mode != 0 {
			os.WriteFile(p, []byte(tc.content), tc.mode)
			os.Chmod(p, tc.mode)
		}
		r := runInProcess("keys", "public", p)
		if r.code != tc.code || !strings.Contains(r.stdout, tc.out) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", name, r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stderr, string(seed[2:20])) || strings.Contains(r.stderr, string(accountSeed[2:20])) {
			t.Errorf("%s: stderr echoes the seed: %q", name, r.stderr)
		}
		if (tc.mode&0o077 != 0) != strings.Contains(r.stderr, "read by others") {
			t.Errorf("%s: mode %04o, stderr %q: want a warning exactly when others can read it", name, tc.mode, r.stderr)
		}
	}
}

// oddElection is a valid election file with formatting tally would never
// write: one station compact, one spread over lines with an escaped id, a
// seal already present on one, non-ASCII text. keys seal must keep every
// byte of it but the seals.
const oddElection = `{"id":"lb-2021","name":"B\u1ea7u c\u1eed \"2021\"","date":"2021-05-23",
 "areas":[ {"id":"HN","name":"Thành phố Hà Nội","level":"province"},
   {"id":"LB","name":"Quận Long Biên","level":"district","parent":"HN"},{"id":"LB-BD","name":"Phường Bồ Đề","level":"ward","parent":"LB"} ],
 "stations" : [
   {"id":"LB-BD-01","name":"Khu vực {1}, [a]","ward":"LB-BD","registered":1850},
   {
     "seal" : "UOLDSEALNOTAKEY",
     "id" : "LB-BD-\u0030\u0032",
     "name" : "Khu vực \"2\"",
     "ward" : "LB-BD",
     "registered" : 1500
   },
   {"registered":10,"ward":"LB-BD","name":"x","id":"LB-BD-03"}
 ],
 "contests":[{"id":"QH","name":"QH","level":"national","units":[{"id":"U","name":"U","seats":1,"areas":["LB"],"stations":[],
   "candidates":[{"id":"C1","name":"A","born":"1960-01-01"},{"id":"C2","name":"B","born":"1961-01-01"}]}]}]}
`

var sealMember = regexp.MustCompile(`(, "seal": )?"U[A-Z2-7]{55}"`)

func TestKeysSeal(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"testdata", "odd"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join("testdata", "election.json")
			if name == "odd" {
				in = filepath.Join(dir, "odd.json")
				os.WriteFile(in, []byte(oddElection), 0o644)
			}
			out := filepath.Join(dir, "out")
			r := runInProcess("keys", "seal", "--election", in, "--out", out)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			orig, _ := os.ReadFile(in)
			sealed, err := os.ReadFile(filepath.Join(out, "election.json"))
			if err != nil {
				t.Fatal(err)
			}
			// Every byte kept but the seals: inserted members go, replaced
			// values get their old text back.
			back := sealMember.ReplaceAllStringFunc(string(sealed), func(s string) string {
				if strings.HasPrefix(s, ",") {
					return ""
				}
				return `"UOLDSEALNOTAKEY"`
			})
			if back != string(orig) {
				t.Fatalf("keys seal changed more than the seals:\n--- in\n%s\n--- out\n%s", orig, sealed)
			}
			e, err := tally.Parse(sealed)
			if err != nil {
				t.Fatal(err)
			}
			if p := events.CheckSeals(e); p != nil {
				t.Fatalf("CheckSeals: %v", p)
			}
			if m := fileMode(t, filepath.Join(out, "seeds")); m != 0o700 {
				t.Errorf("seeds directory mode %04o, want 0700", m)
			}
			pubs := map[string]bool{}
			for i, st := range e.Stations {
				p := filepath.Join(out, "seeds", st.ID+".seed")
				seed, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if m := fileMode(t, p); m != 0o600 {
					t.Errorf("%s mode %04o, want 0600", p, m)
				}
				if got := publicOf(t, seed); got != st.Seal {
					t.Errorf("station %s: seal %s, its seed's key %s", st.ID, st.Seal, got)
				}
				if pubs[st.Seal] {
					t.Errorf("station %s shares its key", st.ID)
				}
				pubs[st.Seal] = true
				// The seed seals that station's minutes, and only those.
				m := tally.Minutes{Election: e.ID, Contest: "QH", Station: st.ID, Version: 1, Status: tally.Partial}
				if m.Signature, err = events.Sign(seed, &m); err != nil {
					t.Fatal(err)
				}
				if v := events.VerifySeal(e, i, &m); v != nil {
					t.Errorf("station %s: own seed does not verify: %v", st.ID, v)
				}
				if other := (i + 1) % len(e.Stations); events.VerifySeal(e, other, &tally.Minutes{Election: e.ID, Contest: "QH", Station: e.Stations[other].ID, Version: 1, Status: tally.Partial, Signature: m.Signature}) == nil {
					t.Errorf("station %s's signature verifies for station %s", st.ID, e.Stations[other].ID)
				}
			}

			// No overwrite without --force; with it, new keys.
			r = runInProcess("keys", "seal", "--election", in, "--out", out)
			if r.code != 1 || !strings.Contains(r.stderr, "refusing to overwrite") {
				t.Errorf("second run: exit %d %q", r.code, r.stderr)
			}
			if again, _ := os.ReadFile(filepath.Join(out, "election.json")); !bytes.Equal(again, sealed) {
				t.Error("a refused run changed election.json")
			}
			r = runInProcess("keys", "seal", "--election", in, "--out", out, "--force")
			if again, _ := os.ReadFile(filepath.Join(out, "election.json")); r.code != 0 || bytes.Equal(again, sealed) {
				t.Errorf("--force: exit %d %q, or same keys", r.code, r.stderr)
			}

			// A sealed file sealed again has its seals replaced, not doubled.
			out2 := filepath.Join(dir, "out2")
			r = runInProcess("keys", "seal", "--election", filepath.Join(out, "election.json"), "--out", out2)
			if r.code != 0 || !strings.Contains(r.stderr, "replaced the seal") {
				t.Fatalf("resealing: exit %d %q", r.code, r.stderr)
			}
			twice, _ := os.ReadFile(filepath.Join(out2, "election.json"))
			if n := strings.Count(string(twice), `"seal"`); n != len(e.Stations) {
				t.Errorf("resealed file has %d seal members for %d stations", n, len(e.Stations))
			}
		})
	}
	t.Run("invalid election", func(t *testing.T) {
		r := runInProcess("keys", "seal", "--election", filepath.Join("testdata", "election_invalid.json"), "--out", t.TempDir())
		if r.code != 1 || !strings.Contains(r.stderr, "invalid election file") {
			t.Errorf("exit %d %q", r.code, r.stderr)
		}
	})
}

// captureServer answers POST /api/v1/minutes with code and records the
// bodies it got.
type captureServer struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
}

func newCaptureServer(t *testing.T, code int, answer string) *captureServer {
	t.Helper()
	c := &captureServer{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.bodies = append(c.bodies, b)
		c.mu.Unlock()
		w.WriteHeader(code)
		io.WriteString(w, answer)
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *captureServer) got() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bodies
}

// sealedTestElection seals testdata/election.json into dir with keys seal
// and returns the election and the output directory.
func sealedTestElection(t *testing.T) (*tally.Election, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "sealed")
	if r := runInProcess("keys", "seal", "--election", filepath.Join("testdata", "election.json"), "--out", out); r.code != 0 {
		t.Fatalf("keys seal: %s", r.stderr)
	}
	e, err := loadElection(filepath.Join(out, "election.json"))
	if err != nil {
		t.Fatal(err)
	}
	return e, out
}

func TestSubmitSeal(t *testing.T) {
	t.Parallel()
	e, sealedDir := sealedTestElection(t)
	minutesFile := filepath.Join("testdata", "minutes_valid.json")
	orig, _ := os.ReadFile(minutesFile)
	want, err := events.DecodeJSON(orig)
	if err != nil {
		t.Fatal(err)
	}

	// checkBody: the server got every minutes of the file, unchanged but
	// for a signature that verifies under the sealed election.
	checkBody := func(t *testing.T, body []byte, sealedStations map[string]bool) {
		t.Helper()
		ds, err := events.DecodeJSON(body)
		if err != nil || len(ds) != len(want) {
			t.Fatalf("server got %d minutes (%v), want %d", len(ds), err, len(want))
		}
		for i, d := range ds {
			if len(d.Problems) > 0 {
				t.Fatalf("minutes %d: %v", i, d.Problems)
			}
			m := d.Minutes
			s, _ := e.StationIndex(m.Station)
			v := events.VerifySeal(e, s, &m)
			if sealedStations[m.Station] != (v == nil) {
				t.Errorf("minutes %d (station %s): VerifySeal = %v", i, m.Station, v)
			}
			m.Signature = ""
			if !bytes.Equal(events.AppendJSON(nil, &m), events.AppendJSON(nil, &want[i].Minutes)) {
				t.Errorf("minutes %d changed:\n got %s\nwant %s", i, events.AppendJSON(nil, &m), events.AppendJSON(nil, &want[i].Minutes))
			}
		}
	}
	accepted := `{"accepted":3,"seq":9}`

	t.Run("seal", func(t *testing.T) {
		srv := newCaptureServer(t, http.StatusAccepted, accepted)
		r := runInProcess("submit", "--no-wait", "--server", srv.URL, "--seal", filepath.Join(sealedDir, "seeds", "LB-BD-01.seed"), minutesFile)
		if r.code != 0 || !strings.Contains(r.stdout, "accepted 3 minutes") {
			t.Fatalf("exit %d %q %q", r.code, r.stdout, r.stderr)
		}
		if len(srv.got()) != 1 {
			t.Fatalf("%d requests", len(srv.got()))
		}
		// One seed signs everything: LB-BD-01's minutes verify, LB-GT-01's
		// (signed with LB-BD-01's key) do not.
		checkBody(t, srv.got()[0], map[string]bool{"LB-BD-01": true})
	})
	t.Run("seal-dir", func(t *testing.T) {
		srv := newCaptureServer(t, http.StatusAccepted, accepted)
		r := runInProcess("submit", "--no-wait", "--server", srv.URL, "--seal-dir", sealedDir, minutesFile)
		if r.code != 0 {
			t.Fatalf("exit %d %q %q", r.code, r.stdout, r.stderr)
		}
		checkBody(t, srv.got()[0], map[string]bool{"LB-BD-01": true, "LB-GT-01": true})
		// Signatures are deterministic: the same file signs to the same
		// body, so a resubmission is a duplicate, not a conflict.
		runInProcess("submit", "--no-wait", "--server", srv.URL, "--seal-dir", filepath.Join(sealedDir, "seeds"), minutesFile)
		if got := srv.got(); len(got) != 2 || !bytes.Equal(got[0], got[1]) {
			t.Errorf("second signing differs (or seeds dir not accepted): %d requests", len(got))
		}
	})
	t.Run("rejected shows the key", func(t *testing.T) {
		srv := newCaptureServer(t, http.StatusUnprocessableEntity, `{"errors":[{"index":1,"field":"signature","rule":"seal","message":"signature does not verify with the seal of station \"LB-GT-01\""}]}`)
		seedFile := filepath.Join(sealedDir, "seeds", "LB-BD-01.seed")
		seed, _ := os.ReadFile(seedFile)
		r := runInProcess("submit", "--no-wait", "--server", srv.URL, "--seal", seedFile, minutesFile)
		if r.code != 1 || !strings.Contains(r.stderr, "rule seal") || !strings.Contains(r.stderr, publicOf(t, seed)) {
			t.Errorf("exit %d %q", r.code, r.stderr)
		}
		if strings.Contains(r.stderr+r.stdout, strings.TrimSpace(string(seed))) {
			t.Error("the seed is printed")
		}
	})

	// Nothing is sent when signing cannot be done faithfully.
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), mode)
		return p
	}
	seedFile := filepath.Join(sealedDir, "seeds", "LB-BD-01.seed")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"problems in the minutes", []string{"--seal", seedFile, write("bad.json", `{"election":"lb-2021","contest":"QH","station":"LB-BD-01","version":1,"status":"partial","voted":1.5,"recieved":3}`, 0o644)}, 1, "not signed, nothing sent; 2 problems"},
		{"not JSON", []string{"--seal", seedFile, write("garbage.json", `{bad`, 0o644)}, 1, "not signed, nothing sent"},
		{"version beyond 2^53", []string{"--seal", seedFile, write("big.json", `{"election":"lb-2021","contest":"QH","station":"LB-BD-01","version":9007199254740993,"status":"withdrawn"}`, 0o644)}, 1, "cannot be sealed"},
		{"no seed for the station", []string{"--seal-dir", sealedDir, write("nokey.json", `{"election":"lb-2021","contest":"QH","station":"LB-XX-09","version":1,"status":"withdrawn"}`, 0o644)}, 1, "no seed file"},
		{"station id as a path", []string{"--seal-dir", sealedDir, write("path.json", `{"election":"lb-2021","contest":"QH","station":"../seeds/LB-BD-01","version":1,"status":"withdrawn"}`, 0o644)}, 1, "not a valid station id"},
		{"missing seed file", []string{"--seal", filepath.Join(dir, "none.seed"), minutesFile}, 1, "no such file"},
		{"not a seed", []string{"--seal", write("pub.seed", e.Stations[0].Seal+"\n", 0o600), minutesFile}, 1, "no nkey user seed"},
		{"seal-dir not a directory", []string{"--seal-dir", filepath.Join(dir, "nodir"), minutesFile}, 1, "not a directory"},
	} {
		srv := newCaptureServer(t, http.StatusAccepted, accepted)
		r := runInProcess(append([]string{"submit", "--no-wait", "--server", srv.URL}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tc.name, r.code, r.stderr, tc.code, tc.stderr)
		}
		if n := len(srv.got()); n != 0 {
			t.Errorf("%s: %d requests sent", tc.name, n)
		}
	}

	// A seed others can read still signs, with a warning.
	loose := write("loose.seed", "", 0o644)
	seed, _ := os.ReadFile(seedFile)
	os.WriteFile(loose, seed, 0o644)
	srv := newCaptureServer(t, http.StatusAccepted, accepted)
	if r := runInProcess("submit", "--no-wait", "--server", srv.URL, "--seal", loose, minutesFile); r.code != 0 || !strings.Contains(r.stderr, "chmod 600") {
		t.Errorf("world-readable seed: exit %d %q", r.code, r.stderr)
	}
	if len(srv.got()) != 1 {
		t.Fatalf("world-readable seed: %d requests", len(srv.got()))
	}
	var sent []json.RawMessage
	for _, line := range bytes.Split(bytes.TrimSpace(srv.got()[0]), []byte("\n")) {
		sent = append(sent, line)
	}
	if len(sent) != 3 {
		t.Errorf("sent %d NDJSON lines, want 3", len(sent))
	}
}
