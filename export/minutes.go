package export

import (
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"

	"github.com/tallyvn/tally/projections"
	"github.com/tallyvn/tally/tally"
)

// DejaVu Sans covers every Vietnamese letter; fonts/LICENSE is its licence.
var (
	//go:embed fonts/DejaVuSans.ttf
	fontRegular []byte
	//go:embed fonts/DejaVuSans-Bold.ttf
	fontBold []byte
)

// MinutesOptions are the fields of a printed minutes that the projections
// do not hold.
type MinutesOptions struct {
	// Now is the time printed in the footer (and the PDF's dates); zero
	// means the current time.
	Now time.Time
}

// vietnam is the time zone printed on the minutes (UTC+7, no summer time),
// fixed so that tally needs no time-zone database where it runs.
var vietnam = time.FixedZone("UTC+07:00", 7*3600)

const (
	pageW, marginX = 210.0, 20.0
	textW          = pageW - 2*marginX
	lineH          = 5.5
)

// Heading lines of every minutes.
const (
	nationalHeading = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
	motto           = "Độc lập - Tự do - Hạnh phúc"
	unofficialMark  = "CHƯA CHÍNH THỨC"
	unitTitle       = "BIÊN BẢN XÁC ĐỊNH KẾT QUẢ BẦU CỬ Ở ĐƠN VỊ BẦU CỬ"
	areaTitle       = "BIÊN BẢN TỔNG KẾT CUỘC BẦU CỬ"
)

// statusText is a unit status as the minutes say it.
var statusText = map[tally.UnitStatus]string{
	tally.Counting:           "Đang kiểm phiếu",
	tally.Decided:            "Đã xác định",
	tally.Tie:                "Bằng phiếu, chờ quyết định",
	tally.AdditionalElection: "Đề nghị bầu thêm",
	tally.ReElection:         "Đề nghị bầu cử lại",
}

// doc is one PDF being drawn.
type doc struct {
	pdf *fpdf.Fpdf
}

func newDoc(e *tally.Election, title string, official bool, appliedSeq uint64, now time.Time) *doc {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.AddUTF8FontFromBytes("DejaVu", "", fontRegular)
	pdf.AddUTF8FontFromBytes("DejaVu", "B", fontBold)
	pdf.SetMargins(marginX, 15, marginX)
	pdf.SetAutoPageBreak(true, 20)
	pdf.SetCreationDate(now)
	pdf.SetModificationDate(now)
	pdf.SetTitle(title, true)
	pdf.SetCreator("tally", true)
	pdf.SetHeaderFunc(func() {
		if official {
			return
		}
		// INVARIANT: every page of a document whose stations are not all
		// final says so, at its top.
		pdf.SetFont("DejaVu", "B", 9)
		pdf.SetTextColor(180, 0, 0)
		pdf.CellFormat(textW, 5, unofficialMark+" – chưa đủ biên bản kiểm phiếu cuối cùng của mọi khu vực bỏ phiếu", "", 1, "C", false, 0, "")
		pdf.SetTextColor(0, 0, 0)
		pdf.Ln(1)
	})
	pdf.SetFooterFunc(func() {
		pdf.SetY(-14)
		pdf.SetFont("DejaVu", "", 7.5)
		pdf.SetTextColor(90, 90, 90)
		left := fmt.Sprintf("%s · applied_seq %d · lập lúc %s (%s) · tally", e.ID, appliedSeq, now.In(vietnam).Format("15:04:05 02/01/2006"), vietnam.String())
		if !official {
			left = unofficialMark + " · " + left
		}
		pdf.CellFormat(textW-20, 4, left, "T", 0, "L", false, 0, "")
		pdf.CellFormat(20, 4, "Trang "+strconv.Itoa(pdf.PageNo()), "T", 0, "R", false, 0, "")
		pdf.SetTextColor(0, 0, 0)
	})
	pdf.AddPage()
	return &doc{pdf: pdf}
}

