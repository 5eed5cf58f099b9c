//go:build !wasip1

package main_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/sessionedge/sessionedge/internal/testenv"
	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/abi"
	"github.com/sessionedge/sessionedge/wasm/internal/proxytest"
)

// The .wasm tests build the module once (GOOS=wasip1 GOARCH=wasm
// -buildmode=c-shared, exactly as `make wasm`). The scenarios run it in the
// edge's production host (host_test.go). This file keeps a second, minimal
// host for the benchmarks: its env imports are thin memory adapters over
// the same abi mock the native benchmark uses, so the wasm/native ratio
// measures the guest, not the host.

var (
	buildOnce sync.Once
	wasmPath  string
	buildErr  error
	wasmDir   string
)

// buildModule compiles ./ (package main) to a .wasm in a temporary
// directory, once per test binary.
func buildModule(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		wasmDir, buildErr = os.MkdirTemp("", "sessionedge-wasm")
		if buildErr != nil {
			return
		}
		wasmPath = filepath.Join(wasmDir, "sessionedge.wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s", "-o", wasmPath, ".")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{err: err, out: string(out)}
		}
	})
	if buildErr != nil {
		tb.Fatalf("building the module: %v", buildErr)
	}
	return wasmPath
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

func TestMain(m *testing.M) {
	code := m.Run()
	if wasmDir != "" {
		os.RemoveAll(wasmDir)
	}
	os.Exit(code)
}

// engine is a wazero runtime with the env host module and the compiled
// guest, shared by every test of the binary.
type engine struct {
	rt       wazero.Runtime
	compiled wazero.CompiledModule
}

var (
	engineOnce sync.Once
	theEngine  *engine
	engineErr  error
)

func getEngine(tb testing.TB) *engine {
	tb.Helper()
	path := buildModule(tb)
	engineOnce.Do(func() {
		ctx := context.Background()
		bin, err := os.ReadFile(path)
		if err != nil {
			engineErr = err
			return
		}
		rt := wazero.NewRuntime(ctx)
		// The WASI functions count their calls (calls.wasi); the env
		// adapters count theirs themselves.
		wasi_snapshot_preview1.MustInstantiate(experimental.WithFunctionListenerFactory(ctx, wasiCounter{}), rt)
		if _, err := envModule(rt).Instantiate(ctx); err != nil {
			engineErr = err
			return
		}
		compiled, err := rt.CompileModule(ctx, bin)
		if err != nil {
			engineErr = err
			return
		}
		theEngine = &engine{rt: rt, compiled: compiled}
	})
	if engineErr != nil {
		tb.Fatalf("wazero: %v", engineErr)
	}
	return theEngine
}

// wasmGuest is one instance of the module.
type wasmGuest struct {
	m     *abi.Mock
	mod   api.Module
	fn    map[string]api.Function
	tb    testing.TB
	stack []uint64

	// The hot exports, looked up once, and the allocator's call stack.
	create, reqHeaders, respHeaders, done, log, del, alloc api.Function
	allocStack                                             []uint64
}

// calls counts the boundary crossings of the module, for the benchmarks'
// host-calls/op and export-calls/op: every env import by name, every WASI
// import, and every export the host calls (including the nested
// proxy_on_memory_allocate of a getter import).
// The counters are plain slice elements (a map update per call would be a
// measurable part of a 4 µs request).
var calls struct {
	envNames, wasiNames []string
	env, wasi           []uint64
	export              uint64
}

// callTotals returns the host calls (env and WASI) and export calls so far.
func callTotals() (host, export uint64) {
	for _, n := range calls.env {
		host += n
	}
	for _, n := range calls.wasi {
		host += n
	}
	return host, calls.export
}

// wasiCounter counts the calls of the WASI host functions.
type wasiCounter struct{}

func (wasiCounter) NewFunctionListener(def api.FunctionDefinition) experimental.FunctionListener {
	calls.wasiNames = append(calls.wasiNames, def.Name())
	calls.wasi = append(calls.wasi, 0)
	return wasiCount{i: len(calls.wasi) - 1}
}

