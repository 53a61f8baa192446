// Command tallyfold measures tally's fold alone (no NATS, no HTTP) on a
// generated national election of either structure: the memory it takes to
// load the election file and the projections, and the events per second it
// folds with fsynced Pebble commits, as `tally serve` would.
//
//	tallyfold gen  --structure 2021|2021-councils|2026 --dir DIR [--seed N] [--scale S]
//	tallyfold fold --dir DIR [--batch 10000] [--memory-limit 768]
//	tallyfold partitions --dir DIR [--n 1,2,4] [--batch 10000]
//
// gen writes DIR/election.json and the whole election night, in the
// gateway's binary encoding, to DIR/night.bin. fold runs in a fresh process,
// so that its peak RSS holds only what serving needs: the election, the
// fold state and Pebble, with the night streamed from disk.
//
// partitions splits the night by province (events.StationPartition: FNV-1a
// of the province id mod N) and folds each partition into its own Pebble
// store in its own goroutine, for each N of --n in one run, as --partitions
// N would (CONTRACT §6 v2): the fold events/s for each N, and a check that
// every unit and area result of the N stores equals that of the first N's.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/tallyvn/tally/bench/workload"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tallyfold gen|fold|partitions [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gen":
		err = gen(os.Args[2:])
	case "fold":
		err = fold(os.Args[2:])
	case "partitions":
		err = partitions(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "usage: tallyfold gen|fold|partitions [flags]")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tallyfold:", err)
		os.Exit(1)
	}
}

func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	structure := fs.String("structure", "2021", "2021 (one contest per ballot), 2021-councils (one contest per council) or 2026 (two tiers)")
	dir := fs.String("dir", "", "output directory")
	seed := fs.Uint64("seed", 2021, "generator seed")
	scale := fs.Float64("scale", 1, "scale (1: the real country)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("gen: --dir is required")
	}
	cfg := workload.NationalConfig{Seed: *seed, Scale: *scale}
	switch *structure {
	case "2021":
	case "2021-councils":
		cfg.PerCouncil = true
	case "2026":
		cfg.TwoTier = true
	default:
		return fmt.Errorf("gen: --structure %q: want 2021, 2021-councils or 2026", *structure)
	}
	f, err := workload.National(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o750); err != nil {
		return err
	}
	out, err := os.Create(filepath.Join(*dir, "election.json"))
	if err != nil {
		return err
	}
	if err := f.WriteJSON(out); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	fmt.Println(f.Summary())
	e, err := f.Parse()
	if err != nil {
		return err
	}
	fmt.Printf("%d contests, %d warnings\n", len(e.Contests), len(e.Warnings()))
	night, err := os.Create(filepath.Join(*dir, "night.bin"))
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(night, 1<<20)
	var buf []byte
	n := 0
	err = workload.Night(e, workload.NightConfig{Seed: *seed}, func(sub *workload.Submission) error {
		subject := events.Subject(e, sub.Station, sub.Minutes.Contest)
		buf = binary.AppendUvarint(buf[:0], uint64(len(subject)))
		buf = append(buf, subject...)
		data := events.AppendBinary(nil, &sub.Minutes)
		buf = binary.AppendUvarint(buf, uint64(len(data)))
		buf = append(buf, data...)
		n++
		_, err := w.Write(buf)
		return err
	})
	if err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Printf("%d submissions\n", n)
	return night.Close()
}

func fold(args []string) error {
	fs := flag.NewFlagSet("fold", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory written by gen")
	batch := fs.Int("batch", 10_000, "events per Pebble commit")
	limit := fs.Int64("memory-limit", 768, "soft Go heap limit in MiB, as tally serve's --memory-limit (0: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *limit > 0 {
		debug.SetMemoryLimit(*limit << 20)
	}
	start := time.Now()
	data, err := os.ReadFile(filepath.Join(*dir, "election.json"))
	if err != nil {
		return err
	}
	e, err := tally.Parse(data)
	data = nil
	if err != nil {
		return err
	}
	fmt.Printf("parse: %v, %d contests, %d stations; live heap %s, RSS %s, peak %s\n", time.Since(start).Round(time.Millisecond), len(e.Contests), len(e.Stations), liveHeap(), rss("VmRSS"), rss("VmHWM"))
	storeDir := filepath.Join(*dir, "store")
	if err := os.RemoveAll(storeDir); err != nil {
		return err
	}
	start = time.Now()
	store, err := projections.Open(storeDir, e)
	if err != nil {
		return err
	}
	defer store.Close()
	fmt.Printf("open: %v; live heap %s, RSS %s, peak %s\n", time.Since(start).Round(time.Millisecond), liveHeap(), rss("VmRSS"), rss("VmHWM"))

	in, err := os.Open(filepath.Join(*dir, "night.bin"))
	if err != nil {
		return err
	}
	defer in.Close()
	r := bufio.NewReaderSize(in, 1<<20)
	f := store.Fold()
	var (
		seq            uint64
		batches        int
		keys, bytes    int64
		maxKeys        uint32
		maxBytes       int
		inBatch        int
		outcomes       [projections.Rejected + 1]int
		subject, bodyb []byte
	)
	commit := func() error {
		s, err := f.EndBatch()
		if err != nil || s == nil {
			return err
		}
		batches++
		keys += int64(s.Keys)
		bytes += int64(s.Bytes)
		maxKeys, maxBytes = max(maxKeys, s.Keys), max(maxBytes, s.Bytes)
		return f.CommitBatch(s)
	}
	start = time.Now()
	for {
		n, err := binary.ReadUvarint(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		subject = grow(subject, int(n))
		if _, err := io.ReadFull(r, subject); err != nil {
			return err
		}
		n, err = binary.ReadUvarint(r)
		if err != nil {
			return err
		}
		bodyb = grow(bodyb, int(n))
		if _, err := io.ReadFull(r, bodyb); err != nil {
			return err
		}
		seq++
		msg := projections.Msg{Seq: seq, Subject: string(subject), Data: bodyb, Time: time.Unix(0, 0)}
		o, err := f.Apply(&msg)
		if err != nil {
			return err
		}
		outcomes[o]++
		if inBatch++; inBatch == *batch {
			if err := commit(); err != nil {
				return err
			}
			inBatch = 0
		}
	}
	if err := commit(); err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Printf("fold: %d events in %v: %.0f events/s; %d batches of %d: %.0f keys and %.2f MB staged a batch (largest %d keys, %.2f MB)\n",
		seq, took.Round(time.Millisecond), float64(seq)/took.Seconds(), batches, *batch,
		float64(keys)/float64(batches), float64(bytes)/float64(batches)/1e6, maxKeys, float64(maxBytes)/1e6)
	fmt.Printf("outcomes: applied %d, stale %d, duplicate %d, rejected %d\n", outcomes[projections.Applied], outcomes[projections.Stale], outcomes[projections.Duplicate], outcomes[projections.Rejected])
	fmt.Printf("after the fold: live heap %s, RSS %s, peak %s\n", liveHeap(), rss("VmRSS"), rss("VmHWM"))
	return nil
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// liveHeap collects garbage and returns the Go heap still in use: what the
// election, the fold state and Pebble's Go-side structures hold.
func liveHeap() string {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return fmt.Sprintf("%d MiB", m.HeapAlloc>>20)
}

// rss reads a memory figure of this process from /proc/self/status.
func rss(field string) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return "?"
			}
			return fmt.Sprintf("%d MiB", kb>>10)
		}
	}
	return "?"
}
