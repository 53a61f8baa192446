package workload

import (
	"strings"
	"time"
)

// fictional ends every candidate name, as in examples/: the names are made
// up and must not be taken for real people.
const fictional = " (hư cấu)"

// Name parts for fictional candidates; surnames weighted roughly by how
// common they are.
var (
	surnames = []struct {
		name   string
		weight int
	}{
		{"Nguyễn", 38}, {"Trần", 11}, {"Lê", 9}, {"Phạm", 7}, {"Hoàng", 5}, {"Huỳnh", 4},
		{"Phan", 4}, {"Vũ", 4}, {"Võ", 3}, {"Đặng", 2}, {"Bùi", 2}, {"Đỗ", 2}, {"Hồ", 2},
		{"Ngô", 2}, {"Dương", 1}, {"Lý", 1}, {"Đào", 1}, {"Đinh", 1}, {"Trịnh", 1},
		{"Lương", 1}, {"Tạ", 1}, {"Cao", 1}, {"Hà", 1}, {"Mai", 1}, {"Lò", 1}, {"Sùng", 1},
	}
	surnameTotal = func() int {
		n := 0
		for _, s := range surnames {
			n += s.weight
		}
		return n
	}()
	maleMiddle   = []string{"Văn", "Đức", "Minh", "Quang", "Hữu", "Mạnh", "Xuân", "Tiến", "Công", "Thanh"}
	femaleMiddle = []string{"Thị", "Thu", "Thanh", "Ngọc", "Minh", "Thị Thu", "Phương", "Hồng", "Thị Kim", "Mỹ"}
	maleGiven    = []string{"Hùng", "Dũng", "Tuấn", "Hải", "Long", "Nam", "Sơn", "Thắng", "Cường", "Phong", "Trung", "Khánh", "Hiếu", "Quân", "Bình", "Việt", "Hoàng", "Tùng", "Thành", "Đạt", "Lâm", "Phúc", "Tâm", "Vinh"}
	femaleGiven  = []string{"Lan", "Hương", "Mai", "Hà", "Hạnh", "Nga", "Thảo", "Trang", "Linh", "Yến", "Phương", "Dung", "Hằng", "Thủy", "Vân", "Huyền", "Ngân", "Oanh", "Loan", "Nhung", "Hoa", "Liên", "Chi", "Tuyết"}

	// placeSyllables make up district and ward names ("Xã Tân Phú").
	placeSyllables = []string{
		"An", "Bình", "Hòa", "Phú", "Tân", "Long", "Thạnh", "Hưng", "Đông", "Tây", "Nam", "Bắc",
		"Phước", "Thuận", "Lộc", "Thành", "Mỹ", "Trung", "Xuân", "Vĩnh", "Quang", "Phong", "Sơn",
		"Hải", "Hà", "Yên", "Định", "Khánh", "Hiệp", "Lợi", "Thịnh", "Cường", "Đức", "Minh",
		"Thái", "Hồng", "Kim", "Ngọc", "Thượng", "Hạ", "Cẩm", "Liên", "Hợp", "Tiến", "Đồng",
		"Lâm", "Giang", "Châu", "Hiển", "Quỳnh", "Nghĩa", "Tường", "Văn", "Đại", "Phụng",
	}
)

// personName returns a fictional Vietnamese name.
func personName(r *stream) string {
	k := r.IntN(surnameTotal)
	sur := surnames[0].name
	for _, s := range surnames {
		if k < s.weight {
			sur = s.name
			break
		}
		k -= s.weight
	}
	var b strings.Builder
	b.Grow(40)
	b.WriteString(sur)
	b.WriteByte(' ')
	if r.IntN(2) == 0 {
		b.WriteString(maleMiddle[r.IntN(len(maleMiddle))])
		b.WriteByte(' ')
		b.WriteString(maleGiven[r.IntN(len(maleGiven))])
	} else {
		b.WriteString(femaleMiddle[r.IntN(len(femaleMiddle))])
		b.WriteByte(' ')
		b.WriteString(femaleGiven[r.IntN(len(femaleGiven))])
	}
	b.WriteString(fictional)
	return b.String()
}

// Candidates were born between 1951 and 1996: 25 to 70 years old on
// election day.
var (
	bornFirst = time.Date(1951, 1, 1, 0, 0, 0, 0, time.UTC)
	bornDays  = int(time.Date(1996, 5, 23, 0, 0, 0, 0, time.UTC).Sub(bornFirst).Hours() / 24)
)

func birthDate(r *stream) string {
	return bornFirst.AddDate(0, 0, r.IntN(bornDays)).Format(time.DateOnly)
}

// placeName returns a two-syllable place name.
func placeName(r *stream) string {
	a := placeSyllables[r.IntN(len(placeSyllables))]
	b := placeSyllables[r.IntN(len(placeSyllables))]
	for b == a {
		b = placeSyllables[r.IntN(len(placeSyllables))]
	}
	return a + " " + b
}
