package broker_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tallyvn/tally/broker"
)

// TestLoadRoleSeeds: created once, owner-only, then read back as the same
// identities; a missing seed without create, or a seed that is not one, is
// an error naming the role or the file.
func TestLoadRoleSeeds(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if _, err := broker.LoadRoleSeeds(dir, false); err == nil || !strings.Contains(err.Error(), "read gateway key") {
		t.Fatalf("no seeds, no create: %v, want an error naming the gateway key", err)
	}
	made, err := broker.LoadRoleSeeds(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if made.Gateway.Public == "" || made.Gateway.Public == made.Aggregator.Public {
		t.Fatalf("made %q and %q: want two distinct identities", made.Gateway.Public, made.Aggregator.Public)
	}
	for _, name := range []string{"gateway.seed", "aggregator.seed"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v: others may read the key", name, fi.Mode().Perm())
		}
	}
	again, err := broker.LoadRoleSeeds(dir, true)
	if err != nil || again.Gateway.Public != made.Gateway.Public || again.Aggregator.Public != made.Aggregator.Public {
		t.Fatalf("read back: %+v, %v; want the identities made", again, err)
	}
	bad := filepath.Join(dir, "aggregator.seed")
	if err := os.WriteFile(bad, []byte("not a seed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := broker.LoadRoleSeeds(dir, false); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("a broken seed: %v, want an error naming %s", err, bad)
	}
}
