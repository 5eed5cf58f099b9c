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
	"strconv"
	"strings"
	"time"
)

// HeaderWebhookSignature carries a webhook's signature,
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>": the time
// is signed with the body, so a captured delivery cannot be replayed later.
const HeaderWebhookSignature = "X-Sessionedge-Signature"

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
	Type    string    // EventSessionStarted or EventSessionEnded
	At      time.Time // when the session started or ended
	Reason  string    // for an end: "abandoned", "idle-expired", "hard-expired", "revoked"
	Session *Session  // for an end: the session with its final context, as it was before it ended
}

// SignWebhook returns the HeaderWebhookSignature value of body signed with
// secret at time t, as the origin computes it (for tests of receivers).
func SignWebhook(body, secret []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(webhookMAC(secret, ts, body))
}

func webhookMAC(secret []byte, ts string, body []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}

// ParseWebhook verifies a webhook request's signature (in constant time,
// signed within WebhookTolerance of now) and decodes its event. It reads at
// most 1 MiB of the body.
func ParseWebhook(r *http.Request, secret []byte) (*WebhookEvent, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	var ts, v1 string
	for _, part := range strings.Split(r.Header.Get(HeaderWebhookSignature), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1 = v
		}
	}
	got, err := hex.DecodeString(v1)
	secs, terr := strconv.ParseInt(ts, 10, 64)
	if err != nil || terr != nil || len(got) == 0 {
		return nil, ErrBadSignature
	}
	if d := time.Since(time.Unix(secs, 0)); d > WebhookTolerance || d < -WebhookTolerance {
		return nil, ErrBadSignature
	}
	if !hmac.Equal(got, webhookMAC(secret, ts, body)) {
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
