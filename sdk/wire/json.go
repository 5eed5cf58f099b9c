package wire

import (
	"errors"
	"math"
	"slices"
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
	}{{"created", s.Created}, {"lastSeen", s.LastSeen}, {"modified", s.Modified}, {"idleDeadline", s.IdleDeadline}, {"hardDeadline", s.HardDeadline}} {
		if t.v != 0 {
			dst = AppendTimeJSON(append(append(append(dst, `,"`...), t.name...), `":`...), t.v)
		}
	}
	for _, t := range [...]struct {
		name string
		ms   int64
	}{{"idleTimeout", s.IdleTimeout}, {"hardTimeout", s.HardTimeout}} {
		if t.ms != 0 {
			dst = append(append(append(dst, `,"`...), t.name...), `":`...)
			dst = AppendStringJSON(dst, Duration(t.ms*1e6).String())
		}
	}
	for _, d := range [...]struct {
		name string
		dev  Device
	}{{"firstDevice", s.FirstDevice}, {"device", s.Device}} {
		if !d.dev.IsZero() {
			dst = append(append(append(dst, `,"`...), d.name...), `":{"userAgent":`...)
			dst = AppendStringJSON(dst, d.dev.UserAgent)
			dst = AppendStringJSON(append(dst, `,"addr":`...), d.dev.Addr)
			dst = append(AppendStringJSON(append(dst, `,"site":`...), d.dev.Site), '}')
		}
	}
	if s.Ended != 0 {
		dst = append(append(append(dst, `,"ended":"`...), s.Ended.String()...), '"')
	}
	dst = append(dst, `,"context":`...)
	dst = AppendContextJSON(dst, s, namespaces)
	return append(dst, '}')
}

// ParseValueJSON parses one JSON value that fills b, holding it only to the
// structural bounds (nesting at most 16 deep); it is for trusted documents
// such as configuration. Input from clients goes through
// ParseValueJSONLimits. JSON null yields the zero Value, which callers read
// as "delete" in merge patches.
func ParseValueJSON(b []byte) (Value, error) { return ParseValueJSONLimits(b, nil) }

