package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tallyvn/tally/server"
	"github.com/tallyvn/tally/tally"
)

// TestDashboard drives the embedded dashboard in a real headless Chromium: the
// figures follow the event stream without a reload, the page recovers from a
// lost stream by itself, the drill-down reaches a station and its history,
// the unit view marks the winners the API decided, and the rejections view
// explains a conflicting submission. Any JavaScript exception or console
// error (a CSP violation shows up as one) fails the test.
//
// Its full-page screenshots go to a temporary directory; with -update they
// replace testdata/dashboard/*.png and ../docs/dashboard.png.
func TestDashboard(t *testing.T) {
	chromium := dashChromium(t)
	e, lines := dashExample(t)

	// The server, and a proxy in front of it that the test can cut to
	// simulate a lost connection: the browser talks to the proxy only.
	srvCtx, stopServer := context.WithCancel(context.Background())
	srv, err := server.New(srvCtx, server.Config{Election: e, DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", NATSListen: "none"})
	if err != nil {
		stopServer()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Run(srvCtx) }()
	t.Cleanup(func() {
		stopServer()
		if err := <-served; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	api := "http://" + srv.Addr()
	proxy := newDashProxy(t, api)

	// The browser. Each step gets its own deadline; the whole test its own.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		proxy.Close() // after the browser, which holds the event stream open
	})
	ctx, cancel := context.WithTimeout(browserCtx, 60*time.Second)
	defer cancel()

	console := watchDashConsole(t, ctx)
	defer console.check(t)

	// 1. The page loads, in Vietnamese, and connects to the live stream.
	dashStep(t, ctx, "load", chromedp.Navigate(proxy.URL+"/"))
	dashWaitText(t, ctx, `[data-testid=title]`, "Kết quả bầu cử")
	dashWaitText(t, ctx, `[data-testid=election-name]`, e.Name+" · Ngày bầu cử 23/05/2021")
	dashWaitText(t, ctx, `[data-testid=reporting-count]`, "0/183")
	dashWaitTrue(t, ctx, "live", `document.querySelector('#live-pill').dataset.state === 'live' && document.querySelector('[data-testid=reconnecting]').hidden`)
	if title := dashRun(t, ctx, chromedp.Title()); !strings.Contains(title, "Kết quả bầu cử") {
		t.Errorf("document title %q", title)
	}
	// A marker that a reload would lose.
	dashStep(t, ctx, "mark", chromedp.Evaluate[chromedp.Void](`window.__noReload = true`))

	// 2. Minutes arrive; the figures follow without a reload.
	first, second := lines[:200], lines[200:400]
	dashSubmit(t, srv, api, first)
	dashWaitText(t, ctx, `[data-testid=reporting-count]`, fmt.Sprintf("%d/183", dashReporting(first, "QH", false)))
	dashWaitText(t, ctx, `[data-testid=final-count]`, fmt.Sprintf("%d/183", dashReporting(first, "QH", true)))

	// 3. A conflicting minutes (same version, other content) passes the
	// gateway and is rejected by the fold.
	conflictStation := dashSubmitConflict(t, srv, api, first)

	// 4. The stream is lost: the banner shows; minutes arrive meanwhile; the
	// stream comes back by itself and the figures catch up.
	console.setOutage(true)
	proxy.cut()
	dashWaitTrue(t, ctx, "reconnecting banner", `!document.querySelector('[data-testid=reconnecting]').hidden`)
	if vis := dashRun(t, ctx, chromedp.Text(chromedp.CSS(`[data-testid=reconnecting]`))); !strings.Contains(vis, "Đang kết nối lại…") {
		t.Errorf("banner text %q", vis)
	}
	dashSubmit(t, srv, api, second)
	// Wait for the browser's own retry to be refused: after an HTTP error
	// EventSource gives up, and the page must reconnect by itself.
	select {
	case <-proxy.refused:
	case <-time.After(10 * time.Second):
		t.Fatal("the browser did not retry the event stream")
	}
	proxy.restore()
	dashWaitTrue(t, ctx, "banner hidden after reconnect", `document.querySelector('[data-testid=reconnecting]').hidden && document.querySelector('#live-pill').dataset.state === 'live'`)
	console.setOutage(false)
	dashWaitText(t, ctx, `[data-testid=reporting-count]`, fmt.Sprintf("%d/183", dashReporting(lines[:400], "QH", false)))

	// 5. Everything else; every station of every contest ends final.
	dashSubmit(t, srv, api, lines[400:])
	dashWaitText(t, ctx, `[data-testid=reporting-count]`, "183/183")
	dashWaitText(t, ctx, `[data-testid=final-count]`, "183/183")
	dashWaitTrue(t, ctx, "no reload", `window.__noReload === true`)
	dashShoot(t, ctx, "testdata/dashboard/overview.png")

	// 6. Drill down: province → district → ward → station, and up again by
	// the breadcrumb.
	dashStep(t, ctx, "click district", chromedp.Click(chromedp.CSS(`[data-testid=area-row][data-area="LB"] a`)))
	dashWaitText(t, ctx, `[data-testid=view-title]`, "Quận Long Biên")
	dashStep(t, ctx, "click ward", chromedp.Click(chromedp.CSS(`[data-testid=area-row][data-area="LB-CK"] a`)))
	dashWaitText(t, ctx, `[data-testid=view-title]`, "Phường Cự Khối")
	dashWaitText(t, ctx, `[data-testid=reporting-count]`, "8/8")
	dashStep(t, ctx, "click station", chromedp.Click(chromedp.CSS(fmt.Sprintf(`[data-testid=station-row][data-station=%q] a`, conflictStation))))
	dashWaitText(t, ctx, `[data-testid=view-title]`, e.Stations[dashStationIndex(t, e, conflictStation)].Name)
	hist := dashStationHistory(t, api, "QH", conflictStation)
	dashWaitTrue(t, ctx, "station history", fmt.Sprintf(`document.querySelectorAll('[data-testid=history-row]').length === %d`, len(hist.History)))
	outcomes := dashRun(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid=history-row]')].map(r => r.dataset.outcome + ':' + r.lastElementChild.textContent)`))
	if want := dashHistoryWant(hist); strings.Join(outcomes, ",") != want {
		t.Errorf("station history shows %v, want %s", outcomes, want)
	}
	dashWaitTrue(t, ctx, "current minutes", fmt.Sprintf(`(e => e && e.dataset.version === '%d' && e.dataset.status === 'final')(document.querySelector('[data-testid=current-minutes]'))`, hist.Current.Version))
	dashStep(t, ctx, "breadcrumb up", chromedp.Click(chromedp.CSS(`[data-testid=crumb] a[href$="/area/LB"]`)))
	dashWaitText(t, ctx, `[data-testid=view-title]`, "Quận Long Biên")

	// 7. The unit: decided, with exactly the API's three winners marked.
	dashStep(t, ctx, "units", chromedp.Click(chromedp.CSS(`[data-testid=nav-units]`)))
	dashWaitText(t, ctx, `[data-testid=view-title]`, "Đơn vị bầu cử")
	dashStep(t, ctx, "click unit", chromedp.Click(chromedp.CSS(`[data-testid=unit-card][data-unit="QH-HN-02"]`)))
	dashWaitText(t, ctx, `[data-testid=unit-status]`, "Đã xác định người trúng cử")
	unit := dashUnitResult(t, api, "QH", "QH-HN-02")
	if unit.Status != "decided" || len(unit.Winners) != 3 {
		t.Fatalf("API unit result: status %s, winners %v", unit.Status, unit.Winners)
	}
	var want []string
	for _, id := range unit.Winners {
		for _, c := range unit.Candidates {
			if c.ID == id {
				want = append(want, c.Name+"|Trúng cử")
			}
		}
	}
	got := dashRun(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid=winner]')].map(b =>
		b.closest('[data-testid=candidate]').querySelector('[data-testid=candidate-name]').textContent + '|' + b.textContent)`))
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("winners marked %q, want %q", got, want)
	}
	shares := dashRun(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid=candidate-votes]')].map(e => e.textContent)`))
	if len(shares) != len(unit.Candidates) {
		t.Errorf("%d candidates drawn, want %d", len(shares), len(unit.Candidates))
	}
	dashShoot(t, ctx, "testdata/dashboard/dashboard.png", "../docs/dashboard.png")

	// 8. The rejections view explains the conflict.
	rej := dashRejections(t, api)
	if len(rej) != 1 || len(rej[0].Errors) == 0 || rej[0].Errors[0].Rule != tally.RuleConflict {
		t.Fatalf("API rejections: %+v", rej)
	}
	dashStep(t, ctx, "rejections", chromedp.Click(chromedp.CSS(`[data-testid=nav-rejections]`)))
	dashWaitText(t, ctx, `[data-testid=rejected-count]`, "1")
	row := fmt.Sprintf(`[data-testid=rejection][data-station=%q][data-contest="QH"]`, conflictStation)
	dashStep(t, ctx, "rejection row", chromedp.WaitVisible(chromedp.CSS(row)))
	reason := dashRun(t, ctx, chromedp.Text(chromedp.CSS(row+` [data-testid=rejection-reason]`)))
	for _, s := range []string{"Xung đột: cùng phiên bản nhưng nội dung khác", rej[0].Errors[0].Message} {
		if !strings.Contains(reason, s) {
			t.Errorf("rejection reason %q lacks %q", reason, s)
		}
	}

	// 9. Another contest, by its tab.
	dashStep(t, ctx, "contest tab", chromedp.Click(chromedp.CSS(`[data-testid=contest-tab][data-contest="HDND-LB"]`)))
	dashWaitTrue(t, ctx, "tab selected", `document.querySelector('[data-testid=contest-tab][aria-selected=true]').dataset.contest === 'HDND-LB'`)
	dashStep(t, ctx, "overview", chromedp.Click(chromedp.CSS(`[data-testid=nav-overview]`)))
	dashWaitText(t, ctx, `[data-testid=final-count]`, "183/183")
	dashWaitTrue(t, ctx, "eight units", `document.querySelectorAll('[data-testid=unit-card]').length === 8`)

	// 10. The same page on a phone.
	dashStep(t, ctx, "phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	dashStep(t, ctx, "unit on phone", chromedp.Click(chromedp.CSS(`[data-testid=unit-card][data-unit="HDND-LB-07"]`)))
	dashWaitText(t, ctx, `[data-testid=unit-status]`, "Đã xác định người trúng cử")
	dashWaitTrue(t, ctx, "four winners of five seats", `document.querySelectorAll('[data-testid=winner]').length === 4`)
	dashWaitTrue(t, ctx, "no sideways scroll", `document.documentElement.scrollWidth <= window.innerWidth`)
	dashShoot(t, ctx, "testdata/dashboard/phone.png")
}

