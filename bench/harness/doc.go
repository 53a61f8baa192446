// Package harness measures tally end to end, in one run, on one stream.
//
// Run generates a national election and its night of count minutes
// (package workload), pre-loads them into a JetStream stream in the
// gateway's binary encoding, and then reads that same stream several ways:
//
//   - the ceiling: a durable pull consumer that only acknowledges, one ack
//     per batch (AckAll). Nothing that reads the stream through a consumer
//     can be faster, so it is the bar the fold is measured against;
//   - the fold: tally's aggregator (projections.NewAggregator) from an empty
//     store, through the same kind of consumer, committing every batch to
//     Pebble with fsync. Ceiling and fold alternate, each at least twice,
//     so a cold first run, a page cache or a compaction does not favour one;
//     the best and the median are reported, and each fold run's rate over
//     that of the ceiling run just before it (Guard checks their median);
//   - the peers (optional): the same events folded into PostgreSQL, on a
//     real server the harness starts on loopback for each, in two designs:
//     the way most teams would write it first (a current-minutes row per
//     station read with SELECT ... FOR UPDATE, one upsert per aggregate row,
//     one transaction per batch; PeerPostgres), and the way a team that
//     knows PostgreSQL would (current minutes decided in memory, a batch's
//     deltas summed per row, one INSERT ... SELECT FROM unnest per table per
//     batch; PeerPostgresStrong). Their results are then compared with
//     tally's, every area and unit, and must be equal;
//   - the rebuild: projections.RebuildPartitionsWith of the whole stream,
//     in the variants asked for (tally's pipelined rebuild, the serial one
//     it replaced), alternating run by run; the rebuilt stores are reopened
//     and their checkpoints and outcomes checked.
//
// With Partitions > 1 the night is loaded into that many streams by
// province, as tally serve --partitions splits it; the phases reading one
// stream (drains, peers, serve, core) do not run, and the rebuild rebuilds
// the partitions in parallel.
//
// Then it starts a complete server (server.New) on a fresh stream and
// measures the latency from a station's POST to the change arriving on an
// SSE client, at fixed offered loads, open loop: a request is due at its
// scheduled time whether or not earlier ones were answered, and its latency
// counts from that time, so a server that falls behind shows it.
//
// Everything runs in this one process (the embedded NATS server included),
// so the peak resident memory reported covers all of it; each phase's own
// peak is reported too, the kernel's high-water mark being reset between
// phases.
//
// The harness uses only the exported APIs of tally's packages, so the
// figures move when the code under them does and nothing here needs
// changing.
package harness
