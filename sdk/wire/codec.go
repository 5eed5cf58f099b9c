package wire

import (
	"math"
	"slices"
	"strconv"
)

// The CBOR schema (docs/wire.md has it in CDDL). Maps use small integer keys
// in ascending order; a key whose value is zero or empty is left out. Decoders
// skip keys they do not know, so fields can be added without breaking older
// readers; a key's meaning never changes.

// Session map keys.
const (
	sessID = 1 + iota
	sessKind
	sessGeneration
	sessVersion
	sessCreated
	sessLastSeen
	sessIdle
	sessHard
	sessEnded
	sessFields
	sessCustom // sessCustom + ns for each namespace
	sessPrivacy
	sessPublic
	sessModified
	sessIdleTimeout
	sessHardTimeout
	sessFirstDevice
	sessDevice
	// viewSegment is only in a forwarded view: the edge's segment of it.
	viewSegment
)

// Delta, batch and touch-report map keys.
const (
	deltaID = 1 + iota
	deltaBase
	deltaVersion
	deltaAt
	deltaOps
)

const (
	batchCursor = 1 + iota
	batchDeltas
	batchReset
)

const touchesList = 1

// AllNamespaces selects every namespace in AppendSessionView.
const AllNamespaces = 1<<NumNamespaces - 1

// AppendValue appends the CBOR encoding of v to dst.
func AppendValue(dst []byte, v Value) []byte {
	switch v.Type {
	case TypeText:
		return appendText(dst, v.Text)
	case TypeInt:
		return appendInt(dst, v.Int)
	case TypeFloat:
		return appendFloat(dst, v.Float)
	case TypeBool:
		return appendBool(dst, v.Int != 0)
	case TypeTime:
		dst = appendHead(dst, majTag, tagEpochTime)
		if v.Int%1000 == 0 {
			return appendInt(dst, v.Int/1000)
		}
		return appendFloat(dst, float64(v.Int)/1000)
	case TypeDecimal:
		dst = appendHead(dst, majTag, tagDecimal)
		dst = appendHead(dst, majArray, 2)
		return appendInt(appendInt(dst, int64(v.Exp)), v.Int)
	case TypeList:
		dst = appendHead(dst, majArray, uint64(len(v.List)))
		for _, e := range v.List {
			dst = AppendValue(dst, e)
		}
		return dst
	case TypeMap:
		return appendAttrs(dst, v.Map)
	}
	// The zero Value (no value) is null.
	return append(dst, simpleNull)
}

func appendAttrs(dst []byte, as Attrs) []byte {
	dst = appendHead(dst, majMap, uint64(len(as)))
	for _, a := range as {
		dst = AppendValue(appendText(dst, a.Key), a.Value)
	}
	return dst
}

// DecodeValue decodes one value that fills b, holding it only to the
// structural bounds (nesting at most 16 deep). Input from clients goes
// through DecodeValueLimits.
func DecodeValue(b []byte) (Value, error) { return DecodeValueLimits(b, nil) }

// DecodeValueLimits decodes one value that fills b, a request body, and
// refuses it at the first head that passes a limit of lim: a map with more
// than MaxAttrs keys, a list with more than MaxListLen items, a text longer
// than MaxTextLen characters, a key longer than MaxKeyLen, nesting deeper
// than MaxDepth + MaxEnvelopeDepth. A nil lim applies only the structural
// bounds. Errors are *FieldError naming the path of the value ("custom.name",
// "custom.list[3]", "body" for the root) and wrap ErrCBOR.
func DecodeValueLimits(b []byte, lim *Limits) (Value, error) {
	d := newDecoder(b, "body", lim)
	if lim != nil {
		d.valueDepth += MaxEnvelopeDepth
	}
	v, err := d.value(0)
	if err != nil {
		return Value{}, err
	}
	return v, d.end()
}

