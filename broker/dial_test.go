package broker

import (
	"strings"
	"testing"
)

func TestCheckURLs(t *testing.T) {
	for _, tc := range []struct{ urls, err string }{
		{"nats://127.0.0.1:4222", ""},
		{"nats://127.0.0.1:4222,nats://127.0.0.1:4223, nats://127.0.0.1:4224", ""},
		{"127.0.0.1:4222", ""},
		{"tls://nats.example:4222", ""},
		{"nats://a:1,,nats://b:2", "URL 2 is empty"},
		{"http://127.0.0.1:4222", `scheme "http"`},
		{"nats://", "no host"},
		{"nats://a:1,nats://[::1", "URL 2"},
	} {
		err := CheckURLs(tc.urls)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("CheckURLs(%q): %v", tc.urls, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("CheckURLs(%q) = %v, want an error saying %q", tc.urls, err, tc.err)
		}
	}
}