type wasiCount struct{ i int }

func (c wasiCount) Before(context.Context, api.Module, api.FunctionDefinition, []uint64, experimental.StackIterator) {
	calls.wasi[c.i]++
}
func (wasiCount) After(context.Context, api.Module, api.FunctionDefinition, []uint64) {}
func (wasiCount) Abort(context.Context, api.Module, api.FunctionDefinition, error)    {}

// current is the guest whose export is running; the env functions read and
// write its memory. Tests drive one instance at a time.
var current *wasmGuest

func newWasm(tb testing.TB, m *abi.Mock) proxytest.Guest {
	e := getEngine(tb)
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize").
		WithSysWalltime().WithSysNanotime().WithRandSource(rand.Reader)
	mod, err := e.rt.InstantiateModule(context.Background(), e.compiled, cfg)
	if err != nil {
		tb.Fatalf("instantiate: %v", err)
	}
	tb.Cleanup(func() { mod.Close(context.Background()) })
	return wrapModule(tb, m, mod)
}

// wrapModule looks up the exports of an instance once.
func wrapModule(tb testing.TB, m *abi.Mock, mod api.Module) *wasmGuest {
	g := &wasmGuest{m: m, mod: mod, fn: map[string]api.Function{}, tb: tb}
	for _, name := range []string{"proxy_on_memory_allocate", "proxy_on_context_create", "proxy_on_vm_start",
		"proxy_on_configure", "proxy_on_tick", "proxy_on_request_headers", "proxy_on_request_body",
		"proxy_on_response_headers", "proxy_on_http_call_response", "proxy_on_done", "proxy_on_log", "proxy_on_delete",
		"proxy_on_request_trailers", "proxy_on_response_trailers"} {
		f := mod.ExportedFunction(name)
		if f == nil {
			tb.Fatalf("module does not export %s", name)
		}
		g.fn[name] = f
	}
	g.create, g.reqHeaders, g.respHeaders = g.fn["proxy_on_context_create"], g.fn["proxy_on_request_headers"], g.fn["proxy_on_response_headers"]
	g.done, g.log, g.del = g.fn["proxy_on_done"], g.fn["proxy_on_log"], g.fn["proxy_on_delete"]
	g.alloc, g.allocStack = g.fn["proxy_on_memory_allocate"], make([]uint64, 1)
	return g
}

func (g *wasmGuest) call(name string, args ...uint64) uint64 {
	return g.callFn(g.fn[name], name, args...)
}

