package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/bench/workload"
	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

// generate builds the election, writes its file to path and counts what it
// holds.
func generate(cfg *Config, path string) (*tally.Election, Workload, error) {
	start := time.Now()
	f, err := workload.National(workload.NationalConfig{Seed: cfg.Seed, Scale: cfg.Scale, Provinces: cfg.Provinces, ID: cfg.ElectionID,
		TwoTier: cfg.TwoTier, PerCouncil: cfg.PerCouncil})
	if err != nil {
		return nil, Workload{}, err
	}
	var buf bytes.Buffer
	if err := f.WriteJSON(&buf); err != nil {
		return nil, Workload{}, err
	}
	e, err := tally.Parse(buf.Bytes())
	if err != nil {
		return nil, Workload{}, fmt.Errorf("parse the generated election: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return nil, Workload{}, err
	}
	s := f.Summary()
	w := Workload{Provinces: s.Provinces, Districts: s.Districts, Wards: s.Wards, Stations: s.Stations, Voters: s.Voters,
		Kinds: map[string]int{}, GenerateSeconds: time.Since(start).Seconds()}
	for _, c := range s.Contests {
		w.Units += c.Units
		w.Candidates += c.Candidates
	}
	return e, w, nil
}

// nightConfig is the night every phase plays.
func nightConfig(cfg *Config) workload.NightConfig { return workload.NightConfig{Seed: cfg.Seed} }

// chunk is up to one publish window of encoded events.
type chunk struct {
	msgs  []nats.Msg
	parts []int // each message's partition
	arena []byte
}

// preload plays the night into stream, in the gateway's binary encoding, one
// window of asynchronous publishes at a time, each window's acks awaited
// before the next is sent. Generation runs on its own goroutine, ahead by a
// few windows. With cfg.Partitions > 1 each event goes to its province's
// partition stream (each publish expects it). It fills w's submission
// counts and returns the outcomes the fold should report.
func preload(ctx context.Context, cfg *Config, js jetstream.JetStream, e *tally.Election, w *Workload) (Load, Outcomes, error) {
	window := cfg.PublishWindow
	nparts := max(1, cfg.Partitions)
	full := make(chan *chunk, 4)
	free := make(chan *chunk, 6)
	for range cap(free) {
		free <- &chunk{}
	}
	var kinds [16]int
	genErr := make(chan error, 1)
	genCtx, cancelGen := context.WithCancel(ctx)
	defer cancelGen()
	go func() {
		defer close(full)
		var cur *chunk
		take := func() error {
			select {
			case cur = <-free:
				cur.msgs, cur.parts, cur.arena = cur.msgs[:0], cur.parts[:0], cur.arena[:0]
				return nil
			case <-genCtx.Done():
				return genCtx.Err()
			}
		}
		if err := take(); err != nil {
			genErr <- err
			return
		}
		err := workload.Night(e, nightConfig(cfg), func(sub *workload.Submission) error {
			kinds[sub.Kind]++
			m := &sub.Minutes
			start := len(cur.arena)
			cur.arena = events.AppendBinary(cur.arena, m)
			msg := nats.Msg{Subject: events.Subject(e, sub.Station, m.Contest)}
			// Data is set once the window is full: the arena may move.
			msg.Data = cur.arena[start:len(cur.arena):len(cur.arena)]
			if cfg.MsgID {
				msg.Header = nats.Header{jetstream.MsgIDHeader: []string{events.MsgID(m, msg.Data)}}
			}
			cur.msgs = append(cur.msgs, msg)
			cur.parts = append(cur.parts, events.StationPartition(e, sub.Station, nparts))
			if len(cur.msgs) < window {
				return nil
			}
			fixData(cur)
			select {
			case full <- cur:
			case <-genCtx.Done():
				return genCtx.Err()
			}
			return take()
		})
		if err == nil && len(cur.msgs) > 0 {
			fixData(cur)
			select {
			case full <- cur:
			case <-genCtx.Done():
				err = genCtx.Err()
			}
		}
		genErr <- err
	}()

	var ld Load
	opts := make([][]jetstream.PublishOpt, nparts)
	for p := range opts {
		opts[p] = []jetstream.PublishOpt{jetstream.WithExpectStream(events.PartitionStreamName(e.ID, p, nparts))}
	}
	futures := make([]jetstream.PubAckFuture, 0, window)
	start := time.Now()
	for c := range full {
		futures = futures[:0]
		for i := range c.msgs {
			f, err := js.PublishMsgAsync(&c.msgs[i], opts[c.parts[i]]...)
			if err != nil {
				return ld, Outcomes{}, fmt.Errorf("publish event %d: %w", ld.Published+i, err)
			}
			futures = append(futures, f)
		}
		for i, f := range futures {
			select {
			case ack := <-f.Ok():
				if ack.Duplicate {
					ld.Deduped++
				}
			case err := <-f.Err():
				return ld, Outcomes{}, fmt.Errorf("publish event %d: %w", ld.Published+i, err)
			case <-ctx.Done():
				return ld, Outcomes{}, ctx.Err()
			}
		}
		ld.Published += len(c.msgs)
		free <- c
	}
	if err := <-genErr; err != nil {
		return ld, Outcomes{}, fmt.Errorf("generate the night: %w", err)
	}
	ld.Seconds = time.Since(start).Seconds()
	ld.EventsPerS = float64(ld.Published) / ld.Seconds

	for _, k := range workload.AllKinds() {
		w.Kinds[k.String()] = kinds[k]
		w.Submissions += kinds[k]
	}
	want := Outcomes{
		Applied:    uint64(kinds[workload.Partial] + kinds[workload.Final] + kinds[workload.Correction] + kinds[workload.Withdrawal] + kinds[workload.Recount]),
		Stale:      uint64(kinds[workload.Stale]),
		Duplicates: uint64(kinds[workload.Duplicate] - ld.Deduped),
		Rejected:   uint64(kinds[workload.Invalid]),
	}
	return ld, want, nil
}

// fixData points each message of c at its bytes in the final arena.
func fixData(c *chunk) {
	off := 0
	for i := range c.msgs {
		n := len(c.msgs[i].Data)
		c.msgs[i].Data = c.arena[off : off+n : off+n]
		off += n
	}
}

// resetStreams deletes election e's streams, one or partitioned, and
// creates n anew (events.PartitionStreamConfigs), partition p's at index p.
func resetStreams(ctx context.Context, js jetstream.JetStream, e *tally.Election, n int) ([]jetstream.Stream, error) {
	have, err := broker.ExistingPartitions(ctx, js, e.ID)
	if err != nil {
		return nil, err
	}
	for p := range have {
		name := events.PartitionStreamName(e.ID, p, have)
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("delete stream %s: %w", name, err)
		}
	}
	if n > 1 {
		if err := events.CheckPartitionable(e); err != nil {
			return nil, err
		}
	}
	cfgs := events.PartitionStreamConfigs(e, n, 1)
	streams := make([]jetstream.Stream, len(cfgs))
	for p, c := range cfgs {
		if streams[p], err = createAfterDelete(ctx, js, c); err != nil {
			return nil, fmt.Errorf("create stream %s: %w", c.Name, err)
		}
	}
	return streams, nil
}

// createAfterDelete creates a stream right after streams were deleted.
// nats-server removes an account's emptied store directories in a goroutine
// after a delete, and a create that meets it fails with a generic stream
// creation error (JSStreamCreateErrF, 10049, "error creating store for
// stream"); that one is tried again for up to 5 s.
func createAfterDelete(ctx context.Context, js jetstream.JetStream, c jetstream.StreamConfig) (jetstream.Stream, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := js.CreateStream(ctx, c)
		var apiErr *jetstream.APIError
		if err == nil || !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.ErrorCode(server.JSStreamCreateErrF) || time.Now().After(deadline) {
			return st, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(10 * time.Millisecond):
		}
	}
}
