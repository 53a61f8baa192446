package events_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

// admitCase is a message to admit, with what admission must make of it.
type admitCase struct {
	name    string
	subject string
	data    []byte
	decoded bool
	sealed  bool
	rules   []string // "" for admitted
}

// admitCases returns a sealed election and messages that admission
// refuses for every reason it has, and admits.
func admitCases(t *testing.T) (*tally.Election, []admitCase) {
	t.Helper()
	k1, k2 := newStationKey(t, 1), newStationKey(t, 2)
	e := sealedElection(t, k1, k2)
	partial := func(station string) tally.Minutes {
		m := sample()
		m.Station, m.Status = station, tally.Partial
		return m
	}
	signed := partial("LB-NT-01")
	sig, err := events.Sign(k1.seed, &signed)
	if err != nil {
		t.Fatal(err)
	}
	signed.Signature = sig
	unsealed, sealedNoSig := partial("LB-NT-03"), partial("LB-NT-01")

	return e, []admitCase{
		{"admitted", events.Subject(e, st03, "QH"), events.AppendJSON(nil, &unsealed), true, false, nil},
		{"admitted, binary", events.Subject(e, st03, "QH"), events.AppendBinary(nil, &unsealed), true, false, nil},
		{"another station's subject", events.Subject(e, st02, "QH"), events.AppendJSON(nil, &unsealed), true, false, []string{tally.RuleSubject}},
		{"another province's subject", "tally.hn-2021.minutes.HCM.LB-NT-03.QH", events.AppendJSON(nil, &unsealed), true, false, []string{tally.RuleSubject}},
		{"a v1 subject (a stream created before v2)", "tally.hn-2021.minutes.LB.LB-NT.LB-NT-03.QH", events.AppendJSON(nil, &unsealed), true, false, nil},
		{"a v1 subject of another station", "tally.hn-2021.minutes.LB.LB-NT.LB-NT-02.QH", events.AppendJSON(nil, &unsealed), true, false, []string{tally.RuleSubject}},
		{"not minutes", events.Subject(e, st03, "QH"), []byte("nope"), false, false, []string{tally.RuleType}},
		{"a rule broken", events.Subject(e, st03, "QH"), []byte(`{"election":"hn-2021","contest":"QH","station":"LB-NT-03","version":0,"status":"partial"}`),
			true, false, []string{tally.RuleVersion, tally.RuleRequired}},
		{"sealed, no signature", events.Subject(e, st01, "QH"), events.AppendJSON(nil, &sealedNoSig), true, true, []string{tally.RuleSeal}},
		{"sealed and signed", events.Subject(e, st01, "QH"), events.AppendJSON(nil, &signed), true, true, nil},
	}
}

// TestAdmitNamesEveryReasonToRefuse: admission decodes, checks the subject,
// the rules that need no history and the seal, and says which refused.
func TestAdmitNamesEveryReasonToRefuse(t *testing.T) {
	e, tests := admitCases(t)
	var a events.Admission
	for _, tc := range tests {
		events.Admit(e, tc.subject, tc.data, &a)
		var rules []string
		for _, v := range a.Violations {
			if !slices.Contains(rules, v.Rule) {
				rules = append(rules, v.Rule)
			}
		}
		slices.Sort(rules)
		slices.Sort(tc.rules)
		if a.Decoded != tc.decoded || a.Sealed != tc.sealed || !slices.Equal(rules, tc.rules) {
			t.Errorf("%s: decoded %v sealed %v rules %v (%v); want %v %v %v", tc.name, a.Decoded, a.Sealed, rules, a.Violations, tc.decoded, tc.sealed, tc.rules)
		}
		if len(tc.rules) == 0 {
			if s, _ := e.StationIndex(a.Minutes.Station); a.Resolved.Station != s || a.Resolved.Status != tally.Partial {
				t.Errorf("%s: resolved %+v", tc.name, a.Resolved)
			}
		}
	}
}

