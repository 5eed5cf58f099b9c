package wire

import (
	"bytes"
	"encoding/base64"
	"testing"
)

// b64Pairs are this package's encodings and the encoding/base64 ones they
// stand for.
var b64Pairs = []struct {
	name string
	mine *b64Encoding
	std  *base64.Encoding
}{
	{"rawurl", rawURLB64, base64.RawURLEncoding},
	{"std", stdB64, base64.StdEncoding},
	{"strict", strictB64, base64.RawURLEncoding.Strict()},
}

var b64Texts = []string{
	"", "A", "AA", "AAA", "AAAA", "AB", "AQ", "AQI", "AQE", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYg==", "Zm9vYmE=",
	"Zm9vYh==", "Zm9vYmF=", "Zm9vYg=", "Zm9vY===", "Zm9v\nYg", "Zm9v\r\nYmE=", "Zm9vYg=\n=", "Zm9vYg==\n", "Zm9vYg==x",
	"=", "==", "A=", "AA=", "AA==", "-_-_", "+/+/", "a b", "\n", "Zm9vYmFy", "Zm9vYmFy\n\n", "Zm9vYmE=Zm9v",
}

// checkB64 decodes text with both and compares: the same bytes, or both
// refusing it.
func checkB64(t *testing.T, name string, mine *b64Encoding, std *base64.Encoding, text []byte) {
	t.Helper()
	want := make([]byte, std.DecodedLen(len(text))+3)
	wn, werr := std.Decode(want, text)
	got := make([]byte, len(text)*3/4+3)
	gn, gerr := mine.Decode(got, text)
	if (werr == nil) != (gerr == nil) || werr == nil && !bytes.Equal(got[:gn], want[:wn]) {
		t.Fatalf("%s decode %q: got %x %v, encoding/base64 gives %x %v", name, text, got[:gn], gerr, want[:wn], werr)
	}
}

func TestB64MatchesEncodingBase64(t *testing.T) {
	for _, p := range b64Pairs {
		for n := range 40 {
			src := make([]byte, n)
			for i := range src {
				src[i] = byte(i*37 + n*11)
			}
			if got, want := p.mine.AppendEncode([]byte("x"), src), p.std.AppendEncode([]byte("x"), src); !bytes.Equal(got, want) {
				t.Fatalf("%s encode %x: got %q, want %q", p.name, src, got, want)
			}
			checkB64(t, p.name, p.mine, p.std, p.std.AppendEncode(nil, src))
		}
		for _, s := range b64Texts {
			checkB64(t, p.name, p.mine, p.std, []byte(s))
		}
	}
}

func FuzzB64MatchesEncodingBase64(f *testing.F) {
	for _, s := range b64Texts {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		for _, p := range b64Pairs {
			checkB64(t, p.name, p.mine, p.std, text)
			if got, want := p.mine.AppendEncode(nil, text), p.std.AppendEncode(nil, text); !bytes.Equal(got, want) {
				t.Fatalf("%s encode %x: got %q, want %q", p.name, text, got, want)
			}
			checkB64(t, p.name, p.mine, p.std, p.std.AppendEncode(nil, text))
		}
	})
}
