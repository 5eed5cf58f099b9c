package sdk

import (
	"encoding/base64"
	"errors"
	"net/http"
	"testing"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// contextHeader encodes s the way the edge does for x-session-context.
func contextHeader(s *wire.Session, namespaces uint8) string {
	return base64.RawURLEncoding.EncodeToString(wire.AppendSessionView(nil, s, namespaces))
}

func TestParseView(t *testing.T) {
	id, _ := wire.ParseID(testID)
	s := &wire.Session{ID: id, Kind: wire.KindCustomer, Generation: 2, Version: 9}
	s.Fields[wire.FieldCurrency] = wire.Text("USD")
	s.Fields[wire.FieldCustomerID] = wire.Text("c-1")
	s.Attrs[wire.NamespaceCustom] = wire.Attrs{}.With("theme", wire.Text("dark"))
	s.Attrs[wire.NamespacePrivacy] = wire.Attrs{}.With("email", wire.Text("x@y.z"))
	forwarded := uint8(1<<wire.NamespaceCustom | 1<<wire.NamespacePublic)

	tests := []struct {
		name    string
		headers map[string]string
		wantErr error
		check   func(t *testing.T, v *View)
	}{
		{name: "no headers", headers: nil, wantErr: ErrNoSession},
		{name: "bad id", headers: map[string]string{HeaderID: "short"}, wantErr: ErrBadHeaders},
		{name: "bad kind", headers: map[string]string{HeaderID: testID, HeaderKind: "admin"}, wantErr: ErrBadHeaders},
		{name: "bad version", headers: map[string]string{HeaderID: testID, HeaderVersion: "-1"}, wantErr: ErrBadHeaders},
		{name: "bad context", headers: map[string]string{HeaderID: testID, HeaderContext: "!!"}, wantErr: ErrBadHeaders},
		{name: "broken CBOR", headers: map[string]string{HeaderID: testID, HeaderContext: "_w"}, wantErr: ErrBadHeaders},
		{
			name: "full context",
			headers: map[string]string{HeaderID: testID, HeaderKind: "customer", HeaderVersion: "9", HeaderGeneration: "2",
				HeaderContext: contextHeader(s, forwarded), HeaderContextStatus: "ok", HeaderSegment: "0123456789abcdef",
				HeaderSite: "US", HeaderCurrency: "EUR"},
			check: func(t *testing.T, v *View) {
				if v.ID != testID || v.Kind != wire.KindCustomer || !v.LoggedIn() || v.Version != 9 || v.Generation != 2 || v.Status != StatusOK || v.Segment != "0123456789abcdef" {
					t.Errorf("view %+v", v)
				}
				if v.Text(wire.FieldCurrency) != "USD" {
					t.Errorf("currency %q: the context must win over the field header", v.Text(wire.FieldCurrency))
				}
				if v.Text(wire.FieldSiteCode) != "US" {
					t.Errorf("site %q: the field header fills in an unset field", v.Text(wire.FieldSiteCode))
				}
				if v.CustomerID() != "c-1" {
					t.Errorf("customer %q", v.CustomerID())
				}
				if a, ok := v.Attr(wire.NamespaceCustom, "theme"); !ok || a.Text != "dark" {
					t.Errorf("custom %+v", v.Attrs)
				}
				if len(v.Attrs[wire.NamespacePrivacy]) != 0 {
					t.Errorf("privacy was not forwarded but shows %+v", v.Attrs[wire.NamespacePrivacy])
				}
			},
		},
		{
			name: "degraded: headers only",
			headers: map[string]string{HeaderID: testID, HeaderKind: "anonymous", HeaderContextStatus: "degraded",
				HeaderCurrency: "EUR", HeaderCart: "cart-7", HeaderTracking: "false"},
			check: func(t *testing.T, v *View) {
				if v.Status != StatusDegraded || v.Kind != wire.KindAnonymous || v.LoggedIn() {
					t.Errorf("view %+v", v)
				}
				if v.Text(wire.FieldCurrency) != "EUR" || v.Text(wire.FieldCartID) != "cart-7" {
					t.Errorf("fields %+v", v.Fields)
				}
				if tr := v.Fields[wire.FieldTrackingAllowed]; tr.Type != wire.TypeBool || tr.BoolValue() {
					t.Errorf("tracking %+v", tr)
				}
			},
		},
		{
			name:    "metadata from the context when headers are absent",
			headers: map[string]string{HeaderID: testID, HeaderKind: "customer", HeaderContext: contextHeader(s, 0)},
			check: func(t *testing.T, v *View) {
				if v.Version != 9 || v.Generation != 2 {
					t.Errorf("view %+v", v)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			v, err := ParseView(h.Get)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, v)
		})
	}
}

func TestEdgeCheck(t *testing.T) {
	tests := []struct {
		name    string
		check   *EdgeCheck
		headers map[string]string
		wantErr error
		wantNil bool
	}{
		{name: "nil check, session", check: nil, headers: map[string]string{HeaderID: testID}},
		{name: "nil check, no session", check: nil, wantErr: ErrNoSession},
		{name: "optional, no session", check: &EdgeCheck{Optional: true}, wantNil: true},
		{name: "secret ok", check: &EdgeCheck{Header: "x-edge-secret", Secret: "s3"}, headers: map[string]string{HeaderID: testID, "x-edge-secret": "s3"}},
		{name: "secret wrong", check: &EdgeCheck{Header: "x-edge-secret", Secret: "s3"}, headers: map[string]string{HeaderID: testID, "x-edge-secret": "s4"}, wantErr: ErrNotFromEdge},
		{name: "secret missing", check: &EdgeCheck{Header: "x-edge-secret", Secret: "s3"}, headers: map[string]string{HeaderID: testID}, wantErr: ErrNotFromEdge},
		{name: "secret missing even when optional", check: &EdgeCheck{Header: "x-edge-secret", Secret: "s3", Optional: true}, wantErr: ErrNotFromEdge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			v, err := tt.check.Check(h.Get)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && (v == nil) != tt.wantNil {
				t.Fatalf("view %+v", v)
			}
		})
	}
}
