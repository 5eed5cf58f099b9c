package wire

import (
	"errors"
	"math"
	"strconv"
	"time"
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
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, wrap(ErrBadDuration, strconv.Quote(s))
	}
	if d < 0 {
		return 0, wrap(ErrBadDuration, strconv.Quote(s)+" is negative")
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
	ns := s * float64(time.Second)
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
	return time.Duration(d).String()
}

// IsNone reports whether d is "none".
func (d Duration) IsNone() bool { return d == NoTimeout }

// Or returns def when d is zero (unset), else d.
func (d Duration) Or(def Duration) Duration {
	if d == 0 {
		return def
	}
	return d
}

// Std returns d as a time.Duration; "none" and unset are 0.
func (d Duration) Std() time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(d)
}