// heading draws the issuing body on the left and the national heading on
// the right.
func (d *doc) heading(bodyLines ...string) {
	p := d.pdf
	y := p.GetY()
	p.SetFont("DejaVu", "B", 9.5)
	for _, l := range bodyLines {
		p.SetX(marginX)
		p.MultiCell(68, 5, l, "", "C", false) // a unit's name can be long: wrap it
	}
	left := p.GetY()
	p.SetXY(marginX+68, y)
	p.CellFormat(textW-68, 5, nationalHeading, "", 2, "C", false, 0, "")
	p.CellFormat(textW-68, 5, motto, "", 2, "C", false, 0, "")
	if p.GetY() < left {
		p.SetY(left)
	}
	p.SetX(marginX)
	p.Ln(6)
}

func (d *doc) title(lines ...string) {
	p := d.pdf
	for i, l := range lines {
		size := 11.5
		if i > 0 {
			size = 10
		}
		style := "B"
		if i > 1 {
			style = ""
		}
		p.SetFont("DejaVu", style, size)
		p.MultiCell(textW, 6, l, "", "C", false)
	}
	p.Ln(4)
}

func (d *doc) para(style, text string) {
	d.pdf.SetFont("DejaVu", style, 10)
	d.pdf.MultiCell(textW, lineH, text, "", "L", false)
}

func (d *doc) section(text string) {
	d.pdf.Ln(2)
	d.para("B", text)
	d.pdf.Ln(1)
}

// table draws rows under a header, wrapping long cells and repeating the
// header after a page break.
type table struct {
	d      *doc
	widths []float64
	aligns []string
	header []string
}

func (t *table) drawRow(cells []string, style string) {
	p := t.d.pdf
	p.SetFont("DejaVu", style, 9)
	lines := 1
	split := make([][]string, len(cells))
	for i, c := range cells {
		split[i] = p.SplitText(c, t.widths[i]-2)
		if len(split[i]) == 0 {
			split[i] = []string{""}
		}
		lines = max(lines, len(split[i]))
	}
	h := float64(lines)*4.6 + 1.4
	_, pageH := p.GetPageSize()
	_, _, _, bottom := p.GetMargins()
	if p.GetY()+h > pageH-bottom-2 && style == "" {
		p.AddPage()
		t.drawRow(t.header, "B")
		p.SetFont("DejaVu", style, 9)
	}
	x, y := p.GetX(), p.GetY()
	for i := range cells {
		p.Rect(x, y, t.widths[i], h, "D")
		p.SetXY(x+1, y+0.7)
		for _, l := range split[i] {
			p.CellFormat(t.widths[i]-2, 4.6, l, "", 2, t.aligns[i], false, 0, "")
		}
		x += t.widths[i]
	}
	p.SetXY(marginX, y+h)
}

func (d *doc) newTable(widths []float64, aligns []string, header ...string) *table {
	t := &table{d: d, widths: widths, aligns: aligns, header: header}
	t.drawRow(header, "B")
	return t
}

// counts draws the counts of CONTRACT §4 with turnout as a percentage.
func (d *doc) counts(registered, voted, issued, received, valid, invalid int64) {
	t := d.newTable([]float64{110, textW - 110}, []string{"L", "R"}, "Chỉ tiêu", "Số lượng")
	t.drawRow([]string{"Tổng số cử tri trong danh sách cử tri", fmtInt(registered)}, "")
	t.drawRow([]string{"Số cử tri đã tham gia bỏ phiếu", fmtInt(voted)}, "")
	t.drawRow([]string{"Tỷ lệ cử tri đã tham gia bỏ phiếu so với tổng số cử tri", fmtPct(voted, registered)}, "")
	t.drawRow([]string{"Số phiếu phát ra", fmtInt(issued)}, "")
	t.drawRow([]string{"Số phiếu thu vào", fmtInt(received)}, "")
	t.drawRow([]string{"Số phiếu hợp lệ", fmtInt(valid)}, "")
	t.drawRow([]string{"Số phiếu không hợp lệ", fmtInt(invalid)}, "")
}

