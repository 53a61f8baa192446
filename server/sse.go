package server

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// The SSE hub. The fold's commit hook only records which results changed
// (hub.changed: a few map inserts, never blocking). The hub goroutine renders
// each changed result once into a cache of latest values and offers its key
// to every client whose filter matches. A client keeps a set of pending
// keys, not a queue of events: a lagging client skips intermediate values
// and gets the latest value of each result it missed, so memory per client
// is bounded by the number of results and no client can slow the fold.

// rendered is the latest JSON of one result.
type rendered struct {
	seq  uint64 // applied_seq of the change that produced it
	data []byte
}

type hub struct {
	parts   *projections.Parts
	e       *tally.Election
	metrics *metrics
	wake    chan struct{} // capacity 1
	closing chan struct{} // closed when the server shuts down

	mu struct {
		sync.Mutex
		dirty map[projections.Ref]struct{}
	}
	cache struct {
		sync.RWMutex
		latest   map[projections.Ref]rendered
		startSeq uint64 // checkpoint when the server started; changes before it are unknown
	}
	clients struct {
		sync.Mutex
		set map[*sseClient]struct{}
	}
}

// newHub returns the hub of parts. With partitions a result's applied_seq,
// its event id, is the sum of the positions; it only grows from one change
// of a result to the next (every position only grows, its own partition's
// strictly), so a client resuming from an id misses no change.
func newHub(parts *projections.Parts, m *metrics, startSeq uint64) *hub {
	h := &hub{parts: parts, e: parts.Election(), metrics: m, wake: make(chan struct{}, 1), closing: make(chan struct{})}
	h.mu.dirty = map[projections.Ref]struct{}{}
	h.cache.latest = map[projections.Ref]rendered{}
	h.cache.startSeq = startSeq
	h.clients.set = map[*sseClient]struct{}{}
	return h
}

// changed is called by the fold after each commit. It must not block.
func (h *hub) changed(refs []projections.Ref) {
	h.mu.Lock()
	for _, r := range refs {
		h.mu.dirty[r] = struct{}{}
	}
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// run renders changed results and offers them to clients until ctx is done.
func (h *hub) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		}
		h.mu.Lock()
		dirty := h.mu.dirty
		h.mu.dirty = make(map[projections.Ref]struct{}, len(dirty))
		h.mu.Unlock()
		refs := make([]projections.Ref, 0, len(dirty))
		for r := range dirty {
			refs = append(refs, r)
		}
		slices.SortFunc(refs, cmpRef)
		for _, r := range refs {
			data, seq, err := h.render(r)
			if err != nil {
				continue // a query error now is a query error for the client later too
			}
			h.cache.Lock()
			h.cache.latest[r] = rendered{seq: seq, data: data}
			h.cache.Unlock()
		}
		h.clients.Lock()
		for c := range h.clients.set {
			c.offer(refs, h.metrics)
		}
		h.clients.Unlock()
	}
}

func cmpRef(a, b projections.Ref) int {
	if c := cmp.Compare(a.Contest, b.Contest); c != 0 {
		return c
	}
	if a.Unit != b.Unit {
		if a.Unit {
			return 1
		}
		return -1
	}
	return cmp.Compare(a.Index, b.Index)
}

// render reads one result from the store as JSON.
func (h *hub) render(r projections.Ref) ([]byte, uint64, error) {
	contest := h.e.Contests[r.Contest].ID
	if r.Unit {
		res, err := h.parts.UnitResult(contest, h.e.Contests[r.Contest].Units[r.Index].ID)
		if err != nil {
			return nil, 0, err
		}
		b, err := json.Marshal(res)
		return b, res.AppliedSeq, err
	}
	return h.parts.AppendAreaJSON(nil, contest, h.e.Areas[r.Index].ID)
}

// latest returns the latest JSON of r, rendering it if the hub has not.
func (h *hub) latest(r projections.Ref) (rendered, bool) {
	h.cache.RLock()
	v, ok := h.cache.latest[r]
	h.cache.RUnlock()
	if ok {
		return v, true
	}
	data, seq, err := h.render(r)
	if err != nil {
		return rendered{}, false
	}
	return rendered{seq: seq, data: data}, true
}

// changedSince reports whether r may have changed after seq.
func (h *hub) changedSince(r projections.Ref, seq uint64) bool {
	h.cache.RLock()
	defer h.cache.RUnlock()
	if seq < h.cache.startSeq {
		return true
	}
	v, ok := h.cache.latest[r]
	return ok && v.seq > seq
}

// sseFilter selects results: contest restricts the contest; area selects an
// area and every area under it; unit selects a unit. With neither area nor
// unit, every result of the contest(s) matches.
type sseFilter struct {
	contest int // -1: any
	area    int // -1: none given
	unit    int // -1: none given (index in its contest)
	unitOf  int // contest of unit
}

func (h *hub) parseFilter(r *http.Request) (sseFilter, error) {
	f := sseFilter{contest: -1, area: -1, unit: -1}
	q := r.URL.Query()
	if c := q.Get("contest"); c != "" {
		i, ok := h.e.ContestIndex(c)
		if !ok {
			return f, fmt.Errorf("%w %q", tally.ErrUnknownContest, c)
		}
		f.contest = i
	}
	if a := q.Get("area"); a != "" {
		i, ok := h.e.AreaIndex(a)
		if !ok {
			return f, fmt.Errorf("%w %q", tally.ErrUnknownArea, a)
		}
		f.area = i
	}
	if u := q.Get("unit"); u != "" {
		c, i, ok := h.e.UnitIndex(u)
		if !ok || (f.contest >= 0 && c != f.contest) {
			return f, fmt.Errorf("%w %q", tally.ErrUnknownUnit, u)
		}
		f.unit, f.unitOf = i, c
	}
	return f, nil
}

