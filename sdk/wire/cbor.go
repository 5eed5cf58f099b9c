package wire

import (
	"encoding/binary"
	"errors"
	"math"
	"unicode/utf8"
)

// This file holds the CBOR primitives (RFC 8949): an appender that writes the
// deterministic encoding of §4.2.1 (shortest heads, shortest floats, definite
// lengths) and a decoder that accepts only that encoding, except that floats
// may come in any width. codec.go builds the schema on top.

// The decoding errors. Every decode error wraps ErrCBOR and one of these.
var (
	ErrCBOR              = errors.New("wire: bad CBOR")
	ErrCBORTruncated     = errors.New("input ends inside an item")
	ErrCBORTrailing      = errors.New("trailing bytes after the item")
	ErrCBORIndefinite    = errors.New("indefinite length")
	ErrCBORTooLong       = errors.New("declared length exceeds the input or a limit")
	ErrCBORTooDeep       = errors.New("nested too deep")
	ErrCBORType          = errors.New("unexpected type")
	ErrCBORNotCanonical  = errors.New("not the deterministic encoding")
	ErrCBORUnsortedKeys  = errors.New("map keys not in order or repeated")
	ErrCBOROutOfRange    = errors.New("number out of range")
	ErrCBORInvalidUTF8   = errors.New("text is not valid UTF-8")
	ErrCBORUnknownOpcode = errors.New("unknown op code")
)

// maxNesting caps the nesting of a value the decoders follow, whatever the
// limits say (a larger Limits.MaxDepth counts as maxNesting), so hostile
// input cannot exhaust the stack. maxStack caps a whole document: a value
// inside the deepest schema envelope (a batch's delta's op).
const (
	maxNesting = 16
	maxStack   = maxNesting + 8
)

// Major types.
const (
	majUint   = 0
	majNint   = 1
	majBytes  = 2
	majText   = 3
	majArray  = 4
	majMap    = 5
	majTag    = 6
	majSimple = 7
)

// Simple values and tags used by the schema.
const (
	simpleFalse  = 0xf4
	simpleTrue   = 0xf5
	simpleNull   = 0xf6
	tagEpochTime = 1
	tagDecimal   = 4
)

func appendHead(dst []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(dst, m|byte(n))
	case n <= math.MaxUint8:
		return append(dst, m|24, byte(n))
	case n <= math.MaxUint16:
		return append(dst, m|25, byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		return append(dst, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendUint(dst []byte, n uint64) []byte { return appendHead(dst, majUint, n) }

func appendInt(dst []byte, i int64) []byte {
	if i >= 0 {
		return appendHead(dst, majUint, uint64(i))
	}
	return appendHead(dst, majNint, uint64(-1-i))
}

func appendText(dst []byte, s string) []byte {
	return append(appendHead(dst, majText, uint64(len(s))), s...)
}

func appendBytes(dst []byte, b []byte) []byte {
	return append(appendHead(dst, majBytes, uint64(len(b))), b...)
}

func appendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, simpleTrue)
	}
	return append(dst, simpleFalse)
}

// appendFloat writes f in the shortest of half, single and double precision
// that holds it exactly; every NaN becomes the one canonical half NaN.
func appendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) {
		return append(dst, 0xf9, 0x7e, 0x00)
	}
	f32 := float32(f)
	if float64(f32) != f {
		return binary.BigEndian.AppendUint64(append(dst, 0xfb), math.Float64bits(f))
	}
	if h, ok := halfFromFloat32(f32); ok {
		return binary.BigEndian.AppendUint16(append(dst, 0xf9), h)
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xfa), math.Float32bits(f32))
}

// halfFromFloat32 returns the IEEE 754 half-precision bits of f when f is
// exactly representable in half precision.
func halfFromFloat32(f float32) (uint16, bool) {
	bits := math.Float32bits(f)
	sign := uint16(bits>>16) & 0x8000
	exp := int(bits>>23) & 0xff
	mant := bits & 0x7fffff
	switch {
	case exp == 0xff: // infinity (NaN is handled by the caller)
		if mant != 0 {
			return 0, false
		}
		return sign | 0x7c00, true
	case exp == 0 && mant == 0:
		return sign, true
	case exp == 0: // float32 subnormals are far below half's range
		return 0, false
	}
	e := exp - 127
	switch {
	case e >= -14 && e <= 15: // half normal
		if mant&0x1fff != 0 {
			return 0, false
		}
		return sign | uint16(e+15)<<10 | uint16(mant>>13), true
	case e >= -24 && e < -14: // half subnormal: value = m × 2^-24
		full := mant | 1<<23
		shift := uint(-e - 1)
		if full&(1<<shift-1) != 0 {
			return 0, false
		}
		return sign | uint16(full>>shift), true
	}
	return 0, false
}

func float64FromHalf(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(mant, -24)
	case 0x1f:
		if mant != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * math.Ldexp(1024+mant, exp-25)
}

