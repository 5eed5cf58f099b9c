package wire

// RFC 3339 times for the JSON form of timestamps, written by hand so the
// guest links none of the time package's formatting and parsing tables (a
// tenth of the module). Dates are proleptic Gregorian, years 0001–9999.

// Time values are limited to the years RFC 3339 can write.
const (
	MinTime = -62135596800000 // 0001-01-01T00:00:00.000Z, Unix ms
	MaxTime = 253402300799999 // 9999-12-31T23:59:59.999Z, Unix ms
)

// daysFromCivil returns the days since 1970-01-01 of y-m-d.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if m > 12 {
		m -= 12
	}
	y = yoe + era*400
	if m <= 2 {
		y++
	}
	return y, m, d
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func appendDigits(dst []byte, v int64, width int) []byte {
	var b [20]byte
	i := len(b)
	for v > 0 || width > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		width--
	}
	return append(dst, b[i:]...)
}

// appendRFC3339 appends unixMilli as YYYY-MM-DDTHH:MM:SS.mmmZ. Times outside
// MinTime..MaxTime are clamped; validation keeps them out of sessions.
func appendRFC3339(dst []byte, unixMilli int64) []byte {
	unixMilli = max(MinTime, min(MaxTime, unixMilli))
	secs := floorDiv(unixMilli, 1000)
	ms := unixMilli - secs*1000
	days := floorDiv(secs, 86400)
	sod := secs - days*86400
	y, m, d := civilFromDays(days)
	dst = appendDigits(dst, y, 4)
	dst = appendDigits(append(dst, '-'), m, 2)
	dst = appendDigits(append(dst, '-'), d, 2)
	dst = appendDigits(append(dst, 'T'), sod/3600, 2)
	dst = appendDigits(append(dst, ':'), sod/60%60, 2)
	dst = appendDigits(append(dst, ':'), sod%60, 2)
	dst = appendDigits(append(dst, '.'), ms, 3)
	return append(dst, 'Z')
}

// parseRFC3339 parses an RFC 3339 date-time (fractional seconds beyond
// milliseconds are truncated) into Unix milliseconds.
func parseRFC3339(s string) (int64, bool) {
	num := func(i, n int) (int64, bool) {
		if i+n > len(s) {
			return 0, false
		}
		var v int64
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int64(c-'0')
		}
		return v, true
	}
	at := func(i int, c byte) bool {
		return i < len(s) && (s[i] == c || c == 'T' && s[i] == 't' || c == 'Z' && s[i] == 'z')
	}
	y, ok1 := num(0, 4)
	m, ok2 := num(5, 2)
	d, ok3 := num(8, 2)
	hh, ok4 := num(11, 2)
	mm, ok5 := num(14, 2)
	ss, ok6 := num(17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && at(4, '-') && at(7, '-') && at(10, 'T') && at(13, ':') && at(16, ':')) {
		return 0, false
	}
	if y < 1 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) || hh > 23 || mm > 59 || ss > 59 {
		return 0, false
	}
	i := 19
	var ms int64
	if at(i, '.') {
		i++
		digits := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if digits < 3 {
				ms = ms*10 + int64(s[i]-'0')
			}
			digits++
			i++
		}
		if digits == 0 {
			return 0, false
		}
		for ; digits < 3; digits++ {
			ms *= 10
		}
	}
	var offset int64
	switch {
	case at(i, 'Z') && i+1 == len(s):
	case i+6 == len(s) && (s[i] == '+' || s[i] == '-') && s[i+3] == ':':
		oh, ok1 := num(i+1, 2)
		om, ok2 := num(i+4, 2)
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, false
		}
		offset = (oh*60 + om) * 60
		if s[i] == '-' {
			offset = -offset
		}
	default:
		return 0, false
	}
	secs := daysFromCivil(y, m, d)*86400 + hh*3600 + mm*60 + ss - offset
	return secs*1000 + ms, true
}

func daysIn(y, m int64) int64 {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
