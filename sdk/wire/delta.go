package wire

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// OpCode names an operation of a delta. The numbers are part of the CBOR
// encoding; never renumber.
type OpCode uint8

// The operations. docs/wire.md gives each one's arguments and meaning.
const (
	OpStart          OpCode = 1  // Kind, Generation, Idle, Hard: creates the session (first op of a version-0 delta)
	OpSetField       OpCode = 2  // Field, Value (the zero Value unsets the field)
	OpSetAttr        OpCode = 3  // NS, Key, Value
	OpDeleteAttr     OpCode = 4  // NS, Key
	OpClearNamespace OpCode = 5  // NS
	OpLogin          OpCode = 6  // CustomerID, Generation, Idle, Hard: kind customer
	OpLogout         OpCode = 7  // Generation, Idle, Hard: kind anonymous, privacy cleared
	OpTouch          OpCode = 8  // Idle: last seen = delta time, new idle deadline
	OpEnd            OpCode = 9  // Reason: the session becomes a tombstone, its context is dropped
	OpLifetime       OpCode = 10 // Idle, Hard as timeouts in ms (0: the kind's): the session's own lifetimes
	OpDevice         OpCode = 11 // Device: the client an edge saw (the first one is kept as well)
)

// String returns the op's name.
func (c OpCode) String() string {
	switch c {
	case OpStart:
		return "start"
	case OpSetField:
		return "setField"
	case OpSetAttr:
		return "setAttr"
	case OpDeleteAttr:
		return "deleteAttr"
	case OpClearNamespace:
		return "clearNamespace"
	case OpLogin:
		return "login"
	case OpLogout:
		return "logout"
	case OpTouch:
		return "touch"
	case OpEnd:
		return "end"
	case OpLifetime:
		return "lifetime"
	case OpDevice:
		return "device"
	}
	return "invalid"
}

// Op is one operation. Only the fields its Code names are meaningful (see
// the OpCode constants); the rest stay zero.
type Op struct {
	Code       OpCode
	Kind       Kind
	Field      Field
	NS         Namespace
	Key        string
	Value      Value
	CustomerID string
	Generation uint32
	Idle       int64 // idle deadline, Unix ms, 0 = none; OpLifetime: the idle timeout in ms
	Hard       int64 // hard deadline, Unix ms, 0 = none; OpLifetime: the hard timeout in ms
	Reason     EndReason
	Device     Device
}

// Delta is one atomic change of one session: it applies to the session at
// BaseVersion and produces Version (= BaseVersion + 1).
type Delta struct {
	ID          ID
	BaseVersion uint64
	Version     uint64
	At          int64 // when the change was made, Unix ms
	Ops         []Op
}

// Batch is one answer of the sync feed: the deltas after a cursor, in cursor
// order, and the cursor to ask from next. Reset means the asked cursor fell
// out of retention: the edge drops its whole cache and continues from Cursor.
type Batch struct {
	Cursor string
	Deltas []Delta
	Reset  bool
}

// Touch is an edge's report that a session was seen: it lets the origin
// learn of sessions the edge minted and expire idle sessions without a write
// per request. Times are Unix ms.
type Touch struct {
	ID           ID
	Kind         Kind
	Generation   uint32
	LastSeen     int64
	IdleDeadline int64
	HardDeadline int64
	// Device is the client the edge saw last; zero when unknown.
	Device Device
	// Init holds what the edge applied to a session it minted (site
	// defaults, captured attributes): the origin applies these ops only
	// when the report creates the session.
	Init []Op
}

// The errors of Apply besides *FieldError.
var (
	ErrVersionMismatch = errors.New("wire: delta base version does not match the session")
	ErrEnded           = errors.New("wire: session has ended")
	ErrBadDelta        = errors.New("wire: delta is malformed")
)

