package events

import (
	"unicode/utf8"
	"unsafe"

	"github.com/tallyvn/tally/tally"
)

// decodeFast reads a minutes object in one pass and without allocating,
// for the JSON a station or tool writes as a matter of course: every
// member a field of minutes, once; strings without escapes; integers
// written as integers; version and a known status present. It reports
// false, leaving m in no particular state, for anything else (an escape,
// a null, an unknown or repeated member, a number that is not a plain
// integer, a missing version or status, invalid JSON...), and the caller
// then decodes with decodeOne, which names every problem. For what it
// accepts, it fills m exactly as decodeOne would, with no problem.
//
// With alias, m's strings alias data (as DecodeBinary's do); else they are
// copies. m.Votes is reused.
func decodeFast(data []byte, m *tally.Minutes, alias bool) bool {
	votes := m.Votes[:0]
	*m = tally.Minutes{}
	p := fastParser{b: data, alias: alias}
	const (
		seenVersion = 1 << iota
		seenStatus
		seenVotes
		seenReason
		seenElection
		seenContest
		seenStation
		seenSignature
		seenCounts // and the five bits after it, one per count field
	)
	seen := 0
	once := func(bit int) bool {
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	}
	if !p.byte('{') {
		return false
	}
	for first := true; ; first = false {
		if p.peek() == '}' && first {
			p.i++
			break
		}
		name, ok := p.rawString()
		if !ok || !p.byte(':') {
			return false
		}
		switch string(name) {
		case "election", "contest", "station", "reason", "signature":
			var bit int
			var dst *string
			switch string(name) {
			case "election":
				bit, dst = seenElection, &m.Election
			case "contest":
				bit, dst = seenContest, &m.Contest
			case "station":
				bit, dst = seenStation, &m.Station
			case "reason":
				bit, dst = seenReason, &m.Reason
			default:
				bit, dst = seenSignature, &m.Signature
			}
			s, ok := p.rawString()
			if !ok || !once(bit) {
				return false
			}
			*dst = p.str(s)
		case "version":
			n, ok := p.integer()
			if !ok || !once(seenVersion) {
				return false
			}
			m.Version = n
		case "status":
			s, ok := p.rawString()
			if !ok || !once(seenStatus) {
				return false
			}
			st, known := tally.ParseStatus(string(s))
			if !known {
				return false
			}
			m.Status = st
		case "registered", "voted", "issued", "received", "valid", "invalid":
			i := 0
			for countFieldNames[i] != string(name) {
				i++
			}
			n, ok := p.integer()
			if !ok || !once(seenCounts<<i) {
				return false
			}
			*[6]*int64{&m.Counts.Registered, &m.Counts.Voted, &m.Counts.Issued, &m.Counts.Received, &m.Counts.Valid, &m.Counts.Invalid}[i] = n
			m.Present |= 1 << i
		case "votes":
			if !once(seenVotes) || !p.byte('{') {
				return false
			}
			for firstVote := true; ; firstVote = false {
				if p.peek() == '}' && firstVote {
					p.i++
					break
				}
				id, ok := p.rawString()
				if !ok || !p.byte(':') {
					return false
				}
				n, ok := p.integer()
				if !ok {
					return false
				}
				votes = append(votes, tally.Vote{Candidate: p.str(id), Count: n})
				if p.peek() == ',' {
					p.i++
					continue
				}
				if !p.byte('}') {
					return false
				}
				break
			}
		default:
			return false // an unknown member: decodeOne names it
		}
		if p.peek() == ',' {
			p.i++
			continue
		}
		if !p.byte('}') {
			return false
		}
		break
	}
	if p.skipSpace(); p.i != len(data) || seen&(seenVersion|seenStatus) != seenVersion|seenStatus {
		return false
	}
	sortVotes(votes)
	for i := 1; i < len(votes); i++ {
		if votes[i].Candidate == votes[i-1].Candidate {
			return false // a repeated name: decodeOne flags it
		}
	}
	if len(votes) > 0 {
		m.Votes = votes
	}
	if m.Signature != "" {
		// As decodeOne: where the JSON departs from the sealed form's
		// defaults (jcs.go).
		if len(m.Votes) == 0 && (seen&seenVotes != 0) != (m.Status != tally.Withdrawn) {
			m.Present |= FormVotes
		}
		if seen&seenReason != 0 && m.Reason == "" {
			m.Present |= FormEmptyReason
		}
	}
	return true
}

// fastParser is decodeFast's cursor over data.
type fastParser struct {
	b     []byte
	i     int
	alias bool
}

func (p *fastParser) skipSpace() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, 0 at the end.
func (p *fastParser) peek() byte {
	p.skipSpace()
	if p.i == len(p.b) {
		return 0
	}
	return p.b[p.i]
}

// byte consumes c, after white space.
func (p *fastParser) byte(c byte) bool {
	if p.peek() != c {
		return false
	}
	p.i++
	return true
}

// rawString consumes a string without escapes or control characters, of
// valid UTF-8, and returns its bytes.
func (p *fastParser) rawString() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	for ; p.i < len(p.b); p.i++ {
		switch c := p.b[p.i]; {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// integer consumes a JSON number written as an integer of at most 18
// digits: -?(0|[1-9][0-9]*), not followed by a fraction or an exponent.
func (p *fastParser) integer() (int64, bool) {
	p.skipSpace()
	neg := p.i < len(p.b) && p.b[p.i] == '-'
	if neg {
		p.i++
	}
	start := p.i
	var n int64
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		n = n*10 + int64(p.b[p.i]-'0')
		p.i++
	}
	digits := p.i - start
	if digits == 0 || digits > 18 || (digits > 1 && p.b[start] == '0') {
		return 0, false
	}
	if p.i < len(p.b) {
		if c := p.b[p.i]; c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	if neg {
		n = -n
	}
	return n, true
}

// str returns s as a string: aliasing the data, or a copy.
func (p *fastParser) str(s []byte) string {
	if len(s) == 0 {
		return ""
	}
	if p.alias {
		return unsafe.String(&s[0], len(s))
	}
	return string(s)
}
