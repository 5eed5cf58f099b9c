package sdk

import (
	"encoding/base64"
	"errors"
	"net/http"
	"testing"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// FuzzParseView feeds arbitrary header values to ParseView: it must never
// panic, and must either fail with ErrNoSession or ErrBadHeaders or return a
// view whose id is a valid session id.
func FuzzParseView(f *testing.F) {
	id, _ := wire.ParseID(testID)
	s := &wire.Session{ID: id, Kind: wire.KindCustomer, Generation: 2, Version: 9}
	s.Fields[wire.FieldCurrency] = wire.Text("USD")
	s.Attrs[wire.NamespaceCustom] = wire.Attrs{}.With("n", wire.List(wire.Int(1), wire.Map(wire.Attr{Key: "k", Value: wire.Decimal(5, -1)})))
	good := base64.RawURLEncoding.EncodeToString(wire.AppendSession(nil, s))
	f.Add(testID, "customer", "9", "2", good, "true")
	f.Add(testID, "", "", "", "", "")
	f.Add("", "anonymous", "1", "1", "", "false")
	f.Add(testID, "shared", "18446744073709551615", "4294967295", "oA", "x")
	f.Add(testID, "anonymous", "1", "1", good[:len(good)/2], "")
	f.Fuzz(func(t *testing.T, idh, kind, version, generation, ctxt, tracking string) {
		h := http.Header{}
		for k, v := range map[string]string{HeaderID: idh, HeaderKind: kind, HeaderVersion: version,
			HeaderGeneration: generation, HeaderContext: ctxt, HeaderTracking: tracking} {
			if v != "" {
				h[http.CanonicalHeaderKey(k)] = []string{v}
			}
		}
		v, err := ParseView(h.Get)
		if err != nil {
			if !errors.Is(err, ErrNoSession) && !errors.Is(err, ErrBadHeaders) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if _, err := wire.ParseID(v.ID); err != nil || !v.Kind.Valid() {
			t.Fatalf("accepted view %+v", v)
		}
	})
}

// FuzzParseContextJSON feeds arbitrary JSON to the context parser the client
// uses on every answer: it must never panic.
func FuzzParseContextJSON(f *testing.F) {
	f.Add([]byte(`{"currency":"USD","custom":{"a":[1,2.5,{"$decimal":"1.5"}],"t":{"$time":"2026-01-01T00:00:00Z"}}}`))
	f.Add([]byte(`{"privacy":null,"public":{}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"custom":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseContextJSON(b)
	})
}
