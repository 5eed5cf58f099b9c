package wire

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The JSON form of values, contexts and sessions (docs/wire.md, "JSON"):
// text is a string, an integer a number without fraction or exponent, a float
// a number with one, booleans are booleans, a time is {"$time":"RFC 3339"}, a
// decimal is {"$decimal":"19.99"}, lists are arrays and maps objects. The
// parser is hand-written so the guest needs no reflection.

// ErrJSON is wrapped by every JSON syntax error.
var ErrJSON = errors.New("wire: bad JSON")

type jsonError struct {
	off    int
	reason string
}

func (e *jsonError) Error() string {
	return "wire: bad JSON at byte " + itoa(e.off) + ": " + e.reason
}

func (e *jsonError) Unwrap() error { return ErrJSON }

// AppendTimeJSON appends a Unix-ms time as an RFC 3339 JSON string.
func AppendTimeJSON(dst []byte, unixMilli int64) []byte {
	return append(appendRFC3339(append(dst, '"'), unixMilli), '"')
}

// AppendValueJSON appends the JSON form of v to dst.
func AppendValueJSON(dst []byte, v Value) []byte {
	switch v.Type {
	case TypeText:
		return AppendStringJSON(dst, v.Text)
	case TypeInt:
		return strconv.AppendInt(dst, v.Int, 10)
	case TypeFloat:
		if math.IsNaN(v.Float) || math.IsInf(v.Float, 0) {
			return append(dst, "null"...) // not representable; validation keeps them out
		}
		start := len(dst)
		dst = strconv.AppendFloat(dst, v.Float, 'g', -1, 64)
		for _, c := range dst[start:] {
			if c == '.' || c == 'e' || c == 'n' || c == 'N' {
				return dst
			}
		}
		return append(dst, ".0"...)
	case TypeBool:
		return strconv.AppendBool(dst, v.Int != 0)
	case TypeTime:
		return append(AppendTimeJSON(append(dst, `{"$time":`...), v.Int), '}')
	case TypeDecimal:
		dst = append(dst, `{"$decimal":"`...)
		return append(AppendDecimal(dst, v.Int, v.Exp), `"}`...)
	case TypeList:
		dst = append(dst, '[')
		for i, e := range v.List {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendValueJSON(dst, e)
		}
		return append(dst, ']')
	case TypeMap:
		return appendAttrsJSON(dst, v.Map)
	}
	return append(dst, "null"...)
}

func appendAttrsJSON(dst []byte, as Attrs) []byte {
	dst = append(dst, '{')
	for i, a := range as {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendValueJSON(append(AppendStringJSON(dst, a.Key), ':'), a.Value)
	}
	return append(dst, '}')
}

// AppendDecimal appends coef × 10^exp in plain decimal notation ("19.99").
func AppendDecimal(dst []byte, coef int64, exp int32) []byte {
	var digits [24]byte
	u := uint64(coef)
	if coef < 0 {
		dst = append(dst, '-')
		u = -u
	}
	ds := strconv.AppendUint(digits[:0], u, 10)
	if exp >= 0 {
		dst = append(dst, ds...)
		if exp > 0 { // keep the exponent, so the value comes back the same
			dst = strconv.AppendInt(append(dst, 'e'), int64(exp), 10)
		}
		return dst
	}
	frac := int(-exp)
	if len(ds) <= frac {
		dst = append(dst, '0', '.')
		for i := len(ds); i < frac; i++ {
			dst = append(dst, '0')
		}
		return append(dst, ds...)
	}
	dst = append(dst, ds[:len(ds)-frac]...)
	dst = append(dst, '.')
	return append(dst, ds[len(ds)-frac:]...)
}

