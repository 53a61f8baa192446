package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRunBadFlags checks that bad --peer and --min-fold-over-ceiling values
// are refused before anything runs, naming the flag and the rule.
func TestRunBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--peer", "mysql"}, `--peer: "mysql" is not a peer`},
		{[]string{"--peer", "postgres,postgres-strong,postgres"}, `--peer: "postgres" given twice`},
		{[]string{"--min-fold-over-ceiling", "1.5"}, "--min-fold-over-ceiling 1.5: want a ratio from 0 to 1"},
		{[]string{"--min-fold-over-ceiling", "-0.1"}, "want a ratio from 0 to 1"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", tc.args, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: stderr %q, want it to contain %q", tc.args, stderr.String(), tc.want)
		}
		if stdout.Len() > 0 {
			t.Errorf("%q: wrote %q to stdout", tc.args, stdout.String())
		}
	}
}
