package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// What a district official needs beside the results, read from what exists
// (the projections' station records, the rejections, the gateway refusals
// and the time JetStream stored each message): when each station's minutes
// arrived, which stations have not reported or are not final, the warnings
// worth a look, and the shares over final minutes only. Nothing here
// changes a result; every answer names the applied_seq it reflects.

// maxReportStations bounds the stations of one area report: a province of a
// national election has thousands; the report is for districts and wards.
const maxReportStations = 5000

// Warning codes of the area report, after Abacus' W. codes.
const (
	// WarnTurnout: voters who voted ≥ voters on the list (turnout ≥ 100%).
	WarnTurnout = "W1"
	// WarnInvalid: the station's invalid-ballot share is well above its
	// area's: more than twice the area's and at least 2 points above it,
	// with at least 20 ballots received.
	WarnInvalid = "W2"
	// WarnRegistered: the minutes' voters on the list differ from the
	// election file (voters added on the day, or a typing error).
	WarnRegistered = "W3"
	// WarnWithdrawals: the station withdrew its minutes twice or more.
	WarnWithdrawals = "W4"
	// WarnRefused: the gateway refused minutes of the station (422).
	WarnRefused = "W5"
	// WarnRejected: the fold rejected minutes of the station (a conflict,
	// a seal, a subject).
	WarnRejected = "W6"
)

// TimedHistoryEntry is a station history entry with the time JetStream
// stored its message (absent when the stream cannot be read).
type TimedHistoryEntry struct {
	projections.HistoryEntry
	Time *time.Time `json:"time,omitempty"`
}

// TimedStationView is GET /api/v1/contests/{c}/stations/{s}: the station
// view of CONTRACT §5 with a time on each history entry.
type TimedStationView struct {
	Current    json.RawMessage     `json:"current"`
	History    []TimedHistoryEntry `json:"history"`
	AppliedSeq uint64              `json:"applied_seq"`
	// Partition: with partitions, the station's; its history's seq are
	// positions in that partition's stream. Absent without partitions.
	Partition *int `json:"partition,omitempty"`
}

// msgTimes remembers when the stream stored each message: a sequence's time
// never changes, so the cache is never stale, only bounded.
type msgTimes struct {
	mu sync.Mutex
	m  map[timeKey]time.Time
}

// timeKey is a message: its partition and its sequence there.
type timeKey struct {
	p   int
	seq uint64
}

const maxCachedTimes = 1 << 20

// msgTime returns when partition p's stream stored message seq, or false
// if the stream cannot say (an external server whose configuration
// predates the aggregator's right to read messages).
func (s *Server) msgTime(ctx context.Context, p int, seq uint64) (time.Time, bool) {
	key := timeKey{p, seq}
	s.times.mu.Lock()
	t, ok := s.times.m[key]
	s.times.mu.Unlock()
	if ok {
		return t, true
	}
	msg, err := s.streams[p].GetMsg(ctx, seq)
	if err != nil {
		s.cfg.Logger.Debug("message time", "seq", seq, "err", err)
		return time.Time{}, false
	}
	t = msg.Time.UTC()
	s.times.mu.Lock()
	if s.times.m == nil || len(s.times.m) >= maxCachedTimes {
		s.times.m = make(map[timeKey]time.Time)
	}
	s.times.m[key] = t
	s.times.mu.Unlock()
	return t, true
}

// timedStation adds the times of its history to a station view of
// partition p.
func (s *Server) timedStation(ctx context.Context, p int, v *projections.StationView) *TimedStationView {
	out := &TimedStationView{Current: v.Current, AppliedSeq: v.AppliedSeq, History: make([]TimedHistoryEntry, len(v.History))}
	if s.parts.N() > 1 {
		out.Partition = &p
	}
	for i, h := range v.History {
		out.History[i].HistoryEntry = h
		if t, ok := s.msgTime(ctx, p, h.Seq); ok {
			out.History[i].Time = &t
		}
	}
	return out
}

