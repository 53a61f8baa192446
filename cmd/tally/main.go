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
	{"results", "print the result of an area or an electoral unit", runResults},
	{"export", "write NIST SP 1500-100 JSON, CSV or printable minutes (PDF)", runExport},
	{"rebuild", "rebuild the projections from the stream", runRebuild},
	{"verify", "audit the projections against the stream and the seals", runVerify},
	{"simulate", "play an election night of count minutes against a server", runSimulate},
	{"keys", "make station key pairs and seal an election file", runKeys},
	{"nats-config", "print nats-server permissions for a sealed election", runNATSConfig},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
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

func usage(w io.Writer) {
	fmt.Fprint(w, `tally aggregates election-night count minutes (biên bản kết quả kiểm phiếu)
from polling stations into ward, district, province and electoral-unit results.

Usage:
  tally <command> [flags]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'tally <command> --help' for a command's flags.
Exit codes: 0 success, 1 rejected or failed operation, 2 bad usage.
`)
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
	usage := fs.Usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return exitOK, false
	case err != nil:
		fs.Usage()
		return exitUsage, false
	}
	return exitOK, true
}

// usageError prints a usage problem and returns exitUsage.
func usageError(fs *flag.FlagSet, format string, args ...any) int {
	fmt.Fprintf(fs.Output(), "tally %s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	fmt.Fprintf(fs.Output(), "Run 'tally %s --help' for usage.\n", fs.Name())
	return exitUsage
}