// callFn calls f with a reused stack (CallWithStack), as a production host
// does, so the benchmarks do not measure wazero's per-call allocations.
func (g *wasmGuest) callFn(f api.Function, name string, args ...uint64) uint64 {
	abi.Use(g.m)
	prev := current
	current = g
	calls.export++
	stack := append(g.stack[:0], args...)
	if len(stack) == 0 {
		stack = append(stack, 0)
	}
	err := f.CallWithStack(context.Background(), stack)
	current = prev
	g.stack = stack
	if err != nil {
		g.tb.Fatalf("%s trapped: %v", name, err)
	}
	return stack[0]
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func (g *wasmGuest) ContextCreate(id, parent uint32) {
	g.callFn(g.create, "proxy_on_context_create", uint64(id), uint64(parent))
}
func (g *wasmGuest) VMStart(root, size uint32) bool {
	return g.call("proxy_on_vm_start", uint64(root), uint64(size)) != 0
}
func (g *wasmGuest) Configure(root, size uint32) bool {
	return g.call("proxy_on_configure", uint64(root), uint64(size)) != 0
}
func (g *wasmGuest) Tick(root uint32) { g.call("proxy_on_tick", uint64(root)) }
func (g *wasmGuest) RequestHeaders(id, n uint32, eos bool) uint32 {
	return uint32(g.callFn(g.reqHeaders, "proxy_on_request_headers", uint64(id), uint64(n), b2u(eos)))
}
func (g *wasmGuest) RequestBody(id, size uint32, eos bool) uint32 {
	return uint32(g.call("proxy_on_request_body", uint64(id), uint64(size), b2u(eos)))
}
func (g *wasmGuest) RequestTrailers(id, n uint32) uint32 {
	return uint32(g.call("proxy_on_request_trailers", uint64(id), uint64(n)))
}
func (g *wasmGuest) ResponseTrailers(id, n uint32) uint32 {
	return uint32(g.call("proxy_on_response_trailers", uint64(id), uint64(n)))
}
func (g *wasmGuest) ResponseHeaders(id, n uint32, eos bool) uint32 {
	return uint32(g.callFn(g.respHeaders, "proxy_on_response_headers", uint64(id), uint64(n), b2u(eos)))
}
func (g *wasmGuest) HTTPCallResponse(root, token, nh, bs, nt uint32) {
	g.call("proxy_on_http_call_response", uint64(root), uint64(token), uint64(nh), uint64(bs), uint64(nt))
}
func (g *wasmGuest) Done(id uint32) bool { return g.callFn(g.done, "proxy_on_done", uint64(id)) != 0 }
func (g *wasmGuest) Log(id uint32)       { g.callFn(g.log, "proxy_on_log", uint64(id)) }
func (g *wasmGuest) Delete(id uint32)    { g.callFn(g.del, "proxy_on_delete", uint64(id)) }

// read copies guest memory; the view wazero returns goes stale when the
// guest grows its memory.
func read(mod api.Module, ptr, size uint32) []byte {
	if size == 0 {
		return nil
	}
	b, ok := mod.Memory().Read(ptr, size)
	if !ok {
		panic("guest passed memory out of range")
	}
	return append([]byte(nil), b...)
}

// give copies data into guest memory through proxy_on_memory_allocate and
// stores its address and length at retPtr and retSize.
func give(ctx context.Context, mod api.Module, data []byte, retPtr, retSize uint32) uint32 {
	// data may alias the mock's reused buffer; the allocator export does
	// not call back into the host, so it stays intact until written.
	// A stack kept with the instance: a local array would escape to the
	// heap through CallWithStack on every call.
	stack := current.allocStack
	stack[0] = uint64(len(data))
	calls.export++
	if err := current.alloc.CallWithStack(ctx, stack); err != nil {
		return uint32(abi.StatusInternalFailure)
	}
	ptr := uint32(stack[0])
	if len(data) > 0 && !mod.Memory().Write(ptr, data) {
		return uint32(abi.StatusInvalidMemoryAccess)
	}
	mod.Memory().WriteUint32Le(retPtr, ptr)
	mod.Memory().WriteUint32Le(retSize, uint32(len(data)))
	return uint32(abi.StatusOK)
}

type hostFn struct {
	name   string
	params int
	i64    int // 1-based index of an i64 parameter (the metrics values), 0 none
	fn     func(ctx context.Context, mod api.Module, p []uint64) uint32
}

func u32(v uint64) uint32 { return uint32(v) }

// envModule defines the proxy-wasm imports the guest uses, each a thin
// adapter over the abi mock functions.
func envModule(rt wazero.Runtime) wazero.HostModuleBuilder {
	b := rt.NewHostModuleBuilder("env")
	fns := []hostFn{
		{name: "proxy_log", params: 3, fn: func(ctx context.Context, mod api.Module, p []uint64) uint32 {
			abi.Log(abi.LogLevel(p[0]), string(read(mod, u32(p[1]), u32(p[2]))))
			return 0
		}},
		{name: "proxy_get_current_time_nanoseconds", params: 1, fn: func(ctx context.Context, mod api.Module, p []uint64) uint32 {
			mod.Memory().WriteUint64Le(u32(p[0]), uint64(abi.NowNanos()))
			return 0
		}},
		{name: "proxy_set_tick_period_milliseconds", params: 1, fn: func(ctx context.Context, mod api.Module, p []uint64) uint32 {
			return uint32(abi.SetTickPeriod(u32(p[0])))
		}},
		{name: "proxy_get_buffer_bytes", params: 5, fn: func(ctx context.Context, mod api.Module, p []uint64) uint32 {
			data, st := abi.GetBufferBytes(abi.BufferType(p[0]), u32(p[1]), u32(p[2]))
			if st != abi.StatusOK {
				return uint32(st)
			}
			return give(ctx, mod, data, u32(p[3]), u32(p[4]))
		}},
		{name: "proxy_get_header_map_pairs", params: 3, fn: func(ctx context.Context, mod api.Module, p []uint64) uint32 {
			data, st := abi.GetHeaderMapPairs(abi.MapType(p[0]))
			if st != abi.StatusOK {
				return uint32(st)
			}
			return give(ctx, mod, data, u32(p[1]), u32(p[2]))
		}},
		{name: "proxy_get_header_map_value", params: 5, fn: func(ctx context.Context, mod api.Module, p []uint64) uint32 {
			data, st := abi.GetHeaderMapValue(abi.MapType(p[0]), string(read(mod, u32(p[1]), u32(p[2]))))
			if st != abi.StatusOK {
				return uint32(st)
			}
			return give(ctx, mod, data, u32(p[3]), u32(p[4]))
		}},
		{name: "proxy_set_header_map_pairs", params: 3, fn: func(ctx context.Context, mod api.Module, p []uint64) uint32 {
			if current.m.Discard {
				return 0
			}
			return uint32(abi.SetHeaderMapPairs(abi.MapType(p[0]), read(mod, u32(p[1]), u32(p[2]))))
		}},
		{name: "proxy_add_header_map_value", params: 5, fn: func(ctx context.Context, mod api.Module, p []uint64) uint32 {
			if current.m.Discard {
				return 0
			}
			return uint32(abi.AddHeader(abi.MapType(p[0]), string(read(mod, u32(p[1]), u32(p[2]))), read(mod, u32(p[3]), u32(p[4]))))
		}},
		{name: "proxy_replace_header_map_value", params: 5, fn: func(ctx context.Context, mod api.Module, p []uint64) uint32 {
			if current.m.Discard {
				return 0
			}
			return uint32(abi.ReplaceHeader(abi.MapType(p[0]), string(read(mod, u32(p[1]), u32(p[2]))), read(mod, u32(p[3]), u32(p[4]))))
		}},
		{name: "proxy_remove_header_map_value", params: 3, fn: func(ctx context.Context, mod api.Module, p []uint64) uint32 {
			if current.m.Discard {
				return 0
			}
			return uint32(abi.RemoveHeader(abi.MapType(p[0]), read(mod, u32(p[1]), u32(p[2]))))
		}},
		{name: "proxy_continue_stream", params: 1, fn: func(ctx context.Context, mod api.Module, p []uint64) uint32 {
			return uint32(abi.ContinueStream(abi.StreamType(p[0])))
		}},
		{name: "proxy_send_local_response", params: 8, fn: func(ctx context.Context, mod api.Module, p []uint64) uint32 {
			return uint32(abi.SendLocalResponse(u32(p[0]), string(read(mod, u32(p[1]), u32(p[2]))),
				read(mod, u32(p[3]), u32(p[4])), read(mod, u32(p[5]), u32(p[6]))))
		}},
		{name: "proxy_http_call", params: 10, fn: func(ctx context.Context, mod api.Module, p []uint64) uint32 {
			token, st := abi.HTTPCall(string(read(mod, u32(p[0]), u32(p[1]))), read(mod, u32(p[2]), u32(p[3])),
				read(mod, u32(p[4]), u32(p[5])), u32(p[8]))
			if st == abi.StatusOK {
				mod.Memory().WriteUint32Le(u32(p[9]), token)
			}
			return uint32(st)
		}},
		{name: "proxy_set_effective_context", params: 1, fn: func(ctx context.Context, mod api.Module, p []uint64) uint32 {
			return uint32(abi.SetEffectiveContext(u32(p[0])))
		}},
		{name: "proxy_get_shared_data", params: 5, fn: func(ctx context.Context, mod api.Module, p []uint64) uint32 {
			data, cas, st := abi.GetSharedData(string(read(mod, u32(p[0]), u32(p[1]))))
			if st != abi.StatusOK {
				return uint32(st)
			}
			if rc := give(ctx, mod, data, u32(p[2]), u32(p[3])); rc != 0 {
				return rc
			}
			mod.Memory().WriteUint32Le(u32(p[4]), cas)
			return 0
		}},
		{name: "proxy_set_shared_data", params: 5, fn: func(ctx context.Context, mod api.Module, p []uint64) uint32 {
			return uint32(abi.SetSharedData(string(read(mod, u32(p[0]), u32(p[1]))), read(mod, u32(p[2]), u32(p[3])), u32(p[4])))
		}},
		{name: "proxy_get_property", params: 4, fn: func(ctx context.Context, mod api.Module, p []uint64) uint32 {
			data, st := abi.GetProperty(string(read(mod, u32(p[0]), u32(p[1]))))
			if st != abi.StatusOK {
				return uint32(st)
			}
			return give(ctx, mod, data, u32(p[2]), u32(p[3]))
		}},
		{name: "proxy_define_metric", params: 4, fn: func(ctx context.Context, mod api.Module, p []uint64) uint32 {
			id, st := abi.DefineMetric(abi.MetricType(p[0]), string(read(mod, u32(p[1]), u32(p[2]))))
			if st == abi.StatusOK {
				mod.Memory().WriteUint32Le(u32(p[3]), id)
			}
			return uint32(st)
		}},
		{name: "proxy_increment_metric", params: 2, i64: 2, fn: func(ctx context.Context, mod api.Module, p []uint64) uint32 {
			return uint32(abi.IncrementMetric(u32(p[0]), int64(p[1])))
		}},
		{name: "proxy_record_metric", params: 2, i64: 2, fn: func(ctx context.Context, mod api.Module, p []uint64) uint32 {
			return uint32(abi.RecordMetric(u32(p[0]), p[1]))
		}},
	}
	for _, f := range fns {
		f := f
		i := len(calls.env)
		calls.envNames = append(calls.envNames, f.name)
		calls.env = append(calls.env, 0)
		params := make([]api.ValueType, f.params)
		for i := range params {
			params[i] = api.ValueTypeI32
		}
		if f.i64 > 0 {
			params[f.i64-1] = api.ValueTypeI64
		}
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			calls.env[i]++
			stack[0] = uint64(f.fn(ctx, mod, stack))
		}), params, []api.ValueType{api.ValueTypeI32}).Export(f.name)
	}
	return b
}

