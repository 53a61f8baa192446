package projections

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tallyvn/tally/tally"
)

// TestOpenRebuildsAStoreOfAnOlderLayout: projections written by a tally of
// another layout (here: the v1 layout, which stored no layout key) are not
// read as if they were current: Open reports ErrCorrupt, and OpenOrReset
// sets them aside so that the server folds the stream again.
func TestOpenRebuildsAStoreOfAnOlderLayout(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "examples", "longbien", "election.json"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := tally.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "p")
	s, err := Open(dir, e)
	if err != nil {
		t.Fatal(err)
	}
	// What a v1 store looks like: the same election, no layout key.
	if err := s.db.Delete(keyLayout, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(dir, e); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a v1-layout store: %v, want ErrCorrupt", err)
	}
	s, rec, err := OpenOrReset(dir, e)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !rec.Fresh() || rec.SetAside == "" {
		t.Fatalf("OpenOrReset: %+v, want a fresh store with the old one set aside", rec)
	}
}
