package wire

import (
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// Limits bounds what a session may hold. The zero value of each field means
// its default; every place a value enters (origin API, edge self-service,
// deltas from the feed) checks them. The decoders that take a *Limits
// (ParseValueJSONLimits, DecodeValueLimits, DecodeSessionLimits, ...) check
// them while they parse, so untrusted input is refused as soon as it passes a
// limit, before the rest of it costs anything.
type Limits struct {
	MaxTextLen      int // characters in a text value; default 2000
	MaxKeyLen       int // characters in an attribute key; default 64
	MaxAttrs        int // attributes over all namespaces, and keys in any one map; default 256
	MaxSessionBytes int // encoded (CBOR) session; default 10240
	MaxDepth        int // nesting of lists and maps, a scalar is depth 0; default 4
	MaxListLen      int // items in a list; default 1024
	MaxBatch        int // deltas in a sync batch, sessions in a touch report; default 10000
}

// DefaultLimits are the limits a session is held to unless configured.
var DefaultLimits = Limits{MaxTextLen: 2000, MaxKeyLen: 64, MaxAttrs: 256, MaxSessionBytes: 10 << 10, MaxDepth: 4,
	MaxListLen: 1024, MaxBatch: 10000}

// MaxEnvelopeDepth is the nesting a request body may add around attribute
// values: {"context":{"custom":{"key": value}}} holds the value three levels
// down. ParseValueJSONLimits and DecodeValueLimits accept documents nested at
// most MaxDepth + MaxEnvelopeDepth deep; ContextOps then holds each
// attribute's value to MaxDepth.
const MaxEnvelopeDepth = 3

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits
	for _, f := range [...]struct {
		dst *int
		v   int
	}{{&d.MaxTextLen, l.MaxTextLen}, {&d.MaxKeyLen, l.MaxKeyLen}, {&d.MaxAttrs, l.MaxAttrs}, {&d.MaxSessionBytes, l.MaxSessionBytes},
		{&d.MaxDepth, l.MaxDepth}, {&d.MaxListLen, l.MaxListLen}, {&d.MaxBatch, l.MaxBatch}} {
		if f.v > 0 {
			*f.dst = f.v
		}
	}
	return d
}

// MaxOps is the number of ops a decoded delta may hold: enough for the
// largest change the origin composes from one request (a context replaced
// whole, every namespace object of the body holding MaxAttrs keys, plus
// login or start).
func (l *Limits) MaxOps() int { return (NumNamespaces+1)*l.MaxAttrs + 64 }

// ErrInvalid is wrapped by every error about a value that breaks the rules;
// ErrTooLarge by those about sizes and counts.
var (
	ErrInvalid  = errors.New("invalid")
	ErrTooLarge = errors.New("too large")
)

// FieldError names the offending field: "currency", "custom.color",
// "public.prefs.sizes[2]", "session" for the whole, or "body" for a request
// body that is malformed before any field can be named. Decoding errors name
// the path of the value from the root of what was decoded and never a byte
// offset; they also wrap ErrJSON or ErrCBOR (and, for CBOR, the specific
// ErrCBOR… reason), so errors.Is tells syntax from limits.
type FieldError struct {
	Field  string
	Reason string
	Err    error // ErrInvalid or ErrTooLarge

	syntax error // ErrJSON or ErrCBOR for decoding errors
	cause  error // the ErrCBOR… reason of a CBOR decoding error
}

func (e *FieldError) Error() string { return "wire: " + e.Field + ": " + e.Reason }

// Unwrap returns ErrInvalid or ErrTooLarge, and for decoding errors ErrJSON
// or ErrCBOR and the specific CBOR reason.
func (e *FieldError) Unwrap() []error {
	errs := make([]error, 0, 3)
	for _, err := range [...]error{e.Err, e.syntax, e.cause} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func invalid(field, reason string) error {
	return &FieldError{Field: field, Reason: reason, Err: ErrInvalid}
}

func tooLarge(field, reason string) error {
	return &FieldError{Field: field, Reason: reason, Err: ErrTooLarge}
}

// ValidateKey checks an attribute key: [A-Za-z0-9_.-]{1,MaxKeyLen}.
func (l *Limits) ValidateKey(field, key string) error {
	if key == "" {
		return invalid(field, "key is empty")
	}
	if len(key) > l.MaxKeyLen {
		return tooLarge(field, "key longer than "+itoa(l.MaxKeyLen)+" characters")
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return invalid(field, "key may hold only A-Z a-z 0-9 _ . -")
		}
	}
	return nil
}

// ValidateValue checks a value's type, text lengths, nesting and keys. field
// names the value in the error.
func (l *Limits) ValidateValue(field string, v Value) error {
	return l.validateValue(field, v, 0)
}

