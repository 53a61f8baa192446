package events

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"
	"weak"

	"github.com/nats-io/nkeys"
	"github.com/tallyvn/tally/tally"
)

// Seals (CONTRACT §7). A station whose entry in the election file has a
// "seal" (an nkey user public key, "U...") must sign every minutes object:
// "signature" is the base64url (unpadded) ed25519 signature of
// CanonicalJSON(m) by the station's key (see jcs.go for the exact bytes).
// Ed25519 signatures are deterministic, so signing the same minutes twice
// gives the same signature, and a retried submission keeps its content
// hash (MsgID).

// ErrNotUserSeed is returned by Sign for a seed that is not an nkey user
// seed ("SU...").
var ErrNotUserSeed = errors.New("events: not an nkey user seed (SU...)")

// ErrUnsealable is returned (wrapped) by Sign for minutes whose canonical
// form would not identify them (see sealable).
var ErrUnsealable = errors.New("events: minutes cannot be sealed")

// signatureLen is the length of an ed25519 signature in unpadded base64url.
var signatureLen = base64.RawURLEncoding.EncodedLen(ed25519.SignatureSize)

// Sign returns the seal signature of m made with seed, an nkey user seed
// ("SU...", surrounding whitespace ignored): the string to put in
// m.Signature. Whatever m.Signature holds is not signed.
func Sign(seed []byte, m *tally.Minutes) (string, error) {
	seed = bytes.TrimSpace(seed)
	prefix, _, err := nkeys.DecodeSeed(seed)
	if err != nil || prefix != nkeys.PrefixByteUser {
		return "", ErrNotUserSeed
	}
	if msg := sealable(m); msg != "" {
		return "", fmt.Errorf("%w: %s", ErrUnsealable, msg)
	}
	kp, err := nkeys.FromSeed(seed)
	if err != nil {
		return "", ErrNotUserSeed
	}
	defer kp.Wipe()
	sig, err := kp.Sign(CanonicalJSON(m))
	if err != nil {
		return "", fmt.Errorf("events: sign minutes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sig), nil
}

// VerifySeal checks the signature of m, minutes for e.Stations[stationIndex].
// It returns nil when that station has no seal or the signature verifies,
// else a violation of rule seal on field "signature" (Index 0: the caller
// sets it). m must name that station (a sealed station's seal is never
// checked for minutes naming another); an out-of-range stationIndex (an
// unknown station, which Check reports) returns nil.
//
// Parsed public keys are cached per election, so a call costs one ed25519
// verification. Safe for concurrent use.
func VerifySeal(e *tally.Election, stationIndex int, m *tally.Minutes) *tally.Violation {
	if stationIndex < 0 || stationIndex >= len(e.Stations) || e.Stations[stationIndex].Seal == "" {
		return nil // the common case: no seals in this election
	}
	st := &e.Stations[stationIndex]
	bad := func(format string, args ...any) *tally.Violation {
		return &tally.Violation{Field: "signature", Rule: tally.RuleSeal, Message: fmt.Sprintf(format, args...)}
	}
	key := sealKey(e, stationIndex)
	if key == nil {
		return bad("the seal of station %q in the election file is not an nkey user public key (U...), so its minutes cannot be verified", st.ID)
	}
	if m.Station != st.ID {
		// A caller passing another index would let one station's key
		// vouch for minutes aggregated as another's: fail closed.
		return bad("minutes name station %q but were checked against the seal of station %q", m.Station, st.ID)
	}
	if m.Signature == "" {
		return bad("minutes for sealed station %q carry no signature", st.ID)
	}
	var sig [ed25519.SignatureSize]byte // Decode only reads its src: no copy of the string needed
	if len(m.Signature) != signatureLen {
		if _, err := base64.RawURLEncoding.Strict().DecodeString(m.Signature); err != nil {
			return bad("signature is not base64url (RFC 4648 §5, without padding)")
		}
		return bad("signature is not an ed25519 signature: %d characters of base64url, want %d", len(m.Signature), signatureLen)
	}
	if n, err := base64.RawURLEncoding.Strict().Decode(sig[:], unsafe.Slice(unsafe.StringData(m.Signature), len(m.Signature))); err != nil || n != ed25519.SignatureSize {
		return bad("signature is not base64url (RFC 4648 §5, without padding)")
	}
	if msg := sealable(m); msg != "" {
		return bad("minutes for sealed station %q cannot carry a seal: %s", st.ID, msg)
	}
	bufp := canonicalBufs.Get().(*[]byte)
	defer canonicalBufs.Put(bufp)
	// One form, one verification (CONTRACT §7a): a forgery costs what a
	// valid seal costs.
	*bufp = appendCanonical((*bufp)[:0], m)
	if ed25519.Verify(key, *bufp, sig[:]) {
		return nil
	}
	return bad("signature does not verify with the seal of station %q over the canonical form of these minutes (RFC 8785 of the minutes without signature: no null members; votes present, {} when empty, except in withdrawn minutes without votes; reason only when not empty)", st.ID)
}

// CheckSeals lists, as election file problems, the stations whose seal is
// set but is not an nkey user public key. Call it at load, next to
// tally.Parse: a bad seal would otherwise reject every minutes of its
// station on election night.
func CheckSeals(e *tally.Election) []string {
	var problems []string
	for i := range e.Stations {
		st := &e.Stations[i]
		if st.Seal == "" || nkeys.IsValidPublicUserKey(st.Seal) {
			continue
		}
		seal := st.Seal
		if len(seal) > 64 {
			seal = seal[:64] + "..."
		}
		problems = append(problems, fmt.Sprintf("stations[%d] %q: seal %q is not an nkey user public key (U..., as `tally keys new` prints)", i, st.ID, seal))
	}
	return problems
}

// sealable returns why m cannot be sealed, or "": its canonical form must
// identify it, so every string must be UTF-8 (else bytes would print as
// U+FFFD alike) and every integer within ±(2^53−1) (else two would print
// alike).
func sealable(m *tally.Minutes) string {
	for _, f := range [...]struct{ name, s string }{{"election", m.Election}, {"contest", m.Contest}, {"station", m.Station}, {"reason", m.Reason}} {
		if !utf8.ValidString(f.s) {
			return f.name + " is not valid UTF-8"
		}
	}
	c := &m.Counts
	for i, v := range [...]int64{c.Registered, c.Voted, c.Issued, c.Received, c.Valid, c.Invalid} {
		if m.Present&(1<<i) != 0 && (v > maxSafeInteger || v < -maxSafeInteger) {
			return fmt.Sprintf("%s = %d is beyond ±(2^53−1), the integers RFC 8785 keeps exact", countFieldNames[i], v)
		}
	}
	if m.Version > maxSafeInteger || m.Version < -maxSafeInteger {
		return fmt.Sprintf("version = %d is beyond ±(2^53−1), the integers RFC 8785 keeps exact", m.Version)
	}
	for _, v := range m.Votes {
		if !utf8.ValidString(v.Candidate) {
			return "a candidate id is not valid UTF-8"
		}
		if v.Count > maxSafeInteger || v.Count < -maxSafeInteger {
			return fmt.Sprintf("votes for %q = %d is beyond ±(2^53−1), the integers RFC 8785 keeps exact", v.Candidate, v.Count)
		}
	}
	return ""
}

var canonicalBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Parsed seals, per election, built lazily one station at a time (a
// national file has 85,000 stations; parsing them all on the first
// verification would stall the fold). The cache holds the election weakly
// and forgets it once it is collected.
var sealCache sync.Map // weak.Pointer[tally.Election] -> *electionSeals

type electionSeals struct {
	stations []atomic.Pointer[stationSeal]
}

// stationSeal is a parsed seal. INVARIANT: key is nil iff seal is not a
// valid nkey user public key.
type stationSeal struct {
	seal string // the seal parsed, to notice a changed election
	key  ed25519.PublicKey
}

// sealKey returns the public key of station s of e, or nil when its seal
// is not a valid nkey user public key. REQUIRES: e.Stations[s].Seal != "".
func sealKey(e *tally.Election, s int) ed25519.PublicKey {
	seal := e.Stations[s].Seal
	cache := sealsOf(e)
	if s < len(cache.stations) {
		if p := cache.stations[s].Load(); p != nil && p.seal == seal {
			return p.key
		}
	}
	p := &stationSeal{seal: seal}
	// IsValidPublicUserKey checks the kind, the checksum and (nkeys
	// ≥ 0.4.17) refuses small-order points, for which forged "signatures"
	// verify. The raw key is kept rather than nkeys.FromPublicKey's
	// KeyPair: a call through that interface makes the signature escape,
	// an allocation per minutes in the fold.
	if nkeys.IsValidPublicUserKey(seal) {
		if raw, err := nkeys.Decode(nkeys.PrefixByteUser, []byte(seal)); err == nil && len(raw) == ed25519.PublicKeySize {
			p.key = ed25519.PublicKey(raw)
		}
	}
	if s < len(cache.stations) {
		cache.stations[s].Store(p)
	}
	return p.key
}

func sealsOf(e *tally.Election) *electionSeals {
	wp := weak.Make(e)
	if v, ok := sealCache.Load(wp); ok {
		return v.(*electionSeals)
	}
	fresh := &electionSeals{stations: make([]atomic.Pointer[stationSeal], len(e.Stations))}
	v, loaded := sealCache.LoadOrStore(wp, fresh)
	if !loaded {
		runtime.AddCleanup(e, func(wp weak.Pointer[tally.Election]) { sealCache.Delete(wp) }, wp)
	}
	return v.(*electionSeals)
}
