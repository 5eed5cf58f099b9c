package sdk

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// This file holds the JSON forms of the API (docs/wire.md, "JSON"):
// text → string, int → integer number, float → number with '.' or 'e', bool,
// time → {"$time":"RFC 3339"}, decimal → {"$decimal":"19.99"}, list → array,
// map → object.

// appendValueJSON appends the JSON form of v to dst (wire.AppendValueJSON),
// after checking that v has one: NaN and infinities do not.
func appendValueJSON(dst []byte, v wire.Value) ([]byte, error) {
	if err := checkJSON(v); err != nil {
		return dst, err
	}
	return wire.AppendValueJSON(dst, v), nil
}

func checkJSON(v wire.Value) error {
	switch v.Type {
	case wire.TypeFloat:
		if math.IsNaN(v.Float) || math.IsInf(v.Float, 0) {
			return fmt.Errorf("%w: float %v has no JSON form", ErrInvalidInput, v.Float)
		}
	case wire.TypeList:
		for _, e := range v.List {
			if err := checkJSON(e); err != nil {
				return err
			}
		}
	case wire.TypeMap:
		for _, a := range v.Map {
			if err := checkJSON(a.Value); err != nil {
				return err
			}
		}
	case 0:
		return fmt.Errorf("%w: no value", ErrInvalidInput)
	}
	return nil
}

func appendJSONString(dst []byte, s string) []byte { return wire.AppendStringJSON(dst, s) }

// FormatDecimal returns the text form of a decimal value: Decimal(1999, -2)
// is "19.99".
func FormatDecimal(v wire.Value) string { return string(wire.AppendDecimal(nil, v.Int, v.Exp)) }

// Context is the context of a session: the well-known fields and the
// attributes of each namespace. The zero Value of a field means unset.
type Context struct {
	Fields [wire.NumFields]wire.Value
	Attrs  [wire.NumNamespaces]wire.Attrs
}

// Text returns the text of a well-known field, or "" when it is unset.
func (c *Context) Text(f wire.Field) string { return c.Fields[f].Text }

// Attr returns the attribute key of namespace ns.
func (c *Context) Attr(ns wire.Namespace, key string) (wire.Value, bool) { return c.Attrs[ns].Get(key) }

// jsonObject appends the members of a JSON object to b, commas between.
type jsonObject struct {
	b []byte
	n int
}

// key starts the member named k: its value comes next.
func (o *jsonObject) key(k string) {
	if o.n > 0 {
		o.b = append(o.b, ',')
	}
	o.n++
	o.b = append(appendJSONString(o.b, k), ':')
}

// appendContextJSON appends c as a context JSON object.
func appendContextJSON(dst []byte, c *Context) ([]byte, error) {
	o := jsonObject{b: append(dst, '{')}
	var err error
	for f, v := range c.Fields {
		if v.IsZero() {
			continue
		}
		o.key(wire.Field(f).String())
		if o.b, err = appendValueJSON(o.b, v); err != nil {
			return o.b, fmt.Errorf("%s: %w", wire.Field(f), err)
		}
	}
	for ns, as := range c.Attrs {
		if len(as) == 0 {
			continue
		}
		o.key(wire.Namespace(ns).String())
		if o.b, err = appendValueJSON(o.b, wire.Value{Type: wire.TypeMap, Map: as}); err != nil {
			return o.b, fmt.Errorf("%s: %w", wire.Namespace(ns), err)
		}
	}
	return append(o.b, '}'), nil
}

// parseContextJSON parses a context JSON object. Unknown top-level keys are
// ignored, so an origin that adds fields does not break older SDKs.
func parseContextJSON(raw json.RawMessage) (Context, error) {
	var c Context
	if len(raw) == 0 || string(raw) == "null" {
		return c, nil
	}
	obj, err := wire.ParseValueJSON(raw)
	if err != nil {
		return c, fmt.Errorf("context: %v", err)
	}
	if obj.Type != wire.TypeMap {
		return c, fmt.Errorf("context is not an object")
	}
	for _, a := range obj.Map {
		if f, ok := wire.ParseField(a.Key); ok {
			c.Fields[f] = a.Value
			continue
		}
		if ns, ok := wire.ParseNamespace(a.Key); ok {
			if a.Value.Type != wire.TypeMap && !a.Value.IsZero() {
				return c, fmt.Errorf("context %s: not an object", a.Key)
			}
			c.Attrs[ns] = a.Value.Map
		}
	}
	return c, nil
}

