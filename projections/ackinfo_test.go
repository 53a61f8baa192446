package projections

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseAck(t *testing.T) {
	for _, tc := range []struct {
		reply        string
		seq, pending uint64
		nanos        int64
		ok           bool
	}{
		{"$JS.ACK.TALLY_hn.tally-fold.1.42.40.1700000000123456789.7", 42, 7, 1700000000123456789, true},
		{"$JS.ACK._.ABCHASH.TALLY_hn.tally-fold.2.43.41.1700000000123456790.0.RAND", 43, 0, 1700000000123456790, true},
		{"$JS.ACK.hub.ABCHASH.TALLY_hn.tally-fold.2.44.42.1700000000123456791.5", 44, 5, 1700000000123456791, true},
		{"$JS.ACK.TALLY_hn.tally-fold.1.42.40.17000", 0, 0, 0, false}, // 8 tokens
		{"$JS.ACK.a.b.c.d.e.f.g.h", 0, 0, 0, false},                   // 10 tokens
		{"$JS.ACK.TALLY_hn.tally-fold.1.x42.40.1700000000123456789.7", 0, 0, 0, false},
		{"_INBOX.abc", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	} {
		got, ok := parseAck(tc.reply)
		if ok != tc.ok {
			t.Fatalf("parseAck(%q) ok = %v, want %v", tc.reply, ok, tc.ok)
		}
		if ok && (got.streamSeq != tc.seq || got.pending != tc.pending || !got.stored.Equal(time.Unix(0, tc.nanos))) {
			t.Fatalf("parseAck(%q) = %+v", tc.reply, got)
		}
	}
	if n := testing.AllocsPerRun(100, func() { parseAck("$JS.ACK._.H.S.C.2.43.41.1700000000123456790.0.R") }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

// TestSeqCheck: the fold's consumer must deliver every stream sequence in
// order; a redelivery passes (the fold skips it), a gap is ErrDeliveryGap
// (formerly server.TestGapGuard).
func TestSeqCheck(t *testing.T) {
	c := seqCheck{next: 11}
	var passed []uint64
	var gapErr error
	for _, seq := range []uint64{11, 12, 12, 13, 15, 16, 14} {
		if err := c.check(seq); err != nil {
			gapErr = err
			break
		}
		passed = append(passed, seq)
	}
	if fmt.Sprint(passed) != "[11 12 12 13]" || !errors.Is(gapErr, ErrDeliveryGap) || c.next != 14 {
		t.Fatalf("passed %v, err %v, next %d; want [11 12 12 13], a gap at 14→15", passed, gapErr, c.next)
	}
	if want := "expected stream sequence 14, got 15"; !strings.Contains(gapErr.Error(), want) {
		t.Fatalf("error %q does not say %q", gapErr, want)
	}
}