// value decodes the value at the current path; depth counts the lists and
// maps around it within the value being limited.
func (d *decoder) value(depth int) (Value, error) {
	start := d.off
	m, arg, err := d.head()
	if err != nil {
		return Value{}, err
	}
	switch m {
	case majUint, majNint:
		d.off = start
		i, err := d.int()
		return Int(i), err
	case majText:
		d.off = start
		s, err := d.text(d.maxText)
		return Text(s), err
	case majArray, majMap:
		d.off = start
		if depth >= d.valueDepth {
			return Value{}, &FieldError{Field: d.field(), Reason: "nested deeper than " + itoa(d.valueDepth),
				Err: ErrInvalid, syntax: ErrCBOR, cause: ErrCBORTooDeep}
		}
		if err := d.enter(); err != nil {
			return Value{}, err
		}
		defer d.leave()
		if m == majMap {
			as, err := d.attrs(depth + 1)
			return Value{Type: TypeMap, Map: as}, err
		}
		n, err := d.count(majArray, 1, d.maxList, "items")
		if err != nil {
			return Value{}, err
		}
		list := make([]Value, n)
		for i := range list {
			d.pushIndex(i)
			if list[i], err = d.value(depth + 1); err != nil {
				return Value{}, err
			}
			d.pop()
		}
		return Value{Type: TypeList, List: list}, nil
	case majTag:
		return d.tagged(arg)
	case majSimple:
		switch {
		case arg == simpleFalse&0x1f:
			return Bool(false), nil
		case arg == simpleTrue&0x1f:
			return Bool(true), nil
		case arg == simpleNull&0x1f: // "no value": unsets a field in setField
			return Value{}, nil
		case arg >= 25 && arg <= 27:
			f, err := d.float(arg)
			return Float(f), err
		}
	}
	d.off = start
	return Value{}, d.fail(ErrCBORType)
}

func (d *decoder) tagged(tag uint64) (Value, error) {
	switch tag {
	case tagEpochTime:
		start := d.off
		m, arg, err := d.head()
		if err != nil {
			return Value{}, err
		}
		if m == majSimple && arg >= 25 && arg <= 27 {
			f, err := d.float(arg)
			if err != nil {
				return Value{}, err
			}
			ms := math.Round(f * 1000)
			if !(ms >= -(1<<53) && ms <= 1<<53) {
				return Value{}, d.fail(ErrCBOROutOfRange)
			}
			return Time(int64(ms)), nil
		}
		d.off = start
		secs, err := d.int()
		if err != nil {
			return Value{}, err
		}
		if secs > math.MaxInt64/1000 || secs < math.MinInt64/1000 {
			return Value{}, d.fail(ErrCBOROutOfRange)
		}
		return Time(secs * 1000), nil
	case tagDecimal:
		n, err := d.count(majArray, 1, unlimited, "items")
		if err != nil {
			return Value{}, err
		}
		if n != 2 {
			return Value{}, d.fail(ErrCBORType)
		}
		exp, err := d.int()
		if err != nil {
			return Value{}, err
		}
		if exp < -MaxDecimalExp || exp > MaxDecimalExp {
			return Value{}, d.fail(ErrCBOROutOfRange)
		}
		coef, err := d.int()
		return Decimal(coef, int32(exp)), err
	}
	return Value{}, d.fail(ErrCBORType)
}

// attrs decodes a map of text keys in deterministic order, whose values sit
// at depth. The order is checked while the entries are appended to a slice
// sized once from the declared count, so a map costs time linear in its
// size; the count is checked against MaxAttrs before anything is allocated.
func (d *decoder) attrs(depth int) (Attrs, error) {
	n, err := d.count(majMap, 2, d.maxKeys, "keys")
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	as := make(Attrs, n)
	for i := range as {
		key, err := d.rawText(d.maxKey, "key")
		if err != nil {
			return nil, err
		}
		if i > 0 && !keyLessBytes(as[i-1].Key, key) {
			d.push(string(key))
			return nil, d.fail(ErrCBORUnsortedKeys)
		}
		as[i].Key = string(key)
		d.push(as[i].Key)
		if as[i].Value, err = d.value(depth); err != nil {
			return nil, err
		}
		d.pop()
	}
	return as, nil
}

func keyLessBytes(a string, b []byte) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < string(b)
}

// mapKeys walks a map of ascending unsigned keys, calling fn for each key
// with the path naming it (names[key], or the number when names has none);
// fn decodes the value or returns false to have it skipped.
func (d *decoder) mapKeys(names []string, fn func(key uint64) (bool, error)) error {
	n, err := d.count(majMap, 2, unlimited, "keys")
	if err != nil {
		return err
	}
	if err := d.enter(); err != nil {
		return err
	}
	var prev uint64
	for i := 0; i < n; i++ {
		key, err := d.uint()
		if err != nil {
			return err
		}
		if key < uint64(len(names)) && names[key] != "" {
			d.push(names[key])
		} else {
			d.push(strconv.FormatUint(key, 10))
		}
		if i > 0 && key <= prev {
			return d.fail(ErrCBORUnsortedKeys)
		}
		prev = key
		handled, err := fn(key)
		if err != nil {
			return err
		}
		if !handled {
			if err := d.skip(); err != nil {
				return err
			}
		}
		d.pop()
	}
	d.leave()
	return nil
}

