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
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
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
	srv, err := server.New(srvCtx, server.Config{Election: e, DataDir: t.TempDir(), HTTP: server.HTTPConfig{Addr: "127.0.0.1:0"}, NATS: server.NATSConfig{Listen: "none"}})
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
	// The pill says "live" only once the stream's first results are in:
	// the proxy holds the stream back until the page has been seen
	// waiting for it.
	proxy.hold()
	dashStep(t, ctx, "load", chromedp.Navigate(proxy.URL+"/"))
	dashWaitText(t, ctx, `[data-testid=title]`, "Kết quả bầu cử")
	dashWaitText(t, ctx, `[data-testid=election-name]`, e.Name+" · Ngày bầu cử 23/05/2021")
	proxy.waitHeld(t)
	dashWaitTrue(t, ctx, "not live before the first results", `document.querySelector('#live-pill').dataset.state === 'connecting' && document.querySelector('#live-pill').textContent === 'Đang tải số liệu…'`)
	proxy.release()
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

	// 2b. Mid-count: the province's stations not yet reported and not yet
	// final are listed, and the timeline counts the reporting ones.
	reporting, final := dashReporting(first, "QH", false), dashReporting(first, "QH", true)
	dashWaitTrue(t, ctx, "pending list", fmt.Sprintf(`(p => !!p && p.dataset.none === '%d' && p.dataset.partial === '%d')(document.querySelector('[data-testid=pending]')) && document.querySelectorAll('[data-testid=pending-row]').length === %d`, 183-reporting, reporting-final, min(50, 183-final)))
	// Not reported first, then not final, each with the time of its last
	// minutes when it has sent any.
	order := dashRun(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid=pending-row]')].map(r => r.dataset.status + '|' + r.lastElementChild.textContent)`))
	seenPartial := false
	for i, o := range order {
		status, when, _ := strings.Cut(o, "|")
		if (status == "none") != (when == "Chưa gửi") || (seenPartial && status != "partial") {
			t.Errorf("pending row %d: %q (in %v)", i, o, order)
			break
		}
		seenPartial = seenPartial || status == "partial"
	}
	// The contest's units summary, here made from its unit results, says
	// what the API's summary of the province says.
	dashCheckUnits(t, ctx, api, "QH", "HN")
	dashWaitTrue(t, ctx, "timeline", fmt.Sprintf(`(e => e && e.dataset.reporting === '%d' && e.dataset.final === '%d')(document.querySelector('[data-testid=timeline]'))`, reporting, final))
	// The unit mid-count: shares over final minutes only, as the API's
	// final-only sums give them, and the rule said on the page.
	dashGo(t, ctx, "#/HDND-HN/unit/HDND-HN-02")
	fin := dashUnitFinal(t, api, "HDND-HN", "HDND-HN-02")
	mid := dashUnitResult(t, api, "HDND-HN", "HDND-HN-02")
	if mid.Status != "counting" || fin.Stations == 0 || fin.Stations == mid.StationsReporting {
		t.Fatalf("the first minutes should leave HDND-HN-02 counting with final and partial minutes: %+v, %+v", mid, fin)
	}
	dashWaitTrue(t, ctx, "share rule", fmt.Sprintf(`(e => !!e && e.textContent.includes('Tỷ lệ tính trên %d/%d khu vực đã có biên bản chính thức'))(document.querySelector('[data-testid=share-rule]'))`, fin.Stations, mid.StationsExpected))
	type shownShare struct {
		ID    string  `json:"id"`
		Votes string  `json:"votes"`
		Share float64 `json:"share"`
	}
	shown := dashRun(t, ctx, chromedp.Evaluate[[]shownShare](`[...document.querySelectorAll('[data-testid=candidate]')].map(c => ({
		id: c.dataset.candidate,
		votes: c.querySelector('[data-testid=candidate-votes]').textContent,
		share: parseFloat(c.querySelector('[data-testid=candidate-share]').textContent.replace(',', '.')),
	}))`))
	if len(shown) != len(mid.Candidates) {
		t.Errorf("%d candidates shown mid-count, want %d", len(shown), len(mid.Candidates))
	}
	for _, c := range shown {
		v := fin.Votes[c.ID]
		want := float64(v) * 100 / float64(fin.Valid)
		if c.Votes != dashNum(v) || math.Abs(c.Share-want) > 0.006 {
			t.Errorf("mid-count %s: %s votes, %.2f%%; want over final minutes only %s, %.2f%%", c.ID, c.Votes, c.Share, dashNum(v), want)
		}
	}
	dashGo(t, ctx, "#/QH")

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

	// 5b. Warnings: a station whose new minutes list as many voters as
	// voted (turnout 100%, and not the file's list), a station whose
	// minutes the gateway refuses, and the conflict above.
	fullStation := dashSubmitFullTurnout(t, srv, api, lines, conflictStation)
	refusedStation := dashSubmitRefused(t, api, lines, conflictStation, fullStation)
	dashGo(t, ctx, "#/QH/area/LB")
	dashWaitText(t, ctx, `[data-testid=view-title]`, "Quận Long Biên")
	dashCheckUnits(t, ctx, api, "QH", "LB")
	// The page shows the API's warnings: among them, those made above
	// (the example's own minutes add some W3: voters added on the day).
	var report struct {
		Warnings []struct{ Code, Station string } `json:"warnings"`
	}
	dashGetJSON(t, api+"/api/v1/contests/QH/areas/LB/report", &report)
	var apiWarn []string
	for _, w := range report.Warnings {
		apiWarn = append(apiWarn, w.Code+":"+w.Station)
	}
	for _, w := range []string{"W1:" + fullStation, "W3:" + fullStation, "W5:" + refusedStation, "W6:" + conflictStation} {
		if !slices.Contains(apiWarn, w) {
			t.Errorf("API warnings %v lack %s", apiWarn, w)
		}
	}
	sort.Strings(apiWarn)
	wantJS, _ := json.Marshal(strings.Join(apiWarn, ","))
	dashWaitTrue(t, ctx, "warnings", fmt.Sprintf(`[...document.querySelectorAll('[data-testid=warning]')].map(w => w.dataset.code + ':' + w.dataset.station).sort().join(',') === %s`, wantJS))
	dashWaitTrue(t, ctx, "no pending station", `!!document.querySelector('[data-testid=no-pending]')`)
	dashWaitText(t, ctx, `[data-testid=rejected-count]`, "2") // the conflict and the refusal, at the next status poll
	dashShoot(t, ctx, "testdata/dashboard/dashboard.png", "../docs/dashboard.png")
	// A DOM click: the panel may be redrawn by a late report between a
	// mouse click's hit test and its press.
	dashStep(t, ctx, "warning link", chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid=warning][data-code=W6] a[data-testid=warning-station]').click()`))
	dashWaitText(t, ctx, `[data-testid=view-title]`, e.Stations[dashStationIndex(t, e, conflictStation)].Name)
	dashGo(t, ctx, "#/QH")

	// 6. Drill down: province → district → ward → station, and up again by
	// the breadcrumb.
	// An area's panels load after its figures and push what is below them
	// down: a mouse click waits for them, or it lands on another row.
	dashWaitPanels(t, ctx)
	dashClick(t, ctx, `[data-testid=area-row][data-area="LB"] a`)
	dashWaitText(t, ctx, `[data-testid=view-title]`, "Quận Long Biên")
	dashWaitPanels(t, ctx)
	dashClick(t, ctx, `[data-testid=area-row][data-area="LB-CK"] a`)
	dashWaitText(t, ctx, `[data-testid=view-title]`, "Phường Cự Khối")
	dashWaitText(t, ctx, `[data-testid=reporting-count]`, "8/8")
	dashWaitPanels(t, ctx)
	dashWaitTrue(t, ctx, "station rows filled", `[...document.querySelectorAll('[data-testid=station-valid]')].every(e => e.textContent !== '—')`)
	dashClick(t, ctx, fmt.Sprintf(`[data-testid=station-row][data-station=%q] a`, conflictStation))
	dashWaitText(t, ctx, `[data-testid=view-title]`, e.Stations[dashStationIndex(t, e, conflictStation)].Name)
	hist := dashStationHistory(t, api, "QH", conflictStation)
	dashWaitTrue(t, ctx, "station history", fmt.Sprintf(`document.querySelectorAll('[data-testid=history-row]').length === %d`, len(hist.History)))
	outcomes := dashRun(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid=history-row]')].map(r => r.dataset.outcome + ':' + r.lastElementChild.textContent)`))
	if want := dashHistoryWant(hist); strings.Join(outcomes, ",") != want {
		t.Errorf("station history shows %v, want %s", outcomes, want)
	}
	times := dashRun(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid=history-time]')].map(e => e.firstChild.textContent)`))
	for i, tm := range times {
		if !regexp.MustCompile(`^\d{2}:\d{2}:\d{2} `).MatchString(tm) {
			t.Errorf("history row %d shows the time %q, want HH:MM:SS and a date", i, tm)
		}
	}
	dashWaitTrue(t, ctx, "current minutes", fmt.Sprintf(`(e => e && e.dataset.version === '%d' && e.dataset.status === 'final')(document.querySelector('[data-testid=current-minutes]'))`, hist.Current.Version))
	dashClick(t, ctx, `[data-testid=crumb] a[href$="/area/LB"]`)
	dashWaitText(t, ctx, `[data-testid=view-title]`, "Quận Long Biên")

	// 7. QH-HN-02 is only partly in the file (the proxy gives it
	// stations_outside, as a v2 file does): its result is "the Long Biên
	// part", never a decision and never winners, whatever its status.
	dashStep(t, ctx, "units", chromedp.Click(chromedp.CSS(`[data-testid=nav-units]`)))
	dashWaitText(t, ctx, `[data-testid=view-title]`, "Đơn vị bầu cử")
	dashWaitText(t, ctx, `[data-testid=unit-card][data-unit="QH-HN-02"] [data-testid=unit-card-status]`, "Kết quả phần Long Biên")
	dashClick(t, ctx, `[data-testid=unit-card][data-unit="QH-HN-02"]`)
	dashWaitText(t, ctx, `[data-testid=unit-status]`, "Kết quả phần Long Biên")
	dashWaitTrue(t, ctx, "no winners in a part of a unit", `document.querySelectorAll('[data-testid=winner]').length === 0 && !document.body.textContent.includes('trúng cử:') && !document.body.textContent.includes('Đã xác định')`)

	// 7b. A whole unit: decided, with exactly the API's winners marked.
	dashGo(t, ctx, "#/HDND-HN/unit/HDND-HN-01")
	dashWaitText(t, ctx, `[data-testid=unit-status]`, "Đã xác định người trúng cử")
	unit := dashUnitResult(t, api, "HDND-HN", "HDND-HN-01")
	if unit.Status != "decided" || len(unit.Winners) == 0 {
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

	// 8. The rejections view explains the conflict and the gateway's
	// refusal, by name, each marked with where it was refused.
	rej := dashRejections(t, api)
	if len(rej) != 2 || rej[0].Source != "fold" || len(rej[0].Errors) == 0 || rej[0].Errors[0].Rule != tally.RuleConflict || rej[1].Source != "gateway" || rej[1].Station != refusedStation {
		t.Fatalf("API rejections: %+v", rej)
	}
	dashStep(t, ctx, "rejections", chromedp.Click(chromedp.CSS(`[data-testid=nav-rejections]`)))
	dashWaitText(t, ctx, `[data-testid=rejected-count]`, "2")
	for _, x := range []struct{ station, source, label string }{{conflictStation, "fold", "Từ chối khi tổng hợp"}, {refusedStation, "gateway", "Từ chối khi tiếp nhận"}} {
		row := fmt.Sprintf(`[data-testid=rejection][data-station=%q][data-contest="QH"][data-source=%q]`, x.station, x.source)
		dashStep(t, ctx, "rejection row", chromedp.WaitVisible(chromedp.CSS(row)))
		dashWaitText(t, ctx, row+` [data-testid=rejection-station]`, e.Stations[dashStationIndex(t, e, x.station)].Name)
		dashWaitText(t, ctx, row+` [data-testid=rejection-contest]`, e.Contests[0].Name)
		dashWaitText(t, ctx, row+` [data-testid=rejection-source]`, x.label)
	}
	row := fmt.Sprintf(`[data-testid=rejection][data-station=%q][data-source="fold"]`, conflictStation)
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
	dashWaitPanels(t, ctx)

	// 10. The same page on a phone, 400 px wide.
	dashStep(t, ctx, "phone", chromedp.EmulateViewport(400, 844, chromedp.EmulateMobile))
	dashClick(t, ctx, `[data-testid=unit-card][data-unit="HDND-LB-07"]`)
	dashWaitText(t, ctx, `[data-testid=unit-status]`, "Đã xác định người trúng cử")
	dashWaitTrue(t, ctx, "four winners of five seats", `document.querySelectorAll('[data-testid=winner]').length === 4`)
	dashWaitTrue(t, ctx, "the empty seat stays empty", `(e => !!e && e.textContent.includes('4/5') && e.textContent.includes('để trống') && e.textContent.includes('Điều 79'))(document.querySelector('[data-testid=seats-note]'))`)
	dashWaitTrue(t, ctx, "no sideways scroll", `document.documentElement.scrollWidth <= window.innerWidth`)
	// The active tab (the last) whole in its strip; nothing clipped at the
	// top of the tabs or the title.
	dashWaitTrue(t, ctx, "active tab in view", `(t => { const a = t.getBoundingClientRect(), b = t.parentElement.getBoundingClientRect(); return a.left >= b.left - 1 && a.right <= b.right + 1; })(document.querySelector('.tab[aria-selected=true]'))`)
	dashWaitTrue(t, ctx, "tabs not clipped", `(s => s.scrollHeight <= s.clientHeight)(document.querySelector('.tabs'))`)
	dashWaitTrue(t, ctx, "title not clipped", `[...document.querySelectorAll('h1, h2')].every(h => h.scrollHeight <= h.clientHeight + 1 && parseFloat(getComputedStyle(h).lineHeight) >= 1.3 * parseFloat(getComputedStyle(h).fontSize))`)
	dashShoot(t, ctx, "testdata/dashboard/phone.png")
	// A ward's stations: names on two lines at most; turnout and valid
	// ballots on screen.
	dashGo(t, ctx, "#/QH/area/LB-CK")
	dashWaitText(t, ctx, `[data-testid=view-title]`, "Phường Cự Khối")
	dashWaitTrue(t, ctx, "station figures", `[...document.querySelectorAll('[data-testid=station-valid]')].every(e => e.textContent !== '—')`)
	bad := dashRun(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('[data-testid=station-row]')].flatMap(r => {
		const out = [];
		const a = r.querySelector('td a');
		const lines = a.getBoundingClientRect().height / parseFloat(getComputedStyle(a).lineHeight);
		if (lines > 2.2) out.push(r.dataset.station + ': name on ' + lines.toFixed(1) + ' lines');
		for (const id of ['station-turnout', 'station-valid']) {
			const c = r.querySelector('[data-testid=' + id + ']').getBoundingClientRect();
			if (c.width === 0 || c.right > window.innerWidth) out.push(r.dataset.station + ': ' + id + ' off screen (' + c.right + ' > ' + window.innerWidth + ')');
		}
		return out;
	})`))
	if len(bad) > 0 {
		t.Errorf("ward at 400 px: %v", bad)
	}
	dashWaitTrue(t, ctx, "no sideways scroll on the ward", `document.documentElement.scrollWidth <= window.innerWidth`)
	dashShoot(t, ctx, "testdata/dashboard/phone-ward.png")
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
	down atomic.Bool
	// held, while not nil, keeps event-stream requests waiting until it
	// is closed; heldSeen is closed when one is waiting.
	holdMu   sync.Mutex
	held     chan struct{}
	heldSeen chan struct{}
	refused  chan struct{} // closed at the first event-stream request answered 503
	once     sync.Once
	mu       sync.Mutex
	streams  map[*http.Request]context.CancelFunc
}

func newDashProxy(t *testing.T, target string) *dashProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	// The election as a v2 file would give it: National Assembly unit
	// QH-HN-02 has stations in Hoàn Kiếm and Đông Anh too, outside the
	// Long Biên file.
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.URL.Path != "/api/v1/election" || resp.StatusCode != http.StatusOK {
			return nil
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		var e map[string]any
		if err := json.Unmarshal(raw, &e); err != nil {
			return err
		}
		for _, c := range e["contests"].([]any) {
			for _, u := range c.(map[string]any)["units"].([]any) {
				if u := u.(map[string]any); u["id"] == "QH-HN-02" {
					u["stations_outside"] = 412
				}
			}
		}
		if raw, err = json.Marshal(e); err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(raw))
		resp.ContentLength = int64(len(raw))
		resp.Header.Set("Content-Length", strconv.Itoa(len(raw)))
		return nil
	}
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
		p.holdMu.Lock()
		held, seen := p.held, p.heldSeen
		p.holdMu.Unlock()
		if held != nil {
			select {
			case <-seen:
			default:
				close(seen)
			}
			select {
			case <-held:
			case <-r.Context().Done():
				return
			}
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

// hold makes event-stream requests wait until release.
func (p *dashProxy) hold() {
	p.holdMu.Lock()
	defer p.holdMu.Unlock()
	p.held, p.heldSeen = make(chan struct{}), make(chan struct{})
}

// waitHeld waits until an event-stream request is being held.
func (p *dashProxy) waitHeld(t *testing.T) {
	t.Helper()
	p.holdMu.Lock()
	seen := p.heldSeen
	p.holdMu.Unlock()
	select {
	case <-seen:
	case <-time.After(15 * time.Second):
		t.Fatal("the page did not open the event stream")
	}
}

func (p *dashProxy) release() {
	p.holdMu.Lock()
	defer p.holdMu.Unlock()
	close(p.held)
	p.held = nil
}

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
			// The refused requests themselves (source network), and
			// EventSource's complaint about the proxy's text/plain 502
			// (source javascript, naming no URL).
			stream := m.Source == "network" && strings.Contains(m.URL+m.Text, "/api/v1/stream") ||
				strings.Contains(m.Text, "EventSource's response")
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
	Status            string   `json:"status"`
	StationsExpected  int      `json:"stations_expected"`
	StationsReporting int      `json:"stations_reporting"`
	Winners           []string `json:"winners"`
	Candidates        []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"candidates"`
}

