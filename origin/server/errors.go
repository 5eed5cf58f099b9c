package server

import (
	"context"
	"errors"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/sessionedge/sessionedge/origin/store"
	"github.com/sessionedge/sessionedge/sdk/wire"
)

// The errors of the API layer, besides those of store and wire.
var (
	errGone           = errors.New("session has ended")
	errUnauthorized   = errors.New("missing or unknown API key")
	errForbidden      = errors.New("API key lacks the scope")
	errRouteNotFound  = errors.New("no such route")
	errMethod         = errors.New("method not allowed on this route")
	errBodyTooLarge   = errors.New("request body too large")
	errBadCBOR        = errors.New("malformed CBOR body")
	errShuttingDown   = errors.New("origin is shutting down")
	errTooManyRetries = errors.New("too many concurrent writers")
	errHeaderTooLarge = errors.New("request head too large")

	errTokenRequired  = &apiError{fasthttp.StatusUnauthorized, "token_required", "X-Session-Token", "this key needs the session's token in X-Session-Token"}
	errInvalidToken   = &apiError{fasthttp.StatusUnauthorized, "invalid_token", "X-Session-Token", "the session token does not verify"}
	errTokenExpired   = &apiError{fasthttp.StatusUnauthorized, "token_expired", "X-Session-Token", "the session token has expired"}
	errTokenMismatch  = &apiError{fasthttp.StatusForbidden, "token_mismatch", "X-Session-Token", "the session token is for another session"}
	errNotCustomer    = &apiError{fasthttp.StatusConflict, "not_logged_in", "", "the session is not logged in"}
	errRequestTimeout = &apiError{fasthttp.StatusRequestTimeout, "request_timeout", "request", "the request head did not arrive in time (http.headerTimeout)"}
	errSessionLimit   = &apiError{fasthttp.StatusConflict, "session_limit", "", "the customer is logged in with the most sessions allowed (customerSessions.max)"}
)

// apiError is an error with its own status, code and field.
type apiError struct {
	status      int
	code, field string
	msg         string
}

func (e *apiError) Error() string { return e.msg }

// forbiddenField refuses what the key's scope may not touch.
func forbiddenField(field, msg string) error {
	return &apiError{fasthttp.StatusForbidden, "forbidden", field, msg}
}

// staleGenerationError reports a session token of another generation than
// the session's.
type staleGenerationError struct{ current uint32 }

func (e *staleGenerationError) Error() string {
	return "the session token is of another generation than the session (now " + strconv.FormatUint(uint64(e.current), 10) + ")"
}

// preconditionError reports an If-Match that does not match.
type preconditionError struct{ current uint64 }

func (e *preconditionError) Error() string {
	return "If-Match does not match the current version " + strconv.FormatUint(e.current, 10)
}

// inputError is a bad request parameter or body shape.
type inputError struct{ field, msg string }

func (e *inputError) Error() string { return e.field + ": " + e.msg }

func badInput(field, msg string) error { return &inputError{field, msg} }

// writeError is the one place that maps errors to HTTP statuses and the
// JSON error body {"error":{"code","message","field"}}.
func writeError(ctx *fasthttp.RequestCtx, err error) {
	status, code, field := fasthttp.StatusInternalServerError, "internal", ""
	msg := err.Error()
	var fe *wire.FieldError
	var pe *preconditionError
	var ie *inputError
	var ae *apiError
	var ge *staleGenerationError
	switch {
	case errors.As(err, &ae):
		status, code, field, msg = ae.status, ae.code, ae.field, ae.msg
	case errors.As(err, &ge):
		status, code = fasthttp.StatusConflict, "stale_generation"
	case errors.As(err, &pe):
		status, code = fasthttp.StatusPreconditionFailed, "precondition_failed"
		ctx.Response.Header.Set("ETag", `"`+strconv.FormatUint(pe.current, 10)+`"`)
	case errors.As(err, &fe):
		status, code, field, msg = fasthttp.StatusBadRequest, "invalid_input", fe.Field, fe.Reason
	case errors.As(err, &ie):
		status, code, field, msg = fasthttp.StatusBadRequest, "invalid_input", ie.field, ie.msg
	case errors.Is(err, wire.ErrJSON), errors.Is(err, errBadCBOR), errors.Is(err, wire.ErrCBOR),
		errors.Is(err, wire.ErrBadDelta):
		status, code = fasthttp.StatusBadRequest, "invalid_input"
	case errors.Is(err, errUnauthorized):
		status, code = fasthttp.StatusUnauthorized, "unauthorized"
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="sessionedge"`)
	case errors.Is(err, errForbidden):
		status, code = fasthttp.StatusForbidden, "forbidden"
	case errors.Is(err, store.ErrNotFound), errors.Is(err, errRouteNotFound):
		status, code = fasthttp.StatusNotFound, "not_found"
	case errors.Is(err, errMethod):
		status, code = fasthttp.StatusMethodNotAllowed, "method_not_allowed"
	case errors.Is(err, store.ErrConflict), errors.Is(err, wire.ErrVersionMismatch), errors.Is(err, errTooManyRetries):
		status, code = fasthttp.StatusConflict, "conflict"
	case errors.Is(err, errGone), errors.Is(err, wire.ErrEnded):
		status, code = fasthttp.StatusGone, "gone"
	case errors.Is(err, errBodyTooLarge):
		status, code = fasthttp.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, errHeaderTooLarge):
		status, code = fasthttp.StatusRequestHeaderFieldsTooLarge, "too_large"
	case errors.Is(err, store.ErrClosed), errors.Is(err, store.ErrUnavailable), errors.Is(err, errShuttingDown), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled):
		status, code = fasthttp.StatusServiceUnavailable, "unavailable"
		ctx.Response.Header.Set("Retry-After", "1")
	}
	if status == fasthttp.StatusInternalServerError {
		msg = "internal error"
	}
	b := append(make([]byte, 0, 128), `{"error":{"code":"`...)
	b = append(b, code...)
	b = append(b, `","message":`...)
	b = wire.AppendStringJSON(b, msg)
	if field != "" {
		b = wire.AppendStringJSON(append(b, `,"field":`...), field)
	}
	if pe != nil {
		b = strconv.AppendUint(append(b, `,"currentVersion":`...), pe.current, 10)
	}
	if ge != nil {
		b = strconv.AppendUint(append(b, `,"currentGeneration":`...), uint64(ge.current), 10)
	}
	b = append(b, "}}"...)
	ctx.Response.ResetBody()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}
