package workload

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/tallyvn/tally/tally"
)

// PollsClose is when counting starts on election night (Art. 73). A
// Submission's At is measured from it.
const PollsClose = 19 * time.Hour

// Clock formats an offset from PollsClose as a time of day: "19:00",
// "23:14", "01:30" (the next morning).
func Clock(at time.Duration) string {
	t := (PollsClose + at) % (24 * time.Hour)
	if t < 0 {
		t += 24 * time.Hour
	}
	return fmt.Sprintf("%02d:%02d", int(t/time.Hour), int(t%time.Hour/time.Minute))
}

// Kind says what a submission is in a station's story, and so what the
// server should make of it.
type Kind uint8

// Kinds of submissions. Every kind but Invalid passes tally.Election.Check.
const (
	// Partial is progress while counting: status partial, version 1 or 2.
	Partial Kind = iota + 1
	// Final is the signed count minutes, the first final of its (contest,
	// station).
	Final
	// Correction is a final of a higher version, correcting a transcription
	// error of the previous final; its reason says so.
	Correction
	// Withdrawal withdraws the station's contribution: the electoral-unit
	// board ordered a recount. A Recount always follows.
	Withdrawal
	// Recount is the final after a withdrawal.
	Recount
	// Duplicate is a submission sent again with the same version and the
	// same content (a retry after a lost answer), soon after the first.
	Duplicate
	// Stale is a partial that arrives after a higher version: the server
	// must ignore it.
	Stale
	// Invalid breaks a rule of CONTRACT §3 (valid + invalid ≠ received, a
	// candidate of another unit, votes above valid ballots, voted above
	// registered, a final missing a candidate): the gateway answers 422.
	// It carries the version of the valid submission that follows it, as a
	// station re-sending corrected minutes would.
	Invalid

	numKinds = int(Invalid)
)

