package tally

// HintTaken reports whether Locate takes hint h for these ids (its
// shortcut), rather than looking them up.
func (e *Election) HintTaken(h Hint, contest, station string) bool {
	_, _, _, ok := e.locateHint(h, contest, station)
	return ok && h.Fingerprint == e.fingerprint
}
