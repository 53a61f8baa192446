package events

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tallyvn/tally/tally"
)

func fastSample() tally.Minutes {
	return tally.Minutes{
		Election: "hn-2021", Contest: "QH", Station: "LB-NT-01", Version: 3, Status: tally.Final,
		Counts:  tally.Counts{Registered: 1850, Voted: 1832, Issued: 1832, Received: 1831, Valid: 1810, Invalid: 21},
		Present: tally.HasAllCounts,
		Votes:   []tally.Vote{{Candidate: "QH-1", Count: 1500}, {Candidate: "QH-2", Count: 1211}},
		Reason:  "sửa số phiếu ứng cử viên sau kiểm lại — Tổ bầu cử số 1",
	}
}

// sameAsSlow fails t unless decodeFast, when it accepts data, reads what
// the decoder that names every problem reads, with no problem.
func sameAsSlow(t *testing.T, data []byte) (accepted bool) {
	t.Helper()
	var fast, aliased tally.Minutes
	ok := decodeFast(data, &fast, false)
	if okA := decodeFast(data, &aliased, true); okA != ok || ok && !reflect.DeepEqual(fast, aliased) {
		t.Fatalf("%s: aliasing changes the answer: %v %+v, %v %+v", data, ok, fast, okA, aliased)
	}
	if !ok {
		return false
	}
	slow, err := decodeObjectSlow(data)
	if err != nil || len(slow.Problems) > 0 {
		t.Fatalf("%s: decodeFast accepts what the full decoder refuses: %v %v", data, err, slow.Problems)
	}
	if len(slow.Minutes.Votes) == 0 {
		slow.Minutes.Votes = nil
	}
	if !reflect.DeepEqual(fast, slow.Minutes) {
		t.Fatalf("%s:\nfast %+v\nslow %+v", data, fast, slow.Minutes)
	}
	return true
}

// TestDecodeFastTakesTheUsualForms: what AppendJSON writes, indented or
// not, signed or not, goes the fast way, to the same minutes.
func TestDecodeFastTakesTheUsualForms(t *testing.T) {
	signedNoVotes := tally.Minutes{Election: "e", Contest: "c", Station: "s", Version: 1, Status: tally.Withdrawn, Signature: "sig", Present: FormVotes | FormEmptyReason}
	signed := fastSample()
	signed.Signature = "c2lnbmF0dXJl"
	for _, m := range []tally.Minutes{fastSample(), signed, signedNoVotes,
		{Election: "e", Contest: "c", Station: "s", Version: 1, Status: tally.Withdrawn},
		{Election: "e", Contest: "c", Station: "s", Version: 1, Status: tally.Partial, Present: tally.HasRegistered, Counts: tally.Counts{Registered: -5}},
	} {
		js := AppendJSON(nil, &m)
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, js, "\t", "  "); err != nil {
			t.Fatal(err)
		}
		for _, data := range [][]byte{js, pretty.Bytes()} {
			if !sameAsSlow(t, data) {
				t.Fatalf("the fast decoder refuses %s", data)
			}
			var got tally.Minutes
			decodeFast(data, &got, true)
			want := m
			if len(want.Votes) == 0 {
				want.Votes = nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s:\n got %+v\nwant %+v", data, got, want)
			}
		}
	}
	m := fastSample()
	js := AppendJSON(nil, &m)
	var out tally.Minutes
	out.Votes = make([]tally.Vote, 0, 8)
	if n := testing.AllocsPerRun(100, func() {
		if !decodeFast(js, &out, true) {
			t.Fatal("refused")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per decode", n)
	}
}

// TestDecodeFastLeavesTheRestToTheFullDecoder: anything with a problem, or
// that the fast decoder does not read, is refused by it.
func TestDecodeFastLeavesTheRestToTheFullDecoder(t *testing.T) {
	base := `"election":"e","contest":"c","station":"s","version":1,"status":"partial"`
	for _, data := range []string{
		`{` + base + `,"registered":1,"registered":2}`,
		`{` + base + `,"votes":{"a":1,"a":2}}`,
		`{` + base + `,"votes":{"a":1},"votes":{"a":1}}`,
		`{` + base + `,"reason":null}`,
		`{` + base + `,"reason":"\u0061"}`,
		`{` + base + `,"registered":1.0}`,
		`{` + base + `,"registered":1e3}`,
		`{` + base + `,"registered":01}`,
		`{` + base + `,"registered":"1"}`,
		`{` + base + `,"registered":1234567890123456789}`,
		`{` + base + `,"extra":1}`,
		`{` + base + `} x`,
		`{` + base + `,}`,
		`{"election":"e","version":1}`,
		`{"election":"e","status":"partial"}`,
		`{` + base[:len(base)-len(`"partial"`)] + `"done"}`,
		"{\"election\":\"\xff\",\"version\":1,\"status\":\"partial\"}",
		"{\"election\":\"a\tb\",\"version\":1,\"status\":\"partial\"}",
		`[{` + base + `}]`,
		``,
	} {
		if sameAsSlow(t, []byte(data)) {
			t.Errorf("the fast decoder accepts %s", data)
		}
	}
}

// FuzzDecodeFast: whatever the fast decoder accepts, the full decoder
// reads alike and finds no problem in.
func FuzzDecodeFast(f *testing.F) {
	m := fastSample()
	f.Add(AppendJSON(nil, &m))
	f.Add([]byte(`{"election":"e","contest":"c","station":"s","version":-0,"status":"withdrawn","votes":{},"reason":"","signature":"x"}`))
	f.Add([]byte(`{"version":1,"status":"final","votes":{"":0,"b":-1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sameAsSlow(t, data)
	})
}
