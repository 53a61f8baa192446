package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tallyvn/tally/projections"
)

// readyLag is how far behind the stream a node may be and still be ready:
// GET /readyz reads the stream's last sequence and waits at most this long
// for the fold to have applied it. Under a steady load the fold is always a
// batch or two behind the newest message; a node is caught up when it
// reaches what the stream held a moment ago, not when the stream stops.
const readyLag = time.Second

// Health is the answer of GET /healthz and GET /readyz.
type Health struct {
	// Ready is false on /healthz only while the process is shutting down;
	// on /readyz, when the node is not caught up (Reason says why).
	Ready bool   `json:"ready"`
	Node  string `json:"node"`
	State State  `json:"state"`
	// AppliedSeq is what the fold has applied; StreamSeq (on /readyz) the
	// stream's last sequence it was compared with.
	AppliedSeq uint64 `json:"applied_seq"`
	StreamSeq  uint64 `json:"stream_seq,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// handleHealthz answers 200 while the process serves HTTP: a liveness probe
// for a load balancer or an orchestrator. It asks nothing of NATS or the
// fold, so a node that is catching up or reconnecting is not restarted.
func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	state, applied := s.State()
	writeJSON(w, http.StatusOK, Health{Ready: true, Node: s.node(), State: state, AppliedSeq: applied})
}

// handleReadyz answers 200 once this node is caught up with the stream and
// 503 with the reason otherwise: while the projections are rebuilt, while
// NATS is unreachable, and while the fold has not applied what the stream
// held readyLag ago. A load balancer sends requests only to ready nodes, so
// a client never reads results far behind what it submitted elsewhere.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	h := s.readiness(r.Context())
	code := http.StatusOK
	if !h.Ready {
		code = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, code, h)
}

func (s *Server) readiness(ctx context.Context) Health {
	state, applied := s.State()
	h := Health{Node: s.node(), State: state, AppliedSeq: applied}
	if state == Rebuilding {
		h.Reason = "the projections are being rebuilt from the stream; results are withheld until done"
		return h
	}
	select {
	case <-s.natsDown():
		h.Reason = "the NATS connection is lost (reconnecting)"
		return h
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	target, err := s.streamPositions(ctx)
	if err != nil {
		h.Reason = "stream unavailable: " + err.Error()
		return h
	}
	h.StreamSeq = sumPositions(target)
	wait, stop := context.WithTimeout(ctx, readyLag)
	defer stop()
	err = s.WaitPositions(wait, target)
	h.State, h.AppliedSeq = s.State()
	switch {
	case err == nil:
		h.Ready = true
	case errors.Is(err, context.DeadlineExceeded):
		h.Reason = fmt.Sprintf("catching up: applied_seq %d, stream_seq %d", h.AppliedSeq, h.StreamSeq)
	default:
		h.Reason = err.Error()
	}
	return h
}

// node returns this node's name.
func (s *Server) node() string {
	if s.cfg.Fold.Node == "" {
		return projections.DefaultNode
	}
	return s.cfg.Fold.Node
}
