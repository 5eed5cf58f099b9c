package harness_test

import (
	"fmt"
	"time"

	"github.com/sessionedge/sessionedge/edge/harness"
)

// exampleT stands in for the *testing.T a real test passes to harness.New.
type exampleT struct{ cleanups []func() }

func (t *exampleT) Helper()                           {}
func (t *exampleT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Log(args ...any)                   {}
func (t *exampleT) Errorf(format string, args ...any) { fmt.Printf("error: "+format+"\n", args...) }
func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) done() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

// A request goes through the filter to a fake upstream; the result holds what
// the upstream and the client saw.
func ExampleHarness_Do() {
	t := &exampleT{} // in a test: t *testing.T
	defer t.done()
	h := harness.New(t, harness.Config{Wasm: "../testdata/conformance.wasm", PluginConfig: `{}`})
	h.SetUpstream(func(req *harness.UpstreamRequest) *harness.Response {
		return &harness.Response{Status: 200, Body: []byte("hello " + req.Path)}
	})
	res := h.Do(&harness.Request{Method: "GET", Path: "/cart", Headers: harness.Headers{{"cookie", "a=1"}}})
	res.ExpectStatus(t, 200).ExpectUpstreamHeader(t, "x-wat", "1")
	fmt.Println(res.Response.Status, string(res.Response.Body), res.UpstreamHeader("x-wat"))
	// Output: 200 hello /cart 1
}

// A fake cluster answers the guest's proxy_http_call; the paused request
// resumes when the guest has the answer.
func ExampleHarness_SetCluster() {
	t := &exampleT{}
	defer t.done()
	h := harness.New(t, harness.Config{Wasm: "../testdata/conformance.wasm"})
	h.SetCluster("backend", func(req *harness.CallRequest) (*harness.Response, error) {
		return &harness.Response{Status: 200, Headers: harness.Headers{{"x-answer", "from " + req.Authority}}}, nil
	})
	res := h.Get("/call")
	fmt.Println(res.Response.Status, res.UpstreamHeader("x-answer"), len(h.Calls()))
	// Output: 200 from origin 1
}

// The guest's clock is the harness clock: advance it to reach idle or hard
// expiry without sleeping, and tick by hand.
func ExampleHarness_Tick() {
	t := &exampleT{}
	defer t.done()
	h := harness.New(t, harness.Config{
		Wasm:  "../testdata/conformance.wasm",
		VMs:   2,
		Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	})
	h.Clock().Advance(31 * time.Minute)
	h.Tick() // proxy_on_tick on both VMs, then waits for the HTTP calls they started
	fmt.Println(h.Clock().Now().Format(time.Kitchen), h.Metric("wat_ticks"))
	// Output: 12:31AM 2
}

// A local answer from the guest never reaches the upstream.
func ExampleResult_ExpectLocal() {
	t := &exampleT{}
	defer t.done()
	h := harness.New(t, harness.Config{Wasm: "../testdata/conformance.wasm"})
	res := h.Get("/local").ExpectLocal(t).ExpectStatus(t, 403)
	fmt.Println(res.Response.Status, res.LocalDetails, res.Upstream == nil)
	// Output: 403 denied true
}