var kindNames = [...]string{"", "partial", "final", "correction", "withdrawal", "recount", "duplicate", "stale", "invalid"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && k > 0 {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// AllKinds lists every kind, in order.
func AllKinds() []Kind {
	out := make([]Kind, numKinds)
	for i := range out {
		out[i] = Kind(i + 1)
	}
	return out
}

// Reasons written in the minutes.
const (
	ReasonCorrection = "sửa số phiếu ứng cử viên sau kiểm lại"
	ReasonWithdrawn  = "Ban bầu cử yêu cầu kiểm phiếu lại"
	ReasonRecount    = "kết quả kiểm phiếu lại theo yêu cầu của Ban bầu cử"
)

// Submission is one minutes object of the night, as a station sends it.
type Submission struct {
	// At is the simulated time of sending, from PollsClose.
	At   time.Duration
	Kind Kind
	// Station and Contest index the election's Stations and Contests.
	Station, Contest int
	Minutes          tally.Minutes
}

// Default shares of NightConfig.
const (
	DefaultCorrection = 0.03
	DefaultWithdrawal = 0.005
	DefaultDuplicate  = 0.02
	DefaultStale      = 0.03
	DefaultInvalid    = 0.01
)

// NightConfig configures Night. Shares are per (contest, station): 0 means
// the default, a negative share none.
type NightConfig struct {
	// Seed fixes every draw: the same election and config give the same
	// submissions in the same order.
	Seed uint64
	// Stations keeps only the first Stations stations of the election
	// (0: all).
	Stations int
	// Correction is the share of finals later corrected by a higher
	// version.
	Correction float64
	// Withdrawal is the share of finals withdrawn and recounted.
	Withdrawal float64
	// Duplicate is the share of (contest, station) that send one
	// submission twice.
	Duplicate float64
	// Stale is the share of (contest, station) with partials whose partial
	// arrives late.
	Stale float64
	// Invalid is the share of (contest, station) that first send one
	// submission with a broken rule.
	Invalid float64
}

func (c *NightConfig) ensureDefaults() {
	for _, x := range []struct {
		p   *float64
		def float64
	}{
		{&c.Correction, DefaultCorrection}, {&c.Withdrawal, DefaultWithdrawal},
		{&c.Duplicate, DefaultDuplicate}, {&c.Stale, DefaultStale}, {&c.Invalid, DefaultInvalid},
	} {
		switch {
		case *x.p == 0:
			*x.p = x.def
		case *x.p < 0:
			*x.p = 0
		}
	}
}

func (c *NightConfig) validate() error {
	var errs []error
	for _, x := range []struct {
		name string
		v    float64
	}{{"correction", c.Correction}, {"withdrawal", c.Withdrawal}, {"duplicate", c.Duplicate}, {"stale", c.Stale}, {"invalid", c.Invalid}} {
		if x.v > 1 || math.IsNaN(x.v) {
			errs = append(errs, fmt.Errorf("workload: %s share %g above 1", x.name, x.v))
		}
	}
	if c.Correction+c.Withdrawal > 1 {
		errs = append(errs, fmt.Errorf("workload: correction and withdrawal shares add up to %g, above 1", c.Correction+c.Withdrawal))
	}
	if c.Stations < 0 {
		errs = append(errs, fmt.Errorf("workload: stations %d is negative", c.Stations))
	}
	return errors.Join(errs...)
}

// Night plays election night for e: for each station and each contest it
// votes in, 0 to 2 partials from about 19:15 to 22:00, then the final,
// mostly between 20:30 and 02:00, and, for a share of them, a correction, a
// withdrawal and recount, a duplicate, a late (stale) partial or an invalid
// attempt (see Kind). It calls emit once per submission, in order of
// simulated time, and stops at the first error emit returns.
//
// The figures are plausible and follow every rule: turnout about 99.6%, a
// few invalid ballots, each candidate's votes at most the valid ballots,
// their sum at most valid × seats; in every unit some candidates clearly
// pass half of the valid ballots, and now and then the last seat is in
// doubt. A unit's candidates have the same standing at every station, so
// unit results are coherent.
//
// Night streams: it keeps one small record per (contest, station), never
// the submissions, so memory is O(stations) however long the night. The
// *Submission passed to emit, and its Minutes.Votes, are reused once emit
// returns: copy or encode what you keep.
func Night(e *tally.Election, cfg NightConfig, emit func(*Submission) error) error {
	if e == nil {
		return errors.New("workload: no election")
	}
	cfg.ensureDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	n := newNight(e, cfg)
	ns := len(e.Stations)
	if cfg.Stations > 0 {
		ns = min(ns, cfg.Stations)
	}
	votes := 0
	for c := range e.Contests {
		votes += len(e.Voters(c))
	}
	h := make(pendingHeap, 0, votes)
	var contests []int
	for s := range ns {
		sd := n.station(s)
		contests = e.StationContests(s, contests[:0])
		for _, c := range contests {
			steps := n.plan(s, c, &sd)
			h = append(h, pending{at: steps[0].at, station: int32(s), contest: int32(c)})
		}
	}
	h.init()
	var sub Submission
	for len(h) > 0 {
		top := h[0]
		s, c := int(top.station), int(top.contest)
		sd := n.station(s)
		steps := n.plan(s, c, &sd)
		st := &steps[top.step]
		n.fill(&sub, s, c, st, &sd)
		if err := emit(&sub); err != nil {
			return err
		}
		if next := top.step + 1; int(next) < len(steps) {
			h[0].at, h[0].step = steps[next].at, next
			h.down(0)
		} else {
			h.pop()
		}
	}
	return nil
}

// What a step's minutes hold.
type content uint8

const (
	contentPartial    content = iota // a share of the true votes
	contentFinal                     // the true count
	contentFinalWrong                // a transcription error, corrected or recounted later
	contentCorrected                 // the true count, ReasonCorrection
	contentWithdrawn                 // no counts, ReasonWithdrawn
	contentRecounted                 // the true count, ReasonRecount
)

// Ways an Invalid submission breaks the rules; the last only for finals.
const (
	breakSum        = iota // valid + invalid ≠ received
	breakStranger          // a candidate of another unit
	breakAboveValid        // a candidate's votes above valid ballots
	breakVoted             // voted above registered
	breakMissing           // a final missing a candidate
	numBreaks
)

// step is one submission of a (contest, station) plan.
type step struct {
	at       time.Duration
	order    int32 // ties on at keep this order
	kind     Kind
	content  content
	breakage uint8
	version  int64
	frac     float64 // partial: the share of the count done
}

// stationDraw is what a station's stream decides for all its contests.
type stationDraw struct {
	registered, voted int64
	base              time.Duration // when its first contest's final is sent
}

// night holds Night's scratch state; every stream is re-seeded in place.
type night struct {
	e   *tally.Election
	cfg NightConfig

	rs, rp, rc, ru, rw, rb *stream

	steps []step
	pop   []float64 // candidates' standing in a unit
	truth []int64   // a (contest, station)'s true votes
}

func newNight(e *tally.Election, cfg NightConfig) *night {
	return &night{e: e, cfg: cfg,
		rs: newStream(), rp: newStream(), rc: newStream(), ru: newStream(), rw: newStream(), rb: newStream(),
		steps: make([]step, 0, 8),
	}
}

// station draws station s's day: voters added to the list, turnout, and
// how long its polling group takes to count.
func (n *night) station(s int) stationDraw {
	r := n.rs.reset(n.cfg.Seed, tagStation, uint64(s), 0)
	reg := n.e.Stations[s].Registered
	if r.Float64() < 0.03 {
		reg += 1 + r.Int64N(5) // voters added to the list on the day
	}
	absent := int64(0)
	if r.Float64() < 0.65 {
		absent = int64(math.Round(float64(reg) * r.between(0, 0.012)))
	}
	sd := stationDraw{registered: reg, voted: reg - absent}
	minutes := 80 + r.triangular(0, 90, 270) + 45*float64(reg-815)/4000
	if r.Float64() < 0.04 {
		minutes += r.between(60, 240) // a dispute, a power cut, a second count
	}
	sd.base = time.Duration(max(40, minutes) * float64(time.Minute)).Round(time.Millisecond)
	return sd
}

// plan lays out the submissions of (contest c, station s), sorted by time.
// It is a pure function of the seed, s and c, so Night recomputes it
// rather than keeping it. The result aliases n.steps.
func (n *night) plan(s, c int, sd *stationDraw) []step {
	r := n.rp.reset(n.cfg.Seed, tagPlan, uint64(s), uint64(c))
	steps := n.steps[:0]
	seq := int32(0)
	add := func(st step) {
		st.order = seq
		seq += 4
		steps = append(steps, st)
	}
	// Contests are counted one after the other.
	final := sd.base + time.Duration(c)*r.duration(8*time.Minute, 25*time.Minute) + r.duration(0, 10*time.Minute)

	partials := 0
	switch u := r.Float64(); {
	case u < 0.3:
	case u < 0.7:
		partials = 1
	default:
		partials = 2
	}
	lo, hi := 15*time.Minute, min(3*time.Hour, final-5*time.Minute)
	if hi-lo < time.Minute {
		partials = 0
	}
	var at [2]time.Duration
	var frac [2]float64
	for i := range partials {
		at[i], frac[i] = r.duration(lo, hi), r.between(0.1, 0.9)
	}
	if partials == 2 {
		if at[1] < at[0] {
			at[0], at[1] = at[1], at[0]
		}
		if frac[1] < frac[0] {
			frac[0], frac[1] = frac[1], frac[0]
		}
	}
	version := int64(1)
	for i := range partials {
		add(step{at: at[i], kind: Partial, content: contentPartial, version: version, frac: frac[i]})
		version++
	}
	switch u := r.Float64(); {
	case u < n.cfg.Correction:
		add(step{at: final, kind: Final, content: contentFinalWrong, version: version})
		add(step{at: final + r.duration(10*time.Minute, 2*time.Hour), kind: Correction, content: contentCorrected, version: version + 1})
	case u < n.cfg.Correction+n.cfg.Withdrawal:
		add(step{at: final, kind: Final, content: contentFinalWrong, version: version})
		w := final + r.duration(15*time.Minute, 90*time.Minute)
		add(step{at: w, kind: Withdrawal, content: contentWithdrawn, version: version + 1})
		add(step{at: w + r.duration(20*time.Minute, 2*time.Hour), kind: Recount, content: contentRecounted, version: version + 2})
	default:
		add(step{at: final, kind: Final, content: contentFinal, version: version})
	}

	// A partial delayed on the way arrives after the next version.
	if r.Float64() < n.cfg.Stale && partials > 0 {
		i := r.IntN(partials)
		steps[i].kind = Stale
		steps[i].at = steps[i+1].at + r.duration(time.Second, 5*time.Minute)
	}
	sortSteps(steps)

	// A submission sent twice, before anything else is sent.
	if r.Float64() < n.cfg.Duplicate {
		var pick [8]int
		k := 0
		for i := range steps {
			if steps[i].kind != Stale {
				pick[k] = i
				k++
			}
		}
		j := pick[r.IntN(k)]
		gap := 10 * time.Minute
		if j+1 < len(steps) {
			gap = steps[j+1].at - steps[j].at
		}
		d := steps[j]
		d.kind = Duplicate
		d.at += min(r.duration(time.Second, time.Minute), gap/2)
		d.order++
		steps = append(steps, d)
		sortSteps(steps)
	}

	// A broken submission, just before the valid one of the same version.
	if r.Float64() < n.cfg.Invalid {
		var pick [8]int
		k := 0
		for i := range steps {
			switch steps[i].kind {
			case Partial, Final, Correction, Recount:
				pick[k] = i
				k++
			}
		}
		j := pick[r.IntN(k)]
		prev := time.Duration(0)
		if j > 0 {
			prev = steps[j-1].at
		}
		x := steps[j]
		x.kind = Invalid
		x.at -= min(r.duration(time.Second, 90*time.Second), (x.at-prev)/2)
		x.order--
		if x.content == contentPartial {
			x.breakage = uint8(r.IntN(numBreaks - 1))
		} else {
			x.breakage = uint8(r.IntN(numBreaks))
		}
		steps = append(steps, x)
		sortSteps(steps)
	}
	n.steps = steps
	return steps
}

func sortSteps(steps []step) {
	for i := 1; i < len(steps); i++ {
		for j := i; j > 0 && (steps[j].at < steps[j-1].at || steps[j].at == steps[j-1].at && steps[j].order < steps[j-1].order); j-- {
			steps[j], steps[j-1] = steps[j-1], steps[j]
		}
	}
}

// fill writes step st of (contest c, station s) into sub.
func (n *night) fill(sub *Submission, s, c int, st *step, sd *stationDraw) {
	e := n.e
	sub.At, sub.Kind, sub.Station, sub.Contest = st.at, st.kind, s, c
	m := &sub.Minutes
	*m = tally.Minutes{
		Election: e.ID,
		Contest:  e.Contests[c].ID,
		Station:  e.Stations[s].ID,
		Version:  st.version,
		Votes:    m.Votes[:0],
	}
	if st.content == contentWithdrawn {
		m.Status = tally.Withdrawn
		m.Reason = ReasonWithdrawn
		return
	}
	u := e.StationUnit(c, s)
	unit := &e.Contests[c].Units[u]
	m.Counts = n.counts(s, c, u, sd)
	m.Present = tally.HasAllCounts
	v := n.truth
	m.Status = tally.Final
	switch st.content {
	case contentPartial:
		m.Status = tally.Partial
		for k := range v {
			v[k] = int64(float64(v[k]) * st.frac)
		}
	case contentFinalWrong:
		n.wrong(s, c, v)
	case contentCorrected:
		m.Reason = ReasonCorrection
	case contentRecounted:
		m.Reason = ReasonRecount
	}
	for k, cand := range unit.Candidates {
		if st.content == contentPartial && v[k] == 0 {
			continue // a partial may leave out a candidate not yet counted
		}
		m.Votes = append(m.Votes, tally.Vote{Candidate: cand.ID, Count: v[k]})
	}
	if st.kind == Invalid {
		n.breakRule(m, s, c, u, st.breakage)
	}
}

// counts draws the true count of (contest c, station s) in unit u: the
// ballot counts it returns, the candidates' votes into n.truth.
func (n *night) counts(s, c, u int, sd *stationDraw) tally.Counts {
	r := n.rc.reset(n.cfg.Seed, tagCounts, uint64(s), uint64(c))
	voted := sd.voted
	if voted > 0 && r.Float64() < 0.05 {
		voted-- // a voter who did not take this ballot
	}
	received := voted
	if received > 0 && r.Float64() < 0.05 {
		received-- // a ballot not put in the box
	}
	invalid := int64(math.Round(float64(received) * r.between(0, 0.02)))
	cn := tally.Counts{Registered: sd.registered, Voted: voted, Issued: voted, Received: received, Valid: received - invalid, Invalid: invalid}

	unit := &n.e.Contests[c].Units[u]
	pop := n.standing(c, u)
	if cap(n.truth) < len(pop) {
		n.truth = make([]int64, len(pop))
	}
	v := n.truth[:len(pop)]
	var sum int64
	for k, p := range pop {
		x := min(1, max(0, p*(1+0.06*r.NormFloat64())))
		v[k] = int64(math.Round(float64(cn.Valid) * x))
		sum += v[k]
	}
	// A valid ballot keeps at most seats names.
	if limit := cn.Valid * int64(unit.Seats); sum > limit {
		for k := range v {
			v[k] = v[k] * limit / sum
		}
	}
	n.truth = v
	return cn
}

// standing returns the share of valid ballots that keep each candidate of
// unit u of contest c, the same at every station of the unit: about seats
// strong candidates well above half, the others below; now and then the
// last seat is in doubt. The shares add up to at most 0.98 × seats.
func (n *night) standing(c, u int) []float64 {
	r := n.ru.reset(n.cfg.Seed, tagUnit, uint64(c), uint64(u))
	unit := &n.e.Contests[c].Units[u]
	nc, seats := len(unit.Candidates), unit.Seats
	if cap(n.pop) < nc {
		n.pop = make([]float64, nc)
	}
	p := n.pop[:nc]
	var sum float64
	for k := range p {
		if k < seats {
			p[k] = r.between(0.55, 0.97)
		} else {
			p[k] = r.between(0.1, 0.5)
		}
	}
	if seats <= nc && r.Float64() < 0.05 {
		p[seats-1] = r.between(0.40, 0.53)
	}
	for _, x := range p {
		sum += x
	}
	if limit := 0.98 * float64(seats); sum > limit {
		for k := range p {
			p[k] *= limit / sum
		}
	}
	r.Shuffle(nc, func(i, j int) { p[i], p[j] = p[j], p[i] })
	n.pop = p
	return p
}

// wrong puts a transcription error into votes: two candidates' counts
// swapped, or one count a vote short. The result still passes every rule.
func (n *night) wrong(s, c int, v []int64) {
	r := n.rw.reset(n.cfg.Seed, tagWrong, uint64(s), uint64(c))
	i := r.IntN(len(v))
	j := (i + 1 + r.IntN(len(v)-1)) % len(v)
	switch {
	case v[i] != v[j]:
		v[i], v[j] = v[j], v[i]
	case v[i] > 0:
		v[i]--
	}
}

// breakRule makes m break one rule of CONTRACT §3.
func (n *night) breakRule(m *tally.Minutes, s, c, u int, how uint8) {
	r := n.rb.reset(n.cfg.Seed, tagBreak, uint64(s), uint64(c))
	unit := &n.e.Contests[c].Units[u]
	switch how {
	case breakSum:
		m.Counts.Invalid += 1 + r.Int64N(3)
	case breakStranger:
		m.Votes = append(m.Votes, tally.Vote{Candidate: n.stranger(c, u), Count: r.Int64N(m.Counts.Valid + 1)})
	case breakAboveValid:
		if len(m.Votes) == 0 {
			m.Votes = append(m.Votes, tally.Vote{Candidate: unit.Candidates[0].ID})
		}
		m.Votes[r.IntN(len(m.Votes))].Count = m.Counts.Valid + 1 + r.Int64N(10)
	case breakVoted:
		m.Counts.Voted = m.Counts.Registered + 1 + r.Int64N(5)
	case breakMissing:
		i := r.IntN(len(m.Votes))
		m.Votes = slices.Delete(m.Votes, i, i+1)
	}
}

// stranger returns a candidate id that is not of unit u: a candidate of
// the next unit of the contest, or a made-up id when the contest has one
// unit.
func (n *night) stranger(c, u int) string {
	units := n.e.Contests[c].Units
	if len(units) > 1 {
		return units[(u+1)%len(units)].Candidates[0].ID
	}
	for i := len(units[u].Candidates) + 1; ; i++ {
		id := units[u].ID + "-" + strconv.Itoa(i)
		if _, ok := n.e.CandidateIndex(c, u, id); !ok {
			return id
		}
	}
}

// pending is the next submission of one (contest, station).
type pending struct {
	at      time.Duration
	station int32
	contest int32
	step    int32
}

func (a *pending) less(b *pending) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	if a.station != b.station {
		return a.station < b.station
	}
	return a.contest < b.contest
}

// pendingHeap is a min-heap on (at, station, contest): the merge of every
// (contest, station)'s plan into one stream ordered by time.
type pendingHeap []pending

func (h pendingHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h pendingHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r].less(&h[l]) {
			m = r
		}
		if !h[m].less(&h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func (h *pendingHeap) pop() {
	old := *h
	last := len(old) - 1
	old[0] = old[last]
	*h = old[:last]
	h.down(0)
}
