package broker

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

// Identity is an nkey user: who a NATS connection is.
type Identity struct {
	Public string
	kp     nkeys.KeyPair
}

// NewIdentity makes a fresh identity (for tally's own connections, which
// live as long as the process).
func NewIdentity() (Identity, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return Identity{}, fmt.Errorf("create nkey: %w", err)
	}
	return identityOf(kp)
}

// NewSeed makes a fresh identity and returns its seed, to keep in a file.
func NewSeed() ([]byte, Identity, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, Identity{}, fmt.Errorf("create nkey: %w", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, Identity{}, err
	}
	id, err := identityOf(kp)
	return seed, id, err
}

// IdentityFromSeed reads an identity from an nkey user seed ("SU...").
func IdentityFromSeed(seed []byte) (Identity, error) {
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(seed))))
	if err != nil {
		return Identity{}, fmt.Errorf("read nkey seed: %w", err)
	}
	return identityOf(kp)
}

func identityOf(kp nkeys.KeyPair) (Identity, error) {
	pub, err := kp.PublicKey()
	if err != nil {
		return Identity{}, fmt.Errorf("nkey public key: %w", err)
	}
	if !nkeys.IsValidPublicUserKey(pub) {
		return Identity{}, fmt.Errorf("nkey %s is not a user key", pub)
	}
	return Identity{Public: pub, kp: kp}, nil
}

// Option authenticates a connection as id.
func (id Identity) Option() nats.Option { return nats.Nkey(id.Public, id.kp.Sign) }

// StationInbox is the reply-subject prefix a station's NATS client must use
// (nats.CustomInboxPrefix): the only subjects it may subscribe to.
func StationInbox(station string) string { return "_INBOX." + station }

// Roles are the permissions of tally's own identities.
type Roles struct {
	// Gateway publishes validated minutes and reads the stream's state.
	Gateway string
	// Aggregator manages the stream and its consumer and receives and
	// acknowledges messages.
	Aggregator string
	// Partitions is the number of minutes streams (--partitions); 0 or 1:
	// the one stream. Both roles get the same rights on every partition's
	// stream, and the aggregator may look up the one stream too (with one
	// stream, partition 0's), to refuse a start with another number
	// (EnsurePartitionStreams).
	Partitions int
}

// Authorized is a NATS identity the operator admits to publish minutes
// (tally serve --nats-users): for one station, or for every station when
// Station is "". It may publish on minutes subjects and hear its replies,
// nothing else: no JetStream API.
type Authorized struct {
	Key     string // nkey user public key (U...)
	Station string // "" for every station
}

// ParseAuthorized reads a --nats-users file: one identity a line, its
// nkey user public key, optionally followed by the one station it may
// publish for; blank lines and lines starting with # are ignored. Every
// problem is reported, with its line.
func ParseAuthorized(e *tally.Election, data []byte) ([]Authorized, error) {
	var out []Authorized
	var problems []string
	seen := map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		bad := func(format string, args ...any) {
			problems = append(problems, fmt.Sprintf("line %d: ", i+1)+fmt.Sprintf(format, args...))
		}
		a := Authorized{Key: f[0]}
		switch {
		case len(f) > 2:
			bad("want KEY [STATION], got %d words", len(f))
			continue
		case !nkeys.IsValidPublicUserKey(a.Key):
			bad("%.60q is not an nkey user public key (U..., as 'tally keys new' prints)", a.Key)
			continue
		}
		if len(f) == 2 {
			a.Station = f[1]
			if _, ok := e.StationIndex(a.Station); !ok {
				bad("station %q is not in election %s", a.Station, e.ID)
				continue
			}
		}
		if j, dup := seen[a.Key]; dup {
			bad("key %s is already on line %d", a.Key, j)
			continue
		}
		for s := range e.Stations {
			if e.Stations[s].Seal == a.Key {
				bad("key %s is the seal of station %q, which is already its NATS identity", a.Key, e.Stations[s].ID)
			}
		}
		seen[a.Key] = i + 1
		out = append(out, a)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	if len(out) == 0 {
		return nil, errors.New("no key in the file")
	}
	return out, nil
}

