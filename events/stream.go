package events

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tallyvn/tally/tally"
)

// SubjectPrefix returns the subject prefix every minutes subject of election
// e starts with: "tally.<election>.minutes.".
func SubjectPrefix(electionID string) string { return "tally." + electionID + ".minutes." }

// StreamSubjects returns the subject filter the minutes stream captures.
func StreamSubjects(electionID string) string { return SubjectPrefix(electionID) + ">" }

// Subject returns the subject station s (an index into e.Stations) publishes
// its minutes for contest id on:
// tally.<election>.minutes.<district>.<ward>.<station>.<contest>.
func Subject(e *tally.Election, s int, contest string) string {
	areas := e.StationAreas(s)
	var b strings.Builder
	b.Grow(64)
	b.WriteString(SubjectPrefix(e.ID))
	b.WriteString(e.Areas[areas[parentLevel(areas)]].ID)
	b.WriteByte('.')
	b.WriteString(e.Areas[areas[0]].ID)
	b.WriteByte('.')
	b.WriteString(e.Stations[s].ID)
	b.WriteByte('.')
	b.WriteString(contest)
	return b.String()
}

// StationSubjects returns the subject filter covering everything station s
// may publish (for NATS permissions).
func StationSubjects(e *tally.Election, s int) string {
	areas := e.StationAreas(s)
	return SubjectPrefix(e.ID) + e.Areas[areas[parentLevel(areas)]].ID + "." + e.Areas[areas[0]].ID + "." + e.Stations[s].ID + ".*"
}

// parentLevel is where in a station's areas (bottom first) the first token
// of its subject is taken: the level above its own (its district in 2021,
// its province in a two-tier file), or its own in a one-level file.
func parentLevel(areas []int) int { return min(1, len(areas)-1) }

// ParseSubject returns the station and contest tokens of a minutes subject.
// It allocates nothing: the results alias subject.
func ParseSubject(electionID, subject string) (station, contest string, ok bool) {
	prefix := SubjectPrefix(electionID)
	if !strings.HasPrefix(subject, prefix) {
		return "", "", false
	}
	rest := subject[len(prefix):]
	// district.ward.station.contest
	var tok [4]string
	for i := 0; i < 3; i++ {
		j := strings.IndexByte(rest, '.')
		if j < 0 {
			return "", "", false
		}
		tok[i], rest = rest[:j], rest[j+1:]
	}
	if strings.IndexByte(rest, '.') >= 0 || rest == "" {
		return "", "", false
	}
	return tok[2], rest, true
}

// StreamName returns the name of election e's minutes stream.
func StreamName(electionID string) string { return "TALLY_" + electionID }

// StreamConfig returns the stream configuration for election e's minutes:
// file storage, kept forever (the stream is the source of truth the
// projections are rebuilt from), deduplicated by Nats-Msg-Id for an hour.
func StreamConfig(electionID string, replicas int) jetstream.StreamConfig {
	if replicas < 1 {
		replicas = 1
	}
	return jetstream.StreamConfig{
		Name:        StreamName(electionID),
		Description: "tally count minutes of election " + electionID,
		Subjects:    []string{StreamSubjects(electionID)},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew, // never drop stored minutes to make room
		MaxMsgs:     -1,
		MaxBytes:    -1,
		MaxAge:      0,
		Duplicates:  time.Hour,
		Replicas:    replicas,
		// A minutes event is small; anything large is not minutes.
		MaxMsgSize: 64 << 10,
	}
}

// MsgID returns the deterministic Nats-Msg-Id of an encoded minutes payload:
// a retried submission of the same content carries the same id and is
// stored once.
func MsgID(m *tally.Minutes, payload []byte) string {
	sum := sha256.Sum256(payload)
	return m.Station + "." + m.Contest + ".v" + strconv.FormatInt(m.Version, 10) + "." + hex.EncodeToString(sum[:12])
}
