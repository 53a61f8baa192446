package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tallyvn/tally/broker"
)

func runNATSConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("nats-config", "--election FILE --seed-dir DIR",
		`Prints the authorization block of a nats-server configuration that gives
an external NATS server the permissions the embedded one enforces for a
sealed election: each sealed station may publish only its own minutes and
hear only its own replies; tally's gateway and aggregator get their own
identities; anonymous connections are refused.

The gateway's and the aggregator's keys are read from DIR/gateway.seed and
DIR/aggregator.seed, created (mode 0600) if missing; run the server with
'tally serve --nats URL --nats-seed-dir DIR'.`, stdout, stderr)
	electionFile := fs.String("election", "", "election file with the stations' seals; required")
	seedDir := fs.String("seed-dir", "", "directory of tally's own NATS keys; required")
	partitions := fs.Int("partitions", 1, "`N` minutes streams, as 'tally serve --partitions N' will use: tally's identities get their rights on each")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	if *electionFile == "" || *seedDir == "" {
		return usageError(fs, "--election and --seed-dir are required")
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected arguments %q", fs.Args())
	}
	if *partitions < 1 || *partitions > maxPartitions {
		return usageError(fs, "--partitions %d: want 1 to %d", *partitions, maxPartitions)
	}
	e, err := loadElection(*electionFile)
	if err != nil {
		fmt.Fprintf(stderr, "tally nats-config: %v\n", err)
		return exitFailed
	}
	if !e.Sealed() {
		fmt.Fprintf(stderr, "tally nats-config: no station of %s has a seal; run 'tally keys seal' first\n", *electionFile)
		return exitFailed
	}
	roles, err := loadRoles(*seedDir, true)
	if err != nil {
		fmt.Fprintf(stderr, "tally nats-config: %v\n", err)
		return exitFailed
	}
	fmt.Fprint(stdout, broker.ConfigSnippet(e, broker.Users(e, broker.Roles{Gateway: roles.gateway.Public, Aggregator: roles.aggregator.Public, Partitions: *partitions})))
	return exitOK
}

// tallyRoles are tally's own NATS identities.
type tallyRoles struct{ gateway, aggregator broker.Identity }

// loadRoles reads DIR/gateway.seed and DIR/aggregator.seed, creating them
// when create is set and they are missing.
func loadRoles(dir string, create bool) (tallyRoles, error) {
	var r tallyRoles
	for _, x := range []struct {
		name string
		id   *broker.Identity
	}{{"gateway", &r.gateway}, {"aggregator", &r.aggregator}} {
		path := filepath.Join(dir, x.name+".seed")
		seed, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist) && create:
			id, kerr := newSeedFile(dir, path)
			if kerr != nil {
				return r, kerr
			}
			*x.id = id
			continue
		case err != nil:
			return r, fmt.Errorf("read %s key: %w", x.name, err)
		}
		id, err := broker.IdentityFromSeed(seed)
		if err != nil {
			return r, fmt.Errorf("%s: %w", path, err)
		}
		*x.id = id
	}
	return r, nil
}

func newSeedFile(dir, path string) (broker.Identity, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return broker.Identity{}, err
	}
	seed, id, err := broker.NewSeed()
	if err != nil {
		return broker.Identity{}, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return broker.Identity{}, fmt.Errorf("create %s: %w", path, err)
	}
	_, err = f.Write(append(seed, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return id, err
}
