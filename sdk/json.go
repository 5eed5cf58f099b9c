package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// This file holds the JSON forms of the API (contracts: context JSON shape):
// text → string, int → integer number, float → number with '.' or 'e', bool,
// time → {"$time":"RFC 3339"}, decimal → {"$decimal":"19.99"}, list → array,
// map → object.

// appendValueJSON appends the JSON form of v to dst.
func appendValueJSON(dst []byte, v wire.Value) ([]byte, error) {
	switch v.Type {
	case wire.TypeText:
		return appendJSONString(dst, v.Text), nil
	case wire.TypeInt:
		return strconv.AppendInt(dst, v.Int, 10), nil
	case wire.TypeFloat:
		if math.IsNaN(v.Float) || math.IsInf(v.Float, 0) {
			return dst, fmt.Errorf("%w: float %v has no JSON form", ErrInvalidInput, v.Float)
		}
		start := len(dst)
		dst = strconv.AppendFloat(dst, v.Float, 'g', -1, 64)
		// A float must stay a float on the way back, so it always carries '.' or 'e'.
		if !bytes.ContainsAny(dst[start:], ".eE") {
			dst = append(dst, ".0"...)
		}
		return dst, nil
	case wire.TypeBool:
		return strconv.AppendBool(dst, v.BoolValue()), nil
	case wire.TypeTime:
		dst = append(dst, `{"$time":`...)
		dst = appendJSONString(dst, time.UnixMilli(v.Int).UTC().Format(time.RFC3339Nano))
		return append(dst, '}'), nil
	case wire.TypeDecimal:
		dst = append(dst, `{"$decimal":"`...)
		dst = append(dst, FormatDecimal(v)...)
		return append(dst, `"}`...), nil
	case wire.TypeList:
		dst = append(dst, '[')
		for i, e := range v.List {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendValueJSON(dst, e); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case wire.TypeMap:
		dst = append(dst, '{')
		for i, a := range v.Map {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(appendJSONString(dst, a.Key), ':')
			var err error
			if dst, err = appendValueJSON(dst, a.Value); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	}
	return dst, fmt.Errorf("%w: value of type %d", ErrInvalidInput, v.Type)
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // cannot fail for a string
	return append(dst, b...)
}

// FormatDecimal returns the text form of a decimal value: Decimal(1999, -2)
// is "19.99", Decimal(5, 2) is "500".
func FormatDecimal(v wire.Value) string {
	digits := strconv.FormatInt(v.Int, 10)
	neg := strings.HasPrefix(digits, "-")
	digits = strings.TrimPrefix(digits, "-")
	switch {
	case v.Exp > 0:
		digits += strings.Repeat("0", int(v.Exp))
	case v.Exp < 0:
		n := int(-v.Exp)
		if len(digits) <= n {
			digits = strings.Repeat("0", n-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-n] + "." + digits[len(digits)-n:]
	}
	if neg {
		return "-" + digits
	}
	return digits
}

// ParseDecimal parses a decimal such as "19.99", "-0.5" or "1e3" into an exact
// decimal value.
func ParseDecimal(s string) (wire.Value, error) {
	mant, exp := s, int64(0)
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.ParseInt(s[i+1:], 10, 32)
		if err != nil {
			return wire.Value{}, fmt.Errorf("decimal %q: bad exponent", s)
		}
		mant, exp = s[:i], e
	}
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		frac := mant[i+1:]
		if strings.ContainsAny(frac, "+-.") {
			return wire.Value{}, fmt.Errorf("decimal %q: malformed", s)
		}
		exp -= int64(len(frac))
		mant = mant[:i] + frac
	}
	coef, err := strconv.ParseInt(mant, 10, 64)
	if err != nil || mant == "" || mant[len(mant)-1] < '0' || mant[len(mant)-1] > '9' {
		return wire.Value{}, fmt.Errorf("decimal %q: malformed", s)
	}
	if exp < math.MinInt32 || exp > math.MaxInt32 {
		return wire.Value{}, fmt.Errorf("decimal %q: exponent out of range", s)
	}
	return wire.Decimal(coef, int32(exp)), nil
}

// parseValueJSON turns a value decoded with json.Decoder.UseNumber into a
// wire.Value.
func parseValueJSON(x any) (wire.Value, error) {
	switch x := x.(type) {
	case string:
		return wire.Text(x), nil
	case bool:
		return wire.Bool(x), nil
	case json.Number:
		s := string(x)
		if strings.ContainsAny(s, ".eE") {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return wire.Value{}, fmt.Errorf("number %s: %v", s, err)
			}
			return wire.Float(f), nil
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return wire.Value{}, fmt.Errorf("number %s does not fit int64", s)
		}
		return wire.Int(i), nil
	case []any:
		vs := make([]wire.Value, len(x))
		for i, e := range x {
			v, err := parseValueJSON(e)
			if err != nil {
				return wire.Value{}, err
			}
			vs[i] = v
		}
		return wire.List(vs...), nil
	case map[string]any:
		if len(x) == 1 {
			if t, ok := x["$time"].(string); ok {
				tm, err := time.Parse(time.RFC3339Nano, t)
				if err != nil {
					return wire.Value{}, fmt.Errorf("$time %q: %v", t, err)
				}
				return wire.Time(tm.UnixMilli()), nil
			}
			if d, ok := x["$decimal"].(string); ok {
				return ParseDecimal(d)
			}
		}
		var m wire.Attrs
		for k, e := range x {
			v, err := parseValueJSON(e)
			if err != nil {
				return wire.Value{}, err
			}
			m = m.With(k, v)
		}
		return wire.Value{Type: wire.TypeMap, Map: m}, nil
	case nil:
		return wire.Value{}, nil
	}
	return wire.Value{}, fmt.Errorf("unexpected JSON %T", x)
}

