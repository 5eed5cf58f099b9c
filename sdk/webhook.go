package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/sessionedge/sessionedge/sdk/wire"
)

// HeaderWebhookSignature carries a webhook's signature,
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>": the time
// is signed with the body, so a captured delivery cannot be replayed later.
// wire.SignWebhook makes one (for tests of receivers), wire.VerifyWebhook
// checks one; ParseWebhook does both the check and the decoding.
const HeaderWebhookSignature = wire.WebhookSignatureHeader

// WebhookTolerance is how far a webhook's signing time may be from the
// receiver's clock. The origin signs every delivery attempt anew.
const WebhookTolerance = 5 * time.Minute

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
// deduplicate by ID.
type WebhookEvent struct {
	ID      string    // unique per event ("<session id>.<version>")
	Type    string    // EventSessionStarted, EventSessionEnded, ...
	At      time.Time // when it happened
	Reason  string    // for an end: "abandoned", "idle-expired", "hard-expired", "revoked"
	Session *Session  // for an end: the session with its final context, as it was before it ended
}

// ParseWebhook verifies a webhook request's signature (in constant time,
// signed within WebhookTolerance of now) and decodes its event. It reads at
// most 1 MiB of the body.
func ParseWebhook(r *http.Request, secret []byte) (*WebhookEvent, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if err := wire.VerifyWebhook(secret, r.Header.Get(HeaderWebhookSignature), body, time.Now(), WebhookTolerance); err != nil {
		return nil, ErrBadSignature
	}
	var j struct {
		ID      string       `json:"eventId"`
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