type dashFinal struct {
	Stations int              `json:"stations_final"`
	Valid    int64            `json:"valid"`
	Votes    map[string]int64 `json:"votes"`
}

func dashUnitFinal(t *testing.T, api, contest, unit string) dashFinal {
	t.Helper()
	var f dashFinal
	dashGetJSON(t, api+"/api/v1/contests/"+contest+"/units/"+unit+"/final", &f)
	return f
}

// dashNum formats a count as the page does (vi-VN: a dot between
// thousands).
func dashNum(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "." + s[i:]
	}
	return s
}

// dashClick clicks the element sel by the DOM, once visible. The views
// redraw as figures arrive (an area's report can add warnings above a
// row), so a mouse click, hit-tested before the press, could land on a
// row that has just moved there.
func dashClick(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	dashStep(t, ctx, "visible "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	js, _ := json.Marshal(sel)
	dashStep(t, ctx, "click "+sel, chromedp.Evaluate[chromedp.Void](`document.querySelector(`+string(js)+`).click()`))
}

// dashWaitPanels waits until the area view's report panels have loaded.
func dashWaitPanels(t *testing.T, ctx context.Context) {
	t.Helper()
	dashWaitTrue(t, ctx, "area panels", `!!document.querySelector('[data-testid=warnings], [data-testid=no-warnings]') && !!document.querySelector('[data-testid=timeline]')`)
}

// dashGo moves the page to a route by its hash: no reload.
func dashGo(t *testing.T, ctx context.Context, hash string) {
	t.Helper()
	js, _ := json.Marshal(hash)
	dashStep(t, ctx, "go "+hash, chromedp.Evaluate[chromedp.Void](`location.hash = `+string(js)))
}

// dashSubmitFullTurnout sends new final QH minutes for a station other than
// skip whose list is set to the voters who voted (turnout 100%, and not the
// election file's figure), and returns the station.
func dashSubmitFullTurnout(t *testing.T, srv *server.Server, api string, lines [][]byte, skip string) string {
	t.Helper()
	m := dashLatest(t, lines, "QH", skip)
	voted, _ := m["voted"].(json.Number).Int64()
	issued, _ := m["issued"].(json.Number).Int64()
	version, _ := m["version"].(json.Number).Int64()
	if issued > voted {
		t.Skipf("station %s issued more ballots than voters voted", m["station"])
	}
	m["registered"], m["version"], m["status"] = voted, version+1, "final"
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	dashSubmit(t, srv, api, [][]byte{b})
	return m["station"].(string)
}

// dashSubmitRefused sends QH minutes the gateway must refuse (voted above
// registered) for a station other than skip, and returns the station.
func dashSubmitRefused(t *testing.T, api string, lines [][]byte, skip ...string) string {
	t.Helper()
	m := dashLatest(t, lines, "QH", skip...)
	reg, _ := m["registered"].(json.Number).Int64()
	version, _ := m["version"].(json.Number).Int64()
	m["voted"], m["version"] = reg+1, version+1
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(api+"/api/v1/minutes", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("refused minutes: %d %s", resp.StatusCode, body)
	}
	return m["station"].(string)
}

// dashLatest returns the highest version of the contest's minutes in lines
// of the first station not in skip whose latest minutes are final.
func dashLatest(t *testing.T, lines [][]byte, contest string, skip ...string) map[string]any {
	t.Helper()
	latest := map[string]map[string]any{}
	var order []string
	for _, l := range lines {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(l))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		st, _ := m["station"].(string)
		if m["contest"] != contest || slices.Contains(skip, st) {
			continue
		}
		v, _ := m["version"].(json.Number).Int64()
		if old, ok := latest[st]; ok {
			ov, _ := old["version"].(json.Number).Int64()
			if ov >= v {
				continue
			}
		} else {
			order = append(order, st)
		}
		latest[st] = m
	}
	for _, st := range order {
		if latest[st]["status"] == "final" {
			return latest[st]
		}
	}
	t.Fatalf("no final %s minutes outside %v", contest, skip)
	return nil
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
	words := map[string]string{"applied": "đã áp dụng", "stale": "bỏ qua: phiên bản cũ hơn bản đang dùng", "duplicate": "bỏ qua: trùng bản đã nhận", "rejected": "bị từ chối"}
	var out []string
	for i := len(s.History) - 1; i >= 0; i-- {
		o := s.History[i].Outcome
		out = append(out, o+":"+words[o])
	}
	return strings.Join(out, ",")
}

type dashRejection struct {
	Source  string            `json:"source"`
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