// dashChromium returns the browser to drive. Without one the test is skipped,
// except under CI, where a missing browser is a failure.
func dashChromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "" {
		t.Skip("no chromium found (install it, or set CI=true to make this a failure)")
	}
	t.Fatal("CI: chromium is required for the dashboard test (apt-get install chromium)")
	return ""
}

func dashExample(t *testing.T) (*tally.Election, [][]byte) {
	t.Helper()
	data, err := os.ReadFile("../examples/longbien/election.json")
	if err != nil {
		t.Fatal(err)
	}
	e, err := tally.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../examples/longbien/minutes.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	return e, bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
}

// ---- the proxy ----------------------------------------------------------

// dashProxy forwards to the server. cut ends the event streams in flight and
// answers new ones with 503 until restore, as a restarting server or a
// broken link would; other requests pass.
type dashProxy struct {
	*httptest.Server
	down    atomic.Bool
	refused chan struct{} // closed at the first event-stream request answered 503
	once    sync.Once
	mu      sync.Mutex
	streams map[*http.Request]context.CancelFunc
}

func newDashProxy(t *testing.T, target string) *dashProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		if !errors.Is(err, context.Canceled) {
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
	}
	p := &dashProxy{streams: map[*http.Request]context.CancelFunc{}, refused: make(chan struct{})}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/stream" {
			rp.ServeHTTP(w, r)
			return
		}
		if p.down.Load() {
			p.once.Do(func() { close(p.refused) })
			http.Error(w, "upstream restarting", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		r = r.WithContext(ctx)
		p.mu.Lock()
		p.streams[r] = cancel
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			delete(p.streams, r)
			p.mu.Unlock()
			cancel()
		}()
		rp.ServeHTTP(w, r)
	}))
	return p
}

