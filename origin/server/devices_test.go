package server

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

var (
	phone  = wire.Device{UserAgent: "Mozilla/5.0 (iPhone)", Addr: "192.0.2.0/24", Site: "DE"}
	laptop = wire.Device{UserAgent: "Mozilla/5.0 (X11; Linux)", Addr: "198.51.100.0/24", Site: "DE"}
)

// siteDefaults are what an edge applies to a session it mints, and some
// ops the origin must leave out of a report.
func siteDefaults() []wire.Op {
	return []wire.Op{
		{Code: wire.OpSetField, Field: wire.FieldSiteCode, Value: wire.Text("DE")},
		{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("EUR")},
		{Code: wire.OpSetField, Field: wire.FieldLocale, Value: wire.Text("de-DE")},
		{Code: wire.OpSetAttr, NS: wire.NamespacePublic, Key: "utm_source", Value: wire.Text("news")},
		// Not the edge's to set:
		{Code: wire.OpSetField, Field: wire.FieldCartID, Value: wire.Text("cart-evil")},
		{Code: wire.OpSetAttr, NS: wire.NamespaceCustom, Key: "admin", Value: wire.Bool(true)},
		{Code: wire.OpSetAttr, NS: wire.NamespacePrivacy, Key: "email", Value: wire.Text("x@y.z")},
		{Code: wire.OpLifetime, Idle: 1, Hard: 1},
		{Code: wire.OpClearNamespace, NS: wire.NamespaceCustom},
	}
}

func (o *testOrigin) touch(ts ...wire.Touch) {
	o.t.Helper()
	if r := o.do("POST", "/v1/sync/touch", keyEdge, wire.AppendTouches(nil, ts), "Content-Type", "application/cbor"); r.status != 204 {
		o.t.Fatalf("touch: %d %s", r.status, r.body)
	}
}

