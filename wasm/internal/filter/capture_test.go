//go:build !wasip1

package filter

import (
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sessionedge/sessionedge/internal/fuzzbudget"
	"github.com/sessionedge/sessionedge/sdk/wire"
	"github.com/sessionedge/sessionedge/wasm/internal/config"
)

func TestAppendAddrPrefix(t *testing.T) {
	cases := []struct {
		addr   string
		v4, v6 int
		want   string
	}{
		{"192.0.2.1:54321", 24, 48, "192.0.2.0/24"},
		{"192.0.2.1", 24, 48, "192.0.2.0/24"},
		{"192.0.2.255:1", 32, 48, "192.0.2.255/32"},
		{"10.200.3.4:1", 12, 48, "10.192.0.0/12"},
		{"192.0.2.1:1", 0, 48, ""},
		{"[2001:db8:1234:5678::1]:443", 24, 48, "2001:db8:1234::/48"},
		{"[2001:db8:1234:5678::1]:443", 24, 0, ""},
		{"2001:db8:1234:5678:9abc:def0:1234:5678", 24, 64, "2001:db8:1234:5678::/64"},
		{"[fe80::1%eth0]:80", 24, 128, "fe80::1/128"},
		{"[::ffff:192.0.2.77]:80", 24, 48, "192.0.2.0/24"},
		{"[::1]:80", 24, 128, "::1/128"},
		{"[1:0:0:2:0:0:0:3]:1", 24, 128, "1:0:0:2::3/128"},
		{"[1:0:0:2:0:0:3:4]:1", 24, 128, "1::2:0:0:3:4/128"},
		{"unix:/var/run/x.sock", 24, 48, ""},
		{"pipe", 24, 48, ""},
		{"", 24, 48, ""},
		{"1.2.3:4", 24, 48, ""},
		{"01.2.3.4", 24, 48, ""},
		{"256.1.1.1", 24, 48, ""},
		{"[1::2::3]:4", 24, 48, ""},
		{"[12345::1]:4", 24, 48, ""},
	}
	for _, c := range cases {
		got, ok := appendAddrPrefix(nil, []byte(c.addr), c.v4, c.v6)
		if string(got) != c.want || ok != (c.want != "") {
			t.Errorf("appendAddrPrefix(%q, %d, %d) = %q, %v; want %q", c.addr, c.v4, c.v6, got, ok, c.want)
		}
	}
}

// FuzzAddrPrefix compares appendAddrPrefix with net/netip: every address
// netip reads gives the same prefix, and whatever appendAddrPrefix
// accepts is a prefix netip reads back.
func FuzzAddrPrefix(f *testing.F) {
	for _, s := range []string{"192.0.2.1:54321", "[2001:db8::1]:443", "::ffff:1.2.3.4", "1::", "::", "1:2:3:4:5:6:7:8", "fe80::1%eth0"} {
		f.Add(s, uint8(24), uint8(48))
	}
	f.Fuzz(func(t *testing.T, addr string, v4, v6 uint8) {
		b4, b6 := int(v4%33), int(v6%129)
		got, ok := appendAddrPrefix(nil, []byte(addr), b4, b6)
		var ip netip.Addr
		if ap, err := netip.ParseAddrPort(addr); err == nil {
			ip = ap.Addr()
		} else if a, err := netip.ParseAddr(addr); err == nil {
			ip = a
		} else if strings.HasPrefix(addr, "[") && strings.HasSuffix(addr, "]") {
			ip, _ = netip.ParseAddr(addr[1 : len(addr)-1])
		}
		if ip.IsValid() {
			ip = ip.Unmap().WithZone("")
			bits := b6
			if ip.Is4() {
				bits = b4
			}
			want := ""
			if bits > 0 {
				p, _ := ip.Prefix(bits)
				want = p.String()
			}
			if string(got) != want {
				t.Fatalf("appendAddrPrefix(%q, %d, %d) = %q, netip says %q", addr, b4, b6, got, want)
			}
		}
		if ok {
			if p, err := netip.ParsePrefix(string(got)); err != nil || p.Masked() != p || p.String() != string(got) {
				t.Fatalf("appendAddrPrefix(%q) = %q, not a canonical prefix (%v)", addr, got, err)
			}
		}
	})
}

