package events_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nkeys"
	"github.com/tallyvn/tally/events"
	"github.com/tallyvn/tally/tally"
)

// stationKey is a deterministic station key pair, built twice: by nkeys
// (seed, public) and by crypto/ed25519 from the same raw seed (priv), so
// the tests check Sign and VerifySeal against a computation that shares
// no code with them.
type stationKey struct {
	seed []byte // "SU..."
	pub  string // "U..."
	priv ed25519.PrivateKey
}

func newStationKey(t testing.TB, b byte) stationKey {
	t.Helper()
	raw := bytes.Repeat([]byte{b}, ed25519.SeedSize)
	kp, err := nkeys.FromRawSeed(nkeys.PrefixByteUser, raw)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	priv := ed25519.NewKeyFromSeed(raw)
	// The nkeys private key is the same ed25519 key.
	enc, err := kp.PrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	if dec, err := nkeys.Decode(nkeys.PrefixBytePrivate, enc); err != nil || !bytes.Equal(dec, priv) {
		t.Fatalf("nkeys private key %x is not the ed25519 key of its seed: %v", dec, err)
	}
	if want, _ := nkeys.Encode(nkeys.PrefixByteUser, priv.Public().(ed25519.PublicKey)); string(want) != pub {
		t.Fatalf("public key %s, want %s", pub, want)
	}
	return stationKey{seed: seed, pub: pub, priv: priv}
}

// sign is the independent signature: ed25519 over the given bytes.
func (k stationKey) sign(msg []byte) string {
	return base64.RawURLEncoding.EncodeToString(ed25519.Sign(k.priv, msg))
}

// Stations of sealedElection: 01 and 02 sealed with keys 1 and 2, 03 not
// sealed.
const (
	st01, st02, st03 = 0, 1, 2
)

