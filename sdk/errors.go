package sdk

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// The errors a Client returns, one per kind of failure a caller handles
// differently. Test for them with errors.Is; errors.As with *Error gives the
// status, the field at fault and, for ErrPreconditionFailed, the current
// version.
var (
	ErrInvalidInput       = errors.New("sessionedge: invalid input")
	ErrUnauthorized       = errors.New("sessionedge: unauthorized")
	ErrForbidden          = errors.New("sessionedge: forbidden")
	ErrNotFound           = errors.New("sessionedge: session not found")
	ErrConflict           = errors.New("sessionedge: conflict")
	ErrGone               = errors.New("sessionedge: session ended")
	ErrPreconditionFailed = errors.New("sessionedge: version does not match")
	ErrTooLarge           = errors.New("sessionedge: too large")
	ErrUnavailable        = errors.New("sessionedge: origin unavailable")

	// ErrSessionLimit: a login would pass the customer's session limit and
	// the origin is configured to refuse it (409 session_limit). With the
	// other setting the login succeeds and the customer's oldest session
	// ends with reason "evicted".
	ErrSessionLimit = errors.New("sessionedge: the customer has the most sessions allowed")
	// ErrNotLoggedIn: a logout with a session token (WithToken) of a
	// session that is not a customer session (409 not_logged_in).
	ErrNotLoggedIn = errors.New("sessionedge: the session is not logged in")
)

// The errors of a call made with the session's token (WithToken): the
// origin checks the token as it checks the edge's calls, so an app acts
// only for the login it saw. ErrStaleGeneration carries the session's
// generation in *Error.CurrentGeneration: a login or logout happened since
// the token was issued.
var (
	ErrTokenRequired   = errors.New("sessionedge: the session's token is required")            // 401 token_required
	ErrInvalidToken    = errors.New("sessionedge: the session token does not verify")          // 401 invalid_token
	ErrTokenExpired    = errors.New("sessionedge: the session token has expired")              // 401 token_expired
	ErrTokenMismatch   = errors.New("sessionedge: the session token is for another id")        // 403 token_mismatch
	ErrStaleGeneration = errors.New("sessionedge: the session token is of another generation") // 409 stale_generation
)

// Error is an error answer of the origin API.
type Error struct {
	Status         int    // HTTP status
	Code           string // the API's error code, e.g. "not_found"
	Message        string // human-readable detail from the origin
	Field          string // for invalid_input and too_large: the field at fault ("custom.color"), if the origin named one
	CurrentVersion uint64 // for precondition_failed: the session's current version
	// CurrentGeneration is, for stale_generation, the session's generation.
	CurrentGeneration uint32
	RetryAfter        time.Duration // for unavailable: how long the origin asked to wait, if it did
	Method, Path      string        // the request that failed
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("sessionedge: %s %s: %d %s", e.Method, e.Path, e.Status, e.Code)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.Field != "" {
		msg += " (field " + e.Field + ")"
	}
	return msg
}

// Is makes errors.Is match the sentinel of the error's code, or of its
// status when the answer carried no code (a proxy's error page); an
// unknown code matches none but ErrUnavailable's statuses. A code has one sentinel: a
// 409 session_limit is ErrSessionLimit, not ErrConflict, and a 401
// token_expired is ErrTokenExpired, not ErrUnauthorized (which always means
// the API key).
func (e *Error) Is(target error) bool {
	return target != nil && e.sentinel() == target
}

func (e *Error) sentinel() error {
	switch e.Code {
	case "invalid_input":
		return ErrInvalidInput
	case "unauthorized":
		return ErrUnauthorized
	case "forbidden":
		return ErrForbidden
	case "not_found":
		return ErrNotFound
	case "conflict":
		return ErrConflict
	case "gone":
		return ErrGone
	case "precondition_failed":
		return ErrPreconditionFailed
	case "too_large":
		return ErrTooLarge
	case "unavailable":
		return ErrUnavailable
	case "session_limit":
		return ErrSessionLimit
	case "not_logged_in":
		return ErrNotLoggedIn
	case "token_required":
		return ErrTokenRequired
	case "invalid_token":
		return ErrInvalidToken
	case "token_expired":
		return ErrTokenExpired
	case "token_mismatch":
		return ErrTokenMismatch
	case "stale_generation":
		return ErrStaleGeneration
	}
	if e.Code != "" && e.Status != http.StatusServiceUnavailable && e.Status != http.StatusBadGateway && e.Status != http.StatusGatewayTimeout {
		// A code this SDK does not know: its status does not say enough
		// to pick a sentinel (a new 409 is not a lost compare-and-set).
		return nil
	}
	switch e.Status {
	case http.StatusBadRequest:
		return ErrInvalidInput
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict:
		return ErrConflict
	case http.StatusGone:
		return ErrGone
	case http.StatusPreconditionFailed:
		return ErrPreconditionFailed
	case http.StatusRequestEntityTooLarge:
		return ErrTooLarge
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return ErrUnavailable
	}
	return nil
}
