package ctxjson

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

func TestValueRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		v    wire.Value
		json string
	}{
		{"text", wire.Text("a\"b\n"), `"a\"b\n"`},
		{"int", wire.Int(-42), `-42`},
		{"float", wire.Float(1), `1.0`},
		{"float exp", wire.Float(1.5e300), `1.5e+300`},
		{"bool", wire.Bool(true), `true`},
		{"time", wire.Time(1700000000123), `{"$time":"2023-11-14T22:13:20.123Z"}`},
		{"decimal", wire.Decimal(1999, -2), `{"$decimal":"19.99"}`},
		{"small decimal", wire.Decimal(-5, -3), `{"$decimal":"-0.005"}`},
		{"list", wire.List(wire.Int(1), wire.Text("x")), `[1,"x"]`},
		{"map", wire.Map(wire.Attr{Key: "b", Value: wire.Int(2)}, wire.Attr{Key: "a", Value: wire.Int(1)}), `{"a":1,"b":2}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := string(AppendValue(nil, tc.v))
			if got != tc.json {
				t.Fatalf("AppendValue = %s, want %s", got, tc.json)
			}
			var x any
			if err := Decode([]byte(got), &x); err != nil {
				t.Fatal(err)
			}
			back, err := ParseValue("v", x)
			if err != nil {
				t.Fatal(err)
			}
			if !back.Equal(tc.v) {
				t.Fatalf("round trip: %+v, want %+v", back, tc.v)
			}
		})
	}
}

func TestContextOpsErrors(t *testing.T) {
	tests := []struct {
		name, body, field string
	}{
		{"unknown name", `{"colour":"red"}`, "colour"},
		{"customerId", `{"customerId":"c"}`, "customerId"},
		{"namespace not object", `{"custom":5}`, "custom"},
		{"bad decimal", `{"custom":{"p":{"$decimal":"x"}}}`, "custom.p"},
		{"int overflow", `{"custom":{"n":123456789012345678901234}}`, "custom.n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var obj map[string]any
			if err := Decode([]byte(tc.body), &obj); err != nil {
				t.Fatal(err)
			}
			_, err := ContextOps(obj, false)
			var fe *wire.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("ContextOps = %v, want field %s", err, tc.field)
			}
		})
	}
}

func TestSessionJSONIsValid(t *testing.T) {
	s := &wire.Session{ID: wire.ID{1}, Kind: wire.KindCustomer, Generation: 2, Version: 3, Created: 1000}
	s.Fields[wire.FieldCurrency] = wire.Text("EUR")
	s.Attrs[wire.NamespaceCustom] = wire.Attrs{{Key: "c", Value: wire.Text("red")}}
	var x map[string]any
	if err := json.Unmarshal(AppendSession(nil, s), &x); err != nil {
		t.Fatal(err)
	}
	ctx := x["context"].(map[string]any)
	if ctx["currency"] != "EUR" || ctx["custom"].(map[string]any)["c"] != "red" || x["kind"] != "customer" {
		t.Fatalf("session JSON: %v", x)
	}
}
