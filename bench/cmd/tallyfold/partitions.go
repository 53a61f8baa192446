package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// event is one message of the night, read into memory.
type event struct {
	subject string
	data    []byte
}

func partitions(args []string) error {
	fs := flag.NewFlagSet("partitions", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory written by gen")
	ns := fs.String("n", "1,2,4", "numbers of partitions to fold with, in one run")
	batch := fs.Int("batch", 10_000, "events per Pebble commit, in each partition")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var counts []int
	for _, f := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("partitions: --n %q: want positive numbers separated by commas", *ns)
		}
		counts = append(counts, n)
	}
	data, err := os.ReadFile(filepath.Join(*dir, "election.json"))
	if err != nil {
		return err
	}
	e, err := tally.Parse(data)
	if err != nil {
		return err
	}
	if err := events.CheckPartitionable(e); err != nil {
		return err
	}
	night, err := readNight(filepath.Join(*dir, "night.bin"))
	if err != nil {
		return err
	}
	fmt.Printf("%d events, %d provinces, %d stations\n", len(night), len(events.Provinces(e)), len(e.Stations))
	var first [][]*projections.Store
	var base float64
	for i, n := range counts {
		stores, rate, err := foldPartitions(e, night, n, *batch, filepath.Join(*dir, "partitions", strconv.Itoa(n)))
		if err != nil {
			return err
		}
		if i == 0 {
			base = rate
			defer closeAll(stores)
		}
		fmt.Printf("N=%d: %.0f events/s (%.2f× N=%d)\n", n, rate, rate/base, counts[0])
		if i == 0 {
			first = append(first, stores)
			continue
		}
		err = sameResults(e, first[0], counts[0], stores, n)
		closeAll(stores)
		if err != nil {
			return fmt.Errorf("N=%d: %w", n, err)
		}
		fmt.Printf("N=%d: every unit and area result equals N=%d's\n", n, counts[0])
	}
	return nil
}

func readNight(path string) ([]event, error) {
	in, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	r := bufio.NewReaderSize(in, 1<<20)
	var night []event
	for {
		n, err := binary.ReadUvarint(r)
		if err == io.EOF {
			return night, nil
		}
		if err != nil {
			return nil, err
		}
		subject := make([]byte, n)
		if _, err := io.ReadFull(r, subject); err != nil {
			return nil, err
		}
		if n, err = binary.ReadUvarint(r); err != nil {
			return nil, err
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, err
		}
		night = append(night, event{string(subject), data})
	}
}

// foldPartitions splits night into n partitions by the subject's province
// and folds each into its own store under dir, in parallel; it returns
// the stores and the events folded per second over all partitions.
func foldPartitions(e *tally.Election, night []event, n, batch int, dir string) ([]*projections.Store, float64, error) {
	parts := make([][]event, n)
	for _, ev := range night {
		prov, _, _, ok := events.SplitSubject(e.ID, ev.subject)
		if !ok || prov == "" {
			return nil, 0, fmt.Errorf("subject %q: not a v2 minutes subject", ev.subject)
		}
		p := events.Partition(prov, n)
		parts[p] = append(parts[p], ev)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, 0, err
	}
	// Each partition folds its own provinces' part of the file, as
	// tally serve --partitions does.
	elections, err := projections.PartElections(e, n)
	if err != nil {
		return nil, 0, err
	}
	// The Go heap each store takes once open (its fold state, sized by
	// its part's stations, and Pebble's Go-side caches), measured after a
	// collection: the N stores together should take about what one takes.
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	stores := make([]*projections.Store, n)
	var total, largest uint64
	for p := range stores {
		before := heap()
		st, err := projections.Open(filepath.Join(dir, "p"+strconv.Itoa(p)), elections[p])
		if err != nil {
			closeAll(stores)
			return nil, 0, err
		}
		stores[p] = st
		if after := heap(); after > before {
			total += after - before
			largest = max(largest, after-before)
		}
	}
	fmt.Printf("N=%d: opened stores take %.1f MiB of Go heap (the largest partition's %.1f MiB)\n", n, float64(total)/(1<<20), float64(largest)/(1<<20))
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for p := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[p] = foldAll(stores[p].Fold(), parts[p], batch)
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		closeAll(stores)
		return nil, 0, err
	}
	return stores, float64(len(night)) / took.Seconds(), nil
}

// foldAll folds evs in stream order (positions from 1, as in the
// partition's own stream), committing every batch events.
func foldAll(f *projections.Fold, evs []event, batch int) error {
	for i := range evs {
		msg := projections.Msg{Seq: uint64(i + 1), Subject: evs[i].subject, Data: evs[i].data, Time: time.Unix(0, 0)}
		if _, err := f.Apply(&msg); err != nil {
			return err
		}
		if (i+1)%batch == 0 {
			if _, err := f.Commit(); err != nil {
				return err
			}
		}
	}
	_, err := f.Commit()
	return err
}

// sameResults compares every unit result and every area result of the
// stores a (na partitions) and b (nb), each read from the store of its
// province's partition; positions differ by design and are left out.
func sameResults(e *tally.Election, a []*projections.Store, na int, b []*projections.Store, nb int) error {
	norm := func(v any) (string, error) {
		j, err := json.Marshal(v)
		if err != nil {
			return "", err
		}
		var m map[string]any
		if err := json.Unmarshal(j, &m); err != nil {
			return "", err
		}
		delete(m, "applied_seq")
		delete(m, "applied_positions")
		j, err = json.Marshal(m)
		return string(j), err
	}
	// Read through projections.Parts: by province, as tally serve reads.
	pa, pb := projections.NewParts(e, a), projections.NewParts(e, b)
	for c := range e.Contests {
		cid := e.Contests[c].ID
		for u := range e.Contests[c].Units {
			st := e.UnitStations(c, u)
			if len(st) == 0 {
				continue
			}
			ra, err := pa.UnitResult(cid, e.Contests[c].Units[u].ID)
			if err != nil {
				return err
			}
			rb, err := pb.UnitResult(cid, e.Contests[c].Units[u].ID)
			if err != nil {
				return err
			}
			ja, _ := norm(ra)
			jb, _ := norm(rb)
			if ja != jb {
				return fmt.Errorf("unit %s of %s:\n%s\nwant %s", e.Contests[c].Units[u].ID, cid, jb, ja)
			}
		}
		for _, a32 := range e.ContestAreas(c) {
			area := int(a32)
			ra, err := pa.AreaResult(cid, e.Areas[area].ID)
			if err != nil {
				return err
			}
			rb, err := pb.AreaResult(cid, e.Areas[area].ID)
			if err != nil {
				return err
			}
			ja, _ := norm(ra)
			jb, _ := norm(rb)
			if ja != jb {
				return fmt.Errorf("area %s of %s:\n%s\nwant %s", e.Areas[area].ID, cid, jb, ja)
			}
		}
	}
	return nil
}

func closeAll(stores []*projections.Store) {
	for _, s := range stores {
		if s != nil {
			s.Close()
		}
	}
}
