package projections_test

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyvn/tally/projections"
)

// TestOpenOrReset: a missing store is created and reported missing; a
// corrupt one is set aside and replaced by an empty one; a store another
// user holds open is not touched.
func TestOpenOrReset(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	fx := genElection(t, rng, 2, 3)
	dir := filepath.Join(t.TempDir(), "p")

	s, rec, err := projections.OpenOrReset(dir, fx.e)
	if err != nil || !rec.Missing || rec.Corrupt != "" {
		t.Fatalf("missing store: rec %+v, err %v", rec, err)
	}
	// Held open: a second open must fail without moving anything.
	if _, rec2, err := projections.OpenOrReset(dir, fx.e); err == nil || errors.Is(err, projections.ErrCorrupt) || rec2.SetAside != "" {
		t.Fatalf("store held open: rec %+v, err %v; want a plain error", rec2, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	ms, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	if len(ms) == 0 {
		t.Fatal("no MANIFEST")
	}
	if err := os.WriteFile(ms[0], []byte("garbage, not a manifest at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := projections.Open(dir, fx.e); !errors.Is(err, projections.ErrCorrupt) {
		t.Fatalf("Open on a garbage MANIFEST: %v; want ErrCorrupt", err)
	}
	s, rec, err = projections.OpenOrReset(dir, fx.e)
	if err != nil || !rec.Fresh() || !strings.Contains(rec.Corrupt, "corrupt") || rec.SetAside != dir+".corrupt" {
		t.Fatalf("corrupt store: rec %+v, err %v", rec, err)
	}
	defer s.Close()
	if m, _ := s.Meta(); m.Checkpoint != 0 {
		t.Errorf("the new store is not empty: %+v", m)
	}
	if _, err := os.Stat(rec.SetAside); err != nil {
		t.Errorf("corrupt store not kept aside: %v", err)
	}
}
