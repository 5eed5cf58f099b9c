// Package ctxjson is the JSON form of sessions, context values and context
// patches of docs/api.md. It is private to the origin until sdk/wire carries
// the shared JSON codec (wire.AppendSessionJSON and friends); the shapes are
// the ones /work/contracts.md fixes, so switching is a local change.
package ctxjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// ErrSyntax reports a body that is not JSON of the expected shape.
var ErrSyntax = errors.New("ctxjson: malformed JSON")

func invalid(field, reason string) error {
	return &wire.FieldError{Field: field, Reason: reason, Err: wire.ErrInvalid}
}

// AppendTime appends a Unix-ms instant as an RFC 3339 string (UTC, ms).
func AppendTime(dst []byte, ms int64) []byte {
	dst = append(dst, '"')
	dst = time.UnixMilli(ms).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	return append(dst, '"')
}

// AppendString appends s as a JSON string.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, `\u00`...)
				dst = append(dst, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			dst = append(dst, `\u202`...)
			dst = append(dst, "0123456789abcdef"[r&0xf])
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}

// FormatDecimal returns coef × 10^exp in plain decimal notation.
func FormatDecimal(coef int64, exp int32) string {
	neg := coef < 0
	digits := strconv.FormatUint(absU(coef), 10)
	var s string
	switch {
	case exp >= 0:
		s = digits + strings.Repeat("0", int(exp))
		if coef == 0 {
			s = "0"
		}
	case int(-exp) < len(digits):
		p := len(digits) + int(exp)
		s = digits[:p] + "." + digits[p:]
	default:
		s = "0." + strings.Repeat("0", int(-exp)-len(digits)) + digits
	}
	if neg {
		s = "-" + s
	}
	return s
}

func absU(i int64) uint64 {
	if i < 0 {
		return uint64(-(i + 1)) + 1
	}
	return uint64(i)
}

// ParseDecimal parses [-]digits[.digits] into coefficient and exponent.
func ParseDecimal(s string) (int64, int32, bool) {
	if s == "" {
		return 0, 0, false
	}
	t := s
	if t[0] == '-' || t[0] == '+' {
		t = t[1:]
	}
	intPart, frac, hasDot := strings.Cut(t, ".")
	if intPart == "" && frac == "" || hasDot && frac == "" {
		return 0, 0, false
	}
	digits := intPart + frac
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, 0, false
		}
	}
	coef, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || len(frac) > wire.MaxDecimalExp {
		return 0, 0, false
	}
	if s[0] == '-' {
		coef = -coef
	}
	return coef, -int32(len(frac)), true
}

// AppendValue appends the JSON form of v.
func AppendValue(dst []byte, v wire.Value) []byte {
	switch v.Type {
	case wire.TypeText:
		return AppendString(dst, v.Text)
	case wire.TypeInt:
		return strconv.AppendInt(dst, v.Int, 10)
	case wire.TypeFloat:
		start := len(dst)
		dst = strconv.AppendFloat(dst, v.Float, 'g', -1, 64)
		if !bytes.ContainsAny(dst[start:], ".eE") {
			dst = append(dst, ".0"...)
		}
		return dst
	case wire.TypeBool:
		return strconv.AppendBool(dst, v.BoolValue())
	case wire.TypeTime:
		return append(AppendTime(append(dst, `{"$time":`...), v.Int), '}')
	case wire.TypeDecimal:
		dst = append(dst, `{"$decimal":"`...)
		return append(append(dst, FormatDecimal(v.Int, v.Exp)...), `"}`...)
	case wire.TypeList:
		dst = append(dst, '[')
		for i, e := range v.List {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendValue(dst, e)
		}
		return append(dst, ']')
	case wire.TypeMap:
		return appendAttrs(dst, v.Map)
	}
	return append(dst, "null"...)
}

func appendAttrs(dst []byte, as wire.Attrs) []byte {
	dst = append(dst, '{')
	for i, a := range as {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendValue(append(AppendString(dst, a.Key), ':'), a.Value)
	}
	return append(dst, '}')
}

// AppendContext appends the context of s: well-known fields, then the
// non-empty namespaces.
func AppendContext(dst []byte, s *wire.Session) []byte {
	dst = append(dst, '{')
	first := true
	sep := func() {
		if !first {
			dst = append(dst, ',')
		}
		first = false
	}
	for f, v := range s.Fields {
		if v.IsZero() {
			continue
		}
		sep()
		dst = AppendValue(append(AppendString(dst, wire.Field(f).String()), ':'), v)
	}
	for ns, as := range s.Attrs {
		if len(as) == 0 {
			continue
		}
		sep()
		dst = appendAttrs(append(AppendString(dst, wire.Namespace(ns).String()), ':'), as)
	}
	return append(dst, '}')
}

