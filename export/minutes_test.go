package export_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pdfPages extracts the text of a PDF with pdftotext (poppler-utils), one
// string per page, whitespace runs folded to one space.
func pdfPages(t *testing.T, pdf []byte) []string {
	t.Helper()
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Fatal("pdftotext not found: install poppler-utils (.ci/run does)")
	}
	if !strings.HasPrefix(string(pdf), "%PDF-") {
		t.Fatalf("not a PDF: %q", pdf[:min(len(pdf), 40)])
	}
	path := filepath.Join(t.TempDir(), "m.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-enc", "UTF-8", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	pages := strings.Split(strings.TrimRight(string(out), "\f"), "\f")
	for i, p := range pages {
		pages[i] = strings.Join(strings.Fields(p), " ")
	}
	return pages
}

// thousands writes n the Vietnamese way, 1.234.567 (the test's own code,
// not the package's).
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "." + s[i:]
	}
	return s
}

// percent writes part/whole with two decimals and a decimal comma.
func percent(part, whole int64) string {
	return strings.Replace(fmt.Sprintf("%.2f%%", 100*float64(part)/float64(whole)), ".", ",", 1)
}

func requireText(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s: text lacks %q\ntext: %s", what, w, text)
		}
	}
}

// TestUnitMinutesPDF: the unit board's minutes of every unit, read back
// with pdftotext, carry the Vietnamese headings with their diacritics,
// every candidate's name, votes and share, every count and the turnout, the
// winners with their birth dates, the signature lines and the applied_seq;
// "CHƯA CHÍNH THỨC" is on every page while a station of the unit is not
// final, and nowhere once all are.
func TestUnitMinutesPDF(t *testing.T) {
	ts := startServer(t)
	for _, to := range []int{len(ts.lines) / 3, len(ts.lines)} {
		ts.submit(ts.submitted(), to)
		counting := 0
		for _, c := range ts.e.Contests {
			for _, u := range c.Units {
				pdf := ts.ok("/api/v1/contests/"+c.ID+"/units/"+u.ID+"/minutes.pdf", "application/pdf")
				r := ts.unit(c.ID, u.ID)
				pages := pdfPages(t, pdf)
				text := strings.Join(pages, " ")
				what := fmt.Sprintf("unit %s after %d minutes", u.ID, to)
				requireText(t, what, text,
					"CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc",
					"BIÊN BẢN XÁC ĐỊNH KẾT QUẢ BẦU CỬ Ở ĐƠN VỊ BẦU CỬ", c.Name, ts.e.Name, r.Name,
					fmt.Sprintf("Số đại biểu được bầu: %d. Số người ứng cử: %d.", r.Seats, len(r.Candidates)),
					"Tổng số cử tri trong danh sách cử tri "+thousands(r.Registered),
					"Số cử tri đã tham gia bỏ phiếu "+thousands(r.Voted),
					"so với tổng số cử tri "+percent(r.Voted, r.Registered),
					"Số phiếu phát ra "+thousands(r.Issued),
					"Số phiếu thu vào "+thousands(r.Received),
					"Số phiếu hợp lệ "+thousands(r.Valid),
					"Số phiếu không hợp lệ "+thousands(r.Invalid),
					"TRƯỞNG BAN", "PHÓ TRƯỞNG BAN", "THƯ KÝ",
					fmt.Sprintf("applied_seq %d", r.AppliedSeq))
				for k, cand := range r.Candidates {
					born, _ := time.Parse(time.DateOnly, cand.Born)
					requireText(t, what, text, fmt.Sprintf("%d %s %s %s %s", k+1, cand.Name, born.Format("02/01/2006"), thousands(cand.Votes), percent(cand.Votes, r.Valid)))
				}
				for _, id := range r.Winners {
					for _, cand := range r.Candidates {
						if cand.ID == id {
							born, _ := time.Parse(time.DateOnly, cand.Born)
							requireText(t, what, text, cand.Name+", sinh ngày "+born.Format("02/01/2006"))
						}
					}
				}
				switch r.Status {
				case "additional_election":
					requireText(t, what, text, "Đề nghị bầu thêm")
				case "re_election":
					requireText(t, what, text, "Đề nghị bầu cử lại")
				case "counting":
					counting++
					requireText(t, what, text, "Những người dự kiến trúng cử (tạm tính")
				}
				for i, p := range pages {
					if final := r.StationsFinal == r.StationsExpected; strings.Contains(p, "CHƯA CHÍNH THỨC") == final {
						t.Errorf("%s page %d: \"CHƯA CHÍNH THỨC\" shown %v, stations final %d of %d", what, i+1, !final, r.StationsFinal, r.StationsExpected)
					}
				}
			}
		}
		if to < len(ts.lines) && counting == 0 {
			t.Fatalf("after %d minutes no unit is counting: the unofficial mark is not tested", to)
		}
	}
}

