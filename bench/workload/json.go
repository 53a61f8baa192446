package workload

import (
	"bufio"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/tallyvn/tally/tally"
)

// WriteJSON writes f as an election file (CONTRACT §2), one area, station
// or unit a line. It streams: memory stays small whatever the size of f
// (a full-scale file is tens of megabytes).
func (f *ElectionFile) WriteJSON(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	var b []byte
	flush := func() error {
		_, err := bw.Write(b)
		b = b[:0]
		return err
	}
	b = append(b, `{"id":`...)
	b = appendString(b, f.ID)
	b = append(b, `,"name":`...)
	b = appendString(b, f.Name)
	b = append(b, `,"date":`...)
	b = appendString(b, f.Date)
	if len(f.Levels) > 0 {
		b = append(b, `,"levels":[`...)
		for i, l := range f.Levels {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, string(l))
		}
		b = append(b, ']')
	}
	b = append(b, ",\n\"areas\":["...)
	for i := range f.Areas {
		a := &f.Areas[i]
		b = appendSep(b, i)
		b = append(b, `{"id":`...)
		b = appendString(b, a.ID)
		b = append(b, `,"name":`...)
		b = appendString(b, a.Name)
		b = append(b, `,"level":`...)
		b = appendString(b, string(a.Level))
		if a.Parent != "" {
			b = append(b, `,"parent":`...)
			b = appendString(b, a.Parent)
		}
		b = append(b, '}')
		if len(b) > 64<<10 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	b = append(b, "],\n\"stations\":["...)
	for i := range f.Stations {
		s := &f.Stations[i]
		b = appendSep(b, i)
		b = append(b, `{"id":`...)
		b = appendString(b, s.ID)
		b = append(b, `,"name":`...)
		b = appendString(b, s.Name)
		if s.Area != "" {
			b = append(b, `,"area":`...)
			b = appendString(b, s.Area)
		} else {
			b = append(b, `,"ward":`...)
			b = appendString(b, s.Ward)
		}
		b = append(b, `,"registered":`...)
		b = strconv.AppendInt(b, s.Registered, 10)
		if s.Seal != "" {
			b = append(b, `,"seal":`...)
			b = appendString(b, s.Seal)
		}
		b = append(b, '}')
		if len(b) > 64<<10 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	b = append(b, "],\n\"contests\":["...)
	for i := range f.Contests {
		c := &f.Contests[i]
		b = appendSep(b, i)
		b = append(b, `{"id":`...)
		b = appendString(b, c.ID)
		b = append(b, `,"name":`...)
		b = appendString(b, c.Name)
		b = append(b, `,"level":`...)
		b = appendString(b, string(c.Level))
		b = append(b, `,"units":[`...)
		for j := range c.Units {
			b = appendSep(b, j)
			b = appendUnit(b, &c.Units[j])
			if len(b) > 64<<10 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		b = append(b, "]}"...)
	}
	b = append(b, "]}\n"...)
	if err := flush(); err != nil {
		return err
	}
	return bw.Flush()
}

// sizeHint guesses the length of f's JSON, to size a buffer.
func (f *ElectionFile) sizeHint() int {
	n := 100*len(f.Areas) + 110*len(f.Stations)
	for _, c := range f.Contests {
		for _, u := range c.Units {
			n += 120 + 30*(len(u.Areas)+len(u.Stations)) + 90*len(u.Candidates)
		}
	}
	return n
}

func appendUnit(b []byte, u *tally.Unit) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, u.ID)
	b = append(b, `,"name":`...)
	b = appendString(b, u.Name)
	if u.Council != "" {
		b = append(b, `,"council":`...)
		b = appendString(b, u.Council)
	}
	b = append(b, `,"seats":`...)
	b = strconv.AppendInt(b, int64(u.Seats), 10)
	if u.Round != "" {
		b = append(b, `,"round":`...)
		b = appendString(b, string(u.Round))
	}
	if u.StationsOutside != 0 {
		b = append(b, `,"stations_outside":`...)
		b = strconv.AppendInt(b, int64(u.StationsOutside), 10)
	}
	b = append(b, `,"areas":[`...)
	for i, a := range u.Areas {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, a)
	}
	b = append(b, `],"stations":[`...)
	for i, s := range u.Stations {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	b = append(b, `],"candidates":[`...)
	for i := range u.Candidates {
		c := &u.Candidates[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendString(b, c.ID)
		b = append(b, `,"name":`...)
		b = appendString(b, c.Name)
		b = append(b, `,"born":`...)
		b = appendString(b, c.Born)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// appendSep starts element i of an array on its own line.
func appendSep(b []byte, i int) []byte {
	if i > 0 {
		b = append(b, ',')
	}
	return append(b, '\n')
}

// appendString appends s as a JSON string. UTF-8 is written as is, so
// Vietnamese names stay readable; quotes, backslashes and control
// characters are escaped, and invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
