package server

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// Gateway refusals are the minutes the HTTP gateway answered 422: they broke
// a rule that needs no history, so none of their request reached the stream.
// An official still wants to see them (which polling group is struggling),
// so the gateway keeps them in a Pebble database of its own under
// DataDir/refusals:
//
//   - never in the minutes stream, so the fold never sees them and they
//     cannot change a result, and the stream stays the one source of truth
//     for results;
//   - never in the projections, so a rebuild (which throws the projections
//     away) keeps them.
//
// GET /api/v1/rejections lists them beside the fold's rejections, each
// marked by its source. The log is bounded (maxRefusals records, each
// field cut to a bounded length) because anyone allowed to submit can make
// the gateway refuse; past the bound a refusal is logged and counted in
// tally_gateway_refusals_unrecorded_total, not stored.

const (
	// SourceFold marks a rejection by the fold (in the stream, not counted).
	SourceFold = "fold"
	// SourceGateway marks a refusal by the gateway (422, never stored in
	// the stream).
	SourceGateway = "gateway"

	maxRefusals         = 100_000
	maxRefusalViolation = 32  // violations kept per refused minutes
	maxRefusalText      = 256 // bytes kept of any string in a refusal
)

// Rejection is one entry of GET /api/v1/rejections: a rejection by the fold
// or a refusal by the gateway, as Source says. A gateway refusal has no
// stream position (Seq 0, no subject); its Time is when the gateway refused
// it.
type Rejection struct {
	projections.Rejection
	Source string `json:"source"`
}

// refusalLog is the durable record of gateway refusals.
type refusalLog struct {
	db    *pebble.DB
	limit uint64 // records kept at most: maxRefusals
	mu    struct {
		sync.Mutex
		next  uint64 // key of the next record
		count uint64 // records stored
	}
}

func openRefusals(dataDir string, logger *slog.Logger) (*refusalLog, error) {
	db, err := pebble.Open(filepath.Join(dataDir, "refusals"), &pebble.Options{
		Logger:       pebbleLogger{logger},
		MemTableSize: 1 << 20, // refusals are few and small
	})
	if err != nil {
		return nil, fmt.Errorf("open gateway refusals: %w", err)
	}
	l := &refusalLog{db: db, limit: maxRefusals}
	iter, err := db.NewIter(nil)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("read gateway refusals: %w", err)
	}
	for iter.First(); iter.Valid(); iter.Next() {
		l.mu.count++
	}
	if iter.Last() && len(iter.Key()) == 8 {
		l.mu.next = binary.BigEndian.Uint64(iter.Key()) + 1
	}
	if err := errors.Join(iter.Error(), iter.Close()); err != nil {
		db.Close()
		return nil, fmt.Errorf("read gateway refusals: %w", err)
	}
	return l, nil
}

func (l *refusalLog) close() error { return l.db.Close() }

// Count returns how many refusals are stored.
func (l *refusalLog) Count() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.count
}

// record stores one refusal per refused minutes of a request: decoded[i]
// with the violations whose index is i. It returns how many were stored and
// how many were not (the log is full).
func (l *refusalLog) record(now time.Time, decoded []events.Decoded, viol []tally.Violation) (stored, lost int, err error) {
	byIndex := map[int][]tally.Violation{}
	var order []int
	for _, v := range viol {
		if _, ok := byIndex[v.Index]; !ok {
			order = append(order, v.Index)
		}
		if len(byIndex[v.Index]) < maxRefusalViolation {
			byIndex[v.Index] = append(byIndex[v.Index], clipViolation(v))
		}
	}
	sort.Ints(order)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.db.NewBatch()
	defer b.Close()
	n := 0
	for _, i := range order {
		if l.mu.count+uint64(n) >= l.limit {
			lost++
			continue
		}
		rej := projections.Rejection{Time: now.UTC(), Errors: byIndex[i]}
		if i >= 0 && i < len(decoded) {
			m := &decoded[i].Minutes
			rej.Station, rej.Contest, rej.Version = clip(m.Station), clip(m.Contest), m.Version
			if m.Status != 0 {
				rej.Status = m.Status.String()
			}
		}
		for k, v := range rej.Errors {
			if k > 0 {
				rej.Reason += "; "
			}
			rej.Reason += v.Field + ": " + v.Message
		}
		val, err := json.Marshal(&rej)
		if err != nil {
			return 0, 0, fmt.Errorf("encode refusal: %w", err)
		}
		key := binary.BigEndian.AppendUint64(nil, l.mu.next+uint64(n))
		if err := b.Set(key, val, nil); err != nil {
			return 0, 0, fmt.Errorf("stage refusal: %w", err)
		}
		n++
	}
	if n == 0 {
		return 0, lost, nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, 0, fmt.Errorf("store refusals: %w", err)
	}
	l.mu.next += uint64(n)
	l.mu.count += uint64(n)
	return n, lost, nil
}

