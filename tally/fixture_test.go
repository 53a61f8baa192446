package tally_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tallyvn/tally/tally"
)

// hanoiElection is a small election in Hà Nội: the province, the district
// Long Biên with five wards (Cự Khối has no polling station) and the
// district Gia Lâm with one commune-level town, seven stations, and three
// contests:
//
//   - QH (national): QH-HN-02 covers Long Biên, QH-HN-05 covers Gia Lâm;
//   - HDND-HN (province council): TP-07 covers Bồ Đề and Ngọc Thụy, TP-08
//     covers Việt Hưng plus the station LB-PL-01, TP-09 covers Trâu Quỳ;
//   - HDND-LB (district council): Q-01 covers Bồ Đề plus LB-NT-01, Q-02
//     covers Việt Hưng plus LB-NT-02 and LB-PL-01, so the ward Ngọc Thụy
//     spans both units; GL-TQ-01 does not vote in it.
const hanoiElection = `{
  "id": "hn-2021",
  "name": "Bầu cử đại biểu Quốc hội khóa XV và đại biểu HĐND các cấp nhiệm kỳ 2021-2026",
  "date": "2021-05-23",
  "areas": [
    {"id": "HN", "name": "Thành phố Hà Nội", "level": "province"},
    {"id": "LB", "name": "Quận Long Biên", "level": "district", "parent": "HN"},
    {"id": "LB-BD", "name": "Phường Bồ Đề", "level": "ward", "parent": "LB"},
    {"id": "LB-NT", "name": "Phường Ngọc Thụy", "level": "ward", "parent": "LB"},
    {"id": "LB-PL", "name": "Phường Phúc Lợi", "level": "ward", "parent": "LB"},
    {"id": "LB-VH", "name": "Phường Việt Hưng", "level": "ward", "parent": "LB"},
    {"id": "LB-CK", "name": "Phường Cự Khối", "level": "ward", "parent": "LB"},
    {"id": "GL", "name": "Huyện Gia Lâm", "level": "district", "parent": "HN"},
    {"id": "GL-TQ", "name": "Thị trấn Trâu Quỳ", "level": "ward", "parent": "GL"}
  ],
  "stations": [
    {"id": "LB-BD-01", "name": "Khu vực bỏ phiếu số 1 phường Bồ Đề", "ward": "LB-BD", "registered": 1850},
    {"id": "LB-BD-02", "name": "Khu vực bỏ phiếu số 2 phường Bồ Đề", "ward": "LB-BD", "registered": 1620},
    {"id": "LB-NT-01", "name": "Khu vực bỏ phiếu số 1 phường Ngọc Thụy", "ward": "LB-NT", "registered": 2944},
    {"id": "LB-NT-02", "name": "Khu vực bỏ phiếu số 2 phường Ngọc Thụy", "ward": "LB-NT", "registered": 92},
    {"id": "LB-PL-01", "name": "Khu vực bỏ phiếu số 1 phường Phúc Lợi", "ward": "LB-PL", "registered": 2337},
    {"id": "LB-VH-01", "name": "Khu vực bỏ phiếu số 1 phường Việt Hưng", "ward": "LB-VH", "registered": 1500},
    {"id": "GL-TQ-01", "name": "Khu vực bỏ phiếu số 1 thị trấn Trâu Quỳ", "ward": "GL-TQ", "registered": 1400}
  ],
  "contests": [
    {
      "id": "QH", "name": "Đại biểu Quốc hội khóa XV", "level": "national",
      "units": [
        {
          "id": "QH-HN-02", "name": "Đơn vị bầu cử số 2", "seats": 3,
          "areas": ["LB"], "stations": [],
          "candidates": [
            {"id": "QH-HN-02-1", "name": "Nguyễn Văn An", "born": "1968-04-12"},
            {"id": "QH-HN-02-2", "name": "Trần Thị Bích Ngọc", "born": "1975-09-30"},
            {"id": "QH-HN-02-3", "name": "Lê Hoàng Đức", "born": "1960-01-15"},
            {"id": "QH-HN-02-4", "name": "Phạm Thị Thu Hương", "born": "1982-11-02"},
            {"id": "QH-HN-02-5", "name": "Đỗ Quang Vinh", "born": "1971-06-21"}
          ]
        },
        {
          "id": "QH-HN-05", "name": "Đơn vị bầu cử số 5", "seats": 2,
          "areas": ["GL"], "stations": [],
          "candidates": [
            {"id": "QH-HN-05-1", "name": "Vũ Thị Lan", "born": "1970-03-08"},
            {"id": "QH-HN-05-2", "name": "Hoàng Minh Tuấn", "born": "1965-12-19"},
            {"id": "QH-HN-05-3", "name": "Bùi Thị Hằng", "born": "1979-07-07"},
            {"id": "QH-HN-05-4", "name": "Đặng Văn Khôi", "born": "1958-02-28"}
          ]
        }
      ]
    },
    {
      "id": "HDND-HN", "name": "Đại biểu HĐND thành phố Hà Nội", "level": "province",
      "units": [
        {
          "id": "TP-07", "name": "Đơn vị bầu cử số 7", "seats": 2,
          "areas": ["LB-BD", "LB-NT"], "stations": [],
          "candidates": [
            {"id": "TP-07-1", "name": "Ngô Thị Thanh Hà", "born": "1977-05-19"},
            {"id": "TP-07-2", "name": "Dương Văn Quý", "born": "1969-10-10"},
            {"id": "TP-07-3", "name": "Lý Thị Nguyệt", "born": "1985-01-01"},
            {"id": "TP-07-4", "name": "Trịnh Đình Dũng", "born": "1962-08-30"}
          ]
        },
        {
          "id": "TP-08", "name": "Đơn vị bầu cử số 8", "seats": 3,
          "areas": ["LB-VH"], "stations": ["LB-PL-01"],
          "candidates": [
            {"id": "TP-08-1", "name": "Phan Thị Mỹ Linh", "born": "1980-02-14"},
            {"id": "TP-08-2", "name": "Hồ Sĩ Thắng", "born": "1966-06-06"},
            {"id": "TP-08-3", "name": "Tạ Thị Ánh", "born": "1973-03-03"},
            {"id": "TP-08-4", "name": "Võ Đức Huy", "born": "1959-09-09"},
            {"id": "TP-08-5", "name": "Đinh Thị Yến", "born": "1988-12-12"}
          ]
        },
        {
          "id": "TP-09", "name": "Đơn vị bầu cử số 9", "seats": 1,
          "areas": ["GL-TQ"], "stations": [],
          "candidates": [
            {"id": "TP-09-1", "name": "Lương Văn Mạnh", "born": "1970-07-27"},
            {"id": "TP-09-2", "name": "Kiều Thị Phương", "born": "1976-04-30"}
          ]
        }
      ]
    },
    {
      "id": "HDND-LB", "name": "Đại biểu HĐND quận Long Biên", "level": "district",
      "units": [
        {
          "id": "Q-01", "name": "Đơn vị bầu cử số 1 quận Long Biên", "seats": 2,
          "areas": ["LB-BD"], "stations": ["LB-NT-01"],
          "candidates": [
            {"id": "Q-01-1", "name": "Nguyễn Thị Huệ", "born": "1972-02-02"},
            {"id": "Q-01-2", "name": "Chu Văn Đạt", "born": "1968-11-11"},
            {"id": "Q-01-3", "name": "Mai Thị Thủy", "born": "1981-03-15"}
          ]
        },
        {
          "id": "Q-02", "name": "Đơn vị bầu cử số 2 quận Long Biên", "seats": 3,
          "areas": ["LB-VH"], "stations": ["LB-NT-02", "LB-PL-01"],
          "candidates": [
            {"id": "Q-02-1", "name": "Đoàn Văn Hải", "born": "1964-05-05"},
            {"id": "Q-02-2", "name": "Tô Thị Ngân", "born": "1979-08-18"},
            {"id": "Q-02-3", "name": "Lã Quốc Việt", "born": "1983-10-20"},
            {"id": "Q-02-4", "name": "Quách Thị Xuân", "born": "1970-01-31"},
            {"id": "Q-02-5", "name": "Khúc Đăng Khoa", "born": "1961-12-24"}
          ]
        }
      ]
    }
  ]
}`

