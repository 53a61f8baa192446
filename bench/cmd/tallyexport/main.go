// Command tallyexport measures the exports of CONTRACT §8 at national scale:
// it folds bench/workload's national election night into a fresh Pebble
// store (no NATS: the fold core, as projections' national benchmark does),
// reopens the store as `tally serve` would hold it, then writes the NIST
// SP 1500-100 report of the whole election and the CSV of each contest,
// each from one projections.View, to a byte counter. For each export it
// prints the time, the bytes, and the process's peak resident memory during
// that export (VmHWM, reset before each export through
// /proc/self/clear_refs) next to the resident memory before it.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tallyvn/tally/bench/workload"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/export"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

func main() {
	provinces := flag.Int("provinces", 0, "keep the first N provinces (0: all 63)")
	scale := flag.Float64("scale", 1, "workload scale (10 ≈ Indonesia)")
	dir := flag.String("dir", "", "data directory (default: a temporary one, removed at the end)")
	memLimit := flag.Int64("memory-limit", 768<<20, "soft Go heap limit in bytes, as `tally serve --memory-limit` sets it (0: none)")
	flag.Parse()
	if *memLimit > 0 {
		debug.SetMemoryLimit(*memLimit)
	}
	if err := run(*provinces, *scale, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "tallyexport:", err)
		os.Exit(1)
	}
}

func run(provinces int, scale float64, dir string) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "tallyexport")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	f, err := workload.National(workload.NationalConfig{Seed: 2021, Provinces: provinces, Scale: scale})
	if err != nil {
		return err
	}
	e, err := f.Parse()
	if err != nil {
		return err
	}
	fmt.Println(f.Summary())
	path := filepath.Join(dir, "p")
	start := time.Now()
	n, err := fold(e, path)
	if err != nil {
		return err
	}
	fmt.Printf("folded %d events in %.1f s\n", n, time.Since(start).Seconds())

	// Reopened, as a serving node holds it.
	store, err := projections.Open(path, e)
	if err != nil {
		return err
	}
	defer store.Close()
	measure := func(name string, write func(io.Writer, *projections.View) error) error {
		runtime.GC()
		debug.FreeOSMemory()
		before := statusKiB("VmRSS")
		if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
			return fmt.Errorf("reset peak RSS: %w", err)
		}
		start, cpu0 := time.Now(), cpuTime()
		v, err := store.View()
		if err != nil {
			return err
		}
		var c counter
		err = write(&c, v)
		v.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Printf("%-26s %7.2f s (CPU %6.2f s) %8.1f MiB   RSS before %5.0f MiB, peak during %5.0f MiB (+%.0f MiB)\n", name,
			time.Since(start).Seconds(), (cpuTime() - cpu0).Seconds(), float64(c)/(1<<20), before/1024, statusKiB("VmHWM")/1024, (statusKiB("VmHWM")-before)/1024)
		return nil
	}
	if err := measure("nist-1500-100.json", func(w io.Writer, v *projections.View) error {
		return export.WriteNIST(w, v, export.NISTOptions{})
	}); err != nil {
		return err
	}
	for _, c := range e.Contests {
		if err := measure("results.csv?contest="+c.ID, func(w io.Writer, v *projections.View) error {
			return export.WriteCSV(w, v, c.ID)
		}); err != nil {
			return err
		}
	}
	return nil
}

// fold folds the national night into a new store at path, committing every
// 10,000 events, and returns the number of events.
func fold(e *tally.Election, path string) (int, error) {
	store, err := projections.Open(path, e)
	if err != nil {
		return 0, err
	}
	defer store.Close()
	fl := store.Fold()
	seq := uint64(0)
	var buf []byte
	err = workload.Night(e, workload.NightConfig{Seed: 2021}, func(sub *workload.Submission) error {
		seq++
		buf = events.AppendBinary(buf[:0], &sub.Minutes)
		msg := projections.Msg{Seq: seq, Subject: events.Subject(e, sub.Station, sub.Minutes.Contest), Data: buf, Time: time.Unix(0, 0)}
		if _, err := fl.Apply(&msg); err != nil {
			return err
		}
		if seq%10_000 == 0 {
			_, err := fl.Commit()
			return err
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if _, err := fl.Commit(); err != nil {
		return 0, err
	}
	return int(seq), nil
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type counter int64

func (c *counter) Write(p []byte) (int, error) { *c += counter(len(p)); return len(p), nil }

// statusKiB reads a "kB" field of /proc/self/status.
func statusKiB(field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return n
		}
	}
	return 0
}