// TestExports checks the ABI surface: the version marker and the allocator
// are exported, malloc is not, and every export takes 32-bit integers only.
func TestExports(t *testing.T) {
	e := getEngine(t)
	exports := e.compiled.ExportedFunctions()
	for _, name := range []string{"proxy_abi_version_0_2_1", "proxy_on_memory_allocate", "_initialize"} {
		if exports[name] == nil {
			t.Errorf("module does not export %s", name)
		}
	}
	if exports["malloc"] != nil {
		t.Error("module exports malloc: Envoy would prefer it and never free")
	}
	for name, def := range exports {
		for _, p := range append(def.ParamTypes(), def.ResultTypes()...) {
			if p != api.ValueTypeI32 {
				t.Errorf("%s has a %s parameter or result; the ABI wants i32", name, api.ValueTypeName(p))
			}
		}
	}
	imports := e.compiled.ImportedFunctions()
	for _, imp := range imports {
		mod, name, _ := imp.Import()
		if mod == "env" {
			for i, p := range imp.ParamTypes() {
				// The metric values are the ABI's only 64-bit parameters.
				metricValue := i == 1 && (name == "proxy_increment_metric" || name == "proxy_record_metric")
				if p != api.ValueTypeI32 && !(metricValue && p == api.ValueTypeI64) {
					t.Errorf("import %s has a %s parameter", name, api.ValueTypeName(p))
				}
			}
		}
	}
}

