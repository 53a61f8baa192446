package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tallyvn/tally/server"
	"github.com/tallyvn/tally/tally"
)

// dashUnits is the units summary of an area result (CONTRACT §4 v2).
type dashUnits struct {
	Total              int64 `json:"total"`
	Counting           int64 `json:"counting"`
	Decided            int64 `json:"decided"`
	Tie                int64 `json:"tie"`
	AdditionalElection int64 `json:"additional_election"`
	ReElection         int64 `json:"re_election"`
	Seats              int64 `json:"seats"`
	Winners            int64 `json:"winners"`
}

// dashUnitsText is the sentence the area view must show for s: decided of
// total, then every other status that has units, then seats filled.
func dashUnitsText(s dashUnits) string {
	if s.Total == 0 {
		return "Không có đơn vị bầu cử nào nằm trọn trong địa bàn này."
	}
	out := fmt.Sprintf("%s/%s đơn vị đã xác định kết quả", dashNum(s.Decided), dashNum(s.Total))
	for _, x := range []struct {
		n    int64
		what string
	}{{s.Counting, "đang kiểm phiếu"}, {s.Tie, "bằng phiếu"}, {s.AdditionalElection, "bầu thêm"}, {s.ReElection, "bầu cử lại"}} {
		if x.n > 0 {
			out += fmt.Sprintf(", %s %s", dashNum(x.n), x.what)
		}
	}
	out += fmt.Sprintf(" · %s/%s đại biểu trúng cử", dashNum(s.Winners), dashNum(s.Seats))
	if s.Counting > 0 {
		out += " hoặc dự kiến trúng cử" // the API counts the provisional winners of a unit counting
	}
	return out + "."
}

// dashCheckUnits waits until the view shows the units summary of the API's
// result for area (of contest) and returns that summary. The summary must
// count something: a test of an empty one proves little.
func dashCheckUnits(t *testing.T, ctx context.Context, api, contest, area string) dashUnits {
	t.Helper()
	var res struct {
		Units *dashUnits `json:"units"`
	}
	dashGetJSON(t, api+"/api/v1/contests/"+contest+"/areas/"+area, &res)
	if res.Units == nil || res.Units.Total == 0 {
		t.Fatalf("area %s of %s: units summary %+v", area, contest, res.Units)
	}
	dashWaitText(t, ctx, `[data-testid=units-summary]`, dashUnitsText(*res.Units))
	return *res.Units
}

// TestDashboardTwoTier drives the dashboard on the two-tier example
// (examples/hanoi-2026: province, then commune): the drill-down goes from
// the province straight to a commune, each area view says the units
// summary of the API's area result, and a unit of an additional round is
// marked so on its card and its view.
func TestDashboardTwoTier(t *testing.T) {
	chromium := dashChromium(t)
	data, err := os.ReadFile("../examples/hanoi-2026/election.json")
	if err != nil {
		t.Fatal(err)
	}
	// One commune-council unit holds an additional round (bầu thêm).
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	const addUnit = "X-LB-1"
	for _, c := range doc["contests"].([]any) {
		for _, u := range c.(map[string]any)["units"].([]any) {
			if u := u.(map[string]any); u["id"] == addUnit {
				u["round"] = string(tally.Additional)
			}
		}
	}
	data, _ = json.Marshal(doc)
	e, err := tally.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../examples/hanoi-2026/minutes.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	var all [][]byte
	for _, l := range lines {
		all = append(all, []byte(l))
	}

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

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
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
	})
	ctx, cancel := context.WithTimeout(browserCtx, 60*time.Second)
	defer cancel()
	console := watchDashConsole(t, ctx)
	defer console.check(t)

	// Mid-count: half the minutes. The province's summary counts units
	// still counting.
	dashSubmit(t, srv, api, all[:len(all)/2])
	dashStep(t, ctx, "load", chromedp.Navigate(api+"/#/HDND-X"))
	dashWaitText(t, ctx, `[data-testid=title]`, "Kết quả bầu cử")
	dashGo(t, ctx, "#/HDND-X/area/HN")
	dashWaitText(t, ctx, `[data-testid=view-title]`, "Thành phố Hà Nội")
	if mid := dashCheckUnits(t, ctx, api, "HDND-X", "HN"); mid.Counting == 0 {
		t.Errorf("half the minutes leave no HDND-X unit counting: %+v", mid)
	}

	// Every minutes: province → commune, the summary at each level.
	dashSubmit(t, srv, api, all[len(all)/2:])
	full := dashCheckUnits(t, ctx, api, "HDND-X", "HN")
	if full.Counting != 0 || full.Total != int64(len(e.Contests[2].Units)) {
		t.Errorf("HDND-X in HN once every minutes is in: %+v", full)
	}
	dashWaitPanels(t, ctx)
	dashClick(t, ctx, `[data-testid=area-row][data-area="HN-LB"] a`)
	dashWaitText(t, ctx, `[data-testid=view-title]`, e.Areas[areaIndex(t, e, "HN-LB")].Name)
	dashCheckUnits(t, ctx, api, "HDND-X", "HN-LB")
	// The unit of the additional round says so, on its card and its view,
	// as its API result does.
	var add struct {
		Round string `json:"round"`
	}
	dashGetJSON(t, api+"/api/v1/contests/HDND-X/units/"+addUnit, &add)
	if add.Round != string(tally.Additional) {
		t.Fatalf("unit %s: round %q", addUnit, add.Round)
	}
	card := fmt.Sprintf(`[data-testid=unit-card][data-unit=%q]`, addUnit)
	dashWaitText(t, ctx, card+` [data-testid=unit-card-round]`, "Bầu thêm")
	dashWaitTrue(t, ctx, "one round badge", `document.querySelectorAll('[data-testid=unit-card-round]').length === 1`)
	dashClick(t, ctx, card)
	dashWaitText(t, ctx, `[data-testid=unit-round]`, "Bầu thêm")

	// A national unit seen from the province, and the city council's.
	dashGo(t, ctx, "#/QH/area/HN")
	dashCheckUnits(t, ctx, api, "QH", "HN")
	dashGo(t, ctx, "#/HDND-HN/area/HN")
	dashCheckUnits(t, ctx, api, "HDND-HN", "HN")
}

func areaIndex(t *testing.T, e *tally.Election, id string) int {
	t.Helper()
	for i := range e.Areas {
		if e.Areas[i].ID == id {
			return i
		}
	}
	t.Fatalf("no area %s", id)
	return -1
}