// ParseValueJSONLimits parses one JSON value that fills b and refuses it as
// soon as it passes a limit of lim: a map with more than MaxAttrs keys, a
// list with more than MaxListLen items, a text longer than MaxTextLen
// characters, a key longer than MaxKeyLen, nesting deeper than MaxDepth +
// MaxEnvelopeDepth. A nil lim applies only the structural bounds. Zero fields
// of lim mean their defaults.
//
// Every error is a *FieldError that names the path of the offending value
// from the document's root ("custom.name", "context.custom.list[3]"), or
// "body" when the document is malformed at its root, and wraps ErrJSON.
// Decoding takes time linear in len(b) (objects: n log n in their keys).
func ParseValueJSONLimits(b []byte, lim *Limits) (Value, error) {
	p := jsonParser{b: b}
	sc := jsonScratch.get()
	p.attrs, p.items, p.order = sc.attrs, sc.items, sc.order
	defer func() {
		if cap(p.attrs) <= maxPooledScratch && cap(p.items) <= maxPooledScratch && cap(p.order) <= maxPooledScratch {
			sc.attrs, sc.items, sc.order = p.attrs[:0], p.items[:0], p.order[:0]
			jsonScratch.put(sc)
		}
	}()
	p.setLimits(lim)
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

// jsonStacks are the member and item stacks of a parse, kept for the next
// one so that a large object is not collected through a growing slice each
// time; stacks grown past maxPooledScratch entries are left to the collector.
type jsonStacks struct {
	attrs []Attr
	items []Value
	order []int32
}

const maxPooledScratch = 4096

var jsonScratch pool[jsonStacks]

type jsonParser struct {
	b   []byte
	off int

	// The limits in force; unlimited when parsing without Limits.
	maxDepth, maxKeys, maxList, maxText, maxKey int

	path  []pathSeg // to the value being parsed
	attrs []Attr    // members of the objects being parsed, innermost last
	items []Value   // items of the arrays being parsed, innermost last
	order []int32   // the sort order of one object's members
}

const unlimited = int(^uint(0) >> 1)

func (p *jsonParser) setLimits(lim *Limits) {
	if lim == nil {
		p.maxDepth = maxNesting
		p.maxKeys, p.maxList, p.maxText, p.maxKey = unlimited, unlimited, unlimited, unlimited
		return
	}
	l := lim.WithDefaults()
	p.maxDepth = min(l.MaxDepth, maxNesting) + MaxEnvelopeDepth
	p.maxKeys, p.maxList, p.maxText, p.maxKey = l.MaxAttrs, l.MaxListLen, l.MaxTextLen, l.MaxKeyLen
}

func (p *jsonParser) where() string { return fieldName("body", p.path) }

func (p *jsonParser) fail(reason string) error {
	return &FieldError{Field: p.where(), Reason: reason, Err: ErrInvalid, syntax: ErrJSON}
}

func (p *jsonParser) tooLarge(reason string) error {
	return &FieldError{Field: p.where(), Reason: reason, Err: ErrTooLarge, syntax: ErrJSON}
}

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

// value parses the value at the current path; depth counts the lists and
// maps around it.
func (p *jsonParser) value(depth int) (Value, error) {
	if p.off >= len(p.b) {
		return Value{}, p.fail("unexpected end of input")
	}
	switch c := p.b[p.off]; {
	case c == '"':
		s, err := p.str(false)
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

// cmpKeys orders keys in the deterministic order of Attrs.
func cmpKeys(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// cmpAttrs orders attributes by key in the deterministic order of Attrs.
func cmpAttrs(a, b Attr) int { return cmpKeys(a.Key, b.Key) }

// object parses an object. Members are collected on the parser's stack and
// sorted once at the end (most input arrives sorted already: then the sort is
// skipped), so an object of n keys costs O(n log n), never a copy per key.
func (p *jsonParser) object(depth int) (Value, error) {
	if depth >= p.maxDepth {
		return Value{}, p.fail("nested deeper than " + itoa(p.maxDepth))
	}
	p.off++ // {
	p.space()
	if p.off < len(p.b) && p.b[p.off] == '}' {
		p.off++
		return Value{Type: TypeMap}, nil
	}
	mark := len(p.attrs)
	defer func() {
		clear(p.attrs[mark:]) // no references kept past the parse
		p.attrs = p.attrs[:mark]
	}()
	sorted := true
	for {
		p.space()
		if p.off >= len(p.b) || p.b[p.off] != '"' {
			return Value{}, p.fail("expected an object key")
		}
		if len(p.attrs)-mark >= p.maxKeys {
			return Value{}, p.tooLarge("map holds more than " + itoa(p.maxKeys) + " keys")
		}
		key, err := p.str(true)
		if err != nil {
			return Value{}, err
		}
		p.space()
		if p.off >= len(p.b) || p.b[p.off] != ':' {
			return Value{}, p.fail("expected ':'")
		}
		p.off++
		p.space()
		p.path = append(p.path, pathSeg{key: key, index: -1})
		v, err := p.value(depth + 1)
		if err != nil {
			return Value{}, err
		}
		p.path = p.path[:len(p.path)-1]
		if n := len(p.attrs); n > mark && sorted && !keyLess(p.attrs[n-1].Key, key) {
			sorted = false
		}
		if len(p.attrs) == cap(p.attrs) { // double: a big object is copied O(1) times per key
			p.attrs = slices.Grow(p.attrs, len(p.attrs)+8)
		}
		p.attrs = append(p.attrs, Attr{Key: key, Value: v})
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
	members := p.attrs[mark:]
	// Typed scalars travel as one-key objects.
	if len(members) == 1 && members[0].Value.Type == TypeText {
		switch members[0].Key {
		case "$time":
			ms, ok := parseRFC3339(members[0].Value.Text)
			if !ok {
				return Value{}, p.fail("$time is not an RFC 3339 time")
			}
			return Time(ms), nil
		case "$decimal":
			coef, exp, ok := ParseDecimal(members[0].Value.Text)
			if !ok {
				return Value{}, p.fail("$decimal is not a decimal number")
			}
			return Decimal(coef, exp), nil
		}
	}
	as := make(Attrs, len(members))
	if sorted {
		copy(as, members)
	} else {
		// Sort indexes rather than the 112-byte members, then copy each
		// member once, in order.
		order := p.order[:0]
		for i := range members {
			order = append(order, int32(i))
		}
		sortStableFunc(order, func(a, b int32) int { return cmpKeys(members[a].Key, members[b].Key) })
		for i, j := range order {
			as[i] = members[j]
		}
		p.order = order[:0]
		for i := 1; i < len(as); i++ {
			if as[i-1].Key == as[i].Key {
				p.path = append(p.path, pathSeg{key: as[i].Key, index: -1})
				return Value{}, p.fail("duplicate key")
			}
		}
	}
	return Value{Type: TypeMap, Map: as}, nil
}

// array parses an array, collecting its items on the parser's stack and
// copying them out once.
func (p *jsonParser) array(depth int) (Value, error) {
	if depth >= p.maxDepth {
		return Value{}, p.fail("nested deeper than " + itoa(p.maxDepth))
	}
	p.off++ // [
	p.space()
	if p.off < len(p.b) && p.b[p.off] == ']' {
		p.off++
		return Value{Type: TypeList, List: []Value{}}, nil
	}
	mark := len(p.items)
	defer func() {
		clear(p.items[mark:])
		p.items = p.items[:mark]
	}()
	for {
		p.space()
		n := len(p.items) - mark
		if n >= p.maxList {
			return Value{}, p.tooLarge("list longer than " + itoa(p.maxList) + " items")
		}
		p.path = append(p.path, pathSeg{index: n})
		v, err := p.value(depth + 1)
		if err != nil {
			return Value{}, err
		}
		p.path = p.path[:len(p.path)-1]
		if len(p.items) == cap(p.items) {
			p.items = slices.Grow(p.items, len(p.items)+8)
		}
		p.items = append(p.items, v)
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
			break
		}
		return Value{}, p.fail("expected ',' or ']'")
	}
	list := make([]Value, len(p.items)-mark)
	copy(list, p.items[mark:])
	return Value{Type: TypeList, List: list}, nil
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
	if !isFloat && p.off-intStart <= 18 { // fits: no allocation
		var u int64
		for _, c := range p.b[intStart:p.off] {
			u = u*10 + int64(c-'0')
		}
		if p.b[start] == '-' {
			u = -u
		}
		return Int(u), nil
	}
	text := string(p.b[start:p.off])
	if !isFloat {
		i, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return Value{}, p.fail("integer beyond int64")
		}
		return Int(i), nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return Value{}, p.fail("number beyond the float64 range")
	}
	return Float(f), nil
}

// str parses a string: an object key when key is set, else a text value.
// Errors about a key name the object that holds it.
func (p *jsonParser) str(key bool) (string, error) {
	p.off++ // opening quote
	start := p.off
	// Fast path: no escapes.
	for p.off < len(p.b) {
		c := p.b[p.off]
		if c == '"' {
			s := p.b[start:p.off]
			p.off++
			if err := p.checkText(s, key); err != nil {
				return "", err
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
			if err := p.checkText(buf, key); err != nil {
				return "", err
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

// checkText holds a decoded string to UTF-8 and the length limits.
func (p *jsonParser) checkText(s []byte, key bool) error {
	what, max := "text", p.maxText
	if key {
		what, max = "key", p.maxKey
	}
	if !utf8.Valid(s) {
		return p.fail(what + " is not valid UTF-8")
	}
	if len(s) > max && utf8.RuneCount(s) > max {
		return p.tooLarge(what + " longer than " + itoa(max) + " characters")
	}
	return nil
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
// cleared. Keys and values are checked against lim, and no patch may set
// more than MaxAttrs attributes over all namespaces; errors name the field.
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
	sets := 0 // attributes set, over all namespaces
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
		if len(a.Value.Map) > lim.MaxAttrs {
			return nil, tooLarge(a.Key, "map holds more than "+itoa(lim.MaxAttrs)+" keys")
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
			if sets++; sets > lim.MaxAttrs {
				return nil, tooLarge(field, "sets more than "+itoa(lim.MaxAttrs)+" attributes")
			}
			if err := lim.ValidateValue(field, kv.Value); err != nil {
				return nil, err
			}
			ops = append(ops, Op{Code: OpSetAttr, NS: ns, Key: kv.Key, Value: kv.Value})
		}
	}
	return ops, nil
}
