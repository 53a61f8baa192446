package server

import "testing"

func TestUserMessageDropsGoPrefixes(t *testing.T) {
	for in, want := range map[string]string{
		`tally: unknown unit "X"`:                   `unknown unit "X"`,
		`projections: projections: store is locked`: `store is locked`,
		`events: malformed minutes JSON: value 0`:   `malformed minutes JSON: value 0`,
		`no such endpoint: GET /x`:                  `no such endpoint: GET /x`,
		`unknown area "tally: x"`:                   `unknown area "tally: x"`,
	} {
		if got := userMessage(in); got != want {
			t.Errorf("userMessage(%q) = %q, want %q", in, got, want)
		}
	}
}
