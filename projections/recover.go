package projections

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tallyvn/tally/tally"
)

// ErrCorrupt is returned (wrapped) by Open when the projections cannot be
// trusted: Pebble found a damaged manifest or table, a table is missing or
// truncated, or a record of the fold does not decode. The stream still holds
// everything, so the cure is a rebuild (see OpenOrReset and RebuildDir).
var ErrCorrupt = errors.New("projections: store is corrupt")

// corruptOpenErr marks the errors of pebble.Open that mean damaged files
// rather than a busy or unreadable directory. A lock held by another process
// or a permission problem is not corruption: rebuilding beside a running
// server, or over a directory we may not read, would only make things worse.
func corruptOpenErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrPermission) {
		return err
	}
	msg := err.Error()
	if pebble.IsCorruptionError(err) ||
		errors.Is(err, fs.ErrNotExist) || // a table the manifest lists is gone
		strings.Contains(msg, "size mismatch") || // a truncated table
		strings.Contains(msg, "malformed") ||
		strings.Contains(msg, "unknown to the objstorage provider") {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}

// corruptionWatch receives Pebble's data-corruption events. Pebble's default
// is to end the process on the first one, which would turn a damaged table
// into a crash loop at every start; instead the read fails with the error,
// Open reports ErrCorrupt, and the server rebuilds.
type corruptionWatch struct {
	seen atomic.Pointer[string]
}

func (w *corruptionWatch) listener() *pebble.EventListener {
	return &pebble.EventListener{DataCorruption: func(info pebble.DataCorruptionInfo) {
		msg := info.String()
		w.seen.CompareAndSwap(nil, &msg)
		pebble.DefaultLogger.Errorf("projections: %s", msg)
	}}
}

func (w *corruptionWatch) err() error {
	if p := w.seen.Load(); p != nil {
		return fmt.Errorf("%w: %s", ErrCorrupt, *p)
	}
	return nil
}

// verify reads every key and value of the store once, so that Pebble checks
// the checksum of every block: a damaged table is found at open, before the
// server serves anything from it, rather than by the first query that
// happens to touch it.
func (s *Store) verify() error {
	iter, err := s.db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	var n int
	for iter.First(); iter.Valid(); iter.Next() {
		n += len(iter.Value())
	}
	err = iter.Error()
	if cerr := iter.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%w: read every table: %w", ErrCorrupt, err)
	}
	return s.watch.err()
}

// Recovery says what OpenOrReset found.
type Recovery struct {
	// Missing: there were no projections in the directory (new server, or
	// a lost directory).
	Missing bool
	// Corrupt holds why the previous projections were set aside, "" if
	// they were not.
	Corrupt string
	// SetAside is where the damaged projections were moved, for a
	// post-mortem ("" if none).
	SetAside string
}

// Fresh reports whether the store OpenOrReset returned starts empty: its
// projections must be folded from the first message of the stream.
func (r Recovery) Fresh() bool { return r.Missing || r.Corrupt != "" }

// OpenOrReset opens the projections in dir like Open. When dir holds no
// projections it creates an empty store; when they are corrupt (ErrCorrupt)
// it moves them aside to dir + ".corrupt" (replacing an older copy there)
// and creates an empty store in their place. Either way the caller must
// fold the whole stream into the returned store before its results mean
// anything; Recovery says which case it was. Any other error (another
// process holds the store, a different election file, ...) is returned as
// it is, and nothing is moved.
func OpenOrReset(dir string, e *tally.Election) (*Store, Recovery, error) {
	var rec Recovery
	if empty, err := isEmptyDir(dir); err != nil {
		return nil, rec, err
	} else if empty {
		rec.Missing = true
	}
	s, err := Open(dir, e)
	if err == nil {
		return s, rec, nil
	}
	if !errors.Is(err, ErrCorrupt) {
		return nil, rec, err
	}
	rec.Corrupt = err.Error()
	rec.SetAside = dir + ".corrupt"
	if err := os.RemoveAll(rec.SetAside); err != nil {
		return nil, rec, fmt.Errorf("clear %s: %w", rec.SetAside, err)
	}
	if err := os.Rename(dir, rec.SetAside); err != nil {
		return nil, rec, fmt.Errorf("set corrupt projections aside: %w", err)
	}
	s, err = Open(dir, e)
	if err != nil {
		return nil, rec, err
	}
	return s, rec, nil
}

// isEmptyDir reports whether dir is missing or holds no files but Pebble's
// LOCK file (which a process that locks the directory before opening it,
// such as tally rebuild, creates).
func isEmptyDir(dir string) (bool, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read projections dir: %w", err)
	}
	for _, e := range ents {
		if e.Name() != "LOCK" {
			return false, nil
		}
	}
	return true, nil
}
