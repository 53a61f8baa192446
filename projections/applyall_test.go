package projections_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
)

// TestApplyAllMatchesApply: folding a night with ApplyAll, in chunks of
// random sizes that overlap what was already applied (a redelivery),
// gives every message the outcome Apply gives it one by one, and the same
// store, key for key.
func TestApplyAllMatchesApply(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 77))
			fx := genElection(t, rng, 3+rng.IntN(4), 5+rng.IntN(11))
			ms := genMinutes(rng, fx)
			msgs := make([]projections.Msg, len(ms))
			for i := range ms {
				s, _ := fx.e.StationIndex(ms[i].Station)
				data := events.AppendBinary(nil, &ms[i])
				if i%5 == 0 {
					data = events.AppendJSON(nil, &ms[i])
				}
				msgs[i] = projections.Msg{Seq: uint64(i + 1), Subject: events.Subject(fx.e, s, ms[i].Contest), Data: data, Time: time.Unix(1621750000+int64(i), 0)}
			}
			// A message on another station's subject: rejected.
			if len(msgs) > 2 {
				msgs[2].Subject = msgs[1].Subject
			}
			one, err := projections.Open(filepath.Join(t.TempDir(), "one"), fx.e)
			if err != nil {
				t.Fatal(err)
			}
			defer one.Close()
			all, err := projections.Open(filepath.Join(t.TempDir(), "all"), fx.e)
			if err != nil {
				t.Fatal(err)
			}
			defer all.Close()
			want := make([]projections.Outcome, len(msgs))
			for i := range msgs {
				if want[i], err = one.Fold().Apply(&msgs[i]); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := one.Fold().Commit(); err != nil {
				t.Fatal(err)
			}
			got := make([]projections.Outcome, len(msgs))
			skipped := 0
			for from := 0; from < len(msgs); {
				// Start up to 5 messages back: those are skipped.
				start := max(0, from-rng.IntN(6))
				to := min(len(msgs), from+1+rng.IntN(40))
				err := all.Fold().ApplyAll(msgs[start:to], func(i int, o projections.Outcome) {
					if start+i < from {
						if o != projections.Skipped {
							t.Fatalf("message %d again: %v, want skipped", start+i+1, o)
						}
						skipped++
						return
					}
					got[start+i] = o
				})
				if err != nil {
					t.Fatal(err)
				}
				if rng.IntN(3) == 0 {
					if _, err := all.Fold().Commit(); err != nil {
						t.Fatal(err)
					}
				}
				from = to
			}
			if _, err := all.Fold().Commit(); err != nil {
				t.Fatal(err)
			}
			counts := map[projections.Outcome]int{}
			for i := range msgs {
				if got[i] != want[i] {
					t.Fatalf("message %d: ApplyAll %v, Apply %v", i+1, got[i], want[i])
				}
				counts[want[i]]++
			}
			if counts[projections.Applied] == 0 || counts[projections.Rejected] == 0 || counts[projections.Stale]+counts[projections.Duplicate] == 0 || skipped == 0 {
				t.Fatalf("outcomes %v, %d skipped: want every kind", counts, skipped)
			}
			assertSameStore(t, one, all)
		})
	}
}