func (l *Limits) validateValue(field string, v Value, depth int) error {
	switch v.Type {
	case TypeText:
		if !utf8.ValidString(v.Text) {
			return invalid(field, "text is not valid UTF-8")
		}
		if len(v.Text) > l.MaxTextLen && utf8.RuneCountInString(v.Text) > l.MaxTextLen {
			return tooLarge(field, "text longer than "+itoa(l.MaxTextLen)+" characters")
		}
	case TypeInt:
	case TypeTime:
		if v.Int < MinTime || v.Int > MaxTime {
			return invalid(field, "time outside the years 0001–9999")
		}
	case TypeBool:
		if v.Int != 0 && v.Int != 1 {
			return invalid(field, "bool is neither true nor false")
		}
	case TypeFloat:
		if math.IsNaN(v.Float) || math.IsInf(v.Float, 0) {
			return invalid(field, "float must be finite")
		}
	case TypeDecimal:
		if v.Exp < -MaxDecimalExp || v.Exp > MaxDecimalExp {
			return invalid(field, "decimal exponent out of range")
		}
	case TypeList, TypeMap:
		if depth >= l.MaxDepth {
			return invalid(field, "nested deeper than "+itoa(l.MaxDepth))
		}
		if v.Type == TypeList {
			if len(v.List) > l.MaxListLen {
				return tooLarge(field, "list longer than "+itoa(l.MaxListLen)+" items")
			}
			for i, e := range v.List {
				if err := l.validateValue(field+"["+itoa(i)+"]", e, depth+1); err != nil {
					return err
				}
			}
			return nil
		}
		if len(v.Map) > l.MaxAttrs {
			return tooLarge(field, "map holds more than "+itoa(l.MaxAttrs)+" keys")
		}
		for i, a := range v.Map {
			path := field + "." + a.Key
			if err := l.ValidateKey(path, a.Key); err != nil {
				return err
			}
			if i > 0 && !keyLess(v.Map[i-1].Key, a.Key) {
				return invalid(path, "map keys not sorted or repeated")
			}
			if err := l.validateValue(path, a.Value, depth+1); err != nil {
				return err
			}
		}
	default:
		return invalid(field, "value has no type")
	}
	return nil
}

// MaxDecimalExp bounds the exponent of a decimal value.
const MaxDecimalExp = 64

// ValidateField checks a value for a well-known field.
func (l *Limits) ValidateField(f Field, v Value) error {
	if f >= NumFields {
		return invalid("field", "unknown well-known field")
	}
	if v.Type != f.Type() {
		return invalid(f.String(), "must be "+f.Type().String()+", not "+v.Type.String())
	}
	return l.ValidateValue(f.String(), v)
}

// ValidateSession checks every value of s and its size limits.
func (l *Limits) ValidateSession(s *Session) error {
	if !s.Kind.Valid() {
		return invalid("kind", "unknown session kind")
	}
	for f, v := range s.Fields {
		if v.IsZero() {
			continue
		}
		if err := l.ValidateField(Field(f), v); err != nil {
			return err
		}
	}
	for ns, as := range s.Attrs {
		for i, a := range as {
			field := Namespace(ns).String() + "." + a.Key
			if err := l.ValidateKey(field, a.Key); err != nil {
				return err
			}
			if i > 0 && !keyLess(as[i-1].Key, a.Key) {
				return invalid(field, "attributes not sorted or repeated")
			}
			if err := l.ValidateValue(field, a.Value); err != nil {
				return err
			}
		}
	}
	if n := s.NumAttrs(); n > l.MaxAttrs {
		return tooLarge("session", "holds "+itoa(n)+" attributes, more than "+itoa(l.MaxAttrs))
	}
	if n := SessionSize(s); n > l.MaxSessionBytes {
		return tooLarge("session", "encodes to "+itoa(n)+" bytes, more than "+itoa(l.MaxSessionBytes))
	}
	return nil
}

func itoa(i int) string { return strconv.Itoa(i) }

// pathSeg is one step from a decoded document's root to a value: a map key,
// or a list index when index ≥ 0.
type pathSeg struct {
	key   string
	index int
}

// maxPathKey bounds how much of one key an error repeats.
const maxPathKey = 64

// appendPath formats segs as a field name: "custom.list[3].name". Keys come
// from the input, so each is cut to maxPathKey bytes and made valid UTF-8;
// an empty key is written "".
func appendPath(dst []byte, segs []pathSeg) []byte {
	for i, s := range segs {
		if s.index >= 0 {
			dst = append(append(append(dst, '['), itoa(s.index)...), ']')
			continue
		}
		if i > 0 {
			dst = append(dst, '.')
		}
		if s.key == "" {
			dst = append(dst, `""`...) // an empty key stays visible
			continue
		}
		k := s.key
		cut := len(k) > maxPathKey
		if cut {
			k = k[:maxPathKey]
			// Drop a character the cut went through.
			for i := len(k) - 1; i >= 0 && i >= len(k)-utf8.UTFMax; i-- {
				if utf8.RuneStart(k[i]) {
					if !utf8.FullRuneInString(k[i:]) {
						k = k[:i]
					}
					break
				}
			}
		}
		for len(k) > 0 {
			r, n := utf8.DecodeRuneInString(k)
			if r == utf8.RuneError && n == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, k[:n]...)
			}
			k = k[n:]
		}
		if cut {
			dst = append(dst, "…"...)
		}
	}
	return dst
}

// fieldName is the name of the value at segs, or root for the root itself.
func fieldName(root string, segs []pathSeg) string {
	if len(segs) == 0 {
		return root
	}
	return string(appendPath(make([]byte, 0, 32), segs))
}
