package l7

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sync"
)

// Framing that the engine reads leniently and a server or another proxy
// could read differently, found on the raw bytes from the client.
var (
	errLineEnd   = errors.New("line not ended by CRLF")
	errChunkSize = errors.New("malformed chunk size")
	errChunkExt  = errors.New("malformed chunk extension")
	errChunkLine = errors.New("chunk-size line too long")
	errChunkCRLF = errors.New("chunk-size line or chunk data not ended by CRLF")
	errTrailer   = errors.New("malformed trailer section")
	errChunkCut  = errors.New("chunked body ended before its last chunk and trailer section")
	errDesync    = errors.New("request framing out of step with the engine")
	errHeldFull  = errors.New("too much read ahead of the request's handler")
)

// maxChunkLine bounds a chunk-size line with its extensions: they are
// read and dropped, and a client must not keep the proxy busy with one
// line forever (HAProxy and Node.js bound them too).
const maxChunkLine = 4 << 10

// States of a chunkScanner.
const (
	csSize0         = iota // the first hex digit of a chunk size
	csSize                 // more hex digits, or what ends them
	csSizeWS               // BWS after the size: only ";" may follow
	csExtName0             // after ";" and BWS: an extension's name
	csExtName              // in the name
	csExtNameWS            // BWS after the name: "=" or ";"
	csExtVal0              // after "=" and BWS: a token or quoted-string
	csExtVal               // in a token value
	csExtQuoted            // in a quoted-string value
	csExtQuotedPair        // after a backslash in it
	csExtValEnd            // after the closing quote
	csExtValWS             // BWS after a value: only ";" may follow
	csSizeLF               // the LF that ends the chunk-size line
	csData                 // chunk data: size bytes
	csDataCR               // the CRLF after the data
	csDataLF
	csTrailer0 // the start of a trailer field line, or of the final CRLF
	csTrName
	csTrValue
	csTrLF
	csEndLF
	csDone
)

// chunkScanner checks a chunked body against RFC 9112 section 7.1, fed
// the body's bytes in pieces of any size, and finds its end:
//
//	chunked-body = *chunk last-chunk trailer-section CRLF
//	chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//	chunk-size   = 1*HEXDIG
//	chunk-ext    = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//	trailer-section = *( field-line CRLF )
//
// with ext-name a token and ext-val a token or quoted-string. Beyond the
// grammar, a chunk size has at most 16 hex digits and fits an int64, and
// a chunk-size line is at most maxChunkLine bytes. Trailer field lines
// are a token, a colon and a value of visible characters, spaces and
// tabs. Every byte is looked at once, the chunk data in one step: it
// allocates nothing.
type chunkScanner struct {
	state  uint8
	digits uint8 // of the chunk size so far
	line   int   // bytes of the chunk-size line so far
	size   int64 // the chunk size; in csData the bytes left
}

func (s *chunkScanner) done() bool { return s.state == csDone }

// scan reads p, the next bytes of the body, and returns how many belong
// to it: all of p, or less if the body ended inside p (done) or at a
// byte that breaks the grammar, the returned error's. With out, the chunk
// data is appended to *out (the tests' decoded body).
func (s *chunkScanner) scan(p []byte, out *[]byte) (int, error) {
	i := 0
	for i < len(p) {
		switch s.state {
		case csDone:
			return i, nil
		case csData:
			k := int(min(int64(len(p)-i), s.size))
			if out != nil {
				*out = append(*out, p[i:i+k]...)
			}
			i += k
			if s.size -= int64(k); s.size == 0 {
				s.state = csDataCR
			}
			continue
		}
		if err := s.step(p[i]); err != nil {
			return i, err
		}
		i++
	}
	return i, nil
}

