package server_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tallyvn/tally/server"
	"github.com/tallyvn/tally/tally"
)

// TestDashboardExportLinks: in a real headless Chromium, the dashboard's
// unit view links to the unit's PDF minutes, an area view to the area's, and
// a contest's overview to its CSV; each link answers 200 with its type.
func TestDashboardExportLinks(t *testing.T) {
	chromium := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		if os.Getenv("CI") == "" {
			t.Skip("no chromium found (install it, or set CI=true to make this a failure)")
		}
		t.Fatal("CI: chromium is required (apt-get install chromium)")
	}
	raw, err := os.ReadFile("../examples/longbien/election.json")
	if err != nil {
		t.Fatal(err)
	}
	e, err := tally.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, stop := context.WithCancel(context.Background())
	srv, err := server.New(srvCtx, server.Config{Election: e, DataDir: t.TempDir(), HTTP: server.HTTPConfig{Addr: "127.0.0.1:0"}, NATS: server.NATSConfig{Listen: "none"}})
	if err != nil {
		stop()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Run(srvCtx) }()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("server: %v", err)
		}
	}()
	base := "http://" + srv.Addr()

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-first-run", true), chromedp.UserDataDir(t.TempDir()))
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()

	for _, tc := range []struct{ page, testid, href, contentType string }{
		{"/#/QH/unit/QH-HN-02", "unit-pdf", "/api/v1/contests/QH/units/QH-HN-02/minutes.pdf", "application/pdf"},
		{"/#/HDND-LB/area/LB-NT", "area-pdf", "/api/v1/contests/HDND-LB/areas/LB-NT/minutes.pdf", "application/pdf"},
		{"/#/HDND-LB", "contest-csv", "/api/v1/export/results.csv?contest=HDND-LB", "text/csv"},
	} {
		if _, err := chromedp.Run(ctx, chromedp.Navigate(base+tc.page)); err != nil {
			t.Fatalf("%s: %v", tc.page, err)
		}
		attr, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`[data-testid=`+tc.testid+`]`), "href"))
		if err != nil {
			t.Fatalf("%s: %s: %v", tc.page, tc.testid, err)
		}
		href := attr.Value
		if href != tc.href {
			t.Errorf("%s: %s links to %q, want %q", tc.page, tc.testid, href, tc.href)
		}
		resp, err := http.Get(base + href)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType) {
			t.Errorf("GET %s: %d %s, want 200 %s", href, resp.StatusCode, resp.Header.Get("Content-Type"), tc.contentType)
		}
	}
}