// signatures draws signature lines side by side.
func (d *doc) signatures(dateLine string, roles ...string) {
	p := d.pdf
	_, pageH := p.GetPageSize()
	if p.GetY()+38 > pageH-22 {
		p.AddPage()
	}
	p.Ln(3)
	p.SetFont("DejaVu", "", 9.5)
	p.CellFormat(textW, 5, dateLine, "", 1, "R", false, 0, "")
	p.Ln(2)
	w := textW / float64(len(roles))
	y := p.GetY()
	for i, r := range roles {
		p.SetXY(marginX+float64(i)*w, y)
		p.SetFont("DejaVu", "B", 9.5)
		p.CellFormat(w, 5, r, "", 2, "C", false, 0, "")
		p.SetFont("DejaVu", "", 8.5)
		p.CellFormat(w, 5, "(Ký, ghi rõ họ tên)", "", 2, "C", false, 0, "")
		p.SetXY(marginX+float64(i)*w+8, y+25)
		p.CellFormat(w-16, 5, "", "B", 0, "C", false, 0, "")
	}
	p.SetXY(marginX, y+31)
}

func (d *doc) output(w io.Writer) error {
	var buf bytes.Buffer
	if err := d.pdf.Output(&buf); err != nil {
		return fmt.Errorf("draw pdf: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write pdf: %w", err)
	}
	return nil
}

