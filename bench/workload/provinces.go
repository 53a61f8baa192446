package workload

import "strings"

// pilot marks the urban-government pilots of 2021, where some councils were
// not elected (DOMAIN.md): their stations do not vote in every contest.
type pilot uint8

const (
	// noPilot: every level of council is elected.
	noPilot pilot = iota
	// noWardCouncil: wards (phường) elect no council (Hà Nội, Resolution
	// 97/2019/QH14).
	noWardCouncil
	// noUrbanCouncils: urban districts and their wards elect no council
	// (Hồ Chí Minh City, Resolution 131/2020/QH14; Đà Nẵng, Resolution
	// 119/2020/QH14).
	noUrbanCouncils
)

// province is one row of the 2021 table. Figures are approximate: the
// population of the 2019 census (thousands), the districts and communes of
// 2021, and the urban districts (quận, thị xã, thành phố thuộc tỉnh) among
// them. Only the totals matter for benchmarks.
type province struct {
	code      string
	name      string
	pop       int // thousands
	districts int
	wards     int
	urban     int
	pilot     pilot
}

// municipality reports whether the province is a centrally-run city, whose
// urban districts are quận.
func (p *province) municipality() bool { return strings.HasPrefix(p.name, "Thành phố") }

// provinces lists Vietnam's 63 provinces of 2021, the five centrally-run
// cities first (so that a small test with Provinces: 2 still meets the
// pilots).
var provinces = []province{
	{"HN", "Thành phố Hà Nội", 8054, 30, 579, 13, noWardCouncil},
	{"HCM", "Thành phố Hồ Chí Minh", 8993, 22, 312, 17, noUrbanCouncils},
	{"HP", "Thành phố Hải Phòng", 2029, 15, 217, 7, noPilot},
	{"DNG", "Thành phố Đà Nẵng", 1134, 7, 56, 6, noUrbanCouncils},
	{"CT", "Thành phố Cần Thơ", 1236, 9, 83, 5, noPilot},
	{"HG", "Tỉnh Hà Giang", 854, 11, 193, 1, noPilot},
	{"CB", "Tỉnh Cao Bằng", 530, 10, 161, 1, noPilot},
	{"BK", "Tỉnh Bắc Kạn", 314, 8, 108, 1, noPilot},
	{"TQ", "Tỉnh Tuyên Quang", 785, 7, 138, 1, noPilot},
	{"LCA", "Tỉnh Lào Cai", 731, 9, 152, 2, noPilot},
	{"DB", "Tỉnh Điện Biên", 599, 10, 129, 2, noPilot},
	{"LCH", "Tỉnh Lai Châu", 460, 8, 106, 1, noPilot},
	{"SL", "Tỉnh Sơn La", 1248, 12, 204, 1, noPilot},
	{"YB", "Tỉnh Yên Bái", 822, 9, 173, 2, noPilot},
	{"HB", "Tỉnh Hòa Bình", 854, 10, 151, 1, noPilot},
	{"TN", "Tỉnh Thái Nguyên", 1287, 9, 178, 3, noPilot},
	{"LS", "Tỉnh Lạng Sơn", 782, 11, 200, 1, noPilot},
	{"QN", "Tỉnh Quảng Ninh", 1320, 13, 177, 6, noPilot},
	{"BG", "Tỉnh Bắc Giang", 1804, 10, 209, 1, noPilot},
	{"PT", "Tỉnh Phú Thọ", 1464, 13, 225, 2, noPilot},
	{"VP", "Tỉnh Vĩnh Phúc", 1152, 9, 136, 2, noPilot},
	{"BN", "Tỉnh Bắc Ninh", 1369, 8, 126, 3, noPilot},
	{"HD", "Tỉnh Hải Dương", 1893, 12, 235, 3, noPilot},
	{"HY", "Tỉnh Hưng Yên", 1253, 10, 161, 2, noPilot},
	{"TB", "Tỉnh Thái Bình", 1861, 8, 260, 1, noPilot},
	{"HNA", "Tỉnh Hà Nam", 853, 6, 109, 2, noPilot},
	{"ND", "Tỉnh Nam Định", 1781, 10, 226, 1, noPilot},
	{"NB", "Tỉnh Ninh Bình", 983, 8, 143, 2, noPilot},
	{"TH", "Tỉnh Thanh Hóa", 3641, 27, 559, 3, noPilot},
	{"NA", "Tỉnh Nghệ An", 3328, 21, 460, 4, noPilot},
	{"HT", "Tỉnh Hà Tĩnh", 1289, 13, 216, 3, noPilot},
	{"QB", "Tỉnh Quảng Bình", 896, 8, 151, 2, noPilot},
	{"QT", "Tỉnh Quảng Trị", 633, 10, 125, 2, noPilot},
	{"TTH", "Tỉnh Thừa Thiên Huế", 1129, 9, 145, 3, noPilot},
	{"QNA", "Tỉnh Quảng Nam", 1496, 18, 241, 3, noPilot},
	{"QNG", "Tỉnh Quảng Ngãi", 1232, 13, 173, 2, noPilot},
	{"BDI", "Tỉnh Bình Định", 1487, 11, 155, 3, noPilot},
	{"PY", "Tỉnh Phú Yên", 873, 9, 110, 3, noPilot},
	{"KH", "Tỉnh Khánh Hòa", 1232, 9, 139, 3, noPilot},
	{"NT", "Tỉnh Ninh Thuận", 591, 7, 65, 1, noPilot},
	{"BTH", "Tỉnh Bình Thuận", 1231, 10, 124, 2, noPilot},
	{"KT", "Tỉnh Kon Tum", 541, 10, 102, 1, noPilot},
	{"GL", "Tỉnh Gia Lai", 1514, 17, 220, 3, noPilot},
	{"DLK", "Tỉnh Đắk Lắk", 1870, 15, 184, 2, noPilot},
	{"DNO", "Tỉnh Đắk Nông", 622, 8, 71, 1, noPilot},
	{"LD", "Tỉnh Lâm Đồng", 1297, 12, 142, 2, noPilot},
	{"BP", "Tỉnh Bình Phước", 995, 11, 111, 4, noPilot},
	{"TNI", "Tỉnh Tây Ninh", 1170, 9, 94, 3, noPilot},
	{"BDU", "Tỉnh Bình Dương", 2456, 9, 91, 5, noPilot},
	{"DNA", "Tỉnh Đồng Nai", 3097, 11, 170, 2, noPilot},
	{"BRVT", "Tỉnh Bà Rịa - Vũng Tàu", 1149, 8, 82, 3, noPilot},
	{"LA", "Tỉnh Long An", 1689, 15, 188, 2, noPilot},
	{"TG", "Tỉnh Tiền Giang", 1765, 11, 172, 3, noPilot},
	{"BTR", "Tỉnh Bến Tre", 1289, 9, 157, 1, noPilot},
	{"TV", "Tỉnh Trà Vinh", 1009, 9, 106, 2, noPilot},
	{"VL", "Tỉnh Vĩnh Long", 1023, 8, 107, 2, noPilot},
	{"DT", "Tỉnh Đồng Tháp", 1600, 12, 143, 3, noPilot},
	{"AG", "Tỉnh An Giang", 1908, 11, 156, 4, noPilot},
	{"KG", "Tỉnh Kiên Giang", 1723, 15, 144, 3, noPilot},
	{"HGI", "Tỉnh Hậu Giang", 733, 8, 75, 3, noPilot},
	{"ST", "Tỉnh Sóc Trăng", 1200, 11, 109, 3, noPilot},
	{"BL", "Tỉnh Bạc Liêu", 907, 7, 64, 2, noPilot},
	{"CM", "Tỉnh Cà Mau", 1194, 9, 101, 1, noPilot},
}