func (h *hub) matches(f sseFilter, r projections.Ref) bool {
	if f.contest >= 0 && int(r.Contest) != f.contest {
		return false
	}
	if f.area < 0 && f.unit < 0 {
		return true
	}
	if r.Unit {
		return f.unit >= 0 && int(r.Contest) == f.unitOf && int(r.Index) == f.unit
	}
	if f.area < 0 {
		return false
	}
	for a := int(r.Index); a >= 0; a = h.e.AreaParent(a) {
		if a == f.area {
			return true
		}
	}
	return false
}

// all returns every result key matching f, in order.
func (h *hub) all(f sseFilter) []projections.Ref {
	var out []projections.Ref
	for c := range h.e.Contests {
		if f.contest >= 0 && c != f.contest {
			continue
		}
		// Only the areas holding stations of the contest (a national file
		// has thousands of contests, each in a few areas).
		for _, a := range h.e.ContestAreas(c) {
			r := projections.Ref{Contest: int32(c), Index: a}
			if h.matches(f, r) {
				out = append(out, r)
			}
		}
		for u := range h.e.Contests[c].Units {
			r := projections.Ref{Contest: int32(c), Unit: true, Index: int32(u)}
			if h.matches(f, r) {
				out = append(out, r)
			}
		}
	}
	return out
}

type sseClient struct {
	h      *hub
	filter sseFilter
	signal chan struct{} // capacity 1
	mu     struct {
		sync.Mutex
		pending map[projections.Ref]struct{}
	}
}

// offer adds the refs the client wants to its pending set and wakes it. It
// never blocks: a key already pending is simply overwritten by its latest
// value when the client gets to it.
func (c *sseClient) offer(refs []projections.Ref, m *metrics) {
	n, coalesced := 0, 0
	c.mu.Lock()
	for _, r := range refs {
		if !c.h.matches(c.filter, r) {
			continue
		}
		if _, dup := c.mu.pending[r]; dup {
			coalesced++
		}
		c.mu.pending[r] = struct{}{}
		n++
	}
	c.mu.Unlock()
	if coalesced > 0 && m != nil {
		m.sseDropped.Add(float64(coalesced))
	}
	if n > 0 {
		select {
		case c.signal <- struct{}{}:
		default:
		}
	}
}

func (c *sseClient) take() []projections.Ref {
	c.mu.Lock()
	refs := make([]projections.Ref, 0, len(c.mu.pending))
	for r := range c.mu.pending {
		refs = append(refs, r)
	}
	clear(c.mu.pending)
	c.mu.Unlock()
	slices.SortFunc(refs, cmpRef)
	return refs
}

// appendEvents takes the client's pending results and appends one event per
// result to buf, in ascending sequence order. Ids must never go down within a
// stream: a client that loses the connection mid-flush resumes from the
// highest id it saw, so every event before that one must have a lower or
// equal id. out is scratch space, returned for reuse.
func (c *sseClient) appendEvents(buf []byte, out []rendered) ([]byte, []rendered) {
	for _, ref := range c.take() {
		if v, ok := c.h.latest(ref); ok {
			out = append(out, v)
		}
	}
	slices.SortStableFunc(out, func(a, b rendered) int { return cmp.Compare(a.seq, b.seq) })
	for _, v := range out {
		buf = append(buf, "id: "...)
		buf = strconv.AppendUint(buf, v.seq, 10)
		buf = append(buf, "\nevent: result\ndata: "...)
		buf = append(buf, v.data...)
		buf = append(buf, "\n\n"...)
	}
	return buf, out
}

// sseKeepAlive is how often an idle stream gets a comment line, so proxies
// and the browser keep the connection.
const sseKeepAlive = 15 * time.Second

func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	h := s.hub
	f, err := h.parseFilter(r)
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	rc := http.NewResponseController(w)
	// An event stream lives longer than the server's write timeout.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		writeError(w, http.StatusInternalServerError, "streaming not supported: "+err.Error())
		return
	}
	ip := remoteIP(r)
	if why := s.sse.acquire(ip); why != "" {
		s.metrics.sseRefused.Inc()
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusServiceUnavailable, why+"; try again later")
		return
	}
	defer s.sse.release(ip)
	c := &sseClient{h: h, filter: f, signal: make(chan struct{}, 1)}
	c.mu.pending = map[projections.Ref]struct{}{}

	// Register first, then queue the current state: a change racing with
	// the connection is at worst sent twice, never lost.
	h.clients.Lock()
	h.clients.set[c] = struct{}{}
	h.clients.Unlock()
	s.metrics.sseClients.Inc()
	defer func() {
		h.clients.Lock()
		delete(h.clients.set, c)
		h.clients.Unlock()
		s.metrics.sseClients.Dec()
	}()
	initial := h.all(f)
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		if seq, err := strconv.ParseUint(last, 10, 64); err == nil {
			initial = slices.DeleteFunc(initial, func(ref projections.Ref) bool { return !h.changedSince(ref, seq) })
		}
	}
	c.offer(initial, nil)
	if len(initial) == 0 {
		c.signal <- struct{}{} // still send the headers now
	}

	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	keepAlive := time.NewTicker(sseKeepAlive)
	defer keepAlive.Stop()
	var buf []byte
	var out []rendered // scratch for appendEvents
	for {
		select {
		case <-r.Context().Done():
			return
		case <-h.closing:
			return
		case <-keepAlive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case <-c.signal:
			buf, out = c.appendEvents(buf[:0], out[:0])
			if len(buf) > 0 {
				if _, err := w.Write(buf); err != nil {
					return
				}
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
