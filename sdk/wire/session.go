package wire

// Field is a well-known context field.
type Field uint8

// The well-known fields. Their numbers are their CBOR keys; never renumber.
const (
	FieldSiteCode        Field = 0 // text
	FieldCurrency        Field = 1 // text, ISO 4217
	FieldTargetLocation  Field = 2 // text, ISO 3166 country
	FieldLocale          Field = 3 // text, BCP 47
	FieldCartID          Field = 4 // text
	FieldCustomerID      Field = 5 // text; set only by login, cleared by logout
	FieldTrackingAllowed Field = 6 // bool
	NumFields                  = 7
)

var fieldNames = [NumFields]string{"siteCode", "currency", "targetLocation", "locale", "cartId", "customerId", "trackingAllowed"}

// String returns the field's JSON name.
func (f Field) String() string {
	if f < NumFields {
		return fieldNames[f]
	}
	return "invalid"
}

// Type returns the value type the field holds.
func (f Field) Type() ValueType {
	if f == FieldTrackingAllowed {
		return TypeBool
	}
	return TypeText
}

// ParseField returns the field with JSON name s.
func ParseField(s string) (Field, bool) { return lookup[Field](fieldNames[:], s) }

// lookup returns the number of the name s in names.
func lookup[T ~uint8](names []string, s string) (T, bool) {
	for i, n := range names {
		if n == s {
			return T(i), true
		}
	}
	return 0, false
}

// Namespace is a namespace of attributes.
type Namespace uint8

// The namespaces. Their numbers are part of the CBOR encoding; never renumber.
const (
	NamespaceCustom  Namespace = 0 // kept across logout
	NamespacePrivacy Namespace = 1 // cleared on logout and on soft timeout
	NamespacePublic  Namespace = 2 // writable by the shopper's browser through the edge
	NumNamespaces              = 3
)

var namespaceNames = [NumNamespaces]string{"custom", "privacy", "public"}

// String returns the namespace's name.
func (ns Namespace) String() string {
	if ns < NumNamespaces {
		return namespaceNames[ns]
	}
	return "invalid"
}

// ParseNamespace returns the namespace called s.
func ParseNamespace(s string) (Namespace, bool) { return lookup[Namespace](namespaceNames[:], s) }

// EndReason says why a session ended. A session with a non-zero EndReason is
// a tombstone: it stays until its hard deadline so a stale token cannot bring
// it back.
type EndReason uint8

// The end reasons.
const (
	EndAbandoned   EndReason = 1 // ended explicitly (DELETE, delivery done, ...)
	EndIdleExpired EndReason = 2 // idle deadline passed (kinds whose idle action is "end")
	EndHardExpired EndReason = 3 // hard deadline passed
	EndRevoked     EndReason = 4 // revoked (revoke-all of a customer, forced re-key)
	EndEvicted     EndReason = 5 // displaced by a newer login under the customer's session limit

	// maxEndReason is the highest reason decoders accept.
	maxEndReason = EndEvicted
)

// String returns the reason's name.
func (r EndReason) String() string {
	switch r {
	case 0:
		return "live"
	case EndAbandoned:
		return "abandoned"
	case EndIdleExpired:
		return "idle-expired"
	case EndHardExpired:
		return "hard-expired"
	case EndRevoked:
		return "revoked"
	case EndEvicted:
		return "evicted"
	}
	return "invalid"
}

// Device is what an edge saw of a client: its user agent (cut to
// MaxDeviceText bytes), a coarse address (a network prefix such as
// "192.0.2.0/24", or empty when the edge is configured to keep none), and
// the site code it was serving.
type Device struct {
	UserAgent, Addr, Site string
}

// MaxDeviceText bounds each text of a Device.
const MaxDeviceText = 256

// IsZero reports whether nothing is known of the device.
func (d Device) IsZero() bool { return d == Device{} }

// Session is the state of one session: metadata and context. Times are Unix
// milliseconds; a zero deadline means none. A Session is treated as a value:
// Apply returns a new one and leaves its input untouched, so readers can share
// sessions without locks.
type Session struct {
	ID           ID
	Kind         Kind
	Generation   uint32 // bumped on every privilege change; older tokens are dead
	Version      uint64 // +1 for every applied delta
	Created      int64
	LastSeen     int64
	Modified     int64 // the last change of context, kind or metadata (touches do not count)
	IdleDeadline int64
	HardDeadline int64
	Ended        EndReason // non-zero: a tombstone

	// IdleTimeout and HardTimeout are the session's own lifetimes in
	// milliseconds, set when it starts (and at login); zero means the
	// timeouts of its kind.
	IdleTimeout, HardTimeout int64
	// FirstDevice is the client an edge saw when the session started,
	// Device the one it saw last.
	FirstDevice, Device Device

	Fields [NumFields]Value     // well-known fields; the zero Value means unset
	Attrs  [NumNamespaces]Attrs // attributes per namespace
}

// Field returns the value of a well-known field (zero Value when unset).
func (s *Session) Field(f Field) Value { return s.Fields[f] }

// Attr returns the attribute key of namespace ns.
func (s *Session) Attr(ns Namespace, key string) (Value, bool) { return s.Attrs[ns].Get(key) }

// CustomerID returns the customer id of a logged-in session, or "".
func (s *Session) CustomerID() string { return s.Fields[FieldCustomerID].Text }

// Clone returns a copy of s that shares its immutable values.
func (s *Session) Clone() *Session {
	c := *s
	return &c
}

// Equal reports whether two sessions hold the same metadata and context.
func (s *Session) Equal(o *Session) bool {
	if s.ID != o.ID || s.Kind != o.Kind || s.Generation != o.Generation || s.Version != o.Version ||
		s.Created != o.Created || s.LastSeen != o.LastSeen || s.Modified != o.Modified ||
		s.IdleDeadline != o.IdleDeadline || s.HardDeadline != o.HardDeadline || s.Ended != o.Ended ||
		s.IdleTimeout != o.IdleTimeout || s.HardTimeout != o.HardTimeout ||
		s.FirstDevice != o.FirstDevice || s.Device != o.Device {
		return false
	}
	for i := range s.Fields {
		if !s.Fields[i].Equal(o.Fields[i]) {
			return false
		}
	}
	for i := range s.Attrs {
		if !s.Attrs[i].Equal(o.Attrs[i]) {
			return false
		}
	}
	return true
}

// NumAttrs returns the number of attributes over all namespaces.
func (s *Session) NumAttrs() int {
	n := 0
	for _, as := range s.Attrs {
		n += len(as)
	}
	return n
}