// decoder reads deterministic CBOR from b. It never panics, never reads past
// b, and checks every declared length against the bytes left and the limits
// before it allocates, so memory stays proportional to the input and a
// document over a limit is refused at the head that declares it. Errors are
// *FieldError naming the path from the document's root (root when it is the
// root itself), never a byte offset.
type decoder struct {
	b     []byte
	off   int
	depth int // structural nesting, at most maxStack

	root string
	path []pathSeg

	// The limits in force; unlimited without Limits.
	valueDepth                int // containers around and in one value
	maxKeys, maxList, maxText int
	maxKey, maxOps, maxBatch  int
	attrsLeft                 int // attributes a session may still hold
}

func newDecoder(b []byte, root string, lim *Limits) *decoder {
	d := &decoder{b: b, root: root}
	if lim == nil {
		d.valueDepth = maxNesting
		d.maxKeys, d.maxList, d.maxText, d.maxKey = unlimited, unlimited, unlimited, unlimited
		d.maxOps, d.maxBatch, d.attrsLeft = unlimited, unlimited, unlimited
		return d
	}
	l := lim.WithDefaults()
	d.valueDepth = min(l.MaxDepth, maxNesting)
	d.maxKeys, d.maxList, d.maxText, d.maxKey = l.MaxAttrs, l.MaxListLen, l.MaxTextLen, l.MaxKeyLen
	d.maxOps, d.maxBatch, d.attrsLeft = l.MaxOps(), l.MaxBatch, l.MaxAttrs
	return d
}

func (d *decoder) field() string { return fieldName(d.root, d.path) }

// fail reports malformed input.
func (d *decoder) fail(reason error) error {
	return &FieldError{Field: d.field(), Reason: reason.Error(), Err: ErrInvalid, syntax: ErrCBOR, cause: reason}
}

// failWith reports malformed input with a more specific reason than cause's.
func (d *decoder) failWith(cause error, reason string) error {
	return &FieldError{Field: d.field(), Reason: reason, Err: ErrInvalid, syntax: ErrCBOR, cause: cause}
}

// tooLarge reports a count or length over a limit.
func (d *decoder) tooLarge(reason string) error {
	return &FieldError{Field: d.field(), Reason: reason, Err: ErrTooLarge, syntax: ErrCBOR, cause: ErrCBORTooLong}
}

// push names the value about to be decoded; pop returns to its container.
func (d *decoder) push(key string) { d.path = append(d.path, pathSeg{key: key, index: -1}) }
func (d *decoder) pushIndex(i int) { d.path = append(d.path, pathSeg{index: i}) }
func (d *decoder) pop()            { d.path = d.path[:len(d.path)-1] }

// name renames the value about to be decoded (the last segment of the path).
func (d *decoder) name(key string) { d.path[len(d.path)-1] = pathSeg{key: key, index: -1} }

// head reads an item head. For majors 0–6 it returns the argument; for major
// 7 it returns the additional info in arg and leaves the payload unread
// (float payloads are read by float).
func (d *decoder) head() (major byte, arg uint64, err error) {
	if d.off >= len(d.b) {
		return 0, 0, d.fail(ErrCBORTruncated)
	}
	ib := d.b[d.off]
	major, info := ib>>5, ib&0x1f
	if major == majSimple {
		d.off++
		return major, uint64(info), nil
	}
	switch {
	case info < 24:
		d.off++
		return major, uint64(info), nil
	case info == 31:
		return 0, 0, d.fail(ErrCBORIndefinite)
	case info > 27:
		return 0, 0, d.fail(ErrCBORType)
	}
	n := 1 << (info - 24)
	if len(d.b)-d.off-1 < n {
		return 0, 0, d.fail(ErrCBORTruncated)
	}
	p := d.b[d.off+1 : d.off+1+n]
	var min uint64
	switch n {
	case 1:
		arg, min = uint64(p[0]), 24
	case 2:
		arg, min = uint64(binary.BigEndian.Uint16(p)), math.MaxUint8+1
	case 4:
		arg, min = uint64(binary.BigEndian.Uint32(p)), math.MaxUint16+1
	default:
		arg, min = binary.BigEndian.Uint64(p), math.MaxUint32+1
	}
	if arg < min {
		return 0, 0, d.fail(ErrCBORNotCanonical)
	}
	d.off += 1 + n
	return major, arg, nil
}

func (d *decoder) expect(major byte) (uint64, error) {
	start := d.off
	m, arg, err := d.head()
	if err != nil {
		return 0, err
	}
	if m != major {
		d.off = start
		return 0, d.fail(ErrCBORType)
	}
	return arg, nil
}

// count reads an array or map head and checks that n entries of at least
// minBytes each fit in the input and that n is at most max; what names the
// entries in the error ("keys", "items").
func (d *decoder) count(major byte, minBytes int, max int, what string) (int, error) {
	n, err := d.expect(major)
	if err != nil {
		return 0, err
	}
	if n > uint64(max) {
		return 0, d.tooLarge("holds more than " + itoa(max) + " " + what)
	}
	if n > uint64(len(d.b)-d.off)/uint64(minBytes) {
		return 0, d.fail(ErrCBORTooLong)
	}
	return int(n), nil
}

