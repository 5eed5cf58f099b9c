package wire

import (
	"errors"
	"strconv"
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
