package l7

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// chunkedCases are chunked bodies (followed by nothing) and what
// chunkScanner makes of them: the decoded data if valid, "more" if a
// valid beginning, else refused.
var chunkedCases = []struct {
	name, body string
	valid      bool
	more       bool // a valid beginning, not a whole body
	data       string
}{
	{name: "one chunk", body: "5\r\nhello\r\n0\r\n\r\n", valid: true, data: "hello"},
	{name: "empty", body: "0\r\n\r\n", valid: true},
	{name: "many chunks", body: "1\r\na\r\n2\r\nbc\r\n3\r\ndef\r\n0\r\n\r\n", valid: true, data: "abcdef"},
	{name: "uppercase hex", body: "A\r\n0123456789\r\n0\r\n\r\n", valid: true, data: "0123456789"},
	{name: "lowercase hex", body: "a\r\n0123456789\r\n0\r\n\r\n", valid: true, data: "0123456789"},
	{name: "leading zeros", body: "0005\r\nhello\r\n000\r\n\r\n", valid: true, data: "hello"},
	{name: "16 digits", body: "0000000000000005\r\nhello\r\n0\r\n\r\n", valid: true, data: "hello"},
	{name: "ext name", body: "5;name\r\nhello\r\n0\r\n\r\n", valid: true, data: "hello"},
	{name: "ext name=value", body: "5;name=value\r\nhello\r\n0;x=1\r\n\r\n", valid: true, data: "hello"},
	{name: "ext BWS", body: "5 ;name\r\nhello\r\n0\t; a = b ;c\r\n\r\n", valid: true, data: "hello"},
	{name: "ext quoted", body: "5;a=\"b c;\\\"d\\\\\"\r\nhello\r\n0\r\n\r\n", valid: true, data: "hello"},
	{name: "ext quoted then more", body: "5;a=\"\" ;b=c\r\nhello\r\n0\r\n\r\n", valid: true, data: "hello"},
	{name: "ext obs-text", body: "5;a=\"\xe9\"\r\nhello\r\n0\r\n\r\n", valid: true, data: "hello"},
	{name: "data with CRLF", body: "4\r\n\r\n\r\n\r\n0\r\n\r\n", valid: true, data: "\r\n\r\n"},
	{name: "trailer", body: "5\r\nhello\r\n0\r\nX-Sum: abc\r\nX-B:\r\n\r\n", valid: true, data: "hello"},
	{name: "trailer value spaces", body: "0\r\nX-A:  a b\t\xff \r\n\r\n", valid: true},

	{name: "incomplete size", body: "5", more: true},
	{name: "incomplete ext", body: "5;a=\"b", more: true},
	{name: "incomplete BWS", body: "5 ", more: true},
	{name: "incomplete data", body: "5\r\nhel", more: true},
	{name: "incomplete trailer", body: "5\r\nhello\r\n0\r\nX: y", more: true},
	{name: "no final CRLF", body: "5\r\nhello\r\n0\r\n", more: true},

	{name: "junk after size", body: "5zz\r\nhello\r\n0\r\n\r\n"},
	{name: "space then CR", body: "5 \r\nhello\r\n0\r\n\r\n"},
	{name: "space then junk", body: "5 z\r\nhello\r\n0\r\n\r\n"},
	{name: "bare LF after size", body: "5\nhello\r\n0\r\n\r\n"},
	{name: "CR without LF", body: "5\rhello\r\n0\r\n\r\n"},
	{name: "LF after ext", body: "5;a\nhello\r\n0\r\n\r\n"},
	{name: "no CRLF after data", body: "5\r\nhelloX\r\n0\r\n\r\n"},
	{name: "LF after data", body: "5\r\nhello\n0\r\n\r\n"},
	{name: "CR only after data", body: "5\r\nhello\r0\r\n\r\n"},
	{name: "0x", body: "0x5\r\nhello\r\n0\r\n\r\n"},
	{name: "plus", body: "+5\r\nhello\r\n0\r\n\r\n"},
	{name: "minus", body: "-5\r\nhello\r\n0\r\n\r\n"},
	{name: "leading space", body: " 5\r\nhello\r\n0\r\n\r\n"},
	{name: "empty size", body: "\r\nhello\r\n0\r\n\r\n"},
	{name: "17 digits", body: "00000000000000005\r\nhello\r\n0\r\n\r\n"},
	{name: "overflow", body: "8000000000000000\r\nhello\r\n0\r\n\r\n"},
	{name: "ext empty name", body: "5;\r\nhello\r\n0\r\n\r\n"},
	{name: "ext empty value", body: "5;a=\r\nhello\r\n0\r\n\r\n"},
	{name: "ext space in name", body: "5;a b\r\nhello\r\n0\r\n\r\n"},
	{name: "ext junk after quote", body: "5;a=\"b\"c\r\nhello\r\n0\r\n\r\n"},
	{name: "ext CTL in quote", body: "5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n"},
	{name: "ext LF in quote", body: "5;a=\"\n\"\r\nhello\r\n0\r\n\r\n"},
	{name: "ext trailing space", body: "5;a \r\nhello\r\n0\r\n\r\n"},
	{name: "trailer bare LF", body: "5\r\nhello\r\n0\r\nX: y\n\r\n"},
	{name: "final bare LF", body: "5\r\nhello\r\n0\r\n\n"},
	{name: "last chunk bare LF", body: "5\r\nhello\r\n0\n\r\n"},
	{name: "trailer obs-fold", body: "0\r\nX: y\r\n z\r\n\r\n"},
	{name: "trailer no colon", body: "0\r\nX\r\n\r\n"},
	{name: "trailer space before colon", body: "0\r\nX : y\r\n\r\n"},
	{name: "trailer CTL", body: "0\r\nX: \x00\r\n\r\n"},
	{name: "chunk line too long", body: "5;a=" + strings.Repeat("b", maxChunkLine) + "\r\nhello\r\n0\r\n\r\n"},
}

