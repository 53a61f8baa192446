// Package lint runs the tree's style checks as a test, so `go test ./...`
// keeps the tree clean.
package lint

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func root(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestGofmt fails on any file gofmt would change.
func TestGofmt(t *testing.T) {
	gofmt, err := exec.LookPath("gofmt")
	if err != nil {
		out, err := exec.Command("go", "env", "GOROOT").Output()
		if err != nil {
			t.Fatalf("find gofmt: %v", err)
		}
		gofmt = filepath.Join(strings.TrimSpace(string(out)), "bin", "gofmt")
	}
	out, err := exec.Command(gofmt, "-l", root(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("gofmt: %v\n%s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Fatalf("files not gofmt-clean (run gofmt -w):\n%s", s)
	}
}