func TestAppendUserAgent(t *testing.T) {
	for in, want := range map[string]string{
		"Mozilla/5.0":                         "Mozilla/5.0",
		"a\xffb":                              "a?b",
		strings.Repeat("x", 300):              strings.Repeat("x", 256),
		strings.Repeat("x", 255) + "€":        strings.Repeat("x", 255),
		strings.Repeat("x", 253) + "€":        strings.Repeat("x", 253) + "€",
		strings.Repeat("x", 255) + "\xe2\x82": strings.Repeat("x", 255) + "?",
	} {
		got := string(appendUserAgent(nil, []byte(in)))
		if got != want || !utf8.ValidString(got) || len(got) > wire.MaxDeviceText {
			t.Errorf("appendUserAgent(%q) = %q, want %q", in, got, want)
		}
	}
}

// captureTestConfig captures three query parameters, at most 4 values of
// at most 16 bytes.
func captureTestConfig(t testing.TB) *config.Capture {
	c, err := config.Parse([]byte(`{"keys":{"1":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},` +
		`"capture":{"query":["utm_source","cc","a"],"cookies":["cc"],"maxValueLen":16,"maxCount":4}}`))
	if err != nil {
		t.Fatal(err)
	}
	return &c.Capture
}

func TestScanQuery(t *testing.T) {
	cp := captureTestConfig(t)
	var s stream
	for q, want := range map[string]string{
		"utm_source=a%20b+c&cc=de":       "utm_source=a b c;cc=de",
		"cc=de&cc=ch":                    "cc=de",
		"cc=%zz&cc=ok":                   "cc=ok",
		"cc=%ff&a=%C3%BC":                "a=ü",
		"cc=" + strings.Repeat("x", 17):  "",
		"cc=" + strings.Repeat("x", 16):  "cc=" + strings.Repeat("x", 16),
		"a=1&&&=&cc&cc=&utm_source=2":    "a=1;utm_source=2",
		"x=1&utm_sourcex=2&UTM_SOURCE=3": "",
	} {
		s.ncap, s.capBuf = 0, s.capBuf[:0]
		s.scanQuery([]byte(q), cp)
		var got []string
		for _, c := range s.caps[:s.ncap] {
			got = append(got, cp.Names[c.name].Name+"="+string(s.capBuf[c.start:c.end]))
		}
		if strings.Join(got, ";") != want {
			t.Errorf("scanQuery(%q) = %q, want %q", q, got, want)
		}
	}
}

// FuzzCaptureQuery holds the query scan to its limits and to the time
// budget: linear in the query, whatever it holds.
func FuzzCaptureQuery(f *testing.F) {
	f.Add([]byte("utm_source=news&cc=ch&a=1"))
	f.Add([]byte(strings.Repeat("a=1&", 1000)))
	f.Add([]byte(strings.Repeat("%", 1000)))
	f.Add([]byte("cc=" + strings.Repeat("%41", 100)))
	cp := captureTestConfig(f)
	var s stream
	f.Fuzz(func(t *testing.T, q []byte) {
		if len(q) > 1<<20 {
			return
		}
		fuzzbudget.Check(t, len(q), func() {
			s.ncap, s.capBuf = 0, s.capBuf[:0]
			s.scanQuery(q, cp)
		})
		if s.ncap > cp.MaxCount {
			t.Fatalf("%d values captured, at most %d allowed", s.ncap, cp.MaxCount)
		}
		seen := map[uint8]bool{}
		for _, c := range s.caps[:s.ncap] {
			v := s.capBuf[c.start:c.end]
			if len(v) == 0 || len(v) > cp.MaxValueLen || !utf8.Valid(v) || seen[c.name] || !cp.Names[c.name].Query {
				t.Fatalf("captured %q for %s", v, cp.Names[c.name].Name)
			}
			seen[c.name] = true
		}
	})
}