// Apply returns the session that results from applying d to s (nil for a
// session that does not exist yet), checked against lim. It never modifies
// s (a nil lim means DefaultLimits). The delta applies whole or not at all. A delta without ops only
// advances the version: the origin sends those to keys that may not see
// what changed.
//
// A session's hard deadline never grows: login and logout can only bring
// it closer, and every idle deadline is capped at it.
func Apply(s *Session, d *Delta, lim *Limits) (*Session, error) {
	if lim == nil {
		lim = &DefaultLimits
	}
	if d.Version != d.BaseVersion+1 {
		return nil, wrap(ErrBadDelta, "version "+utoa(d.Version)+" does not follow base "+utoa(d.BaseVersion))
	}
	var next *Session
	if s == nil {
		if d.BaseVersion != 0 {
			return nil, wrap(ErrVersionMismatch, "session unknown, delta has base "+utoa(d.BaseVersion))
		}
		if len(d.Ops) == 0 || d.Ops[0].Code != OpStart {
			return nil, wrap(ErrBadDelta, "a new session's first op must be start")
		}
		next = &Session{ID: d.ID}
	} else {
		if s.ID != d.ID {
			return nil, wrap(ErrBadDelta, "delta for "+d.ID.String()+" applied to "+s.ID.String())
		}
		if s.Ended != 0 {
			return nil, ErrEnded
		}
		if s.Version != d.BaseVersion {
			return nil, wrap(ErrVersionMismatch, "session at "+utoa(s.Version)+", delta base "+utoa(d.BaseVersion))
		}
		next = s.Clone()
	}
	var cs attrChanges
	cs.init()
	for i := range d.Ops {
		if err := applyOp(next, d, i, lim, &cs); err != nil {
			return nil, err
		}
	}
	cs.apply(next)
	next.Version = d.Version
	if modifies(d) {
		next.Modified = d.At
	}
	if next.Ended == 0 {
		if err := lim.ValidateSession(next); err != nil {
			return nil, err
		}
	}
	return next, nil
}

