// Command tally is the vote tally aggregator: it serves the ingest gateway,
// the fold and the results API, and it submits minutes, prints results and
// rebuilds projections. Run `tally help` for the commands.
//
// Exit codes: 0 success, 1 rejected or failed operation, 2 bad usage.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tallyvn/tally/internal/buildinfo"
	"github.com/tallyvn/tally/internal/usermsg"
)

// Exit codes (CONTRACT §6).
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = []command{
	{"serve", "run the gateway, the fold and the results API", runServe},
	{"submit", "submit count minutes to a server", runSubmit},
	{"results", "print the result of an area, an electoral unit or a station; list the ids", runResults},
	{"export", "write NIST SP 1500-100 JSON, CSV or printable minutes (PDF)", runExport},
	{"rebuild", "rebuild the projections from the stream", runRebuild},
	{"verify", "audit the projections against the stream and the seals", runVerify},
	{"simulate", "play an election night of count minutes against a server", runSimulate},
	{"keys", "make station key pairs and seal an election file", runKeys},
	{"nats-config", "print nats-server permissions for an external NATS server", runNATSConfig},
	{"version", "print tally's version and the revision it was built from", runVersion},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	stderr = userErrors{stderr}
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "--version", "-version":
		return runVersion(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			return run([]string{args[1], "--help"}, stdout, stderr)
		}
		usage(stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "tally: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "", `Prints the module version and the VCS revision tally was built from
(a binary built with 'go build' in a git checkout knows its revision;
'go run' and 'go test' binaries do not).`, stdout, stderr)
	if code, ok := parseFlags(fs, args, stdout); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(fs, "unexpected arguments %q", fs.Args())
	}
	fmt.Fprintln(stdout, buildinfo.Read())
	return exitOK
}

func usage(w io.Writer) {
	fmt.Fprint(w, `tally aggregates election-night count minutes (biên bản kết quả kiểm phiếu)
from polling stations into area (every level of the file) and electoral-unit results.

Usage:
  tally <command> [flags]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'tally <command> --help' for a command's flags.
Exit codes: 0 success, 1 rejected or failed operation, 2 bad usage.
`)
}

// userErrors writes what the commands print on stderr without the Go
// package prefixes of wrapped errors (each write is one message or one log
// line, so a prefix is never split between writes).
type userErrors struct{ w io.Writer }

func (u userErrors) Write(p []byte) (int, error) {
	s := usermsg.Inner(string(p))
	if _, err := io.WriteString(u.w, s); err != nil {
		return 0, err
	}
	return len(p), nil
}

// newFlags returns a flag set for a subcommand whose --help prints the
// synopsis, a description and the flags to stdout.
func newFlags(name, synopsis, description string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: tally %s %s\n\n%s\n\nFlags:\n", name, synopsis, description)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; it returns an exit code and false when the
// command should stop (help shown, or bad usage).
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) (int, bool) {
	// flag.Parse prints the usage itself on -h and on errors, to the flag
	// set's output (stderr). Help is asked for, so it goes to stdout, once.
	// A mistake gets the error, a suggestion and one line pointing to
	// --help, not the whole help, where the error would scroll away.
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return exitOK, false
	case err != nil:
		msg := err.Error()
		fmt.Fprintf(out, "tally %s: %s\n", fs.Name(), strings.Replace(msg, ": -", ": --", 1))
		if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
			if s := suggestFlag(fs, strings.TrimPrefix(name, "-")); s != "" {
				fmt.Fprintf(out, "Did you mean --%s?\n", s)
			}
		}
		fmt.Fprintf(out, "Run 'tally %s --help' for usage.\n", fs.Name())
		return exitUsage, false
	}
	return exitOK, true
}

// suggestFlag returns the defined flag closest to name (a mistyped one),
// or "" when none is close: within an edit distance of a third of its
// length (at least 2), or the only flag name begins with.
func suggestFlag(fs *flag.FlagSet, name string) string {
	name, _, _ = strings.Cut(name, "=")
	best, bestD := "", 0
	var prefixed []string
	fs.VisitAll(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, name) {
			prefixed = append(prefixed, f.Name)
		}
		d := editDistance(name, f.Name)
		if best == "" || d < bestD {
			best, bestD = f.Name, d
		}
	})
	if best != "" && bestD <= max(2, len(best)/3) {
		return best
	}
	if len(prefixed) == 1 {
		return prefixed[0]
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// usageError prints a usage problem and returns exitUsage.
func usageError(fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(fs.Output(), "tally %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fmt.Fprintf(fs.Output(), "Run 'tally %s --help' for usage.\n", fs.Name())
	return exitUsage
}