// stationMinutes is what the reports read of a station's current minutes.
type stationMinutes struct {
	Status     string           `json:"status"`
	Version    int64            `json:"version"`
	Registered int64            `json:"registered"`
	Voted      int64            `json:"voted"`
	Received   int64            `json:"received"`
	Valid      int64            `json:"valid"`
	Invalid    int64            `json:"invalid"`
	Votes      map[string]int64 `json:"votes"`
}

// StationReport is one station of an area report.
type StationReport struct {
	Station string `json:"station"`
	// Status of the current minutes: partial, final, withdrawn, or ""
	// before any.
	Status  string `json:"status"`
	Version int64  `json:"version,omitempty"`
	// LastTime is when the station's last minutes arrived, whatever the
	// fold made of them; ReportedTime when its first counted (partial or
	// final) minutes were applied; FinalTime when its current final
	// minutes were applied.
	LastTime     *time.Time `json:"last_time,omitempty"`
	ReportedTime *time.Time `json:"reported_time,omitempty"`
	FinalTime    *time.Time `json:"final_time,omitempty"`
	Registered   int64      `json:"registered"` // of the current counted minutes
	Voted        int64      `json:"voted"`
	Received     int64      `json:"received"`
	Valid        int64      `json:"valid"`
	Invalid      int64      `json:"invalid"`
	Withdrawals  int        `json:"withdrawals"`
	Rejected     int        `json:"rejected"` // by the fold
	Refused      int        `json:"refused"`  // by the gateway
}

// ReportWarning is one warning of an area report.
type ReportWarning struct {
	Code    string `json:"code"`
	Station string `json:"station"`
	// Value and Limit are the figures compared (percentages for W1 and W2,
	// voters for W3, counts for W4 to W6).
	Value   float64 `json:"value"`
	Limit   float64 `json:"limit"`
	Message string  `json:"message"`
}

// FinalShares sums the final minutes only: the figures mid-count shares and
// provisional winners are computed over on the dashboard (partial minutes
// carry the full valid count but only part of the votes).
type FinalShares struct {
	Stations int              `json:"stations_final"`
	Valid    int64            `json:"valid"`
	Votes    map[string]int64 `json:"votes"`
}

// AreaReport is GET /api/v1/contests/{contest}/areas/{area}/report.
type AreaReport struct {
	Contest    string          `json:"contest"`
	Area       string          `json:"area"`
	Stations   []StationReport `json:"stations"`
	Warnings   []ReportWarning `json:"warnings"`
	Final      FinalShares     `json:"final"`
	AppliedSeq uint64          `json:"applied_seq"`
}

// UnitFinal is GET /api/v1/contests/{contest}/units/{unit}/final.
type UnitFinal struct {
	Contest string `json:"contest"`
	Unit    string `json:"unit"`
	FinalShares
	StationsPartial int    `json:"stations_partial"`
	AppliedSeq      uint64 `json:"applied_seq"`
}

// reportCache keeps the last report of each area and unit: recomputed only
// when the fold or the refusal log moved.
type reportCache struct {
	mu sync.Mutex
	m  map[string]cachedReport
}

type cachedReport struct {
	seq, refused uint64
	v            any
}

func (s *Server) cached(key string, seq, refused uint64, build func() (any, error)) (any, error) {
	s.reports.mu.Lock()
	c, ok := s.reports.m[key]
	s.reports.mu.Unlock()
	if ok && c.seq == seq && c.refused == refused {
		return c.v, nil
	}
	v, err := build()
	if err != nil {
		return nil, err
	}
	s.reports.mu.Lock()
	if s.reports.m == nil || len(s.reports.m) > 4096 {
		s.reports.m = make(map[string]cachedReport)
	}
	s.reports.m[key] = cachedReport{seq: seq, refused: refused, v: v}
	s.reports.mu.Unlock()
	return v, nil
}

