// Package testbin builds and runs this repository's programs for tests: the
// origin, the edge proxy, the filter and the example apps, each on free
// loopback ports, with their output captured and the processes stopped when
// the test ends; and Buffer, the output of a process or a logger that a
// test reads while it is written. It is for the repository's own tests;
// apps test against sdk/sdktest's fakes.
package testbin

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ModuleRoot returns the root directory of the module the test runs in.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		t.Fatal("not inside a Go module")
	}
	return filepath.Dir(mod)
}

// binaries caches what Build and BuildWasm built, by package, for the life
// of the test binary when Main runs the tests (several tests of a package
// share one build); binDir is where they are, removed when Main returns.
var (
	binMu    sync.Mutex
	binDir   string
	binaries = map[string]string{}
)

// Main runs the tests of a package that builds binaries with Build, sharing
// each binary between its tests, and removes them afterwards:
//
//	func TestMain(m *testing.M) { os.Exit(testbin.Main(m)) }
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "testbin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testbin:", err)
		return 1
	}
	binMu.Lock()
	binDir = dir
	binMu.Unlock()
	defer os.RemoveAll(dir)
	return m.Run()
}

// build runs go build for pkg with extra arguments and environment, once
// per test binary under Main, else once per test.
func build(t testing.TB, key, name string, args, env []string) string {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if p, ok := binaries[key]; ok {
		return p
	}
	dir := binDir
	if dir == "" {
		dir = t.TempDir()
	} else {
		dir = filepath.Join(dir, fmt.Sprint(len(binaries)))
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", append([]string{"build", "-o", out}, args...)...)
	cmd.Dir = ModuleRoot(t)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	if binDir != "" {
		binaries[key] = out
	}
	return out
}

// Build builds the main package pkg (relative to the module root, as
// "./origin/cmd/origin") and returns the binary's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	return build(t, pkg, filepath.Base(pkg), []string{pkg}, nil)
}

// BuildWasm builds the proxy-wasm filter (GOOS=wasip1, c-shared) of package
// pkg and returns the module's path.
func BuildWasm(t testing.TB, pkg string) string {
	t.Helper()
	return build(t, "wasm:"+pkg, "sessionedge.wasm", []string{"-buildmode=c-shared", "-trimpath", pkg},
		[]string{"GOOS=wasip1", "GOARCH=wasm"})
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Cmd is a process for Start.
type Cmd struct {
	Name  string   // for logs
	Path  string   // binary
	Args  []string // arguments
	Env   []string // added to the test's environment (secrets go here or in files, never in Args)
	Dir   string   // working directory; default a temporary one
	Ready string   // URL that answers 2xx once the process serves
}

// Process is a process started by Start.
type Process struct {
	cmd  *exec.Cmd
	log  *Buffer
	done chan struct{}
	name string
}

// Start starts c, waits until c.Ready answers 2xx (up to 60s), and stops the
// process when the test ends: SIGTERM, then SIGKILL after 5s. The process's
// output is logged when the test fails.
func Start(t testing.TB, c Cmd) *Process {
	t.Helper()
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Dir = c.Dir
	if cmd.Dir == "" {
		cmd.Dir = t.TempDir()
	}
	killWithParent(cmd)
	p := &Process{cmd: cmd, log: &Buffer{}, done: make(chan struct{}), name: c.Name}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", c.Name, err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", c.Name, p.log.String())
		}
	})
	if c.Ready != "" {
		if err := waitReady(c.Ready, p.done, 60*time.Second); err != nil {
			t.Fatalf("%s did not get ready: %v\n%s", c.Name, err, p.log.String())
		}
	}
	return p
}

// Output returns what the process printed so far.
func (p *Process) Output() string { return p.log.String() }

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process (SIGSTOP and SIGCONT to hang and resume
// it). Stop still ends a stopped process: its SIGKILL needs no SIGCONT.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill ends the process at once (SIGKILL), as a crash would, and waits for
// it to exit. It fails when the process had exited already.
func (p *Process) Kill() error {
	err := p.cmd.Process.Kill()
	<-p.done
	return err
}

// Stop ends the process gracefully (SIGTERM), killing it after 5s, and
// waits for it to exit.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func waitReady(url string, exited <-chan struct{}, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return nil
			}
			err = fmt.Errorf("%s answered %d", url, resp.StatusCode)
		}
		last = err
		select {
		case <-exited:
			return fmt.Errorf("process exited (last probe: %v)", last)
		case <-ctx.Done():
			return fmt.Errorf("timed out (last probe: %v)", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
