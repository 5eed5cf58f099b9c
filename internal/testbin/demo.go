package testbin

import (
	"bufio"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// DemoPorts are the variables that name the ports of scripts/demo.sh.
var DemoPorts = []string{"EDGE_PORT", "ORIGIN_PORT", "APP_PORT", "EDGE_ADMIN_PORT", "ORIGIN_ADMIN_PORT"}

// Demo is scripts/demo.sh (make demo) running in the background.
type Demo struct {
	Dir   string         // DEMO_DIR: state, keys, configuration and logs
	Ports map[string]int // EDGE_PORT, ... → port
	cmd   *exec.Cmd
	out   *Buffer
	done  chan struct{}
	err   error
}

// StartDemo runs scripts/demo.sh with free ports and its directories in the
// test's temporary directory, in a process group of its own (as a shell
// runs a job), with env on top. When the test ends the demo gets SIGTERM
// (SIGKILL 20s later) if it still runs; if the test failed, its output and
// logs are logged.
func StartDemo(t testing.TB, env map[string]string) *Demo {
	t.Helper()
	root := ModuleRoot(t)
	tmp := t.TempDir()
	d := &Demo{Dir: filepath.Join(tmp, "demo"), Ports: map[string]int{}, out: &Buffer{}, done: make(chan struct{})}
	cmd := exec.Command(filepath.Join(root, "scripts", "demo.sh"))
	cmd.Env = append(os.Environ(), "DEMO_DIR="+d.Dir, "BUILD_DIR="+filepath.Join(tmp, "build"))
	for _, name := range DemoPorts {
		addr := FreeAddr(t)
		port, _ := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
		d.Ports[name] = port
		cmd.Env = append(cmd.Env, name+"="+strconv.Itoa(port))
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
		if p, err := strconv.Atoi(v); err == nil {
			d.Ports[k] = p
		}
	}
	cmd.Stdout, cmd.Stderr = d.out, d.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A shell cannot trap a signal that was ignored when it started; a test
	// binary run in the background may have SIGINT ignored. While Go
	// handles SIGINT, the script starts with the default disposition.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT)
	err := cmd.Start()
	signal.Stop(sigs)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = cmd
	go func() { d.err = cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-d.done:
			case <-time.After(20 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-d.done
			}
		}
		if t.Failed() {
			t.Logf("demo output:\n%s", d.out.String())
			logs, _ := filepath.Glob(filepath.Join(d.Dir, "*.log"))
			for _, name := range logs {
				if b, err := os.ReadFile(name); err == nil {
					t.Logf("%s:\n%s", filepath.Base(name), b)
				}
			}
		}
	})
	return d
}

// Output returns what the demo printed so far.
func (d *Demo) Output() string { return d.out.String() }

// Pid returns the process id of the script (its process group's).
func (d *Demo) Pid() int { return d.cmd.Process.Pid }

// Done is closed when the script has exited; Err then returns its exit
// error.
func (d *Demo) Done() <-chan struct{} { return d.done }

// Err returns the script's exit error once Done is closed.
func (d *Demo) Err() error { return d.err }

// URL returns http://127.0.0.1:<port of the variable name>.
func (d *Demo) URL(name string) string { return "http://127.0.0.1:" + strconv.Itoa(d.Ports[name]) }

// WaitFor waits until the demo printed want, failing if it exits first.
func (d *Demo) WaitFor(t testing.TB, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !strings.Contains(d.out.String(), want) {
		select {
		case <-d.done:
			t.Fatalf("the demo exited (%v) before printing %q", d.err, want)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not print %q within %v", want, limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Interrupt sends SIGINT to the demo's process group, as Ctrl-C in a
// terminal does, and returns its exit error.
func (d *Demo) Interrupt(t testing.TB) error {
	t.Helper()
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-d.done:
		return d.err
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not stop within 30s of Ctrl-C")
		return nil
	}
}

// Secrets reads the demo's secrets.env (NAME=value lines): it must hold
// TOKEN_KEY, SHARED_SECRET, ASSERTION_KEY, APP_KEY and EDGE_KEY, each at
// least 12 characters long.
func (d *Demo) Secrets(t testing.TB) map[string]string {
	t.Helper()
	path := filepath.Join(d.Dir, "secrets.env")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && len(v) >= 12 {
			out[k] = v
		}
	}
	for _, name := range []string{"TOKEN_KEY", "SHARED_SECRET", "ASSERTION_KEY", "APP_KEY", "EDGE_KEY"} {
		if out[name] == "" {
			t.Fatalf("%s holds no %s of 12 characters or more (it holds %d secrets)", path, name, len(out))
		}
	}
	return out
}
