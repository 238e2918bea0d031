package l7

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// The event-loop engine serves plain HTTP/1.x the way HAProxy does: one
// loop per thread, each an epoll set that holds client and server
// connections alike, run on a locked OS thread that sleeps in epoll_wait
// when there is nothing to do. A request costs its reads and writes and
// nothing else: no goroutine switch, no runtime netpoller round trip, no
// wake-up of another thread. (The goroutine engine, fasthttp's, parks a
// goroutine per connection; at two threads its always-busy scheduler
// threads lose their CPU to wrk and the servers and the 99th percentile
// trebles: l7/doc.go.)
//
// The loop takes the common request: HTTP/1.x, a header section and a
// body of at most BodyBuffer bytes with a Content-Length, for a backend
// (not a rule's own answer), on a server with a free connection slot.
// Everything else (a chunked or larger body, Expect, an upgrade, a rule
// that answers, a full server, anything malformed the framing checks
// should see) goes, with the connection and what was read of it, to the
// goroutine engine, which serves that connection from then on. Both
// engines share the request and response logic (Backend.prepare,
// Backend.respond), the counters and the access log.
//
// Responses are streamed: the header as the backend rewrites it, then the
// body as the server sends it, Content-Length, chunked (checked as
// framing.go checks requests) or up to the server's close, with
// backpressure from the client.

// loopEngine is a frontend's loops.
type loopEngine struct {
	f        *Frontend
	loops    []*evLoop
	done     chan struct{} // closed when every loop has ended
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// evLoop is one thread's epoll set and connections.
type evLoop struct {
	f        *Frontend
	ep       int
	wake     int // eventfd: new connections, shutdown
	mu       sync.Mutex
	inbox    []newConn
	stop     bool // finish the requests, then end
	kill     bool // end now
	conns    map[int]loopConn
	idle     map[*server][]*srvConn
	addrs    map[*server]unix.Sockaddr
	timers   timerHeap
	now      time.Time
	buf      []byte
	rd       bytes.Reader
	br       *bufio.Reader
	stopping bool
	stopAt   time.Time    // when stopping began
	clients  atomic.Int64 // client connections, given or on their way

	// In a round (the events of one epoll_wait), writes wait for its
	// end: writeLater.
	round bool
	toCli []*cliConn
	toSrv []*srvConn

	share cpuShare
}

type newConn struct {
	fd      int
	release func() // gives the listener's slot back
	remote  net.Addr
	local   net.Addr
}

// loopConn is a client or server connection of a loop.
type loopConn interface {
	event(ev uint32)
	expire()
}

const (
	loopOutMax = 256 << 10 // client output held before the server is read no more
	loopRead   = 64 << 10
)

// yieldEvery is how often a loop lets the Go scheduler reschedule it.
// The runtime takes a goroutine that has not been rescheduled for 10 ms
// for one to preempt, and if it sits in a syscall (a loop in epoll_wait)
// takes its P from it, which sets sysmon polling every 20 µs again for a
// millisecond or more (runtime.retake, Go 1.26): a loop that never
// yields brings that on every 10 ms, and with a loop per core sysmon
// never slows down. A yield costs a few thread wake-ups.
const yieldEvery = 5 * time.Millisecond

func newLoopEngine(f *Frontend, n int) (*loopEngine, error) {
	e := &loopEngine{f: f, done: make(chan struct{})}
	for i := 0; i < n; i++ {
		l, err := newEvLoop(e)
		if err != nil {
			for _, l := range e.loops {
				l.close()
			}
			return nil, err
		}
		e.loops = append(e.loops, l)
	}
	for _, l := range e.loops {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			l.run()
		}()
	}
	go func() {
		e.wg.Wait()
		close(e.done)
	}()
	return e, nil
}

func newEvLoop(e *loopEngine) (*evLoop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(ep)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		unix.Close(ep)
		unix.Close(wake)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	l := &evLoop{f: e.f, ep: ep, wake: wake, conns: map[int]loopConn{},
		idle: map[*server][]*srvConn{}, addrs: map[*server]unix.Sockaddr{}, buf: make([]byte, loopRead)}
	l.br = bufio.NewReaderSize(&l.rd, max(e.f.cfg.MaxHeaderSize, 4096)+16)
	return l, nil
}

func (l *evLoop) close() {
	unix.Close(l.ep)
	unix.Close(l.wake)
}

// add gives a new client connection to the loop with the fewest, as
// HAProxy gives it to the least loaded thread.
func (e *loopEngine) add(c newConn) {
	l := e.loops[0]
	for _, o := range e.loops[1:] {
		if o.clients.Load() < l.clients.Load() {
			l = o
		}
	}
	l.clients.Add(1)
	l.mu.Lock()
	l.inbox = append(l.inbox, c)
	l.mu.Unlock()
	l.signal()
}

