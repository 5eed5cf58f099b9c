package wire

import (
	"math"
	"sort"
)

// ValueType is the type of a context value.
type ValueType uint8

// The value types. Lists and maps hold values of these types, nested at most
// Limits.MaxDepth deep.
const (
	TypeText    ValueType = 1 // UTF-8 text
	TypeInt     ValueType = 2 // int64
	TypeFloat   ValueType = 3 // float64
	TypeBool    ValueType = 4 // true or false
	TypeTime    ValueType = 5 // a point in time, Unix milliseconds
	TypeDecimal ValueType = 6 // exact decimal (money): Int × 10^Exp
	TypeList    ValueType = 7 // ordered values
	TypeMap     ValueType = 8 // text keys to values
)

// String returns the type's name as used in errors and docs.
func (t ValueType) String() string {
	switch t {
	case TypeText:
		return "text"
	case TypeInt:
		return "int"
	case TypeFloat:
		return "float"
	case TypeBool:
		return "bool"
	case TypeTime:
		return "time"
	case TypeDecimal:
		return "decimal"
	case TypeList:
		return "list"
	case TypeMap:
		return "map"
	}
	return "invalid"
}

// Value is a typed context value. Values are immutable once built: code that
// derives a new value builds new slices rather than writing into List or Map,
// so values can be shared between sessions without copying.
type Value struct {
	Type  ValueType
	Text  string  // TypeText
	Int   int64   // TypeInt; TypeBool (0 or 1); TypeTime (Unix ms); TypeDecimal (coefficient)
	Exp   int32   // TypeDecimal: the value is Int × 10^Exp
	Float float64 // TypeFloat
	List  []Value // TypeList
	Map   Attrs   // TypeMap, sorted by key (see Attrs)
}

// Text returns a text value.
func Text(s string) Value { return Value{Type: TypeText, Text: s} }

// Int returns an integer value.
func Int(i int64) Value { return Value{Type: TypeInt, Int: i} }

// Float returns a floating-point value.
func Float(f float64) Value { return Value{Type: TypeFloat, Float: f} }

// Bool returns a boolean value.
func Bool(b bool) Value {
	v := Value{Type: TypeBool}
	if b {
		v.Int = 1
	}
	return v
}

// Time returns a timestamp value from Unix milliseconds.
func Time(unixMilli int64) Value { return Value{Type: TypeTime, Int: unixMilli} }

// Decimal returns the exact decimal coef × 10^exp, for money: Decimal(1999, -2) is 19.99.
func Decimal(coef int64, exp int32) Value { return Value{Type: TypeDecimal, Int: coef, Exp: exp} }

// List returns a list value holding vs.
func List(vs ...Value) Value { return Value{Type: TypeList, List: vs} }

// Map returns a map value; later duplicates of a key win. It sorts a copy
// of attrs once, so building a map of n keys costs O(n log n).
func Map(attrs ...Attr) Value {
	if len(attrs) == 0 {
		return Value{Type: TypeMap}
	}
	m := make(Attrs, len(attrs))
	copy(m, attrs)
	sortStableFunc(m, cmpAttrs)
	// Keep the last of each run of equal keys.
	out := m[:0]
	for i := range m {
		if i+1 < len(m) && m[i+1].Key == m[i].Key {
			continue
		}
		out = append(out, m[i])
	}
	clear(m[len(out):])
	return Value{Type: TypeMap, Map: out}
}

// BoolValue reports the value of a TypeBool value.
func (v Value) BoolValue() bool { return v.Int != 0 }

// IsZero reports whether v is the zero Value (no value).
func (v Value) IsZero() bool { return v.Type == 0 }

// Equal reports whether two values have the same type and content. Floats
// compare by bits, so NaN equals NaN and a value always equals itself.
func (v Value) Equal(w Value) bool {
	if v.Type != w.Type {
		return false
	}
	switch v.Type {
	case TypeText:
		return v.Text == w.Text
	case TypeInt, TypeBool, TypeTime:
		return v.Int == w.Int
	case TypeDecimal:
		return v.Int == w.Int && v.Exp == w.Exp
	case TypeFloat:
		return math.Float64bits(v.Float) == math.Float64bits(w.Float)
	case TypeList:
		if len(v.List) != len(w.List) {
			return false
		}
		for i := range v.List {
			if !v.List[i].Equal(w.List[i]) {
				return false
			}
		}
		return true
	case TypeMap:
		return v.Map.Equal(w.Map)
	}
	return true
}

// Attr is one key and its value.
type Attr struct {
	Key   string
	Value Value
}

// Attrs is a set of attributes sorted by key in CBOR's deterministic order
// (shorter keys first, then bytewise), which is the order they are encoded
// in, so encoding needs no sort and no allocation. Attrs is copy-on-write:
// With and Without return new slices and never modify the receiver.
type Attrs []Attr

// keyLess is the deterministic CBOR order of text keys.
func keyLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func (as Attrs) search(key string) (int, bool) {
	i := sort.Search(len(as), func(i int) bool { return !keyLess(as[i].Key, key) })
	return i, i < len(as) && as[i].Key == key
}

// Get returns the value of key.
func (as Attrs) Get(key string) (Value, bool) {
	if i, ok := as.search(key); ok {
		return as[i].Value, true
	}
	return Value{}, false
}

// With returns a copy of as with key set to v.
func (as Attrs) With(key string, v Value) Attrs {
	i, found := as.search(key)
	if found {
		out := make(Attrs, len(as))
		copy(out, as)
		out[i].Value = v
		return out
	}
	out := make(Attrs, len(as)+1)
	copy(out, as[:i])
	out[i] = Attr{Key: key, Value: v}
	copy(out[i+1:], as[i:])
	return out
}

// Without returns a copy of as without key (as itself when key is absent).
func (as Attrs) Without(key string) Attrs {
	i, found := as.search(key)
	if !found {
		return as
	}
	out := make(Attrs, 0, len(as)-1)
	out = append(out, as[:i]...)
	return append(out, as[i+1:]...)
}

// Equal reports whether both sets hold the same keys and values.
func (as Attrs) Equal(bs Attrs) bool {
	if len(as) != len(bs) {
		return false
	}
	for i := range as {
		if as[i].Key != bs[i].Key || !as[i].Value.Equal(bs[i].Value) {
			return false
		}
	}
	return true
}
