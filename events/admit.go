package events

import (
	"fmt"

	"github.com/tallyvn/tally/tally"
)

// Admission is what Admit makes of one message of the minutes stream. Its
// slices are reused from one Admit to the next: a caller admitting many
// messages in a loop keeps one Admission.
type Admission struct {
	// Minutes is the payload, decoded as far as it could be. Its strings
	// may alias the message's data.
	Minutes tally.Minutes
	// Decoded reports whether the payload decoded at all.
	Decoded bool
	// Resolved is Minutes with ids resolved to indexes; set only when
	// Violations is empty.
	Resolved tally.Resolved
	// Sealed reports whether the payload names a station with a seal, whose
	// signature was then checked (a failure is a Violation of rule seal).
	Sealed bool
	// Violations lists every broken rule; empty when the minutes are
	// admitted.
	Violations []tally.Violation

	problems []tally.Violation // what the JSON decoder flagged, for the rules
	warmed   int               // what AdmitAll's reads ahead read, kept
}

// Admit decides whether one message of the minutes stream, published on
// subject with payload data (binary or JSON minutes), counts: it decodes
// the payload, checks that it names the station and contest of its subject
// (CONTRACT §7), checks every rule of CONTRACT §3 that needs no history
// (tally.Election.Check), and checks the seal of a sealed station (§7a).
// What remains (stale, duplicate, conflict) needs the station's history:
// the fold's. The fold and the audit fold both admit through here.
func Admit(e *tally.Election, subject string, data []byte, a *Admission) {
	if a.decode(data) {
		a.admitDecoded(e, subject)
	}
}

// AdmitAll admits message i, published on subjects[i] with payload
// datas[i], into adms[i], for every i, as Admit does one by one. It
// decodes them all first, then reads what the rules will read of the
// election for all of them together (tally.Election.WarmCheck), so that
// those reads' cache misses overlap, then checks each. It suits a few
// messages at a time (a fold's window), not a whole stream.
func AdmitAll(e *tally.Election, subjects []string, datas [][]byte, adms []*Admission) {
	ms := make([]*tally.Minutes, 0, tally.WarmMax)
	for i, a := range adms {
		if a.decode(datas[i]) {
			ms = append(ms, &a.Minutes)
		}
		if len(ms) == cap(ms) || i == len(adms)-1 {
			a.warmed += e.WarmCheck(ms)
			ms = ms[:0]
		}
	}
	for i, a := range adms {
		if a.Decoded {
			a.admitDecoded(e, subjects[i])
		}
	}
}

// decode decodes data into a.Minutes, binary or JSON, and reports whether
// it decoded; if not, a.Violations says why.
func (a *Admission) decode(data []byte) bool {
	m := &a.Minutes
	a.Violations = a.Violations[:0]
	a.problems = nil
	a.Decoded, a.Sealed = false, false
	if len(data) > 0 && data[0] == BinaryMagic {
		if err := DecodeBinary(data, m); err != nil {
			*m = tally.Minutes{Votes: m.Votes[:0]}
			a.Violations = append(a.Violations, tally.Violation{Field: "payload", Rule: tally.RuleType, Message: err.Error()})
			return false
		}
	} else if !decodeFast(data, m, true) {
		d, err := decodeObjectSlow(data)
		if err != nil {
			*m = tally.Minutes{Votes: m.Votes[:0]}
			a.Violations = append(a.Violations, tally.Violation{Field: "payload", Rule: tally.RuleType, Message: err.Error()})
			return false
		}
		*m = d.Minutes
		a.problems = d.Problems // what the JSON decoder already flagged
	}
	a.Decoded = true
	return true
}

// admitDecoded is Admit after the decode.
func (a *Admission) admitDecoded(e *tally.Election, subject string) {
	m := &a.Minutes
	// A station publishing straight to NATS may only speak for itself: the
	// payload must name the station and contest of its subject. The
	// province token must be the station's own too, since it decides the
	// partition the minutes are folded in (a v1 subject, still readable
	// in a stream created before v2, has none).
	if prov, st, ct, ok := SplitSubject(e.ID, subject); !ok || st != m.Station || ct != m.Contest {
		a.Violations = append(a.Violations, tally.Violation{Field: "station", Rule: tally.RuleSubject,
			Message: fmt.Sprintf("minutes for station %q contest %q published on subject %q", m.Station, m.Contest, subject)})
	} else if s, known := e.StationIndex(st); known && prov != "" && prov != Province(e, s) {
		a.Violations = append(a.Violations, tally.Violation{Field: "station", Rule: tally.RuleSubject,
			Message: fmt.Sprintf("minutes for station %q published on subject %q, under province %q; the station is in %q", m.Station, subject, prov, Province(e, s))})
	}
	a.Violations, a.Sealed = AdmitDecoded(e, m, a.problems, 0, &a.Resolved, a.Violations)
}

// AdmitDecoded is the part of Admit that needs neither the station's
// history nor a subject, for minutes already decoded (m, with the problems
// its decoder flagged): the rules of CONTRACT §3 (Check) and then, for a
// station with a seal, its signature (§7a). It appends every broken rule to
// dst, each with Index index, fills r when the rules of §3 hold, and reports
// whether the minutes name a sealed station.
//
// Admit calls it after the decode and the subject check. The HTTP gateway
// calls it for each minutes of a request (decoded by DecodeJSON, which
// answers a body that is not minutes before any rule): there is no subject
// yet to check, the gateway builds it from the minutes it admits.
func AdmitDecoded(e *tally.Election, m *tally.Minutes, problems []tally.Violation, index int, r *tally.Resolved, dst []tally.Violation) (_ []tally.Violation, sealed bool) {
	dst = Check(e, m, problems, index, r, dst)
	// A sealed station's minutes must carry its signature, whoever
	// published them.
	if e.Sealed() {
		if s, ok := e.StationIndex(m.Station); ok && e.Stations[s].Seal != "" {
			sealed = true
			if v := VerifySeal(e, s, m); v != nil {
				v.Index = index
				dst = append(dst, *v)
			}
		}
	}
	return dst, sealed
}