// ParseDecimal parses decimal notation ("-19.99", "5", "5e3") into coef and
// exp, keeping trailing zeros ("19.90" is 1990 × 10^-2).
func ParseDecimal(s string) (coef int64, exp int32, ok bool) {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.ParseInt(s[i+1:], 10, 32)
		if err != nil || e < -MaxDecimalExp || e > MaxDecimalExp {
			return 0, 0, false
		}
		coef, exp, ok = ParseDecimal(s[:i])
		exp += int32(e)
		return coef, exp, ok && exp >= -MaxDecimalExp && exp <= MaxDecimalExp
	}
	if s == "" {
		return 0, 0, false
	}
	neg := s[0] == '-'
	if neg || s[0] == '+' {
		s = s[1:]
	}
	var u uint64
	seenDigit, seenPoint := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' && !seenPoint:
			seenPoint = true
		case c >= '0' && c <= '9':
			if u > (math.MaxInt64-9)/10 {
				return 0, 0, false
			}
			u = u*10 + uint64(c-'0')
			seenDigit = true
			if seenPoint {
				exp--
			}
		default:
			return 0, 0, false
		}
	}
	if !seenDigit || -exp > MaxDecimalExp {
		return 0, 0, false
	}
	coef = int64(u)
	if neg {
		coef = -coef
	}
	return coef, exp, true
}

// AppendStringJSON appends s as a JSON string, escaping what JSON requires
// and replacing invalid UTF-8 with U+FFFD.
func AppendStringJSON(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}

// AppendContextJSON appends the context of s (well-known fields and the
// namespaces selected by the namespaces bit set) as a JSON object.
func AppendContextJSON(dst []byte, s *Session, namespaces uint8) []byte {
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
		dst = AppendValueJSON(append(AppendStringJSON(dst, Field(f).String()), ':'), v)
	}
	for ns, as := range s.Attrs {
		if namespaces&(1<<ns) == 0 {
			continue
		}
		sep()
		dst = appendAttrsJSON(append(AppendStringJSON(dst, Namespace(ns).String()), ':'), as)
	}
	return append(dst, '}')
}

// AppendSessionJSON appends s with its metadata and the selected namespaces
// of its context as a JSON object.
func AppendSessionJSON(dst []byte, s *Session, namespaces uint8) []byte {
	dst = append(dst, `{"id":"`...)
	dst = s.ID.AppendText(dst)
	dst = append(dst, `","kind":"`...)
	dst = append(dst, s.Kind.String()...)
	dst = append(dst, `","generation":`...)
	dst = strconv.AppendUint(dst, uint64(s.Generation), 10)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendUint(dst, s.Version, 10)
	for _, t := range [...]struct {
		name string
		v    int64
	}{{"created", s.Created}, {"lastSeen", s.LastSeen}, {"idleDeadline", s.IdleDeadline}, {"hardDeadline", s.HardDeadline}} {
		if t.v != 0 {
			dst = AppendTimeJSON(append(append(append(dst, `,"`...), t.name...), `":`...), t.v)
		}
	}
	if s.Ended != 0 {
		dst = append(append(append(dst, `,"ended":"`...), s.Ended.String()...), '"')
	}
	dst = append(dst, `,"context":`...)
	dst = AppendContextJSON(dst, s, namespaces)
	return append(dst, '}')
}

// ParseValueJSON parses one JSON value that fills b. JSON null yields the
// zero Value, which callers read as "delete" in merge patches.
func ParseValueJSON(b []byte) (Value, error) {
	p := jsonParser{b: b}
	p.space()
	v, err := p.value(0)
	if err != nil {
		return Value{}, err
	}
	p.space()
	if p.off != len(p.b) {
		return Value{}, p.fail("trailing data after the value")
	}
	return v, nil
}

type jsonParser struct {
	b   []byte
	off int
}

func (p *jsonParser) fail(reason string) error { return &jsonError{off: p.off, reason: reason} }

func (p *jsonParser) space() {
	for p.off < len(p.b) {
		switch p.b[p.off] {
		case ' ', '\t', '\n', '\r':
			p.off++
		default:
			return
		}
	}
}

func (p *jsonParser) literal(word string) bool {
	if len(p.b)-p.off >= len(word) && string(p.b[p.off:p.off+len(word)]) == word {
		p.off += len(word)
		return true
	}
	return false
}

