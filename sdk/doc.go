// Package sdk is the Go SDK for apps that use sessionedge.
//
// An app behind the edge reads the session of each request from the
// x-session-* headers the edge forwards (ParseView, or the middleware in
// sdk/sessionhttp for net/http and sdk/sessionfasthttp for fasthttp), and
// changes sessions through the origin API with a Client:
//
//	c, err := sdk.New(sdk.Config{BaseURL: "http://127.0.0.1:8081", APIKey: key})
//	s, err := c.Patch(ctx, view.ID, new(sdk.Patch).SetField(wire.FieldCartID, wire.Text(cartID)), sdk.Upsert())
//
// Every Client method takes a context.Context and returns errors a caller
// tests with errors.Is (ErrNotFound, ErrGone, ErrPreconditionFailed, ...) or
// inspects with errors.As and *Error (the field at fault, the current version).
// Idempotent calls are retried with backoff when the origin is unavailable;
// the Client reuses keep-alive connections.
//
// Changes the app makes reach the edges through the origin's change feed,
// within a sync interval. A page rendered right after a write should use the
// session the write returned (or read it with Client.Get) rather than the
// request's View, which the edge built before the write.
//
// Sessions the edge minted exist at the origin only after the edge reported
// them, so an app's first write to such a session passes Upsert.
//
// After Login and Logout the session has a new generation and the browser
// needs a new cookie: the app hands the returned token to the edge in the
// x-session-token response header (sessionhttp.SetToken), which the edge
// turns into Set-Cookie and strips.
package sdk
