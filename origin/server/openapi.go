package server

import (
	_ "embed"

	"github.com/valyala/fasthttp"
)

// openAPI is the OpenAPI 3.1 document of the API, kept next to the code;
// openapi_test.go fails when a route is missing from it.
//
//go:embed openapi.json
var openAPI []byte

func (s *Server) handleOpenAPI(ctx *fasthttp.RequestCtx, _ params, _ access) error {
	ctx.SetContentType("application/json")
	ctx.SetBody(openAPI)
	return nil
}
