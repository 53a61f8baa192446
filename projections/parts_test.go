package projections_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tallyvn/tally/bench/workload"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
)

// TestPartElectionsSizedByPartition: each partition's part of the election
// holds exactly the stations, areas and units of its provinces, ids and
// order kept, and every contest; the parts add up to the whole file, so a
// partition's fold state is sized by its own stations.
func TestPartElectionsSizedByPartition(t *testing.T) {
	const n = 4
	f, err := workload.National(workload.NationalConfig{Seed: 3, Scale: 0.03, Provinces: 8, TwoTier: true})
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.Parse()
	if err != nil {
		t.Fatal(err)
	}
	parts, err := projections.PartElections(e, n)
	if err != nil {
		t.Fatal(err)
	}
	stations, areas, units := 0, 0, 0
	for p, part := range parts {
		if len(part.Contests) != len(e.Contests) {
			t.Fatalf("partition %d: %d contests, the file %d", p, len(part.Contests), len(e.Contests))
		}
		if len(part.Stations) == 0 || len(part.Stations) == len(e.Stations) {
			t.Fatalf("partition %d: %d of %d stations", p, len(part.Stations), len(e.Stations))
		}
		last := -1
		for s := range part.Stations {
			i, ok := e.StationIndex(part.Stations[s].ID)
			if !ok || i <= last || events.StationPartition(e, i, n) != p {
				t.Fatalf("partition %d holds station %q (index %d after %d)", p, part.Stations[s].ID, i, last)
			}
			last = i
		}
		for a := range part.Areas {
			if _, ok := e.AreaIndex(part.Areas[a].ID); !ok {
				t.Fatalf("partition %d: unknown area %q", p, part.Areas[a].ID)
			}
		}
		for c := range part.Contests {
			units += len(part.Contests[c].Units)
		}
		stations += len(part.Stations)
		areas += len(part.Areas)
	}
	whole := 0
	for c := range e.Contests {
		whole += len(e.Contests[c].Units)
	}
	if stations != len(e.Stations) || areas != len(e.Areas) || units != whole {
		t.Fatalf("parts hold %d stations, %d areas, %d units; the file %d, %d, %d", stations, areas, units, len(e.Stations), len(e.Areas), whole)
	}
	// One partition: the file itself.
	one, err := projections.PartElections(e, 1)
	if err != nil || len(one) != 1 || one[0] != e {
		t.Fatalf("PartElections(e, 1) = %v, %v", one, err)
	}
	// A part's fingerprint changes with the file's content in its
	// provinces, and only there.
	f.Stations[0].Name += " (mới)"
	changed, err := f.Parse()
	if err != nil {
		t.Fatal(err)
	}
	changedParts, err := projections.PartElections(changed, n)
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := e.StationIndex(f.Stations[0].ID)
	for p := range n {
		same := bytes.Equal(projections.Fingerprint(parts[p]), projections.Fingerprint(changedParts[p]))
		if want := p != events.StationPartition(e, s0, n); same != want {
			t.Errorf("partition %d: fingerprint unchanged %v, want %v", p, same, want)
		}
	}
}

// TestCheckPartitionDirs: a data directory holding the projections of
// another number of partitions is refused, naming what it holds.
func TestCheckPartitionDirs(t *testing.T) {
	dir := t.TempDir()
	if err := projections.CheckPartitionDirs(dir, 4); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"projections-p0", "projections-p1", "projections-p2"} {
		if err := mkdir(filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := projections.CheckPartitionDirs(dir, 3); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n    int
		want []string
	}{{1, []string{"projections-p0", "projections-p1", "projections-p2"}}, {2, []string{"projections-p2"}}} {
		err := projections.CheckPartitionDirs(dir, tc.n)
		if err == nil {
			t.Fatalf("n=%d: no error", tc.n)
		}
		for _, w := range tc.want {
			if !bytes.Contains([]byte(err.Error()), []byte(w)) {
				t.Errorf("n=%d: %v does not name %s", tc.n, err, w)
			}
		}
	}
}

func mkdir(dir string) error { return os.MkdirAll(dir, 0o750) }

// TestEachPartition: every partition runs, in parallel (each waits for
// all the others to start), and the first failing partition's error comes
// back, named when there are several, as it is when there is one.
func TestEachPartition(t *testing.T) {
	const n = 4
	var started sync.WaitGroup
	started.Add(n)
	ran := make([]bool, n)
	boom := errors.New("boom")
	err := projections.EachPartition(n, func(p int) error {
		started.Done()
		started.Wait() // deadlocks unless all run at once
		ran[p] = true
		if p >= 2 {
			return fmt.Errorf("store %d: %w", p, boom)
		}
		return nil
	})
	if !errors.Is(err, boom) || err.Error() != "partition 2: store 2: boom" {
		t.Errorf("error %v, want partition 2's", err)
	}
	for p, ok := range ran {
		if !ok {
			t.Errorf("partition %d did not run", p)
		}
	}
	if err := projections.EachPartition(1, func(int) error { return boom }); err != boom {
		t.Errorf("one partition: error %v, want it as returned", err)
	}
	if err := projections.EachPartition(3, func(int) error { return nil }); err != nil {
		t.Errorf("no failure: %v", err)
	}
}
