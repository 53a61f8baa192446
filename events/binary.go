package events

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unsafe"

	"github.com/tallyvn/tally/tally"
)

// Binary format, version 1:
//
//	magic 0xB7, format 1
//	election, contest, station      string (uvarint length, bytes)
//	version                         varint
//	status, present                 byte, byte
//	registered … invalid            6 × varint
//	votes                           uvarint n, n × (string candidate, varint count)
//	reason, signature               string
const (
	// BinaryMagic is the first byte of a binary minutes payload.
	BinaryMagic  byte = 0xB7
	binaryFormat byte = 1
)

// ErrCorrupt is returned for a binary payload that cannot be decoded.
var ErrCorrupt = errors.New("events: corrupt binary minutes")

// AppendBinary appends the canonical binary encoding of m to dst. It sorts
// m.Votes by candidate id in place.
func AppendBinary(dst []byte, m *tally.Minutes) []byte {
	sortVotes(m.Votes)
	dst = append(dst, BinaryMagic, binaryFormat)
	dst = appendString(dst, m.Election)
	dst = appendString(dst, m.Contest)
	dst = appendString(dst, m.Station)
	dst = binary.AppendVarint(dst, m.Version)
	dst = append(dst, byte(m.Status), m.Present)
	c := &m.Counts
	for _, v := range [6]int64{c.Registered, c.Voted, c.Issued, c.Received, c.Valid, c.Invalid} {
		dst = binary.AppendVarint(dst, v)
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.Votes)))
	for _, v := range m.Votes {
		dst = appendString(dst, v.Candidate)
		dst = binary.AppendVarint(dst, v.Count)
	}
	dst = appendString(dst, m.Reason)
	dst = appendString(dst, m.Signature)
	return dst
}

func sortVotes(v []tally.Vote) {
	if !slices.IsSortedFunc(v, cmpVote) {
		slices.SortFunc(v, cmpVote)
	}
}

func cmpVote(a, b tally.Vote) int { return strings.Compare(a.Candidate, b.Candidate) }

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// DecodeBinary decodes a binary payload into m, reusing m.Votes.
//
// The strings of m alias data: they stay valid only while data is neither
// modified nor reused. Copy them (strings.Clone) to keep them longer. This
// is what lets the fold decode without allocating.
func DecodeBinary(data []byte, m *tally.Minutes) error {
	d := decoder{b: data}
	if len(data) < 2 || data[0] != BinaryMagic {
		return fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	if data[1] != binaryFormat {
		return fmt.Errorf("%w: unknown format %d", ErrCorrupt, data[1])
	}
	d.b = data[2:]
	m.Election = d.string()
	m.Contest = d.string()
	m.Station = d.string()
	m.Version = d.varint()
	m.Status = tally.Status(d.byte())
	m.Present = d.byte()
	m.Counts = tally.Counts{
		Registered: d.varint(), Voted: d.varint(), Issued: d.varint(),
		Received: d.varint(), Valid: d.varint(), Invalid: d.varint(),
	}
	n := d.uvarint()
	if n > uint64(len(d.b)) { // each vote takes at least two bytes
		return fmt.Errorf("%w: %d votes in %d bytes", ErrCorrupt, n, len(d.b))
	}
	m.Votes = m.Votes[:0]
	for i := uint64(0); i < n; i++ {
		m.Votes = append(m.Votes, tally.Vote{Candidate: d.string(), Count: d.varint()})
	}
	m.Reason = d.string()
	m.Signature = d.string()
	if d.err {
		return fmt.Errorf("%w: truncated", ErrCorrupt)
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(d.b))
	}
	return nil
}

type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.err = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err, d.b = true, nil
		return ""
	}
	if n == 0 {
		return ""
	}
	s := unsafe.String(&d.b[0], int(n))
	d.b = d.b[n:]
	return s
}