// WriteUnitMinutes writes the electoral-unit board's result-determination
// minutes (biên bản xác định kết quả bầu cử ở đơn vị bầu cử, CONTRACT §8;
// Art. 77) of unit in contest as an A4 PDF in Vietnamese: the unit, its
// seats and candidates, its round when not the first (bầu thêm, bầu cử
// lại), the counts with turnout, every candidate's votes and share of the
// valid ballots, the winners with their birth dates, the proposal for an
// additional election or a re-election where the status calls for one
// (never a second of the unit's own round), and signature lines for the board's head, deputy head and
// secretary. Every page says "chưa chính thức" until every station of the
// unit is final; the footer states the applied_seq. Unknown ids are
// reported (tally.ErrUnknownContest, tally.ErrUnknownUnit) before anything
// is written.
func WriteUnitMinutes(w io.Writer, v *projections.View, contest, unit string, opts MinutesOptions) error {
	e := v.Election()
	r, err := v.UnitResult(contest, unit)
	if err != nil {
		return err
	}
	c, _ := e.ContestIndex(contest)
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	official := r.StationsFinal >= int64(r.StationsExpected)
	d := newDoc(e, unitTitle+" – "+r.Name, official, v.AppliedSeq(), now)
	d.heading("BAN BẦU CỬ", strings.ToUpper(r.Name))
	d.title(unitTitle, e.Contests[c].Name, e.Name)

	d.para("", fmt.Sprintf("Đơn vị bầu cử: %s (mã %s).", r.Name, r.Unit))
	switch r.Round {
	case tally.Additional:
		d.para("B", "Cuộc bầu cử ở đơn vị này là cuộc bầu thêm (Điều 79): bầu cho số đại biểu còn thiếu.")
	case tally.ReVote:
		d.para("B", "Cuộc bầu cử ở đơn vị này là cuộc bầu cử lại (Điều 80).")
	}
	d.para("", fmt.Sprintf("Số đại biểu được bầu: %d. Số người ứng cử: %d.", r.Seats, len(r.Candidates)))
	d.para("", fmt.Sprintf("Khu vực bỏ phiếu: %s; đã báo cáo %s; đã có biên bản kiểm phiếu cuối cùng %s.",
		fmtInt(int64(r.StationsExpected)), fmtInt(r.StationsReporting), fmtInt(r.StationsFinal)))

	d.section("1. Kết quả kiểm phiếu")
	d.counts(r.Registered, r.Voted, r.Issued, r.Received, r.Valid, r.Invalid)

	d.section("2. Số phiếu bầu cho mỗi người ứng cử (xếp theo số phiếu)")
	t := d.newTable([]float64{12, 70, 28, 30, textW - 140}, []string{"C", "L", "C", "R", "R"},
		"STT", "Họ và tên", "Ngày sinh", "Số phiếu bầu", "Tỷ lệ so với phiếu hợp lệ")
	for k, cand := range r.Candidates {
		t.drawRow([]string{strconv.Itoa(k + 1), cand.Name, fmtDate(cand.Born), fmtInt(cand.Votes), fmtPct(cand.Votes, r.Valid)}, "")
	}

	byID := make(map[string]tally.CandidateResult, len(r.Candidates))
	for _, cand := range r.Candidates {
		byID[cand.ID] = cand
	}
	switch r.Status {
	case tally.Counting:
		d.section("3. Những người dự kiến trúng cử (tạm tính, chưa đủ biên bản kiểm phiếu)")
	default:
		d.section("3. Những người trúng cử")
	}
	if len(r.Winners) == 0 {
		d.para("", "Không có người trúng cử.")
	}
	for k, id := range r.Winners {
		cand := byID[id]
		d.para("", fmt.Sprintf("%d. %s, sinh ngày %s: %s phiếu, đạt %s số phiếu hợp lệ.", k+1, cand.Name, fmtDate(cand.Born), fmtInt(cand.Votes), fmtPct(cand.Votes, r.Valid)))
	}

	d.section("4. Kết luận")
	empty := r.Seats - len(r.Winners)
	status := r.Status
	// The round bounds the proposal: no second additional election (Art.
	// 79(3)), and a re-election stands whatever the turnout (Art. 80(3)).
	// The fold's status already follows these rules; the minutes never
	// print a proposal the law forbids, whatever they are given.
	if (r.Round == tally.Additional && status == tally.AdditionalElection) || (r.Round == tally.ReVote && status == tally.ReElection) {
		status = tally.Decided
	}
	switch status {
	case tally.Counting:
		d.para("", fmt.Sprintf("Đang kiểm phiếu: còn %s khu vực bỏ phiếu chưa có biên bản kiểm phiếu cuối cùng. Kết quả trên là tạm tính.",
			fmtInt(int64(r.StationsExpected)-r.StationsFinal)))
	case tally.Decided:
		switch {
		case empty > 0 && r.Round == tally.Additional:
			d.para("", fmt.Sprintf("Đã xác định %d người trúng cử; %d ghế còn trống để trống: không bầu thêm lần thứ hai (Điều 79).", len(r.Winners), empty))
		case empty > 0:
			d.para("", fmt.Sprintf("Đã xác định %d người trúng cử; %d ghế còn trống (số người trúng cử đạt ít nhất hai phần ba số đại biểu được bầu, không bầu thêm).", len(r.Winners), empty))
		default:
			d.para("", fmt.Sprintf("Đã xác định đủ %d người trúng cử.", len(r.Winners)))
		}
		if r.Round == tally.ReVote && r.Voted*2 <= r.Registered {
			d.para("", fmt.Sprintf("Số cử tri đã tham gia bỏ phiếu (%s) chưa quá một nửa tổng số cử tri trong danh sách, nhưng kết quả cuộc bầu cử lại vẫn có giá trị, không bầu cử lại lần nữa (Điều 80).", fmtPct(r.Voted, r.Registered)))
		}
	case tally.AdditionalElection:
		d.para("B", fmt.Sprintf("Đề nghị bầu thêm (Điều 79): mới có %d người trúng cử, còn %d ghế chưa có người trúng cử.", len(r.Winners), empty))
	case tally.ReElection:
		d.para("B", fmt.Sprintf("Đề nghị bầu cử lại (Điều 80): số cử tri đã tham gia bỏ phiếu (%s) chưa quá một nửa tổng số cử tri trong danh sách.", fmtPct(r.Voted, r.Registered)))
	case tally.Tie:
		d.para("B", "Có những người ứng cử bằng số phiếu và cùng ngày sinh ở ghế cuối cùng: đề nghị cơ quan có thẩm quyền xem xét, quyết định.")
	}

	d.signatures("Ngày ...... tháng ...... năm ............", "TRƯỞNG BAN", "PHÓ TRƯỞNG BAN", "THƯ KÝ")
	return d.output(w)
}

