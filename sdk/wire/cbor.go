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

// cborError wraps ErrCBOR and a specific reason, with where it happened.
type cborError struct {
	reason error
	what   string
	off    int
}

func (e *cborError) Error() string {
	return "wire: bad CBOR at byte " + itoa(e.off) + " (" + e.what + "): " + e.reason.Error()
}

func (e *cborError) Is(target error) bool { return target == ErrCBOR || target == e.reason }

// maxNesting caps the nesting the decoder follows, whatever the limits say, so
// hostile input cannot exhaust the stack. Limits.MaxDepth must not exceed it.
const maxNesting = 16

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
// b, and checks every declared length against the bytes left before it
// allocates, so memory stays proportional to the input.
type decoder struct {
	b     []byte
	off   int
	depth int
}

func (d *decoder) fail(reason error, what string) error {
	return &cborError{reason: reason, what: what, off: d.off}
}

// head reads an item head. For majors 0–6 it returns the argument; for major
// 7 it returns the additional info in arg and leaves the payload unread
// (float payloads are read by float).
func (d *decoder) head(what string) (major byte, arg uint64, err error) {
	if d.off >= len(d.b) {
		return 0, 0, d.fail(ErrCBORTruncated, what)
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
		return 0, 0, d.fail(ErrCBORIndefinite, what)
	case info > 27:
		return 0, 0, d.fail(ErrCBORType, what)
	}
	n := 1 << (info - 24)
	if len(d.b)-d.off-1 < n {
		return 0, 0, d.fail(ErrCBORTruncated, what)
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
		return 0, 0, d.fail(ErrCBORNotCanonical, what)
	}
	d.off += 1 + n
	return major, arg, nil
}

func (d *decoder) expect(major byte, what string) (uint64, error) {
	start := d.off
	m, arg, err := d.head(what)
	if err != nil {
		return 0, err
	}
	if m != major {
		d.off = start
		return 0, d.fail(ErrCBORType, what)
	}
	return arg, nil
}

// count reads an array or map head and checks that n entries of at least
// minBytes each fit in the input.
func (d *decoder) count(major byte, minBytes int, what string) (int, error) {
	n, err := d.expect(major, what)
	if err != nil {
		return 0, err
	}
	if n > uint64(len(d.b)-d.off)/uint64(minBytes) {
		return 0, d.fail(ErrCBORTooLong, what)
	}
	return int(n), nil
}

func (d *decoder) uint(what string) (uint64, error) { return d.expect(majUint, what) }

func (d *decoder) uint32(what string) (uint32, error) {
	n, err := d.uint(what)
	if err == nil && n > math.MaxUint32 {
		return 0, d.fail(ErrCBOROutOfRange, what)
	}
	return uint32(n), err
}

func (d *decoder) small(what string, max uint64) (uint8, error) {
	n, err := d.uint(what)
	if err == nil && n > max {
		return 0, d.fail(ErrCBOROutOfRange, what)
	}
	return uint8(n), err
}

func (d *decoder) int(what string) (int64, error) {
	start := d.off
	m, arg, err := d.head(what)
	if err != nil {
		return 0, err
	}
	switch m {
	case majUint:
		if arg > math.MaxInt64 {
			return 0, d.fail(ErrCBOROutOfRange, what)
		}
		return int64(arg), nil
	case majNint:
		if arg > math.MaxInt64 {
			return 0, d.fail(ErrCBOROutOfRange, what)
		}
		return -1 - int64(arg), nil
	}
	d.off = start
	return 0, d.fail(ErrCBORType, what)
}

func (d *decoder) rawText(what string) ([]byte, error) {
	n, err := d.expect(majText, what)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.b)-d.off) {
		return nil, d.fail(ErrCBORTooLong, what)
	}
	s := d.b[d.off : d.off+int(n)]
	if !utf8.Valid(s) {
		return nil, d.fail(ErrCBORInvalidUTF8, what)
	}
	d.off += int(n)
	return s, nil
}

func (d *decoder) text(what string) (string, error) {
	s, err := d.rawText(what)
	return string(s), err
}

func (d *decoder) bytes(what string) ([]byte, error) {
	n, err := d.expect(majBytes, what)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.b)-d.off) {
		return nil, d.fail(ErrCBORTooLong, what)
	}
	s := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return s, nil
}

// float reads the payload of a major-7 float head with additional info info.
func (d *decoder) float(info uint64, what string) (float64, error) {
	n := 2 << (info - 25)
	if len(d.b)-d.off < n {
		return 0, d.fail(ErrCBORTruncated, what)
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	switch n {
	case 2:
		return float64FromHalf(binary.BigEndian.Uint16(p)), nil
	case 4:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(p))), nil
	}
	return math.Float64frombits(binary.BigEndian.Uint64(p)), nil
}

func (d *decoder) enter(what string) error {
	d.depth++
	if d.depth > maxNesting {
		return d.fail(ErrCBORTooDeep, what)
	}
	return nil
}

func (d *decoder) leave() { d.depth-- }

// skip passes over one well-formed item (an unknown map entry), within the
// same depth and length rules as everything else.
func (d *decoder) skip(what string) error {
	m, arg, err := d.head(what)
	if err != nil {
		return err
	}
	switch m {
	case majUint, majNint:
		return nil
	case majBytes, majText:
		if arg > uint64(len(d.b)-d.off) {
			return d.fail(ErrCBORTooLong, what)
		}
		d.off += int(arg)
		return nil
	case majArray, majMap:
		per := uint64(1)
		if m == majMap {
			per = 2
		}
		if arg > uint64(len(d.b)-d.off)/per {
			return d.fail(ErrCBORTooLong, what)
		}
		if err := d.enter(what); err != nil {
			return err
		}
		for i := uint64(0); i < arg*per; i++ {
			if err := d.skip(what); err != nil {
				return err
			}
		}
		d.leave()
		return nil
	case majTag:
		if err := d.enter(what); err != nil {
			return err
		}
		err := d.skip(what)
		d.leave()
		return err
	}
	switch {
	case arg < 24:
		return nil
	case arg == 24:
		if d.off >= len(d.b) {
			return d.fail(ErrCBORTruncated, what)
		}
		d.off++
		return nil
	case arg >= 25 && arg <= 27:
		_, err := d.float(arg, what)
		return err
	}
	return d.fail(ErrCBORType, what)
}

func (d *decoder) end(what string) error {
	if d.off != len(d.b) {
		return d.fail(ErrCBORTrailing, what)
	}
	return nil
}

// MaxDecodeAllocRatio bounds the bytes the decoder allocates per input byte
// (the worst case is a list of one-byte integers, each becoming a Value);
// codec_test.go checks it.
const MaxDecodeAllocRatio = 128