func (d *decoder) uint() (uint64, error) { return d.expect(majUint) }

func (d *decoder) uint32() (uint32, error) {
	n, err := d.uint()
	if err == nil && n > math.MaxUint32 {
		return 0, d.fail(ErrCBOROutOfRange)
	}
	return uint32(n), err
}

func (d *decoder) small(max uint64) (uint8, error) {
	n, err := d.uint()
	if err == nil && n > max {
		return 0, d.fail(ErrCBOROutOfRange)
	}
	return uint8(n), err
}

func (d *decoder) int() (int64, error) {
	start := d.off
	m, arg, err := d.head()
	if err != nil {
		return 0, err
	}
	switch m {
	case majUint:
		if arg > math.MaxInt64 {
			return 0, d.fail(ErrCBOROutOfRange)
		}
		return int64(arg), nil
	case majNint:
		if arg > math.MaxInt64 {
			return 0, d.fail(ErrCBOROutOfRange)
		}
		return -1 - int64(arg), nil
	}
	d.off = start
	return 0, d.fail(ErrCBORType)
}

// rawText reads a text string of at most max characters; what ("text",
// "key") names it in the error.
func (d *decoder) rawText(max int, what string) ([]byte, error) {
	n, err := d.expect(majText)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.b)-d.off) {
		return nil, d.fail(ErrCBORTooLong)
	}
	// A character takes at most utf8.UTFMax bytes: a longer text is refused
	// before it is read.
	if max < unlimited/utf8.UTFMax && n > uint64(max)*utf8.UTFMax {
		return nil, d.tooLarge(what + " longer than " + itoa(max) + " characters")
	}
	s := d.b[d.off : d.off+int(n)]
	if !utf8.Valid(s) {
		return nil, d.fail(ErrCBORInvalidUTF8)
	}
	if len(s) > max && utf8.RuneCount(s) > max {
		return nil, d.tooLarge(what + " longer than " + itoa(max) + " characters")
	}
	d.off += int(n)
	return s, nil
}

func (d *decoder) text(max int) (string, error) {
	s, err := d.rawText(max, "text")
	return string(s), err
}

func (d *decoder) bytes() ([]byte, error) {
	n, err := d.expect(majBytes)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.b)-d.off) {
		return nil, d.fail(ErrCBORTooLong)
	}
	s := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return s, nil
}

// float reads the payload of a major-7 float head with additional info info.
func (d *decoder) float(info uint64) (float64, error) {
	n := 2 << (info - 25)
	if len(d.b)-d.off < n {
		return 0, d.fail(ErrCBORTruncated)
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	var f float64
	switch n {
	case 2:
		f = float64FromHalf(binary.BigEndian.Uint16(p))
	case 4:
		f = float64(math.Float32frombits(binary.BigEndian.Uint32(p)))
	default:
		f = math.Float64frombits(binary.BigEndian.Uint64(p))
	}
	if f != f {
		// Every NaN is one value here, as the encoder writes it: a NaN's
		// payload bits would otherwise survive a decode but not a re-encode.
		f = math.NaN()
	}
	return f, nil
}

func (d *decoder) enter() error {
	d.depth++
	if d.depth > maxStack {
		return d.fail(ErrCBORTooDeep)
	}
	return nil
}

func (d *decoder) leave() { d.depth-- }

// skip passes over one well-formed item (an unknown map entry), within the
// same depth and length rules as everything else.
func (d *decoder) skip() error {
	m, arg, err := d.head()
	if err != nil {
		return err
	}
	switch m {
	case majUint, majNint:
		return nil
	case majBytes, majText:
		if arg > uint64(len(d.b)-d.off) {
			return d.fail(ErrCBORTooLong)
		}
		d.off += int(arg)
		return nil
	case majArray, majMap:
		per := uint64(1)
		if m == majMap {
			per = 2
		}
		if arg > uint64(len(d.b)-d.off)/per {
			return d.fail(ErrCBORTooLong)
		}
		if err := d.enter(); err != nil {
			return err
		}
		for i := uint64(0); i < arg*per; i++ {
			if err := d.skip(); err != nil {
				return err
			}
		}
		d.leave()
		return nil
	case majTag:
		if err := d.enter(); err != nil {
			return err
		}
		err := d.skip()
		d.leave()
		return err
	}
	switch {
	case arg < 24:
		return nil
	case arg == 24:
		if d.off >= len(d.b) {
			return d.fail(ErrCBORTruncated)
		}
		d.off++
		return nil
	case arg >= 25 && arg <= 27:
		_, err := d.float(arg)
		return err
	}
	return d.fail(ErrCBORType)
}

func (d *decoder) end() error {
	if d.off != len(d.b) {
		d.path = d.path[:0]
		return d.fail(ErrCBORTrailing)
	}
	return nil
}

// MaxDecodeAllocRatio bounds the bytes the decoder allocates per input byte
// (the worst case is a list of one-byte integers, each becoming a Value);
// codec_test.go checks it.
const MaxDecodeAllocRatio = 128
