package wire

import (
	"math"
	"sync"
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

// DecodeValue decodes one value that fills b.
func DecodeValue(b []byte) (Value, error) {
	d := decoder{b: b}
	v, err := d.value("value")
	if err != nil {
		return Value{}, err
	}
	return v, d.end("value")
}

func (d *decoder) value(what string) (Value, error) {
	start := d.off
	m, arg, err := d.head(what)
	if err != nil {
		return Value{}, err
	}
	switch m {
	case majUint, majNint:
		d.off = start
		i, err := d.int(what)
		return Int(i), err
	case majText:
		d.off = start
		s, err := d.text(what)
		return Text(s), err
	case majArray:
		d.off = start
		n, err := d.count(majArray, 1, what)
		if err != nil {
			return Value{}, err
		}
		if err := d.enter(what); err != nil {
			return Value{}, err
		}
		list := make([]Value, n)
		for i := range list {
			if list[i], err = d.value(what); err != nil {
				return Value{}, err
			}
		}
		d.leave()
		return Value{Type: TypeList, List: list}, nil
	case majMap:
		d.off = start
		if err := d.enter(what); err != nil {
			return Value{}, err
		}
		as, err := d.attrs(what)
		d.leave()
		return Value{Type: TypeMap, Map: as}, err
	case majTag:
		return d.tagged(arg, what)
	case majSimple:
		switch {
		case arg == simpleFalse&0x1f:
			return Bool(false), nil
		case arg == simpleTrue&0x1f:
			return Bool(true), nil
		case arg == simpleNull&0x1f: // "no value": unsets a field in setField
			return Value{}, nil
		case arg >= 25 && arg <= 27:
			f, err := d.float(arg, what)
			return Float(f), err
		}
	}
	d.off = start
	return Value{}, d.fail(ErrCBORType, what)
}

func (d *decoder) tagged(tag uint64, what string) (Value, error) {
	switch tag {
	case tagEpochTime:
		start := d.off
		m, arg, err := d.head(what)
		if err != nil {
			return Value{}, err
		}
		if m == majSimple && arg >= 25 && arg <= 27 {
			f, err := d.float(arg, what)
			if err != nil {
				return Value{}, err
			}
			ms := math.Round(f * 1000)
			if !(ms >= -(1<<53) && ms <= 1<<53) {
				return Value{}, d.fail(ErrCBOROutOfRange, what)
			}
			return Time(int64(ms)), nil
		}
		d.off = start
		secs, err := d.int(what)
		if err != nil {
			return Value{}, err
		}
		if secs > math.MaxInt64/1000 || secs < math.MinInt64/1000 {
			return Value{}, d.fail(ErrCBOROutOfRange, what)
		}
		return Time(secs * 1000), nil
	case tagDecimal:
		n, err := d.count(majArray, 1, what)
		if err != nil {
			return Value{}, err
		}
		if n != 2 {
			return Value{}, d.fail(ErrCBORType, what)
		}
		exp, err := d.int(what)
		if err != nil {
			return Value{}, err
		}
		if exp < -MaxDecimalExp || exp > MaxDecimalExp {
			return Value{}, d.fail(ErrCBOROutOfRange, what)
		}
		coef, err := d.int(what)
		return Decimal(coef, int32(exp)), err
	}
	return Value{}, d.fail(ErrCBORType, what)
}

// attrs decodes a map of text keys in deterministic order.
func (d *decoder) attrs(what string) (Attrs, error) {
	n, err := d.count(majMap, 2, what)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	as := make(Attrs, n)
	for i := range as {
		key, err := d.rawText(what)
		if err != nil {
			return nil, err
		}
		if i > 0 && !keyLessBytes(as[i-1].Key, key) {
			return nil, d.fail(ErrCBORUnsortedKeys, what)
		}
		as[i].Key = string(key)
		if as[i].Value, err = d.value(what); err != nil {
			return nil, err
		}
	}
	return as, nil
}

func keyLessBytes(a string, b []byte) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < string(b)
}