// sessionEntries counts the map entries AppendSessionView writes.
func sessionEntries(s *Session, namespaces uint8) (n uint64, fields uint64) {
	n = 1 // id
	for _, nonzero := range [...]bool{s.Kind != 0, s.Generation != 0, s.Version != 0, s.Created != 0,
		s.LastSeen != 0, s.IdleDeadline != 0, s.HardDeadline != 0, s.Ended != 0} {
		if nonzero {
			n++
		}
	}
	for _, v := range s.Fields {
		if !v.IsZero() {
			fields++
		}
	}
	if fields > 0 {
		n++
	}
	for ns := range s.Attrs {
		if namespaces&(1<<ns) != 0 && len(s.Attrs[ns]) > 0 {
			n++
		}
	}
	for _, nonzero := range [...]bool{s.Modified != 0, s.IdleTimeout != 0, s.HardTimeout != 0,
		!s.FirstDevice.IsZero(), !s.Device.IsZero()} {
		if nonzero {
			n++
		}
	}
	return n, fields
}

// AppendSession appends the CBOR encoding of s to dst.
func AppendSession(dst []byte, s *Session) []byte {
	return AppendSessionView(dst, s, AllNamespaces)
}

// AppendSessionView appends the CBOR encoding of s with only the namespaces
// whose bits (1<<Namespace) are set in namespaces.
func AppendSessionView(dst []byte, s *Session, namespaces uint8) []byte {
	return AppendForwardView(dst, s, namespaces, nil)
}

// AppendForwardView appends the view of s the edge forwards upstream: the
// session with only the namespaces whose bits (1<<Namespace) are set, plus
// the edge's segment of it (key 19), so an app reads the segment from the
// signed context instead of recomputing it with the edge's configuration.
func AppendForwardView(dst []byte, s *Session, namespaces uint8, segment []byte) []byte {
	n, fields := sessionEntries(s, namespaces)
	if len(segment) > 0 {
		n++
	}
	dst = appendHead(dst, majMap, n)
	dst = appendBytes(appendUint(dst, sessID), s.ID[:])
	dst = appendNonZero(dst, sessKind, uint64(s.Kind))
	dst = appendNonZero(dst, sessGeneration, uint64(s.Generation))
	dst = appendNonZero(dst, sessVersion, s.Version)
	dst = appendNonZeroInt(dst, sessCreated, s.Created)
	dst = appendNonZeroInt(dst, sessLastSeen, s.LastSeen)
	dst = appendNonZeroInt(dst, sessIdle, s.IdleDeadline)
	dst = appendNonZeroInt(dst, sessHard, s.HardDeadline)
	dst = appendNonZero(dst, sessEnded, uint64(s.Ended))
	if fields > 0 {
		dst = appendHead(appendUint(dst, sessFields), majMap, fields)
		for f, v := range s.Fields {
			if !v.IsZero() {
				dst = AppendValue(appendUint(dst, uint64(f)), v)
			}
		}
	}
	for ns, as := range s.Attrs {
		if namespaces&(1<<ns) != 0 && len(as) > 0 {
			dst = appendAttrs(appendUint(dst, uint64(sessCustom+ns)), as)
		}
	}
	dst = appendNonZeroInt(dst, sessModified, s.Modified)
	dst = appendNonZeroInt(dst, sessIdleTimeout, s.IdleTimeout)
	dst = appendNonZeroInt(dst, sessHardTimeout, s.HardTimeout)
	if !s.FirstDevice.IsZero() {
		dst = appendDevice(appendUint(dst, sessFirstDevice), s.FirstDevice)
	}
	if !s.Device.IsZero() {
		dst = appendDevice(appendUint(dst, sessDevice), s.Device)
	}
	if len(segment) > 0 {
		dst = appendUint(dst, viewSegment)
		dst = appendHead(dst, majText, uint64(len(segment)))
		dst = append(dst, segment...)
	}
	return dst
}

