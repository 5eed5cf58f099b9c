package sdk

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

func TestParseWebhook(t *testing.T) {
	secret := []byte("webhook-secret")
	now := time.Now()
	body := `{"type":"session.ended","eventId":"ev-1","id":"` + testID + `","at":"2026-01-02T03:04:05.000Z","reason":"idle-expired",
		"session":{"id":"` + testID + `","kind":"anonymous","generation":1,"version":4,"context":{"cartId":"c-9","custom":{"items.mug":2}}}}`
	tests := []struct {
		name    string
		sig     string
		body    string
		wantErr error
	}{
		{name: "signed", sig: SignWebhook([]byte(body), secret, now), body: body},
		{name: "unsigned", sig: "", body: body, wantErr: ErrBadSignature},
		{name: "other secret", sig: SignWebhook([]byte(body), []byte("other"), now), body: body, wantErr: ErrBadSignature},
		{name: "changed body", sig: SignWebhook([]byte(body), secret, now), body: strings.Replace(body, "c-9", "c-8", 1), wantErr: ErrBadSignature},
		{name: "replayed an hour later", sig: SignWebhook([]byte(body), secret, now.Add(-time.Hour)), body: body, wantErr: ErrBadSignature},
		{name: "time changed", sig: strings.Replace(SignWebhook([]byte(body), secret, now), "t=", "t=1", 1), body: body, wantErr: ErrBadSignature},
		{name: "not hex", sig: "t=1,v1=zz", body: body, wantErr: ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/hook", strings.NewReader(tt.body))
			if tt.sig != "" {
				req.Header.Set(HeaderWebhookSignature, tt.sig)
			}
			ev, err := ParseWebhook(req, secret)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.ID != "ev-1" || ev.Type != EventSessionEnded || ev.Reason != "idle-expired" || ev.At.IsZero() {
				t.Fatalf("event %+v", ev)
			}
			if ev.Session.ID != testID || ev.Session.Text(wire.FieldCartID) != "c-9" {
				t.Fatalf("session %+v", ev.Session)
			}
			if v, _ := ev.Session.Attr(wire.NamespaceCustom, "items.mug"); v.Int != 2 {
				t.Fatalf("custom %+v", ev.Session.Attrs)
			}
		})
	}
}