// TestAllocateZero checks that proxy_on_memory_allocate(0) returns a valid
// non-null pointer and that allocations do not alias.
func TestAllocateZero(t *testing.T) {
	m := abi.NewMock()
	g := newWasm(t, m).(*wasmGuest)
	p0 := g.call("proxy_on_memory_allocate", 0)
	p1 := g.call("proxy_on_memory_allocate", 16)
	p2 := g.call("proxy_on_memory_allocate", 16)
	if p0 == 0 || p1 == 0 || p2 == 0 || p1 == p2 {
		t.Fatalf("allocations %d %d %d", p0, p1, p2)
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], 0x1122334455667788)
	if !g.mod.Memory().Write(uint32(p1), b[:]) {
		t.Fatal("allocated memory not writable")
	}
}

// The benchmarks run the same replayed request natively and in wazero, in
// one test binary, so their ratio comes from one run.

func benchReplay(b *testing.B, ng proxytest.NewGuest, fresh bool) {
	r := proxytest.NewReplay(b, ng)
	if fresh {
		r.FreshTokens(b, b.N)
	}
	if a := r.Do(0); a != uint32(abi.ActionContinue) {
		b.Fatalf("replayed request action %d", a)
	}
	b.ReportAllocs()
	// Wall time on a shared machine includes waiting for a CPU; the
	// thread's own CPU time does not, so it is reported too.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0, cpuOK := threadCPU()
	host0, export0 := callTotals()
	env0, wasi0 := slices.Clone(calls.env), slices.Clone(calls.wasi)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Do(i)
	}
	b.StopTimer()
	if cpu1, ok := threadCPU(); ok && cpuOK {
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
	if _, ok := r.E.G.(*wasmGuest); ok {
		host1, export1 := callTotals()
		b.ReportMetric(float64(host1-host0)/float64(b.N), "host-calls/op")
		b.ReportMetric(float64(export1-export0)/float64(b.N), "export-calls/op")
		var per []string
		for i, n := range calls.env {
			if d := n - env0[i]; d > 0 {
				per = append(per, fmt.Sprintf("%s %.2f", calls.envNames[i], float64(d)/float64(b.N)))
			}
		}
		for i, n := range calls.wasi {
			if d := n - wasi0[i]; d > 0 {
				per = append(per, fmt.Sprintf("wasi %s %.3f", calls.wasiNames[i], float64(d)/float64(b.N)))
			}
		}
		sort.Strings(per)
		b.Logf("host calls per request: %s", strings.Join(per, ", "))
	}
}

