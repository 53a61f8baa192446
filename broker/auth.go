package broker

import (
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
}

// Users returns the NATS users of an election: every sealed station may
// publish only its own minutes subjects and subscribe only to its own
// inbox; the gateway and the aggregator get what they need and no more.
// Stations without a seal get no NATS identity (they submit through the
// gateway). Anonymous connections are refused once any user is defined.
func Users(e *tally.Election, roles Roles) []*server.NkeyUser {
	stream := events.StreamName(e.ID)
	inbox := &server.SubjectPermission{Allow: []string{"_INBOX.>"}}
	users := []*server.NkeyUser{
		{Nkey: roles.Gateway, Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{
				events.StreamSubjects(e.ID),
				"$JS.API.INFO",
				"$JS.API.STREAM.INFO." + stream,
			}},
			Subscribe: inbox,
		}},
		{Nkey: roles.Aggregator, Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{
				"$JS.API.INFO",
				"$JS.API.STREAM.*." + stream,
				"$JS.API.STREAM.MSG.GET." + stream,      // when a message was stored (the dashboard's times)
				"$JS.API.CONSUMER.*." + stream + ".>",   // CREATE, INFO, DELETE
				"$JS.API.CONSUMER.*.*." + stream + ".>", // MSG.NEXT, DURABLE.CREATE
				"$JS.ACK." + stream + ".>",
				"$JS.ACK.*.*." + stream + ".>",
			}},
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
	return users
}

// ConfigSnippet renders users as the authorization block of a nats-server
// configuration file, for running tally against an external server with
// the same permissions as the embedded one.
func ConfigSnippet(e *tally.Election, users []*server.NkeyUser) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# nats-server authorization for tally election %s.\n", e.ID)
	b.WriteString("# Every sealed station may publish only its own minutes subjects and\n")
	b.WriteString("# subscribe only to its own inbox (its client sets the inbox prefix\n")
	b.WriteString("# _INBOX.<station>). Anonymous connections are refused.\n")
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