func (s *Server) handleAreaReport(w http.ResponseWriter, r *http.Request) {
	if s.withheld(w) {
		return
	}
	contest, area := r.PathValue("contest"), r.PathValue("area")
	c, ok := s.e.ContestIndex(contest)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%v %q", tally.ErrUnknownContest, contest))
		return
	}
	a, ok := s.e.AreaIndex(area)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%v %q", tally.ErrUnknownArea, area))
		return
	}
	if n := s.e.Expected(c, a); n > maxReportStations {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("area %q has %d stations voting in %q; a report covers at most %d: ask for an area below it", area, n, contest, maxReportStations))
		return
	}
	meta, err := s.parts.Meta()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	v, err := s.cached("a|"+contest+"|"+area, meta.Checkpoint, s.refusals.Count(), func() (any, error) {
		return s.areaReport(r.Context(), c, a)
	})
	s.writeResult(w, v, err)
}

func (s *Server) handleUnitFinal(w http.ResponseWriter, r *http.Request) {
	if s.withheld(w) {
		return
	}
	contest, unit := r.PathValue("contest"), r.PathValue("unit")
	c, ok := s.e.ContestIndex(contest)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%v %q", tally.ErrUnknownContest, contest))
		return
	}
	uc, u, ok := s.e.UnitIndex(unit)
	if !ok || uc != c {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%v %q in contest %q", tally.ErrUnknownUnit, unit, contest))
		return
	}
	meta, err := s.parts.Meta()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	v, err := s.cached("u|"+unit, meta.Checkpoint, 0, func() (any, error) {
		out := &UnitFinal{Contest: contest, Unit: unit, FinalShares: FinalShares{Votes: map[string]int64{}}, AppliedSeq: meta.Checkpoint}
		for _, cand := range s.e.Contests[c].Units[u].Candidates {
			out.Votes[cand.ID] = 0
		}
		for _, st := range s.e.UnitStations(c, u) {
			view, err := s.parts.Station(contest, s.e.Stations[st].ID)
			if err != nil {
				return nil, err
			}
			var m stationMinutes
			if string(view.Current) != "null" {
				if err := json.Unmarshal(view.Current, &m); err != nil {
					return nil, fmt.Errorf("station %s: current minutes: %w", s.e.Stations[st].ID, err)
				}
			}
			switch m.Status {
			case "final":
				out.add(&m)
			case "partial":
				out.StationsPartial++
			}
		}
		return out, nil
	})
	s.writeResult(w, v, err)
}

func (f *FinalShares) add(m *stationMinutes) {
	f.Stations++
	f.Valid += m.Valid
	for id, n := range m.Votes {
		f.Votes[id] += n
	}
}

// areaReport reads every station of area a voting in contest c.
func (s *Server) areaReport(ctx context.Context, c, a int) (*AreaReport, error) {
	e := s.e
	contest := e.Contests[c].ID
	meta, err := s.parts.Meta()
	if err != nil {
		return nil, err
	}
	rep := &AreaReport{Contest: contest, Area: e.Areas[a].ID, Stations: []StationReport{}, Warnings: []ReportWarning{},
		Final: FinalShares{Votes: map[string]int64{}}, AppliedSeq: meta.Checkpoint}
	refused := map[string]int{}
	gw, err := s.refusals.list("")
	if err != nil {
		return nil, err
	}
	for _, r := range gw {
		if r.Contest == contest || r.Contest == "" {
			refused[r.Station]++
		}
	}
	rejected := map[string]int{}
	fold, err := s.parts.Rejections("")
	if err != nil {
		return nil, err
	}
	for _, r := range fold {
		if r.Contest == contest {
			rejected[r.Station]++
		}
	}
	var received, invalid int64
	for st := range e.Stations {
		if !s.inArea(c, st, a) {
			continue
		}
		id := e.Stations[st].ID
		view, err := s.parts.Station(contest, id)
		if err != nil {
			return nil, err
		}
		sr := StationReport{Station: id, Refused: refused[id], Rejected: rejected[id]}
		var m stationMinutes
		if string(view.Current) != "null" {
			if err := json.Unmarshal(view.Current, &m); err != nil {
				return nil, fmt.Errorf("station %s: current minutes: %w", id, err)
			}
			sr.Status, sr.Version = m.Status, m.Version
		}
		for _, h := range view.History {
			t, ok := s.msgTime(ctx, s.parts.StationPartition(st), h.Seq)
			if ok {
				sr.LastTime = &t
			}
			if h.Outcome != projections.Applied.String() {
				continue
			}
			switch h.Status {
			case "withdrawn":
				sr.Withdrawals++
			case "partial", "final":
				if sr.ReportedTime == nil && ok {
					sr.ReportedTime = &t
				}
			}
			if h.Status == "final" && ok {
				sr.FinalTime = &t
			} else {
				sr.FinalTime = nil
			}
		}
		if m.Status == "partial" || m.Status == "final" {
			sr.Registered, sr.Voted, sr.Received, sr.Valid, sr.Invalid = m.Registered, m.Voted, m.Received, m.Valid, m.Invalid
			received += m.Received
			invalid += m.Invalid
		} else {
			sr.ReportedTime = nil // withdrawn: not reporting now
		}
		if m.Status == "final" {
			rep.Final.add(&m)
		}
		rep.Stations = append(rep.Stations, sr)
	}
	for k := range rep.Stations {
		rep.Warnings = appendWarnings(rep.Warnings, e, &rep.Stations[k], received, invalid)
	}
	sort.SliceStable(rep.Warnings, func(i, j int) bool { return rep.Warnings[i].Code < rep.Warnings[j].Code })
	return rep, nil
}