// TestAreaMinutesPDF: the committee's summary of every area and contest,
// read back with pdftotext, carries the headings, the area's counts and
// progress, and one row per unit of the contest in the area with its
// status, seats, winners and turnout.
func TestAreaMinutesPDF(t *testing.T) {
	ts := startServer(t)
	ts.submit(0, len(ts.lines)/2)
	status := map[string]string{"counting": "Đang kiểm phiếu", "decided": "Đã xác định", "tie": "Bằng phiếu, chờ quyết định",
		"additional_election": "Đề nghị bầu thêm", "re_election": "Đề nghị bầu cử lại"}
	for _, c := range ts.e.Contests {
		for _, a := range []string{"HN", "LB", "LB-BD", "LB-NT"} {
			pdf := ts.ok("/api/v1/contests/"+c.ID+"/areas/"+a+"/minutes.pdf", "application/pdf")
			r := ts.area(c.ID, a)
			pages := pdfPages(t, pdf)
			text := strings.Join(pages, " ")
			what := "area " + a + " contest " + c.ID
			requireText(t, what, text, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc",
				"ỦY BAN BẦU CỬ", "BIÊN BẢN TỔNG KẾT CUỘC BẦU CỬ", c.Name, r.Name,
				fmt.Sprintf("Khu vực bỏ phiếu: %s; đã báo cáo %s; đã có biên bản kiểm phiếu cuối cùng %s", thousands(r.StationsExpected), thousands(r.StationsReporting), thousands(r.StationsFinal)),
				"Tổng số cử tri trong danh sách cử tri "+thousands(r.Registered),
				"Số cử tri đã tham gia bỏ phiếu "+thousands(r.Voted),
				"Số phiếu hợp lệ "+thousands(r.Valid),
				"Số phiếu không hợp lệ "+thousands(r.Invalid),
				"CHỦ TỊCH", "PHÓ CHỦ TỊCH", "THƯ KÝ", fmt.Sprintf("applied_seq %d", r.AppliedSeq))
			units, seats := 0, 0
			for _, u := range c.Units {
				ur := ts.unit(c.ID, u.ID)
				if !strings.Contains(text, "("+u.ID+")") {
					continue // not in the area
				}
				units++
				seats += ur.Seats
				requireText(t, what, text, "("+u.ID+") "+status[ur.Status]+" "+strconv.Itoa(ur.Seats), percent(ur.Voted, ur.Registered))
			}
			if r.StationsExpected > 0 && units == 0 {
				t.Errorf("%s: no unit row", what)
			}
			requireText(t, what, text, fmt.Sprintf("Tổng cộng: %d đơn vị bầu cử, %d ghế", units, seats))
			for i, p := range pages {
				if !strings.Contains(p, "CHƯA CHÍNH THỨC") && r.StationsFinal < r.StationsExpected {
					t.Errorf("%s page %d: no \"CHƯA CHÍNH THỨC\" with %d of %d stations final", what, i+1, r.StationsFinal, r.StationsExpected)
				}
			}
		}
	}
}

// proposalElection has two National Assembly units of one station each:
// in U-LOW fewer than half of the voters vote (a re-election), in U-SHORT
// only one of two seats finds a candidate above half of the valid ballots
// (an additional election).
const proposalElection = `{
  "id": "e-2021", "name": "Bầu cử thử", "date": "2021-05-23",
  "areas": [
    {"id": "P", "name": "Tỉnh Thử", "level": "province"},
    {"id": "D", "name": "Huyện Thử", "level": "district", "parent": "P"},
    {"id": "W", "name": "Xã Thử", "level": "ward", "parent": "D"}
  ],
  "stations": [
    {"id": "S1", "name": "Khu vực bỏ phiếu số 1", "ward": "W", "registered": 1000},
    {"id": "S2", "name": "Khu vực bỏ phiếu số 2", "ward": "W", "registered": 1000}
  ],
  "contests": [{"id": "QH", "name": "Đại biểu Quốc hội", "level": "national", "units": [
    {"id": "U-LOW", "name": "Đơn vị bầu cử số 1", "seats": 2, "areas": [], "stations": ["S1"], "candidates": [
      {"id": "L1", "name": "Ứng Viên Một", "born": "1970-01-01"}, {"id": "L2", "name": "Ứng Viên Hai", "born": "1971-01-01"},
      {"id": "L3", "name": "Ứng Viên Ba", "born": "1972-01-01"}, {"id": "L4", "name": "Ứng Viên Bốn", "born": "1973-01-01"}]},
    {"id": "U-SHORT", "name": "Đơn vị bầu cử số 2", "seats": 2, "areas": [], "stations": ["S2"], "candidates": [
      {"id": "H1", "name": "Ứng Viên Năm", "born": "1970-01-01"}, {"id": "H2", "name": "Ứng Viên Sáu", "born": "1971-01-01"},
      {"id": "H3", "name": "Ứng Viên Bảy", "born": "1972-01-01"}, {"id": "H4", "name": "Ứng Viên Tám", "born": "1973-01-01"}]}
  ]}]
}`

