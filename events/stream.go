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
// its minutes for contest id on (CONTRACT §7 v2):
// tally.<election>.minutes.<province>.<station>.<contest>, where <province>
// is the station's top-level area.
func Subject(e *tally.Election, s int, contest string) string {
	prov := Province(e, s)
	var b strings.Builder
	b.Grow(len(SubjectPrefix(e.ID)) + len(prov) + len(e.Stations[s].ID) + len(contest) + 2)
	b.WriteString(SubjectPrefix(e.ID))
	b.WriteString(prov)
	b.WriteByte('.')
	b.WriteString(e.Stations[s].ID)
	b.WriteByte('.')
	b.WriteString(contest)
	return b.String()
}

// Province returns the id of station s's top-level area: the <province>
// token of its subjects, and what partitions the minutes.
func Province(e *tally.Election, s int) string {
	areas := e.StationAreas(s)
	return e.Areas[areas[len(areas)-1]].ID
}

// StationSubjects returns the subject filter covering everything station s
// may publish (for NATS permissions):
// tally.<election>.minutes.<province>.<station>.*.
func StationSubjects(e *tally.Election, s int) string {
	return SubjectPrefix(e.ID) + Province(e, s) + "." + e.Stations[s].ID + ".*"
}

// ParseSubject returns the station and contest tokens of a minutes subject:
// the last two tokens of tally.<election>.minutes.<province>.<station>.<contest>,
// or of the v1 form tally.<election>.minutes.<district>.<ward>.<station>.<contest>,
// which a stream created before v2 may still hold (its filter,
// tally.<election>.minutes.>, captures both). It allocates nothing: the
// results alias subject.
func ParseSubject(electionID, subject string) (station, contest string, ok bool) {
	_, station, contest, ok = SplitSubject(electionID, subject)
	return station, contest, ok
}

// SplitSubject is [ParseSubject] with the province token too; province is
// "" for a subject of the v1 form, whose first token was not the province.
func SplitSubject(electionID, subject string) (province, station, contest string, ok bool) {
	prefix := SubjectPrefix(electionID)
	if !strings.HasPrefix(subject, prefix) {
		return "", "", "", false
	}
	rest := subject[len(prefix):]
	// v2: province.station.contest; v1: district.ward.station.contest.
	var tok [4]string
	n := 0
	for {
		j := strings.IndexByte(rest, '.')
		if j < 0 {
			break
		}
		if n == 3 {
			return "", "", "", false
		}
		tok[n], rest = rest[:j], rest[j+1:]
		n++
	}
	if n < 2 || rest == "" {
		return "", "", "", false
	}
	for _, t := range tok[:n] {
		if t == "" {
			return "", "", "", false
		}
	}
	if n == 2 {
		province = tok[0]
	}
	return province, tok[n-1], rest, true
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
		// Lets the gateway store concurrent submissions together (GroupCommit).
		AllowAtomicPublish: true,
	}
}

// MsgID returns the deterministic Nats-Msg-Id of an encoded minutes payload:
// a retried submission of the same content carries the same id and is
// stored once.
func MsgID(m *tally.Minutes, payload []byte) string {
	sum := sha256.Sum256(payload)
	return m.Station + "." + m.Contest + ".v" + strconv.FormatInt(m.Version, 10) + "." + hex.EncodeToString(sum[:12])
}
