package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestRebuildRefusesBesideLiveServe runs `tally rebuild` on the data
// directory of a running `tally serve`: it must refuse (exit 1, the message
// verify gives, naming the lock) without touching anything, the server's
// results must stay as they were, and minutes submitted afterwards (a
// correction among them) must be applied by the live fold.
func TestRebuildRefusesBesideLiveServe(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 20260412)
	all, _ := genMinutes(h.rng, h.w, 6)
	half := len(all) / 2
	h.proc = startServe(t, h.electionFile, h.dataDir)
	h.submitAll(all[:half], 5)
	waitCaughtUp(t, h.client, h.proc.url)
	compareAll(t, h.client, h.proc.url, h.ref, true)

	for _, cmd := range []string{"rebuild", "verify"} {
		res := runTally(t, 60*time.Second, nil, cmd, "--election", h.electionFile, "--data", h.dataDir)
		if res.code != exitFailed {
			t.Errorf("tally %s beside a live serve exited %d, want 1\nstdout:\n%s\nstderr:\n%s", cmd, res.code, res.stdout, res.stderr)
		}
		for _, want := range []string{"locked by another process", "stop tally serve first", cmd + " must be the only process using --data"} {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("tally %s beside a live serve: stderr lacks %q:\n%s", cmd, want, res.stderr)
			}
		}
		t.Logf("tally %s: %s", cmd, strings.TrimSpace(res.stderr))
	}
	// A second serve on the same directory: refused before it starts a
	// second NATS server over the live store, with the same explanation.
	res := runTally(t, 60*time.Second, nil, "serve", "--election", h.electionFile, "--data", h.dataDir, "--http", freeAddr(t), "--nats-listen", "none")
	if res.code != exitFailed || !strings.Contains(res.stderr, "locked by another process") || !strings.Contains(res.stderr, "serve must be the only process using --data") {
		t.Errorf("a second tally serve on the data directory: exit %d, want 1 with the lock explained; stderr:\n%s", res.code, res.stderr)
	}
	for _, leftover := range []string{"projections.rebuild", "projections.old"} {
		if _, err := os.Stat(filepath.Join(h.dataDir, leftover)); err == nil {
			t.Errorf("the refused rebuild left %s behind", leftover)
		}
	}
	// The server still serves from its own store, unchanged.
	compareAll(t, h.client, h.proc.url, h.ref, true)

	// What comes next is folded by the live server: the rest of the night,
	// then a correction (a new version) of one station's current minutes.
	h.submitAll(all[half:], 5)
	keys := make([]string, 0, len(h.ref.current))
	for k := range h.ref.current {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		t.Fatal("no current minutes to correct")
	}
	fix := h.ref.current[keys[h.rng.IntN(len(keys))]].clone()
	fix.Version++
	h.store([]*minutes{fix}, h.encode([]*minutes{fix}))
	waitCaughtUp(t, h.client, h.proc.url)
	compareAll(t, h.client, h.proc.url, h.ref, true)
	var view stationView
	if err := getJSON(h.client, h.proc.url+"/api/v1/contests/"+fix.Contest+"/stations/"+fix.Station, &view); err != nil {
		t.Fatal(err)
	}
	if n := len(view.History); n == 0 || view.History[n-1].Version != fix.Version || view.History[n-1].Outcome != "applied" {
		t.Errorf("the correction (version %d of %s/%s) is not applied: history %+v", fix.Version, fix.Contest, fix.Station, view.History)
	}
	if code := h.proc.stop(t); code != 0 {
		t.Fatalf("tally serve exited %d after SIGTERM; stderr:\n%s", code, tail(h.proc.stderr.String(), 20))
	}

	// Stopped, the same directory rebuilds (under a memory limit, which
	// only makes the collector work harder).
	res = runTally(t, 60*time.Second, nil, "rebuild", "--election", h.electionFile, "--data", h.dataDir, "--memory-limit", "256MiB")
	if res.code != exitOK {
		t.Fatalf("tally rebuild after serve stopped exited %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
}