func sealedElection(t testing.TB, k1, k2 stationKey) *tally.Election {
	t.Helper()
	e, err := tally.Parse(fmt.Appendf(nil, `{"id":"hn-2021","name":"Bầu cử","date":"2021-05-23",
	"areas":[{"id":"HN","name":"Hà Nội","level":"province"},{"id":"LB","name":"Long Biên","level":"district","parent":"HN"},
	         {"id":"LB-NT","name":"Ngọc Thụy","level":"ward","parent":"LB"}],
	"stations":[{"id":"LB-NT-01","name":"Khu vực 1","ward":"LB-NT","registered":1850,"seal":%q},
	            {"id":"LB-NT-02","name":"Khu vực 2","ward":"LB-NT","registered":1500,"seal":%q},
	            {"id":"LB-NT-03","name":"Khu vực 3","ward":"LB-NT","registered":900}],
	"contests":[{"id":"QH","name":"Quốc hội","level":"national","units":[{"id":"QH-HN-03","name":"Đơn vị 3","seats":2,
	  "areas":["LB"],"stations":[],"candidates":[{"id":"QH-1","name":"Nguyễn Văn A","born":"1968-04-12"},
	  {"id":"QH-2","name":"Trần Thị B","born":"1975-09-02"},{"id":"QH-3","name":"Lê Đức C","born":"1971-01-30"}]}]}]}`, k1.pub, k2.pub))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// goldenSealed is the sealed form of sample(), written out by hand.
const goldenSealed = `{"contest":"QH","election":"hn-2021","invalid":21,"issued":1832,` +
	`"reason":"sửa số phiếu ứng cử viên sau kiểm lại — Tổ bầu cử số 1",` +
	`"received":1831,"registered":1850,"station":"LB-NT-01","status":"final",` +
	`"valid":1810,"version":3,"voted":1832,"votes":{"QH-1":1500,"QH-2":1211}}`

func TestSealSignsTheCanonicalForm(t *testing.T) {
	k1, k2 := newStationKey(t, 1), newStationKey(t, 2)
	e := sealedElection(t, k1, k2)
	m := sample()
	sig, err := events.Sign(k1.seed, &m)
	if err != nil {
		t.Fatal(err)
	}
	if want := k1.sign([]byte(goldenSealed)); sig != want {
		t.Fatalf("Sign = %s, want ed25519 over the golden canonical form %s", sig, want)
	}
	m.Signature = sig
	if v := events.VerifySeal(e, st01, &m); v != nil {
		t.Fatalf("a valid signature does not verify: %v", v)
	}
	// Signing again gives the same signature (ed25519 is deterministic),
	// whatever m.Signature held, so a retry keeps its content hash.
	again, err := events.Sign(append([]byte("\n  "), append(k1.seed, '\n')...), &m)
	if err != nil || again != sig {
		t.Fatalf("second Sign = %s, %v; want %s", again, err, sig)
	}

	// The station's path: sign, send AppendJSON (as NDJSON with a second,
	// pretty-printed copy with members reordered and escaped), decode.
	js := events.AppendJSON(nil, &m)
	pretty := `{
	  "signature": "` + sig + `", "votes": {"QH-2": 1211, "QH-1": 1500},
	  "reason": "s\u1eeda s\u1ed1 phi\u1ebfu \u1ee9ng c\u1eed vi\u00ean sau ki\u1ec3m l\u1ea1i \u2014 T\u1ed5 b\u1ea7u c\u1eed s\u1ed1 1",
	  "status": "final", "version": 3, "station": "LB-NT-01", "contest": "QH", "election": "hn-2021",
	  "invalid": 21, "valid": 1810, "received": 1831, "issued": 1832, "voted": 1832, "registered": 1850
	}`
	ds, err := events.DecodeJSON(append(append(js, '\n'), pretty...))
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range ds {
		if len(d.Problems) > 0 {
			t.Fatalf("minutes %d: %v", i, d.Problems)
		}
		if v := events.VerifySeal(e, st01, &d.Minutes); v != nil {
			t.Fatalf("minutes %d as sent does not verify: %v", i, v)
		}
	}
	// And the binary form the gateway stores.
	var fromBinary tally.Minutes
	if err := events.DecodeBinary(events.AppendBinary(nil, &m), &fromBinary); err != nil {
		t.Fatal(err)
	}
	if v := events.VerifySeal(e, st01, &fromBinary); v != nil {
		t.Fatalf("binary form does not verify: %v", v)
	}
}

// TestSealRejects: every forgery, replay and malformation is a violation
// of rule seal on field signature, with a message saying what is wrong.
func TestSealRejects(t *testing.T) {
	k1, k2 := newStationKey(t, 1), newStationKey(t, 2)
	e := sealedElection(t, k1, k2)
	signed := func(k stationKey, edit func(*tally.Minutes)) tally.Minutes {
		m := sample()
		if edit != nil {
			edit(&m)
		}
		sig, err := events.Sign(k.seed, &m)
		if err != nil {
			t.Fatal(err)
		}
		m.Signature = sig
		return m
	}
	good := signed(k1, nil)
	raw, _ := base64.RawURLEncoding.DecodeString(good.Signature)
	flipped := append([]byte(nil), raw...)
	flipped[10] ^= 0x01
	// The last character of 64 bytes in base64url carries 2 bits and 4
	// zero bits; setting one of those is the same bytes in a lax decoder.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, good.Signature[85])
	laxTail := good.Signature[:85] + string(alphabet[last|1])

	const (
		noSig     = `minutes for sealed station "LB-NT-01" carry no signature`
		noVerify1 = `signature does not verify with the seal of station "LB-NT-01"`
		noVerify2 = `signature does not verify with the seal of station "LB-NT-02"`
		notB64    = `signature is not base64url`
	)
	for _, tc := range []struct {
		name    string
		station int // whose seal VerifySeal checks
		m       tally.Minutes
		edit    func(*tally.Minutes) // after signing
		want    string
	}{
		{"missing signature", st01, good, func(m *tally.Minutes) { m.Signature = "" }, noSig},
		{"another station's key", st01, signed(k2, nil), nil, noVerify1},
		{"checked against another station's seal", st02, signed(k2, nil), nil, `minutes name station "LB-NT-01" but were checked against the seal of station "LB-NT-02"`},
		{"one vote changed", st01, good, func(m *tally.Minutes) { m.Votes[0].Count++ }, noVerify1},
		{"votes moved between candidates", st01, good, func(m *tally.Minutes) { m.Votes[0].Count, m.Votes[1].Count = m.Votes[1].Count, m.Votes[0].Count }, noVerify1},
		{"candidate added with zero votes", st01, good, func(m *tally.Minutes) { m.Votes = append(m.Votes, tally.Vote{Candidate: "QH-3"}) }, noVerify1},
		{"reason changed", st01, good, func(m *tally.Minutes) { m.Reason += "." }, noVerify1},
		{"reason removed", st01, good, func(m *tally.Minutes) { m.Reason = "" }, noVerify1},
		{"reason added", st01, signed(k1, func(m *tally.Minutes) { m.Reason = "" }), func(m *tally.Minutes) { m.Reason = "kiểm lại" }, noVerify1},
		{"count changed", st01, good, func(m *tally.Minutes) { m.Counts.Invalid-- }, noVerify1},
		{"count removed", st01, good, func(m *tally.Minutes) { m.Present &^= tally.HasInvalid }, noVerify1},
		{"count added", st01, signed(k1, func(m *tally.Minutes) { m.Present &^= tally.HasInvalid }), func(m *tally.Minutes) { m.Present |= tally.HasInvalid }, noVerify1},
		{"version raised", st01, good, func(m *tally.Minutes) { m.Version++ }, noVerify1},
		{"status changed", st01, good, func(m *tally.Minutes) { m.Status = tally.Partial }, noVerify1},
		{"withdrawn instead", st01, good, func(m *tally.Minutes) { m.Status, m.Present, m.Votes = tally.Withdrawn, 0, nil }, noVerify1},
		{"contest changed", st01, good, func(m *tally.Minutes) { m.Contest = "HDND" }, noVerify1},
		{"election changed", st01, good, func(m *tally.Minutes) { m.Election = "hn-2026" }, noVerify1},
		{"replayed as another station's minutes", st02, good, func(m *tally.Minutes) { m.Station = "LB-NT-02" }, noVerify2},
		{"station renamed, checked with the signer's seal", st01, good, func(m *tally.Minutes) { m.Station = "LB-NT-02" }, `minutes name station "LB-NT-02" but were checked against the seal of station "LB-NT-01"`},
		{"signature of other minutes", st01, good, func(m *tally.Minutes) { m.Signature = signed(k1, func(m *tally.Minutes) { m.Version = 4 }).Signature }, noVerify1},
		{"bit flipped", st01, good, func(m *tally.Minutes) { m.Signature = base64.RawURLEncoding.EncodeToString(flipped) }, noVerify1},
		{"all zero", st01, good, func(m *tally.Minutes) { m.Signature = strings.Repeat("A", 86) }, noVerify1},
		{"not base64", st01, good, func(m *tally.Minutes) { m.Signature = "not a signature!" }, notB64},
		{"standard alphabet", st01, good, func(m *tally.Minutes) { m.Signature = "+" + m.Signature[1:] }, notB64},
		{"padded", st01, good, func(m *tally.Minutes) { m.Signature += "==" }, notB64},
		{"lax trailing bits", st01, good, func(m *tally.Minutes) { m.Signature = laxTail }, notB64},
		{"space inside", st01, good, func(m *tally.Minutes) { m.Signature = m.Signature[:40] + " " + m.Signature[41:] }, notB64},
		{"truncated", st01, good, func(m *tally.Minutes) { m.Signature = m.Signature[:84] }, "not an ed25519 signature: 84 characters of base64url, want 86"},
		{"too long", st01, good, func(m *tally.Minutes) { m.Signature += "AAAA" }, "not an ed25519 signature"},
		{"version beyond 2^53", st01, good, func(m *tally.Minutes) { m.Version = 1<<53 + 1 }, "cannot carry a seal: version = 9007199254740993 is beyond ±(2^53−1)"},
		{"reason not UTF-8", st01, good, func(m *tally.Minutes) { m.Reason = "\xff" }, "cannot carry a seal: reason is not valid UTF-8"},
	} {
		m := tc.m
		m.Votes = append([]tally.Vote(nil), tc.m.Votes...)
		if tc.edit != nil {
			tc.edit(&m)
		}
		v := events.VerifySeal(e, tc.station, &m)
		if v == nil {
			t.Errorf("%s: verifies", tc.name)
			continue
		}
		if v.Field != "signature" || v.Rule != tally.RuleSeal || !strings.Contains(v.Message, tc.want) {
			t.Errorf("%s: %+v; want field signature, rule %s, message with %q", tc.name, *v, tally.RuleSeal, tc.want)
		}
		if strings.Contains(v.Message, string(k1.seed)) || strings.Contains(v.Message, string(k2.seed)) || strings.Contains(v.Message, m.Signature) && m.Signature != "" {
			t.Errorf("%s: message echoes a secret or the signature: %q", tc.name, v.Message)
		}
	}
	// The untouched original still verifies (the table copied it).
	if v := events.VerifySeal(e, st01, &good); v != nil {
		t.Fatalf("original: %v", v)
	}
}

// TestSealEquivalentForms: a station whose JSON library writes an empty
// votes object or an empty reason where AppendJSON leaves them out (or
// leaves out an empty votes object AppendJSON writes) and signs the RFC
// 8785 form of what it sends still verifies: both read as the same
// minutes. Each signature here is computed from the JSON text alone.
func TestSealEquivalentForms(t *testing.T) {
	k1, k2 := newStationKey(t, 1), newStationKey(t, 2)
	e := sealedElection(t, k1, k2)
	for _, body := range []string{
		`{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":1,"status":"partial","registered":1850,"voted":10,"issued":10,"received":10,"valid":10,"invalid":0}`,
		`{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":1,"status":"partial","registered":1850,"voted":10,"issued":10,"received":10,"valid":10,"invalid":0,"votes":{},"reason":""}`,
		`{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":1,"status":"partial","registered":1850,"voted":10,"issued":10,"received":10,"valid":10,"invalid":0,"reason":""}`,
		`{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":2,"status":"withdrawn","votes":{}}`,
		`{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":2,"status":"withdrawn","votes":{},"reason":""}`,
		`{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":2,"status":"withdrawn","reason":""}`,
		`{"election":"hn-2021","contest":"QH","station":"LB-NT-01","version":3,"status":"final","registered":1850,"voted":10,"issued":10,"received":10,"valid":10,"invalid":0,"votes":{"QH-1":5,"QH-2":5,"QH-3":0},"reason":""}`,
	} {
		canon, err := events.Canonicalize([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		sig := k1.sign(canon)
		var obj map[string]any
		if err := json.Unmarshal([]byte(body), &obj); err != nil {
			t.Fatal(err)
		}
		obj["signature"] = sig
		sent, _ := json.Marshal(obj)
		d, err := events.DecodeJSONObject(sent)
		if err != nil || len(d.Problems) > 0 {
			t.Fatalf("%s: %v %v", body, err, d.Problems)
		}
		if v := events.VerifySeal(e, st01, &d.Minutes); v != nil {
			t.Errorf("signed as sent, does not verify: %s: %v", body, v)
		}
		// Still bound to the content: another version does not verify.
		d.Minutes.Version++
		if v := events.VerifySeal(e, st01, &d.Minutes); v == nil {
			t.Errorf("%s: verifies with the version changed", body)
		}
	}
}

func TestSealUnsealedStationsAreNotChecked(t *testing.T) {
	k1, k2 := newStationKey(t, 1), newStationKey(t, 2)
	e := sealedElection(t, k1, k2)
	m := sample()
	m.Station = "LB-NT-03"
	for _, sig := range []string{"", "garbage", k1.sign([]byte("x"))} {
		m.Signature = sig
		if v := events.VerifySeal(e, st03, &m); v != nil {
			t.Errorf("unsealed station, signature %q: %v", sig, v)
		}
	}
	for _, s := range []int{-1, len(e.Stations)} {
		if v := events.VerifySeal(e, s, &m); v != nil {
			t.Errorf("station index %d: %v", s, v)
		}
	}
}

// TestSealBadSealInElection: a seal that is not an nkey user public key
// fails closed (its station's minutes are rejected) and CheckSeals names
// it at load.
func TestSealBadSealInElection(t *testing.T) {
	k1, k2 := newStationKey(t, 1), newStationKey(t, 2)
	e := sealedElection(t, k1, k2)
	if p := events.CheckSeals(e); p != nil {
		t.Fatalf("CheckSeals on good seals: %v", p)
	}
	m := sample()
	sig, _ := events.Sign(k1.seed, &m)
	m.Signature = sig
	if v := events.VerifySeal(e, st01, &m); v != nil {
		t.Fatal(v) // and the key is now cached
	}
	account, _ := nkeys.CreateAccount()
	accountPub, _ := account.PublicKey()
	for name, seal := range map[string]string{
		"garbage":        "UABC",
		"account key":    accountPub,
		"seed as seal":   string(k1.seed),
		"checksum wrong": k1.pub[:10] + map[bool]string{true: "B", false: "A"}[k1.pub[10] == 'A'] + k1.pub[11:],
		// A small-order point: "signatures" by it verify for many messages.
		"small-order key": func() string { s, _ := nkeys.Encode(nkeys.PrefixByteUser, make([]byte, 32)); return string(s) }(),
	} {
		e.Stations[st01].Seal = seal
		v := events.VerifySeal(e, st01, &m)
		if v == nil || v.Rule != tally.RuleSeal || !strings.Contains(v.Message, `the seal of station "LB-NT-01" in the election file is not an nkey user public key`) {
			t.Errorf("%s seal: %+v", name, v)
		}
		p := events.CheckSeals(e)
		if len(p) != 1 || !strings.Contains(p[0], `stations[0] "LB-NT-01"`) {
			t.Errorf("%s seal: CheckSeals = %q", name, p)
		}
	}
	// The cache follows a changed seal both ways.
	e.Stations[st01].Seal = k2.pub
	if v := events.VerifySeal(e, st01, &m); v == nil {
		t.Fatal("verifies with station 01's old key after its seal changed")
	}
	e.Stations[st01].Seal = k1.pub
	if v := events.VerifySeal(e, st01, &m); v != nil {
		t.Fatalf("seal restored: %v", v)
	}
}

func TestSignRejects(t *testing.T) {
	m := sample()
	account, _ := nkeys.CreateAccount()
	accountSeed, _ := account.Seed()
	user, _ := nkeys.CreateUser()
	userPub, _ := user.PublicKey()
	for name, seed := range map[string][]byte{
		"empty":        nil,
		"garbage":      []byte("SUnot-a-seed"),
		"account seed": accountSeed,
		"public key":   []byte(userPub),
	} {
		if _, err := events.Sign(seed, &m); !errors.Is(err, events.ErrNotUserSeed) {
			t.Errorf("%s: err %v, want ErrNotUserSeed", name, err)
		}
	}
	seed, _ := user.Seed()
	for name, edit := range map[string]func(*tally.Minutes){
		"version beyond 2^53":   func(m *tally.Minutes) { m.Version = 1 << 53 },
		"negative beyond 2^53":  func(m *tally.Minutes) { m.Counts.Valid = -(1 << 60) },
		"vote beyond 2^53":      func(m *tally.Minutes) { m.Votes[0].Count = 1 << 62 },
		"station not UTF-8":     func(m *tally.Minutes) { m.Station = "LB\xc3" },
		"candidate not UTF-8":   func(m *tally.Minutes) { m.Votes[0].Candidate = "\xff" },
		"big but absent counts": nil,
	} {
		m := sample()
		m.Votes = append([]tally.Vote(nil), m.Votes...)
		if edit == nil {
			m.Present = 0
			m.Counts.Registered = 1 << 62 // not written, not signed: fine
			if _, err := events.Sign(seed, &m); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		edit(&m)
		if _, err := events.Sign(seed, &m); !errors.Is(err, events.ErrUnsealable) {
			t.Errorf("%s: err %v, want ErrUnsealable", name, err)
		}
	}
}

// TestVerifySealConcurrent runs verifications of many stations at once
// (the fold and the gateway share the cache); run it with -race.
func TestVerifySealConcurrent(t *testing.T) {
	k1, k2 := newStationKey(t, 1), newStationKey(t, 2)
	e := sealedElection(t, k1, k2)
	m1, m2 := sample(), sample()
	m2.Station = "LB-NT-02"
	m1.Signature, _ = events.Sign(k1.seed, &m1)
	m2.Signature, _ = events.Sign(k2.seed, &m2)
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				m, s, other := &m1, st01, st02
				if (g+i)%2 == 1 {
					m, s, other = &m2, st02, st01
				}
				if v := events.VerifySeal(e, s, m); v != nil {
					errs <- v.Message
					return
				}
				if v := events.VerifySeal(e, other, m); v == nil {
					errs <- "verified with the other station's seal"
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
}

// BenchmarkVerifySeal measures what sealing adds per minutes in the fold
// and the gateway: one canonical encoding and one ed25519 verification
// (the key is parsed once per election and station).
func BenchmarkVerifySeal(b *testing.B) {
	k1, k2 := newStationKey(b, 1), newStationKey(b, 2)
	e := sealedElection(b, k1, k2)
	m := sample()
	m.Signature, _ = events.Sign(k1.seed, &m)
	// As the fold sees minutes: decoded, votes in order.
	d, err := events.DecodeJSONObject(events.AppendJSON(nil, &m))
	if err != nil {
		b.Fatal(err)
	}
	m = d.Minutes
	forged := m
	forged.Signature = k2.sign(events.CanonicalJSON(&m))
	unsealed := m
	unsealed.Station = "LB-NT-03"
	for _, bc := range []struct {
		name    string
		station int
		m       *tally.Minutes
		ok      bool
	}{
		{"valid", st01, &m, true},
		{"forged", st01, &forged, false},
		{"unsealed", st03, &unsealed, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if v := events.VerifySeal(e, bc.station, bc.m); (v == nil) != bc.ok {
					b.Fatalf("VerifySeal = %v", v)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "minutes/s")
		})
	}
	// What the cache saves: parsing the seal for every minutes.
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		raw, _ := base64.RawURLEncoding.DecodeString(m.Signature)
		for b.Loop() {
			kp, err := nkeys.FromPublicKey(e.Stations[st01].Seal)
			if err != nil || kp.Verify(events.CanonicalJSON(&m), raw) != nil {
				b.Fatal("does not verify")
			}
		}
	})
	b.Run("canonical", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf = events.AppendCanonicalJSON(buf[:0], &m)
		}
	})
}