// scanAll feeds body to a chunkScanner in pieces of the sizes that
// sizes returns, and returns the decoded data, the length of the body
// found, whether it ended, and the first error.
func scanAll(body []byte, sizes func() int) (data []byte, n int, done bool, err error) {
	var s chunkScanner
	for len(body) > 0 {
		k := min(max(sizes(), 1), len(body))
		m, err := s.scan(body[:k], &data)
		n += m
		if err != nil {
			return data, n, false, err
		}
		if s.done() {
			return data, n, true, nil
		}
		if m != k {
			return data, n, false, errors.New("scan stopped early without error or end")
		}
		body = body[k:]
	}
	return data, n, s.done(), nil
}

func TestChunkScanner(t *testing.T) {
	const next = "GET /next HTTP/1.1\r\n\r\n"
	for _, tt := range chunkedCases {
		t.Run(tt.name, func(t *testing.T) {
			check := func(how string, sizes func() int) {
				// What follows the body is not the body's.
				in := []byte(tt.body + next)
				if tt.more {
					in = []byte(tt.body)
				}
				data, n, done, err := scanAll(in, sizes)
				switch {
				case tt.valid && (err != nil || !done || n != len(tt.body) || string(data) != tt.data):
					t.Errorf("%s: data %q, length %d, done %v, %v; want %q, %d", how, data, n, done, err, tt.data, len(tt.body))
				case tt.more && (err != nil || done):
					t.Errorf("%s: done %v, %v; want neither", how, done, err)
				case !tt.valid && !tt.more && err == nil:
					t.Errorf("%s: accepted (done %v, length %d)", how, done, n)
				}
			}
			check("whole", func() int { return 1 << 30 })
			check("byte by byte", func() int { return 1 })
			for cut := 1; cut < len(tt.body); cut++ {
				first := true
				check("cut", func() int {
					if first {
						first = false
						return cut
					}
					return 1 << 30
				})
			}
		})
	}
}

// TestChunkScannerErrorOffset checks that a refused body is cut at the
// byte that breaks the grammar: a Read hands the engine what comes
// before it.
func TestChunkScannerErrorOffset(t *testing.T) {
	for _, tt := range []struct {
		body string
		at   int
		err  error
	}{
		{"5zz\r\n", 1, errChunkSize},
		{"5 \r\n", 2, errChunkExt},
		{"5\nhello", 1, errChunkSize},
		{"5\r\nhelloX", 8, errChunkCRLF},
		{"0x5\r\n", 1, errChunkSize},
		{"-5\r\n", 0, errChunkSize},
		{"0\r\nX: y\n", 7, errTrailer},
		{"00000000000000005\r\n", 16, errChunkSize},
	} {
		var s chunkScanner
		n, err := s.scan([]byte(tt.body), nil)
		if n != tt.at || !errors.Is(err, tt.err) {
			t.Errorf("%q: cut at %d with %v, want %d with %v", tt.body, n, err, tt.at, tt.err)
		}
	}
}

func TestIsTchar(t *testing.T) {
	for c := 0; c < 256; c++ {
		want := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
			c < 128 && strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
		if isTchar(byte(c)) != want {
			t.Errorf("isTchar(%q) = %v", byte(c), !want)
		}
	}
}

