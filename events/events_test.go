package events_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

func sample() tally.Minutes {
	return tally.Minutes{
		Election: "hn-2021", Contest: "QH", Station: "LB-NT-01", Version: 3, Status: tally.Final,
		Counts:  tally.Counts{Registered: 1850, Voted: 1832, Issued: 1832, Received: 1831, Valid: 1810, Invalid: 21},
		Present: tally.HasAllCounts,
		Votes:   []tally.Vote{{Candidate: "QH-2", Count: 1211}, {Candidate: "QH-1", Count: 1500}},
		Reason:  "sửa số phiếu ứng cử viên sau kiểm lại — Tổ bầu cử số 1",
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	for _, m := range []tally.Minutes{
		sample(),
		{Election: "e", Contest: "c", Station: "s", Version: 1, Status: tally.Withdrawn},
		{Election: "e", Contest: "c", Station: "s", Version: -5, Status: 9, Present: 3, Counts: tally.Counts{Registered: -1}, Signature: "sig"},
	} {
		in := m
		in.Votes = append([]tally.Vote(nil), m.Votes...)
		data := events.AppendBinary(nil, &in)
		if data[0] != events.BinaryMagic {
			t.Fatalf("first byte %x", data[0])
		}
		var out tally.Minutes
		if err := events.DecodeBinary(data, &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Votes) == 0 {
			out.Votes = nil
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("round trip:\n in %+v\nout %+v", in, out)
		}
	}
}

// TestBinaryIsCanonical: the same content in any vote order encodes to the
// same bytes, which is what makes the hash a content identity.
func TestBinaryIsCanonical(t *testing.T) {
	a, b := sample(), sample()
	b.Votes = []tally.Vote{b.Votes[1], b.Votes[0]}
	if !bytes.Equal(events.AppendBinary(nil, &a), events.AppendBinary(nil, &b)) {
		t.Fatal("vote order changes the encoding")
	}
	c := sample()
	c.Reason = "khác"
	if bytes.Equal(events.AppendBinary(nil, &a), events.AppendBinary(nil, &c)) {
		t.Fatal("different content, same encoding")
	}
}

func TestDecodeBinaryRejectsCorruption(t *testing.T) {
	m := sample()
	good := events.AppendBinary(nil, &m)
	for name, data := range map[string][]byte{
		"empty":     nil,
		"json":      []byte(`{"a":1}`),
		"format":    append([]byte{events.BinaryMagic, 99}, good[2:]...),
		"truncated": good[:len(good)-3],
		"trailing":  append(append([]byte(nil), good...), 0),
		"huge vote count": {events.BinaryMagic, 1, 0, 0, 0, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0,
			0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		var out tally.Minutes
		if err := events.DecodeBinary(data, &out); !errors.Is(err, events.ErrCorrupt) {
			t.Errorf("%s: err %v, want ErrCorrupt", name, err)
		}
	}
}

func TestDecodeBinaryAllocatesNothing(t *testing.T) {
	m := sample()
	data := events.AppendBinary(nil, &m)
	var out tally.Minutes
	out.Votes = make([]tally.Vote, 0, 8)
	if n := testing.AllocsPerRun(100, func() {
		if err := events.DecodeBinary(data, &out); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per decode", n)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	m := sample()
	js := events.AppendJSON(nil, &m)
	want := `{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":3,"status":"final","registered":1850,"voted":1832,"issued":1832,"received":1831,"valid":1810,"invalid":21,"votes":{"QH-1":1500,"QH-2":1211},"reason":"sửa số phiếu ứng cử viên sau kiểm lại — Tổ bầu cử số 1"}`
	if string(js) != want {
		t.Fatalf("AppendJSON:\n got %s\nwant %s", js, want)
	}
	d, err := events.DecodeJSONObject(js)
	if err != nil || len(d.Problems) > 0 {
		t.Fatalf("decode: %v %v", err, d.Problems)
	}
	if !reflect.DeepEqual(d.Minutes, m) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", d.Minutes, m)
	}
}

func TestDecodeJSONShapes(t *testing.T) {
	obj := `{"election":"e","contest":"c","station":"s","version":1,"status":"partial","registered":1,"voted":1,"issued":1,"received":1,"valid":1,"invalid":0}`
	for name, body := range map[string]string{
		"object": obj,
		"array":  "[" + obj + "," + obj + "]",
		"ndjson": obj + "\n" + obj + "\n",
	} {
		ds, err := events.DecodeJSON([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := 1
		if name != "object" {
			want = 2
		}
		if len(ds) != want {
			t.Fatalf("%s: %d minutes, want %d", name, len(ds), want)
		}
		for _, d := range ds {
			if len(d.Problems) > 0 {
				t.Fatalf("%s: %v", name, d.Problems)
			}
		}
	}
	for name, body := range map[string]string{
		"empty": "", "garbage": "{bad", "not an object": "42", "array of numbers": "[1,2]",
		"empty array": "[]", "string": `"x"`,
	} {
		if _, err := events.DecodeJSON([]byte(body)); !errors.Is(err, events.ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

func TestDecodeJSONFieldProblems(t *testing.T) {
	for _, tc := range []struct {
		name, body, field, rule string
	}{
		{"fractional count", `{"voted":1.5}`, "voted", tally.RuleInteger},
		{"count as string", `{"voted":"12"}`, "voted", tally.RuleType},
		{"count as bool", `{"valid":true}`, "valid", tally.RuleType},
		{"huge count", `{"valid":123456789012345678901234567890}`, "valid", tally.RuleInteger},
		{"fractional vote", `{"votes":{"A":2.5}}`, "votes.A", tally.RuleInteger},
		{"votes not object", `{"votes":[1]}`, "votes", tally.RuleType},
		{"station not string", `{"station":7}`, "station", tally.RuleType},
		{"unknown status", `{"status":"done"}`, "status", tally.RuleStatus},
		{"unknown field", `{"recieved":3}`, "recieved", tally.RuleUnknownField},
		{"missing version", `{}`, "version", tally.RuleRequired},
		{"missing status", `{}`, "status", tally.RuleRequired},
	} {
		d, err := events.DecodeJSONObject([]byte(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		found := false
		for _, v := range d.Problems {
			if v.Field == tc.field && v.Rule == tc.rule {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: problems %v, want field %q rule %q", tc.name, d.Problems, tc.field, tc.rule)
		}
	}
}

func TestSubjects(t *testing.T) {
	e, err := tally.Parse([]byte(`{"id":"hn-2021","name":"Bầu cử","date":"2021-05-23",
	"areas":[{"id":"HN","name":"Hà Nội","level":"province"},{"id":"LB","name":"Long Biên","level":"district","parent":"HN"},{"id":"LB-NT","name":"Ngọc Thụy","level":"ward","parent":"LB"}],
	"stations":[{"id":"LB-NT-01","name":"Khu vực 1","ward":"LB-NT","registered":100}],
	"contests":[{"id":"QH","name":"Quốc hội","level":"national","units":[{"id":"U","name":"Đơn vị","seats":1,"areas":["LB"],"stations":[],"candidates":[{"id":"A","name":"A","born":"1970-01-01"},{"id":"B","name":"B","born":"1970-01-01"}]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	subj := events.Subject(e, 0, "QH")
	if subj != "tally.hn-2021.minutes.HN.LB-NT-01.QH" {
		t.Fatalf("subject %q", subj)
	}
	if p := events.Province(e, 0); p != "HN" {
		t.Fatalf("province %q", p)
	}
	if !strings.HasPrefix(subj, strings.TrimSuffix(events.StreamSubjects("hn-2021"), ">")) {
		t.Fatalf("subject %q outside the stream's %q", subj, events.StreamSubjects("hn-2021"))
	}
	if f := events.StationSubjects(e, 0); f != "tally.hn-2021.minutes.HN.LB-NT-01.*" {
		t.Fatalf("station filter %q", f)
	}
	prov, st, c, ok := events.SplitSubject("hn-2021", subj)
	if !ok || prov != "HN" || st != "LB-NT-01" || c != "QH" {
		t.Fatalf("SplitSubject: %q %q %q %v", prov, st, c, ok)
	}
	// A stream created before v2 holds subjects of the v1 form; they stay
	// readable: the station is the token before the contest.
	prov, st, c, ok = events.SplitSubject("hn-2021", "tally.hn-2021.minutes.LB.LB-NT.LB-NT-01.QH")
	if !ok || prov != "" || st != "LB-NT-01" || c != "QH" {
		t.Fatalf("SplitSubject of a v1 subject: %q %q %q %v", prov, st, c, ok)
	}
	for _, bad := range []string{"tally.other.minutes.HN.LB-NT-01.QH", "tally.hn-2021.minutes.HN.QH", "tally.hn-2021.minutes.QH",
		"tally.hn-2021.minutes.LB.LB-NT.S.QH.x", "tally.hn-2021.minutes.HN.S.", "tally.hn-2021.minutes.HN..QH", "tally.hn-2021.minutes..S.QH"} {
		if _, _, ok := events.ParseSubject("hn-2021", bad); ok {
			t.Errorf("ParseSubject(%q) accepted", bad)
		}
	}
}

func TestMsgIDIsDeterministic(t *testing.T) {
	a, b := sample(), sample()
	pa, pb := events.AppendBinary(nil, &a), events.AppendBinary(nil, &b)
	if events.MsgID(&a, pa) != events.MsgID(&b, pb) {
		t.Fatal("same content, different ids")
	}
	b.Votes[0].Count++
	pb = events.AppendBinary(nil, &b)
	if events.MsgID(&a, pa) == events.MsgID(&b, pb) {
		t.Fatal("different content, same id")
	}
}

// FuzzDecodeBinary: no input crashes the decoder or decodes without
// saying why it failed; whatever decodes re-encodes to a payload that
// decodes to the same minutes, and that encoding is a fixed point (the
// canonical form the content hash is taken of).
func FuzzDecodeBinary(f *testing.F) {
	m := sample()
	f.Add(events.AppendBinary(nil, &m))
	f.Add([]byte{events.BinaryMagic, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		var out tally.Minutes
		if err := events.DecodeBinary(data, &out); err != nil {
			if !errors.Is(err, events.ErrCorrupt) || err.Error() == "" {
				t.Fatalf("decode error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again := events.AppendBinary(nil, &out) // sorts out.Votes
		var out2 tally.Minutes
		if err := events.DecodeBinary(again, &out2); err != nil {
			t.Fatalf("re-encoded payload does not decode: %v", err)
		}
		if len(out.Votes) == 0 && len(out2.Votes) == 0 {
			out.Votes, out2.Votes = nil, nil
		}
		if !reflect.DeepEqual(out, out2) {
			t.Fatalf("re-encoding changed the minutes:\n%+v\n%+v", out, out2)
		}
		if third := events.AppendBinary(nil, &out2); !bytes.Equal(again, third) {
			t.Fatalf("the canonical encoding is not a fixed point:\n%x\n%x", again, third)
		}
	})
}

// FuzzDecodeJSON: no body crashes the JSON decoder; a refused body wraps
// ErrMalformed; every problem names a rule and says what is wrong (and a
// field, unless the unknown field is the key ""); minutes that decode
// without problems survive AppendJSON and decode again identically.
func FuzzDecodeJSON(f *testing.F) {
	m := sample()
	f.Add(events.AppendJSON(nil, &m))
	f.Add([]byte(`[{"version":1},{"votes":{"a":1.5}}]`))
	f.Add([]byte("{}\n{}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		ds, err := events.DecodeJSON(body)
		if err != nil {
			if !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("decode error %v does not wrap ErrMalformed", err)
			}
			return
		}
		for i, d := range ds {
			for _, p := range d.Problems {
				if p.Index != i || p.Rule == "" || p.Message == "" || p.Field == "" && p.Rule != tally.RuleUnknownField {
					t.Fatalf("minutes %d: malformed problem %+v", i, p)
				}
			}
			if len(d.Problems) > 0 {
				continue
			}
			d2, err := events.DecodeJSONObject(events.AppendJSON(nil, &d.Minutes)) // sorts the votes
			if err != nil || len(d2.Problems) > 0 {
				t.Fatalf("re-encoded minutes do not decode: %v %v", err, d2.Problems)
			}
			a, b := d.Minutes, d2.Minutes
			if len(a.Votes) == 0 && len(b.Votes) == 0 {
				a.Votes, b.Votes = nil, nil
			}
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("round trip changed the minutes:\n%+v\n%+v", a, b)
			}
		}
	})
}
