//go:build !wasip1

package wire

import (
	"strconv"
	"strings"
	"time"
)

// SignWebhook returns the WebhookSignatureHeader value of body signed with
// secret at time t.
func SignWebhook(secret []byte, t time.Time, body []byte) string {
	return string(AppendWebhookSignature(nil, secret, t.Unix(), body))
}

// VerifyWebhook checks a WebhookSignatureHeader value against body and
// secret, in constant time, and that it was signed within tolerance of now
// (either way).
func VerifyWebhook(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			if ts != "" {
				return ErrWebhookSignature
			}
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	if ts == "" || len(ts) > 19 || len(sigs) == 0 {
		return ErrWebhookSignature
	}
	for _, c := range []byte(ts) {
		if c < '0' || c > '9' {
			return ErrWebhookSignature
		}
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrWebhookSignature
	}
	if d := now.Sub(time.Unix(secs, 0)); d > tolerance || d < -tolerance {
		return ErrWebhookSignature
	}
	want := webhookMAC(secret, []byte(ts), body)
	ok := false
	for _, s := range sigs {
		var got [32]byte
		if !decodeHex(got[:], s) {
			continue
		}
		if ctEqual(got[:], want[:]) {
			ok = true
		}
	}
	if !ok {
		return ErrWebhookSignature
	}
	return nil
}