func (l *evLoop) signal() {
	var one = [8]byte{1}
	unix.Write(l.wake, one[:])
}

// shutdown asks the loops to finish and waits for them until ctx is
// done; then their connections are closed.
func (e *loopEngine) shutdown(ctx context.Context) error {
	e.stopOnce.Do(func() {
		for _, l := range e.loops {
			l.mu.Lock()
			l.stop = true
			l.mu.Unlock()
			l.signal()
		}
	})
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		for _, l := range e.loops {
			l.mu.Lock()
			l.kill = true
			l.mu.Unlock()
			l.signal()
		}
		<-e.done
		return ctx.Err()
	}
}

func (l *evLoop) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer l.close()
	evs := make([]unix.EpollEvent, 256)
	var yielded time.Time
	for {
		if l.now.Sub(yielded) >= yieldEvery {
			runtime.Gosched()
			yielded = l.now
		}
		waitStart := time.Now()
		timeout := -1
		if len(l.timers) > 0 {
			d := time.Unix(0, l.timers[0].when).Sub(waitStart)
			timeout = max(int(d/time.Millisecond)+1, 0)
		}
		if l.stopping {
			// Look at the connections now and then: the idle ones go.
			if timeout < 0 || timeout > 100 {
				timeout = 100
			}
		}
		n, err := unix.EpollWait(l.ep, evs, timeout)
		if err != nil && err != unix.EINTR {
			l.f.log.Error().Err(err).Msg("epoll_wait")
			return
		}
		l.now = l.share.waited(waitStart, time.Now())
		l.round = true
		for i := 0; i < n; i++ {
			fd := int(evs[i].Fd)
			if fd == l.wake {
				l.inboxIn()
				continue
			}
			if c := l.conns[fd]; c != nil {
				c.event(evs[i].Events)
			}
		}
		l.endRound()
		l.expireTimers()
		if l.stopping && l.drain() {
			return
		}
	}
}

// Writes of a round: a loop reads and processes every event of an
// epoll_wait before it writes what they produced, requests to servers
// first, then responses to clients, as HAProxy runs its tasks after its
// reads. A write wakes the reader on the other side, and on a machine
// whose cores are all busy the kernel often runs it at once on the
// writer's core: written as each response came, every response took
// the loop's CPU away for one request of wrk's, and the requests went
// round the loop, wrk and the server one at a time. Written at the end,
// the readers wake to a batch. (bench-l7 at 64 connections on 2 shared
// cores: l7/doc.go, Event loops.)

// endRound writes what the round's events left to write. A write may
// end a request and start the next one, whose own writes are made at
// once.
func (l *evLoop) endRound() {
	l.round = false
	for i := 0; i < len(l.toSrv); i++ {
		sc := l.toSrv[i]
		sc.pending = false
		if !sc.closed && sc.cli != nil {
			sc.flushOut()
		}
		l.toSrv[i] = nil
	}
	l.toSrv = l.toSrv[:0]
	for i := 0; i < len(l.toCli); i++ {
		c := l.toCli[i]
		c.pending = false
		if !c.closed {
			c.flush()
		}
		l.toCli[i] = nil
	}
	l.toCli = l.toCli[:0]
}

// queueOnce appends c to q for the end of the round, unless pending says
// it is there already.
func queueOnce[T any](pending *bool, q *[]T, c T) {
	if !*pending {
		*pending = true
		*q = append(*q, c)
	}
}

// inboxIn takes the new connections and the stop request.
func (l *evLoop) inboxIn() {
	var b [8]byte
	unix.Read(l.wake, b[:])
	l.mu.Lock()
	in := l.inbox
	l.inbox = nil
	stop, kill := l.stop, l.kill
	l.mu.Unlock()
	for _, nc := range in {
		l.addClient(nc)
	}
	if (stop || kill) && !l.stopping {
		l.stopping, l.stopAt = true, l.now
	}
	if kill {
		for _, c := range l.conns {
			switch c := c.(type) {
			case *cliConn:
				c.close()
			case *srvConn:
				c.close()
			}
		}
	}
}

// firstRequestGrace is how long a stopping loop waits for the first
// request of a connection accepted before it stopped. The client may have
// sent it already, and on a connection that never carried a request it
// takes a closed socket as the server's failure, not as the end of an
// idle keep-alive connection, and does not send it again. The listener is
// closed by then, so the wait is for the requests on their way; a client
// that connected ahead of time and said nothing is let go after it.
const firstRequestGrace = time.Second