// WriteAreaMinutes writes the election committee's summary (biên bản tổng
// kết, CONTRACT §8) of contest in area as an A4 PDF in Vietnamese: the
// counts and progress of the area, then a table of the contest's units with
// stations in the area, with status, seats, winners and turnout; signature
// lines for the committee's chair, deputy chair and secretary. Every page
// says "chưa chính thức" until every station of the area is final; the
// footer states the applied_seq.
func WriteAreaMinutes(w io.Writer, v *projections.View, contest, area string, opts MinutesOptions) error {
	e := v.Election()
	r, err := v.AreaResult(contest, area)
	if err != nil {
		return err
	}
	c, _ := e.ContestIndex(contest)
	a, _ := e.AreaIndex(area)
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	official := r.StationsFinal >= int64(r.StationsExpected)
	d := newDoc(e, areaTitle+" – "+r.Name, official, v.AppliedSeq(), now)
	d.heading("ỦY BAN BẦU CỬ", strings.ToUpper(r.Name))
	d.title(areaTitle, e.Contests[c].Name, e.Name+" – "+r.Name)

	d.section("1. Tiến độ")
	d.para("", fmt.Sprintf("Khu vực bỏ phiếu: %s; đã báo cáo %s; đã có biên bản kiểm phiếu cuối cùng %s (%s).",
		fmtInt(int64(r.StationsExpected)), fmtInt(r.StationsReporting), fmtInt(r.StationsFinal), fmtPct(r.StationsFinal, int64(r.StationsExpected))))

	d.section("2. Kết quả kiểm phiếu")
	d.counts(r.Registered, r.Voted, r.Issued, r.Received, r.Valid, r.Invalid)

	d.section("3. Kết quả ở các đơn vị bầu cử")
	t := d.newTable([]float64{42, 30, 13, 63, textW - 148}, []string{"L", "L", "C", "L", "R"},
		"Đơn vị bầu cử", "Tình trạng", "Số ghế", "Người trúng cử", "Tỷ lệ đi bầu")
	units := e.AreaUnits(c, a)
	seats, winners := 0, 0
	for _, u := range units {
		ur, err := v.UnitResult(contest, e.Contests[c].Units[u].ID)
		if err != nil {
			return err
		}
		names := make(map[string]string, len(ur.Candidates))
		for _, cand := range ur.Candidates {
			names[cand.ID] = cand.Name
		}
		ws := make([]string, 0, len(ur.Winners))
		for _, id := range ur.Winners {
			ws = append(ws, names[id])
		}
		won := strings.Join(ws, "; ")
		if won == "" {
			won = "–"
		} else if ur.Status == tally.Counting {
			won = "(tạm tính) " + won
		}
		seats += ur.Seats
		winners += len(ur.Winners)
		t.drawRow([]string{ur.Name + " (" + ur.Unit + ")", statusText[ur.Status], strconv.Itoa(ur.Seats), won, fmtPct(ur.Voted, ur.Registered)}, "")
	}
	if len(units) == 0 {
		d.para("", "Không có đơn vị bầu cử nào của cuộc bầu cử này trong địa bàn.")
	}
	d.pdf.Ln(2)
	d.para("", fmt.Sprintf("Tổng cộng: %d đơn vị bầu cử, %d ghế, %d người trúng cử.", len(units), seats, winners))

	d.signatures("Ngày ...... tháng ...... năm ............", "CHỦ TỊCH", "PHÓ CHỦ TỊCH", "THƯ KÝ")
	return d.output(w)
}

// fmtInt writes n with dots between thousands, as Vietnamese does.
func fmtInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte('.')
		}
		b.WriteRune(ch)
	}
	return b.String()
}

// fmtPct writes part/whole as a percentage with two decimals and a decimal
// comma, rounded half up; "–" when whole is 0.
func fmtPct(part, whole int64) string {
	if whole <= 0 {
		return "–"
	}
	hundredths := (part*20000/whole + 1) / 2
	return fmt.Sprintf("%d,%02d%%", hundredths/100, hundredths%100)
}

// fmtDate writes an ISO date as dd/mm/yyyy.
func fmtDate(iso string) string {
	t, err := time.Parse(time.DateOnly, iso)
	if err != nil {
		return iso
	}
	return t.Format("02/01/2006")
}
