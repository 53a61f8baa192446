//go:build !unix

package server

// diskFree is not measured on this platform: the check is skipped.
var diskFree func(dir string) (int64, error)
