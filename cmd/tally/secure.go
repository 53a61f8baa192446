package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// readTokenFile reads an operator token: the file's content without
// surrounding whitespace, printable ASCII without spaces (it travels in an
// HTTP header). A file others can read is used, with a warning. Errors
// never quote the file's content.
func readTokenFile(path string, stderr io.Writer) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	defer clear(data)
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(stderr, "tally: warning: token file %s can be read by others (mode %04o); the token is secret: chmod 600 %s\n", path, st.Mode().Perm(), path)
	}
	tok := bytes.TrimSpace(data)
	if len(tok) == 0 {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	for _, c := range tok {
		if c <= ' ' || c > '~' {
			return "", fmt.Errorf("token file %s: the token must be one line of printable ASCII without spaces", path)
		}
	}
	if len(tok) < 16 {
		fmt.Fprintf(stderr, "tally: warning: the token in %s is only %d characters; use at least 32 random ones (e.g. openssl rand -hex 32)\n", path, len(tok))
	}
	return string(tok), nil
}

// clientTransport is an HTTP transport that trusts, besides the system's
// roots, the PEM certificates in caFile (for a server with a self-signed
// certificate); caFile "" changes nothing.
func clientTransport(caFile string) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if caFile == "" {
		return t, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
	}
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	return t, nil
}

// byteSize is a flag value for a number of bytes: an integer with an
// optional unit (KiB, MiB, GiB, or K, M, G meaning the same; kB, MB, GB
// powers of 1000).
type byteSize int64

func (b *byteSize) String() string { return formatBytes(int64(*b)) }

func (b *byteSize) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"kB", 1000}, {"KB", 1000}, {"MB", 1000_000}, {"GB", 1000_000_000},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1},
}

func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("want a size in bytes such as 8MiB, 65536 or 1GiB")
	}
	if n > (1<<62)/mult {
		return 0, errors.New("size too large")
	}
	return n * mult, nil
}

func formatBytes(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
