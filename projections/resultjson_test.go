package projections_test

import (
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
)

// TestAreaResultJSON: the hand-written encoding of an area result (votes in
// a precomputed order) is byte for byte what encoding/json makes of the
// same fields, for every area of a folded election, Vietnamese names
// included.
func TestAreaResultJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	fx := genElection(t, rng, 4, 6)
	store, err := projections.Open(filepath.Join(t.TempDir(), "p"), fx.e)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	fold := store.Fold()
	for i, m := range genMinutes(rng, fx) {
		s, _ := fx.e.StationIndex(m.Station)
		msg := projections.Msg{Seq: uint64(i + 1), Subject: events.Subject(fx.e, s, m.Contest), Data: events.AppendBinary(nil, &m), Time: time.Unix(0, 0)}
		if _, err := fold.Apply(&msg); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fold.Commit(); err != nil {
		t.Fatal(err)
	}
	type plain projections.AreaResult // no MarshalJSON: encoding/json's own
	nonzero := 0
	for _, c := range fx.e.Contests {
		for _, a := range fx.e.Areas {
			res, err := store.AreaResult(c.ID, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			fast, err := json.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			slow, err := json.Marshal((*plain)(res))
			if err != nil {
				t.Fatal(err)
			}
			if string(fast) != string(slow) {
				t.Fatalf("area %s contest %s:\nfast %s\nslow %s", a.ID, c.ID, fast, slow)
			}
			// The SSE hub's path, without the Votes map.
			hub, seq, err := store.AppendAreaJSON(nil, c.ID, a.ID)
			if err != nil || seq != res.AppliedSeq || string(hub) != string(slow) {
				t.Fatalf("AppendAreaJSON %s %s: seq %d err %v\n got %s\nwant %s", c.ID, a.ID, seq, err, hub, slow)
			}
			// Not read from a store: the same bytes, sorted on the spot.
			var other projections.AreaResult
			json.Unmarshal(slow, &other)
			if got := other.AppendJSON(nil); string(got) != string(slow) {
				t.Fatalf("decoded and encoded again:\n got %s\nwant %s", got, slow)
			}
			for _, v := range res.Votes {
				if v != 0 {
					nonzero++
				}
			}
		}
	}
	if nonzero == 0 {
		t.Fatal("no votes at all: the comparison proves nothing")
	}
}