// TestAdmitDecoded: the gateway's admission (no subject yet) appends every
// broken rule with the minutes' index, the seal's included, after what the
// request's earlier minutes broke; it is Admit's own, less the subject.
func TestAdmitDecoded(t *testing.T) {
	k1, k2 := newStationKey(t, 1), newStationKey(t, 2)
	e := sealedElection(t, k1, k2)
	prior := []tally.Violation{{Index: 4, Field: "valid", Rule: tally.RuleValidInvalid}}
	var r tally.Resolved
	m := sample()
	m.Status = tally.Partial
	got, sealed := events.AdmitDecoded(e, &m, nil, 7, &r, prior)
	if !sealed || len(got) != 2 || got[1].Index != 7 || got[1].Rule != tally.RuleSeal || got[1].Field != "signature" {
		t.Fatalf("unsigned minutes of a sealed station: sealed %v, %+v", sealed, got)
	}
	m.Signature, _ = events.Sign(k1.seed, &m)
	if got, sealed := events.AdmitDecoded(e, &m, nil, 7, &r, prior[:1:1]); !sealed || len(got) != 1 {
		t.Fatalf("signed minutes: sealed %v, %+v", sealed, got)
	}
	m.Station = "NO-SUCH"
	got, sealed = events.AdmitDecoded(e, &m, nil, 7, &r, nil)
	if sealed || len(got) != 1 || got[0].Field != "station" || got[0].Index != 7 {
		t.Fatalf("unknown station (named once, by the rules, not by the seal): sealed %v, %+v", sealed, got)
	}

	// Admit on the same bytes finds the same violations, the subject's
	// aside.
	broken := `{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":0,"status":"partial"}`
	d, err := events.DecodeJSON([]byte(broken))
	if err != nil {
		t.Fatal(err)
	}
	gw, _ := events.AdmitDecoded(e, &d[0].Minutes, d[0].Problems, 0, &r, nil)
	var a events.Admission
	events.Admit(e, events.Subject(e, st02, "QH"), []byte(broken), &a)
	var folded []tally.Violation
	for _, v := range a.Violations {
		if v.Rule != tally.RuleSubject {
			folded = append(folded, v)
		}
	}
	if len(gw) < 3 || !slices.Equal(gw, folded) {
		t.Fatalf("gateway %+v\nfold    %+v", gw, a.Violations)
	}
}

// TestAdmitAllIsAdmit: admitting many messages at once (AdmitAll, with its
// reads ahead) makes of each what Admit makes of it alone, whatever the
// mix: refused for any reason or admitted, binary or JSON, and an unknown
// station.
func TestAdmitAllIsAdmit(t *testing.T) {
	e, cases := admitCases(t)
	unknown := sample()
	unknown.Station = "NO-SUCH-01"
	noContest := sample()
	noContest.Contest = "XX"
	cases = append(cases,
		admitCase{name: "unknown station", subject: "tally.hn-2021.minutes.HN.NO-SUCH-01.QH", data: events.AppendJSON(nil, &unknown)},
		admitCase{name: "unknown contest", subject: events.Subject(e, st03, "XX"), data: events.AppendBinary(nil, &noContest)})
	// Every order of the cases, a few times over: 3 rounds of shuffles.
	for round := range 3 {
		order := make([]int, 0, 3*len(cases))
		for range 3 {
			for i := range cases {
				order = append(order, i)
			}
		}
		for i := range order { // a fixed shuffle per round
			j := (i*7 + round*5) % len(order)
			order[i], order[j] = order[j], order[i]
		}
		subjects, datas := make([]string, len(order)), make([][]byte, len(order))
		adms := make([]*events.Admission, len(order))
		for i, k := range order {
			subjects[i], datas[i], adms[i] = cases[k].subject, cases[k].data, new(events.Admission)
		}
		events.AdmitAll(e, subjects, datas, adms)
		var one events.Admission
		for i, k := range order {
			events.Admit(e, subjects[i], datas[i], &one)
			got := adms[i]
			if got.Decoded != one.Decoded || got.Sealed != one.Sealed || !slices.Equal(got.Violations, one.Violations) ||
				!reflect.DeepEqual(got.Minutes, one.Minutes) {
				t.Fatalf("round %d, %s: AdmitAll %+v, Admit %+v", round, cases[k].name, got, &one)
			}
			if len(one.Violations) == 0 && !reflect.DeepEqual(got.Resolved, one.Resolved) {
				t.Fatalf("round %d, %s: AdmitAll resolved %+v, Admit %+v", round, cases[k].name, got.Resolved, one.Resolved)
			}
		}
	}
}
