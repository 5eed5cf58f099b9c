// Command caddy is Caddy with its standard modules plus the proxy_wasm
// handler of package edge/caddy, which runs a proxy-wasm filter (the
// sessionedge filter, or any other) in front of Caddy's other handlers.
// docs/caddy.md has the configuration reference and the xcaddy recipe that
// builds the same binary.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/sessionedge/sessionedge/edge/caddy"
)

func main() {
	caddycmd.Main()
}