// list returns every refusal in the order they happened; station, if not
// empty, keeps those naming it.
func (l *refusalLog) list(station string) ([]projections.Rejection, error) {
	iter, err := l.db.NewIter(nil)
	if err != nil {
		return nil, fmt.Errorf("read gateway refusals: %w", err)
	}
	var out []projections.Rejection
	for iter.First(); iter.Valid(); iter.Next() {
		var r projections.Rejection
		if err := json.Unmarshal(iter.Value(), &r); err != nil {
			iter.Close()
			return nil, fmt.Errorf("corrupt gateway refusal %x: %w", iter.Key(), err)
		}
		if station == "" || r.Station == station {
			out = append(out, r)
		}
	}
	if err := errors.Join(iter.Error(), iter.Close()); err != nil {
		return nil, fmt.Errorf("read gateway refusals: %w", err)
	}
	return out, nil
}

// rejections merges the fold's rejections and the gateway's refusals in the
// order they happened.
func (s *Server) rejections(station string) ([]Rejection, error) {
	fold, err := s.parts.Rejections(station)
	if err != nil {
		return nil, err
	}
	gw, err := s.refusals.list(station)
	if err != nil {
		return nil, err
	}
	out := make([]Rejection, 0, len(fold)+len(gw))
	for _, r := range fold {
		out = append(out, Rejection{Rejection: r, Source: SourceFold})
	}
	for _, r := range gw {
		out = append(out, Rejection{Rejection: r, Source: SourceGateway})
	}
	// Both lists are in time order already; a stable sort keeps the
	// fold's stream order among equal times.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// recordRefusals keeps the refusals of a 422 answer; a failure to keep them
// is logged, never turned into another answer (the client's answer is the
// 422 either way).
func (s *Server) recordRefusals(decoded []events.Decoded, viol []tally.Violation) {
	stored, lost, err := s.refusals.record(time.Now(), decoded, viol)
	if err != nil {
		s.cfg.Logger.Error("gateway refusal not recorded", "err", err)
		return
	}
	if lost > 0 {
		s.metrics.refusalsLost.Add(float64(lost))
		s.cfg.Logger.Warn("gateway refusal log full; refusals not recorded", "lost", lost, "limit", maxRefusals)
	}
	s.metrics.refusals.Add(float64(stored))
}

// pebbleLogger sends Pebble's errors to the server's log and drops its
// informational chatter.
type pebbleLogger struct{ l *slog.Logger }

func (pebbleLogger) Infof(string, ...any) {}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("gateway refusals: " + fmt.Sprintf(format, args...))
}
func (pebbleLogger) Fatalf(format string, args ...any) { pebble.DefaultLogger.Fatalf(format, args...) }

func clip(s string) string {
	if len(s) <= maxRefusalText {
		return s
	}
	return s[:maxRefusalText]
}

func clipViolation(v tally.Violation) tally.Violation {
	v.Field, v.Rule, v.Message = clip(v.Field), clip(v.Rule), clip(v.Message)
	return v
}