// mapKeys walks a map of ascending unsigned keys, calling fn for each key;
// fn decodes the value or returns false to have it skipped.
func (d *decoder) mapKeys(what string, fn func(key uint64) (bool, error)) error {
	n, err := d.count(majMap, 2, what)
	if err != nil {
		return err
	}
	if err := d.enter(what); err != nil {
		return err
	}
	var prev uint64
	for i := 0; i < n; i++ {
		key, err := d.uint(what)
		if err != nil {
			return err
		}
		if i > 0 && key <= prev {
			return d.fail(ErrCBORUnsortedKeys, what)
		}
		prev = key
		handled, err := fn(key)
		if err != nil {
			return err
		}
		if !handled {
			if err := d.skip(what); err != nil {
				return err
			}
		}
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
	return n, fields
}

// AppendSession appends the CBOR encoding of s to dst.
func AppendSession(dst []byte, s *Session) []byte {
	return AppendSessionView(dst, s, AllNamespaces)
}

// AppendSessionView appends the CBOR encoding of s with only the namespaces
// whose bits (1<<Namespace) are set in namespaces: the view the edge forwards.
func AppendSessionView(dst []byte, s *Session, namespaces uint8) []byte {
	n, fields := sessionEntries(s, namespaces)
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
	return dst
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

var sizeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// SessionSize returns the length of s's CBOR encoding.
func SessionSize(s *Session) int {
	bp := sizeBufs.Get().(*[]byte)
	b := AppendSession((*bp)[:0], s)
	n := len(b)
	*bp = b
	sizeBufs.Put(bp)
	return n
}

// DecodeSession decodes a session that fills b into s, replacing its content.
func DecodeSession(b []byte, s *Session) error {
	d := decoder{b: b}
	*s = Session{}
	if err := d.session(s); err != nil {
		return err
	}
	return d.end("session")
}

func (d *decoder) session(s *Session) error {
	sawID := false
	err := d.mapKeys("session", func(key uint64) (bool, error) {
		var err error
		switch key {
		case sessID:
			err = d.id(&s.ID, "session id")
			sawID = true
		case sessKind:
			var k uint8
			k, err = d.small("session kind", uint64(KindShared))
			s.Kind = Kind(k)
		case sessGeneration:
			s.Generation, err = d.uint32("session generation")
		case sessVersion:
			s.Version, err = d.uint("session version")
		case sessCreated:
			s.Created, err = d.int("session created")
		case sessLastSeen:
			s.LastSeen, err = d.int("session lastSeen")
		case sessIdle:
			s.IdleDeadline, err = d.int("session idleDeadline")
		case sessHard:
			s.HardDeadline, err = d.int("session hardDeadline")
		case sessEnded:
			var r uint8
			r, err = d.small("session ended", uint64(EndRevoked))
			s.Ended = EndReason(r)
		case sessFields:
			err = d.fields(s)
		case sessCustom, sessPrivacy, sessPublic:
			if err = d.enter("session attributes"); err == nil {
				s.Attrs[key-sessCustom], err = d.attrs("session attributes")
				d.leave()
			}
		default:
			return false, nil
		}
		return true, err
	})
	if err == nil && !sawID {
		return d.fail(ErrCBORType, "session without id")
	}
	return err
}

func (d *decoder) fields(s *Session) error {
	return d.mapKeys("session fields", func(key uint64) (bool, error) {
		if key >= NumFields {
			return false, nil
		}
		v, err := d.value("session field")
		s.Fields[key] = v
		return true, err
	})
}

func (d *decoder) id(id *ID, what string) error {
	b, err := d.bytes(what)
	if err != nil {
		return err
	}
	if len(b) != IDLen {
		return d.fail(ErrCBORType, what)
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
	}
	// Unknown codes are a programmer error upstream; encode just the code so
	// the decoder names it.
	return appendUint(appendHead(dst, majArray, 1), uint64(op.Code))
}

// opArity is the array length of each op code, code included.
var opArity = [...]int{OpStart: 5, OpSetField: 3, OpSetAttr: 4, OpDeleteAttr: 3, OpClearNamespace: 2,
	OpLogin: 5, OpLogout: 4, OpTouch: 2, OpEnd: 2}

// DecodeDelta decodes a delta that fills b into dl.
func DecodeDelta(b []byte, dl *Delta) error {
	d := decoder{b: b}
	if err := d.delta(dl); err != nil {
		return err
	}
	return d.end("delta")
}

func (d *decoder) delta(dl *Delta) error {
	*dl = Delta{}
	var saw [deltaOps + 1]bool
	err := d.mapKeys("delta", func(key uint64) (bool, error) {
		var err error
		switch key {
		case deltaID:
			err = d.id(&dl.ID, "delta id")
		case deltaBase:
			dl.BaseVersion, err = d.uint("delta base")
		case deltaVersion:
			dl.Version, err = d.uint("delta version")
		case deltaAt:
			dl.At, err = d.int("delta at")
		case deltaOps:
			err = d.ops(dl)
		default:
			return false, nil
		}
		saw[key] = true
		return true, err
	})
	if err == nil && !(saw[deltaID] && saw[deltaVersion] && saw[deltaOps]) {
		return d.fail(ErrCBORType, "delta without id, version or ops")
	}
	return err
}

func (d *decoder) ops(dl *Delta) error {
	n, err := d.count(majArray, 3, "delta ops")
	if err != nil {
		return err
	}
	if err := d.enter("delta ops"); err != nil {
		return err
	}
	dl.Ops = make([]Op, n)
	for i := range dl.Ops {
		if err := d.op(&dl.Ops[i]); err != nil {
			return err
		}
	}
	d.leave()
	return nil
}

func (d *decoder) op(op *Op) error {
	n, err := d.count(majArray, 1, "op")
	if err != nil {
		return err
	}
	if n == 0 {
		return d.fail(ErrCBORType, "op")
	}
	code, err := d.uint("op code")
	if err != nil {
		return err
	}
	if code == 0 || code >= uint64(len(opArity)) {
		return d.fail(ErrCBORUnknownOpcode, "op code")
	}
	op.Code = OpCode(code)
	if n != opArity[code] {
		return d.fail(ErrCBORType, "op "+op.Code.String()+" arity")
	}
	if err := d.enter("op"); err != nil {
		return err
	}
	defer d.leave()
	var k, f, ns, r uint8
	switch op.Code {
	case OpStart:
		if k, err = d.small("start kind", uint64(KindShared)); err == nil {
			op.Kind = Kind(k)
			if op.Generation, err = d.uint32("start generation"); err == nil {
				err = d.deadlines(op)
			}
		}
	case OpSetField:
		if f, err = d.small("setField field", NumFields-1); err == nil {
			op.Field = Field(f)
			op.Value, err = d.value("setField value")
		}
	case OpSetAttr, OpDeleteAttr:
		if ns, err = d.small("attr namespace", NumNamespaces-1); err == nil {
			op.NS = Namespace(ns)
			if op.Key, err = d.text("attr key"); err == nil && op.Code == OpSetAttr {
				op.Value, err = d.value("setAttr value")
			}
		}
	case OpClearNamespace:
		ns, err = d.small("clearNamespace namespace", NumNamespaces-1)
		op.NS = Namespace(ns)
	case OpLogin:
		if op.CustomerID, err = d.text("login customerId"); err == nil {
			if op.Generation, err = d.uint32("login generation"); err == nil {
				err = d.deadlines(op)
			}
		}
	case OpLogout:
		if op.Generation, err = d.uint32("logout generation"); err == nil {
			err = d.deadlines(op)
		}
	case OpTouch:
		op.Idle, err = d.int("touch idle")
	case OpEnd:
		r, err = d.small("end reason", uint64(EndRevoked))
		op.Reason = EndReason(r)
	}
	return err
}

func (d *decoder) deadlines(op *Op) (err error) {
	if op.Idle, err = d.int("idle deadline"); err == nil {
		op.Hard, err = d.int("hard deadline")
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

// DecodeBatch decodes a batch that fills b into bt.
func DecodeBatch(b []byte, bt *Batch) error {
	d := decoder{b: b}
	*bt = Batch{}
	err := d.mapKeys("batch", func(key uint64) (bool, error) {
		var err error
		switch key {
		case batchCursor:
			bt.Cursor, err = d.text("batch cursor")
		case batchDeltas:
			var n int
			if n, err = d.count(majArray, 8, "batch deltas"); err != nil {
				return true, err
			}
			if err = d.enter("batch deltas"); err != nil {
				return true, err
			}
			bt.Deltas = make([]Delta, n)
			for i := range bt.Deltas {
				if err = d.delta(&bt.Deltas[i]); err != nil {
					return true, err
				}
			}
			d.leave()
		case batchReset:
			start := d.off
			m, arg, herr := d.head("batch reset")
			if herr != nil {
				return true, herr
			}
			if m != majSimple || (arg != simpleTrue&0x1f && arg != simpleFalse&0x1f) {
				d.off = start
				return true, d.fail(ErrCBORType, "batch reset")
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
	return d.end("batch")
}

// AppendTouches appends the CBOR encoding of an activity report to dst.
func AppendTouches(dst []byte, ts []Touch) []byte {
	dst = appendHead(appendUint(appendHead(dst, majMap, 1), touchesList), majArray, uint64(len(ts)))
	for i := range ts {
		t := &ts[i]
		dst = appendBytes(appendHead(dst, majArray, 6), t.ID[:])
		dst = appendUint(appendUint(dst, uint64(t.Kind)), uint64(t.Generation))
		dst = appendInt(appendInt(appendInt(dst, t.LastSeen), t.IdleDeadline), t.HardDeadline)
	}
	return dst
}

// DecodeTouches decodes an activity report that fills b, appending to ts.
func DecodeTouches(b []byte, ts []Touch) ([]Touch, error) {
	d := decoder{b: b}
	err := d.mapKeys("touches", func(key uint64) (bool, error) {
		if key != touchesList {
			return false, nil
		}
		n, err := d.count(majArray, 20, "touches")
		for i := 0; i < n && err == nil; i++ {
			var t Touch
			if err = d.touch(&t); err == nil {
				ts = append(ts, t)
			}
		}
		return true, err
	})
	if err != nil {
		return ts, err
	}
	return ts, d.end("touches")
}

func (d *decoder) touch(t *Touch) error {
	n, err := d.count(majArray, 1, "touch")
	if err != nil {
		return err
	}
	if n != 6 {
		return d.fail(ErrCBORType, "touch arity")
	}
	if err := d.id(&t.ID, "touch id"); err != nil {
		return err
	}
	k, err := d.small("touch kind", uint64(KindShared))
	if err != nil {
		return err
	}
	t.Kind = Kind(k)
	if t.Generation, err = d.uint32("touch generation"); err != nil {
		return err
	}
	if t.LastSeen, err = d.int("touch lastSeen"); err != nil {
		return err
	}
	if t.IdleDeadline, err = d.int("touch idle"); err != nil {
		return err
	}
	t.HardDeadline, err = d.int("touch hard")
	return err
}
