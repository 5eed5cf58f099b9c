package harness_test

import (
	"net"
	"net/http"
	"testing"
)

// startServer starts an HTTP server on a free loopback port that answers
// with x-answer: from-server, and stops it when the test ends.
func startServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-answer", "from-server")
		w.WriteHeader(200)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}
