package l7

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// transport is the round trip to a server, in place of fasthttp's: it
// reads a response body of at most BodyBuffer bytes whole, so that the
// frontend sends headers and body in one write, and streams larger ones
// and those of unknown length through a pooled bodyStream. Unlike
// fasthttp's own streaming it allocates nothing per request, sets no
// deadlines (timeoutConn keeps the server timeout) and decides whether to
// keep the server connection from the server's response alone, so that a
// client that closes its connection does not close a pooled server
// connection with it.
//
// C is fasthttp's connection type, which is unexported: it is inferred
// from HostClient's AcquireConn, ReleaseConn and CloseConn.
type transport[C interface{ Conn() net.Conn }] struct {
	hc      *fasthttp.HostClient
	acquire func(time.Duration, bool) (C, error)
	release func(C)
	close   func(C)
	streams sync.Pool // *bodyStream[C]
	bufs    sync.Pool // *[chunkBuf]byte
}

// chunkBuf is the size of the chunks of a chunked request body sent on.
const chunkBuf = 16 << 10

func newTransport[C interface{ Conn() net.Conn }](hc *fasthttp.HostClient,
	acquire func(time.Duration, bool) (C, error), release, close func(C)) *transport[C] {
	return &transport[C]{hc: hc, acquire: acquire, release: release, close: close}
}

// errChunked reports a malformed chunked body from a server.
var errChunked = errors.New("malformed chunked body")

// RoundTrip implements fasthttp.RoundTripper. retry is true when nothing
// of a response was read, so that HostClient may try a stale keep-alive
// connection's request again (its RetryIfErr decides).
func (t *transport[C]) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (bool, error) {
	return t.roundTrip(hc, req, resp, nil)
}

// roundTripper is the transport with the request's txn, which takes the
// queue, connect and response times (nil: none).
type roundTripper interface {
	roundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response, tx *txn) (bool, error)
}

// maxAttempts bounds the sends of a request that met stale keep-alive
// connections, as fasthttp's DefaultMaxIdemponentCallAttempts does.
const maxAttempts = 5

// do is HostClient.Do through the transport with tx: it sends req to the
// server and reads the response into resp, sending an idempotent request
// again when it met a keep-alive connection the server had closed.
func (s *server) do(req *fasthttp.Request, resp *fasthttp.Response, tx *txn) error {
	rt := s.hc.Transport.(roundTripper)
	req.URI().DisablePathNormalizing = true
	for attempt := 1; ; attempt++ {
		skip, stream := resp.SkipBody, resp.StreamBody
		resp.Reset()
		resp.SkipBody, resp.StreamBody = skip, stream
		retry, err := rt.roundTrip(s.hc, req, resp, tx)
		if err == nil || !retry || req.IsBodyStream() || attempt >= maxAttempts || !retryStale(req, err) {
			if err == io.EOF {
				err = fasthttp.ErrConnectionClosed
			}
			return err
		}
	}
}