func applyOp(s *Session, d *Delta, i int, lim *Limits, cs *attrChanges) error {
	op := &d.Ops[i]
	if s.Ended != 0 {
		return wrap(ErrBadDelta, "op "+itoa(i)+" follows end")
	}
	switch op.Code {
	case OpStart:
		if i != 0 || d.BaseVersion != 0 {
			return wrap(ErrBadDelta, "start must be the first op of a version-0 delta")
		}
		if !op.Kind.Valid() {
			return invalid("kind", "unknown session kind")
		}
		s.Kind, s.Generation = op.Kind, op.Generation
		s.Created, s.LastSeen = d.At, d.At
		s.HardDeadline = op.Hard
		s.IdleDeadline = capIdle(op.Idle, s.HardDeadline)
	case OpSetField:
		if op.Field == FieldCustomerID {
			return invalid("customerId", "set only by login")
		}
		if op.Field >= NumFields {
			return invalid("field", "unknown well-known field")
		}
		if op.Value.IsZero() { // unset: the edge falls back to the site default
			s.Fields[op.Field] = Value{}
			return nil
		}
		if err := lim.ValidateField(op.Field, op.Value); err != nil {
			return err
		}
		s.Fields[op.Field] = op.Value
	case OpSetAttr:
		if op.NS >= NumNamespaces {
			return invalid("namespace", "unknown namespace")
		}
		field := op.NS.String() + "." + op.Key
		if err := lim.ValidateKey(field, op.Key); err != nil {
			return err
		}
		if err := lim.ValidateValue(field, op.Value); err != nil {
			return err
		}
		cs.add(op.NS, op.Key, op.Value)
	case OpDeleteAttr:
		if op.NS >= NumNamespaces {
			return invalid("namespace", "unknown namespace")
		}
		cs.add(op.NS, op.Key, Value{})
	case OpClearNamespace:
		if op.NS >= NumNamespaces {
			return invalid("namespace", "unknown namespace")
		}
		cs.clear(op.NS)
	case OpLogin:
		if s.Kind == KindShared {
			return invalid("kind", "a shared session cannot log in")
		}
		if op.CustomerID == "" {
			return invalid("customerId", "is empty")
		}
		if err := lim.ValidateValue("customerId", Text(op.CustomerID)); err != nil {
			return err
		}
		if op.Generation <= s.Generation {
			return invalid("generation", "login must raise the generation")
		}
		s.Kind, s.Generation = KindCustomer, op.Generation
		s.Fields[FieldCustomerID] = Text(op.CustomerID)
		s.HardDeadline = minDeadline(s.HardDeadline, op.Hard)
		s.IdleDeadline = capIdle(op.Idle, s.HardDeadline)
	case OpLogout:
		if s.Kind == KindShared {
			return invalid("kind", "a shared session cannot log out")
		}
		if op.Generation <= s.Generation {
			return invalid("generation", "logout must raise the generation")
		}
		s.Kind, s.Generation = KindAnonymous, op.Generation
		s.Fields[FieldCustomerID] = Value{}
		cs.clear(NamespacePrivacy)
		s.HardDeadline = minDeadline(s.HardDeadline, op.Hard)
		s.IdleDeadline = capIdle(op.Idle, s.HardDeadline)
	case OpTouch:
		s.LastSeen = d.At
		s.IdleDeadline = capIdle(op.Idle, s.HardDeadline)
	case OpLifetime:
		if op.Idle < 0 || op.Hard < 0 {
			return invalid("lifetime", "timeouts must not be negative")
		}
		s.IdleTimeout, s.HardTimeout = op.Idle, op.Hard
	case OpDevice:
		if err := ValidateDevice(op.Device); err != nil {
			return err
		}
		s.Device = op.Device
		if s.FirstDevice.IsZero() {
			s.FirstDevice = op.Device
		}
	case OpEnd:
		if op.Reason < EndAbandoned || op.Reason > maxEndReason {
			return invalid("reason", "unknown end reason")
		}
		s.Ended = op.Reason
		s.LastSeen = d.At
		s.Fields = [NumFields]Value{}
		for ns := range s.Attrs {
			cs.clear(Namespace(ns))
		}
	default:
		return wrap(ErrBadDelta, "unknown op "+itoa(int(op.Code)))
	}
	return nil
}

// modifies reports whether d changes more than the session's activity:
// every delta but one of touches only (a version bump counts, since the
// origin filtered what changed).
func modifies(d *Delta) bool {
	for i := range d.Ops {
		if d.Ops[i].Code != OpTouch {
			return true
		}
	}
	return len(d.Ops) == 0
}

// ValidateDevice checks the texts of a device record.
func ValidateDevice(dev Device) error {
	for _, f := range [...]struct{ name, v string }{{"device.userAgent", dev.UserAgent}, {"device.addr", dev.Addr}, {"device.site", dev.Site}} {
		if len(f.v) > MaxDeviceText {
			return tooLarge(f.name, "longer than "+itoa(MaxDeviceText)+" bytes")
		}
		if !utf8.ValidString(f.v) {
			return invalid(f.name, "not valid UTF-8")
		}
	}
	return nil
}

// minDeadline returns the earlier of two deadlines, where 0 means none.
func minDeadline(a, b int64) int64 {
	if a == 0 || (b != 0 && b < a) {
		return b
	}
	return a
}

// capIdle caps an idle deadline (0: none) at the hard deadline (0: none).
func capIdle(idle, hard int64) int64 {
	if hard != 0 && idle > hard {
		return hard
	}
	return idle
}

// wrappedError adds detail to a sentinel error without fmt, which would
// add a third of a megabyte to the guest module.
type wrappedError struct {
	err    error
	detail string
}

func (e *wrappedError) Error() string { return e.err.Error() + ": " + e.detail }
func (e *wrappedError) Unwrap() error { return e.err }

func wrap(err error, detail string) error { return &wrappedError{err: err, detail: detail} }

func utoa(u uint64) string { return strconv.FormatUint(u, 10) }