// AppendSession appends the session JSON of docs/api.md.
func AppendSession(dst []byte, s *wire.Session) []byte {
	dst = append(dst, `{"id":"`...)
	dst = s.ID.AppendText(dst)
	dst = append(dst, `","kind":"`...)
	dst = append(dst, s.Kind.String()...)
	dst = append(dst, `","generation":`...)
	dst = strconv.AppendUint(dst, uint64(s.Generation), 10)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendUint(dst, s.Version, 10)
	for _, t := range []struct {
		name string
		ms   int64
	}{{"created", s.Created}, {"lastSeen", s.LastSeen}, {"idleDeadline", s.IdleDeadline}, {"hardDeadline", s.HardDeadline}} {
		if t.ms != 0 {
			dst = AppendTime(append(append(append(dst, ",\""...), t.name...), "\":"...), t.ms)
		}
	}
	if s.Ended != 0 {
		dst = append(append(append(dst, `,"ended":"`...), s.Ended.String()...), '"')
	}
	dst = append(dst, `,"context":`...)
	dst = AppendContext(dst, s)
	return append(dst, '}')
}

// ParseValue converts a decoded JSON value (encoding/json with UseNumber)
// into a context value; field names it in errors.
func ParseValue(field string, x any) (wire.Value, error) {
	switch x := x.(type) {
	case string:
		return wire.Text(x), nil
	case bool:
		return wire.Bool(x), nil
	case json.Number:
		s := string(x)
		if strings.ContainsAny(s, ".eE") {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsInf(f, 0) {
				return wire.Value{}, invalid(field, "number out of range")
			}
			return wire.Float(f), nil
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return wire.Value{}, invalid(field, "integer out of range")
		}
		return wire.Int(i), nil
	case []any:
		vs := make([]wire.Value, len(x))
		for i, e := range x {
			v, err := ParseValue(field+"["+strconv.Itoa(i)+"]", e)
			if err != nil {
				return wire.Value{}, err
			}
			vs[i] = v
		}
		return wire.List(vs...), nil
	case map[string]any:
		if len(x) == 1 {
			if t, ok := x["$time"]; ok {
				ts, _ := t.(string)
				tm, err := time.Parse(time.RFC3339Nano, ts)
				if err != nil {
					return wire.Value{}, invalid(field, "$time must be an RFC 3339 string")
				}
				return wire.Time(tm.UnixMilli()), nil
			}
			if d, ok := x["$decimal"]; ok {
				ds, _ := d.(string)
				coef, exp, ok := ParseDecimal(ds)
				if !ok {
					return wire.Value{}, invalid(field, "$decimal must be a decimal string such as \"19.99\"")
				}
				return wire.Decimal(coef, exp), nil
			}
		}
		var m wire.Attrs
		for k, e := range x {
			v, err := ParseValue(field+"."+k, e)
			if err != nil {
				return wire.Value{}, err
			}
			m = m.With(k, v)
		}
		return wire.Value{Type: wire.TypeMap, Map: m}, nil
	case nil:
		return wire.Value{}, invalid(field, "null is not a value here")
	}
	return wire.Value{}, invalid(field, "unsupported JSON value")
}

// Decode decodes a JSON body into a generic tree with numbers kept exact.
func Decode(body []byte, into any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: data after the JSON value", ErrSyntax)
	}
	return nil
}

// ContextOps turns a context object into ops. With replace false it is a
// merge patch: null deletes an attribute, a namespace set to null is cleared
// and a namespace object merges key by key. With replace true the namespaces
// are cleared first and the object gives the whole new context.
func ContextOps(obj map[string]any, replace bool) ([]wire.Op, error) {
	var ops []wire.Op
	if replace {
		for ns := wire.Namespace(0); ns < wire.NumNamespaces; ns++ {
			ops = append(ops, wire.Op{Code: wire.OpClearNamespace, NS: ns})
		}
	}
	for _, name := range sortedKeys(obj) {
		x := obj[name]
		if f, ok := wire.ParseField(name); ok {
			if f == wire.FieldCustomerID {
				return nil, invalid(name, "set only by login")
			}
			if x == nil {
				// wire has no op that unsets a well-known field yet.
				return nil, invalid(name, "a well-known field cannot be unset")
			}
			v, err := ParseValue(name, x)
			if err != nil {
				return nil, err
			}
			ops = append(ops, wire.Op{Code: wire.OpSetField, Field: f, Value: v})
			continue
		}
		ns, ok := wire.ParseNamespace(name)
		if !ok {
			return nil, invalid(name, "not a well-known field or namespace")
		}
		if x == nil {
			if !replace {
				ops = append(ops, wire.Op{Code: wire.OpClearNamespace, NS: ns})
			}
			continue
		}
		m, ok := x.(map[string]any)
		if !ok {
			return nil, invalid(name, "a namespace must be an object")
		}
		for _, k := range sortedKeys(m) {
			field := name + "." + k
			if m[k] == nil {
				if !replace {
					ops = append(ops, wire.Op{Code: wire.OpDeleteAttr, NS: ns, Key: k})
				}
				continue
			}
			v, err := ParseValue(field, m[k])
			if err != nil {
				return nil, err
			}
			ops = append(ops, wire.Op{Code: wire.OpSetAttr, NS: ns, Key: k, Value: v})
		}
	}
	return ops, nil
}

// sortedKeys gives ops a deterministic order, so equal requests make equal
// deltas.
func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ks[j] < ks[j-1]; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
	return ks
}
