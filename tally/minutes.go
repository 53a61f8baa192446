package tally

import (
	"errors"
	"fmt"
	"strings"
)

// Status is the state a station's minutes declare.
type Status uint8

// Minutes statuses. The zero value is not a valid status.
const (
	Partial   Status = 1 // progress while counting
	Final     Status = 2 // the signed count minutes
	Withdrawn Status = 3 // removes the station's contribution
)

// String returns the status as it appears in JSON.
func (s Status) String() string {
	switch s {
	case Partial:
		return "partial"
	case Final:
		return "final"
	case Withdrawn:
		return "withdrawn"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// ParseStatus parses a JSON status.
func ParseStatus(s string) (Status, bool) {
	switch s {
	case "partial":
		return Partial, true
	case "final":
		return Final, true
	case "withdrawn":
		return Withdrawn, true
	}
	return 0, false
}

// Counts are the ballot counts of minutes (and of aggregates).
type Counts struct {
	Registered int64 // (a) voters on the list
	Voted      int64 // (b) voters who voted
	Issued     int64 // (c) ballots issued
	Received   int64 // (d) ballots received
	Valid      int64 // (đ) valid ballots
	Invalid    int64 // (e) invalid ballots
}

// Add adds times × x to c, field by field: 1 to add minutes' counts to a
// total, -1 to take them out.
func (c *Counts) Add(x Counts, times int64) {
	c.Registered += times * x.Registered
	c.Voted += times * x.Voted
	c.Issued += times * x.Issued
	c.Received += times * x.Received
	c.Valid += times * x.Valid
	c.Invalid += times * x.Invalid
}

// Count field bits for Minutes.Present.
const (
	HasRegistered uint8 = 1 << iota
	HasVoted
	HasIssued
	HasReceived
	HasValid
	HasInvalid

	HasAllCounts = HasRegistered | HasVoted | HasIssued | HasReceived | HasValid | HasInvalid
)

// countFields names the count fields in bit order.
var countFields = [6]string{"registered", "voted", "issued", "received", "valid", "invalid"}

// Vote is one candidate's count in minutes.
type Vote struct {
	Candidate string
	Count     int64
}

// Minutes is one station's count minutes for one contest, one version
// (CONTRACT §3). Codecs live in package events.
type Minutes struct {
	Election  string
	Contest   string
	Station   string
	Version   int64
	Status    Status
	Counts    Counts
	Present   uint8 // which Counts fields were given (Has* bits)
	Votes     []Vote
	Reason    string
	Signature string
}

// MaxCount bounds every count so that sums over a whole country cannot
// overflow. No polling area comes near it.
const MaxCount = 1_000_000_000

// Rule names, as they appear in a Violation (and so in 422 answers).
const (
	RuleRequired       = "required"       // a field that must be present is missing
	RuleType           = "type"           // a field has the wrong JSON type
	RuleUnknownField   = "unknown_field"  // a field the contract does not define
	RuleID             = "id"             // not a valid identifier
	RuleUnknown        = "unknown"        // rule 1: election, contest or station does not exist
	RuleNotVoting      = "not_voting"     // rule 1: the station does not vote in the contest
	RuleCandidate      = "candidate"      // rule 2: not a candidate of the station's unit
	RuleDuplicateVote  = "duplicate_vote" // the same candidate twice
	RuleInteger        = "integer"        // rule 3: not an integer
	RuleNonNegative    = "non_negative"   // rule 3: negative
	RuleRange          = "range"          // above MaxCount
	RuleVersion        = "version"        // version < 1
	RuleStatus         = "status"         // not partial, final or withdrawn
	RuleVoted          = "voted_le_registered"
	RuleIssued         = "issued_le_registered"
	RuleReceived       = "received_le_issued"
	RuleValidInvalid   = "valid_plus_invalid_eq_received"
	RuleCandidateValid = "votes_le_valid"
	RuleSumVotes       = "sum_votes_le_valid_times_seats"
	RuleFinalComplete  = "final_lists_every_candidate"
	RuleWithdrawn      = "withdrawn_without_counts"
	RuleSubject        = "subject"  // published on another station's subject
	RuleConflict       = "conflict" // same version, different content
	RuleSeal           = "seal"
)

// Violation is one broken rule of one minutes object.
type Violation struct {
	Index   int    `json:"index"`
	Field   string `json:"field"`
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

func (v Violation) String() string {
	return fmt.Sprintf("[%d] %s: %s (%s)", v.Index, v.Field, v.Message, v.Rule)
}

// ValidationError carries every broken rule of a submission.
type ValidationError struct {
	Violations []Violation
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.String()
	}
	return "invalid minutes: " + strings.Join(parts, "; ")
}

// Sentinel errors for lookups by id.
var (
	ErrUnknownContest   = errors.New("tally: unknown contest")
	ErrUnknownArea      = errors.New("tally: unknown area")
	ErrUnknownUnit      = errors.New("tally: unknown unit")
	ErrUnknownStation   = errors.New("tally: unknown station")
	ErrUnknownCandidate = errors.New("tally: unknown candidate")
)

// Resolved is minutes checked against the election, with ids replaced by
// indexes. Votes is dense over the unit's candidates.
type Resolved struct {
	Contest, Station, Unit int
	// Voter is the station's position among the contest's voters
	// (Election.Voter).
	Voter   int
	Version int64
	Status  Status
	Counts  Counts
	Votes   []int64 // len = candidates of the unit; reused across calls
}

// Check validates m against every rule of CONTRACT §3 that needs no history
// and, when it passes, fills r. It appends one Violation per broken rule to
// dst (Index set to index) and returns the extended slice; an empty addition
// means m is valid. r.Votes is reused, so a caller checking many minutes in a
// loop allocates nothing for valid ones.
func (e *Election) Check(m *Minutes, index int, r *Resolved, dst []Violation) []Violation {
	n0 := len(dst)
	bad := func(field, rule, format string, args ...any) {
		dst = append(dst, Violation{Index: index, Field: field, Rule: rule, Message: fmt.Sprintf(format, args...)})
	}

	if m.Election != e.ID {
		if m.Election == "" {
			bad("election", RuleRequired, "election is missing")
		} else {
			bad("election", RuleUnknown, "election %q is not %q", m.Election, e.ID)
		}
	}
	c, okC := e.contestIdx[m.Contest]
	if !okC {
		if m.Contest == "" {
			bad("contest", RuleRequired, "contest is missing")
		} else {
			bad("contest", RuleUnknown, "contest %q does not exist", m.Contest)
		}
	}
	s, okS := e.stationIdx.find(e.Stations, m.Station)
	if !okS {
		if m.Station == "" {
			bad("station", RuleRequired, "station is missing")
		} else {
			bad("station", RuleUnknown, "station %q does not exist", m.Station)
		}
	}
	u, voter := -1, -1
	if okC && okS {
		if v, ok := e.Voter(c, s); ok {
			u, voter = int(e.Contests[c].voterUnit[v]), v
		}
		if u < 0 {
			bad("station", RuleNotVoting, "station %q does not vote in contest %q", m.Station, m.Contest)
		}
	}
	if m.Version < 1 {
		bad("version", RuleVersion, "version %d must be at least 1", m.Version)
	}
	switch m.Status {
	case Partial, Final, Withdrawn:
	default:
		bad("status", RuleStatus, "status must be partial, final or withdrawn")
	}

	counts := [6]int64{m.Counts.Registered, m.Counts.Voted, m.Counts.Issued, m.Counts.Received, m.Counts.Valid, m.Counts.Invalid}
	if m.Status == Withdrawn {
		for i, v := range counts {
			if m.Present&(1<<i) != 0 && v != 0 {
				bad(countFields[i], RuleWithdrawn, "withdrawn minutes carry no counts, got %s = %d", countFields[i], v)
			}
		}
		for _, v := range m.Votes {
			if v.Count != 0 {
				bad("votes."+v.Candidate, RuleWithdrawn, "withdrawn minutes carry no votes, got %d", v.Count)
			}
		}
	} else {
		// With a missing or unknown status the count rules still apply to
		// the counts given, so every broken rule is named at once.
		for i, v := range counts {
			switch {
			case m.Present&(1<<i) == 0:
				if m.Status != 0 {
					bad(countFields[i], RuleRequired, "%s is missing", countFields[i])
				}
			case v < 0:
				bad(countFields[i], RuleNonNegative, "%s = %d is negative", countFields[i], v)
			case v > MaxCount:
				bad(countFields[i], RuleRange, "%s = %d is above %d", countFields[i], v, int64(MaxCount))
			}
		}
		cn := m.Counts
		if m.Present&(HasVoted|HasRegistered) == HasVoted|HasRegistered && cn.Voted > cn.Registered {
			bad("voted", RuleVoted, "voted %d exceeds registered %d", cn.Voted, cn.Registered)
		}
		if m.Present&(HasIssued|HasRegistered) == HasIssued|HasRegistered && cn.Issued > cn.Registered {
			bad("issued", RuleIssued, "issued %d exceeds registered %d", cn.Issued, cn.Registered)
		}
		if m.Present&(HasReceived|HasIssued) == HasReceived|HasIssued && cn.Received > cn.Issued {
			bad("received", RuleReceived, "received %d exceeds issued %d", cn.Received, cn.Issued)
		}
		if m.Present&(HasValid|HasInvalid|HasReceived) == HasValid|HasInvalid|HasReceived && cn.Valid+cn.Invalid != cn.Received {
			bad("valid", RuleValidInvalid, "valid %d + invalid %d = %d, not received %d", cn.Valid, cn.Invalid, cn.Valid+cn.Invalid, cn.Received)
		}
	}

	// Votes: every key a candidate of the unit, each ≤ valid, sum ≤ valid × seats.
	if u >= 0 {
		unit := &e.Contests[c].Units[u]
		nc := len(unit.Candidates)
		if cap(r.Votes) < nc {
			r.Votes = make([]int64, nc)
		}
		r.Votes = r.Votes[:nc]
		clear(r.Votes)
		seen := uint64(0) // candidate bitmap for units of up to 64 candidates
		var seenMap map[int]bool
		var sum int64
		listed := 0
		for i, v := range m.Votes {
			// Minutes list the unit's candidates in the election file's
			// order, nearly always: try that before hashing.
			k, ok := i, i < nc && unit.Candidates[i].ID == v.Candidate
			if !ok {
				k, ok = unit.candByID[v.Candidate]
			}
			if !ok {
				bad("votes."+v.Candidate, RuleCandidate, "%q is not a candidate of unit %q", v.Candidate, unit.ID)
				continue
			}
			dup := false
			if k < 64 {
				dup = seen&(1<<k) != 0
				seen |= 1 << k
			} else {
				if seenMap == nil {
					seenMap = map[int]bool{}
				}
				dup = seenMap[k]
				seenMap[k] = true
			}
			if dup {
				bad("votes."+v.Candidate, RuleDuplicateVote, "candidate %q is listed twice", v.Candidate)
				continue
			}
			listed++
			if m.Status == Withdrawn {
				continue
			}
			switch {
			case v.Count < 0:
				bad("votes."+v.Candidate, RuleNonNegative, "votes for %q = %d is negative", v.Candidate, v.Count)
				continue
			case v.Count > MaxCount:
				bad("votes."+v.Candidate, RuleRange, "votes for %q = %d is above %d", v.Candidate, v.Count, int64(MaxCount))
				continue
			}
			if m.Present&HasValid != 0 && v.Count > m.Counts.Valid {
				bad("votes."+v.Candidate, RuleCandidateValid, "votes for %q = %d exceed valid ballots %d", v.Candidate, v.Count, m.Counts.Valid)
			}
			r.Votes[k] = v.Count
			sum += v.Count
		}
		if m.Status == Final && listed < nc {
			var missing []string
			for k, cand := range unit.Candidates {
				if k < 64 && seen&(1<<k) == 0 || k >= 64 && !seenMap[k] {
					missing = append(missing, cand.ID)
				}
			}
			bad("votes", RuleFinalComplete, "final minutes must list every candidate of unit %q; missing %s", unit.ID, strings.Join(missing, ", "))
		}
		if m.Status != Withdrawn && m.Present&HasValid != 0 && m.Counts.Valid >= 0 && sum > m.Counts.Valid*int64(unit.Seats) {
			bad("votes", RuleSumVotes, "candidates' votes total %d, above valid %d × seats %d = %d (a ballot keeps at most %d names)", sum, m.Counts.Valid, unit.Seats, m.Counts.Valid*int64(unit.Seats), unit.Seats)
		}
	} else {
		for _, v := range m.Votes {
			if v.Count < 0 {
				bad("votes."+v.Candidate, RuleNonNegative, "votes for %q = %d is negative", v.Candidate, v.Count)
			}
		}
	}

	if len(dst) > n0 {
		return dst
	}
	r.Contest, r.Station, r.Unit, r.Voter = c, s, u, voter
	r.Version, r.Status = m.Version, m.Status
	if m.Status == Withdrawn {
		r.Counts = Counts{}
		clear(r.Votes)
	} else {
		r.Counts = m.Counts
	}
	return dst
}
