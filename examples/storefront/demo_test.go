package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/internal/testbin"
	"github.com/sessionedge/sessionedge/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the outputs of README.md's quick start with what the commands print")

// TestDemoBusyPort: a port in use is reported at once, by its variable.
func TestDemoBusyPort(t *testing.T) {
	ln := testbin.Listen(t)
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	start := time.Now()
	d := testbin.StartDemo(t, map[string]string{"ORIGIN_ADMIN_PORT": strconv.Itoa(port)})
	select {
	case <-d.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not give up on a busy port within 30s")
	}
	if d.Err() == nil {
		t.Fatal("the demo exited 0 with a port in use")
	}
	out := d.Output()
	if !strings.Contains(out, "port "+strconv.Itoa(port)+" (ORIGIN_ADMIN_PORT) is in use") {
		t.Fatalf("the message does not name the port: %q", out)
	}
	if strings.Contains(out, "building") {
		t.Fatalf("the demo built before checking its ports (%v): %q", time.Since(start), out)
	}
}

// TestDemo runs `make demo`'s script end to end: its secrets are files
// only its user can read and appear on no command line and in no log, the
// README's quick start runs as written and prints what the README shows, and
// Ctrl-C stops it with exit status 0.
func TestDemo(t *testing.T) {
	testenv.Tool(t, "curl", "apt-get install curl")
	d := testbin.StartDemo(t, nil)
	d.WaitFor(t, "sessionedge demo is running", 10*time.Minute)

	secrets := d.Secrets(t)
	t.Run("file modes", func(t *testing.T) {
		for path, want := range map[string]fs.FileMode{d.Dir: 0o700 | fs.ModeDir, filepath.Join(d.Dir, "data"): 0o700 | fs.ModeDir} {
			if st, err := os.Stat(path); err != nil || st.Mode() != want {
				t.Errorf("%s: %v %v, want %v", path, st.Mode(), err, want)
			}
		}
		entries, err := os.ReadDir(d.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			st, err := os.Stat(filepath.Join(d.Dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s is %v, want 0600", e.Name(), st.Mode().Perm())
			}
		}
		for _, name := range []string{"secrets.env", "origin.json", "plugin.json", "assertion.json", "app-api-key"} {
			if _, err := os.Stat(filepath.Join(d.Dir, name)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
	t.Run("no secrets on command lines", func(t *testing.T) {
		for _, pid := range descendants(t, d.Pid()) {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if err != nil {
				continue // gone meanwhile
			}
			args := strings.ReplaceAll(string(b), "\x00", " ")
			for name, secret := range secrets {
				if strings.Contains(args, secret) {
					t.Errorf("process %d has %s on its command line: %s", pid, name, strings.ReplaceAll(args, secret, "<"+name+">"))
				}
			}
		}
	})
	t.Run("README quick start", func(t *testing.T) {
		runReadme(t, d)
	})
	if err := d.Interrupt(t); err != nil {
		t.Fatalf("after Ctrl-C the demo exited with %v, want status 0:\n%s", err, d.Output())
	}
	t.Run("no secrets in the logs", func(t *testing.T) {
		for _, name := range []string{"origin", "edge", "storefront"} {
			b, err := os.ReadFile(filepath.Join(d.Dir, name+".log"))
			if err != nil {
				t.Fatal(err)
			}
			for what, secret := range secrets {
				if strings.Contains(string(b), secret) {
					t.Errorf("%s.log shows %s", name, what)
				}
			}
		}
		if out := d.Output(); containsAny(out, secrets) != "" {
			t.Errorf("the demo printed %s", containsAny(out, secrets))
		}
	})
}

func containsAny(s string, secrets map[string]string) string {
	for name, v := range secrets {
		if strings.Contains(s, v) {
			return name
		}
	}
	return ""
}

// descendants returns pid and every process below it.
func descendants(t *testing.T, pid int) []int {
	t.Helper()
	children := map[int][]int{}
	dirs, _ := os.ReadDir("/proc")
	for _, e := range dirs {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces; read after ')'.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			children[pp] = append(children[pp], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// readmeStep is one command of the quick start and what it prints.
type readmeStep struct {
	cmd  string
	want []string
}

// quickStart returns the console block of README.md's quick start, its
// steps, and where the block's lines start and end in the file.
func quickStart(t *testing.T) (lines []string, steps []readmeStep, from, to int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testbin.ModuleRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines = strings.Split(string(b), "\n")
	in := false
	from, to = -1, -1
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "## "):
			in = l == "## Quick start"
		case in && from < 0 && l == "```console":
			from = i + 1
		case in && from >= 0 && to < 0 && l == "```":
			to = i
		}
	}
	if from < 0 || to < 0 {
		t.Fatal("README.md's quick start has no ```console block")
	}
	for _, l := range lines[from:to] {
		if cmd, ok := strings.CutPrefix(l, "$ "); ok {
			steps = append(steps, readmeStep{cmd: cmd})
		} else if len(steps) > 0 {
			steps[len(steps)-1].want = append(steps[len(steps)-1].want, l)
		} else {
			t.Fatalf("README.md's quick start: output %q before any command", l)
		}
	}
	return lines, steps, from, to
}

// runReadme runs the quick start's commands in one shell, in a fresh
// directory (the cookie jar starts empty), against the demo d: the
// documented ports and DEMO_DIR are the demo's. It compares what they
// print with the README, up to what differs between runs (session and cart
// ids, versions, times).
func runReadme(t *testing.T, d *testbin.Demo) {
	lines, steps, from, to := quickStart(t)
	repl := []string{"build/demo/", d.Dir + "/"}
	for name, def := range map[string]int{"EDGE_PORT": 8080, "ORIGIN_PORT": 8081, "APP_PORT": 8082} {
		repl = append(repl, "localhost:"+strconv.Itoa(def), "localhost:"+strconv.Itoa(d.Ports[name]))
	}
	toDemo, toReadme := strings.NewReplacer(repl...), strings.NewReplacer(reverse(repl)...)
	var script strings.Builder
	script.WriteString("set -u\n")
	for i, s := range steps {
		// The marker starts on a line of its own even after output
		// without a final newline (the origin's JSON); one empty line
		// before it is dropped below.
		fmt.Fprintf(&script, "printf '\\n@@@ %d\\n'\n%s\n", i, toDemo.Replace(s.cmd))
	}
	script.WriteString("printf '\\n'\n")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the quick start's commands failed: %v\n%s", err, out)
	}
	got := make([][]string, len(steps))
	cur := -1
	for _, l := range strings.Split(strings.TrimPrefix(string(out), "\n"), "\n") {
		if n, ok := strings.CutPrefix(l, "@@@ "); ok {
			if cur >= 0 {
				got[cur] = dropLastEmpty(got[cur])
			}
			cur, _ = strconv.Atoi(n)
			continue
		}
		if cur < 0 {
			t.Fatalf("output before the first command: %q", l)
		}
		got[cur] = append(got[cur], toReadme.Replace(l))
	}
	if cur >= 0 {
		got[cur] = dropLastEmpty(dropLastEmpty(got[cur]))
	}
	if *update {
		var block []string
		for i, s := range steps {
			block = append(block, "$ "+s.cmd)
			block = append(block, got[i]...)
		}
		lines = append(lines[:from], append(block, lines[to:]...)...)
		if err := os.WriteFile(filepath.Join(testbin.ModuleRoot(t), "README.md"), []byte(strings.Join(lines, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("README.md updated")
		return
	}
	wantNorm, gotNorm := newNormalizer(), newNormalizer()
	for i, s := range steps {
		w, g := wantNorm.lines(s.want), gotNorm.lines(got[i])
		if strings.Join(w, "\n") != strings.Join(g, "\n") {
			t.Errorf("$ %s\nREADME shows:\n%s\nthe command printed:\n%s", s.cmd, strings.Join(s.want, "\n"), strings.Join(got[i], "\n"))
		}
	}
	if t.Failed() {
		t.Log("if the new output is right, go test ./examples/storefront -run TestDemo -update rewrites the README")
	}
}

// dropLastEmpty drops one empty line from the end of ls.
func dropLastEmpty(ls []string) []string {
	if n := len(ls); n > 0 && ls[n-1] == "" {
		return ls[:n-1]
	}
	return ls
}

func reverse(pairs []string) []string {
	out := make([]string, 0, len(pairs))
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, pairs[i+1], pairs[i])
	}
	return out
}

// normalizer replaces what differs between runs by placeholders: each
// distinct session id, cart id and session handle by a numbered one in the
// order they appear (so "the same id as before" is still checked), versions
// and times by a constant; and it drops the devices, which the origin
// learns from the edge's activity report, with a timing of its own.
type normalizer struct {
	seen map[string]string
}

func newNormalizer() *normalizer { return &normalizer{seen: map[string]string{}} }

var (
	idRE      = regexp.MustCompile(`"[A-Za-z0-9_-]{22}"`)
	cartRE    = regexp.MustCompile(`cart-[0-9a-f]{12}`)
	versionRE = regexp.MustCompile(`"version":[0-9]+`)
	timeRE    = regexp.MustCompile(`"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z"`)
	handleRE  = regexp.MustCompile(`"handle":"[0-9a-f]{16}"`)
	deviceRE  = regexp.MustCompile(`,?"(firstDevice|device)":\{[^{}]*\}`)
)

func (n *normalizer) number(kind, s string) string {
	if p, ok := n.seen[s]; ok {
		return p
	}
	p := fmt.Sprintf("<%s%d>", kind, len(n.seen)+1)
	n.seen[s] = p
	return p
}

func (n *normalizer) lines(ls []string) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		l = deviceRE.ReplaceAllString(l, "")
		l = idRE.ReplaceAllStringFunc(l, func(s string) string { return n.number("id", s) })
		l = handleRE.ReplaceAllStringFunc(l, func(s string) string { return n.number("handle", s) })
		l = cartRE.ReplaceAllStringFunc(l, func(s string) string { return n.number("cart", s) })
		l = versionRE.ReplaceAllString(l, `"version":<n>`)
		l = timeRE.ReplaceAllString(l, `"<time>"`)
		out[i] = l
	}
	return out
}