func (p *dashProxy) cut() {
	p.down.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, cancel := range p.streams {
		cancel()
	}
}

func (p *dashProxy) restore() { p.down.Store(false) }

// ---- the console ----------------------------------------------------------

// dashConsole collects the page's exceptions and console errors. While the
// proxy is cut, the browser's own log of the failed event-stream requests
// is expected and tolerated; nothing else is.
type dashConsole struct {
	mu     sync.Mutex
	outage bool
	bad    []string
}

func watchDashConsole(t *testing.T, ctx context.Context) *dashConsole {
	t.Helper()
	w := &dashConsole{}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException {
				continue
			}
			w.mu.Lock()
			stream := m.Source == "network" && strings.Contains(m.URL+m.Text, "/api/v1/stream")
			if !(w.outage && stream) {
				w.bad = append(w.bad, fmt.Sprintf("%s [%s] %s:%d", m, m.Source, m.URL, m.Line+1))
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *dashConsole) setOutage(on bool) {
	w.mu.Lock()
	w.outage = on
	w.mu.Unlock()
}

func (w *dashConsole) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.bad {
		t.Errorf("browser console: %s", m)
	}
}

// ---- browser helpers --------------------------------------------------------

func dashStep(t *testing.T, ctx context.Context, what string, a chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, a); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func dashRun[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// dashWaitTrue polls a JavaScript predicate until it holds.
func dashWaitTrue(t *testing.T, ctx context.Context, what, predicate string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := chromedp.Run(sctx, chromedp.Poll[bool](predicate, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("waiting for %s (%s): %v", what, predicate, err)
	}
}

// dashWaitText waits until the first element matching sel has the text want.
func dashWaitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	js, _ := json.Marshal(sel)
	wantJS, _ := json.Marshal(want)
	pred := fmt.Sprintf(`(e => !!e && e.textContent.trim() === %s)(document.querySelector(%s))`, wantJS, js)
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := chromedp.Run(sctx, chromedp.Poll[bool](pred, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(e => e ? e.textContent.trim() : '<none>')(document.querySelector(%s))`, js)))
		t.Fatalf("%s: text %q, want %q (%v)", sel, got, want, err)
	}
}

// updateScreenshots makes TestDashboard write its screenshots over the
// tracked ones (testdata/dashboard/*.png and ../docs/dashboard.png, shown in
// the README). Without it they go to a temporary directory: a test run
// never changes the tree.
var updateScreenshots = flag.Bool("update", false, "rewrite the dashboard screenshots in testdata/dashboard and docs/")

// dashShoot takes a full-page screenshot, checks that it is a PNG of the
// page's width, and writes it to paths under -update, else to a temporary
// directory (under the same base name; -test.v logs where). It returns the decoded image.
func dashShoot(t *testing.T, ctx context.Context, paths ...string) image.Image {
	t.Helper()
	// Bars grow with a CSS transition; take the picture once they stand.
	dashWaitTrue(t, ctx, "bars settled", `document.getAnimations().every(a => a.playState !== 'running')`)
	shot := dashRun(t, ctx, chromedp.FullScreenshot(100))
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot %s is not a PNG: %v", paths[0], err)
	}
	width := dashRun(t, ctx, chromedp.Evaluate[int](`document.documentElement.clientWidth`))
	height := dashRun(t, ctx, chromedp.Evaluate[int](`document.documentElement.scrollHeight`))
	if b := img.Bounds(); b.Dx() != width || b.Dy() < height/2 {
		t.Errorf("screenshot %s is %dx%d, the page %dx%d", paths[0], b.Dx(), b.Dy(), width, height)
	}
	if !*updateScreenshots {
		paths = []string{filepath.Join(t.TempDir(), filepath.Base(paths[0]))}
	}
	for _, p := range paths {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	return img
}

// ---- API helpers ------------------------------------------------------------

// dashSubmit posts minutes lines as NDJSON and waits until they are folded.
func dashSubmit(t *testing.T, srv *server.Server, api string, lines [][]byte) {
	t.Helper()
	resp, err := http.Post(api+"/api/v1/minutes", "application/x-ndjson", bytes.NewReader(bytes.Join(lines, []byte("\n"))))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d %s", resp.StatusCode, body)
	}
	var ok server.SubmitResponse
	if err := json.Unmarshal(body, &ok); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.WaitApplied(ctx, ok.Seq); err != nil {
		t.Fatalf("seq %d not applied: %v", ok.Seq, err)
	}
}

// dashSubmitConflict sends again the first QH minutes of lines with two ballots
// moved from invalid to valid, and returns its station.
func dashSubmitConflict(t *testing.T, srv *server.Server, api string, lines [][]byte) string {
	t.Helper()
	for _, l := range lines {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(l))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		inv, _ := m["invalid"].(json.Number).Int64()
		if m["contest"] != "QH" || inv < 2 {
			continue
		}
		val, _ := m["valid"].(json.Number).Int64()
		m["valid"], m["invalid"] = val+2, inv-2
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		dashSubmit(t, srv, api, [][]byte{b})
		return m["station"].(string)
	}
	t.Fatal("no QH minutes to contradict")
	return ""
}

// dashReporting counts the (contest) stations whose latest minutes in lines
// are partial or final, or only final.
func dashReporting(lines [][]byte, contest string, final bool) int {
	type key struct{ station string }
	type cur struct {
		version int
		status  string
	}
	latest := map[key]cur{}
	for _, l := range lines {
		var m struct {
			Contest, Station, Status string
			Version                  int
		}
		if json.Unmarshal(l, &m) != nil || m.Contest != contest {
			continue
		}
		k := key{m.Station}
		if c, ok := latest[k]; !ok || m.Version > c.version {
			latest[k] = cur{m.Version, m.Status}
		}
	}
	n := 0
	for _, c := range latest {
		if c.status == "final" || (!final && c.status == "partial") {
			n++
		}
	}
	return n
}

func dashGetJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

type dashUnit struct {
	Status     string   `json:"status"`
	Winners    []string `json:"winners"`
	Candidates []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"candidates"`
}

func dashUnitResult(t *testing.T, api, contest, unit string) dashUnit {
	t.Helper()
	var u dashUnit
	dashGetJSON(t, api+"/api/v1/contests/"+contest+"/units/"+unit, &u)
	return u
}

type dashStation struct {
	Current *struct {
		Version int `json:"version"`
	} `json:"current"`
	History []struct {
		Seq     uint64 `json:"seq"`
		Outcome string `json:"outcome"`
	} `json:"history"`
}

func dashStationHistory(t *testing.T, api, contest, station string) dashStation {
	t.Helper()
	var s dashStation
	dashGetJSON(t, api+"/api/v1/contests/"+contest+"/stations/"+station, &s)
	if s.Current == nil {
		t.Fatalf("station %s has no current minutes", station)
	}
	return s
}

// dashHistoryWant is the history as the page lists it: newest first, outcomes in
// Vietnamese.
func dashHistoryWant(s dashStation) string {
	words := map[string]string{"applied": "đã áp dụng", "stale": "cũ", "duplicate": "trùng", "rejected": "bị từ chối"}
	var out []string
	for i := len(s.History) - 1; i >= 0; i-- {
		o := s.History[i].Outcome
		out = append(out, o+":"+words[o])
	}
	return strings.Join(out, ",")
}

type dashRejection struct {
	Station string            `json:"station"`
	Contest string            `json:"contest"`
	Errors  []tally.Violation `json:"errors"`
}

func dashRejections(t *testing.T, api string) []dashRejection {
	t.Helper()
	var r []dashRejection
	dashGetJSON(t, api+"/api/v1/rejections", &r)
	return r
}

func dashStationIndex(t *testing.T, e *tally.Election, id string) int {
	t.Helper()
	i, ok := e.StationIndex(id)
	if !ok {
		t.Fatalf("no station %s", id)
	}
	return i
}