func (p *jsonParser) value(depth int) (Value, error) {
	if p.off >= len(p.b) {
		return Value{}, p.fail("unexpected end of input")
	}
	switch c := p.b[p.off]; {
	case c == '"':
		s, err := p.str()
		return Text(s), err
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case p.literal("true"):
		return Bool(true), nil
	case p.literal("false"):
		return Bool(false), nil
	case p.literal("null"):
		return Value{}, nil
	}
	return Value{}, p.fail("unexpected character")
}

func (p *jsonParser) object(depth int) (Value, error) {
	if depth >= maxNesting {
		return Value{}, p.fail("nested too deep")
	}
	p.off++ // {
	var as Attrs
	p.space()
	if p.off < len(p.b) && p.b[p.off] == '}' {
		p.off++
		return Value{Type: TypeMap}, nil
	}
	for {
		p.space()
		if p.off >= len(p.b) || p.b[p.off] != '"' {
			return Value{}, p.fail("expected an object key")
		}
		key, err := p.str()
		if err != nil {
			return Value{}, err
		}
		if _, dup := as.Get(key); dup {
			return Value{}, p.fail("duplicate key " + strconv.Quote(key))
		}
		p.space()
		if p.off >= len(p.b) || p.b[p.off] != ':' {
			return Value{}, p.fail("expected ':'")
		}
		p.off++
		p.space()
		v, err := p.value(depth + 1)
		if err != nil {
			return Value{}, err
		}
		as = as.With(key, v)
		p.space()
		if p.off >= len(p.b) {
			return Value{}, p.fail("unexpected end of input in an object")
		}
		if p.b[p.off] == ',' {
			p.off++
			continue
		}
		if p.b[p.off] == '}' {
			p.off++
			break
		}
		return Value{}, p.fail("expected ',' or '}'")
	}
	// Typed scalars travel as one-key objects.
	if len(as) == 1 && as[0].Value.Type == TypeText {
		switch as[0].Key {
		case "$time":
			ms, ok := parseRFC3339(as[0].Value.Text)
			if !ok {
				return Value{}, p.fail("$time is not an RFC 3339 time")
			}
			return Time(ms), nil
		case "$decimal":
			coef, exp, ok := ParseDecimal(as[0].Value.Text)
			if !ok {
				return Value{}, p.fail("$decimal is not a decimal number")
			}
			return Decimal(coef, exp), nil
		}
	}
	return Value{Type: TypeMap, Map: as}, nil
}

func (p *jsonParser) array(depth int) (Value, error) {
	if depth >= maxNesting {
		return Value{}, p.fail("nested too deep")
	}
	p.off++ // [
	list := []Value{}
	p.space()
	if p.off < len(p.b) && p.b[p.off] == ']' {
		p.off++
		return Value{Type: TypeList, List: list}, nil
	}
	for {
		p.space()
		v, err := p.value(depth + 1)
		if err != nil {
			return Value{}, err
		}
		list = append(list, v)
		p.space()
		if p.off >= len(p.b) {
			return Value{}, p.fail("unexpected end of input in an array")
		}
		if p.b[p.off] == ',' {
			p.off++
			continue
		}
		if p.b[p.off] == ']' {
			p.off++
			return Value{Type: TypeList, List: list}, nil
		}
		return Value{}, p.fail("expected ',' or ']'")
	}
}

func (p *jsonParser) number() (Value, error) {
	start := p.off
	isFloat := false
	if p.b[p.off] == '-' {
		p.off++
	}
	digits := func() int {
		n := 0
		for p.off < len(p.b) && p.b[p.off] >= '0' && p.b[p.off] <= '9' {
			p.off++
			n++
		}
		return n
	}
	intStart := p.off
	if digits() == 0 {
		return Value{}, p.fail("expected a digit")
	}
	if p.b[intStart] == '0' && p.off-intStart > 1 {
		return Value{}, p.fail("number has a leading zero")
	}
	if p.off < len(p.b) && p.b[p.off] == '.' {
		isFloat = true
		p.off++
		if digits() == 0 {
			return Value{}, p.fail("expected a digit after '.'")
		}
	}
	if p.off < len(p.b) && (p.b[p.off] == 'e' || p.b[p.off] == 'E') {
		isFloat = true
		p.off++
		if p.off < len(p.b) && (p.b[p.off] == '+' || p.b[p.off] == '-') {
			p.off++
		}
		if digits() == 0 {
			return Value{}, p.fail("expected a digit in the exponent")
		}
	}
	text := string(p.b[start:p.off])
	if !isFloat {
		i, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return Value{}, &jsonError{off: start, reason: "integer out of range"}
		}
		return Int(i), nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return Value{}, &jsonError{off: start, reason: "float out of range"}
	}
	return Float(f), nil
}