// step reads one byte of what is not chunk data.
func (s *chunkScanner) step(c byte) error {
	if s.state <= csSizeLF {
		if s.line++; s.line > maxChunkLine {
			return errChunkLine
		}
	}
	ws := c == ' ' || c == '\t'
	switch s.state {
	case csSize0, csSize:
		if v, ok := unhex(c); ok {
			// Leading zeros count: a size is at most 16 digits long.
			if s.digits++; s.digits > 16 || s.size > math.MaxInt64>>4 {
				return errChunkSize
			}
			s.size = s.size<<4 | int64(v)
			s.state = csSize
			return nil
		}
		if s.state == csSize0 {
			return errChunkSize // a sign, a space, "0x" all start here
		}
		switch {
		case ws:
			s.state = csSizeWS
		case c == ';':
			s.state = csExtName0
		case c == '\r':
			s.state = csSizeLF
		default:
			return errChunkSize
		}
	case csSizeWS, csExtValWS:
		switch {
		case ws:
		case c == ';':
			s.state = csExtName0
		default:
			return errChunkExt
		}
	case csExtName0:
		switch {
		case ws:
		case isTchar(c):
			s.state = csExtName
		default:
			return errChunkExt
		}
	case csExtName:
		switch {
		case isTchar(c):
		case ws:
			s.state = csExtNameWS
		case c == '=':
			s.state = csExtVal0
		case c == ';':
			s.state = csExtName0
		case c == '\r':
			s.state = csSizeLF
		default:
			return errChunkExt
		}
	case csExtNameWS:
		switch {
		case ws:
		case c == '=':
			s.state = csExtVal0
		case c == ';':
			s.state = csExtName0
		default:
			return errChunkExt
		}
	case csExtVal0:
		switch {
		case ws:
		case isTchar(c):
			s.state = csExtVal
		case c == '"':
			s.state = csExtQuoted
		default:
			return errChunkExt
		}
	case csExtVal, csExtValEnd:
		switch {
		case isTchar(c) && s.state == csExtVal:
		case ws:
			s.state = csExtValWS
		case c == ';':
			s.state = csExtName0
		case c == '\r':
			s.state = csSizeLF
		default:
			return errChunkExt
		}
	case csExtQuoted:
		switch {
		case c == '"':
			s.state = csExtValEnd
		case c == '\\':
			s.state = csExtQuotedPair
		case c == '\t' || c >= ' ' && c != 0x7f: // qdtext
		default:
			return errChunkExt
		}
	case csExtQuotedPair:
		if c != '\t' && (c < ' ' || c == 0x7f) {
			return errChunkExt
		}
		s.state = csExtQuoted
	case csSizeLF:
		if c != '\n' {
			return errChunkCRLF
		}
		if s.size == 0 {
			s.state = csTrailer0
		} else {
			s.state = csData
		}
	case csDataCR:
		if c != '\r' {
			return errChunkCRLF
		}
		s.state = csDataLF
	case csDataLF:
		if c != '\n' {
			return errChunkCRLF
		}
		s.state, s.digits, s.line, s.size = csSize0, 0, 0, 0
	case csTrailer0:
		switch {
		case c == '\r':
			s.state = csEndLF
		case isTchar(c):
			s.state = csTrName
		default:
			return errTrailer // obs-fold, an empty name, a bare LF
		}
	case csTrName:
		switch {
		case isTchar(c):
		case c == ':':
			s.state = csTrValue
		default:
			return errTrailer
		}
	case csTrValue:
		switch {
		case c == '\r':
			s.state = csTrLF
		case c == '\t' || c >= ' ' && c != 0x7f:
		default:
			return errTrailer
		}
	case csTrLF, csEndLF:
		if c != '\n' {
			return errTrailer
		}
		if s.state == csEndLF {
			s.state = csDone
		} else {
			s.state = csTrailer0
		}
	}
	return nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// The bits of RFC 9110's tchar among the bytes 0-63 and 64-127:
// "!#$%&'*+-.^_`|~", digits and letters.
const (
	tcharLo = 0x03ff6cfa00000000
	tcharHi = 0x57ffffffc7fffffe
)

func isTchar(c byte) bool {
	switch {
	case c < 64:
		return tcharLo>>c&1 != 0
	case c < 128:
		return tcharHi>>(c-64)&1 != 0
	}
	return false
}

// States of a framer.
const (
	fsOff     = iota // not an HTTP/1 client connection, or no longer
	fsStart          // before a request line: empty lines are skipped
	fsHeader         // in the request line and header lines
	fsHeld           // a header section has ended: waiting for its handler
	fsFixed          // in a body of known length
	fsChunked        // in a chunked body
	fsFailed         // err: the connection is not read on
)

// framer follows the requests on an HTTP/1 client connection on the raw
// bytes as they are read, before the engine parses them, and refuses
// what the engine would read leniently:
//
//   - a request line or header line whose LF has no CR before it (the
//     engine never keeps the request line, so checkHeader cannot see
//     it);
//   - chunked bodies that break RFC 9112's grammar (chunkScanner): the
//     engine skips anything between a chunk size and its CR.
//
// The framing of a body is the engine's: when a header section ends the
// framer holds (copies) what follows until the frontend's handler calls
// resume with the request's Content-Length, then checks what it held,
// and goes on with the bytes as they are read. Holding costs a copy only
// of what a client sent ahead of the handler (a body in the header's
// packet, pipelined requests); a plain keep-alive GET is one IndexByte
// per line. Since every request the engine parses comes to the handler
// (else the connection closes), the framer and the engine stay at the
// same request; the handler closes the connection after a request whose
// body was not read to its end, so they stay at the same byte too.
//
// A Read that meets a malformed byte returns the bytes before it and
// then the error, so that the engine fails where it would have been
// lenient: a header read fails (the ErrorHandler answers 400), a body
// read fails (the transport answers 400 before the server got the
// request if it was smaller than what the transport holds back, else
// cuts the server's connection). What was held is checked by resume,
// which refuses the request before anything is forwarded.
type framer struct {
	state uint8
	cr    bool  // the line so far ends with CR
	line  int   // bytes of the current line so far
	left  int64 // fsFixed: bytes of the body still to come
	// errInBody: err was met in the body of the request being handled
	// (not in what follows it).
	errInBody bool
	chunks    chunkScanner
	err       error
	held      *heldBuf // nil: nothing held
	maxHeld   int
	pool      *sync.Pool // of *heldBuf, the frontend's
}

type heldBuf struct{ b []byte }

// start follows a new client connection. maxHeld bounds what is held
// ahead of a handler; beyond it the framer and the engine cannot be at
// the same request.
func (f *framer) start(pool *sync.Pool, maxHeld int) {
	f.state, f.pool, f.maxHeld = fsStart, pool, maxHeld
}

// stop ends the checks: the connection is upgraded or speaks HTTP/2.
func (f *framer) stop() {
	f.state = fsOff
	f.release()
}

// failed returns the error that ends the connection, if one was met:
// the connection's Read returns it without reading (a read might wait
// for bytes the client has no reason to send).
func (f *framer) failed() error {
	if f.state == fsFailed {
		return f.err
	}
	return nil
}

// read checks b[:n], just read from the connection with err, and
// returns what the engine may have of it. The caller has asked failed
// before reading.
func (f *framer) read(b []byte, n int, err error) (int, error) {
	if f.state == fsOff || n <= 0 {
		return n, err
	}
	m, ferr := f.scan(b[:n])
	if ferr == nil && m < n {
		ferr = f.hold(b[m:n])
	}
	if ferr != nil {
		f.fail(ferr)
		if m > 0 {
			return m, nil
		}
		return 0, f.err
	}
	return n, err
}

// scan follows p from the current state and returns how much of it it
// read: all of it, or up to the end of a header section (fsHeld) or a
// malformed byte.
func (f *framer) scan(p []byte) (int, error) {
	i := 0
	for i < len(p) {
		switch f.state {
		case fsStart, fsHeader:
			n, err := f.scanHeader(p[i:])
			i += n
			if err != nil {
				return i, fmt.Errorf("request header: %w", err)
			}
		case fsFixed:
			k := int(min(int64(len(p)-i), f.left))
			i += k
			if f.left -= int64(k); f.left == 0 {
				f.state = fsStart
			}
		case fsChunked:
			n, err := f.chunks.scan(p[i:], nil)
			i += n
			if err != nil {
				return i, fmt.Errorf("chunked request body: %w", err)
			}
			if f.chunks.done() {
				f.state = fsStart
			}
		default: // fsHeld
			return i, nil
		}
	}
	return i, nil
}

// scanHeader reads lines up to the end of a header section: every LF
// must follow a CR. Empty lines before a request line are skipped, as
// the engine does (RFC 9112 section 2.2).
func (f *framer) scanHeader(p []byte) (int, error) {
	i := 0
	for i < len(p) {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			f.line += len(p) - i
			f.cr = p[len(p)-1] == '\r'
			return len(p), nil
		}
		cr := f.cr // the byte before p[i]: a CR read earlier, or an LF
		if j > 0 {
			cr = p[i+j-1] == '\r'
		}
		if !cr {
			return i + j, errLineEnd
		}
		empty := f.line+j == 1 // only the CR
		f.line, f.cr = 0, false
		i += j + 1
		switch {
		case !empty:
			f.state = fsHeader
		case f.state == fsHeader:
			f.state = fsHeld
			return i, nil
		}
	}
	return i, nil
}