// Users returns the NATS users of an election: every sealed station may
// publish only its own minutes subjects and subscribe only to its own
// inbox; each identity the operator authorized may publish the minutes it
// is authorized for; the gateway and the aggregator get what they need and
// no more. Stations without a seal get no NATS identity of their own.
// Only these users may connect: anonymous connections are refused, and no
// identity but the aggregator's may call the JetStream API's
// administration subjects.
func Users(e *tally.Election, roles Roles, authorized ...Authorized) []*server.NkeyUser {
	n := max(roles.Partitions, 1)
	inbox := &server.SubjectPermission{Allow: []string{"_INBOX.>"}}
	gw := []string{events.StreamSubjects(e.ID), "$JS.API.INFO"}
	agg := []string{"$JS.API.INFO"}
	if n > 1 {
		agg = append(agg, "$JS.API.STREAM.INFO."+events.StreamName(e.ID))
	} else {
		// To refuse a start with one stream where partitions exist
		// (ExistingPartitions looks up partition 0's stream).
		agg = append(agg, "$JS.API.STREAM.INFO."+events.PartitionStreamName(e.ID, 0, 2))
	}
	for p := range n {
		stream := events.PartitionStreamName(e.ID, p, n)
		gw = append(gw,
			"$JS.API.STREAM.INFO."+stream,
			// To check, on a duplicate acknowledgement, that the
			// stream holds what was sent (events.Publisher).
			"$JS.API.STREAM.MSG.GET."+stream,
		)
		agg = append(agg,
			"$JS.API.STREAM.*."+stream,
			"$JS.API.STREAM.MSG.GET."+stream,    // when a message was stored (the dashboard's times)
			"$JS.API.CONSUMER.*."+stream+".>",   // CREATE, INFO, DELETE
			"$JS.API.CONSUMER.*.*."+stream+".>", // MSG.NEXT, DURABLE.CREATE
			"$JS.ACK."+stream+".>",
			"$JS.ACK.*.*."+stream+".>",
		)
	}
	users := []*server.NkeyUser{
		{Nkey: roles.Gateway, Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: gw},
			Subscribe: inbox,
		}},
		{Nkey: roles.Aggregator, Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: agg},
			Subscribe: inbox,
		}},
	}
	for s := range e.Stations {
		st := &e.Stations[s]
		if st.Seal == "" {
			continue
		}
		users = append(users, &server.NkeyUser{Nkey: st.Seal, Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{events.StationSubjects(e, s)}},
			Subscribe: &server.SubjectPermission{Allow: []string{StationInbox(st.ID) + ".>"}},
		}})
	}
	for _, a := range authorized {
		pub, sub := events.StreamSubjects(e.ID), "_INBOX.>"
		if s, ok := e.StationIndex(a.Station); ok {
			pub, sub = events.StationSubjects(e, s), StationInbox(a.Station)+".>"
		}
		users = append(users, &server.NkeyUser{Nkey: a.Key, Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{pub}},
			Subscribe: &server.SubjectPermission{Allow: []string{sub}},
		}})
	}
	return users
}

// ConfigSnippet renders users as the authorization block of a nats-server
// configuration file, for running tally against an external server with
// the same permissions as the embedded one.
func ConfigSnippet(e *tally.Election, users []*server.NkeyUser) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# nats-server authorization for tally election %s.\n", e.ID)
	b.WriteString("# tally's gateway and aggregator have identities of their own. Every\n")
	b.WriteString("# sealed station, and every identity the operator bound to one station,\n")
	b.WriteString("# may publish only that station's minutes subjects and subscribe only to\n")
	b.WriteString("# its own inbox (its client sets the inbox prefix _INBOX.<station>); an\n")
	b.WriteString("# identity bound to no station may publish every station's minutes. No\n")
	b.WriteString("# station may call the JetStream API. Anonymous connections are refused.\n")
	b.WriteString("# Store acknowledged writes before answering: in the jetstream block\n")
	b.WriteString("# set sync_interval: always.\n")
	b.WriteString("authorization {\n  users = [\n")
	for _, u := range users {
		fmt.Fprintf(&b, "    {\n      nkey: %s\n      permissions: {\n", u.Nkey)
		writeList := func(name string, subjects []string) {
			sorted := append([]string(nil), subjects...)
			sort.Strings(sorted)
			fmt.Fprintf(&b, "        %s: { allow: [", name)
			for i, s := range sorted {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "%q", s)
			}
			b.WriteString("] }\n")
		}
		writeList("publish", u.Permissions.Publish.Allow)
		writeList("subscribe", u.Permissions.Subscribe.Allow)
		b.WriteString("      }\n    }\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}