// drain closes idle connections when stopping and reports whether none
// is left. A connection between requests is closed, unless its next
// request is in the socket already or it has not had its first one yet
// (firstRequestGrace): that request is served, and the connection closed
// after its response.
func (l *evLoop) drain() bool {
	fresh := l.now.Sub(l.stopAt) < firstRequestGrace
	for _, c := range l.conns {
		switch c := c.(type) {
		case *cliConn:
			if c.phase == cIdle && !(fresh && !c.started) && !c.unread() {
				c.close()
			} else {
				c.closeAfter = true
			}
		case *srvConn:
			if c.cli == nil {
				c.close()
			}
		}
	}
	return len(l.conns) == 0
}

func (l *evLoop) register(fd int, c loopConn) error {
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}); err != nil {
		return err
	}
	l.conns[fd] = c
	return nil
}

// unregister takes a connection out of the loop and closes its socket.
func (l *evLoop) unregister(fd int, t *timed) {
	l.detach(fd, t)
	unix.Close(fd)
}

// detach takes a connection out of the loop, its socket left open.
func (l *evLoop) detach(fd int, t *timed) {
	t.closed = true
	l.timers.remove(t)
	delete(l.conns, fd)
	unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, fd, nil)
}

// readiness follows the readable state of an edge-triggered socket:
// ready from an event until a read finds it drained. A read shorter than
// the buffer drains it, as HAProxy assumes, since the next bytes bring a
// new edge; but not once the peer has closed its side, whose EOF brings
// none of its own: then reading goes on until it is seen.
type readiness struct{ ready, hup bool }

// event notes ev and reports whether it says the socket is readable.
func (r *readiness) event(ev uint32) bool {
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		return false
	}
	r.ready = true
	r.hup = r.hup || ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0
	return true
}

// read notes a read of a buffer of size that returned n and err.
func (r *readiness) read(n, size int, err error) {
	if (n > 0 && n < size && !r.hup) || isAgain(err) {
		r.ready = false
	}
}

// Timers: a heap of the connections with a deadline, each in it once at
// most, at the index it keeps. A deadline moves on every request; the
// heap is touched only when it moves earlier than the connection's
// entry. An entry that comes due early moves down to the connection's
// current deadline.

// timed is what a connection keeps for the heap.
type timed struct {
	dl     int64 // the deadline, Unix nanoseconds; 0: none
	when   int64 // the deadline of its heap entry
	idx    int   // its index in the heap, -1 if not in it
	c      loopConn
	closed bool
}

type timerHeap []*timed

func (h timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h[p].when <= h[i].when {
			break
		}
		h.swap(p, i)
		i = p
	}
}

func (h timerHeap) down(i int) {
	n := len(h)
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h[l].when < h[m].when {
			m = l
		}
		if r < n && h[r].when < h[m].when {
			m = r
		}
		if m == i {
			return
		}
		h.swap(m, i)
		i = m
	}
}

func (h timerHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}

func (h *timerHeap) push(t *timed) {
	t.idx = len(*h)
	*h = append(*h, t)
	h.up(t.idx)
}

// remove takes t out of the heap.
func (h *timerHeap) remove(t *timed) {
	i := t.idx
	if i < 0 {
		return
	}
	s := *h
	n := len(s) - 1
	if i != n {
		s.swap(i, n)
	}
	s[n] = nil
	s = s[:n]
	*h = s
	t.idx = -1
	if i < n {
		s.down(i)
		s.up(i)
	}
}

// arm sets t's deadline to d from now (none if d is 0).
func (l *evLoop) arm(t *timed, d time.Duration) {
	if d <= 0 {
		t.dl = 0
		return
	}
	t.dl = l.now.Add(d).UnixNano()
	switch {
	case t.idx < 0:
		t.when = t.dl
		l.timers.push(t)
	case t.dl < t.when:
		t.when = t.dl
		l.timers.up(t.idx)
	}
}

// expireTimers calls expire on the connections whose deadline passed.
func (l *evLoop) expireTimers() {
	now := l.now.UnixNano()
	for len(l.timers) > 0 && l.timers[0].when <= now {
		t := l.timers[0]
		switch {
		case t.dl == 0:
			l.timers.remove(t)
		case t.dl > now:
			t.when = t.dl
			l.timers.down(0)
		default:
			l.timers.remove(t)
			t.dl = 0
			t.c.expire()
		}
	}
}

// isAgain reports a non-blocking operation that would have blocked.
func isAgain(err error) bool { return err == unix.EAGAIN || err == unix.EWOULDBLOCK }

// osError makes a system call error a net.OpError, as the goroutine
// engine's errors are, for the access log's and counters' tests.
func osError(op string, err error) error {
	if err == nil {
		return nil
	}
	return &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, err)}
}

var errServerClosed = fmt.Errorf("server closed the connection: %w", fasthttp.ErrConnectionClosed)

// errLoopTimeout is a timeout as isTimeout sees it.
type errLoopTimeout struct{ what string }

func (e errLoopTimeout) Error() string { return e.what + " timeout" }
func (e errLoopTimeout) Timeout() bool { return true }