// inArea reports whether station st votes in contest c and lies in area a.
func (s *Server) inArea(c, st, a int) bool {
	if s.e.StationUnit(c, st) < 0 {
		return false
	}
	for _, x := range s.e.StationAreas(st) {
		if x == a {
			return true
		}
	}
	return false
}

func appendWarnings(dst []ReportWarning, e *tally.Election, sr *StationReport, areaReceived, areaInvalid int64) []ReportWarning {
	counted := sr.Status == "partial" || sr.Status == "final"
	if counted && sr.Registered > 0 && sr.Voted >= sr.Registered {
		dst = append(dst, ReportWarning{Code: WarnTurnout, Station: sr.Station,
			Value: pct(sr.Voted, sr.Registered), Limit: 100,
			Message: fmt.Sprintf("turnout %.2f%%: %d voted of %d on the list", pct(sr.Voted, sr.Registered), sr.Voted, sr.Registered)})
	}
	if counted && sr.Received >= 20 && areaReceived > 0 {
		share, area := pct(sr.Invalid, sr.Received), pct(areaInvalid, areaReceived)
		if share > 2*area && share-area >= 2 {
			dst = append(dst, ReportWarning{Code: WarnInvalid, Station: sr.Station, Value: share, Limit: area,
				Message: fmt.Sprintf("invalid ballots %.2f%% of those received, the area %.2f%%", share, area)})
		}
	}
	if st, ok := e.StationIndex(sr.Station); ok && counted && sr.Registered != e.Stations[st].Registered {
		dst = append(dst, ReportWarning{Code: WarnRegistered, Station: sr.Station,
			Value: float64(sr.Registered), Limit: float64(e.Stations[st].Registered),
			Message: fmt.Sprintf("the minutes list %d voters, the election file %d", sr.Registered, e.Stations[st].Registered)})
	}
	if sr.Withdrawals >= 2 {
		dst = append(dst, ReportWarning{Code: WarnWithdrawals, Station: sr.Station, Value: float64(sr.Withdrawals), Limit: 2,
			Message: fmt.Sprintf("minutes withdrawn %d times", sr.Withdrawals)})
	}
	if sr.Refused > 0 {
		dst = append(dst, ReportWarning{Code: WarnRefused, Station: sr.Station, Value: float64(sr.Refused), Limit: 1,
			Message: fmt.Sprintf("%d minutes refused by the gateway", sr.Refused)})
	}
	if sr.Rejected > 0 {
		dst = append(dst, ReportWarning{Code: WarnRejected, Station: sr.Station, Value: float64(sr.Rejected), Limit: 1,
			Message: fmt.Sprintf("%d minutes rejected by the fold", sr.Rejected)})
	}
	return dst
}

func pct(a, b int64) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) * 100 / float64(b)
}
