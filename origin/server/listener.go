package server

import (
	"net"
	"strconv"
	"sync"
	"time"
)

// perIPListener caps the connections one client address holds open: beyond
// max, a new connection is answered 429 and closed at once. (fasthttp's own
// MaxConnsPerIP races with its Shutdown, which closes idle connections while
// their readers use them.)
type perIPListener struct {
	net.Listener
	max     int
	refused func() // counts a refused connection

	mu    sync.Mutex
	conns map[string]int
}

func newPerIPListener(ln net.Listener, max int, refused func()) net.Listener {
	return &perIPListener{Listener: ln, max: max, refused: refused, conns: map[string]int{}}
}

// tooManyConns is the whole answer to a connection over the cap.
var tooManyConns = func() []byte {
	body := `{"error":{"code":"too_many_connections","message":"too many connections from this address"}}`
	return []byte("HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// Accept returns the next connection within its address's cap.
func (l *perIPListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := c.RemoteAddr().String()
		if host, _, err := net.SplitHostPort(ip); err == nil {
			ip = host
		}
		l.mu.Lock()
		if l.conns[ip] >= l.max {
			l.mu.Unlock()
			l.refused()
			c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			c.Write(tooManyConns)
			c.Close()
			continue
		}
		l.conns[ip]++
		l.mu.Unlock()
		return &countedConn{Conn: c, l: l, ip: ip}, nil
	}
}

func (l *perIPListener) release(ip string) {
	l.mu.Lock()
	if l.conns[ip]--; l.conns[ip] <= 0 {
		delete(l.conns, ip)
	}
	l.mu.Unlock()
}

// countedConn gives its address's slot back when closed (once).
type countedConn struct {
	net.Conn
	l    *perIPListener
	ip   string
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}