// Context is the context of a session: the well-known fields and the
// attributes of each namespace. The zero Value of a field means unset.
type Context struct {
	Fields [wire.NumFields]wire.Value
	Attrs  [wire.NumNamespaces]wire.Attrs
}

// Text returns the text of a well-known field, or "" when it is unset.
func (c *Context) Text(f wire.Field) string { return c.Fields[f].Text }

// Attr returns the attribute key of namespace ns.
func (c *Context) Attr(ns wire.Namespace, key string) (wire.Value, bool) { return c.Attrs[ns].Get(key) }

// appendContextJSON appends c as a context JSON object.
func appendContextJSON(dst []byte, c *Context) ([]byte, error) {
	dst = append(dst, '{')
	n := 0
	sep := func() {
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
	}
	var err error
	for f, v := range c.Fields {
		if v.IsZero() {
			continue
		}
		sep()
		dst = append(appendJSONString(dst, wire.Field(f).String()), ':')
		if dst, err = appendValueJSON(dst, v); err != nil {
			return dst, fmt.Errorf("%s: %w", wire.Field(f), err)
		}
	}
	for ns, as := range c.Attrs {
		if len(as) == 0 {
			continue
		}
		sep()
		dst = append(appendJSONString(dst, wire.Namespace(ns).String()), ':')
		if dst, err = appendValueJSON(dst, wire.Value{Type: wire.TypeMap, Map: as}); err != nil {
			return dst, fmt.Errorf("%s: %w", wire.Namespace(ns), err)
		}
	}
	return append(dst, '}'), nil
}

// parseContextJSON parses a context JSON object. Unknown top-level keys are
// ignored, so an origin that adds fields does not break older SDKs.
func parseContextJSON(raw json.RawMessage) (Context, error) {
	var c Context
	if len(raw) == 0 || string(raw) == "null" {
		return c, nil
	}
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return c, fmt.Errorf("context: %v", err)
	}
	for k, x := range obj {
		if f, ok := wire.ParseField(k); ok {
			v, err := parseValueJSON(x)
			if err != nil {
				return c, fmt.Errorf("context %s: %v", k, err)
			}
			c.Fields[f] = v
			continue
		}
		if ns, ok := wire.ParseNamespace(k); ok {
			v, err := parseValueJSON(x)
			if err != nil {
				return c, fmt.Errorf("context %s: %v", k, err)
			}
			if v.Type != wire.TypeMap && !v.IsZero() {
				return c, fmt.Errorf("context %s: not an object", k)
			}
			c.Attrs[ns] = v.Map
		}
	}
	return c, nil
}

// Session is a session as the origin holds it.
type Session struct {
	ID           string
	Kind         wire.Kind
	Generation   uint32    // raised by login, logout and forced re-keys
	Version      uint64    // +1 for every change; pass it to IfMatch
	Created      time.Time //
	LastSeen     time.Time //
	IdleDeadline time.Time // zero: none
	HardDeadline time.Time // zero: none
	Ended        string    // for a tombstone (an ended session): why it ended; "" while live
	Context
}

// CustomerID returns the customer of a logged-in session, or "".
func (s *Session) CustomerID() string { return s.Fields[wire.FieldCustomerID].Text }

type sessionJSON struct {
	ID           string          `json:"id"`
	Kind         string          `json:"kind"`
	Generation   uint32          `json:"generation"`
	Version      uint64          `json:"version"`
	Created      string          `json:"created"`
	LastSeen     string          `json:"lastSeen"`
	IdleDeadline string          `json:"idleDeadline"`
	HardDeadline string          `json:"hardDeadline"`
	Ended        json.RawMessage `json:"ended"`
	Context      json.RawMessage `json:"context"`
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

func (j *sessionJSON) session() (*Session, error) {
	s := &Session{ID: j.ID, Generation: j.Generation, Version: j.Version}
	if j.Kind != "" {
		k, ok := wire.ParseKind(j.Kind)
		if !ok {
			return nil, fmt.Errorf("session kind %q", j.Kind)
		}
		s.Kind = k
	}
	var err error
	for _, t := range []struct {
		dst *time.Time
		src string
	}{{&s.Created, j.Created}, {&s.LastSeen, j.LastSeen}, {&s.IdleDeadline, j.IdleDeadline}, {&s.HardDeadline, j.HardDeadline}} {
		if *t.dst, err = parseTime(t.src); err != nil {
			return nil, fmt.Errorf("session time: %v", err)
		}
	}
	if len(j.Ended) > 0 && string(j.Ended) != "null" && string(j.Ended) != "false" {
		var reason string
		if json.Unmarshal(j.Ended, &reason) != nil {
			reason = string(j.Ended) // a number or bool: keep its text rather than fail
		}
		s.Ended = reason
	}
	if s.Context, err = parseContextJSON(j.Context); err != nil {
		return nil, err
	}
	return s, nil
}