// errMore says that the input is a valid beginning of a chunked body.
var errMore = errors.New("incomplete")

// refChunked reads a chunked body by RFC 9112 section 7.1's grammar,
// written the plain way (recursive descent over the whole input, with
// backtracking over BWS), with chunkScanner's limits: at most 16 hex
// digits and an int64 size, lines of chunk size and extensions of at
// most maxChunkLine bytes. It returns the decoded data and the body's
// length, errMore, or another error.
func refChunked(in []byte) ([]byte, int, error) {
	p := &refParser{in: in}
	var data []byte
	for {
		start := p.i
		size, err := p.chunkSizeLine()
		if err == errMore && len(in)-start > maxChunkLine || err == nil && p.i-start > maxChunkLine {
			return nil, 0, errChunkLine
		}
		if err != nil {
			return nil, 0, err
		}
		if size == 0 {
			break
		}
		if int64(len(in)-p.i) < size {
			return nil, 0, errMore
		}
		data = append(data, in[p.i:p.i+int(size)]...)
		p.i += int(size)
		if err := p.crlf(); err != nil {
			return nil, 0, err
		}
	}
	for { // trailer section
		c, err := p.peek()
		if err != nil {
			return nil, 0, err
		}
		if c == '\r' {
			if err := p.crlf(); err != nil {
				return nil, 0, err
			}
			return data, p.i, nil
		}
		if err := p.token(); err != nil {
			return nil, 0, err
		}
		if err := p.expect(':'); err != nil {
			return nil, 0, err
		}
		for {
			c, err := p.peek()
			if err != nil {
				return nil, 0, err
			}
			if c != '\t' && (c < ' ' || c == 0x7f) {
				break
			}
			p.i++
		}
		if err := p.crlf(); err != nil {
			return nil, 0, err
		}
	}
}

type refParser struct {
	in []byte
	i  int
}

var errRef = errors.New("refused")

func (p *refParser) peek() (byte, error) {
	if p.i >= len(p.in) {
		return 0, errMore
	}
	return p.in[p.i], nil
}

func (p *refParser) expect(c byte) error {
	b, err := p.peek()
	if err != nil {
		return err
	}
	if b != c {
		return errRef
	}
	p.i++
	return nil
}

func (p *refParser) crlf() error {
	if err := p.expect('\r'); err != nil {
		return err
	}
	return p.expect('\n')
}

func (p *refParser) bws() error {
	for {
		c, err := p.peek()
		if err != nil {
			return err
		}
		if c != ' ' && c != '\t' {
			return nil
		}
		p.i++
	}
}

func (p *refParser) token() error {
	n := 0
	for {
		c, err := p.peek()
		if err != nil {
			return err
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) &&
			!(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			break
		}
		p.i++
		n++
	}
	if n == 0 {
		return errRef
	}
	return nil
}

func (p *refParser) quoted() error {
	if err := p.expect('"'); err != nil {
		return err
	}
	for {
		c, err := p.peek()
		if err != nil {
			return err
		}
		p.i++
		switch {
		case c == '"':
			return nil
		case c == '\\':
			c, err := p.peek()
			if err != nil {
				return err
			}
			if c != '\t' && (c < ' ' || c == 0x7f) {
				return errRef
			}
			p.i++
		case c == '\t' || c == ' ' || c == 0x21 || c >= 0x23 && c <= 0x5b || c >= 0x5d && c <= 0x7e || c >= 0x80:
		default:
			return errRef
		}
	}
}

func (p *refParser) chunkSizeLine() (int64, error) {
	var size int64
	digits := 0
	for {
		c, err := p.peek()
		if err != nil {
			return 0, err
		}
		v, perr := strconv.ParseUint(string(rune(c)), 16, 8)
		if perr != nil {
			break
		}
		if digits++; digits > 16 || size >= 1<<59 {
			return 0, errRef
		}
		size = size*16 + int64(v)
		p.i++
	}
	if digits == 0 {
		return 0, errRef
	}
	for { // chunk-ext
		save := p.i
		if err := p.bws(); err != nil {
			return 0, err
		}
		c, err := p.peek()
		if err != nil {
			return 0, err
		}
		if c != ';' {
			p.i = save
			break
		}
		p.i++
		if err := p.bws(); err != nil {
			return 0, err
		}
		if err := p.token(); err != nil {
			return 0, err
		}
		save = p.i
		if err := p.bws(); err != nil {
			return 0, err
		}
		if c, err := p.peek(); err != nil {
			return 0, err
		} else if c != '=' {
			p.i = save
			continue
		}
		p.i++
		if err := p.bws(); err != nil {
			return 0, err
		}
		if c, err := p.peek(); err != nil {
			return 0, err
		} else if c == '"' {
			err = p.quoted()
			if err != nil {
				return 0, err
			}
		} else if err := p.token(); err != nil {
			return 0, err
		}
	}
	return size, p.crlf()
}