// roundTrip is RoundTrip noting in tx (which may be nil) the times and
// how the exchange went.
func (t *transport[C]) roundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response, tx *txn) (bool, error) {
	var t0 time.Time
	if tx.timing() {
		t0 = time.Now()
	}
	cc, err := t.acquire(0, false)
	if err != nil {
		tx.connectFailed(t0, err)
		return false, err
	}
	conn := cc.Conn()
	tc, _ := conn.(*timeoutConn)
	tx.connected(t0, tc)
	if tc != nil {
		tc.startCapture()
	}
	bw := hc.AcquireWriter(conn)
	if req.IsBodyStream() && req.Header.ContentLength() == -1 && len(req.Header.Host()) > 0 {
		err = t.writeChunked(bw, req)
	} else {
		err = req.Write(bw)
	}
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err == nil && tc != nil {
		err = tc.sendAndAwait()
	}
	if err == nil && tx != nil {
		// The body, if any, was read to its end: the client connection
		// can be kept (Frontend.handle).
		tx.sentBody = true
	}
	if err != nil {
		if tc != nil {
			tc.capture = false
		}
		t.close(cc)
		var be *clientBodyError
		if errors.As(err, &be) {
			return false, err
		}
		return true, timeoutError(err)
	}

	br := hc.AcquireReader(conn)
	resp.Header.DisableNormalizing()
	for {
		if err = resp.Header.Read(br); err != nil {
			hc.ReleaseReader(br)
			t.close(cc)
			return true, timeoutError(err)
		}
		// Interim responses (100 Continue, 103 Early Hints) are not
		// forwarded. 101 is the answer to an upgrade (the Upgrade header
		// stays only in those): the connection leaves the pool for the
		// frontend to splice to the client.
		c := resp.StatusCode()
		if c == fasthttp.StatusSwitchingProtocols && len(req.Header.Peek(hdrUpgrade)) > 0 {
			resp.SkipBody = true
			req.SetUserValue(tunnelKey{}, &tunnel[C]{t: t, cc: cc, br: br})
			return false, nil
		}
		if c < 100 || c >= 200 {
			break
		}
	}
	tx.headersIn()
	keep := !resp.Header.ConnectionClose()
	code := resp.StatusCode()
	if req.Header.IsHead() || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified {
		resp.SkipBody = true
		t.done(cc, br, keep)
		return false, nil
	}
	cl := resp.Header.ContentLength()
	if cl >= 0 && cl <= BodyBuffer {
		if err = resp.ReadBody(br, 0); err != nil {
			hc.ReleaseReader(br)
			t.close(cc)
			return false, timeoutError(err)
		}
		t.done(cc, br, keep)
		return false, nil
	}
	s, _ := t.streams.Get().(*bodyStream[C])
	if s == nil {
		s = &bodyStream[C]{t: t}
	}
	s.cc, s.br, s.keep, s.done, s.err, s.tx = cc, br, keep, false, nil, tx.forStream()
	switch {
	case cl >= 0:
		s.mode, s.left = modeFixed, int64(cl)
	case cl == -1:
		s.mode, s.left = modeChunked, 0
	default: // -2: until the server closes
		s.mode, s.keep = modeClose, false
	}
	if cl < 0 {
		cl = -1 // chunked to the client
	}
	resp.SetBodyStream(s, cl)
	return false, nil
}

// writeChunked writes a request whose body is a chunked stream from the
// client, as req.Write would, but tells the client's failures (a bad
// chunk, a body beyond the limit in the bodyLimitKey user value) from the
// server's, as clientBodyError.
func (t *transport[C]) writeChunked(bw *bufio.Writer, req *fasthttp.Request) error {
	limit := int64(-1)
	if p, ok := req.UserValue(bodyLimitKey{}).(*int64); ok {
		limit = *p
	}
	if err := req.Header.Write(bw); err != nil {
		return err
	}
	buf, _ := t.bufs.Get().(*[chunkBuf]byte)
	if buf == nil {
		buf = new([chunkBuf]byte)
	}
	defer t.bufs.Put(buf)
	body := req.BodyStream()
	var total int64
	for {
		n, err := body.Read(buf[:])
		if n > 0 {
			total += int64(n)
			if limit >= 0 && total > limit {
				return &clientBodyError{errBodyLimit}
			}
			// Formatted in bw's own buffer: a local array would escape
			// through Write and cost an allocation per request.
			bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(n), 16))
			bw.WriteString("\r\n")
			bw.Write(buf[:n])
			if _, werr := bw.WriteString("\r\n"); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			// The engine may take a read that failed at the start of
			// the trailer section for its end: ask the framer.
			if f, ok := req.UserValue(framingKey{}).(*framer); ok {
				if ferr := f.chunkedEnd(); ferr != nil {
					return &clientBodyError{ferr}
				}
			}
			_, err = bw.WriteString("0\r\n\r\n")
			return err
		}
		if err != nil {
			return &clientBodyError{err}
		}
	}
}

func (t *transport[C]) done(cc C, br *bufio.Reader, keep bool) {
	t.hc.ReleaseReader(br)
	if keep {
		t.release(cc)
	} else {
		t.close(cc)
	}
}

func timeoutError(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fasthttp.ErrTimeout
	}
	return err
}

const (
	modeFixed = iota
	modeChunked
	modeClose
)