// appendDevice appends a device as the array [userAgent, addr, site].
func appendDevice(dst []byte, dev Device) []byte {
	dst = appendHead(dst, majArray, 3)
	return appendText(appendText(appendText(dst, dev.UserAgent), dev.Addr), dev.Site)
}

func appendNonZero(dst []byte, key, v uint64) []byte {
	if v == 0 {
		return dst
	}
	return appendUint(appendUint(dst, key), v)
}

func appendNonZeroInt(dst []byte, key uint64, v int64) []byte {
	if v == 0 {
		return dst
	}
	return appendInt(appendUint(dst, key), v)
}

var sizeBufs pool[[]byte]

// SessionSize returns the length of s's CBOR encoding.
func SessionSize(s *Session) int {
	bp := sizeBufs.get()
	b := AppendSession((*bp)[:0], s)
	n := len(b)
	*bp = b
	sizeBufs.put(bp)
	return n
}

// DecodeSession decodes a session that fills b into s, replacing its
// content, holding it only to the structural bounds: for sessions read back
// from a store. Sessions from another party go through DecodeSessionLimits.
func DecodeSession(b []byte, s *Session) error { return DecodeSessionLimits(b, s, nil) }

// DecodeSessionLimits decodes a session that fills b into s, replacing its
// content, and refuses it at the first head that passes a limit of lim: more
// than MaxAttrs attributes over all namespaces or in any map, and the value
// limits of DecodeValueLimits, with each attribute's value held to MaxDepth.
// A nil lim applies only the structural bounds. Errors are *FieldError
// naming the field ("kind", "currency", "custom.color", "session" for the
// whole) and wrap ErrCBOR.
func DecodeSessionLimits(b []byte, s *Session, lim *Limits) error {
	d := newDecoder(b, "session", lim)
	*s = Session{}
	if err := d.session(s, nil); err != nil {
		return err
	}
	return d.end()
}

// DecodeForwardView decodes a view the edge forwarded (AppendForwardView)
// into s and returns its segment ("" when the view has none), with the
// limits of DecodeSessionLimits.
func DecodeForwardView(b []byte, s *Session, lim *Limits) (segment string, err error) {
	d := newDecoder(b, "context", lim)
	*s = Session{}
	if err := d.session(s, &segment); err != nil {
		return "", err
	}
	return segment, d.end()
}

// sessionNames names the session map's keys in errors.
var sessionNames = [...]string{sessID: "id", sessKind: "kind", sessGeneration: "generation", sessVersion: "version",
	sessCreated: "created", sessLastSeen: "lastSeen", sessIdle: "idleDeadline", sessHard: "hardDeadline",
	sessEnded: "ended", sessFields: "fields", sessCustom: "custom", sessPrivacy: "privacy", sessPublic: "public",
	sessModified: "modified", sessIdleTimeout: "idleTimeout", sessHardTimeout: "hardTimeout",
	sessFirstDevice: "firstDevice", sessDevice: "device", viewSegment: "segment"}

// session decodes a session map; with segment set it also reads a
// forwarded view's segment, which a stored session never has.
func (d *decoder) session(s *Session, segment *string) error {
	sawID := false
	err := d.mapKeys(sessionNames[:], func(key uint64) (bool, error) {
		var err error
		switch key {
		case sessID:
			err = d.id(&s.ID)
			sawID = true
		case sessKind:
			var k uint8
			k, err = d.small(uint64(KindShared))
			s.Kind = Kind(k)
		case sessGeneration:
			s.Generation, err = d.uint32()
		case sessVersion:
			s.Version, err = d.uint()
		case sessCreated:
			s.Created, err = d.int()
		case sessLastSeen:
			s.LastSeen, err = d.int()
		case sessIdle:
			s.IdleDeadline, err = d.int()
		case sessHard:
			s.HardDeadline, err = d.int()
		case sessEnded:
			var r uint8
			r, err = d.small(uint64(maxEndReason))
			s.Ended = EndReason(r)
		case sessFields:
			err = d.fields(s)
		case sessCustom, sessPrivacy, sessPublic:
			err = d.namespace(&s.Attrs[key-sessCustom])
		case sessModified:
			s.Modified, err = d.int()
		case sessIdleTimeout:
			s.IdleTimeout, err = d.int()
		case sessHardTimeout:
			s.HardTimeout, err = d.int()
		case sessFirstDevice:
			err = d.device(&s.FirstDevice)
		case sessDevice:
			err = d.device(&s.Device)
		case viewSegment:
			if segment == nil {
				return false, nil
			}
			*segment, err = d.text(64)
		default:
			return false, nil
		}
		return true, err
	})
	if err == nil && !sawID {
		return d.failWith(ErrCBORType, "session without id")
	}
	return err
}

