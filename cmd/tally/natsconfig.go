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
	fs := newFlags("nats-config", "--election FILE --seed-dir DIR [--nats-users FILE] [--partitions N]",
		`Prints the authorization block of a nats-server configuration that gives
an external NATS server the permissions the embedded one enforces: tally's
gateway and aggregator get their own identities; each sealed station, and
each identity of --nats-users bound to a station, may publish only that
station's minutes (CONTRACT §7) and hear only its own replies; an identity
of --nats-users bound to no station may publish every station's minutes;
no station may call the JetStream API; anonymous connections are refused.

It works for elections with and without seals. Without seals and without
--nats-users the block admits only tally's own identities (stations then
submit over HTTP), and it says so on standard error.

The gateway's and the aggregator's keys are read from DIR/gateway.seed and
DIR/aggregator.seed, created (mode 0600) if missing; run the server with
'tally serve --nats URL --nats-seed-dir DIR' (and the same --partitions).`, stdout, stderr)
	electionFile := fs.String("election", "", "election file; required")
	seedDir := fs.String("seed-dir", "", "directory of tally's own NATS keys; required")
	natsUsers := fs.String("nats-users", "", "`FILE` of NATS identities that may publish minutes, as for tally serve: one nkey public key a line, optionally followed by the one station it may publish for")
	partitions := fs.Int("partitions", 1, "number of minutes streams, as given to tally serve --partitions")
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	if *electionFile == "" || *seedDir == "" {
		return usageError(fs, "--election and --seed-dir are required")
	}
	if *partitions < 1 {
		return usageError(fs, "--partitions %d: want at least 1", *partitions)
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected arguments %q", fs.Args())
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "tally nats-config: %v\n", err)
		return exitFailed
	}
	e, err := loadElection(*electionFile)
	if err != nil {
		return fail(err)
	}
	var authorized []broker.Authorized
	if *natsUsers != "" {
		data, err := os.ReadFile(*natsUsers)
		if err == nil {
			authorized, err = broker.ParseAuthorized(e, data)
		}
		if err != nil {
			return fail(fmt.Errorf("--nats-users %s: %w", *natsUsers, err))
		}
	}
	if !e.Sealed() && len(authorized) == 0 {
		fmt.Fprintf(stderr, "tally nats-config: %s has no seals and no --nats-users was given: the block admits only tally's own identities, so no station can publish over NATS (stations submit over HTTP)\n", *electionFile)
	}
	roles, err := loadRoles(*seedDir, true)
	if err != nil {
		return fail(err)
	}
	users := broker.Users(e, broker.Roles{Gateway: roles.gateway.Public, Aggregator: roles.aggregator.Public, Partitions: *partitions}, authorized...)
	fmt.Fprint(stdout, broker.ConfigSnippet(e, users))
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