// bodyStream is a response body being read from a server connection. The
// frontend reads it to the client and then calls CloseWithError, which
// gives the connection back to the pool if the body was read to its end,
// or closes it.
type bodyStream[C interface{ Conn() net.Conn }] struct {
	t    *transport[C]
	cc   C
	br   *bufio.Reader
	keep bool
	mode int
	left int64 // bytes left in the body (fixed) or the chunk (chunked)
	done bool  // the body was read to its end
	err  error
	tx   *txn // notes a server's failure in the data phase; may be nil
}

func (s *bodyStream[C]) Read(p []byte) (int, error) {
	if s.done {
		return 0, io.EOF
	}
	if s.err != nil {
		return 0, s.err
	}
	switch s.mode {
	case modeFixed:
		if s.left == 0 {
			s.done = true
			return 0, io.EOF
		}
		if int64(len(p)) > s.left {
			p = p[:s.left]
		}
		n, err := s.br.Read(p)
		s.left -= int64(n)
		if err == io.EOF && s.left > 0 {
			err = io.ErrUnexpectedEOF
		}
		if err != nil && err != io.EOF {
			s.err = timeoutError(err)
			return n, s.err
		}
		return n, nil
	case modeChunked:
		if s.left == 0 {
			size, err := s.chunkSize()
			if err != nil {
				s.err = err
				return 0, err
			}
			if size == 0 {
				if err := s.trailer(); err != nil {
					s.err = err
					return 0, err
				}
				s.done = true
				return 0, io.EOF
			}
			s.left = size
		}
		if int64(len(p)) > s.left {
			p = p[:s.left]
		}
		n, err := s.br.Read(p)
		s.left -= int64(n)
		if err == nil && s.left == 0 {
			err = s.crlf()
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			s.err = timeoutError(err)
			return n, s.err
		}
		return n, nil
	default: // modeClose
		n, err := s.br.Read(p)
		if err == io.EOF {
			s.done = true
		} else if err != nil {
			s.err = timeoutError(err)
		}
		return n, err
	}
}

// chunkSize reads a chunk-size line ("1a2b;ext\r\n").
func (s *bodyStream[C]) chunkSize() (int64, error) {
	line, err := s.br.ReadSlice('\n')
	if err != nil {
		if err == io.EOF || err == bufio.ErrBufferFull {
			return 0, errChunked
		}
		return 0, timeoutError(err)
	}
	line = bytes.TrimRight(line, "\r\n")
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimSpace(line)
	if len(line) == 0 || len(line) > 15 {
		return 0, errChunked
	}
	var n int64
	for _, c := range line {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, errChunked
		}
		n = n<<4 | int64(v)
	}
	return n, nil
}

// crlf reads the CRLF that ends a chunk's data.
func (s *bodyStream[C]) crlf() error {
	line, err := s.br.ReadSlice('\n')
	if err != nil {
		if err == io.EOF || err == bufio.ErrBufferFull {
			return errChunked
		}
		return err
	}
	if len(bytes.TrimRight(line, "\r\n")) != 0 {
		return errChunked
	}
	return nil
}

// trailer reads and drops the trailer section up to its empty line.
func (s *bodyStream[C]) trailer() error {
	for i := 0; ; i++ {
		line, err := s.br.ReadSlice('\n')
		if err != nil || i > 100 {
			if err == nil || err == io.EOF || err == bufio.ErrBufferFull {
				return errChunked
			}
			return timeoutError(err)
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return nil
		}
	}
}

// CloseWithError is called by the frontend once it has sent the body, or
// failed to (wErr), or dropped the response.
func (s *bodyStream[C]) CloseWithError(wErr error) error {
	var zero C
	if s.err != nil {
		s.tx.serverAborted(s.err)
	}
	s.t.done(s.cc, s.br, s.keep && s.done && s.err == nil && wErr == nil)
	s.cc, s.br, s.err, s.tx = zero, nil, nil, nil
	s.t.streams.Put(s)
	return nil
}

// String describes the stream for debugging.
func (s *bodyStream[C]) String() string {
	return "body stream mode " + strconv.Itoa(s.mode) + " left " + strconv.FormatInt(s.left, 10)
}