// TestTouchInitAndDevice: a report that creates a session brings the
// site defaults the edge applied (nothing else) and the client's device; a
// later report with another device records it in a delta that edges see
// as a version bump; edges never see devices.
func TestTouchInitAndDevice(t *testing.T) {
	o := startOrigin(t, baseConfig(t))
	after := o.sync("", 0).Cursor
	id, _ := wire.NewID()
	now := time.Now().UnixMilli()
	base := wire.Touch{ID: id, Kind: wire.KindAnonymous, Generation: 1, LastSeen: now, HardDeadline: now + time.Hour.Milliseconds()}
	first := base
	first.Device, first.Init = phone, siteDefaults()
	o.touch(first)
	s, status := o.getCBOR(id.String())
	if status != 200 || s.Version != 1 || s.Field(wire.FieldCurrency).Text != "EUR" || s.Field(wire.FieldSiteCode).Text != "DE" ||
		s.Field(wire.FieldLocale).Text != "de-DE" {
		t.Fatalf("created from a touch: %d %+v", status, s)
	}
	if v, _ := s.Attr(wire.NamespacePublic, "utm_source"); v.Text != "news" {
		t.Fatalf("public attribute of the report not applied: %+v", s)
	}
	if !s.Field(wire.FieldCartID).IsZero() || len(s.Attrs[wire.NamespaceCustom]) != 0 || len(s.Attrs[wire.NamespacePrivacy]) != 0 || s.IdleTimeout != 0 {
		t.Fatalf("a report set what an edge may not: %+v", s)
	}
	if s.FirstDevice != phone || s.Device != phone {
		t.Fatalf("devices %+v %+v", s.FirstDevice, s.Device)
	}

	// The same device again: no new version. Init is ignored once the
	// session exists.
	again := base
	again.Device, again.Init = phone, []wire.Op{{Code: wire.OpSetField, Field: wire.FieldCurrency, Value: wire.Text("USD")}}
	o.touch(again)
	if s, _ = o.getCBOR(id.String()); s.Version != 1 || s.Field(wire.FieldCurrency).Text != "EUR" {
		t.Fatalf("a report of a stored session changed it: %+v", s)
	}
	// Another device: a delta; the first device stays.
	other := base
	other.Device = laptop
	o.touch(other)
	if s, _ = o.getCBOR(id.String()); s.Version != 2 || s.Device != laptop || s.FirstDevice != phone {
		t.Fatalf("after a new device: %+v", s)
	}
	// A report without a device changes nothing.
	o.touch(base)
	if s, _ = o.getCBOR(id.String()); s.Version != 2 {
		t.Fatalf("a report without a device wrote: %+v", s)
	}

	// The feed: both deltas, without device ops (the second one is empty).
	bt := o.sync(after, 0)
	if len(bt.Deltas) != 2 {
		t.Fatalf("feed: %+v", bt.Deltas)
	}
	for _, d := range bt.Deltas {
		for _, op := range d.Ops {
			if op.Code == wire.OpDevice {
				t.Fatalf("an edge key sees a device op: %+v", d)
			}
		}
	}
	if len(bt.Deltas[1].Ops) != 0 || bt.Deltas[1].Version != 2 {
		t.Fatalf("the device delta is not a version bump for edges: %+v", bt.Deltas[1])
	}
	// Applying the filtered feed gives the edges' view of the session.
	var edge *wire.Session
	for i := range bt.Deltas {
		var err error
		if edge, err = wire.Apply(edge, &bt.Deltas[i], &wire.DefaultLimits); err != nil {
			t.Fatal(err)
		}
	}
	if edge.Version != 2 || !edge.Device.IsZero() || edge.Field(wire.FieldCurrency).Text != "EUR" {
		t.Fatalf("the edge's copy: %+v", edge)
	}

	// Views: apps see the devices, edges do not (JSON and CBOR, any namespaces).
	sec := now / 1000
	tok := tokenFor(t, wire.Claims{Kind: wire.KindAnonymous, ID: id, Generation: 1, IssuedAt: sec, IdleDeadline: sec + 3600, HardDeadline: sec + 3600})
	path := "/v1/sessions/" + id.String()
	if r := o.do("GET", path, keyRead, nil); !strings.Contains(string(r.body), `"firstDevice":{"userAgent":"Mozilla/5.0 (iPhone)","addr":"192.0.2.0/24","site":"DE"}`) ||
		!strings.Contains(string(r.body), `"modified":`) {
		t.Fatalf("an app key's view: %s", r.body)
	}
	for _, key := range []string{keyEdge, keyEdgePrivate} {
		if r := o.do("GET", path, key, nil, "X-Session-Token", tok); r.status != 200 || strings.Contains(string(r.body), "Mozilla") {
			t.Fatalf("an edge key's JSON view: %d %s", r.status, r.body)
		}
		r := o.do("GET", path, key, nil, "X-Session-Token", tok, "Accept", "application/cbor")
		var v wire.Session
		if err := wire.DecodeSession(r.body, &v); err != nil || !v.Device.IsZero() || !v.FirstDevice.IsZero() || v.Version < 2 {
			t.Fatalf("an edge key's CBOR view: %v %+v", err, v)
		}
		r = o.do("PATCH", path+"/context", key, `{"public":{"x":1}}`, "X-Session-Token", tok)
		if r.status != 200 || strings.Contains(string(r.body), "Mozilla") {
			t.Fatalf("an edge key's write answer: %d %s", r.status, r.body)
		}
	}
}

// TestSessionInitHeader: a self-service write that creates the session
// applies X-Session-Init as a touch that creates it would.
func TestSessionInitHeader(t *testing.T) {
	o := startOrigin(t, baseConfig(t))
	now := time.Now()
	sec := now.Unix()
	newSession := func() (wire.ID, string, string) {
		id, _ := wire.NewID()
		tok := tokenFor(t, wire.Claims{Kind: wire.KindAnonymous, ID: id, Generation: 1, IssuedAt: sec, IdleDeadline: sec + 3600, HardDeadline: sec + 7200})
		return id, "/v1/sessions/" + id.String(), tok
	}
	header := func(id wire.ID) string {
		tr := wire.Touch{ID: id, Kind: wire.KindAnonymous, Generation: 1, LastSeen: now.UnixMilli(), HardDeadline: (sec + 7200) * 1000,
			Device: phone, Init: siteDefaults()}
		return base64.RawURLEncoding.EncodeToString(wire.AppendTouches(nil, []wire.Touch{tr}))
	}
	id, path, tok := newSession()
	r := o.do("PATCH", path+"/context", keyEdge, `{"currency":"CHF","public":{"a":1}}`, "X-Session-Token", tok, "X-Session-Init", header(id))
	if r.status != 200 {
		t.Fatalf("self-service upsert: %d %s", r.status, r.body)
	}
	s, _ := o.getCBOR(id.String())
	if s.Version != 1 || s.Field(wire.FieldSiteCode).Text != "DE" || s.Field(wire.FieldCurrency).Text != "CHF" || s.Device != phone ||
		len(s.Attrs[wire.NamespacePublic]) != 2 || len(s.Attrs[wire.NamespaceCustom]) != 0 || !s.Field(wire.FieldCartID).IsZero() {
		t.Fatalf("created with X-Session-Init: %+v", s)
	}
	// Once the session exists the header changes nothing.
	r = o.do("DELETE", path+"/attributes/public/a", keyEdge, nil, "X-Session-Token", tok, "X-Session-Init", header(id))
	if s, _ = o.getCBOR(id.String()); r.status != 200 || s.Version != 2 || s.Field(wire.FieldCurrency).Text != "CHF" {
		t.Fatalf("X-Session-Init on a stored session: %d %+v", r.status, s)
	}

	// Malformed, or for another session: 400, nothing created.
	other, _ := wire.NewID()
	for name, h := range map[string]string{
		"not base64":      "!!!",
		"not a report":    base64.RawURLEncoding.EncodeToString([]byte{0xa1, 0x01}),
		"another session": header(other),
		"two sessions": base64.RawURLEncoding.EncodeToString(wire.AppendTouches(nil, []wire.Touch{
			{ID: other, Kind: wire.KindAnonymous, Generation: 1}, {ID: other, Kind: wire.KindAnonymous, Generation: 1}})),
	} {
		id, path, tok := newSession()
		e := wantError(t, o.do("PATCH", path+"/context", keyEdge, `{"public":{"a":1}}`, "X-Session-Token", tok, "X-Session-Init", h), 400, "invalid_input")
		if e["field"] != "X-Session-Init" {
			t.Errorf("%s: field %v", name, e["field"])
		}
		if _, status := o.getCBOR(id.String()); status != 404 {
			t.Errorf("%s: created anyway (%d)", name, status)
		}
	}
}