// mustParse parses src and fails the test if it is not a valid election.
func mustParse(t testing.TB, src string) *tally.Election {
	t.Helper()
	e, err := tally.Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if e == nil {
		t.Fatal("Parse returned a nil election and no error")
	}
	return e
}

// parseProblems parses src, which must be refused with an *ElectionError,
// and returns its problems.
func parseProblems(t *testing.T, src string) []string {
	t.Helper()
	e, err := tally.Parse([]byte(src))
	if err == nil {
		t.Fatalf("Parse accepted an invalid election file")
	}
	if e != nil {
		t.Errorf("Parse returned an election along with error %v", err)
	}
	var ee *tally.ElectionError
	if !errors.As(err, &ee) {
		t.Fatalf("Parse error %T %v is not an *tally.ElectionError", err, err)
	}
	if len(ee.Problems) == 0 {
		t.Fatalf("ElectionError lists no problem")
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("(%d problems)", len(ee.Problems))) {
		t.Errorf("Error() = %q does not give the problem count %d", msg, len(ee.Problems))
	}
	for _, p := range ee.Problems {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("Error() does not list problem %q", p)
		}
	}
	return ee.Problems
}

// edit applies replacements to src: oldNew holds pairs (old, new), and each
// old must occur in src exactly once.
func edit(t *testing.T, src string, oldNew ...string) string {
	t.Helper()
	if len(oldNew)%2 != 0 {
		t.Fatalf("edit: odd number of arguments")
	}
	for i := 0; i < len(oldNew); i += 2 {
		old, repl := oldNew[i], oldNew[i+1]
		if n := strings.Count(src, old); n != 1 {
			t.Fatalf("edit: %q occurs %d times in the fixture, want exactly once", old, n)
		}
		src = strings.Replace(src, old, repl, 1)
	}
	return src
}