// namespace decodes the attributes of one namespace, counting them against
// the attributes the session may still hold.
func (d *decoder) namespace(as *Attrs) error {
	start := d.off
	n, err := d.expect(majMap)
	if err != nil {
		return err
	}
	if n > uint64(d.attrsLeft) {
		return d.tooLarge("the session holds more than " + itoa(d.maxKeys) + " attributes")
	}
	d.attrsLeft -= int(n)
	d.off = start
	if err := d.enter(); err != nil {
		return err
	}
	*as, err = d.attrs(0)
	d.leave()
	return err
}

// device decodes the array [userAgent, addr, site].
func (d *decoder) device(dev *Device) error {
	n, err := d.count(majArray, 1, 3, "items")
	if err != nil {
		return err
	}
	if n != 3 {
		return d.fail(ErrCBORType)
	}
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	for i, f := range [...]*string{&dev.UserAgent, &dev.Addr, &dev.Site} {
		d.pushIndex(i)
		if *f, err = d.text(MaxDeviceText); err != nil {
			return err
		}
		d.pop()
	}
	return nil
}

func (d *decoder) fields(s *Session) error {
	return d.mapKeys(fieldNames[:], func(key uint64) (bool, error) {
		if key >= NumFields {
			return false, nil
		}
		v, err := d.value(0)
		s.Fields[key] = v
		return true, err
	})
}

func (d *decoder) id(id *ID) error {
	b, err := d.bytes()
	if err != nil {
		return err
	}
	if len(b) != IDLen {
		return d.fail(ErrCBORType)
	}
	copy(id[:], b)
	return nil
}

// AppendDelta appends the CBOR encoding of dl to dst.
func AppendDelta(dst []byte, dl *Delta) []byte {
	n := uint64(3) // id, version, ops
	if dl.BaseVersion != 0 {
		n++
	}
	if dl.At != 0 {
		n++
	}
	dst = appendHead(dst, majMap, n)
	dst = appendBytes(appendUint(dst, deltaID), dl.ID[:])
	dst = appendNonZero(dst, deltaBase, dl.BaseVersion)
	dst = appendUint(appendUint(dst, deltaVersion), dl.Version)
	dst = appendNonZeroInt(dst, deltaAt, dl.At)
	dst = appendHead(appendUint(dst, deltaOps), majArray, uint64(len(dl.Ops)))
	for i := range dl.Ops {
		dst = appendOp(dst, &dl.Ops[i])
	}
	return dst
}

func appendOp(dst []byte, op *Op) []byte {
	switch op.Code {
	case OpStart:
		dst = appendUint(appendHead(dst, majArray, 5), uint64(op.Code))
		dst = appendUint(appendUint(dst, uint64(op.Kind)), uint64(op.Generation))
		return appendInt(appendInt(dst, op.Idle), op.Hard)
	case OpSetField:
		dst = appendUint(appendHead(dst, majArray, 3), uint64(op.Code))
		return AppendValue(appendUint(dst, uint64(op.Field)), op.Value)
	case OpSetAttr:
		dst = appendUint(appendHead(dst, majArray, 4), uint64(op.Code))
		return AppendValue(appendText(appendUint(dst, uint64(op.NS)), op.Key), op.Value)
	case OpDeleteAttr:
		dst = appendUint(appendHead(dst, majArray, 3), uint64(op.Code))
		return appendText(appendUint(dst, uint64(op.NS)), op.Key)
	case OpClearNamespace:
		dst = appendUint(appendHead(dst, majArray, 2), uint64(op.Code))
		return appendUint(dst, uint64(op.NS))
	case OpLogin:
		dst = appendUint(appendHead(dst, majArray, 5), uint64(op.Code))
		dst = appendUint(appendText(dst, op.CustomerID), uint64(op.Generation))
		return appendInt(appendInt(dst, op.Idle), op.Hard)
	case OpLogout:
		dst = appendUint(appendHead(dst, majArray, 4), uint64(op.Code))
		dst = appendUint(dst, uint64(op.Generation))
		return appendInt(appendInt(dst, op.Idle), op.Hard)
	case OpTouch:
		dst = appendUint(appendHead(dst, majArray, 2), uint64(op.Code))
		return appendInt(dst, op.Idle)
	case OpEnd:
		dst = appendUint(appendHead(dst, majArray, 2), uint64(op.Code))
		return appendUint(dst, uint64(op.Reason))
	case OpLifetime:
		dst = appendUint(appendHead(dst, majArray, 3), uint64(op.Code))
		return appendInt(appendInt(dst, op.Idle), op.Hard)
	case OpDevice:
		dst = appendUint(appendHead(dst, majArray, 4), uint64(op.Code))
		return appendText(appendText(appendText(dst, op.Device.UserAgent), op.Device.Addr), op.Device.Site)
	}
	// Unknown codes are a programmer error upstream; encode just the code so
	// the decoder names it.
	return appendUint(appendHead(dst, majArray, 1), uint64(op.Code))
}

