package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tallyvn/tally/server"
)

// Serve is `tally serve`, a process of its own, folding the pre-loaded
// stream from the bench's NATS server until it has caught up: its memory
// is tally's alone, without the NATS server or the harness.
type Serve struct {
	Binary string `json:"binary"`
	// CaughtUpSeconds runs from the process's start (reading the election
	// file, opening the store included) to the status answering
	// applied_seq = the stream's last sequence.
	CaughtUpSeconds float64 `json:"caught_up_seconds"`
	EventsPerS      float64 `json:"events_per_s"`
	PeakRSSMiB      float64 `json:"peak_rss_mib"` // VmHWM of the process once caught up
	RSSMiB          float64 `json:"rss_mib"`      // VmRSS then
}

// tallyBinary returns the tally binary to run: cfg.TallyBinary, or one
// built from this module with the go command.
func (r *runner) tallyBinary(ctx context.Context) (string, error) {
	if r.cfg.TallyBinary != "" {
		return r.cfg.TallyBinary, nil
	}
	bin := filepath.Join(r.tmp, "tally")
	r.logf("serve: go build -o %s github.com/tallyvn/tally/cmd/tally", bin)
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/tallyvn/tally/cmd/tally").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build tally: %w\n%s", err, tail(out, 2000))
	}
	return bin, nil
}

// serve runs `tally serve` on the bench stream until it has folded it all,
// and reads its memory.
func (r *runner) serve(ctx context.Context) error {
	bin, err := r.tallyBinary(ctx)
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	dir := filepath.Join(r.tmp, "serve")
	defer os.RemoveAll(dir)
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, bin, "serve", "--election", r.electionFile, "--data", dir,
		"--nats", r.natsURL, "--http", addr, "--batch", strconv.Itoa(r.cfg.BatchSize), "--log-level", "warn")
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		_ = r.stream.DeleteConsumer(context.WithoutCancel(ctx), "tally-fold")
	}()

	client := &http.Client{Timeout: 5 * time.Second}
	status := func() (uint64, error) {
		resp, err := client.Get("http://" + addr + "/api/v1/status")
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var st server.Status
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return 0, err
		}
		return st.AppliedSeq, nil
	}
	limit := time.Now().Add(10 * time.Minute)
	for {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("tally serve exited: %v\n%s", err, tail([]byte(stderr.String()), 2000))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if applied, err := status(); err == nil && applied >= r.lastSeq {
			break
		}
		if time.Now().After(limit) {
			return errors.New("tally serve did not catch up in 10 minutes")
		}
	}
	elapsed := time.Since(start)
	res := &Serve{Binary: bin, CaughtUpSeconds: elapsed.Seconds(), EventsPerS: float64(r.n) / elapsed.Seconds(),
		PeakRSSMiB: float64(pidStatusKiB(cmd.Process.Pid, "VmHWM")) / 1024,
		RSSMiB:     float64(pidStatusKiB(cmd.Process.Pid, "VmRSS")) / 1024}
	r.res.Serve = res
	r.logf("serve: tally serve folded %d events and caught up %.1fs after it started (%.0f events/s); peak RSS %.0f MiB, RSS %.0f MiB",
		r.n, res.CaughtUpSeconds, res.EventsPerS, res.PeakRSSMiB, res.RSSMiB)
	return nil
}
