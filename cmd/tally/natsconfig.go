package main

import (
	"fmt"
	"io"
	"os"

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
	roles, err := broker.LoadRoleSeeds(*seedDir, true)
	if err != nil {
		return fail(err)
	}
	users := broker.Users(e, broker.Roles{Gateway: roles.Gateway.Public, Aggregator: roles.Aggregator.Public, Partitions: *partitions}, authorized...)
	fmt.Fprint(stdout, broker.ConfigSnippet(e, users))
	return exitOK
}
