package wire

import (
	"errors"
	"math"
)

// Duration is a length of time as every sessionedge configuration spells
// it: the origin's file, the edge proxy's file and the filter's plugin
// configuration all read durations through this one type, so a value means
// the same everywhere.
//
// In JSON a Duration is a string in Go syntax ("500ms", "30m", "24h"), the
// string "none" (no timeout, where a timeout may be absent), or a bare
// number, which counts seconds (fractions allowed). The zero Duration means
// "use the default"; negative durations are refused.
type Duration int64

// NoTimeout is the Duration spelled "none".
const NoTimeout Duration = -1

// ErrBadDuration is wrapped by every error of ParseDuration and
// DurationFromValue.
var ErrBadDuration = errors.New(`wire: bad duration (want a string such as "90s" or "30m", "none", or a number of seconds)`)

// ParseDuration reads "none" or a Go duration string.
func ParseDuration(s string) (Duration, error) {
	if s == "none" {
		return NoTimeout, nil
	}
	d, ok := parseGoDuration(s)
	if !ok {
		return 0, wrap(ErrBadDuration, string(AppendStringJSON(nil, s)))
	}
	if d < 0 {
		return 0, wrap(ErrBadDuration, string(AppendStringJSON(nil, s))+" is negative")
	}
	return Duration(d), nil
}

// DurationFromValue reads a duration from a parsed JSON value: text as
// ParseDuration does, a number as seconds.
func DurationFromValue(v Value) (Duration, error) {
	switch v.Type {
	case TypeText:
		return ParseDuration(v.Text)
	case TypeInt:
		return secondsDuration(float64(v.Int))
	case TypeFloat:
		return secondsDuration(v.Float)
	case TypeDecimal:
		return secondsDuration(float64(v.Int) * math.Pow10(int(v.Exp)))
	}
	return 0, wrap(ErrBadDuration, "a "+v.Type.String()+" is not a duration")
}

func secondsDuration(s float64) (Duration, error) {
	if math.IsNaN(s) || s < 0 {
		return 0, wrap(ErrBadDuration, "negative number of seconds")
	}
	ns := s * 1e9
	if ns >= math.MaxInt64 {
		return 0, wrap(ErrBadDuration, "too many seconds")
	}
	return Duration(ns), nil
}

// UnmarshalJSON reads a duration string, "none", or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	v, err := ParseValueJSON(b)
	if err != nil {
		return wrap(ErrBadDuration, err.Error())
	}
	x, err := DurationFromValue(v)
	if err != nil {
		return err
	}
	*d = x
	return nil
}

// MarshalJSON writes the text form.
func (d Duration) MarshalJSON() ([]byte, error) {
	return AppendStringJSON(nil, d.String()), nil
}

// Set parses the text form; it makes a Duration a flag.Value.
func (d *Duration) Set(s string) error {
	x, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = x
	return nil
}

// String returns "none" or the Go syntax of d.
func (d Duration) String() string {
	if d == NoTimeout {
		return "none"
	}
	return string(appendGoDuration(nil, int64(d)))
}

// Milliseconds returns d as a whole number of milliseconds, truncated as
// time.Duration.Milliseconds does.
func (d Duration) Milliseconds() int64 { return int64(d) / 1e6 }

// IsNone reports whether d is "none".
func (d Duration) IsNone() bool { return d == NoTimeout }

// Or returns def when d is zero (unset), else d.
func (d Duration) Or(def Duration) Duration {
	if d == 0 {
		return def
	}
	return d
}

// Go duration syntax, written here rather than taken from package time so
// the wasm guest links no time package (its initialisation brings godebug,
// bisect and syscall along). It accepts and prints exactly what
// time.ParseDuration and time.Duration.String do; the native tests compare
// the two.

// durationUnits maps a unit to its length in nanoseconds.
func durationUnit(u string) uint64 {
	switch u {
	case "ns":
		return 1
	case "us", "\u00b5s", "\u03bcs": // "µs": the micro sign and the Greek mu
		return 1e3
	case "ms":
		return 1e6
	case "s":
		return 1e9
	case "m":
		return 60e9
	case "h":
		return 3600e9
	}
	return 0
}

