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
)

// Error is an error answer of the origin API.
type Error struct {
	Status         int           // HTTP status
	Code           string        // the API's error code, e.g. "not_found"
	Message        string        // human-readable detail from the origin
	Field          string        // for invalid_input and too_large: the field at fault ("custom.color"), if the origin named one
	CurrentVersion uint64        // for precondition_failed: the session's current version
	RetryAfter     time.Duration // for unavailable: how long the origin asked to wait, if it did
	Method, Path   string        // the request that failed
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

// Is makes errors.Is match the sentinel of the error's code, or of its status
// when the origin sent no code this SDK knows.
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