// TestSelfServiceFields: an edge key writes public and its self-service
// fields (by default siteCode, currency, targetLocation and
// trackingAllowed), configurable per key, never customerId.
func TestSelfServiceFields(t *testing.T) {
	cfg := baseConfig(t)
	cfg.APIKeys = append(cfg.APIKeys, APIKey{Name: "edge-currency", Key: "edge-currency", Scopes: []string{"edge:sync", "edge:selfservice"},
		SelfServiceFields: []string{"currency"}})
	o := startOrigin(t, cfg)
	id, _, tok2 := loggedIn(t, o)
	path := "/v1/sessions/" + id + "/context"
	r := o.do("PATCH", path, keyEdge, `{"siteCode":"CH","currency":"CHF","targetLocation":"CH","trackingAllowed":false,"public":{"a":1}}`, "X-Session-Token", tok2)
	if r.status != 200 {
		t.Fatalf("default self-service fields: %d %s", r.status, r.body)
	}
	s, _ := o.getCBOR(id)
	if s.Field(wire.FieldCurrency).Text != "CHF" || s.Field(wire.FieldSiteCode).Text != "CH" || s.Field(wire.FieldTargetLocation).Text != "CH" ||
		s.Field(wire.FieldTrackingAllowed).Type != wire.TypeBool {
		t.Fatalf("after a self-service write: %+v", s)
	}
	for _, body := range []string{`{"locale":"fr-CH"}`, `{"cartId":"c"}`, `{"customerId":"evil"}`, `{"custom":{"a":1}}`} {
		if e := wantError(t, o.do("PATCH", path, keyEdge, body, "X-Session-Token", tok2), 403, "forbidden"); e["field"] == "" {
			t.Errorf("%s: no field", body)
		}
	}
	if r := o.do("PATCH", path, "edge-currency", `{"currency":null}`, "X-Session-Token", tok2); r.status != 200 {
		t.Fatalf("configured field: %d %s", r.status, r.body)
	}
	wantError(t, o.do("PATCH", path, "edge-currency", `{"siteCode":"AT"}`, "X-Session-Token", tok2), 403, "forbidden")

	// The configuration: known fields, never customerId, only edge:selfservice keys.
	for _, tc := range []struct {
		key  APIKey
		want string
	}{
		{APIKey{Key: "k", Scopes: []string{"edge:selfservice"}, SelfServiceFields: []string{"customerId"}}, "customerId is set only by login"},
		{APIKey{Key: "k", Scopes: []string{"edge:selfservice"}, SelfServiceFields: []string{"colour"}}, `unknown field "colour"`},
		{APIKey{Key: "k", Scopes: []string{"sessions:write"}, SelfServiceFields: []string{"currency"}}, "only keys with edge:selfservice"},
	} {
		cfg := baseConfig(t)
		cfg.APIKeys = []APIKey{tc.key}
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "apiKeys[0].selfServiceFields") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v", tc.key, err)
		}
	}
}
