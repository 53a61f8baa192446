package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/tallyvn/tally/tally"
)

// ErrMalformed is returned (wrapped) for a body that is not JSON minutes:
// not JSON at all, or a JSON value that is not an object.
var ErrMalformed = errors.New("events: malformed minutes JSON")

// Decoded is one minutes object read from JSON, with the problems its JSON
// shape already shows (missing or mistyped fields, unknown fields). The
// remaining rules are checked by tally.Election.Check.
type Decoded struct {
	Minutes  tally.Minutes
	Problems []tally.Violation
}

// DecodeJSON reads minutes from a request body: one object, a JSON array of
// objects, or NDJSON (objects one after another). Structural errors (bad
// JSON, a value that is not an object) return ErrMalformed; field problems
// are reported per object in Decoded.Problems, each with its index.
func DecodeJSON(body []byte) ([]Decoded, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	if body[0] == '{' { // one object, the usual way: no splitting
		var d Decoded
		if decodeFast(body, &d.Minutes, false) {
			return []Decoded{d}, nil
		}
	}
	var raws []json.RawMessage
	if body[0] == '[' {
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	} else {
		dec := json.NewDecoder(bytes.NewReader(body))
		for {
			var raw json.RawMessage
			err := dec.Decode(&raw)
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%w: value %d: %v", ErrMalformed, len(raws), err)
			}
			raws = append(raws, raw)
		}
	}
	if len(raws) == 0 {
		return nil, fmt.Errorf("%w: no minutes in body", ErrMalformed)
	}
	out := make([]Decoded, len(raws))
	for i, raw := range raws {
		if decodeFast(raw, &out[i].Minutes, false) {
			continue
		}
		out[i].Minutes = tally.Minutes{}
		// I-JSON (RFC 7493): member names are unique. A parser reading
		// the first of two and tally reading the last would see different
		// minutes in the same bytes.
		if name, dup := DuplicateName(raw); dup {
			return nil, fmt.Errorf("%w: value %d: member name %q appears twice in one object (I-JSON, RFC 7493 §2.3)", ErrMalformed, i, name)
		}
		if err := decodeOne(raw, i, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RuleDuplicateName names the rejection of minutes (published straight to
// NATS) whose JSON repeats a member name in one object. The gateway
// answers such a body 400.
const RuleDuplicateName = "duplicate_name"

// MaxVersion is the highest minutes version (CONTRACT §7a): 2^53 − 1, the
// largest integer every JSON reader, and so every signer, reads alike.
const MaxVersion = maxSafeInteger

// Check appends the decoding problems and then the violations
// tally.Election.Check finds in m, leaving out those on a field the decoder
// already flagged: a count that could not be read is reported once, as
// unreadable, and not again as missing or as breaking the rules it is in.
func Check(e *tally.Election, m *tally.Minutes, problems []tally.Violation, index int, r *tally.Resolved, dst []tally.Violation) []tally.Violation {
	dst = append(dst, problems...)
	if m.Version > MaxVersion {
		dst = append(dst, tally.Violation{Index: index, Field: "version", Rule: tally.RuleVersion,
			Message: fmt.Sprintf("version %d is above %d (2^53 − 1), the highest version the contract allows", m.Version, int64(MaxVersion))})
	}
	n := len(dst)
	dst = e.Check(m, index, r, dst)
	if len(problems) == 0 {
		return dst
	}
	keep := dst[:n]
	for _, v := range dst[n:] {
		if !flagged(problems, v.Field) {
			keep = append(keep, v)
		}
	}
	return keep
}

func flagged(problems []tally.Violation, field string) bool {
	for _, p := range problems {
		if p.Field == field {
			return true
		}
	}
	return false
}

// DecodeJSONObject reads exactly one minutes object (a payload published
// straight to NATS).
// A member name repeated in one object is a problem of rule
// RuleDuplicateName.
func DecodeJSONObject(data []byte) (Decoded, error) {
	var d Decoded
	if decodeFast(data, &d.Minutes, false) {
		return d, nil
	}
	return decodeObjectSlow(data)
}

// decodeObjectSlow is DecodeJSONObject without decodeFast: every problem
// named.
func decodeObjectSlow(data []byte) (Decoded, error) {
	var d Decoded
	err := decodeOne(data, 0, &d)
	if err == nil {
		if name, dup := DuplicateName(data); dup {
			d.Problems = append(d.Problems, tally.Violation{Field: name, Rule: RuleDuplicateName,
				Message: fmt.Sprintf("member name %q appears twice in one object (I-JSON, RFC 7493 §2.3): readers would disagree on its value", name)})
		}
	}
	return d, err
}

// DuplicateName reports the first member name that appears twice in one
// object of data, at any depth. REQUIRES: data is valid JSON (names are
// compared after unescaping: "a" and "\u0061" are the same name).
func DuplicateName(data []byte) (string, bool) {
	var seen []map[string]struct{} // one per open object; nil for an array
	expectName := false            // the next string in the innermost object is a name
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '{':
			seen = append(seen, map[string]struct{}{})
			expectName = true
		case '[':
			seen = append(seen, nil)
			expectName = false
		case '}', ']':
			seen = seen[:len(seen)-1]
			expectName = false
		case ',':
			expectName = len(seen) > 0 && seen[len(seen)-1] != nil
		case '"':
			j, escaped := i+1, false
			for ; j < len(data) && data[j] != '"'; j++ {
				if data[j] == '\\' {
					escaped = true
					j++
				}
			}
			if expectName {
				name := string(data[i+1 : j])
				if escaped {
					if err := json.Unmarshal(data[i:j+1], &name); err != nil {
						return "", false // not valid JSON: the caller's parser says so
					}
				}
				obj := seen[len(seen)-1]
				if _, dup := obj[name]; dup {
					return name, true
				}
				obj[name] = struct{}{}
				expectName = false
			}
			i = j
		}
	}
	return "", false
}

func decodeOne(raw json.RawMessage, index int, d *Decoded) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return fmt.Errorf("%w: value %d is not a JSON object", ErrMalformed, index)
	}
	m := &d.Minutes
	bad := func(field, rule, format string, args ...any) {
		d.Problems = append(d.Problems, tally.Violation{Index: index, Field: field, Rule: rule, Message: fmt.Sprintf(format, args...)})
	}
	str := func(field string, dst *string) {
		v, ok := fields[field]
		if !ok || isNull(v) {
			return
		}
		if err := json.Unmarshal(v, dst); err != nil {
			bad(field, tally.RuleType, "%s must be a string", field)
		}
	}
	num := func(field string) (int64, bool) {
		v, ok := fields[field]
		if !ok || isNull(v) {
			return 0, false
		}
		n, msg := parseInt(v)
		if msg != "" {
			rule := tally.RuleInteger
			if v[0] == '"' || v[0] == '{' || v[0] == '[' || v[0] == 't' || v[0] == 'f' {
				rule = tally.RuleType
			}
			bad(field, rule, "%s %s", field, msg)
			return 0, false
		}
		return n, true
	}

	str("election", &m.Election)
	str("contest", &m.Contest)
	str("station", &m.Station)
	if v, ok := num("version"); ok {
		m.Version = v
	} else if _, given := fields["version"]; !given {
		bad("version", tally.RuleRequired, "version is missing")
	}
	if v, given := fields["status"]; !given || isNull(v) {
		bad("status", tally.RuleRequired, "status is missing")
	} else {
		var status string
		if err := json.Unmarshal(v, &status); err != nil {
			bad("status", tally.RuleType, "status must be a string")
		} else if s, ok := tally.ParseStatus(status); ok {
			m.Status = s
		} else {
			bad("status", tally.RuleStatus, "status %q is not partial, final or withdrawn", status)
		}
	}
	for i, f := range [6]*int64{&m.Counts.Registered, &m.Counts.Voted, &m.Counts.Issued, &m.Counts.Received, &m.Counts.Valid, &m.Counts.Invalid} {
		if v, ok := num(countFieldNames[i]); ok {
			*f = v
			m.Present |= 1 << i
		}
	}
	if v, ok := fields["votes"]; ok && !isNull(v) {
		var votes map[string]json.RawMessage
		if err := json.Unmarshal(v, &votes); err != nil {
			bad("votes", tally.RuleType, "votes must be an object of candidate id to count")
		} else {
			for id, rv := range votes {
				n, msg := parseInt(rv)
				if msg != "" {
					bad("votes."+id, tally.RuleInteger, "votes for %q %s", id, msg)
					continue
				}
				m.Votes = append(m.Votes, tally.Vote{Candidate: id, Count: n})
			}
			sortVotes(m.Votes)
		}
	}
	str("reason", &m.Reason)
	str("signature", &m.Signature)
	if m.Signature != "" {
		// Signed minutes: record where the JSON departs from the sealed
		// form's defaults, so that the one form the station signed is the
		// one verified (see jcs.go).
		v, given := fields["votes"]
		given = given && !isNull(v)
		if len(m.Votes) == 0 && given != (m.Status != tally.Withdrawn) {
			m.Present |= FormVotes
		}
		if v, ok := fields["reason"]; ok && m.Reason == "" && !isNull(v) {
			m.Present |= FormEmptyReason
		}
	}
	for k := range fields {
		if !knownField[k] {
			bad(k, tally.RuleUnknownField, "%q is not a field of minutes", k)
		}
	}
	sort.SliceStable(d.Problems, func(i, j int) bool { return d.Problems[i].Field < d.Problems[j].Field })
	return nil
}