// sealedForms computes, from the JSON text alone (no code shared with
// VerifySeal), the bytes a valid seal of m may sign: RFC 8785 of the JSON
// form without signature, and of the same with an empty votes object or
// an empty reason toggled.
func sealedForms(t *testing.T, m *tally.Minutes) [][]byte {
	t.Helper()
	unsigned := *m
	unsigned.Signature = ""
	unsigned.Votes = append([]tally.Vote(nil), m.Votes...)
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(events.AppendJSON(nil, &unsigned), &obj); err != nil {
		t.Fatal(err)
	}
	var forms [][]byte
	for _, toggleVotes := range []bool{false, true} {
		for _, addReason := range []bool{false, true} {
			o := map[string]json.RawMessage{}
			for k, v := range obj {
				o[k] = v
			}
			if toggleVotes {
				if len(m.Votes) > 0 {
					continue
				}
				if _, ok := o["votes"]; ok {
					delete(o, "votes")
				} else {
					o["votes"] = json.RawMessage("{}")
				}
			}
			if addReason {
				if m.Reason != "" {
					continue
				}
				o["reason"] = json.RawMessage(`""`)
			}
			js, _ := json.Marshal(o)
			c, err := events.Canonicalize(js)
			if err != nil {
				return nil // duplicate or non-I-JSON content: nothing can be signed
			}
			forms = append(forms, c)
		}
	}
	return forms
}

