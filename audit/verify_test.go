package audit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tallyvn/tally/audit"
	"github.com/tallyvn/tally/broker"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/internal/natstest"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// TestVerifyShortRead publishes minutes to a real JetStream stream, folds
// what it stored into real projections, and audits: OK. Then one message
// is deleted from the stream, and another purged from the front of a
// second one: the audit reads fewer messages than the projections folded
// and must refuse to report, naming both numbers, instead of comparing a
// smaller election.
func TestVerifyShortRead(t *testing.T) {
	ctx := context.Background()
	e := parse(t, electionJSON)
	v1 := minutes("QH", "BD-1", 1, tally.Partial, counts(1000, 900, 400, 10), map[string]int64{"Q1": 300})
	v2 := minutes("QH", "BD-1", 2, tally.Final, counts(1000, 900, 880, 20), map[string]int64{"Q1": 700, "Q2": 500, "Q3": 300})
	hd := minutes("HD", "GT-1", 1, tally.Final, counts(600, 500, 500, 0), map[string]int64{"H1": 450, "H2": 50})
	qh := minutes("QH", "GT-1", 1, tally.Final, counts(600, 500, 500, 0), map[string]int64{"Q1": 450, "Q2": 50})
	msgs := []msg{jsonMsg(e, v1), jsonMsg(e, hd), jsonMsg(e, v2), jsonMsg(e, qh)}

	// verifyAfter publishes msgs, folds the stream into fresh projections,
	// lets damage act on the stream, and audits.
	verifyAfter := func(t *testing.T, damage func(jetstream.Stream)) (*audit.Report, error) {
		t.Helper()
		js := natstest.JetStream(t)
		st, err := broker.EnsureStream(ctx, js, events.StreamConfig(e.ID, 1))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if _, err := js.Publish(ctx, m.subject, m.data); err != nil {
				t.Fatal(err)
			}
		}
		store, err := projections.Open(t.TempDir(), e)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		n, _, err := audit.ReadStream(ctx, st, uint64(len(msgs)), func(seq uint64, subject string, data []byte) {
			if _, err := store.Fold().Apply(&projections.Msg{Seq: seq, Subject: subject, Data: data, Time: time.Unix(1621750000, 0)}); err != nil {
				t.Fatal(err)
			}
		})
		if err != nil || n != uint64(len(msgs)) {
			t.Fatalf("read %d of %d messages: %v", n, len(msgs), err)
		}
		if _, err := store.Fold().Commit(); err != nil {
			t.Fatal(err)
		}
		if damage != nil {
			damage(st)
		}
		return audit.Verify(ctx, e, st, store)
	}

	t.Run("whole", func(t *testing.T) {
		rep, err := verifyAfter(t, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK || rep.EventsRead != uint64(len(msgs)) || rep.Compared.Messages != len(msgs) {
			t.Fatalf("audit of an intact stream: ok %v, read %d, compared %+v, differences %v", rep.OK, rep.EventsRead, rep.Compared, rep.Differences)
		}
	})
	for _, c := range []struct {
		name   string
		damage func(jetstream.Stream) error
		want   []string
	}{
		{"deleted", func(st jetstream.Stream) error { return st.DeleteMsg(ctx, 3) },
			[]string{"read 3 messages", "want 4", "1 deleted"}},
		{"purged", func(st jetstream.Stream) error { return st.Purge(ctx, jetstream.WithPurgeSequence(3)) },
			[]string{"read 2 messages", "want 4", "first seq 3"}},
		{"emptied", func(st jetstream.Stream) error { return st.Purge(ctx) },
			[]string{"read 0 messages", "want 4", "0 messages"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep, err := verifyAfter(t, func(st jetstream.Stream) {
				if err := c.damage(st); err != nil {
					t.Fatal(err)
				}
			})
			if err == nil {
				t.Fatalf("audit of a stream missing messages returned no error: ok %v, read %d, differences %v", rep.OK, rep.EventsRead, rep.Differences)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			t.Logf("%s: %v", c.name, err)
		})
	}
}
