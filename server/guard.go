package server

import (
	"context"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// Request hygiene (issue 13): what a browser page on another site, a
// request smuggler or a crowd of event-stream clients could otherwise do.

// guardListener wraps the HTTP listener so that each connection watches
// the request heads it carries for both Content-Length and
// Transfer-Encoding (guardConn). With TLS it wraps the TLS listener: it
// sees the decrypted bytes.
type guardListener struct{ net.Listener }

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardConn{Conn: c}, nil
}

// hookListener calls hook with every connection it accepts
// (Config.onAccept).
type hookListener struct {
	net.Listener
	hook func(net.Conn)
}

func (l hookListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.hook(c)
	}
	return c, err
}

// guardConn notices a request head with both Content-Length and
// Transfer-Encoding. Go's server then reads the body by
// Transfer-Encoding alone and drops Content-Length from the request, so
// the handler cannot see it: RFC 9112 §6.3 asks to close the connection
// after answering such a request, since a proxy in front may have framed
// it the other way (request smuggling). The scan runs over every byte
// read; a body line looking like a header only closes a connection early,
// which is always safe.
type guardConn struct {
	net.Conn
	smuggled atomic.Bool

	// Scanner state, touched only by Read (one reader at a time).
	line         [len("transfer-encoding:")]byte
	lineLen      int
	sawCL, sawTE bool
}

func (c *guardConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	for _, b := range p[:n] {
		switch {
		case b == '\n':
			c.endLine()
		case b == '\r' && c.lineLen == 0:
		default:
			if c.lineLen < len(c.line) {
				c.line[c.lineLen] = b | 0x20 // ASCII lower case (and harmless on other bytes)
			}
			c.lineLen++
		}
	}
	return n, err
}

func (c *guardConn) endLine() {
	if c.lineLen == 0 { // a blank line ends a head
		if c.sawCL && c.sawTE {
			c.smuggled.Store(true)
		}
		c.sawCL, c.sawTE = false, false
		return
	}
	l := c.line[:min(c.lineLen, len(c.line))]
	switch {
	case strings.HasPrefix(string(l), "content-length:"):
		c.sawCL = true
	case string(l) == "transfer-encoding:":
		c.sawTE = true
	}
	c.lineLen = 0
}

type connKey struct{}

// connContext remembers the request's connection (http.Server.ConnContext).
func connContext(ctx context.Context, c net.Conn) context.Context {
	if g, ok := c.(*guardConn); ok {
		return context.WithValue(ctx, connKey{}, g)
	}
	return ctx
}

// closeSmuggled closes, after its answer, the connection of a request
// that carried both Content-Length and Transfer-Encoding.
func closeSmuggled(w http.ResponseWriter, r *http.Request) {
	if g, ok := r.Context().Value(connKey{}).(*guardConn); ok && g.smuggled.Load() {
		w.Header().Set("Connection", "close")
	}
}

// submitContentTypes are the media types a submission may declare
// (CONTRACT §5 v2). A browser page on another site can send a POST only
// as text/plain, a form or multipart without asking first (CORS): these
// types cannot arrive from it unless the server allowed it, which tally
// never does.
var submitContentTypes = map[string]bool{"application/json": true, "application/x-ndjson": true}

// checkSubmitHeaders answers 415 for a submission body of another media
// type and 403 for one from a foreign origin; it returns false when it
// answered.
func (s *Server) checkSubmitHeaders(w http.ResponseWriter, r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || !submitContentTypes[mt] {
		w.Header().Set("Accept-Post", "application/json, application/x-ndjson")
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: a submission is application/json or application/x-ndjson", ct))
		return false
	}
	if origin := r.Header.Get("Origin"); origin != "" && !s.originAllowed(origin, r) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("Origin %q may not submit minutes: only pages served by tally itself may, or origins the operator allows (--allow-origin)", origin))
		return false
	}
	return true
}

// originAllowed reports whether a page of origin may POST: the server's
// own origin (scheme and the Host the request was sent to), or one the
// operator allowed.
func (s *Server) originAllowed(origin string, r *http.Request) bool {
	scheme := "http"
	if s.tls {
		scheme = "https"
	}
	if u, err := url.Parse(origin); err == nil && u.Scheme == scheme && u.Path == "" && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, o := range s.cfg.Gateway.AllowOrigins {
		if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}

// streamLimit caps the event streams open at once, in all and per remote
// IP address.
type streamLimit struct {
	max, perClient int
	mu             sync.Mutex
	open           int
	byIP           map[string]int
}

// acquire reserves a stream for remote (a RemoteAddr); it returns why not,
// or "".
func (l *streamLimit) acquire(ip string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.open >= l.max:
		return fmt.Sprintf("%d event streams are open, the most this server serves at once", l.open)
	case l.byIP[ip] >= l.perClient:
		return fmt.Sprintf("%d event streams are open from %s, the most one client may have at once", l.byIP[ip], ip)
	}
	l.open++
	l.byIP[ip]++
	return ""
}

func (l *streamLimit) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
}

// remoteIP is the IP address of r's client (no port).
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
