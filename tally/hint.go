package tally

import (
	"crypto/sha256"
	"encoding/binary"
)

// Hint is where a producer that already resolved a minutes' ids against
// an election file (the HTTP gateway, which checks every minutes before it
// publishes them) found them: the contest's index and the station's voter
// index in that contest (Voter), in the index space of the file named by
// Fingerprint. The binary event carries it (events.AppendBinaryHinted), so
// that the fold reads indexes instead of hashing ids.
//
// A hint is only ever a shortcut: Locate takes it when it comes from the
// same file and names the very contest and station the minutes name (the
// ids are compared, not hashed), and falls back to the ids otherwise. A
// wrong or forged hint costs a lookup, never a misattribution.
type Hint struct {
	// Fingerprint is the Fingerprint of the file the indexes are in; 0:
	// no hint.
	Fingerprint    uint64
	Contest, Voter int32
}

// Fingerprint identifies the index space of the election: the SHA-256 of
// the file's bytes, cut to 64 bits (never 0). Two processes that parsed
// the same file agree on every index. A part (Restrict) has its whole
// file's fingerprint, and maps the whole file's hints to its own indexes.
func (e *Election) Fingerprint() uint64 { return e.fingerprint }

// fingerprintOf is the fingerprint of the file data.
func fingerprintOf(data []byte) uint64 {
	sum := sha256.Sum256(data)
	return max(binary.BigEndian.Uint64(sum[:8]), 1)
}

// Hint returns the hint for minutes naming contest and station: their
// indexes in this file. ok is false when the station does not vote in the
// contest (the minutes would not pass Check).
func (e *Election) Hint(contest, station string) (h Hint, ok bool) {
	if e.part || e.fingerprint == 0 {
		return Hint{}, false // a part's indexes are not its file's
	}
	c, okC := e.contestIdx[contest]
	s, okS := e.stationIdx[station]
	if !okC || !okS {
		return Hint{}, false
	}
	v, ok := e.Voter(c, s)
	if !ok {
		return Hint{}, false
	}
	return Hint{Fingerprint: e.fingerprint, Contest: int32(c), Voter: int32(v)}, true
}

// Locate resolves a minutes' contest and station ids to indexes: through
// h when h comes from this file (or, for a part, from its whole file) and
// its indexes name exactly these ids, else by looking the ids up. v is the
// station's voter index in the contest, -1 when it does not vote in it.
func (e *Election) Locate(h Hint, contest, station string) (c, s, v int, okC, okS bool) {
	if h.Fingerprint != 0 && h.Fingerprint == e.fingerprint {
		if c, s, v, ok := e.locateHint(h, contest, station); ok {
			return c, s, v, true, true
		}
	}
	c, okC = e.contestIdx[contest]
	s, okS = e.stationIdx[station]
	v = -1
	if okC && okS {
		if x, ok := e.Voter(c, s); ok {
			v = x
		}
	}
	return c, s, v, okC, okS
}

// locateHint is Locate's shortcut: h's indexes, checked against the ids.
func (e *Election) locateHint(h Hint, contest, station string) (c, s, v int, ok bool) {
	c, v = int(h.Contest), int(h.Voter)
	if c < 0 || c >= len(e.Contests) || e.Contests[c].ID != contest {
		return 0, 0, 0, false
	}
	if e.fromWhole != nil { // a part: the hint is in its whole file's voters
		from := e.fromWhole[c]
		if v < 0 || v >= len(from) || from[v] < 0 {
			return 0, 0, 0, false
		}
		v = int(from[v])
	}
	voters := e.Contests[c].voters
	if v < 0 || v >= len(voters) {
		return 0, 0, 0, false
	}
	s = int(voters[v])
	if e.Stations[s].ID != station {
		return 0, 0, 0, false
	}
	return c, s, v, true
}
