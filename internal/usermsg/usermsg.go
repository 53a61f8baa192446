// Package usermsg takes the Go package prefixes of tally's own error values
// ("tally: unknown unit", "events: malformed minutes JSON") out of messages
// shown to people: useful in logs, noise to a user or an API client. The
// command line and the HTTP API share the one list of packages.
package usermsg

import "strings"

// packages are the prefixes tally's error values carry.
var packages = []string{"tally", "projections", "events", "broker", "export", "server", "audit"}

// inner replaces a prefix where a wrapped error or a log attribute starts
// inside a line: after ": " and after `="`.
var inner = func() *strings.Replacer {
	var pairs []string
	for _, p := range packages {
		pairs = append(pairs, ": "+p+": ", ": ", `="`+p+": ", `="`)
	}
	return strings.NewReplacer(pairs...)
}()

// Inner drops the package prefixes inside s, leaving its start alone (a
// command's output may start with the program's own name, "tally: ").
func Inner(s string) string { return inner.Replace(s) }

// Message drops the package prefixes msg starts with, then those inside it.
func Message(msg string) string {
	for again := true; again; {
		again = false
		for _, p := range packages {
			if rest, ok := strings.CutPrefix(msg, p+": "); ok {
				msg, again = rest, true
			}
		}
	}
	return Inner(msg)
}
