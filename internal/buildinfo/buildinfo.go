// Package buildinfo says which tally this is: the module version and the
// version-control revision the binary was built from, as the Go toolchain
// recorded them (runtime/debug.ReadBuildInfo). `tally version` prints it
// and the server exports it as the tally_build_info metric.
package buildinfo

import (
	"fmt"
	"runtime/debug"
)

// Info describes the running binary.
type Info struct {
	// Module is the main module's path.
	Module string
	// Version is the main module's version: a tag or pseudo-version when
	// built with `go install module@version`, "(devel)" when built from a
	// checkout.
	Version string
	// Revision is the VCS commit, "" when unknown (built without VCS
	// information, as `go test` does).
	Revision string
	// Time is the commit time (RFC 3339), "" when unknown.
	Time string
	// Modified: the working tree had uncommitted changes.
	Modified bool
	// GoVersion is the toolchain that built the binary.
	GoVersion string
}

// Read returns what the binary knows of its build; fields stay "" when the
// build recorded nothing.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "unknown"}
	}
	in := Info{Module: bi.Main.Path, Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if in.Version == "" {
		in.Version = "unknown"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
}

// String formats the information on one line.
func (in Info) String() string {
	s := fmt.Sprintf("tally %s", in.Version)
	if in.Revision != "" {
		s += ", revision " + in.Revision
		if in.Modified {
			s += " (modified)"
		}
		if in.Time != "" {
			s += " of " + in.Time
		}
	} else {
		s += ", revision unknown"
	}
	if in.Module != "" {
		s += ", module " + in.Module
	}
	return s + ", " + in.GoVersion
}
