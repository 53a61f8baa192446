package projections

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/tallyvn/tally/events"
)

// TestCommittedBatchesAreReused: a committed batch goes back to the
// staging and the next batch is staged into it, with the same keys, bytes
// and resulting store as a batch made new; a batch cannot be committed
// twice.
func TestCommittedBatchesAreReused(t *testing.T) {
	e := loadExample(t, "longbien")
	data, err := os.ReadFile(filepath.Join("..", "examples", "longbien", "minutes.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []Msg
	for i, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var head struct{ Contest, Station string }
		if err := json.Unmarshal(line, &head); err != nil {
			t.Fatal(err)
		}
		st, _ := e.StationIndex(head.Station)
		msgs = append(msgs, Msg{Seq: uint64(i + 1), Subject: events.Subject(e, st, head.Contest), Data: line})
	}
	if len(msgs) < 4 {
		t.Fatalf("%d minutes in the example, want a few", len(msgs))
	}
	// fold folds the minutes in two batches, reusing the first batch for
	// the second when reuse is set, and returns the second batch's keys
	// and bytes and the store's content.
	fold := func(reuse bool) (keys uint32, size int, dump [][2][]byte) {
		s, err := Open(filepath.Join(t.TempDir(), "p"), e)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		f := s.Fold()
		apply := func(ms []Msg) *Batch {
			for i := range ms {
				if _, err := f.Apply(&ms[i]); err != nil {
					t.Fatal(err)
				}
			}
			b, err := f.EndBatch()
			if err != nil || b == nil {
				t.Fatalf("EndBatch: %v, %v", b, err)
			}
			return b
		}
		half := len(msgs) / 2
		first := apply(msgs[:half])
		pb := first.batch
		if err := f.CommitBatch(first); err != nil {
			t.Fatal(err)
		}
		if err := f.CommitBatch(first); err == nil {
			t.Fatal("a batch committed twice: no error")
		}
		if len(f.stage.spare) != 1 {
			t.Fatalf("%d spare batches after a commit, want 1", len(f.stage.spare))
		}
		if !reuse {
			<-f.stage.spare // dropped, not closed: Pebble's pool would hand it out again
		}
		second := apply(msgs[half:])
		if reuse && second.batch != pb {
			t.Fatal("the second batch is not the first one reused")
		}
		keys, size = second.Keys, second.Bytes
		if err := f.CommitBatch(second); err != nil {
			t.Fatal(err)
		}
		err = s.Dump(func(k, v []byte) error {
			dump = append(dump, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return keys, size, dump
	}
	keys, size, dump := fold(true)
	wantKeys, wantSize, wantDump := fold(false)
	if keys != wantKeys || size != wantSize {
		t.Fatalf("reused batch: %d keys, %d bytes; a new batch: %d keys, %d bytes", keys, size, wantKeys, wantSize)
	}
	if len(dump) != len(wantDump) {
		t.Fatalf("store after a reused batch: %d records, after a new one %d", len(dump), len(wantDump))
	}
	for i := range dump {
		if !bytes.Equal(dump[i][0], wantDump[i][0]) || !bytes.Equal(dump[i][1], wantDump[i][1]) {
			t.Fatalf("record %d: %q = %x after a reused batch, %q = %x after a new one", i, dump[i][0], dump[i][1], wantDump[i][0], wantDump[i][1])
		}
	}
}
