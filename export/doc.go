// Package export writes what leaves tally on paper or to other systems
// (CONTRACT §8): the electoral-unit board's and the election committee's
// minutes as PDF, the whole election as NIST SP 1500-100 version 2 JSON, and
// a contest's results as CSV.
//
// Every export reads one projections.View: one Pebble snapshot, so every
// figure in it reflects the same applied_seq, which it states (the PDF in
// its footer, the CSV in a column, the NIST report in its Notes). The
// writers stream: CSV and NIST write each area, unit and station as they
// read it, holding at most one unit's stations in memory, so a national
// export needs no more memory than a province's. A writer checks the ids it
// is given before it writes a byte, so a caller can still answer 404; an
// error after that leaves a truncated output, which the caller must not
// present as complete.
//
// INVARIANT: an export reads nothing but its View and the election file, so
// no figure in it can come from another stream position.
//
// The PDF is drawn by codeberg.org/go-pdf/fpdf with DejaVu Sans embedded
// (fonts/, Bitstream Vera licence in fonts/LICENSE): pure Go, nothing to
// install where tally runs, real text with every Vietnamese diacritic.
//
// Writers are safe for concurrent use on distinct Views.
package export
