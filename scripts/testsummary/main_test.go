package main

import (
	"strings"
	"testing"
)

func TestSummary(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"p/a","Test":"TestOK"}`,
		`{"Action":"pass","Package":"p/a","Test":"TestOK"}`,
		`{"Action":"run","Package":"p/a","Test":"TestWat"}`,
		`{"Action":"output","Package":"p/a","Test":"TestWat","Output":"=== RUN   TestWat\n"}`,
		`{"Action":"output","Package":"p/a","Test":"TestWat","Output":"    wat_test.go:16: wat2wasm is not on PATH (install: apt-get install wabt)\n"}`,
		`{"Action":"output","Package":"p/a","Test":"TestWat","Output":"--- SKIP: TestWat (0.00s)\n"}`,
		`{"Action":"skip","Package":"p/a","Test":"TestWat"}`,
		`{"Action":"pass","Package":"p/a","Elapsed":0.5}`,
		`{"Action":"output","Package":"p/b","Test":"TestBad","Output":"    b_test.go:9: boom\n"}`,
		`{"Action":"fail","Package":"p/b","Test":"TestBad"}`,
		`{"Action":"output","Package":"p/b","Output":"FAIL\n"}`,
		`{"Action":"output","Package":"p/b","Output":"FAIL\tp/b\t0.100s\n"}`,
		`{"Action":"fail","Package":"p/b","Elapsed":0.1}`,
		`{"Action":"skip","Package":"p/c"}`,
	}, "\n")
	var out strings.Builder
	if code := run(strings.NewReader(in), &out); code != 1 {
		t.Fatalf("exit %d with a failed package", code)
	}
	s := out.String()
	if strings.Count(s, "FAIL") != 1 {
		t.Errorf("a failed package is reported more than once:\n%s", s)
	}
	for _, want := range []string{
		"ok  \tp/a\t0.500s",
		"b_test.go:9: boom",
		"FAIL\tp/b",
		"?   \tp/c\t[no test files]",
		"1× wat2wasm is not on PATH (install: apt-get install wabt) (p/a.TestWat)",
		"summary: 1 packages passed, 1 failed, 1 tests skipped",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

func TestSummaryPasses(t *testing.T) {
	var out strings.Builder
	if code := run(strings.NewReader(`{"Action":"pass","Package":"p/a","Elapsed":1}`), &out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	if code := run(strings.NewReader(""), &out); code != 1 {
		t.Fatal("an empty run passed")
	}
}