// opArity is the array length of each op code, code included.
var opArity = [...]int{OpStart: 5, OpSetField: 3, OpSetAttr: 4, OpDeleteAttr: 3, OpClearNamespace: 2,
	OpLogin: 5, OpLogout: 4, OpTouch: 2, OpEnd: 2, OpLifetime: 3, OpDevice: 4}

// DecodeDelta decodes a delta that fills b into dl, holding it only to the
// structural bounds: for deltas read back from a store. Deltas from another
// party go through DecodeDeltaLimits.
func DecodeDelta(b []byte, dl *Delta) error { return DecodeDeltaLimits(b, dl, nil) }

// DecodeDeltaLimits decodes a delta that fills b into dl and refuses it at
// the first head that passes a limit of lim: more than lim.MaxOps() ops, an
// attribute key longer than MaxKeyLen, a customer id longer than MaxTextLen,
// and the limits of DecodeValueLimits for each op's value, held to MaxDepth.
// A nil lim applies only the structural bounds. Errors are *FieldError
// naming the path ("ops[2].value.list[3]", "delta" for the whole) and wrap
// ErrCBOR.
func DecodeDeltaLimits(b []byte, dl *Delta, lim *Limits) error {
	d := newDecoder(b, "delta", lim)
	if err := d.delta(dl); err != nil {
		return err
	}
	return d.end()
}

var deltaNames = [...]string{deltaID: "id", deltaBase: "base", deltaVersion: "version", deltaAt: "at", deltaOps: "ops"}

func (d *decoder) delta(dl *Delta) error {
	*dl = Delta{}
	var saw [deltaOps + 1]bool
	err := d.mapKeys(deltaNames[:], func(key uint64) (bool, error) {
		var err error
		switch key {
		case deltaID:
			err = d.id(&dl.ID)
		case deltaBase:
			dl.BaseVersion, err = d.uint()
		case deltaVersion:
			dl.Version, err = d.uint()
		case deltaAt:
			dl.At, err = d.int()
		case deltaOps:
			err = d.ops(dl)
		default:
			return false, nil
		}
		saw[key] = true
		return true, err
	})
	if err == nil && !(saw[deltaID] && saw[deltaVersion] && saw[deltaOps]) {
		return d.failWith(ErrCBORType, "delta without id, version or ops")
	}
	return err
}

func (d *decoder) ops(dl *Delta) error {
	n, err := d.count(majArray, 3, d.maxOps, "ops")
	if err != nil {
		return err
	}
	if err := d.enter(); err != nil {
		return err
	}
	dl.Ops = make([]Op, n)
	for i := range dl.Ops {
		d.pushIndex(i)
		if err := d.op(&dl.Ops[i]); err != nil {
			return err
		}
		d.pop()
	}
	d.leave()
	return nil
}

