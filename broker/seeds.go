package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// RoleIdentities are tally's own NATS identities, one per role (Roles):
// the gateway's and the aggregator's.
type RoleIdentities struct {
	Gateway, Aggregator Identity
}

// LoadRoleSeeds reads tally's identities from dir/gateway.seed and
// dir/aggregator.seed (`tally nats-config --seed-dir`, `tally serve
// --nats-seed-dir`). With create, a missing seed is made, in a file only
// its owner may read, and dir with it; without, a missing seed is an error
// naming the role.
func LoadRoleSeeds(dir string, create bool) (RoleIdentities, error) {
	var r RoleIdentities
	for _, x := range []struct {
		name string
		id   *Identity
	}{{"gateway", &r.Gateway}, {"aggregator", &r.Aggregator}} {
		path := filepath.Join(dir, x.name+".seed")
		seed, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist) && create:
			id, err := newSeedFile(dir, path)
			if err != nil {
				return r, fmt.Errorf("%s key: %w", x.name, err)
			}
			*x.id = id
			continue
		case err != nil:
			return r, fmt.Errorf("read %s key: %w", x.name, err)
		}
		id, err := IdentityFromSeed(seed)
		if err != nil {
			return r, fmt.Errorf("%s: %w", path, err)
		}
		*x.id = id
	}
	return r, nil
}

// newSeedFile makes a fresh identity and keeps its seed at path, which
// must not exist yet.
func newSeedFile(dir, path string) (Identity, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Identity{}, err
	}
	seed, id, err := NewSeed()
	if err != nil {
		return Identity{}, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Identity{}, fmt.Errorf("create %s: %w", path, err)
	}
	_, err = f.Write(append(seed, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return id, err
}