// threadCPU returns the CPU time of the calling OS thread (Linux
// RUSAGE_THREAD); ok is false elsewhere.
func threadCPU() (ns int64, ok bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1, &ru); err != nil {
		return 0, false
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), true
}

func BenchmarkWarmRequest(b *testing.B) {
	b.Run("native", func(b *testing.B) { benchReplay(b, proxytest.NewNative, false) })
	b.Run("wasm", func(b *testing.B) { benchReplay(b, newWasm, false) })
}

func BenchmarkFirstSight(b *testing.B) {
	b.Run("native", func(b *testing.B) { benchReplay(b, proxytest.NewNative, true) })
	b.Run("wasm", func(b *testing.B) { benchReplay(b, newWasm, true) })
}

// BenchmarkInstantiate measures a new VM from the compiled module:
// instantiation with _initialize (Go runtime start), the root context and
// configure. It reports the module size too.
func BenchmarkInstantiate(b *testing.B) {
	e := getEngine(b)
	info, err := os.Stat(buildModule(b))
	if err != nil {
		b.Fatal(err)
	}
	config := proxytest.Config("")
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0, cpuOK := threadCPU()
	var paused int64 // CPU time spent closing modules, outside the measure
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := abi.NewMock()
		abi.Use(m)
		cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize").
			WithSysWalltime().WithSysNanotime().WithRandSource(rand.Reader)
		mod, err := e.rt.InstantiateModule(context.Background(), e.compiled, cfg)
		if err != nil {
			b.Fatal(err)
		}
		g := wrapModule(b, m, mod)
		m.Buffers[abi.BufferPluginConfiguration] = []byte(config)
		g.ContextCreate(1, 0)
		g.VMStart(1, 0)
		if !g.Configure(1, uint32(len(config))) {
			b.Fatal("configure failed")
		}
		b.StopTimer()
		c0, _ := threadCPU()
		mod.Close(context.Background())
		c1, _ := threadCPU()
		paused += c1 - c0
		b.StartTimer()
	}
	b.StopTimer()
	if cpu1, ok := threadCPU(); ok && cpuOK {
		b.ReportMetric(float64(cpu1-cpu0-paused)/float64(b.N), "cpu-ns/op")
	}
	b.ReportMetric(float64(info.Size()), "module-bytes")
}

