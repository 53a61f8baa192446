package server

import (
	"log/slog"
	"testing"
	"time"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

// TestRefusalLogBoundedAndReopened: past its limit the log stores nothing
// more and says how many it could not keep; what it stored is there again,
// in order, after a reopen, and the next record follows the last.
func TestRefusalLogBoundedAndReopened(t *testing.T) {
	dir := t.TempDir()
	l, err := openRefusals(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	l.limit = 3
	decoded := make([]events.Decoded, 4)
	for i, st := range []string{"S1", "S2", "S3", "S4"} {
		decoded[i].Minutes = tally.Minutes{Station: st, Contest: "QH", Version: int64(i + 1)}
	}
	long := string(make([]byte, 10*maxRefusalText))
	viol := []tally.Violation{{Index: 1, Field: "voted", Rule: "voted_le_registered", Message: long}, {Index: 0, Field: "votes", Rule: "candidate", Message: "x"}, {Index: 1, Field: "valid", Rule: "r", Message: "y"}}
	stored, lost, err := l.record(time.Now(), decoded, viol)
	if err != nil || stored != 2 || lost != 0 {
		t.Fatalf("record: stored %d, lost %d, %v; want 2, 0", stored, lost, err)
	}
	stored, lost, err = l.record(time.Now(), decoded, []tally.Violation{{Index: 2, Field: "f"}, {Index: 3, Field: "f"}})
	if err != nil || stored != 1 || lost != 1 {
		t.Fatalf("record past the limit: stored %d, lost %d, %v; want 1, 1", stored, lost, err)
	}
	if err := l.close(); err != nil {
		t.Fatal(err)
	}

	l, err = openRefusals(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	if l.Count() != 3 || l.mu.next != 3 {
		t.Fatalf("reopened: %d records, next key %d; want 3 and 3", l.Count(), l.mu.next)
	}
	all, err := l.list("")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range all {
		got = append(got, r.Station)
	}
	if len(all) != 3 || got[0] != "S1" || got[1] != "S2" || got[2] != "S3" {
		t.Fatalf("refusals %v, want S1 S2 S3", got)
	}
	if len(all[1].Errors) != 2 || len(all[1].Errors[0].Message) != maxRefusalText || all[1].Version != 2 {
		t.Errorf("S2's refusal %+v: want its two violations, the long message cut to %d bytes", all[1], maxRefusalText)
	}
	if one, _ := l.list("S3"); len(one) != 1 || one[0].Station != "S3" {
		t.Errorf("list(S3) = %+v", one)
	}
}