// parseGoDuration parses s as time.ParseDuration does: an optional sign,
// then one or more decimal numbers, each with an optional fraction and a
// unit suffix ("300ms", "-1.5h", "2h45m").
func parseGoDuration(s string) (int64, bool) {
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "0" {
		return 0, true
	}
	if s == "" {
		return 0, false
	}
	var d uint64
	for s != "" {
		if s[0] != '.' && (s[0] < '0' || s[0] > '9') {
			return 0, false
		}
		// The integer part.
		var v uint64
		i := 0
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			if v > 1<<63/10 {
				return 0, false
			}
			v = v*10 + uint64(s[i]-'0')
			if v > 1<<63 {
				return 0, false
			}
		}
		pre := i != 0
		s = s[i:]
		// The fraction: digits past what fits are dropped.
		var f uint64
		scale := 1.0
		post := false
		if s != "" && s[0] == '.' {
			s = s[1:]
			i = 0
			overflow := false
			for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
				if overflow {
					continue
				}
				if f > (1<<63-1)/10 {
					overflow = true
					continue
				}
				y := f*10 + uint64(s[i]-'0')
				if y > 1<<63 {
					overflow = true
					continue
				}
				f = y
				scale *= 10
			}
			post = i != 0
			s = s[i:]
		}
		if !pre && !post {
			return 0, false
		}
		// The unit: everything up to the next '.' or digit.
		i = 0
		for ; i < len(s) && s[i] != '.' && (s[i] < '0' || s[i] > '9'); i++ {
		}
		if i == 0 {
			return 0, false
		}
		unit := durationUnit(s[:i])
		if unit == 0 {
			return 0, false
		}
		s = s[i:]
		if v > 1<<63/unit {
			return 0, false
		}
		v *= unit
		if f > 0 {
			v += uint64(float64(f) * (float64(unit) / scale))
			if v > 1<<63 {
				return 0, false
			}
		}
		d += v
		if d > 1<<63 {
			return 0, false
		}
	}
	if neg {
		return -int64(d), true
	}
	if d > 1<<63-1 {
		return 0, false
	}
	return int64(d), true
}

// appendGoDuration appends d as time.Duration.String spells it: "72h3m0.5s",
// "1.5ms", "0s".
func appendGoDuration(dst []byte, d int64) []byte {
	u := uint64(d)
	neg := d < 0
	if neg {
		u = -u
	}
	var buf [32]byte
	w := len(buf)
	if u < 1e9 {
		// Under a second: one unit, ns, µs or ms, with a fraction.
		var prec int
		w--
		buf[w] = 's'
		w--
		switch {
		case u == 0:
			return append(dst, "0s"...)
		case u < 1e3:
			buf[w] = 'n'
		case u < 1e6:
			prec = 3
			w-- // "µ" is two bytes
			copy(buf[w:], "\u00b5")
		default:
			prec = 6
			buf[w] = 'm'
		}
		w, u = fmtFrac(buf[:w], u, prec)
		w = fmtInt(buf[:w], u)
	} else {
		w--
		buf[w] = 's'
		w, u = fmtFrac(buf[:w], u, 9)
		w = fmtInt(buf[:w], u%60)
		u /= 60
		if u > 0 {
			w--
			buf[w] = 'm'
			w = fmtInt(buf[:w], u%60)
			u /= 60
			if u > 0 {
				w--
				buf[w] = 'h'
				w = fmtInt(buf[:w], u)
			}
		}
	}
	if neg {
		w--
		buf[w] = '-'
	}
	return append(dst, buf[w:]...)
}

// fmtFrac writes the fraction of v/10**prec at the end of buf, without
// trailing zeros (and without the point when it is zero), and returns the
// start of what it wrote and v/10**prec.
func fmtFrac(buf []byte, v uint64, prec int) (int, uint64) {
	w := len(buf)
	printed := false
	for range prec {
		digit := v % 10
		printed = printed || digit != 0
		if printed {
			w--
			buf[w] = byte(digit) + '0'
		}
		v /= 10
	}
	if printed {
		w--
		buf[w] = '.'
	}
	return w, v
}

// fmtInt writes v at the end of buf and returns where it starts.
func fmtInt(buf []byte, v uint64) int {
	w := len(buf)
	if v == 0 {
		w--
		buf[w] = '0'
		return w
	}
	for v > 0 {
		w--
		buf[w] = byte(v%10) + '0'
		v /= 10
	}
	return w
}
