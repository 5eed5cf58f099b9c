// Package redistest starts real redis-server processes for tests and
// benchmarks: a standalone server, or a Redis Cluster of several masters built
// with redis-cli --cluster create. Every server listens on a free loopback
// port, keeps its files in a temporary directory, and is stopped by t.Cleanup.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionedge/sessionedge/internal/testenv"
)

// Server is one running redis-server.
type Server struct {
	Addr string // host:port
	Dir  string // working directory (AOF, nodes.conf)
	Port int

	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// Available reports whether redis-server is on PATH; tests that need it call
// Require, which skips with the command that installs it when it is not, or
// fails where SESSIONEDGE_REQUIRE asks for it (CI sets it to "all").
func Available() bool {
	_, err := exec.LookPath("redis-server")
	return err == nil
}

// Require skips t when redis-server is missing (fails it when required).
func Require(t testing.TB) {
	t.Helper()
	testenv.Tool(t, "redis-server", "apt-get install redis-server")
}

// Options tune a server.
type Options struct {
	// AppendOnly turns on the AOF with appendfsync always, so every
	// acknowledged write survives a restart of the server.
	AppendOnly bool
	// Cluster starts the server in cluster mode.
	Cluster bool
	// Password sets requirepass (and masterauth).
	Password string
}

// Start starts a standalone redis-server.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	Require(t)
	s := &Server{Dir: t.TempDir()}
	s.args = []string{"--bind", "127.0.0.1", "--save", "", "--dir", s.Dir, "--protected-mode", "no", "--loglevel", "warning"}
	if opt.AppendOnly {
		s.args = append(s.args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		s.args = append(s.args, "--appendonly", "no")
	}
	if opt.Cluster {
		s.args = append(s.args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
	}
	if opt.Password != "" {
		s.args = append(s.args, "--requirepass", opt.Password, "--masterauth", opt.Password)
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if s.Port, err = freePort(opt.Cluster); err != nil {
			continue
		}
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("redistest: cannot start redis-server: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// freePort finds a loopback port that is free; for cluster nodes the bus
// port (port + 10000) must be free too.
func freePort(cluster bool) (int, error) {
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !cluster {
			return port, nil
		}
		if port+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		bus.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port pair found")
}

func (s *Server) start() error {
	s.Addr = "127.0.0.1:" + strconv.Itoa(s.Port)
	args := append([]string{"--port", strconv.Itoa(s.Port)}, s.args...)
	cmd := exec.Command("redis-server", args...)
	cmd.Dir = s.Dir
	log, err := os.Create(filepath.Join(s.Dir, "redis.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(s.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
			return fmt.Errorf("redis-server exited: %s", strings.TrimSpace(string(b)))
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond); err == nil {
			ok := ping(c)
			c.Close()
			if ok {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.kill()
	return fmt.Errorf("redis-server on %s did not answer PING within 10s", s.Addr)
}

// ping sends an inline PING; a server that wants a password answers NOAUTH,
// which also proves it is up.
func ping(c net.Conn) bool {
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && (strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH"))
}

func (s *Server) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		<-s.done
	}
}

// Stop kills the server (SIGKILL: what a crash looks like) and waits for it.
func (s *Server) Stop() { s.kill() }

// Restart stops the server and starts it again on the same port and
// directory, so an append-only file brings the data back.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.kill()
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // the port may linger for a moment
	}
	t.Fatalf("redistest: restart of %s failed: %v", s.Addr, err)
}

// Cluster is a Redis Cluster of masters without replicas.
type Cluster struct {
	Nodes []*Server
}

// Addrs returns every node's address, for a client's seed list.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr
	}
	return out
}

// StartCluster starts masters nodes in cluster mode and joins them with
// redis-cli --cluster create, waiting until the cluster reports ok.
func StartCluster(t testing.TB, masters int, opt Options) *Cluster {
	t.Helper()
	Require(t)
	testenv.Tool(t, "redis-cli", "apt-get install redis-tools")
	opt.Cluster = true
	c := &Cluster{}
	for i := 0; i < masters; i++ {
		c.Nodes = append(c.Nodes, Start(t, opt))
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if opt.Password != "" {
		args = append(args, "-a", opt.Password, "--no-auth-warning")
	}
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range c.Nodes {
		for {
			cmd := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(n.Port)}
			if opt.Password != "" {
				cmd = append(cmd, "-a", opt.Password, "--no-auth-warning")
			}
			out, _ := exec.Command("redis-cli", append(cmd, "cluster", "info")...).Output()
			if strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster not ok after 20s on %s:\n%s", n.Addr, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return c
}
