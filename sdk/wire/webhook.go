package wire

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Webhook signatures. The origin signs every delivery attempt of a session
// webhook, and receivers verify it, with the functions below, so the format
// is written once:
//
//	X-Sessionedge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." || body)>
//
// The time is signed with the body, so a captured delivery cannot be
// replayed once it is older than the receiver's tolerance. A header may carry
// several v1 values (one per secret while a secret rotates); one matching
// value verifies it.

// WebhookSignatureHeader is the request header that carries a webhook's
// signature.
const WebhookSignatureHeader = "X-Sessionedge-Signature"

// ErrWebhookSignature is returned by VerifyWebhook for a signature that is
// missing, malformed, made with another secret or for another body, or
// signed outside the tolerance.
var ErrWebhookSignature = errors.New("wire: webhook signature does not verify")

// SignWebhook returns the WebhookSignatureHeader value of body signed with
// secret at time t.
func SignWebhook(secret []byte, t time.Time, body []byte) string {
	return string(AppendWebhookSignature(nil, secret, t.Unix(), body))
}

// AppendWebhookSignature appends the WebhookSignatureHeader value of body
// signed with secret at unixSeconds to dst.
func AppendWebhookSignature(dst, secret []byte, unixSeconds int64, body []byte) []byte {
	dst = append(dst, "t="...)
	start := len(dst)
	dst = strconv.AppendInt(dst, unixSeconds, 10)
	ts := dst[start:]
	mac := webhookMAC(secret, ts, body)
	dst = append(dst, ",v1="...)
	const digits = "0123456789abcdef"
	for _, c := range mac {
		dst = append(dst, digits[c>>4], digits[c&0xf])
	}
	return dst
}

func webhookMAC(secret, ts, body []byte) [32]byte {
	return hmacSHA256(secret, ts, []byte{'.'}, body)
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

// decodeHex decodes exactly len(dst) bytes of lower- or upper-case hex.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
