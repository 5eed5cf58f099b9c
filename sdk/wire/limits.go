package wire

import (
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// Limits bounds what a session may hold. The zero value of each field means
// its default; every place a value enters (origin API, edge self-service,
// deltas from the feed) checks them.
type Limits struct {
	MaxTextLen      int // characters in a text value; default 2000
	MaxKeyLen       int // characters in an attribute key; default 64
	MaxAttrs        int // attributes over all namespaces; default 256
	MaxSessionBytes int // encoded (CBOR) session; default 10240
	MaxDepth        int // nesting of lists and maps, a scalar is depth 0; default 4
}

// DefaultLimits are the limits of DESIGN.md §4.
var DefaultLimits = Limits{MaxTextLen: 2000, MaxKeyLen: 64, MaxAttrs: 256, MaxSessionBytes: 10 << 10, MaxDepth: 4}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits
	if l.MaxTextLen > 0 {
		d.MaxTextLen = l.MaxTextLen
	}
	if l.MaxKeyLen > 0 {
		d.MaxKeyLen = l.MaxKeyLen
	}
	if l.MaxAttrs > 0 {
		d.MaxAttrs = l.MaxAttrs
	}
	if l.MaxSessionBytes > 0 {
		d.MaxSessionBytes = l.MaxSessionBytes
	}
	if l.MaxDepth > 0 {
		d.MaxDepth = l.MaxDepth
	}
	return d
}

// ErrInvalid is wrapped by every error about a value that breaks the rules;
// ErrTooLarge by those about sizes and counts.
var (
	ErrInvalid  = errors.New("invalid")
	ErrTooLarge = errors.New("too large")
)

// FieldError names the offending field: "currency", "custom.color",
// "public.prefs.sizes[2]", or "session" for the whole.
type FieldError struct {
	Field  string
	Reason string
	Err    error // ErrInvalid or ErrTooLarge
}

func (e *FieldError) Error() string { return "wire: " + e.Field + ": " + e.Reason }

// Unwrap returns ErrInvalid or ErrTooLarge.
func (e *FieldError) Unwrap() error { return e.Err }

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
			for i, e := range v.List {
				if err := l.validateValue(field+"["+itoa(i)+"]", e, depth+1); err != nil {
					return err
				}
			}
			return nil
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
