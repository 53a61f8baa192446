package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/internal/usermsg"
	"github.com/tallyvn/tally/tally"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(method, path, route string, h http.HandlerFunc) {
		mux.HandleFunc(method+" "+path, s.metrics.instrument(route, h))
		allow := method
		if method == http.MethodGet {
			allow = "GET, HEAD"
		}
		// Any other method on a known path: 405 naming the one allowed.
		mux.HandleFunc(path, s.metrics.instrument(route, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, r.Method+" not allowed on "+r.URL.Path+"; use "+method)
		}))
	}
	handle("POST", "/api/v1/minutes", "minutes", s.handleSubmit)
	handle("GET", "/api/v1/status", "status", s.handleStatus)
	handle("GET", "/healthz", "healthz", s.handleHealthz) // health.go
	handle("GET", "/readyz", "readyz", s.handleReadyz)
	handle("GET", "/api/v1/election", "election", s.handleElection)
	handle("GET", "/api/v1/contests/{contest}/areas/{area}", "area", s.handleArea)
	handle("GET", "/api/v1/contests/{contest}/units/{unit}", "unit", s.handleUnit)
	handle("GET", "/api/v1/contests/{contest}/stations/{station}", "station", s.handleStation)
	handle("GET", "/api/v1/rejections", "rejections", s.handleRejections)
	handle("GET", "/api/v1/contests/{contest}/areas/{area}/report", "area_report", s.handleAreaReport)
	handle("GET", "/api/v1/contests/{contest}/units/{unit}/final", "unit_final", s.handleUnitFinal)
	s.exportRoutes(handle)
	handle("GET", "/api/v1/stream", "stream", func(w http.ResponseWriter, r *http.Request) {
		if !s.withheld(w) {
			s.handleStream(w, r)
		}
	})
	mux.HandleFunc("/api/", s.metrics.instrument("unknown", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	}))
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.Handle("/", s.metrics.instrument("dashboard", dashboard().ServeHTTP))
	return securityHeaders(mux, s.tls)
}

// securityHeaders sets, on every answer, the headers that keep a browser
// from sniffing a JSON answer into HTML, framing the dashboard, or sending
// its address elsewhere, and, over TLS, from ever using plain HTTP for
// this host again (HSTS). API answers get a CSP that allows nothing; the
// dashboard replaces it with its own. A request that carried both
// Content-Length and Transfer-Encoding gets its connection closed.
func securityHeaders(next http.Handler, tls bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		closeSmuggled(w, r)
		h := w.Header()
		if tls {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'")
		next.ServeHTTP(w, r)
	})
}

// tokenCheck is what a request's Authorization header says.
type tokenCheck int

const (
	tokenAbsent tokenCheck = iota
	tokenValid
	tokenWrong
)

// checkToken compares the request's bearer token with the operator token
// in constant time (both hashed first, so neither the content nor the
// length leaks through timing).
func (s *Server) checkToken(r *http.Request) tokenCheck {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return tokenAbsent
	}
	scheme, given, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return tokenWrong
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(given)))
	want := sha256.Sum256([]byte(s.cfg.Gateway.Token))
	if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
		return tokenValid
	}
	return tokenWrong
}