func (d *decoder) op(op *Op) error {
	n, err := d.count(majArray, 1, unlimited, "items")
	if err != nil {
		return err
	}
	if n == 0 {
		return d.fail(ErrCBORType)
	}
	d.push("code")
	code, err := d.uint()
	if err != nil {
		return err
	}
	if code == 0 || code >= uint64(len(opArity)) {
		return d.fail(ErrCBORUnknownOpcode)
	}
	op.Code = OpCode(code)
	if n != opArity[code] {
		return d.fail(ErrCBORType)
	}
	if err := d.enter(); err != nil {
		return err
	}
	defer d.leave()
	var k, f, ns, r uint8
	switch op.Code {
	case OpStart:
		d.name("kind")
		if k, err = d.small(uint64(KindShared)); err == nil {
			op.Kind = Kind(k)
			d.name("generation")
			if op.Generation, err = d.uint32(); err == nil {
				err = d.deadlines(op)
			}
		}
	case OpSetField:
		d.name("field")
		if f, err = d.small(NumFields - 1); err == nil {
			op.Field = Field(f)
			d.name("value")
			op.Value, err = d.value(0)
		}
	case OpSetAttr, OpDeleteAttr:
		d.name("namespace")
		if ns, err = d.small(NumNamespaces - 1); err == nil {
			op.NS = Namespace(ns)
			d.name("key")
			var key []byte
			if key, err = d.rawText(d.maxKey, "key"); err == nil {
				op.Key = string(key)
				if op.Code == OpSetAttr {
					d.name("value")
					op.Value, err = d.value(0)
				}
			}
		}
	case OpClearNamespace:
		d.name("namespace")
		ns, err = d.small(NumNamespaces - 1)
		op.NS = Namespace(ns)
	case OpLogin:
		d.name("customerId")
		if op.CustomerID, err = d.text(d.maxText); err == nil {
			d.name("generation")
			if op.Generation, err = d.uint32(); err == nil {
				err = d.deadlines(op)
			}
		}
	case OpLogout:
		d.name("generation")
		if op.Generation, err = d.uint32(); err == nil {
			err = d.deadlines(op)
		}
	case OpTouch:
		d.name("idle")
		op.Idle, err = d.int()
	case OpEnd:
		d.name("reason")
		r, err = d.small(uint64(maxEndReason))
		op.Reason = EndReason(r)
	case OpLifetime:
		err = d.deadlines(op)
	case OpDevice:
		for _, f := range [...]struct {
			name string
			v    *string
		}{{"userAgent", &op.Device.UserAgent}, {"addr", &op.Device.Addr}, {"site", &op.Device.Site}} {
			d.name(f.name)
			if *f.v, err = d.text(MaxDeviceText); err != nil {
				break
			}
		}
	}
	if err == nil {
		d.pop()
	}
	return err
}

func (d *decoder) deadlines(op *Op) (err error) {
	d.name("idle")
	if op.Idle, err = d.int(); err == nil {
		d.name("hard")
		op.Hard, err = d.int()
	}
	return err
}

// AppendBatch appends the CBOR encoding of bt to dst.
func AppendBatch(dst []byte, bt *Batch) []byte {
	n := uint64(2)
	if bt.Reset {
		n++
	}
	dst = appendHead(dst, majMap, n)
	dst = appendText(appendUint(dst, batchCursor), bt.Cursor)
	dst = appendHead(appendUint(dst, batchDeltas), majArray, uint64(len(bt.Deltas)))
	for i := range bt.Deltas {
		dst = AppendDelta(dst, &bt.Deltas[i])
	}
	if bt.Reset {
		dst = appendBool(appendUint(dst, batchReset), true)
	}
	return dst
}

// DecodeBatch decodes a batch that fills b into bt, holding it only to the
// structural bounds. A batch from the origin goes through DecodeBatchLimits.
func DecodeBatch(b []byte, bt *Batch) error { return DecodeBatchLimits(b, bt, nil) }

