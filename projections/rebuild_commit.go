package projections

import (
	"fmt"
	"os"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tallyvn/tally/tally"
)

// rebuildWALBytesPerSync is how often, in WAL bytes, Pebble starts writing
// a rebuild's unsynced commits to disk in the background
// (pebble.Options.WALBytesPerSync): otherwise the page cache holds them
// all, and the one sync at the end writes the whole WAL at once.
const rebuildWALBytesPerSync = 1 << 20

// openFresh is Open for a rebuild's fresh store, with Pebble syncing its
// WAL in the background as it grows (rebuildWALBytesPerSync).
func openFresh(dir string, e *tally.Election) (*Store, error) {
	opts := pebbleOptions()
	opts.WALBytesPerSync = rebuildWALBytesPerSync
	return open(dir, e, opts)
}

// commitBatchUnsynced is CommitBatch without the fsync: the batch is
// written to Pebble's WAL and memtable, in order, but may be lost by a
// crash. Only a rebuild uses it, into a fresh store that a crash throws
// away; syncStore makes everything durable before the store is put in
// place. A crash of the machine loses a suffix of the unsynced commits,
// never a middle one, and each commit carries its checkpoint, so even a
// reopened store after such a crash holds a prefix of the stream with the
// checkpoint that matches it.
func (f *Fold) commitBatchUnsynced(s *Batch) error { return f.commitBatch(s, pebble.NoSync) }

// discardBatch closes an ended batch that will not be committed.
func discardBatch(s *Batch) {
	if s.batch != nil {
		s.batch.Close()
		s.batch = nil
	}
}

// syncStore makes every commit to the store durable: a synced empty WAL
// record syncs the current WAL up to and including every commit before it.
// Earlier WAL files were synced when Pebble closed them (its LogWriter
// syncs on close), and the sstables and manifest Pebble writes itself are
// synced as they are written.
func (s *Store) syncStore() error {
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("sync projections WAL: %w", err)
	}
	return nil
}

// syncDir fsyncs directory dir, making the entries created, removed or
// renamed in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
