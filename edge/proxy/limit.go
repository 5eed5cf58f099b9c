package proxy

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// clientLimit caps the connections of one client IP address at the
// listener: a connection beyond the cap gets a 429 and is closed before the
// server sees it. (fasthttp's MaxConnsPerIP closes connections in a way the
// race detector flags against their reads at shutdown.)
type clientLimit struct {
	net.Listener
	max     int
	refused *atomic.Int64

	mu  sync.Mutex
	per map[string]int
}

func limitClients(ln net.Listener, max int, refused *atomic.Int64) net.Listener {
	return &clientLimit{Listener: ln, max: max, refused: refused, per: map[string]int{}}
}

var tooManyConnections = []byte("HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 38\r\n\r\nToo many connections from one address\n")

// Accept returns the next connection of a client under its cap.
func (l *clientLimit) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := clientIP(c)
		l.mu.Lock()
		n := l.per[ip]
		if n < l.max {
			l.per[ip] = n + 1
		}
		l.mu.Unlock()
		if n < l.max {
			return &limitedConn{Conn: c, l: l, ip: ip}, nil
		}
		l.refused.Add(1)
		go func() {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write(tooManyConnections)
			_ = c.Close()
		}()
	}
}

func (l *clientLimit) release(ip string) {
	l.mu.Lock()
	if l.per[ip]--; l.per[ip] <= 0 {
		delete(l.per, ip)
	}
	l.mu.Unlock()
}

func clientIP(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return string(a.IP.To16())
	}
	return c.RemoteAddr().String()
}

// limitedConn gives its client's slot back when it closes.
type limitedConn struct {
	net.Conn
	l    *clientLimit
	ip   string
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}
