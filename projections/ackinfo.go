package projections

import (
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// readMsg is jm as the fold takes it, with what its ack subject says; an
// error if jm has none (it did not come from a JetStream consumer).
func readMsg(jm jetstream.Msg) (Msg, ackInfo, error) {
	ack, ok := parseAck(jm.Reply())
	if !ok {
		return Msg{}, ackInfo{}, fmt.Errorf("message on %q has no JetStream ack subject (%q)", jm.Subject(), jm.Reply())
	}
	return Msg{Seq: ack.streamSeq, Subject: jm.Subject(), Data: jm.Data(), Time: ack.stored}, ack, nil
}

// ackInfo is what the fold needs from a JetStream message's reply subject.
type ackInfo struct {
	streamSeq uint64
	pending   uint64
	stored    time.Time
}

// parseAck reads the stream sequence, the pending count and the store time
// from a JetStream ack subject without allocating (jetstream.Msg.Metadata
// allocates for every message, which shows in the fold's profile).
//
//	v1: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
//	v2: $JS.ACK.<domain>.<acc hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<token>]
func parseAck(reply string) (ackInfo, bool) {
	const prefix = "$JS.ACK."
	if !strings.HasPrefix(reply, prefix) {
		return ackInfo{}, false
	}
	var tok [12]string
	n := 2
	for rest := reply[len(prefix):]; n < len(tok); n++ {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			tok[n] = rest
			n++
			break
		}
		tok[n], rest = rest[:i], rest[i+1:]
	}
	// Positions of sseq, ts, pending.
	var s, ts, p int
	switch {
	case n == 9:
		s, ts, p = 5, 7, 8
	case n >= 11:
		s, ts, p = 7, 9, 10
	default:
		return ackInfo{}, false
	}
	seq, ok1 := parseUint(tok[s])
	nanos, ok2 := parseUint(tok[ts])
	pending, ok3 := parseUint(tok[p])
	if !ok1 || !ok2 || !ok3 {
		return ackInfo{}, false
	}
	return ackInfo{streamSeq: seq, pending: pending, stored: time.Unix(0, int64(nanos))}, true
}

func parseUint(s string) (uint64, bool) {
	if s == "" || len(s) > 20 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}
