package server

import (
	"bytes"
	"fmt"
	"net/http"
	"time"

	"github.com/tallyvn/tally/export"
	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// exportWriteTime bounds the writing of one export: a national NIST report
// takes longer than the server's WriteTimeout for ordinary answers.
const exportWriteTime = 15 * time.Minute

// exportRoutes registers the exports and printable minutes of CONTRACT §8.
func (s *Server) exportRoutes(handle func(method, path, route string, h http.HandlerFunc)) {
	handle("GET", "/api/v1/export/nist-1500-100.json", "export_nist", s.handleExportNIST)
	handle("GET", "/api/v1/export/results.csv", "export_csv", s.handleExportCSV)
	handle("GET", "/api/v1/contests/{contest}/units/{unit}/minutes.pdf", "unit_minutes", s.handleUnitMinutes)
	handle("GET", "/api/v1/contests/{contest}/areas/{area}/minutes.pdf", "area_minutes", s.handleAreaMinutes)
}

// view opens one snapshot for an export, or answers the error itself.
func (s *Server) view(w http.ResponseWriter) *projections.View {
	if s.withheld(w) {
		return nil
	}
	v, err := s.parts.View()
	if err != nil {
		s.writeResult(w, nil, err)
		return nil
	}
	return v
}

// streamExport writes a streaming export: ids are checked by check before the
// 200 goes out; an error after that can only cut the answer short, which
// the client sees as a body shorter than the stream it expected (no
// Content-Length, so an aborted chunked body).
func (s *Server) streamExport(w http.ResponseWriter, r *http.Request, contentType, filename string, write func(http.ResponseWriter) error) {
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Now().Add(exportWriteTime)) // best effort: errors only when unsupported
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	if err := write(w); err != nil {
		s.cfg.Logger.Error("export cut short", "path", r.URL.Path, "err", err)
		panic(http.ErrAbortHandler) // the client must not take a truncated export for a whole one
	}
}

func (s *Server) handleExportNIST(w http.ResponseWriter, r *http.Request) {
	v := s.view(w)
	if v == nil {
		return
	}
	defer v.Close()
	s.streamExport(w, r, "application/json; charset=utf-8", s.e.ID+"-nist-1500-100.json", func(w http.ResponseWriter) error {
		return export.WriteNIST(w, v, export.NISTOptions{})
	})
}

func (s *Server) handleExportCSV(w http.ResponseWriter, r *http.Request) {
	contest := r.URL.Query().Get("contest")
	if contest == "" {
		writeError(w, http.StatusBadRequest, "query parameter contest is required: GET /api/v1/export/results.csv?contest=C")
		return
	}
	if _, ok := s.e.ContestIndex(contest); !ok {
		s.writeResult(w, nil, fmt.Errorf("%w %q", tally.ErrUnknownContest, contest))
		return
	}
	v := s.view(w)
	if v == nil {
		return
	}
	defer v.Close()
	s.streamExport(w, r, "text/csv; charset=utf-8", s.e.ID+"-"+contest+".csv", func(w http.ResponseWriter) error {
		return export.WriteCSV(w, v, contest)
	})
}

// pdf answers a PDF drawn in memory (a few tens of kilobytes), so that an
// unknown id or a failure is still a JSON error.
func (s *Server) pdf(w http.ResponseWriter, filename string, draw func(*bytes.Buffer, *projections.View) error) {
	v := s.view(w)
	if v == nil {
		return
	}
	defer v.Close()
	var buf bytes.Buffer
	if err := draw(&buf, v); err != nil {
		s.writeResult(w, nil, err)
		return
	}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Disposition", `inline; filename="`+filename+`"`)
	// A browser's PDF viewer is an embedded object: the API's "allow
	// nothing" policy, through default-src, would forbid it.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; object-src 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.Write(buf.Bytes())
}

func (s *Server) handleUnitMinutes(w http.ResponseWriter, r *http.Request) {
	contest, unit := r.PathValue("contest"), r.PathValue("unit")
	s.pdf(w, contest+"-"+unit+"-bien-ban.pdf", func(buf *bytes.Buffer, v *projections.View) error {
		return export.WriteUnitMinutes(buf, v, contest, unit, export.MinutesOptions{})
	})
}

func (s *Server) handleAreaMinutes(w http.ResponseWriter, r *http.Request) {
	contest, area := r.PathValue("contest"), r.PathValue("area")
	s.pdf(w, contest+"-"+area+"-bien-ban-tong-ket.pdf", func(buf *bytes.Buffer, v *projections.View) error {
		return export.WriteAreaMinutes(buf, v, contest, area, export.MinutesOptions{})
	})
}
