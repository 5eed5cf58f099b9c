package sdk

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// HeaderWebhookSignature carries a webhook's signature:
// "sha256=" and the hex HMAC-SHA256 of the body under the webhook secret.
const HeaderWebhookSignature = "X-Sessionedge-Signature"

// The webhook event types.
const (
	EventSessionStarted = "session.started"
	EventSessionEnded   = "session.ended"
)

// ErrBadSignature is returned by ParseWebhook for a webhook whose signature
// does not verify: it did not come from the origin, or was changed.
var ErrBadSignature = errors.New("sessionedge: webhook signature does not verify")

// WebhookEvent is one webhook delivery of the origin. Deliveries are
// at-least-once: a receiver may see the same event twice and should
// deduplicate by ID (or by session id and type).
type WebhookEvent struct {
	ID      string    // unique per event
	Type    string    // EventSessionStarted or EventSessionEnded
	At      time.Time // when the session started or ended
	Reason  string    // for an end: "abandoned", "idle-expired", "hard-expired", "revoked"
	Session *Session  // for an end: the session with its final context, as it was before it ended
}

// SignWebhook returns the HeaderWebhookSignature value of body under secret.
func SignWebhook(body, secret []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// ParseWebhook verifies a webhook request's signature (in constant time)
// and decodes its event. It reads at most 1 MiB of the body.
func ParseWebhook(r *http.Request, secret []byte) (*WebhookEvent, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	sig := r.Header.Get(HeaderWebhookSignature)
	got, err := hex.DecodeString(strings.TrimPrefix(sig, "sha256="))
	if err != nil || !strings.HasPrefix(sig, "sha256=") {
		return nil, ErrBadSignature
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return nil, ErrBadSignature
	}
	var j struct {
		ID      string       `json:"id"`
		Type    string       `json:"type"`
		At      string       `json:"at"`
		Reason  string       `json:"reason"`
		Session *sessionJSON `json:"session"`
	}
	if err := json.Unmarshal(body, &j); err != nil {
		return nil, fmt.Errorf("%w: webhook: %v", errDecode, err)
	}
	ev := &WebhookEvent{ID: j.ID, Type: j.Type, Reason: j.Reason}
	if ev.At, err = parseTime(j.At); err != nil {
		return nil, fmt.Errorf("%w: webhook at: %v", errDecode, err)
	}
	if j.Session != nil {
		if ev.Session, err = j.Session.session(); err != nil {
			return nil, fmt.Errorf("%w: webhook session: %v", errDecode, err)
		}
	}
	return ev, nil
}
