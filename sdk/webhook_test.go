package sdk

import (
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
		{name: "signed", sig: wire.SignWebhook(secret, now, []byte(body)), body: body},
		{name: "unsigned", sig: "", body: body, wantErr: ErrBadSignature},
		{name: "other secret", sig: wire.SignWebhook([]byte("other"), now, []byte(body)), body: body, wantErr: ErrBadSignature},
		{name: "changed body", sig: wire.SignWebhook(secret, now, []byte(body)), body: strings.Replace(body, "c-9", "c-8", 1), wantErr: ErrBadSignature},
		{name: "replayed an hour later", sig: wire.SignWebhook(secret, now.Add(-time.Hour), []byte(body)), body: body, wantErr: ErrBadSignature},
		{name: "time changed", sig: strings.Replace(wire.SignWebhook(secret, now, []byte(body)), "t=", "t=1", 1), body: body, wantErr: ErrBadSignature},
		{name: "not hex", sig: "t=1,v1=zz", body: body, wantErr: ErrBadSignature},
		{name: "two times", sig: "t=1," + wire.SignWebhook(secret, now, []byte(body)), body: body, wantErr: ErrBadSignature},
		{name: "rotating: one of two v1 matches", sig: wire.SignWebhook(secret, now, []byte(body)) + ",v1=" + strings.Repeat("0", 64), body: body},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/hook", strings.NewReader(tt.body))
			if tt.sig != "" {
				req.Header.Set(HeaderWebhookSignature, tt.sig)
			}
			ev, err := ParseWebhook(req, secret)
			if errorCase(t, err, tt.wantErr) {
				return
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

// TestWebhookSignatureVector pins the signature format with a value computed
// outside Go (Python's hmac module), so the format cannot drift unnoticed.
func TestWebhookSignatureVector(t *testing.T) {
	const want = "t=1767225600,v1=7659d4c2a96c257cb46b0b56ced1a25609c819ce4c43d7568a6de9739e0f5fce"
	body := []byte(`{"type":"session.started"}`)
	if got := wire.SignWebhook([]byte("whsec-test"), time.Unix(1767225600, 0), body); got != want {
		t.Fatalf("signature %q, want %q", got, want)
	}
	at := time.Unix(1767225600+60, 0)
	if err := wire.VerifyWebhook([]byte("whsec-test"), want, body, at, WebhookTolerance); err != nil {
		t.Fatal(err)
	}
	if err := wire.VerifyWebhook([]byte("whsec-test"), want, body, at.Add(time.Hour), WebhookTolerance); err == nil {
		t.Fatal("a signature an hour old verified")
	}
}

// TestParseWebhookEventTypes decodes every event type the origin sends, with
// the session it is about.
func TestParseWebhookEventTypes(t *testing.T) {
	secret := []byte("webhook-secret")
	for _, tt := range []struct{ typ, reason, kind string }{
		{EventSessionStarted, "", "anonymous"},
		{EventSessionChanged, "", "anonymous"},
		{EventSessionLogin, "", "customer"},
		{EventSessionLogout, "", "anonymous"},
		{EventSessionFlushed, "", "anonymous"},
		{EventSessionEnded, ReasonEvicted, "customer"},
		{EventSessionEnded, ReasonRevoked, "customer"},
	} {
		body := `{"type":"` + tt.typ + `","eventId":"e-` + tt.typ + `","id":"` + testID + `","at":"2026-01-02T03:04:05.000Z"`
		if tt.reason != "" {
			body += `,"reason":"` + tt.reason + `"`
		}
		body += `,"session":{"id":"` + testID + `","kind":"` + tt.kind + `","generation":2,"version":7,"modified":"2026-01-02T03:04:05.000Z","context":{"currency":"CHF"}}}`
		req := httptest.NewRequest("POST", "/hook", strings.NewReader(body))
		req.Header.Set(HeaderWebhookSignature, wire.SignWebhook(secret, time.Now(), []byte(body)))
		ev, err := ParseWebhook(req, secret)
		if err != nil {
			t.Fatalf("%s: %v", tt.typ, err)
		}
		if ev.Type != tt.typ || ev.ID != "e-"+tt.typ || ev.SessionID != testID || ev.Reason != tt.reason ||
			ev.Session == nil || ev.Session.Kind.String() != tt.kind || ev.Session.Text(wire.FieldCurrency) != "CHF" || ev.Session.Modified.IsZero() {
			t.Fatalf("%s: event %+v session %+v", tt.typ, ev, ev.Session)
		}
	}
	// An event without a session names it by id alone.
	body := `{"type":"session.flushed","eventId":"e","id":"` + testID + `","at":"2026-01-02T03:04:05.000Z"}`
	req := httptest.NewRequest("POST", "/hook", strings.NewReader(body))
	req.Header.Set(HeaderWebhookSignature, wire.SignWebhook(secret, time.Now(), []byte(body)))
	if ev, err := ParseWebhook(req, secret); err != nil || ev.SessionID != testID || ev.Session != nil {
		t.Fatalf("event %+v, %v", ev, err)
	}
}
