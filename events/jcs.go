package events

// The JSON Canonicalization Scheme (RFC 8785, "JCS") is what a seal signs
// (CONTRACT §7): one byte sequence for every JSON value, whatever member
// order, whitespace and escapes the sender chose. Its rules:
//
//   - no whitespace;
//   - object members sorted by their names compared as arrays of UTF-16
//     code units (not UTF-8 bytes: "\ufb33" sorts after "\ud83d\ude00");
//   - strings escaped as ECMAScript's JSON.stringify does: \" \\ \b \f \n
//     \r \t, \u00xx (lowercase hex) for the other control characters, and
//     everything else, U+2028, U+007F and all non-ASCII included, as UTF-8;
//   - numbers as ECMAScript prints an IEEE 754 double (Number.toString):
//     integers up to 10^21 as plain digits, others in the shortest form
//     that reads back to the same double, with an exponent outside
//     [1e-7, 1e21);
//   - input must be I-JSON (RFC 7493): valid UTF-8, no lone surrogate, no
//     duplicate member names, no number beyond the range of a double.
//
// # The sealed form of minutes
//
// The fold never sees the JSON a station sent: the gateway stores the
// binary form, and a station on NATS may publish either. So the signed
// bytes are defined from the minutes as tally reads them, not from the
// sender's text: CanonicalJSON(m) is the canonical form of exactly the
// members AppendJSON writes for m, minus "signature". A station that
// builds its minutes, signs CanonicalJSON and sends AppendJSON verifies;
// so does one that signs the RFC 8785 form of the object it sends, as long
// as that object holds the members AppendJSON would write:
//
//   - election, contest, station, version, status: always;
//   - a count (registered ... invalid): when given (Minutes.Present);
//   - votes: always, {} when empty, except in withdrawn minutes with no
//     votes, where it is left out;
//   - reason: when not empty;
//   - no member with a null value.
//
// A station whose JSON holds an empty votes object or an empty reason
// where this rule leaves it out (or leaves out an empty votes object the
// rule writes) signs, as CONTRACT §7a says, the RFC 8785 form of what it
// sent. The decoder records those departures of signed minutes in two
// bits of Minutes.Present above the counts' (FormVotes, FormEmptyReason);
// the binary form keeps them, and CanonicalJSON and AppendJSON write
// exactly the members they say. So VerifySeal checks one form, the one
// sent, and no other: one verification per minutes, whatever a forger
// sends.
//
// Two integers beyond ±(2^53−1) can print the same (RFC 8785 reads numbers
// as doubles), so minutes with such a number cannot be sealed; neither can
// minutes with text that is not valid UTF-8. Sign refuses them and
// VerifySeal rejects them.

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tallyvn/tally/tally"
)

// ErrNotIJSON is returned (wrapped) by Canonicalize for input that is not
// JSON, or is JSON outside I-JSON (RFC 7493) and so has no canonical form.
var ErrNotIJSON = errors.New("events: not I-JSON")

// Form bits of Minutes.Present, above the counts' (tally.Has*): set by
// the JSON decoder on minutes that carry a signature, they say where the
// JSON sent departs from the sealed form's defaults.
const (
	// FormVotes: the votes member is absent where the default writes it
	// (partial or final minutes without votes), or an empty object where
	// the default leaves it out (withdrawn minutes).
	FormVotes uint8 = 1 << 6
	// FormEmptyReason: "reason":"" was sent.
	FormEmptyReason uint8 = 1 << 7
)

// hasVotesMember reports whether the JSON forms of m hold a votes member.
func hasVotesMember(m *tally.Minutes) bool {
	def := len(m.Votes) > 0 || m.Status != tally.Withdrawn
	if len(m.Votes) == 0 && m.Present&FormVotes != 0 {
		return !def
	}
	return def
}

// maxSafeInteger is 2^53−1: every integer up to it in magnitude is a
// distinct double, so it prints as itself and no other integer prints the
// same (ECMAScript's Number.MAX_SAFE_INTEGER).
const maxSafeInteger = 1<<53 - 1

// CanonicalJSON returns the bytes a seal signs: the RFC 8785 form of m's
// JSON (AppendJSON) without its signature member. See the package notes
// on the sealed form. It does not modify m.
func CanonicalJSON(m *tally.Minutes) []byte {
	return AppendCanonicalJSON(nil, m)
}

// AppendCanonicalJSON appends CanonicalJSON(m) to dst.
func AppendCanonicalJSON(dst []byte, m *tally.Minutes) []byte {
	return appendCanonical(dst, m)
}

