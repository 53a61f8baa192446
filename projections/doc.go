// Package projections folds the minutes stream into results: per station
// (current minutes and history), per area at every level the election
// declares, and per electoral unit, kept in Pebble and served to queries.
//
// # The specification
//
// Start with testdata/fold/*.txt: each file is an election, minutes applied
// with their outcome and every broken rule, and the area and unit results
// that follow, as JSON (CONTRACT §3, §4). TestFoldSpec runs every file
// against this fold (with restarts) and against package audit's
// independent fold, and both must print the same. Rewrite the expected
// output with `go test ./projections -run TestFoldSpec/live -rewrite`.
//
// # The fold
//
// The stream is the source of truth; the projections are a cache of it that
// can be rebuilt at any time (see [Rebuild]). A [Fold] applies messages in
// stream order, each in steps that have a file each, to be read in order:
//
//  1. Admission (events.Admit): decode the minutes, check that they name
//     the station and contest of their subject, check them against the
//     election (tally.Election.Check) and the station's seal.
//  2. The station ledger (ledger.go): every station's current minutes and
//     history for each contest it votes in. It compares admitted minutes
//     with the station's current ones (stale, duplicate, conflict:
//     CONTRACT §3), records every outcome (applied, stale, duplicate,
//     rejected) in the station's history, rejections also in the
//     rejection log with every broken rule, and for applied minutes emits
//     a change: the station's contribution before and after.
//  3. The sinks (sinks.go) apply the change: the unit aggregates (and each
//     unit's decision), then the area aggregates, one per level (ward,
//     district and province in 2021; commune and province since 2025),
//     with their units summaries. Sinks see changes, never messages.
//  4. Staging (staging.go): at the end of a batch the ledger and the sinks
//     stage what changed, in key order, and the Fold adds the checkpoint,
//     into one Pebble batch.
//
// [Fold.ApplyAll] takes the same steps for many messages at hand (a
// rebuild, a fold catching up): it admits a window of 16, reads what the
// window's steps 1 to 3 will read (the stations' entries in the election,
// their ledger entries, their units' and areas' aggregates) stage by stage
// across the window, then applies each. At national scale these reads are
// cache misses, and taken together they overlap: about twice Apply's
// speed (BenchmarkNationalApply).
//
// The whole fold state lives in memory: the current minutes of every
// station for every contest and every aggregate. Pebble is the durable copy,
// so the fold never reads Pebble per message. At open, the station minutes
// are read once and the aggregates are recomputed from them (aggregates are
// derived data; storing them only serves queries).
//
// # Exactly once
//
// A batch of messages is written to Pebble as one atomic, fsynced batch that
// holds the station minutes, history entries, rejections and changed
// aggregates together with the checkpoint: the stream sequence of the last
// message folded. Only after the commit are the messages acknowledged.
//
// INVARIANT: a message at or below the checkpoint has already been applied,
// and its effects are durable. A message above it has had no effect on the
// store. After a crash at any point, restarting from the checkpoint and
// skipping every message at or below it applies each message exactly once.
//
// # State sized by what votes
//
// A national file holds thousands of contests (a 2021 file written council
// by council: about 11,000), each voted in by a few stations. The fold
// state of a contest is indexed by the contest's voters and the areas that
// hold them (tally.Election.Voters, ContestAreas), never by every station
// or area of the file.
//
// An area's result carries votes only where the contest is national or its
// council level is at or above the area's (CONTRACT §4 v2): a province's
// aggregate of the commune-council ballot holds counts, not the tens of
// thousands of local candidates. Every area aggregate also carries its
// units summary: the units lying wholly in the area, by status.
//
// INVARIANT: after EndBatch, each area's summary counts every unit lying
// wholly in it under the status Decide gives the unit's committed totals
// (units still counting are the rest of the area's fixed total). EndBatch
// decides every unit whose totals changed in the batch before it stages
// the aggregates; Open decides every unit after recomputing them.
//
// # Key layout
//
//	m                                meta: checkpoint and outcome counters
//	e                                fingerprint of the election file
//	v                                layout version (3); a store without it,
//	                                 or of another, is rebuilt from the stream
//	i                                the election id (for the message when the fingerprint differs)
//	s/<contest>\x00<station>         station record: current minutes (without
//	                                 the ids the key gives, candidates by
//	                                 position: appendMinutes) and inline history
//	h/<contest>\x00<station>\x00<seq> history entry past the inline ones
//	r/<seq>                          rejection (JSON)
//	a/<contest>\x00<area>            area record: counts of all the area's
//	                                 stations, units summary, and the votes
//	                                 of the units straddling its border
//	u/<contest>\x00<unit>            unit aggregate: counts and votes
//
// Sequences are 8-byte big-endian so keys sort in stream order. Ids, not
// indexes, are used in keys, so a store stays readable if the election
// file's order changes; the fingerprint refuses a different election.
//
// The layout is chosen for what a batch rewrites. A station's minutes
// rewrite its record, its unit's aggregate and one area aggregate per
// level. The record is the largest of them and is rewritten for every
// station heard from, so it holds no id that the key, the fingerprint or
// the unit already gives (on the 2026 national night, records fell from
// 1.71 to 0.63 MB of a 10,000-message batch). Most units lie wholly in the
// areas whose results carry their votes: a council's units in the council's
// area, a National Assembly unit in its province. There, the area's share
// of the unit's votes is the unit's own vector, so the area record does not
// hold it again; it holds votes only for a unit that straddles its border
// (a National Assembly unit in one of the communes it covers, a province-
// council unit in a commune). A batch then rewrites each changed unit's
// votes once, and each changed area's counts and summary (area records fell
// from 0.44 to 0.28 MB of the same batch), rather than every candidate of
// every unit of every changed area.
//
// INVARIANT: the votes of contest c in area a (where its result carries
// votes) are, unit by unit in unit order, the unit aggregate's for a unit
// lying wholly in a (tally.Election.UnitAreas holds a) and the slice of a's
// record for any other; a's record holds exactly the latter, end to end
// (keys.go, straddling). A query reads a's record and those unit
// aggregates from one snapshot.
//
// Queries read a Pebble snapshot, so the figures of a result and its
// applied_seq always agree.
//
// # Nodes
//
// Several tally nodes may follow one stream (on a NATS cluster), each into
// its own store with its own durable consumer, named after the node
// (FoldConsumer). A consumer is only a cursor; the checkpoint is the truth:
// at every start the Aggregator deletes and recreates its consumer to
// deliver right after the checkpoint. It must only ever be its own:
// deleting another node's would stop that node's fold. Every node's store
// converges on the same bytes, since each folds the same stream in order.
//
// # Partitions
//
// With --partitions N > 1 (CONTRACT §6 v2) the minutes are in N streams, by
// province (events.Partition: FNV-1a of the province id mod N). Partition p
// is folded into a store of its own (PartitionDir: DataDir/projections-p<p>)
// by a Follower of its own with its own durable consumer
// (PartitionConsumer: tally-fold[-<node>]-<p>), so each partition has its
// own checkpoint, written in the same batch as that partition's effects,
// and its own fsyncs on its own files. Partitions share no aggregate, since
// every unit, council and area lies within one province
// (events.CheckPartitionable refuses a file where one does not), so they
// fold in parallel with no coordination.
//
// Partition p's store is opened with p's part of the election
// (PartElections, tally.Election.Restrict): the areas, stations and units of
// its provinces, every id and every contest kept. Its fold state is sized by
// its own stations, not the whole file, and its fingerprint is that of its
// part: a file changed anywhere changes the part of the partition holding
// the change (a station's province, a unit's), whose store then refuses to
// open (ErrElectionMismatch); a change outside every province (the
// election's name, a contest's) changes every part. A partition's fold
// reports changed results by index in its part; Parts.WholeRef maps them
// to the whole file's.
//
// Parts routes the queries: a unit's and an area's result are read from
// the store of its province's partition, a station's view from its
// station's; the status sums the partitions' metas; a View of Parts holds
// one snapshot per partition, taken one after another, so an export's
// figures each reflect their own partition's snapshot (stated per
// partition in AppliedPositions) and the applied_seq it states is their
// sum. Results read through Parts carry AppliedPositions, every
// partition's position, and an AppliedSeq that is their sum: the result's
// own partition's position is the one its figures reflect, read from the
// same snapshot; the others' are their checkpoints when read, which the
// result does not depend on.
//
// INVARIANT (per partition): a message of partition p's stream at or below
// p's checkpoint has been applied to p's store, with durable effects; one
// above it has had no effect on any store. Restarting each partition from
// its own checkpoint applies every message exactly once
// (TestPartitionsSurviveKill kills a process folding four partitions and
// checks each store against the audit fold of its stream;
// cmd/tally TestPartitionsEndToEnd kills tally serve --partitions 4 and
// compares every result with --partitions 1). The positions of different
// partitions are not comparable: a client waits for its submission's
// position in each partition it touched.
//
// # Following a stream
//
// A Follower runs an Aggregator over one stream and, when it stops on an
// error a new consumer can cure (NATS gone, the consumer deleted, a request
// timing out), starts a new one from the checkpoint, with backoff; an error
// of the store or of the stream's integrity (Fatal) ends it. The aggregator
// checks, where it parses each message's ack subject, that the consumer
// delivers every stream sequence in order (seqCheck): a message lost in
// transit would otherwise be skipped for good, since the fold takes a
// sequence at or below its checkpoint as applied. At a gap it commits what
// came before and stops with ErrDeliveryGap; the follower's next consumer,
// created right after the checkpoint, delivers the lost message again.
package projections