// hold keeps p, read while waiting for the handler.
func (f *framer) hold(p []byte) error {
	if f.held == nil {
		f.held, _ = f.pool.Get().(*heldBuf)
		if f.held == nil {
			f.held = new(heldBuf)
		}
	}
	if len(f.held.b)+len(p) > f.maxHeld {
		return errHeldFull
	}
	f.held.b = append(f.held.b, p...)
	return nil
}

func (f *framer) release() {
	if f.held != nil {
		f.held.b = f.held.b[:0]
		f.pool.Put(f.held)
		f.held = nil
	}
}

func (f *framer) fail(err error) {
	f.errInBody = f.state == fsChunked
	f.state, f.err = fsFailed, err
	f.release()
}

// resume is called by the handler of each request with the body's length
// as the engine frames it (ContentLength: -1 chunked, -2 none). It checks
// what was held since the header section ended and returns an error if
// the request must be refused: its body is malformed, its header was
// (the error was met while the engine still served an earlier request),
// or the engine is not where the framer is.
func (f *framer) resume(contentLength int) error {
	switch f.state {
	case fsOff:
		return nil
	case fsFailed:
		return f.err
	case fsHeld:
	default:
		f.fail(errDesync)
		return f.err
	}
	switch {
	case contentLength > 0:
		f.state, f.left = fsFixed, int64(contentLength)
	case contentLength == -1:
		f.state, f.chunks = fsChunked, chunkScanner{}
	default:
		f.state = fsStart
	}
	if f.held == nil {
		return nil
	}
	held := f.held.b
	m, err := f.scan(held)
	if err != nil {
		f.fail(err)
		if f.errInBody {
			return f.err
		}
		return nil // the next request's: refused when it comes
	}
	if n := copy(held, held[m:]); n > 0 {
		f.held.b = held[:n] // after the next header section
	} else {
		f.release()
	}
	return nil
}

// chunkedEnd is called when the engine has read a chunked body to its
// end: an error if the framer did not find the end there, which happens
// when the engine took a failed read for the end of the trailer section.
func (f *framer) chunkedEnd() error {
	switch {
	case f.state == fsChunked:
		return errChunkCut
	case f.state == fsFailed && f.errInBody:
		return f.err
	}
	return nil
}

// framingKey is the request's user value, the client connection's
// *framer, for a chunked body: the transport asks it about the body's
// end (chunkedEnd).
type framingKey struct{}
