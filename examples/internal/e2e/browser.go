// Package e2e runs the examples end to end in tests: it plays a browser over
// plain HTTP, and starts the origin, the edge proxy with the filter, and an
// example app on free loopback ports.
package e2e

import "github.com/sessionedge/sessionedge/internal/webclient"

// Browser is a minimal browser for tests (webclient.Browser): it keeps
// cookies by name, follows redirects, and records the Set-Cookie headers and
// any x-session-* header it saw.
type Browser = webclient.Browser

// Page is an answer after redirects.
type Page = webclient.Page

// NewBrowser returns a browser for the site at base.
func NewBrowser(base string) *Browser { return webclient.New(base) }