func TestRefChunked(t *testing.T) {
	for _, tt := range chunkedCases {
		data, n, err := refChunked([]byte(tt.body))
		switch {
		case tt.valid && (err != nil || n != len(tt.body) || string(data) != tt.data):
			t.Errorf("%s: %q, %d, %v", tt.name, data, n, err)
		case tt.more && err != errMore:
			t.Errorf("%s: %v, want errMore", tt.name, err)
		case !tt.valid && !tt.more && (err == nil || err == errMore):
			t.Errorf("%s: accepted: %v", tt.name, err)
		}
	}
}

// FuzzChunkedScanner checks chunkScanner, fed in pieces of random sizes,
// against refChunked: the same bodies refused, accepted (with the same
// data and length) or awaiting more.
func FuzzChunkedScanner(f *testing.F) {
	for _, tt := range chunkedCases {
		if len(tt.body) < 256 {
			f.Add([]byte(tt.body), uint64(len(tt.body)))
		}
	}
	f.Add([]byte("5;a=b\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n"), uint64(3))
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		rnd := rand.New(rand.NewPCG(seed, 0))
		data, n, done, err := scanAll(in, func() int { return 1 + rnd.IntN(8) })
		wdata, wn, werr := refChunked(in)
		switch {
		case werr == nil:
			if err != nil || !done || n != wn || !bytes.Equal(data, wdata) {
				t.Fatalf("%q: scanner: %q, %d, done %v, %v; reference: %q, %d", in, data, n, done, err, wdata, wn)
			}
		case werr == errMore:
			if err != nil || done || n != len(in) {
				t.Fatalf("%q: scanner: %d, done %v, %v; reference: incomplete", in, n, done, err)
			}
		default:
			if err == nil {
				t.Fatalf("%q: scanner accepted (%d, done %v); reference: %v", in, n, done, werr)
			}
		}
	})
}

// feed reads s through f in pieces of size bytes (all at once if 0), as
// a connection's Read would, and returns what the engine got and the
// first error.
func feed(f *framer, s string, size int) (string, error) {
	var got []byte
	for len(s) > 0 {
		if err := f.failed(); err != nil {
			return string(got), err
		}
		k := len(s)
		if size > 0 {
			k = min(size, k)
		}
		b := []byte(s[:k])
		n, err := f.read(b, k, nil)
		got = append(got, b[:n]...)
		if err != nil {
			return string(got), err
		}
		s = s[k:]
	}
	return string(got), f.failed()
}

func newTestFramer() *framer {
	f := new(framer)
	f.start(new(sync.Pool), 1<<10)
	return f
}

func TestFramerLines(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		ok       bool
		got      string // what the engine gets if not ok
	}{
		{"request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", true, ""},
		{"no headers", "GET / HTTP/1.0\r\n\r\n", true, ""},
		{"leading CRLF", "\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", true, ""},
		{"request line bare LF", "GET / HTTP/1.1\nHost: x\r\n\r\n", false, "GET / HTTP/1.1"},
		{"header bare LF", "GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", false, "GET / HTTP/1.1\r\nHost: x"},
		{"end bare LF", "GET / HTTP/1.1\r\nHost: x\r\n\n", false, "GET / HTTP/1.1\r\nHost: x\r\n"},
		{"leading bare LF", "\nGET / HTTP/1.1\r\n\r\n", false, ""},
	} {
		for _, size := range []int{0, 1, 2, 3} {
			f := newTestFramer()
			got, err := feed(f, tt.in, size)
			if tt.ok {
				if err != nil || f.state != fsHeld {
					t.Errorf("%s by %d: %v, state %d", tt.name, size, err, f.state)
				}
				continue
			}
			if !errors.Is(err, errLineEnd) || got != tt.got {
				t.Errorf("%s by %d: the engine got %q with %v, want %q and errLineEnd", tt.name, size, got, err, tt.got)
			}
		}
	}
}

