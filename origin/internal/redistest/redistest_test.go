package redistest

import (
	"bufio"
	"net"
	"strings"
	"testing"
)

func command(t *testing.T, addr, cmd string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}

func TestStandaloneRestartKeepsAOFData(t *testing.T) {
	s := Start(t, Options{AppendOnly: true})
	if got := command(t, s.Addr, "SET k v"); got != "+OK" {
		t.Fatalf("SET = %q", got)
	}
	s.Restart(t)
	if got := command(t, s.Addr, "EXISTS k"); got != ":1" {
		t.Fatalf("after restart EXISTS k = %q, want :1", got)
	}
}

func TestCluster(t *testing.T) {
	c := StartCluster(t, 3, Options{})
	if len(c.Addrs()) != 3 {
		t.Fatal("want 3 nodes")
	}
	got := command(t, c.Nodes[0].Addr, "CLUSTER INFO")
	if !strings.HasPrefix(got, "$") { // bulk string header
		t.Fatalf("CLUSTER INFO = %q", got)
	}
}
