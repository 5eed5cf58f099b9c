//go:build !wasip1

package main_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/sessionedge/sessionedge/wasm/internal/abi"
	"github.com/sessionedge/sessionedge/wasm/internal/proxytest"
)

// guestCounter counts the calls of every function of the guest module.
type guestCounter map[string]*uint64

func (c guestCounter) NewFunctionListener(def api.FunctionDefinition) experimental.FunctionListener {
	n := new(uint64)
	c[def.DebugName()] = n
	return fnCount{n}
}

type fnCount struct{ n *uint64 }

func (c fnCount) Before(context.Context, api.Module, api.FunctionDefinition, []uint64, experimental.StackIterator) {
	*c.n++
}
func (fnCount) After(context.Context, api.Module, api.FunctionDefinition, []uint64) {}
func (fnCount) Abort(context.Context, api.Module, api.FunctionDefinition, error)    {}

// BenchmarkGuestCalls counts the Go function calls inside the guest per
// warm request: a module built without -s (function names kept), compiled
// with a listener on every function.
func BenchmarkGuestCalls(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "named.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", path, ".")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%v\n%s", err, out)
	}
	bin, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	if _, err := envModule(rt).Instantiate(ctx); err != nil {
		b.Fatal(err)
	}
	counts := guestCounter{}
	compiled, err := rt.CompileModule(experimental.WithFunctionListenerFactory(ctx, counts), bin)
	if err != nil {
		b.Fatal(err)
	}
	ng := func(tb testing.TB, m *abi.Mock) proxytest.Guest {
		cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize").
			WithSysWalltime().WithSysNanotime().WithRandSource(rand.Reader)
		mod, err := rt.InstantiateModule(ctx, compiled, cfg)
		if err != nil {
			tb.Fatal(err)
		}
		return wrapModule(tb, m, mod)
	}
	r := proxytest.NewReplay(b, ng)
	r.Do(0)
	before := map[string]uint64{}
	for k, n := range counts {
		before[k] = *n
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Do(i)
	}
	b.StopTimer()
	type fc struct {
		name string
		n    uint64
	}
	var all []fc
	var total uint64
	for k, n := range counts {
		if d := *n - before[k]; d > 0 {
			all = append(all, fc{k, d})
			total += d
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n })
	b.ReportMetric(float64(total)/float64(b.N), "guest-calls/op")
	var top []string
	for i, c := range all {
		if i == 25 {
			break
		}
		top = append(top, fmt.Sprintf("%.1f %s", float64(c.n)/float64(b.N), strings.NewReplacer("github.com_sessionedge_sessionedge_", "", "__", "").Replace(c.name)))
	}
	b.Logf("guest function calls per warm request (most called first): %s", strings.Join(top, ", "))
}