var countFieldNames = [6]string{"registered", "voted", "issued", "received", "valid", "invalid"}

var knownField = map[string]bool{
	"election": true, "contest": true, "station": true, "version": true, "status": true,
	"registered": true, "voted": true, "issued": true, "received": true, "valid": true, "invalid": true,
	"votes": true, "reason": true, "signature": true,
}

func isNull(v json.RawMessage) bool { return string(v) == "null" }

// parseInt parses a JSON number that must be an integer. It returns a
// message saying what is wrong, or "".
func parseInt(v json.RawMessage) (int64, string) {
	if len(v) == 0 {
		return 0, "is empty"
	}
	switch v[0] {
	case '"':
		return 0, "must be a number, not a string"
	case '{', '[', 't', 'f', 'n':
		return 0, "must be a number"
	}
	s := string(v)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, ""
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f == float64(int64(f)) && f < 1e15 && f > -1e15 {
			return 0, fmt.Sprintf("= %s must be written as an integer", s)
		}
		return 0, fmt.Sprintf("= %s is not an integer", s)
	}
	return 0, fmt.Sprintf("= %s is out of range", s)
}

// AppendJSON appends the JSON form of m (CONTRACT §3) to dst, fields in a
// fixed order, votes sorted by candidate id.
func AppendJSON(dst []byte, m *tally.Minutes) []byte {
	dst = append(dst, `{"election":`...)
	dst = appendJSONString(dst, m.Election)
	dst = append(dst, `,"contest":`...)
	dst = appendJSONString(dst, m.Contest)
	dst = append(dst, `,"station":`...)
	dst = appendJSONString(dst, m.Station)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendInt(dst, m.Version, 10)
	dst = append(dst, `,"status":`...)
	dst = appendJSONString(dst, m.Status.String())
	c := &m.Counts
	for i, v := range [6]int64{c.Registered, c.Voted, c.Issued, c.Received, c.Valid, c.Invalid} {
		if m.Present&(1<<i) == 0 {
			continue
		}
		dst = append(dst, ',', '"')
		dst = append(dst, countFieldNames[i]...)
		dst = append(dst, '"', ':')
		dst = strconv.AppendInt(dst, v, 10)
	}
	if hasVotesMember(m) {
		sortVotes(m.Votes)
		dst = append(dst, `,"votes":{`...)
		for i, v := range m.Votes {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, v.Candidate)
			dst = append(dst, ':')
			dst = strconv.AppendInt(dst, v.Count, 10)
		}
		dst = append(dst, '}')
	}
	if m.Reason != "" || m.Present&FormEmptyReason != 0 {
		dst = append(dst, `,"reason":`...)
		dst = appendJSONString(dst, m.Reason)
	}
	if m.Signature != "" {
		dst = append(dst, `,"signature":`...)
		dst = appendJSONString(dst, m.Signature)
	}
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string, leaving non-ASCII UTF-8 as is
// so Vietnamese text stays readable.
func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // escapes <, >, & too; harmless and safe for HTML
	return append(dst, b...)
}
