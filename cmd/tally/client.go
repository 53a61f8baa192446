package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// checkServerURL checks a --server flag: an http:// or https:// URL with a
// host. It returns the URL without a trailing slash; anything else is bad
// usage, reported at once rather than retried as a network error.
func checkServerURL(fs *flag.FlagSet, s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		usageError(fs, "--server %q: want a URL with a scheme and a host, such as http://%s", s, strings.TrimPrefix(strings.TrimPrefix(s, "//"), "/"))
		return "", false
	}
	return strings.TrimRight(s, "/"), true
}

// fetchJSON GETs base+path and decodes a 200 answer into v. A 503 with
// Retry-After (results withheld during a rebuild, the stream unavailable)
// is honoured and retried until ctx is done.
func fetchJSON(ctx context.Context, client *http.Client, base, path string, v any) error {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("GET %s: %w", path, err)
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			if ra := retryAfter(resp.Header); ra > 0 {
				select {
				case <-ctx.Done():
					return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, errorText(body))
				case <-time.After(ra):
				}
				continue
			}
		}
		if resp.StatusCode != http.StatusOK {
			return &httpError{code: resp.StatusCode, path: path, msg: errorText(body)}
		}
		if err := json.Unmarshal(body, v); err != nil {
			return fmt.Errorf("GET %s: bad answer: %w", path, err)
		}
		return nil
	}
}

// httpError is an answer other than 200 to a GET.
type httpError struct {
	code int
	path string
	msg  string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("server answered %d: %s", e.code, e.msg)
}

// isNotFound reports whether err is a 404 answer.
func isNotFound(err error) bool {
	var he *httpError
	return errors.As(err, &he) && he.code == http.StatusNotFound
}

// retryAfter returns the Retry-After of an answer in seconds, 0 if none.
func retryAfter(h http.Header) time.Duration {
	var s int
	if _, err := fmt.Sscanf(h.Get("Retry-After"), "%d", &s); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}