const proposalMinutes = `{"election":"e-2021","contest":"QH","station":"S1","version":1,"status":"final","registered":1000,"voted":480,"issued":480,"received":480,"valid":470,"invalid":10,"votes":{"L1":400,"L2":300,"L3":100,"L4":50}}
{"election":"e-2021","contest":"QH","station":"S2","version":1,"status":"final","registered":1000,"voted":900,"issued":900,"received":900,"valid":880,"invalid":20,"votes":{"H1":700,"H2":400,"H3":380,"H4":280}}
`

// TestMinutesProposals: a unit whose status is re_election or
// additional_election has the board's proposal in its minutes, with the
// figures that call for it.
func TestMinutesProposals(t *testing.T) {
	ts := startServerWith(t, []byte(proposalElection), []byte(proposalMinutes))
	ts.submit(0, len(ts.lines))
	for _, tc := range []struct {
		unit, status string
		want         []string
	}{
		{"U-LOW", "re_election", []string{"Đề nghị bầu cử lại (Điều 80)", "(48,00%) chưa quá một nửa", "Không có người trúng cử."}},
		{"U-SHORT", "additional_election", []string{"Đề nghị bầu thêm (Điều 79): mới có 1 người trúng cử, còn 1 ghế", "Ứng Viên Năm, sinh ngày 01/01/1970: 700 phiếu, đạt 79,55%"}},
	} {
		if r := ts.unit("QH", tc.unit); r.Status != tc.status {
			t.Fatalf("unit %s: status %q, want %q: the fixture is wrong", tc.unit, r.Status, tc.status)
		}
		text := strings.Join(pdfPages(t, ts.ok("/api/v1/contests/QH/units/"+tc.unit+"/minutes.pdf", "application/pdf")), " ")
		requireText(t, "unit "+tc.unit, text, tc.want...)
		if strings.Contains(text, "CHƯA CHÍNH THỨC") {
			t.Errorf("unit %s: every station is final, yet the minutes say unofficial", tc.unit)
		}
	}
}

// TestMinutesFollowRound: the minutes of a unit not in its first round say
// which round it is, and the proposal follows the round: the same counts
// that call for a re-election and an additional election in a first round
// (TestMinutesProposals) propose neither in a re-election and an
// additional round (Art. 80(3), Art. 79(3)).
func TestMinutesFollowRound(t *testing.T) {
	raw := strings.Replace(proposalElection, `{"id": "U-LOW", "name": "Đơn vị bầu cử số 1", "seats": 2,`,
		`{"id": "U-LOW", "name": "Đơn vị bầu cử số 1", "seats": 2, "round": "re_election",`, 1)
	raw = strings.Replace(raw, `{"id": "U-SHORT", "name": "Đơn vị bầu cử số 2", "seats": 2,`,
		`{"id": "U-SHORT", "name": "Đơn vị bầu cử số 2", "seats": 2, "round": "additional",`, 1)
	if strings.Count(raw, `"round"`) != 2 {
		t.Fatal("the fixture lost its rounds")
	}
	ts := startServerWith(t, []byte(raw), []byte(proposalMinutes))
	ts.submit(0, len(ts.lines))
	for _, tc := range []struct {
		unit       string
		want, none []string
	}{
		{"U-LOW", []string{"cuộc bầu cử lại (Điều 80)", "Đã xác định đủ 2 người trúng cử.", "(48,00%) chưa quá một nửa",
			"kết quả cuộc bầu cử lại vẫn có giá trị"}, []string{"Đề nghị bầu cử lại", "Đề nghị bầu thêm", "bầu thêm"}},
		{"U-SHORT", []string{"cuộc bầu thêm (Điều 79)", "Đã xác định 1 người trúng cử; 1 ghế còn trống để trống: không bầu thêm lần thứ hai (Điều 79)."},
			[]string{"Đề nghị bầu thêm", "Đề nghị bầu cử lại", "bầu cử lại", "hai phần ba"}},
	} {
		if r := ts.unit("QH", tc.unit); r.Status != "decided" {
			t.Fatalf("unit %s: status %q, want decided: the fold does not follow the round", tc.unit, r.Status)
		}
		text := strings.Join(pdfPages(t, ts.ok("/api/v1/contests/QH/units/"+tc.unit+"/minutes.pdf", "application/pdf")), " ")
		requireText(t, "unit "+tc.unit, text, tc.want...)
		for _, no := range tc.none {
			if strings.Contains(text, no) {
				t.Errorf("unit %s: the minutes say %q\ntext: %s", tc.unit, no, text)
			}
		}
	}
}