// Session is a session as the origin holds it.
type Session struct {
	ID           string
	Kind         wire.Kind
	Generation   uint32    // raised by login, logout and forced re-keys
	Version      uint64    // +1 for every change; pass it to IfMatch
	Created      time.Time //
	LastSeen     time.Time // the last request the edge saw, or the last touch
	Modified     time.Time // the last change of context, kind or metadata (activity alone does not count)
	IdleDeadline time.Time // zero: none
	HardDeadline time.Time // zero: none
	Ended        string    // for a tombstone (an ended session): why it ended ("abandoned", "idle-expired", "hard-expired", "revoked", "evicted"); "" while live

	// IdleTimeout and HardTimeout are the session's own lifetimes, set
	// when it was created or logged in with WithLifetime: zero means the
	// timeouts of its kind.
	IdleTimeout, HardTimeout time.Duration

	// FirstDevice is the client an edge saw when the session started,
	// Device the one it saw last: the user agent (cut to 256 bytes), a
	// coarse address (a network prefix, or empty when the edge keeps
	// none) and the site code. Zero when no edge reported one, as for a
	// session an app created.
	FirstDevice, Device wire.Device

	Context
}

// CustomerID returns the customer of a logged-in session, or "".
func (s *Session) CustomerID() string { return s.Fields[wire.FieldCustomerID].Text }

type sessionJSON struct {
	seenJSON
	ID           string          `json:"id"`
	Generation   uint32          `json:"generation"`
	Version      uint64          `json:"version"`
	IdleDeadline string          `json:"idleDeadline"`
	HardDeadline string          `json:"hardDeadline"`
	IdleTimeout  string          `json:"idleTimeout"`
	HardTimeout  string          `json:"hardTimeout"`
	Ended        json.RawMessage `json:"ended"`
	Context      json.RawMessage `json:"context"`
}

// seenJSON is what the origin's JSON says of a session's kind, times and
// devices, in a session and in a peer alike.
type seenJSON struct {
	Kind        string      `json:"kind"`
	Created     string      `json:"created"`
	LastSeen    string      `json:"lastSeen"`
	Modified    string      `json:"modified"`
	FirstDevice *deviceJSON `json:"firstDevice"`
	Device      *deviceJSON `json:"device"`
}

// parse parses j into the fields of a Session or a Peer.
func (j *seenJSON) parse(kind *wire.Kind, created, lastSeen, modified *time.Time, firstDevice, device *wire.Device) error {
	var err error
	if *kind, err = parseKind(j.Kind); err != nil {
		return err
	}
	*firstDevice, *device = j.FirstDevice.device(), j.Device.device()
	return parseTimes([]timeField{{created, j.Created}, {lastSeen, j.LastSeen}, {modified, j.Modified}})
}

// deviceJSON is the JSON form of a wire.Device.
type deviceJSON struct {
	UserAgent string `json:"userAgent"`
	Addr      string `json:"addr"`
	Site      string `json:"site"`
}

func (d *deviceJSON) device() wire.Device {
	if d == nil {
		return wire.Device{}
	}
	return wire.Device{UserAgent: d.UserAgent, Addr: d.Addr, Site: d.Site}
}

// parseTimeout reads a session's own lifetime: "" is zero (its kind's),
// anything else a Go duration.
func parseTimeout(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err == nil && d < 0 {
		err = fmt.Errorf("%q is negative", s)
	}
	return d, err
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// timeField is a time of the origin's JSON and where it goes.
type timeField struct {
	dst *time.Time
	src string
}

// parseTimes parses each field's src into its dst.
func parseTimes(ts []timeField) error {
	for _, t := range ts {
		var err error
		if *t.dst, err = parseTime(t.src); err != nil {
			return fmt.Errorf("session time: %v", err)
		}
	}
	return nil
}

// parseKind parses a session kind of the origin's JSON; "" is the zero kind.
func parseKind(s string) (wire.Kind, error) {
	if s == "" {
		return 0, nil
	}
	k, ok := wire.ParseKind(s)
	if !ok {
		return 0, fmt.Errorf("session kind %q", s)
	}
	return k, nil
}

func (j *sessionJSON) session() (*Session, error) {
	s := &Session{ID: j.ID, Generation: j.Generation, Version: j.Version}
	if err := j.seenJSON.parse(&s.Kind, &s.Created, &s.LastSeen, &s.Modified, &s.FirstDevice, &s.Device); err != nil {
		return nil, err
	}
	if err := parseTimes([]timeField{{&s.IdleDeadline, j.IdleDeadline}, {&s.HardDeadline, j.HardDeadline}}); err != nil {
		return nil, err
	}
	var err error
	if s.IdleTimeout, err = parseTimeout(j.IdleTimeout); err != nil {
		return nil, fmt.Errorf("session idleTimeout: %v", err)
	}
	if s.HardTimeout, err = parseTimeout(j.HardTimeout); err != nil {
		return nil, fmt.Errorf("session hardTimeout: %v", err)
	}
	if len(j.Ended) > 0 && string(j.Ended) != "null" && string(j.Ended) != "false" {
		var reason string
		if json.Unmarshal(j.Ended, &reason) != nil {
			reason = string(j.Ended) // a number or bool: keep its text rather than fail
		}
		s.Ended = reason
	}
	if s.Context, err = parseContextJSON(j.Context); err != nil {
		return nil, err
	}
	return s, nil
}