// TestNode runs the module under a second engine: Node.js's WebAssembly and
// node:wasi, with the env imports written in JavaScript
// (testdata/node_host.mjs). It mints a session and verifies its cookie.
func TestNode(t *testing.T) {
	// Node.js 20 or later: node:wasi and the WebAssembly API it uses.
	node := testenv.Tool(t, "node", "apt-get install nodejs")
	path := buildModule(t)
	config := proxytest.Config(`,"capture":{"query":["utm_source"],"segment":["utm_source"]}`)
	out, err := exec.Command(node, "testdata/node_host.mjs", path, config).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("node: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("node: %v", err)
	}
	var res struct {
		ABI, Malloc          bool
		VMStart, Configure   int
		First, Second, Third struct {
			Action                             uint32
			ID, Kind, Status, Context, Segment string
			SetCookie                          []string
			Leaked                             int
		}
		Logs []string
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	if !res.ABI || res.Malloc || res.VMStart != 1 || res.Configure != 1 {
		t.Fatalf("node: abi marker %v, malloc %v, vm_start %d, configure %d (logs %v)", res.ABI, res.Malloc, res.VMStart, res.Configure, res.Logs)
	}
	f, s := res.First, res.Second
	if f.Action != 0 || f.ID == "" || f.ID == "spoofed" || f.Kind != "anonymous" || f.Status != "new" || len(f.SetCookie) != 1 || f.Leaked != 0 {
		t.Fatalf("node, first request: %+v", f)
	}
	if c := proxytest.Claims(t, proxytest.CookieToken(f.SetCookie[0]), time.Now()); c.ID.String() != f.ID {
		t.Fatalf("node: cookie names session %s, forwarded %s", c.ID, f.ID)
	}
	if s.ID != f.ID || s.Status != "new" || len(s.SetCookie) != 0 {
		t.Fatalf("node, second request: %+v (first %s)", s, f.ID)
	}
	// The captured query parameter is forwarded at once, in the segment too.
	th := res.Third
	raw, err := base64.RawURLEncoding.DecodeString(th.Context)
	var view wire.Session
	seg, derr := wire.DecodeForwardView(raw, &view, &wire.DefaultLimits)
	if err != nil || derr != nil || th.ID != f.ID {
		t.Fatalf("node, third request: %+v: %v %v", th, err, derr)
	}
	if v, _ := view.Attr(wire.NamespacePublic, "utm_source"); v.Text != "node test" || seg != th.Segment ||
		seg == string(wire.AppendSegment(nil, &view)) {
		t.Fatalf("node, third request: public %v, segment %q (header %q)", view.Attrs[wire.NamespacePublic], seg, th.Segment)
	}
}

// BenchmarkBoundary measures the crossings a warm request is made of, in
// the same wazero runtime: an export that does nothing but return
// (proxy_on_memory_allocate(0)), and the stream callbacks of a stream the
// filter does not know (each export returns after one table lookup).
func BenchmarkBoundary(b *testing.B) {
	m := abi.NewMock()
	g := newWasm(b, m).(*wasmGuest)
	alloc := g.fn["proxy_on_memory_allocate"]
	b.Run("empty-export", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			g.callFn(alloc, "proxy_on_memory_allocate", 0)
		}
	})
}
