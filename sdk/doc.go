// Package sdk is the Go SDK for apps that use sessionedge.
//
// An app behind the edge reads the session of each request from the
// x-session-* headers the edge forwards, after checking the edge's signed
// assertion over them (Verifier; the middleware in sdk/sessionhttp for
// net/http and sdk/sessionfasthttp for fasthttp does both), and changes
// sessions through the origin API with a Client:
//
//	c, err := sdk.New(sdk.Config{BaseURL: "http://127.0.0.1:8081", APIKey: key})
//	s, err := c.Patch(r.Context(), view.ID, new(sdk.Patch).SetField(wire.FieldCartID, wire.Text(cartID)), sdk.Upsert())
//
// Every Client method takes a context.Context and returns errors a caller
// tests with errors.Is (ErrNotFound, ErrGone, ErrPreconditionFailed, ...) or
// inspects with errors.As and *Error (the field at fault, the current version).
// Idempotent calls are retried with backoff when the origin is unavailable;
// the Client reuses keep-alive connections.
//
// Read-your-writes: given the request's context, a write to the request's
// session records the version it reached (WriteRecorder), and the middleware
// tells the edge in the x-session-written response header; the edge brings
// its copy up to that version before it serves the client's next request, so
// a page rendered after a redirect shows the write. Other writes reach the
// edges through the origin's change feed, within a sync interval.
//
// Sessions the edge minted exist at the origin only after the edge reported
// them, so an app's first write to such a session passes Upsert.
//
// After Login and Logout the session has a new generation and the browser
// needs a new cookie: the app hands the returned token to the edge in the
// x-session-token response header (sessionhttp.SetToken), which the edge
// turns into Set-Cookie and strips.
//
// Secrets (the API key, the assertion keys, a webhook secret) come from the
// environment or files, never from flags: SecretFromEnv,
// AssertionKeysFromEnv.
package sdk
