package main

// These tests run the real tally binary as a child process: TestMain builds
// it once with the go command that runs the tests, and every test starts,
// kills, stops and queries it the way an operator and the stations would.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tallyBin is the binary built by TestMain.
var tallyBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tally-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tally tests:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	tallyBin = filepath.Join(dir, "tally")
	goCmd, err := goTool()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tally tests:", err)
		return 1
	}
	build := exec.Command(goCmd, "build", "-o", tallyBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "tally tests: go build: %v\n", err)
		return 1
	}
	return m.Run()
}

// goTool returns the go command of the toolchain running the tests.
func goTool() (string, error) {
	name := "go"
	if runtime.GOOS == "windows" {
		name = "go.exe"
	}
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", name); fileExists(p) {
			return p, nil
		}
	}
	return exec.LookPath("go")
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// syncBuffer is a bytes.Buffer safe for the child's output copier and the
// test reading it at the same time.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runResult is what a finished tally command printed and returned.
type runResult struct {
	code           int
	stdout, stderr string
}

// runTally runs the binary to completion (at most timeout) and returns its
// exit code and output. stdin may be nil.
func runTally(t *testing.T, timeout time.Duration, stdin io.Reader, args ...string) runResult {
	t.Helper()
	cmd := exec.Command(tallyBin, args...)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &stdout, &stderr, stdin
	if err := cmd.Start(); err != nil {
		t.Fatalf("start tally %q: %v", args, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// timeout bounds the time without any new output, not the run: a
	// command that keeps printing (progress, retries) is still working.
	window := max(timeout, stallWindow)
	w := newStallWatch()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-tick.C:
			if w.idle(len(stdout.String()), len(stderr.String())) > window {
				cmd.Process.Kill()
				<-done
				t.Fatalf("tally %q printed nothing for %s and did not finish\nstdout:\n%s\nstderr:\n%s", args, window, stdout.String(), stderr.String())
			}
		}
	}
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("tally %q: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return runResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// freeAddr returns a loopback address with a port nobody listens on (a port
// the kernel picked, released again for the child to take).
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pick a free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// serverProc is a running `tally serve`.
type serverProc struct {
	cmd     *exec.Cmd
	addr    string
	url     string // http://addr
	stderr  *syncBuffer
	done    chan struct{} // closed once the process has exited
	waitErr error         // valid once done is closed
}

// startServe starts `tally serve` on a fresh HTTP port without a NATS
// listener and waits until GET /api/v1/status answers 200.
func startServe(t testing.TB, electionFile, dataDir string, extra ...string) *serverProc {
	t.Helper()
	var p *serverProc
	for attempt := 1; ; attempt++ {
		var err error
		p, err = tryStartServe(t, electionFile, dataDir, extra...)
		if err == nil {
			break
		}
		// Another process may take the port between freeAddr and the
		// child's listen; try another port a few times.
		if attempt >= 3 || !strings.Contains(p.stderr.String(), "address already in use") {
			t.Fatalf("tally serve did not start: %v\nstderr:\n%s", err, p.stderr.String())
		}
	}
	t.Cleanup(func() { p.kill() })
	return p
}

func tryStartServe(t testing.TB, electionFile, dataDir string, extra ...string) (*serverProc, error) {
	addr := freeAddr(t)
	args := append([]string{"serve", "--election", electionFile, "--data", dataDir, "--http", addr, "--nats-listen", "none"}, extra...)
	p := &serverProc{addr: addr, url: "http://" + addr, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(tallyBin, args...)
	p.cmd.Stderr = p.stderr
	p.cmd.Stdout = p.stderr
	if err := p.cmd.Start(); err != nil {
		close(p.done)
		return p, err
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	client := &http.Client{Timeout: 2 * time.Second}
	w := newStallWatch() // starting: bounded by its log not moving
	for {
		select {
		case <-p.done:
			return p, fmt.Errorf("exited before answering: %v", p.waitErr)
		default:
		}
		resp, err := client.Get(p.url + "/api/v1/status")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if w.stalled(len(p.stderr.String())) {
			p.kill()
			return p, fmt.Errorf("GET /api/v1/status did not answer 200 and the log did not move for %s (last error %v)", stallWindow, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// CONTRACT §6: it logs the addresses it serves on at start. The line is
	// written before the first answer, but the goroutine copying the
	// child's stderr into the buffer may not have caught up yet.
	logged := func() bool {
		logs := p.stderr.String()
		return strings.Contains(logs, "listening") && strings.Contains(logs, "http=http://"+addr)
	}
	for w := newStallWatch(); !logged(); time.Sleep(5 * time.Millisecond) {
		if w.stalled(len(p.stderr.String())) {
			p.kill()
			t.Fatalf("tally serve answers on %s but did not log \"listening\" with http=http://%s; stderr:\n%s", addr, addr, p.stderr.String())
		}
	}
	return p, nil
}

// kill SIGKILLs the server (if it still runs) and waits for it to exit.
func (p *serverProc) kill() {
	if p.cmd.Process != nil {
		select {
		case <-p.done:
			return
		default:
		}
		p.cmd.Process.Kill()
	}
	<-p.done
}

// stop sends SIGTERM and returns the exit code once the server exited.
func (p *serverProc) stop(t testing.TB) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM tally serve: %v", err)
	}
	// Shutdown drains the fold: bounded by the log not moving.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for w := newStallWatch(); ; {
		select {
		case <-p.done:
		case <-tick.C:
			if w.stalled(len(p.stderr.String())) {
				p.kill()
				t.Fatalf("tally serve did not exit after SIGTERM and logged nothing for %s; stderr:\n%s", stallWindow, p.stderr.String())
			}
			continue
		}
		break
	}
	if p.waitErr == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		return ee.ExitCode()
	}
	t.Fatalf("tally serve: %v", p.waitErr)
	return -1
}

// apiStatus is the answer of GET /api/v1/status (CONTRACT §5).
type apiStatus struct {
	Election   string `json:"election"`
	StreamSeq  uint64 `json:"stream_seq"`
	AppliedSeq uint64 `json:"applied_seq"`
	Applied    uint64 `json:"applied"`
	Rejected   uint64 `json:"rejected"`
	Duplicates uint64 `json:"duplicates"`
}

// getJSON GETs url and decodes a 200 answer into v.
func getJSON(client *http.Client, url string, v any) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %v in %s", url, err, body)
	}
	return nil
}

// waitCaughtUp polls the status until the fold has applied everything the
// stream holds and returns that status.
func waitCaughtUp(t testing.TB, client *http.Client, url string) apiStatus {
	t.Helper()
	w := newStallWatch()
	for {
		var st apiStatus
		err := getJSON(client, url+"/api/v1/status", &st)
		if err == nil && st.AppliedSeq == st.StreamSeq {
			return st
		}
		if w.stalled(st.AppliedSeq, st.StreamSeq) {
			t.Fatalf("the fold stopped catching up with the stream: applied_seq did not move for %s: status %+v, err %v", stallWindow, st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// submitAnswer is the 202 answer of POST /api/v1/minutes.
type submitAnswer struct {
	Accepted   int    `json:"accepted"`
	Seq        uint64 `json:"seq"`
	Duplicates int    `json:"duplicates"`
}

// postMinutes POSTs body once. It returns the status code and the decoded
// 202 answer; err is a transport error.
func postMinutes(client *http.Client, url string, body []byte) (int, submitAnswer, []byte, error) {
	return postMinutesCtx(context.Background(), client, url, body)
}

func postMinutesCtx(ctx context.Context, client *http.Client, url string, body []byte) (int, submitAnswer, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/api/v1/minutes", bytes.NewReader(body))
	if err != nil {
		return 0, submitAnswer{}, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, submitAnswer{}, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, submitAnswer{}, nil, err
	}
	var a submitAnswer
	if resp.StatusCode == http.StatusAccepted {
		if err := json.Unmarshal(b, &a); err != nil {
			return resp.StatusCode, a, b, fmt.Errorf("bad 202 answer %s: %v", b, err)
		}
	}
	return resp.StatusCode, a, b, nil
}

func writeJSONFile(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
