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

// The webhook event types. For one session they come in the order of what
// happened: started, then changed, login, logout and flushed as they occur,
// and ended last.
const (
	// EventSessionStarted: the origin stored the session for the first
	// time (created by an app, or reported by the edge that minted it).
	EventSessionStarted = "session.started"
	// EventSessionLogin: the session logged in (Session.CustomerID says
	// as whom).
	EventSessionLogin = "session.login"
	// EventSessionLogout: the session logged out, by the app, the shopper
	// (through the edge) or the origin when a logged-in session idled out.
	EventSessionLogout = "session.logout"
	// EventSessionChanged: the session's context changed. Changes are
	// coalesced per session within the origin's webhook.changedWindow:
	// one event per window, with the state at its end; a login, logout,
	// end or flush sends a pending one first.
	EventSessionChanged = "session.changed"
	// EventSessionFlushed: an app asked for the current context
	// (Client.Flush); the session goes on.
	EventSessionFlushed = "session.flushed"
	// EventSessionEnded: the session ended; Reason says why and Session
	// holds its final context.
	EventSessionEnded = "session.ended"
)

// The reasons of EventSessionEnded (WebhookEvent.Reason, Session.Ended).
const (
	ReasonAbandoned   = "abandoned"    // ended explicitly (Client.End)
	ReasonIdleExpired = "idle-expired" // its idle deadline passed
	ReasonHardExpired = "hard-expired" // its hard deadline passed
	ReasonRevoked     = "revoked"      // revoked: RevokeCustomer, EndPeers, "log out other devices"
	ReasonEvicted     = "evicted"      // displaced by a newer login under the customer's session limit
)

// ErrBadSignature is returned by ParseWebhook for a webhook whose signature
// does not verify: it did not come from the origin, or was changed.
var ErrBadSignature = errors.New("sessionedge: webhook signature does not verify")

// WebhookEvent is one webhook delivery of the origin. Deliveries are
// at-least-once: a receiver may see the same event twice and should
// deduplicate by ID.
type WebhookEvent struct {
	ID        string    // unique per event: deduplicate on it
	Type      string    // EventSessionStarted, EventSessionChanged, ...
	SessionID string    // the session it is about
	At        time.Time // when it happened
	Reason    string    // for an end: ReasonAbandoned, ReasonIdleExpired, ReasonHardExpired, ReasonRevoked or ReasonEvicted
	// Session is the session the event is about, with its context: for an
	// end, as it was before it ended.
	Session *Session
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
		ID        string       `json:"eventId"`
		Type      string       `json:"type"`
		SessionID string       `json:"id"`
		At        string       `json:"at"`
		Reason    string       `json:"reason"`
		Session   *sessionJSON `json:"session"`
	}
	if err := json.Unmarshal(body, &j); err != nil {
		return nil, fmt.Errorf("%w: webhook: %v", errDecode, err)
	}
	ev := &WebhookEvent{ID: j.ID, Type: j.Type, SessionID: j.SessionID, Reason: j.Reason}
	if ev.At, err = parseTime(j.At); err != nil {
		return nil, fmt.Errorf("%w: webhook at: %v", errDecode, err)
	}
	if j.Session != nil {
		if ev.Session, err = j.Session.session(); err != nil {
			return nil, fmt.Errorf("%w: webhook session: %v", errDecode, err)
		}
		if ev.SessionID == "" {
			ev.SessionID = ev.Session.ID
		}
	}
	return ev, nil
}
