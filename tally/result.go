package tally

import "sort"

// UnitStatus is the state of an electoral unit's result (CONTRACT §4).
type UnitStatus string

// Unit statuses.
const (
	Counting           UnitStatus = "counting"            // đang kiểm phiếu: not every station is final
	Decided            UnitStatus = "decided"             // đã xác định người trúng cử
	ReElection         UnitStatus = "re_election"         // bầu cử lại: turnout not above half (Art. 80)
	AdditionalElection UnitStatus = "additional_election" // bầu thêm (Art. 79)
	Tie                UnitStatus = "tie"                 // equal votes and birth dates at the last seat: a person decides
)

// UnitsSummary counts the units of a contest whose listed stations all lie
// in an area, by status, with their seats and winners (CONTRACT §4 v2).
type UnitsSummary struct {
	Total              int   `json:"total"`
	Counting           int   `json:"counting"`
	Decided            int   `json:"decided"`
	Tie                int   `json:"tie"`
	AdditionalElection int   `json:"additional_election"`
	ReElection         int   `json:"re_election"`
	Seats              int   `json:"seats"`
	Winners            int64 `json:"winners"`
}

// UnitResult is the result of an electoral unit (CONTRACT §4).
type UnitResult struct {
	Contest           string            `json:"contest"`
	Unit              string            `json:"unit"`
	Level             string            `json:"level"` // always "unit"
	Name              string            `json:"name"`
	StationsExpected  int               `json:"stations_expected"`
	StationsReporting int64             `json:"stations_reporting"`
	StationsFinal     int64             `json:"stations_final"`
	Registered        int64             `json:"registered"`
	Voted             int64             `json:"voted"`
	Issued            int64             `json:"issued"`
	Received          int64             `json:"received"`
	Valid             int64             `json:"valid"`
	Invalid           int64             `json:"invalid"`
	Votes             map[string]int64  `json:"votes"`
	Seats             int               `json:"seats"`
	Candidates        []CandidateResult `json:"candidates"`
	Winners           []string          `json:"winners"`
	Status            UnitStatus        `json:"status"`
	Round             Round             `json:"round"`
	// Council is the area whose People's Council the unit elects (given or
	// inferred); absent in a national contest.
	Council    string `json:"council,omitempty"`
	AppliedSeq uint64 `json:"applied_seq"`
	// AppliedPositions: with partitions (CONTRACT §6 v2), every
	// partition's position, AppliedSeq being their sum; nil without.
	AppliedPositions map[int]uint64 `json:"applied_positions,omitempty"`
}

// CandidateResult is one candidate of a unit result, in rank order.
type CandidateResult struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Born  string `json:"born"`
	Votes int64  `json:"votes"`
}

// Decision is what the unit result rules make of a unit's totals.
type Decision struct {
	// Ranking holds candidate positions within the unit, ranked by votes
	// descending, then born ascending (older first), then id ascending.
	Ranking []int
	// Winners holds candidate positions in rank order; provisional while
	// Status is Counting.
	Winners []int
	Status  UnitStatus
}

// Decide applies the unit result rules of CONTRACT §4 (Art. 78–80) to unit u
// of contest c, given the number of final stations, the unit's summed counts
// and its candidates' votes (dense, len = candidates of the unit). The
// unit's stations_outside count as expected and never final, and its round
// changes the rules (Art. 79(3), 80(3)).
func (e *Election) Decide(c, u int, final int, counts Counts, votes []int64) Decision {
	contest := &e.Contests[c]
	unit := &contest.Units[u]
	return decide(contest.Level, unit, e.UnitExpected(c, u), final, counts, votes)
}

func decide(level ContestLevel, unit *Unit, expected, final int, counts Counts, votes []int64) Decision {
	cands := unit.Candidates
	rank := make([]int, len(cands))
	for i := range rank {
		rank[i] = i
	}
	sort.SliceStable(rank, func(i, j int) bool {
		a, b := rank[i], rank[j]
		if votes[a] != votes[b] {
			return votes[a] > votes[b]
		}
		if cands[a].Born != cands[b].Born {
			return cands[a].Born < cands[b].Born
		}
		return cands[a].ID < cands[b].ID
	})

	passes := func(k int) bool { return votes[k]*2 > counts.Valid }
	sameRank := func(a, b int) bool { return votes[a] == votes[b] && cands[a].Born == cands[b].Born }

	seats := unit.Seats
	d := Decision{Ranking: rank, Winners: []int{}}
	tie := false
	for i, k := range rank {
		if i >= seats || !passes(k) {
			break
		}
		d.Winners = append(d.Winners, k)
	}
	// A tie at the last seat: positions seats and seats+1 both pass and are
	// indistinguishable. Winners keeps only those ranked above the tied group.
	if len(d.Winners) == seats && seats < len(rank) {
		last, next := rank[seats-1], rank[seats]
		if passes(next) && sameRank(last, next) {
			tie = true
			w := d.Winners[:0]
			for _, k := range d.Winners {
				if !sameRank(k, last) {
					w = append(w, k)
				}
			}
			d.Winners = w
		}
	}

	switch {
	case final < expected:
		d.Status = Counting
	case unit.Round != ReVote && counts.Voted*2 <= counts.Registered:
		// Art. 80(3): a re-election stands whatever the turnout.
		d.Status = ReElection
		d.Winners = []int{}
	case tie:
		d.Status = Tie
	case unit.Round == Additional:
		// Art. 79(3): no second additional election; seats still short
		// stay empty.
		d.Status = Decided
	case level == National && len(d.Winners) < seats,
		level != National && 3*len(d.Winners) < 2*seats:
		d.Status = AdditionalElection
	default:
		d.Status = Decided
	}
	return d
}
