package tier

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// errPaused ends a frontend's Serve when its listener is handed over: the
// error fasthttp takes for a closed listener, so Serve returns quietly.
var errPaused = net.ErrClosed

// handover is a listening socket that outlives the frontends serving it:
// on reload the old frontend's session is paused (its blocked Accept woken
// by a deadline) and a new session is given to the new frontend. The
// socket stays open throughout, so no connection is refused; one accepted
// by the old session as it was paused goes to the new one.
type handover struct {
	ln *net.TCPListener

	mu       sync.Mutex
	cur      *session
	leftover []net.Conn
}

// session returns the listener the next frontend serves.
func (h *handover) session() net.Listener {
	s := &session{h: h}
	h.mu.Lock()
	h.cur = s
	h.mu.Unlock()
	return s
}

// pause ends the current session: its Accept returns errPaused from now
// on, and pause returns once it is no longer inside the socket's Accept.
func (h *handover) pause() {
	h.mu.Lock()
	s := h.cur
	h.cur = nil
	h.mu.Unlock()
	if s == nil {
		return
	}
	s.closed.Store(true)
	h.ln.SetDeadline(time.Now()) // wakes a blocked Accept
	s.accepting.Lock()           // waits for it to return
	s.paused = true              // what the lock guards: no Accept inside after this
	s.accepting.Unlock()
	h.ln.SetDeadline(time.Time{})
}

type session struct {
	h         *handover
	closed    atomic.Bool
	accepting sync.Mutex // held inside the socket's Accept
	paused    bool       // set by pause under accepting
}

func (s *session) Accept() (net.Conn, error) {
	s.accepting.Lock()
	defer s.accepting.Unlock()
	for {
		if s.paused || s.closed.Load() {
			return nil, errPaused
		}
		s.h.mu.Lock()
		if n := len(s.h.leftover); n > 0 {
			c := s.h.leftover[0]
			s.h.leftover = s.h.leftover[1:]
			s.h.mu.Unlock()
			return c, nil
		}
		s.h.mu.Unlock()
		c, err := s.h.ln.Accept()
		if s.closed.Load() {
			if err == nil {
				s.h.mu.Lock()
				s.h.leftover = append(s.h.leftover, c)
				s.h.mu.Unlock()
			}
			return nil, errPaused
		}
		var ne net.Error
		if err != nil && errors.As(err, &ne) && ne.Timeout() {
			continue // the deadline of a pause that raced with this session's start
		}
		return c, err
	}
}

// Close is the frontend's: the socket stays open for the next session.
func (s *session) Close() error {
	s.closed.Store(true)
	return nil
}

func (s *session) Addr() net.Addr { return s.h.ln.Addr() }