// FuzzVerifySeal: no minutes and no signature panic VerifySeal, and
// nothing verifies but a signature made by the station's key over one of
// the sealed forms of exactly those minutes.
func FuzzVerifySeal(f *testing.F) {
	k1, k2 := newStationKey(f, 1), newStationKey(f, 2)
	e := sealedElection(f, k1, k2)
	m := sample()
	sig, _ := events.Sign(k1.seed, &m)
	f.Add(events.AppendJSON(nil, &m), sig)
	f.Add(events.AppendJSON(nil, &m), k2.sign(events.CanonicalJSON(&m)))
	w := tally.Minutes{Election: "hn-2021", Contest: "QH", Station: "LB-NT-01", Version: 4, Status: tally.Withdrawn}
	wsig, _ := events.Sign(k1.seed, &w)
	f.Add(events.AppendJSON(nil, &w), wsig)
	f.Add([]byte(`{"station":"LB-NT-01","version":1,"status":"partial","votes":{},"reason":""}`), sig)
	f.Add([]byte(`{}`), "")
	f.Add([]byte(`{"version":9007199254740993}`), strings.Repeat("A", 86))
	keys := map[int]stationKey{st01: k1, st02: k2} // st03 has no seal
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		d, err := events.DecodeJSONObject(body)
		if err != nil {
			return
		}
		m := d.Minutes
		m.Signature = sig
		s, ok := e.StationIndex(m.Station)
		if !ok {
			s = st01 // a caller's mistake, or a replay under another name
		}
		v := events.VerifySeal(e, s, &m)
		if v != nil && (v.Rule != tally.RuleSeal || v.Field != "signature" || v.Message == "") {
			t.Fatalf("malformed violation %+v", *v)
		}
		k, sealed := keys[s]
		if !sealed {
			if v != nil {
				t.Fatalf("unsealed station checked: %+v", *v)
			}
			return
		}
		forms := sealedForms(t, &m)
		valid := false
		for _, form := range forms {
			valid = valid || sig == k.sign(form)
		}
		if v == nil && (!valid || !ok) {
			t.Fatalf("signature %q verifies for minutes it does not seal: %s", sig, events.CanonicalJSON(&m))
		}
		if own, err := events.Sign(k.seed, &m); err == nil {
			if len(forms) == 0 || own != k.sign(forms[0]) {
				t.Fatalf("Sign = %s, not ed25519 over the canonical JSON form", own)
			}
			if ok && sig == own && v != nil {
				t.Fatalf("Sign's own signature does not verify: %+v", *v)
			}
		}
	})
}
