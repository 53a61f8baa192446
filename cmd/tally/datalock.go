package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/tallyvn/tally/projections"
)

// lockProjections takes the lock of the projections under dataDir (with n
// partitions, of partition 0's: projections.PartitionDir): the
// very lock Pebble takes when tally serve or verify opens them (the LOCK
// file, an fcntl lock), so that at most one of serve, verify and rebuild
// works on a data directory at a time. cmd names the command for the
// message. With create, a missing projections directory is created so
// that it can be locked (rebuild replaces it anyway); without, a missing
// directory is not locked (nil, nil): nothing runs on it.
//
// A lock held elsewhere is returned as an error that says what to do; the
// caller prints it as it is.
func lockProjections(dataDir string, n int, cmd string, create bool) (*pebble.Lock, error) {
	dir := projections.PartitionDir(dataDir, 0, n)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, nil
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("projections under %s: %w", dataDir, err)
	}
	l, err := pebble.LockDirectory(dir, vfs.Default)
	if err == nil {
		return l, nil
	}
	if locked(err) {
		return nil, lockedError(dataDir, cmd, err)
	}
	return nil, fmt.Errorf("lock the projections under %s: %w", dataDir, err)
}

// lockedError is the message of serve, verify and rebuild when another
// process holds the data directory.
func lockedError(dataDir, cmd string, err error) error {
	return fmt.Errorf("the projections under %s are locked by another process: stop tally serve first (or the verify or rebuild running on it); %s must be the only process using --data %s (%v)",
		dataDir, cmd, dataDir, err)
}