// appendCanonical writes the members in RFC 8785 order, which for these
// ASCII names is byte order: contest, election, invalid, issued, reason,
// received, registered, station, status, valid, version, voted, votes.
func appendCanonical(dst []byte, m *tally.Minutes) []byte {
	c := &m.Counts
	dst = append(dst, `{"contest":`...)
	dst = appendCanonicalString(dst, m.Contest)
	dst = append(dst, `,"election":`...)
	dst = appendCanonicalString(dst, m.Election)
	dst = appendCanonicalCount(dst, m, tally.HasInvalid, `,"invalid":`, c.Invalid)
	dst = appendCanonicalCount(dst, m, tally.HasIssued, `,"issued":`, c.Issued)
	if m.Reason != "" || m.Present&FormEmptyReason != 0 {
		dst = append(dst, `,"reason":`...)
		dst = appendCanonicalString(dst, m.Reason)
	}
	dst = appendCanonicalCount(dst, m, tally.HasReceived, `,"received":`, c.Received)
	dst = appendCanonicalCount(dst, m, tally.HasRegistered, `,"registered":`, c.Registered)
	dst = append(dst, `,"station":`...)
	dst = appendCanonicalString(dst, m.Station)
	dst = append(dst, `,"status":`...)
	dst = appendCanonicalString(dst, m.Status.String())
	dst = appendCanonicalCount(dst, m, tally.HasValid, `,"valid":`, c.Valid)
	dst = append(dst, `,"version":`...)
	dst = appendCanonicalInt(dst, m.Version)
	dst = appendCanonicalCount(dst, m, tally.HasVoted, `,"voted":`, c.Voted)
	// The same presence rule as AppendJSON.
	if hasVotesMember(m) {
		dst = append(dst, `,"votes":{`...)
		dst = appendCanonicalVotes(dst, m.Votes)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

func appendCanonicalCount(dst []byte, m *tally.Minutes, bit uint8, member string, v int64) []byte {
	if m.Present&bit == 0 {
		return dst
	}
	dst = append(dst, member...)
	return appendCanonicalInt(dst, v)
}

// appendCanonicalVotes writes the members of the votes object in RFC 8785
// order. Votes decoded from JSON are already in that order (ids are ASCII
// and the decoder sorts them), so only unusual input costs a sort, of a
// copy: m is not modified.
func appendCanonicalVotes(dst []byte, votes []tally.Vote) []byte {
	cmp := func(a, b tally.Vote) int { return compareUTF16(a.Candidate, b.Candidate) }
	if !slices.IsSortedFunc(votes, cmp) {
		votes = slices.Clone(votes)
		slices.SortStableFunc(votes, cmp)
	}
	for i := range votes {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendCanonicalString(dst, votes[i].Candidate)
		dst = append(dst, ':')
		dst = appendCanonicalInt(dst, votes[i].Count)
	}
	return dst
}

// appendCanonicalInt writes an integer as RFC 8785 does: as the double it
// reads as. Beyond ±(2^53−1) that is not the integer itself, which is why
// such minutes cannot be sealed (sealable).
func appendCanonicalInt(dst []byte, v int64) []byte {
	if -maxSafeInteger <= v && v <= maxSafeInteger {
		return strconv.AppendInt(dst, v, 10)
	}
	return appendES6Number(dst, float64(v))
}

// appendCanonicalString writes s as RFC 8785 §3.2.2.2 says. Bytes that are
// not UTF-8 are written as U+FFFD each, as AppendJSON (encoding/json) does,
// so the two stay in agreement; such minutes cannot be sealed.
func appendCanonicalString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || n != 1 {
				i += n
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = utf8.AppendRune(dst, utf8.RuneError)
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, `\b`...)
		case '\f':
			dst = append(dst, `\f`...)
		case '\n':
			dst = append(dst, `\n`...)
		case '\r':
			dst = append(dst, `\r`...)
		case '\t':
			dst = append(dst, `\t`...)
		default:
			const hex = "0123456789abcdef"
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendES6Number writes f as ECMAScript's Number.prototype.toString
// (ECMA-262 §7.1.12.1, RFC 8785 §3.2.2.3). f must be finite.
func appendES6Number(dst []byte, f float64) []byte {
	if f == 0 { // and -0
		return append(dst, '0')
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	// The shortest digits that read back as f, closest to f among those:
	// the s and k of ECMA-262 (strconv implements the same choice).
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // d[.ddd]e±xx
	mant, exp, _ := bytes.Cut(e, []byte{'e'})
	x, _ := strconv.Atoi(string(exp))
	var digits [20]byte
	s := append(digits[:0], mant[0])
	if len(mant) > 2 {
		s = append(s, mant[2:]...)
	}
	k, n := len(s), x+1 // f = 0.s × 10^n
	switch {
	case k <= n && n <= 21:
		dst = append(dst, s...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, s[:n]...)
		dst = append(dst, '.')
		dst = append(dst, s[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, s...)
	default:
		dst = append(dst, s[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, s[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}

// compareUTF16 compares a and b as arrays of UTF-16 code units (RFC 8785
// §3.2.3). That is code point order, except that a supplementary character
// (a surrogate pair, 0xD800…) sorts before U+E000…U+FFFF.
func compareUTF16(a, b string) int {
	for len(a) > 0 && len(b) > 0 {
		if a[0] < utf8.RuneSelf && b[0] < utf8.RuneSelf {
			if a[0] != b[0] {
				return int(a[0]) - int(b[0])
			}
			a, b = a[1:], b[1:]
			continue
		}
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			ka, kb := utf16Key(ra), utf16Key(rb)
			if ka < kb {
				return -1
			}
			return 1
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) - len(b)
}

// utf16Key maps a rune to a number that orders like its UTF-16 code units:
// the first unit in the high half, the second (if any) in the low half.
func utf16Key(r rune) uint32 {
	if r >= 0x10000 {
		hi, lo := utf16.EncodeRune(r)
		return uint32(hi)<<16 | uint32(lo)
	}
	return uint32(r) << 16
}

// maxDepth bounds the nesting Canonicalize accepts, as encoding/json does.
const maxDepth = 10000

// Canonicalize returns the RFC 8785 form of one JSON value (surrounding
// whitespace allowed). Input that is not I-JSON (invalid UTF-8, a lone
// surrogate escape, a duplicate member name, a number out of the range of
// a double) or nested deeper than 10,000 has no canonical form: the error
// wraps ErrNotIJSON and says where.
func Canonicalize(raw []byte) ([]byte, error) {
	p := jcsParser{in: raw}
	p.space()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos < len(p.in) {
		return nil, p.fail("data after the JSON value")
	}
	return v.appendTo(nil), nil
}

// jcsValue is a parsed JSON value; scalars hold their canonical text.
type jcsValue struct {
	text    []byte      // a scalar's canonical form (string, number, literal)
	members []jcsMember // an object's, when object
	elems   []jcsValue  // an array's, when array
	kind    byte        // 's' scalar, '{' object, '[' array
}

type jcsMember struct {
	name  string // decoded
	value jcsValue
}

func (v *jcsValue) appendTo(dst []byte) []byte {
	switch v.kind {
	case '{':
		dst = append(dst, '{')
		for i := range v.members {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendCanonicalString(dst, v.members[i].name)
			dst = append(dst, ':')
			dst = v.members[i].value.appendTo(dst)
		}
		return append(dst, '}')
	case '[':
		dst = append(dst, '[')
		for i := range v.elems {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = v.elems[i].appendTo(dst)
		}
		return append(dst, ']')
	}
	return append(dst, v.text...)
}

type jcsParser struct {
	in  []byte
	pos int
}

func (p *jcsParser) fail(format string, args ...any) error {
	return fmt.Errorf("%w: offset %d: %s", ErrNotIJSON, p.pos, fmt.Sprintf(format, args...))
}

func (p *jcsParser) space() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jcsParser) value(depth int) (jcsValue, error) {
	if p.pos >= len(p.in) {
		return jcsValue{}, p.fail("unexpected end of input")
	}
	switch c := p.in[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, err := p.string()
		if err != nil {
			return jcsValue{}, err
		}
		return jcsValue{kind: 's', text: appendCanonicalString(nil, s)}, nil
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	default:
		return jcsValue{}, p.fail("unexpected %q", c)
	}
}

func (p *jcsParser) literal(word string) (jcsValue, error) {
	if !bytes.HasPrefix(p.in[p.pos:], []byte(word)) {
		return jcsValue{}, p.fail("invalid literal, want %s", word)
	}
	p.pos += len(word)
	return jcsValue{kind: 's', text: []byte(word)}, nil
}

func (p *jcsParser) object(depth int) (jcsValue, error) {
	if depth > maxDepth {
		return jcsValue{}, p.fail("nested deeper than %d", maxDepth)
	}
	p.pos++ // {
	v := jcsValue{kind: '{'}
	p.space()
	if p.pos < len(p.in) && p.in[p.pos] == '}' {
		p.pos++
		return v, nil
	}
	for {
		p.space()
		if p.pos >= len(p.in) || p.in[p.pos] != '"' {
			return jcsValue{}, p.fail("want a member name")
		}
		name, err := p.string()
		if err != nil {
			return jcsValue{}, err
		}
		p.space()
		if p.pos >= len(p.in) || p.in[p.pos] != ':' {
			return jcsValue{}, p.fail("want ':' after member name")
		}
		p.pos++
		p.space()
		val, err := p.value(depth)
		if err != nil {
			return jcsValue{}, err
		}
		v.members = append(v.members, jcsMember{name: name, value: val})
		p.space()
		if p.pos < len(p.in) && p.in[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.in) && p.in[p.pos] == '}' {
			p.pos++
			break
		}
		return jcsValue{}, p.fail("want ',' or '}' in object")
	}
	slices.SortFunc(v.members, func(a, b jcsMember) int { return compareUTF16(a.name, b.name) })
	for i := 1; i < len(v.members); i++ {
		if v.members[i-1].name == v.members[i].name {
			return jcsValue{}, p.fail("duplicate member name %q", v.members[i].name)
		}
	}
	return v, nil
}

func (p *jcsParser) array(depth int) (jcsValue, error) {
	if depth > maxDepth {
		return jcsValue{}, p.fail("nested deeper than %d", maxDepth)
	}
	p.pos++ // [
	v := jcsValue{kind: '['}
	p.space()
	if p.pos < len(p.in) && p.in[p.pos] == ']' {
		p.pos++
		return v, nil
	}
	for {
		p.space()
		val, err := p.value(depth)
		if err != nil {
			return jcsValue{}, err
		}
		v.elems = append(v.elems, val)
		p.space()
		if p.pos < len(p.in) && p.in[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.in) && p.in[p.pos] == ']' {
			p.pos++
			return v, nil
		}
		return jcsValue{}, p.fail("want ',' or ']' in array")
	}
}

// string reads a JSON string and returns its value, refusing what I-JSON
// refuses: bytes that are not UTF-8 and unpaired surrogate escapes.
func (p *jcsParser) string() (string, error) {
	p.pos++ // "
	var out []byte
	start := p.pos
	for {
		if p.pos >= len(p.in) {
			return "", p.fail("unterminated string")
		}
		c := p.in[p.pos]
		switch {
		case c == '"':
			out = append(out, p.in[start:p.pos]...)
			p.pos++
			return string(out), nil
		case c < 0x20:
			return "", p.fail("control character %#02x in string must be escaped", c)
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(p.in[p.pos:])
			if r == utf8.RuneError && n == 1 {
				return "", p.fail("invalid UTF-8")
			}
			p.pos += n
		case c == '\\':
			out = append(out, p.in[start:p.pos]...)
			r, err := p.escape()
			if err != nil {
				return "", err
			}
			out = utf8.AppendRune(out, r)
			start = p.pos
		default:
			p.pos++
		}
	}
}

// escape reads one escape sequence (a surrogate pair counts as one).
func (p *jcsParser) escape() (rune, error) {
	if p.pos+1 >= len(p.in) {
		return 0, p.fail("unterminated escape")
	}
	c := p.in[p.pos+1]
	p.pos += 2
	switch c {
	case '"', '\\', '/':
		return rune(c), nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
		r, err := p.hex4()
		if err != nil {
			return 0, err
		}
		switch {
		case 0xDC00 <= r && r <= 0xDFFF:
			return 0, p.fail("unpaired surrogate \\u%04x", r)
		case 0xD800 <= r && r <= 0xDBFF:
			if p.pos+1 >= len(p.in) || p.in[p.pos] != '\\' || p.in[p.pos+1] != 'u' {
				return 0, p.fail("unpaired surrogate \\u%04x", r)
			}
			p.pos += 2
			lo, err := p.hex4()
			if err != nil {
				return 0, err
			}
			if lo < 0xDC00 || lo > 0xDFFF {
				return 0, p.fail("unpaired surrogate \\u%04x", r)
			}
			return utf16.DecodeRune(r, lo), nil
		}
		return r, nil
	}
	return 0, p.fail("invalid escape \\%c", c)
}

func (p *jcsParser) hex4() (rune, error) {
	if p.pos+4 > len(p.in) {
		return 0, p.fail("short \\u escape")
	}
	var r rune
	for _, c := range p.in[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, p.fail("invalid \\u escape")
		}
	}
	p.pos += 4
	return r, nil
}

// number reads a JSON number (RFC 8259 grammar) as a double.
func (p *jcsParser) number() (jcsValue, error) {
	start := p.pos
	digits := func() int {
		n := 0
		for p.pos < len(p.in) && '0' <= p.in[p.pos] && p.in[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.in[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(p.in) && p.in[p.pos] == '0':
		p.pos++
	case digits() == 0:
		return jcsValue{}, p.fail("invalid number")
	}
	if p.pos < len(p.in) && p.in[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return jcsValue{}, p.fail("invalid number: no digit after '.'")
		}
	}
	if p.pos < len(p.in) && (p.in[p.pos] == 'e' || p.in[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.in) && (p.in[p.pos] == '+' || p.in[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return jcsValue{}, p.fail("invalid number: no digit in exponent")
		}
	}
	f, err := strconv.ParseFloat(string(p.in[start:p.pos]), 64)
	if err != nil || math.IsInf(f, 0) {
		return jcsValue{}, p.fail("number %s is out of the range of a double", p.in[start:p.pos])
	}
	return jcsValue{kind: 's', text: appendES6Number(nil, f)}, nil
}