func TestFramerBodies(t *testing.T) {
	const get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	const chunked = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, tt := range []struct {
		name    string
		in      string
		resumes []int // Content-Length of each request as the engine has it
		badAt   int   // the request refused (1-based; 0: none)
	}{
		{name: "get", in: get, resumes: []int{-2}},
		{name: "pipelined gets", in: get + get + get, resumes: []int{-2, -2, -2}},
		{name: "content-length", in: "POST / HTTP/1.1\r\nContent-Length: 7\r\n\r\nx\ny\nz\n" + get, resumes: []int{7, -2}},
		{name: "chunked", in: chunked + "5;a=b\r\nhello\r\n0\r\nX: y\r\n\r\n" + get, resumes: []int{-1, -2}},
		{name: "chunked junk", in: chunked + "5zz\r\nhello\r\n0\r\n\r\n", resumes: []int{-1}, badAt: 1},
		{name: "chunked then bad", in: chunked + "0\r\n\r\nGET / HTTP/1.1\nHost: x\r\n\r\n", resumes: []int{-1, -2}, badAt: 2},
		{name: "get then bad", in: get + "GET / HTTP/1.1\nHost: x\r\n\r\n", resumes: []int{-2, -2}, badAt: 2},
		{name: "bad trailer", in: chunked + "0\r\nX: y\n\r\n", resumes: []int{-1}, badAt: 1},
	} {
		// size 0: the client's bytes come in one read, the framer holds
		// what follows the first header section; else in reads of size
		// bytes, as the engine asks for them.
		for _, size := range []int{0, 1, 5} {
			f := newTestFramer()
			rest := tt.in
			read := func(until func() bool) {
				for !until() && f.state != fsFailed && len(rest) > 0 {
					k := len(rest)
					if size > 0 {
						k = min(size, k)
					}
					feed(f, rest[:k], 0)
					rest = rest[k:]
				}
			}
			badAt := 0
			for i, cl := range tt.resumes {
				read(func() bool { return f.state == fsHeld })
				err := f.resume(cl)
				if err == nil && cl == -1 {
					read(func() bool { return f.state != fsChunked })
					err = f.chunkedEnd()
				}
				if err != nil {
					badAt = i + 1
					break
				}
			}
			if badAt != tt.badAt {
				t.Errorf("%s by %d: request %d refused, want %d", tt.name, size, badAt, tt.badAt)
			}
			if tt.badAt == 0 && (f.state != fsStart || f.held != nil) {
				t.Errorf("%s by %d: ends in state %d, held %v", tt.name, size, f.state, f.held != nil)
			}
		}
	}
}

func TestFramerDesync(t *testing.T) {
	// The handler is called but the framer has not seen a header
	// section's end: the engine reads something else than the framer.
	f := newTestFramer()
	if _, err := feed(f, "GET / HTTP/1.1\r\nHost: x\r\n", 0); err != nil {
		t.Fatal(err)
	}
	if err := f.resume(-2); !errors.Is(err, errDesync) {
		t.Errorf("resume: %v, want errDesync", err)
	}
	// A chunked body the engine ended early.
	f = newTestFramer()
	feed(f, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n", 0)
	if err := f.resume(-1); err != nil {
		t.Fatal(err)
	}
	if err := f.chunkedEnd(); !errors.Is(err, errChunkCut) {
		t.Errorf("chunkedEnd: %v, want errChunkCut", err)
	}
	// More held than a handler could have let the engine read.
	f = newTestFramer()
	if _, err := feed(f, "GET / HTTP/1.1\r\n\r\n"+strings.Repeat("x", 2<<10), 100); err == nil {
		t.Error("held beyond the limit")
	}
	if err := f.resume(-2); !errors.Is(err, errHeldFull) {
		t.Errorf("resume: %v, want errHeldFull", err)
	}
	// Stopped (upgraded), it lets everything through.
	f = newTestFramer()
	feed(f, "GET / HTTP/1.1\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n\n\n", 0)
	f.stop()
	if got, err := feed(f, "\x00\n\n", 1); err != nil || got != "\x00\n\n" {
		t.Errorf("stopped: %q, %v", got, err)
	}
}

// BenchmarkFramerGet measures what the framer adds to a keep-alive GET:
// its look at the bytes read and the handler's resume.
func BenchmarkFramerGet(b *testing.B) {
	req := []byte("GET /some/path?x=1 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\n" +
		"Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate\r\n" +
		"Cookie: SRV=a; session=0123456789abcdef\r\nConnection: keep-alive\r\n\r\n")
	f := newTestFramer()
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		if n, err := f.read(req, len(req), nil); n != len(req) || err != nil {
			b.Fatal(n, err)
		}
		if err := f.resume(-2); err != nil {
			b.Fatal(err)
		}
	}
}
