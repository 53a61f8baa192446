package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

// TestCanonicalizeRFC8785 checks the examples of RFC 8785 and of its
// reference implementation (cyberphone/json-canonicalization testdata).
func TestCanonicalizeRFC8785(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{
			// RFC 8785 §3.2.3: member names sorted by UTF-16 code units.
			"sorting",
			`{
			  "\u20ac": "Euro Sign",
			  "\r": "Carriage Return",
			  "\ufb33": "Hebrew Letter Dalet With Dagesh",
			  "1": "One",
			  "\ud83d\ude00": "Emoji: Grinning Face",
			  "\u0080": "Control",
			  "\u00f6": "Latin Small Letter O With Diaeresis"
			}`,
			"{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}",
		},
		{
			// RFC 8785 §3.2.4 (and testdata/values.json).
			"values",
			`{
			  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
			  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
			  "literals": [null, true, false]
			}`,
			`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
		},
		{
			"weird",
			`{
			  "\u20ac": "Euro Sign",
			  "1": "One",
			  "\u0080": "Control\u007f",
			  "\ud83d\ude02": "Smiley",
			  "\u00f6": "Latin Small Letter O With Diaeresis",
			  "\ufb33": "Hebrew Letter Dalet With Dagesh",
			  "</script>": "Browser Challenge"
			}`,
			"{\"1\":\"One\",\"</script>\":\"Browser Challenge\",\"\u0080\":\"Control\u007f\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😂\":\"Smiley\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}",
		},
		{
			"structures",
			`{
			  "1": {"f": {"f": "hi","F": 5} ,"\n": 56.0},
			  "10": { },
			  "": "empty",
			  "a": { },
			  "111": [ { } ],
			  "A": { }
			}`,
			`{"":"empty","1":{"\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}}`,
		},
		{
			"french",
			`{"peach": "This sorting order", "péché": "is wrong according to French", "pêche": "but canonicalization MUST", "sin": "ignore locale"}`,
			`{"peach":"This sorting order","péché":"is wrong according to French","pêche":"but canonicalization MUST","sin":"ignore locale"}`,
		},
		{"scalar", ` "a\u2028b" `, "\"a\u2028b\""},
		{"escapes", `"\u0000\u0001\b\f\n\r\t\u001f\u007f\/<>&"`, "\"\\u0000\\u0001\\b\\f\\n\\r\\t\\u001f\u007f/<>&\""},
		{"nested arrays", `[[ ], [1, [2, {"b":1, "a":[]}]], -0, 1E2, 1e-7]`, `[[],[1,[2,{"a":[],"b":1}]],0,100,1e-7]`},
	} {
		got, err := events.Canonicalize([]byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// TestCanonicalizeNumbers checks the number samples of RFC 8785 Appendix B:
// IEEE 754 doubles as ECMAScript prints them.
func TestCanonicalizeNumbers(t *testing.T) {
	for _, tc := range []struct {
		bits uint64
		want string
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"},
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	} {
		f := math.Float64frombits(tc.bits)
		for _, in := range []string{strconv.FormatFloat(f, 'g', -1, 64), strconv.FormatFloat(f, 'e', 20, 64)} {
			got, err := events.Canonicalize([]byte(in))
			if err != nil || string(got) != tc.want {
				t.Errorf("%#016x (%s): got %s, %v; want %s", tc.bits, in, got, err, tc.want)
			}
		}
	}
}

func TestCanonicalizeRejectsNonIJSON(t *testing.T) {
	for name, in := range map[string]string{
		"empty":                   "",
		"space only":              "  ",
		"two values":              "1 2",
		"trailing comma":          `[1,]`,
		"object trailing comma":   `{"a":1,}`,
		"unquoted name":           `{a:1}`,
		"missing colon":           `{"a" 1}`,
		"unterminated":            `{"a":1`,
		"unterminated string":     `"abc`,
		"bad literal":             `nul`,
		"leading zero":            `01`,
		"bare minus":              `-`,
		"dot without digits":      `1.`,
		"leading dot":             `.5`,
		"plus sign":               `+1`,
		"empty exponent":          `1e`,
		"hex":                     `0x10`,
		"infinite":                `1e400`,
		"negative infinite":       `-1e400`,
		"NaN":                     `NaN`,
		"invalid UTF-8":           "\"\xff\"",
		"invalid UTF-8 name":      "{\"\xc3\x28\":1}",
		"surrogate in UTF-8":      "\"\xed\xa0\x80\"",
		"lone high surrogate":     `"\ud83d"`,
		"high surrogate then a":   `"\ud83d\u0041"`,
		"lone low surrogate":      `"\ude00"`,
		"raw control character":   "\"a\tb\"",
		"bad escape":              `"\x41"`,
		"short unicode escape":    `"\u12"`,
		"duplicate names":         `{"a":1,"b":2,"a":3}`,
		"duplicate after escapes": `{"a":1,"\u0061":2}`,
		"too deep":                strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	} {
		got, err := events.Canonicalize([]byte(in))
		if !errors.Is(err, events.ErrNotIJSON) {
			t.Errorf("%s: Canonicalize(%.40q) = %q, %v; want ErrNotIJSON", name, in, got, err)
		}
	}
	// As deep as allowed is fine.
	if _, err := events.Canonicalize([]byte(strings.Repeat("[", 10000) + strings.Repeat("]", 10000))); err != nil {
		t.Errorf("10000 levels: %v", err)
	}
}

// TestCanonicalJSONGolden spells out the sealed form of the sample minutes,
// so a change to it (which would void every signature made) is seen.
func TestCanonicalJSONGolden(t *testing.T) {
	m := sample()
	m.Signature = "whatever"
	want := `{"contest":"QH","election":"hn-2021","invalid":21,"issued":1832,` +
		`"reason":"sửa số phiếu ứng cử viên sau kiểm lại — Tổ bầu cử số 1",` +
		`"received":1831,"registered":1850,"station":"LB-NT-01","status":"final",` +
		`"valid":1810,"version":3,"voted":1832,"votes":{"QH-1":1500,"QH-2":1211}}`
	if got := events.CanonicalJSON(&m); string(got) != want {
		t.Fatalf("CanonicalJSON:\n got %s\nwant %s", got, want)
	}
	if m.Votes[0].Candidate != "QH-2" {
		t.Fatal("CanonicalJSON reordered m.Votes")
	}
	w := tally.Minutes{Election: "e", Contest: "c", Station: "s", Version: 2, Status: tally.Withdrawn}
	if got, want := string(events.CanonicalJSON(&w)), `{"contest":"c","election":"e","station":"s","status":"withdrawn","version":2}`; got != want {
		t.Fatalf("withdrawn:\n got %s\nwant %s", got, want)
	}
	p := tally.Minutes{Election: "e", Contest: "c", Station: "s", Version: 1, Status: tally.Partial, Present: tally.HasRegistered, Counts: tally.Counts{Registered: 5}}
	if got, want := string(events.CanonicalJSON(&p)), `{"contest":"c","election":"e","registered":5,"station":"s","status":"partial","version":1,"votes":{}}`; got != want {
		t.Fatalf("partial without votes:\n got %s\nwant %s", got, want)
	}
}

// canonicalOfJSON is the sealed form computed the long way round: the JSON
// form without the signature, canonicalized by the general algorithm.
func canonicalOfJSON(t testing.TB, m *tally.Minutes) []byte {
	t.Helper()
	unsigned := *m
	unsigned.Signature = ""
	unsigned.Votes = append([]tally.Vote(nil), m.Votes...) // AppendJSON sorts in place
	js := events.AppendJSON(nil, &unsigned)
	c, err := events.Canonicalize(js)
	if err != nil {
		t.Fatalf("Canonicalize(AppendJSON(m)) = %v\nJSON: %s", err, js)
	}
	return c
}

// tricky holds strings whose escaping or ordering differ between JSON
// encoders, between UTF-8 and UTF-16, or from encoding/json's choices.
var tricky = []string{
	"", "a", "A", "a b", "Nguyễn Văn Hùng", "Đơn vị bầu cử số 3", "sửa — kiểm lại",
	"\x00", "\x01\x1f", "\t\n\r\b\f", "\x7f", "\"quoted\"", `back\slash`, "/", "<script>&</script>",
	"\u2028\u2029", "\u0080", "\u00f6", "\u20ac", "\ufb33", "\uffff", "\ue000",
	"😀", "😂🇻🇳", "𝄞", "a😀", "a\ufb33", "\U0010ffff",
}

// TestCanonicalJSONIsCanonicalizedJSON: the sealed form built directly
// from the minutes is exactly RFC 8785 applied to what AppendJSON sends
// (minus the signature), for Vietnamese text, control characters,
// U+2028, astral characters, names whose UTF-16 order is not their byte
// order, and every presence case.
func TestCanonicalJSONIsCanonicalizedJSON(t *testing.T) {
	cases := []tally.Minutes{
		sample(),
		{Election: "e", Contest: "c", Station: "s", Version: 1, Status: tally.Withdrawn},
		{Election: "e", Contest: "c", Station: "s", Version: 1, Status: tally.Withdrawn, Votes: []tally.Vote{{Candidate: "x"}}},
		{Election: "e", Contest: "c", Station: "s", Version: 1, Status: tally.Partial},
		{Election: "e", Contest: "c", Station: "s", Version: 7, Status: tally.Final, Present: tally.HasValid | tally.HasInvalid, Counts: tally.Counts{Valid: -3, Invalid: tally.MaxCount}},
		{Election: "e", Contest: "c", Station: "s", Version: 1 << 53, Status: tally.Partial},
		{Election: "e", Contest: "c", Station: "s", Version: math.MaxInt64, Status: tally.Partial},
		{Election: "e", Contest: "c", Station: "s", Version: math.MinInt64, Status: 9, Present: tally.HasAllCounts, Counts: tally.Counts{Registered: 1<<53 + 1, Voted: -(1<<53 + 3)}},
		{Election: "e\xff", Contest: "c\xc3", Station: "s", Version: 1, Status: tally.Partial, Reason: "bad \xed\xa0\x80 utf8", Votes: []tally.Vote{{Candidate: "\xfe", Count: 1}}},
		{
			Election: "hn-2021", Contest: "QH", Station: "LB-NT-01", Version: 1, Status: tally.Partial,
			// UTF-16 order: "a" < "é" < "€" < "😀" < "\ufb33" < "\uffff"; byte order puts 😀 last.
			Votes:     []tally.Vote{{Candidate: "\ufb33", Count: 1}, {Candidate: "😀", Count: 2}, {Candidate: "€", Count: 3}, {Candidate: "a", Count: 4}, {Candidate: "é", Count: 5}, {Candidate: "\uffff", Count: 6}},
			Reason:    "Tổ bầu cử số 1\u2028dòng 2\x00\x1f\x7f 😀",
			Signature: "c2ln",
		},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() string { return tricky[rng.IntN(len(tricky))] + tricky[rng.IntN(len(tricky))] }
	for range 500 {
		m := tally.Minutes{
			Election: pick(), Contest: pick(), Station: pick(),
			Version: rng.Int64N(1<<54) - 1<<53, Status: tally.Status(rng.IntN(5)),
			Present: uint8(rng.IntN(64)), Reason: pick(), Signature: pick(),
			Counts: tally.Counts{Registered: rng.Int64(), Voted: -rng.Int64N(100), Issued: rng.Int64N(1e9), Received: 1, Valid: 0, Invalid: rng.Int64N(1 << 60)},
		}
		seen := map[string]bool{}
		for range rng.IntN(6) {
			id := pick()
			if !seen[id] { // JSON objects hold each name once
				seen[id] = true
				m.Votes = append(m.Votes, tally.Vote{Candidate: id, Count: rng.Int64N(1e6)})
			}
		}
		cases = append(cases, m)
	}
	for i := range cases {
		m := &cases[i]
		// Decoding replaces bytes that are not UTF-8, so two distinct
		// candidate ids can meet; skip those (they cannot be sealed).
		if dupAfterDecode(m) {
			continue
		}
		before := append([]tally.Vote(nil), m.Votes...)
		got := events.CanonicalJSON(m)
		if want := canonicalOfJSON(t, m); !bytes.Equal(got, want) {
			t.Fatalf("case %d %+v:\nCanonicalJSON          %s\nCanonicalize(AppendJSON) %s", i, *m, got, want)
		}
		if !reflect.DeepEqual(before, m.Votes) {
			t.Fatalf("case %d: CanonicalJSON modified m.Votes", i)
		}
		if !json.Valid(got) {
			t.Fatalf("case %d: not valid JSON: %s", i, got)
		}
	}
}

func dupAfterDecode(m *tally.Minutes) bool {
	seen := map[string]bool{}
	for _, v := range m.Votes {
		k := strings.ToValidUTF8(v.Candidate, "\ufffd")
		if seen[k] {
			return true
		}
		seen[k] = true
	}
	return false
}

// TestCanonicalizeIsAFixedPoint: canonical output canonicalizes to itself
// and reads as the same JSON value.
func TestCanonicalizeIsAFixedPoint(t *testing.T) {
	for _, in := range canonicalizeSeeds {
		checkCanonicalize(t, []byte(in))
	}
}

var canonicalizeSeeds = []string{
	`{"b":[1,2.50,{"z":null,"y":true}],"a":"\u00e9\ud83d\ude00","c":-0.0}`,
	`[1e21, 1e-7, 123456789012345680000, 0.1, -1.5e-10, 5E-324]`,
	`{"\ufb33":1,"\ud83d\ude00":2,"\u20ac":3}`,
	`"\u2028 \u0000 \/"`,
	`{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":3,"status":"final","votes":{"QH-1":1500},"reason":"Tổ bầu cử"}`,
	`{"a":{"a":{"a":[[],{}]}}}`,
}

func checkCanonicalize(t *testing.T, in []byte) {
	t.Helper()
	out, err := events.Canonicalize(in)
	if err != nil {
		if !errors.Is(err, events.ErrNotIJSON) {
			t.Fatalf("error does not wrap ErrNotIJSON: %v", err)
		}
		return
	}
	if !json.Valid(in) {
		t.Fatalf("Canonicalize accepted invalid JSON %q", in)
	}
	if !json.Valid(out) {
		t.Fatalf("Canonicalize(%q) = %q: not valid JSON", in, out)
	}
	again, err := events.Canonicalize(out)
	if err != nil || !bytes.Equal(again, out) {
		t.Fatalf("not a fixed point:\n in    %q\n out   %q\n again %q, %v", in, out, again, err)
	}
	var a, b any
	if json.Unmarshal(in, &a) != nil || json.Unmarshal(out, &b) != nil || !reflect.DeepEqual(a, b) {
		t.Fatalf("Canonicalize changed the value:\n in  %q\n out %q", in, out)
	}
}

// FuzzCanonicalize: no input panics; what canonicalizes is valid JSON,
// the same value, and its own canonical form.
func FuzzCanonicalize(f *testing.F) {
	for _, s := range canonicalizeSeeds {
		f.Add([]byte(s))
	}
	m := sample()
	f.Add(events.AppendJSON(nil, &m))
	f.Fuzz(func(t *testing.T, in []byte) {
		checkCanonicalize(t, in)
	})
}
