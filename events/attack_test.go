package events_test

// Issue 13's attacks on the decoding and the seal check, written against
// the API that existed before the fix so that they can run on the old code
// too (where each failed).

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

// TestSealVerifiesOneForm: a signature verifies only over the form the
// station sent. Signed over the default form but sent with an empty
// reason, or an empty votes object where the default leaves it out (or
// the other way round), it does not: the checker tries one form, not
// four, so a forged minutes costs one ed25519 verification.
func TestSealVerifiesOneForm(t *testing.T) {
	k1, k2 := newStationKey(t, 1), newStationKey(t, 2)
	e := sealedElection(t, k1, k2)
	for _, tc := range []struct{ signed, sent string }{
		{ // signed without reason, sent with "reason":""
			`{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":1,"status":"partial","registered":1850,"voted":10,"issued":10,"received":10,"valid":10,"invalid":0,"votes":{}}`,
			`{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":1,"status":"partial","registered":1850,"voted":10,"issued":10,"received":10,"valid":10,"invalid":0,"votes":{},"reason":""}`,
		},
		{ // signed with an empty votes object, sent without
			`{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":1,"status":"partial","registered":1850,"voted":10,"issued":10,"received":10,"valid":10,"invalid":0,"votes":{}}`,
			`{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":1,"status":"partial","registered":1850,"voted":10,"issued":10,"received":10,"valid":10,"invalid":0}`,
		},
		{ // withdrawn: signed without votes, sent with {}
			`{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":2,"status":"withdrawn"}`,
			`{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":2,"status":"withdrawn","votes":{}}`,
		},
		{ // signed with "reason":"", sent without
			`{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":3,"status":"final","registered":1850,"voted":10,"issued":10,"received":10,"valid":10,"invalid":0,"votes":{"QH-1":5,"QH-2":5,"QH-3":0},"reason":""}`,
			`{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":3,"status":"final","registered":1850,"voted":10,"issued":10,"received":10,"valid":10,"invalid":0,"votes":{"QH-1":5,"QH-2":5,"QH-3":0}}`,
		},
	} {
		canon, err := events.Canonicalize([]byte(tc.signed))
		if err != nil {
			t.Fatal(err)
		}
		sig := k1.sign(canon)
		verify := func(body string) *tally.Violation {
			var obj map[string]any
			json.Unmarshal([]byte(body), &obj)
			obj["signature"] = sig
			sent, _ := json.Marshal(obj)
			d, err := events.DecodeJSONObject(sent)
			if err != nil || len(d.Problems) > 0 {
				t.Fatalf("%s: %v %v", body, err, d.Problems)
			}
			// The binary form the gateway stores says the same.
			var m tally.Minutes
			if err := events.DecodeBinary(events.AppendBinary(nil, &d.Minutes), &m); err != nil {
				t.Fatal(err)
			}
			v1, v2 := events.VerifySeal(e, st01, &d.Minutes), events.VerifySeal(e, st01, &m)
			if (v1 == nil) != (v2 == nil) {
				t.Fatalf("%s: JSON %v, binary %v", body, v1, v2)
			}
			return v1
		}
		if v := verify(tc.signed); v != nil {
			t.Errorf("sent as signed, does not verify: %s: %v", tc.signed, v)
		}
		if v := verify(tc.sent); v == nil {
			t.Errorf("signed as %s, sent as %s: verifies over a form that was not sent", tc.signed, tc.sent)
		} else if v.Rule != tally.RuleSeal {
			t.Errorf("rule %q, want seal", v.Rule)
		}
	}
}

// TestDuplicateMemberNames: a member name twice in one object, at any
// depth and however escaped, makes the body malformed at the gateway and
// is a problem of rule duplicate_name for minutes read from NATS.
func TestDuplicateMemberNames(t *testing.T) {
	base := `{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":1,"status":"partial","votes":{"QH-1":5},"reason":"a"}`
	for _, tc := range []struct{ name, body, member string }{
		{"top level", strings.Replace(base, `"version":1`, `"version":1,"version":2`, 1), "version"},
		{"in votes", strings.Replace(base, `"QH-1":5`, `"QH-1":5,"QH-1":500`, 1), "QH-1"},
		{"escaped", strings.Replace(base, `"reason":"a"`, `"reason":"a","r\u0065ason":"b"`, 1), "reason"},
		{"escaped quote in a value before it", strings.Replace(base, `"reason":"a"`, `"reason":"a\"}","reason":"b"`, 1), "reason"},
	} {
		d, err := events.DecodeJSONObject([]byte(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		found := false
		for _, p := range d.Problems {
			found = found || p.Rule == "duplicate_name" && p.Field == tc.member
		}
		if !found {
			t.Errorf("%s: problems %v, want rule duplicate_name on %q", tc.name, d.Problems, tc.member)
		}
		_, err = events.DecodeJSON([]byte("[" + base + "," + tc.body + "]"))
		if err == nil || !strings.Contains(err.Error(), "twice") || !strings.Contains(err.Error(), "value 1") {
			t.Errorf("%s: DecodeJSON: %v, want malformed naming value 1 and the repeated member", tc.name, err)
		}
	}
	// The same names in different objects, and names inside strings, are
	// not repeats.
	for _, body := range []string{base, `{"votes":{"version":1},"version":1,"reason":"\"version\":"}`, `[{"a":1},{"a":1}]`} {
		if _, err := events.DecodeJSON([]byte(body)); err != nil && strings.Contains(err.Error(), "twice") {
			t.Errorf("%s: %v", body, err)
		}
	}
}

// TestVersionBound: version at most 2^53 − 1 (CONTRACT §7a); above it is a
// violation of rule version on field version that says so.
func TestVersionBound(t *testing.T) {
	k1, k2 := newStationKey(t, 1), newStationKey(t, 2)
	e := sealedElection(t, k1, k2)
	for _, tc := range []struct {
		version int64
		ok      bool
	}{{1<<53 - 1, true}, {1 << 53, false}, {1<<63 - 1, false}} {
		m := tally.Minutes{Election: "hn-2021", Contest: "QH", Station: "LB-NT-03", Version: tc.version, Status: tally.Withdrawn}
		var r tally.Resolved
		viol := events.Check(e, &m, nil, 0, &r, nil)
		bad := false
		for _, v := range viol {
			bad = bad || v.Field == "version" && v.Rule == tally.RuleVersion && strings.Contains(v.Message, "2^53")
		}
		if bad == tc.ok || tc.ok && len(viol) > 0 {
			t.Errorf("version %d: %v, want ok=%v", tc.version, viol, tc.ok)
		}
	}
}

// BenchmarkVerifySealForgery: what a forged signature costs the checker,
// on partial minutes without votes or reason (where a checker trying the
// equivalent forms would try four).
func BenchmarkVerifySealForgery(b *testing.B) {
	k1, k2 := newStationKey(b, 1), newStationKey(b, 2)
	e := sealedElection(b, k1, k2)
	m := tally.Minutes{Election: "hn-2021", Contest: "QH", Station: "LB-NT-01", Version: 1, Status: tally.Partial,
		Counts: tally.Counts{Registered: 1850, Voted: 10, Issued: 10, Received: 10, Valid: 10}, Present: tally.HasAllCounts}
	m.Signature = k2.sign([]byte("forged"))
	for b.Loop() {
		if events.VerifySeal(e, st01, &m) == nil {
			b.Fatal("forgery verified")
		}
	}
}
