// Command tallyload plays many polling stations against a tally server it
// starts in process (embedded NATS, loopback HTTP only), for a fixed time,
// then checks every result against a reference and prints what the server
// held: requests per second, latency of the 202 answers, fold lag, memory,
// and every refusal by kind. See package bench/load.
//
//	go run ./bench/cmd/tallyload --stations 2000 --duration 30s
//	go run ./bench/cmd/tallyload --duration 10m        # soak, for release checks
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tallyvn/tally/bench/load"
	"github.com/tallyvn/tally/server"
)

func main() {
	var cfg load.Config
	flag.IntVar(&cfg.Stations, "stations", 2000, "simulated stations submitting at once")
	flag.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long stations submit partial minutes before their finals (10m for a soak)")
	flag.Float64Var(&cfg.Scale, "scale", 0.05, "scale of the generated national election (0.05: about 4,000 stations)")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "seed of the generated election")
	flag.StringVar(&cfg.DataDir, "data", "", "data directory for the server (default: a temporary one, removed after)")
	maxInFlight := flag.Int("max-inflight", 0, "server: submissions in flight before 429 (0: server default)")
	maxPending := flag.Uint64("max-pending", 0, "server: fold backlog before 429 (0: server default)")
	batch := flag.Int("batch", 0, "server: most minutes per fold commit (0: server default)")
	partitions := flag.Int("partitions", 1, "server: minutes streams by province, each folded in parallel (tally serve --partitions)")
	quiet := flag.Bool("quiet", false, "no progress line every second")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "tallyload: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	cfg.Server = func(c *server.Config) {
		c.Gateway.MaxInFlight, c.Gateway.MaxPending, c.Fold.BatchSize, c.Fold.Partitions = *maxInFlight, *maxPending, *batch, *partitions
	}
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := load.Run(ctx, cfg)
	if rep != nil {
		fmt.Print(rep)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tallyload: %v\n", err)
		os.Exit(1)
	}
	if len(rep.Mismatches) > 0 {
		os.Exit(1)
	}
}