func (p *jsonParser) str() (string, error) {
	p.off++ // opening quote
	start := p.off
	// Fast path: no escapes.
	for p.off < len(p.b) {
		c := p.b[p.off]
		if c == '"' {
			s := p.b[start:p.off]
			p.off++
			if !utf8.Valid(s) {
				return "", &jsonError{off: start, reason: "string is not valid UTF-8"}
			}
			return string(s), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.off++
	}
	buf := append([]byte(nil), p.b[start:p.off]...)
	for p.off < len(p.b) {
		c := p.b[p.off]
		switch {
		case c == '"':
			p.off++
			if !utf8.Valid(buf) {
				return "", &jsonError{off: start, reason: "string is not valid UTF-8"}
			}
			return string(buf), nil
		case c < 0x20:
			return "", p.fail("control character in a string")
		case c != '\\':
			buf = append(buf, c)
			p.off++
			continue
		}
		p.off++
		if p.off >= len(p.b) {
			break
		}
		e := p.b[p.off]
		p.off++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.fail("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if p.literal("\\u") {
					r2, _ = p.hex4()
				}
				r = utf16.DecodeRune(r, r2)
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", p.fail("bad escape")
		}
	}
	return "", p.fail("unterminated string")
}

func (p *jsonParser) hex4() (rune, bool) {
	if len(p.b)-p.off < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.off : p.off+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	p.off += 4
	return r, true
}

// ContextOps turns a context object (the JSON or CBOR body of PUT or PATCH
// context) into ops. With replace (PUT) the ops first unset every field but
// customerId and clear every namespace; without it (PATCH) the object is a
// merge patch: null deletes a field or attribute, a namespace set to null is
// cleared. Keys and values are checked against lim; errors name the field.
func ContextOps(patch Value, replace bool, lim *Limits) ([]Op, error) {
	if patch.Type != TypeMap {
		return nil, invalid("context", "must be an object")
	}
	var ops []Op
	if replace {
		for f := Field(0); f < NumFields; f++ {
			if f != FieldCustomerID {
				ops = append(ops, Op{Code: OpSetField, Field: f})
			}
		}
		for ns := Namespace(0); ns < NumNamespaces; ns++ {
			ops = append(ops, Op{Code: OpClearNamespace, NS: ns})
		}
	}
	for _, a := range patch.Map {
		if f, ok := ParseField(a.Key); ok {
			if f == FieldCustomerID {
				return nil, invalid("customerId", "set only by login")
			}
			if !a.Value.IsZero() {
				if err := lim.ValidateField(f, a.Value); err != nil {
					return nil, err
				}
			}
			ops = append(ops, Op{Code: OpSetField, Field: f, Value: a.Value})
			continue
		}
		ns, ok := ParseNamespace(a.Key)
		if !ok {
			return nil, invalid(a.Key, "is neither a well-known field nor a namespace")
		}
		switch a.Value.Type {
		case 0:
			ops = append(ops, Op{Code: OpClearNamespace, NS: ns})
			continue
		case TypeMap:
		default:
			return nil, invalid(a.Key, "namespace must be an object")
		}
		for _, kv := range a.Value.Map {
			field := a.Key + "." + kv.Key
			if err := lim.ValidateKey(field, kv.Key); err != nil {
				return nil, err
			}
			if kv.Value.IsZero() {
				ops = append(ops, Op{Code: OpDeleteAttr, NS: ns, Key: kv.Key})
				continue
			}
			if err := lim.ValidateValue(field, kv.Value); err != nil {
				return nil, err
			}
			ops = append(ops, Op{Code: OpSetAttr, NS: ns, Key: kv.Key, Value: kv.Value})
		}
	}
	return ops, nil
}