// DecodeBatchLimits decodes a batch that fills b into bt and refuses it at
// the first head that passes a limit of lim: more than MaxBatch deltas, and
// the limits of DecodeDeltaLimits for each delta. A nil lim applies only the
// structural bounds. Errors are *FieldError naming the path
// ("deltas[4].ops[0].value", "batch" for the whole) and wrap ErrCBOR.
func DecodeBatchLimits(b []byte, bt *Batch, lim *Limits) error {
	d := newDecoder(b, "batch", lim)
	*bt = Batch{}
	err := d.mapKeys(batchNames[:], func(key uint64) (bool, error) {
		var err error
		switch key {
		case batchCursor:
			bt.Cursor, err = d.text(unlimited)
		case batchDeltas:
			var n int
			if n, err = d.count(majArray, 8, d.maxBatch, "deltas"); err != nil {
				return true, err
			}
			if err = d.enter(); err != nil {
				return true, err
			}
			bt.Deltas = make([]Delta, n)
			for i := range bt.Deltas {
				d.pushIndex(i)
				if err = d.delta(&bt.Deltas[i]); err != nil {
					return true, err
				}
				d.pop()
			}
			d.leave()
		case batchReset:
			start := d.off
			m, arg, herr := d.head()
			if herr != nil {
				return true, herr
			}
			if m != majSimple || (arg != simpleTrue&0x1f && arg != simpleFalse&0x1f) {
				d.off = start
				return true, d.fail(ErrCBORType)
			}
			bt.Reset = arg == simpleTrue&0x1f
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return err
	}
	return d.end()
}

var batchNames = [...]string{batchCursor: "cursor", batchDeltas: "deltas", batchReset: "reset"}

// AppendTouches appends the CBOR encoding of an activity report to dst.
func AppendTouches(dst []byte, ts []Touch) []byte {
	dst = appendHead(appendUint(appendHead(dst, majMap, 1), touchesList), majArray, uint64(len(ts)))
	for i := range ts {
		t := &ts[i]
		extended := !t.Device.IsZero() || len(t.Init) > 0
		n := uint64(6)
		if extended {
			n = 8
		}
		dst = appendBytes(appendHead(dst, majArray, n), t.ID[:])
		dst = appendUint(appendUint(dst, uint64(t.Kind)), uint64(t.Generation))
		dst = appendInt(appendInt(appendInt(dst, t.LastSeen), t.IdleDeadline), t.HardDeadline)
		if extended {
			dst = appendDevice(dst, t.Device)
			dst = appendHead(dst, majArray, uint64(len(t.Init)))
			for j := range t.Init {
				dst = appendOp(dst, &t.Init[j])
			}
		}
	}
	return dst
}

// DecodeTouches decodes an activity report that fills b, appending to ts,
// holding it only to the structural bounds. A report from an edge goes
// through DecodeTouchesLimits.
func DecodeTouches(b []byte, ts []Touch) ([]Touch, error) { return DecodeTouchesLimits(b, ts, nil) }

// DecodeTouchesLimits decodes an activity report that fills b, appending to
// ts, and refuses a report of more than MaxBatch sessions before decoding
// any. A nil lim applies only the structural bounds. Errors are *FieldError
// naming the path ("touches[3].kind") and wrap ErrCBOR.
func DecodeTouchesLimits(b []byte, ts []Touch, lim *Limits) ([]Touch, error) {
	d := newDecoder(b, "report", lim)
	err := d.mapKeys([]string{touchesList: "touches"}, func(key uint64) (bool, error) {
		if key != touchesList {
			return false, nil
		}
		n, err := d.count(majArray, 20, d.maxBatch, "sessions")
		if err != nil {
			return true, err
		}
		ts = slices.Grow(ts, n)
		for i := 0; i < n && err == nil; i++ {
			var t Touch
			d.pushIndex(i)
			if err = d.touch(&t); err == nil {
				ts = append(ts, t)
				d.pop()
			}
		}
		return true, err
	})
	if err != nil {
		return ts, err
	}
	return ts, d.end()
}

func (d *decoder) touch(t *Touch) error {
	n, err := d.count(majArray, 1, unlimited, "items")
	if err != nil {
		return err
	}
	if n != 6 && n != 8 {
		return d.fail(ErrCBORType)
	}
	d.push("id")
	if err := d.id(&t.ID); err != nil {
		return err
	}
	d.name("kind")
	k, err := d.small(uint64(KindShared))
	if err != nil {
		return err
	}
	t.Kind = Kind(k)
	d.name("generation")
	if t.Generation, err = d.uint32(); err != nil {
		return err
	}
	d.name("lastSeen")
	if t.LastSeen, err = d.int(); err != nil {
		return err
	}
	d.name("idle")
	if t.IdleDeadline, err = d.int(); err != nil {
		return err
	}
	d.name("hard")
	if t.HardDeadline, err = d.int(); err != nil {
		return err
	}
	if n == 8 {
		d.name("device")
		if err := d.device(&t.Device); err != nil {
			return err
		}
		d.name("init")
		m, err := d.count(majArray, 3, d.maxOps, "ops")
		if err != nil {
			return err
		}
		if err := d.enter(); err != nil {
			return err
		}
		if m > 0 {
			t.Init = make([]Op, m)
		}
		for i := range t.Init {
			d.pushIndex(i)
			if err := d.op(&t.Init[i]); err != nil {
				return err
			}
			d.pop()
		}
		d.leave()
	}
	d.pop()
	return nil
}