// wantProblems checks that problems holds exactly one problem per group of
// want, each problem containing every string of its group.
func wantProblems(t *testing.T, problems []string, want [][]string) {
	t.Helper()
	if len(problems) != len(want) {
		t.Errorf("got %d problems, want %d:\n  %s", len(problems), len(want), strings.Join(problems, "\n  "))
	}
	used := make([]bool, len(problems))
	for _, group := range want {
		found := false
		for i, p := range problems {
			if used[i] || !containsAll(p, group) {
				continue
			}
			used[i], found = true, true
			break
		}
		if !found {
			t.Errorf("no problem mentions all of %q; problems:\n  %s", group, strings.Join(problems, "\n  "))
		}
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// idx looks up indexes by id and fails the test on an unknown id.
type idx struct {
	t *testing.T
	e *tally.Election
}

func (x idx) area(id string) int {
	x.t.Helper()
	i, ok := x.e.AreaIndex(id)
	if !ok {
		x.t.Fatalf("AreaIndex(%q): unknown", id)
	}
	return i
}

func (x idx) station(id string) int {
	x.t.Helper()
	i, ok := x.e.StationIndex(id)
	if !ok {
		x.t.Fatalf("StationIndex(%q): unknown", id)
	}
	return i
}

func (x idx) contest(id string) int {
	x.t.Helper()
	i, ok := x.e.ContestIndex(id)
	if !ok {
		x.t.Fatalf("ContestIndex(%q): unknown", id)
	}
	return i
}

func (x idx) unit(id string) (contest, unit int) {
	x.t.Helper()
	c, u, ok := x.e.UnitIndex(id)
	if !ok {
		x.t.Fatalf("UnitIndex(%q): unknown", id)
	}
	return c, u
}

// unitID names unit u of contest c, "-" for -1.
func unitID(e *tally.Election, c, u int) string {
	if u < 0 {
		return "-"
	}
	return e.Contests[c].Units[u].ID
}
