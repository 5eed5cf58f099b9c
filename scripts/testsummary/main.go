// Command testsummary reads `go test -json` on stdin and prints what a
// person wants from a whole-suite run: one line per package as it finishes,
// the output of every failed test, and at the end one summary of the tests
// that were skipped and why, so a missing tool is never a silent skip.
// It exits 1 when anything failed or the input ended without a result.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output, build-fail
	Test       string
	Elapsed    float64
	Output     string
}

type key struct{ pkg, test string }

// location is the "file_test.go:16: " prefix of a t.Log line.
var location = regexp.MustCompile(`^\s*[\w.-]+\.go:\d+: `)

func main() {
	os.Exit(run(os.Stdin, os.Stdout))
}

func run(in io.Reader, out io.Writer) int {
	output := map[key][]string{}
	skips := map[string][]string{} // reason → tests
	var failed, passed int
	var sawResult bool
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintln(out, string(line)) // not from test2json: pass it on
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "output":
			output[k] = append(output[k], e.Output)
		case "build-output":
			fmt.Fprint(out, e.Output)
		case "build-fail":
			failed++
			sawResult = true
		case "skip":
			if e.Test == "" {
				fmt.Fprintf(out, "?   \t%s\t[no test files]\n", e.Package)
				sawResult = true
				break
			}
			r := reason(output[k])
			skips[r] = append(skips[r], e.Package+"."+e.Test)
			delete(output, k)
		case "pass":
			if e.Test == "" {
				fmt.Fprintf(out, "ok  \t%s\t%.3fs\n", e.Package, e.Elapsed)
				passed++
				sawResult = true
			}
			delete(output, k)
		case "fail":
			if e.Test != "" {
				fmt.Fprint(out, strings.Join(output[k], ""))
				delete(output, k)
				break
			}
			// Package-level output holds panics, timeouts and TestMain
			// failures that belong to no test; its closing FAIL lines are
			// replaced by ours.
			for _, l := range output[k] {
				if l != "FAIL\n" && !strings.HasPrefix(l, "FAIL\t"+e.Package) {
					fmt.Fprint(out, l)
				}
			}
			fmt.Fprintf(out, "FAIL\t%s\t%.3fs\n", e.Package, e.Elapsed)
			failed++
			sawResult = true
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(out, "testsummary:", err)
		return 1
	}
	printSkips(out, skips)
	fmt.Fprintf(out, "summary: %d packages passed, %d failed, %d tests skipped\n", passed, failed, countSkips(skips))
	if failed > 0 || !sawResult {
		return 1
	}
	return 0
}

// reason returns the last line a skipped test logged, which is its
// t.Skip message, without the file:line prefix.
func reason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		return location.ReplaceAllString(l, "")
	}
	return "(no reason given)"
}

func countSkips(skips map[string][]string) int {
	n := 0
	for _, ts := range skips {
		n += len(ts)
	}
	return n
}

func printSkips(out io.Writer, skips map[string][]string) {
	if len(skips) == 0 {
		return
	}
	reasons := make([]string, 0, len(skips))
	for r := range skips {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool { return len(skips[reasons[i]]) > len(skips[reasons[j]]) })
	fmt.Fprintf(out, "skipped %d tests:\n", countSkips(skips))
	for _, r := range reasons {
		ts := skips[r]
		more := ""
		if len(ts) > 1 {
			more = fmt.Sprintf(" and %d more", len(ts)-1)
		}
		fmt.Fprintf(out, "  %d× %s (%s%s)\n", len(ts), r, ts[0], more)
	}
}
