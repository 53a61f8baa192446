package usermsg

import "testing"

func TestMessageDropsGoPrefixes(t *testing.T) {
	for in, want := range map[string]string{
		`tally: unknown unit "X"`:                   `unknown unit "X"`,
		`projections: projections: store is locked`: `store is locked`,
		`events: malformed minutes JSON: value 0`:   `malformed minutes JSON: value 0`,
		`no such endpoint: GET /x`:                  `no such endpoint: GET /x`,
		`unknown area "tally: x"`:                   `unknown area "tally: x"`,
	} {
		if got := Message(in); got != want {
			t.Errorf("Message(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestInnerKeepsTheStart(t *testing.T) {
	for in, want := range map[string]string{
		`tally: submit: events: malformed minutes JSON`:           `tally: submit: malformed minutes JSON`,
		`level=WARN msg=fold err="projections: stream is behind"`: `level=WARN msg=fold err="stream is behind"`,
	} {
		if got := Inner(in); got != want {
			t.Errorf("Inner(%q) = %q, want %q", in, got, want)
		}
	}
}