// unauthorized answers 401. The message never repeats what was sent.
func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="tally"`)
	writeError(w, http.StatusUnauthorized, msg)
}

// ElectionView is the answer of GET /api/v1/election: the election file as
// loaded, with its levels from the top (declared, or the default three) and
// the warnings Parse found (CONTRACT §2). The dashboard draws its tree from
// it, drilling down through Levels.
type ElectionView struct {
	*tally.Election
	Levels   []tally.AreaLevel `json:"levels"`
	Warnings []string          `json:"warnings"`
}

func (s *Server) handleElection(w http.ResponseWriter, r *http.Request) {
	warnings := s.e.Warnings()
	if warnings == nil {
		warnings = []string{}
	}
	writeJSON(w, http.StatusOK, ElectionView{Election: s.e, Levels: s.e.AreaLevels(), Warnings: warnings})
}

// SubmitResponse is the 202 answer to a submission.
type SubmitResponse struct {
	Accepted int    `json:"accepted"`
	Seq      uint64 `json:"seq"`
	// Positions: with partitions (CONTRACT §6 v2), the stream position of
	// the request's last minutes in each partition it touched; Seq is then
	// their sum, for display only.
	Positions  map[int]uint64 `json:"positions,omitempty"`
	Duplicates int            `json:"duplicates"` // already stored by an earlier, identical submission
}

// ErrorsResponse is the 422 answer: every broken rule of every minutes.
type ErrorsResponse struct {
	Errors []tally.Violation `json:"errors"`
}

func (s *Server) handleSubmit(w http.ResponseWriter, r *http.Request) {
	// A page on another site must not submit through its visitor's
	// browser, which can reach a tally on loopback.
	if !s.checkSubmitHeaders(w, r) {
		return
	}
	// With an operator token, a client that does not sign needs it; a
	// wrong one is refused at once, whatever the body holds.
	authed := s.cfg.Gateway.Token == ""
	if !authed {
		switch s.checkToken(r) {
		case tokenValid:
			authed = true
		case tokenWrong:
			unauthorized(w, "the operator token is wrong (Authorization: Bearer TOKEN)")
			return
		default:
			if !s.e.Sealed() {
				unauthorized(w, "an operator token is required to submit minutes (Authorization: Bearer TOKEN)")
				return
			}
		}
	}
	// Shed load before reading the body: a refused request costs nothing.
	size := r.ContentLength
	if size < 0 || size > s.cfg.Gateway.MaxBodyBytes {
		size = s.cfg.Gateway.MaxBodyBytes
	}
	if no := s.adm.acquire(size); no != nil {
		no.write(w)
		return
	}
	defer s.adm.release(size)
	if no := s.adm.check(s.gw.IsConnected()); no != nil {
		s.cfg.Logger.Debug("submission refused", "code", no.code, "reason", no.msg)
		no.write(w)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.Gateway.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes; split the submission", tooBig.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	decoded, err := events.DecodeJSON(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(decoded) > s.cfg.Gateway.MaxMinutes {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("%d minutes in one request, at most %d", len(decoded), s.cfg.Gateway.MaxMinutes))
		return
	}
	if !authed {
		// No token: only minutes that carry their station's seal may come
		// in, and their signatures are checked below.
		for i := range decoded {
			if st, ok := s.e.StationIndex(decoded[i].Minutes.Station); !ok || s.e.Stations[st].Seal == "" {
				unauthorized(w, fmt.Sprintf("an operator token is required to submit minutes of a station without a seal (Authorization: Bearer TOKEN): minutes %d are not sealed; nothing was stored", i))
				return
			}
		}
	}
	// The admission the folds apply (events.Admit), less the subject
	// check: the gateway builds each subject from the minutes it admits.
	var viol []tally.Violation
	var res tally.Resolved
	ms := make([]tally.Minutes, len(decoded))
	for i := range decoded {
		viol, _ = events.AdmitDecoded(s.e, &decoded[i].Minutes, decoded[i].Problems, i, &res, viol)
		ms[i] = decoded[i].Minutes
	}
	if len(viol) > 0 {
		s.recordRefusals(decoded, viol) // kept for officials, never in the stream
		writeJSON(w, http.StatusUnprocessableEntity, ErrorsResponse{Errors: viol})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Gateway.PublishTimeout)
	defer cancel()
	down := s.natsDown()
	go func() {
		select {
		case <-down: // the acknowledgements will not come
			cancel()
		case <-ctx.Done():
		}
	}()
	pub, err := s.pub.Publish(ctx, ms)
	if err != nil {
		// JetStream did not acknowledge every minutes: some may be
		// stored, so only a retry of the identical request (same
		// Nats-Msg-Id, deduplicated) may follow, never a 202.
		s.cfg.Logger.Warn("submission not stored", "err", err)
		w.Header().Set("Retry-After", "2")
		writeError(w, http.StatusServiceUnavailable, "JetStream did not store the minutes; retry the same request: "+err.Error())
		return
	}
	if pub.Claimed > 0 {
		s.cfg.Logger.Warn("minutes whose message id another NATS publisher had already used were published again without one; they are stored",
			"minutes", pub.Claimed, "seq", pub.Seq)
	}
	if pub.Positions == nil {
		s.adm.noteStored(0, pub.Seq)
	}
	for p, seq := range pub.Positions {
		s.adm.noteStored(p, seq)
	}
	writeJSON(w, http.StatusAccepted, SubmitResponse{Accepted: len(ms), Seq: pub.Seq, Positions: pub.Positions, Duplicates: pub.Duplicates})
}

// Status is the answer of GET /api/v1/status.
type Status struct {
	Election   string `json:"election"`
	StreamSeq  uint64 `json:"stream_seq"`
	AppliedSeq uint64 `json:"applied_seq"`
	Applied    uint64 `json:"applied"`
	Rejected   uint64 `json:"rejected"`
	Duplicates uint64 `json:"duplicates"`
	Stale      uint64 `json:"stale"`
	// Refused counts the minutes the gateway refused (422), kept apart
	// from the stream and listed in GET /api/v1/rejections.
	Refused uint64 `json:"refused"`
	// StreamPositions and AppliedPositions: with partitions (CONTRACT §6
	// v2), each partition stream's last sequence and the fold's position
	// in it; StreamSeq and AppliedSeq are then their sums.
	StreamPositions  map[int]uint64 `json:"stream_positions,omitempty"`
	AppliedPositions map[int]uint64 `json:"applied_positions,omitempty"`
	// State is "rebuilding" (results withheld until the projections are
	// rebuilt from the stream), "catching_up" (applying what the stream
	// received while tally was stopped) or "ready".
	State State `json:"state"`
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	// The stream first, then the fold's checkpoint and state together, in
	// one snapshot under s.mu: the store's committed meta is ahead of the
	// state for as long as the commit hook has not run, and a status with
	// applied_seq = stream_seq but "rebuilding" would be a lie.
	streamPos := make(map[int]uint64, len(s.streams))
	var streamSeq uint64
	for p, st := range s.streams {
		info, err := st.Info(r.Context())
		if err != nil {
			w.Header().Set("Retry-After", "2")
			writeError(w, http.StatusServiceUnavailable, "stream unavailable: "+err.Error())
			return
		}
		streamPos[p] = info.State.LastSeq
		streamSeq += info.State.LastSeq
	}
	s.mu.Lock()
	meta, state := s.mu.meta, s.mu.state
	var applied map[int]uint64
	if len(s.mu.metas) > 1 {
		applied = make(map[int]uint64, len(s.mu.metas))
		for p, m := range s.mu.metas {
			applied[p] = m.Checkpoint
		}
	} else {
		streamPos = nil
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, Status{
		Election: s.e.ID, StreamSeq: streamSeq, AppliedSeq: meta.Checkpoint,
		Applied: meta.Applied, Rejected: meta.Rejected, Duplicates: meta.Duplicates, Stale: meta.Stale,
		Refused: s.refusals.Count(), State: state, StreamPositions: streamPos, AppliedPositions: applied,
	})
}

// withheld answers 503 while the projections are being rebuilt: until the
// fold has caught up, results would be partial sums presented as results.
func (s *Server) withheld(w http.ResponseWriter) bool {
	s.mu.Lock()
	state, applied := s.mu.state, s.mu.meta.Checkpoint
	var target uint64
	for _, t := range s.mu.targets {
		target += t
	}
	s.mu.Unlock()
	if state != Rebuilding {
		return false
	}
	w.Header().Set("Retry-After", "5")
	writeError(w, http.StatusServiceUnavailable, fmt.Sprintf(
		"the projections are being rebuilt from the stream (applied_seq %d of %d); results are withheld until the rebuild is done, see GET /api/v1/status", applied, target))
	return true
}

func (s *Server) handleArea(w http.ResponseWriter, r *http.Request) {
	if s.withheld(w) {
		return
	}
	res, err := s.parts.AreaResult(r.PathValue("contest"), r.PathValue("area"))
	s.writeResult(w, res, err)
}

func (s *Server) handleUnit(w http.ResponseWriter, r *http.Request) {
	if s.withheld(w) {
		return
	}
	res, err := s.parts.UnitResult(r.PathValue("contest"), r.PathValue("unit"))
	s.writeResult(w, res, err)
}

func (s *Server) handleStation(w http.ResponseWriter, r *http.Request) {
	if s.withheld(w) {
		return
	}
	contest, station := r.PathValue("contest"), r.PathValue("station")
	res, err := s.parts.Station(contest, station)
	if err != nil {
		s.writeResult(w, nil, err)
		return
	}
	st, _ := s.e.StationIndex(station) // known: Station found it
	s.writeResult(w, s.timedStation(r.Context(), s.parts.StationPartition(st), res), nil)
}

func (s *Server) handleRejections(w http.ResponseWriter, r *http.Request) {
	if s.withheld(w) {
		return
	}
	station := r.URL.Query().Get("station")
	if station != "" {
		if _, ok := s.e.StationIndex(station); !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("%v %q", tally.ErrUnknownStation, station))
			return
		}
	}
	res, err := s.rejections(station) // the fold's and the gateway's
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) writeResult(w http.ResponseWriter, res any, err error) {
	switch {
	case errors.Is(err, tally.ErrUnknownContest), errors.Is(err, tally.ErrUnknownArea),
		errors.Is(err, tally.ErrUnknownUnit), errors.Is(err, tally.ErrUnknownStation):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		s.cfg.Logger.Error("query", "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var b []byte
	var err error
	if a, ok := v.(interface{ AppendJSON([]byte) []byte }); ok {
		b = a.AppendJSON(nil) // a large area result: no reflection, no compaction
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"error":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": usermsg.Message(msg)})
}
