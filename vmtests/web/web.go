// Package web is the small HTTP real server used by the vmtests: it says
// which server answered and what client address it saw, has a health check
// that can be turned down, a rate-limited download for drain tests and a TCP
// echo for long-lived connections. cmd/webserver runs it.
package web

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// WhoAmI is the JSON body of GET /.
type WhoAmI struct {
	// Server is the answering server's name.
	Server string `json:"server"`
	// Remote is the client address:port the server saw.
	Remote string `json:"remote"`
	// Local is the address:port the connection was made to (the VIP in DR
	// mode).
	Local string `json:"local"`
	// XFF echoes the X-Forwarded-For request header.
	XFF string `json:"xff,omitempty"`
}

// Limits of /bytes.
const (
	MaxBytes = 1 << 30
	chunk    = 16 << 10
)

// Server answers as Name.
type Server struct {
	Name string
	// DownFile, if set, makes /check.txt answer 503 while the file exists.
	DownFile string
	// Log, if set, gets a line per request.
	Log *log.Logger

	down atomic.Bool
}

// SetDown turns the health check down (true) or up.
func (s *Server) SetDown(down bool) { s.down.Store(down) }

// Healthy reports what /check.txt will answer.
func (s *Server) Healthy() bool {
	if s.down.Load() {
		return false
	}
	if s.DownFile != "" {
		if _, err := os.Stat(s.DownFile); err == nil {
			return false
		}
	}
	return true
}

// Handler serves /, /check.txt and /bytes?n=N&rate=R.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.whoami)
	mux.HandleFunc("GET /check.txt", s.check)
	mux.HandleFunc("GET /bytes", s.bytes)
	return s.logged(mux)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Server", s.Name)
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		h.ServeHTTP(sw, r)
		if s.Log != nil {
			s.Log.Printf("%s %s %s from %s xff=%q: %d in %v", r.Method, r.URL.RequestURI(), r.Proto, r.RemoteAddr,
				r.Header.Get("X-Forwarded-For"), sw.status, time.Since(start).Round(time.Microsecond))
		}
	})
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	local := ""
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		local = a.String()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(WhoAmI{Server: s.Name, Remote: r.RemoteAddr, Local: local, XFF: r.Header.Get("X-Forwarded-For")})
}

func (s *Server) check(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	if !s.Healthy() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "DOWN %s\n", s.Name)
		return
	}
	fmt.Fprintf(w, "OK %s\n", s.Name)
}

// bytes sends n bytes at rate bytes a second (0: as fast as possible).
func (s *Server) bytes(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
	if err != nil || n < 0 || n > MaxBytes {
		http.Error(w, fmt.Sprintf("n: want 0 to %d", MaxBytes), http.StatusBadRequest)
		return
	}
	var rate int64
	if v := r.URL.Query().Get("rate"); v != "" {
		if rate, err = strconv.ParseInt(v, 10, 64); err != nil || rate < 0 {
			http.Error(w, "rate: want bytes per second >= 0", http.StatusBadRequest)
			return
		}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = 'a' + byte(i%26)
	}
	rc := http.NewResponseController(w)
	start := time.Now()
	for sent := int64(0); sent < n; {
		if rate > 0 {
			// Do not get ahead of rate.
			due := start.Add(time.Duration(float64(sent) / float64(rate) * float64(time.Second)))
			select {
			case <-time.After(time.Until(due)):
			case <-r.Context().Done():
				return
			}
		}
		m := min(n-sent, int64(len(buf)))
		if rate > 0 {
			m = min(m, max(rate/20, 1))
		}
		if _, err := w.Write(buf[:m]); err != nil {
			return
		}
		_ = rc.Flush()
		sent += m
	}
}

// ServeEcho accepts connections on l until it is closed. Each connection
// first gets a line "server=<name> remote=<addr>", then everything it sends
// is echoed back.
func (s *Server) ServeEcho(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go func() {
			defer c.Close()
			if s.Log != nil {
				s.Log.Printf("echo: connection from %s", c.RemoteAddr())
			}
			bw := bufio.NewWriter(c)
			fmt.Fprintf(bw, "server=%s remote=%s\n", s.Name, c.RemoteAddr())
			if bw.Flush() != nil {
				return
			}
			_, _ = io.Copy(c, c)
		}()
	}
}
