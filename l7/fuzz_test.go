package l7

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http/httputil"
	"testing"
)

type nopConn struct{}

func (nopConn) Conn() net.Conn { return nil }

// FuzzChunked feeds server bytes to the chunked body decoder: it must
// never panic, and what it accepts must decode as net/http's decoder
// decodes it.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		"3\r\nabc\r\n0\r\n\r\n",
		"3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nTrailer: x\r\n\r\n",
		"A\r\n0123456789\r\n0\r\n\r\n",
		"zz\r\n",
		"3\r\nabcX\r\n",
		"ffffffffffffffffff\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s := &bodyStream[nopConn]{br: bufio.NewReaderSize(bytes.NewReader(in), 64), mode: modeChunked}
		got, err := io.ReadAll(s)
		if err != nil {
			return
		}
		want, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(in)))
		if err != nil {
			return // net/http is stricter about some framing; both refusing is not required
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("decoded %q, net/http decodes %q", got, want)
		}
	})
}

// FuzzParseSticky checks that any cookie value parses without panic and
// that a cookie we write reads back.
func FuzzParseSticky(f *testing.F) {
	f.Add("s1", uint32(1000), uint32(900))
	f.Add("web-2", uint32(0), uint32(0))
	f.Fuzz(func(t *testing.T, v string, last, first uint32) {
		parseSticky([]byte(v))
		if !validCookieValue(v) {
			return
		}
		last &= 1<<30 - 1
		first &= 1<<30 - 1
		if last == 0 || first == 0 {
			return
		}
		cc := CookieConfig{Name: "SRV", MaxIdle: 1, MaxLife: 1}
		set := cc.appendSetCookie(nil, v, last, first)
		val, _, _ := bytes.Cut(bytes.TrimPrefix(set, []byte("SRV=")), []byte(";"))
		c := parseSticky(val)
		if string(c.server) != v || c.last != last || c.first != first {
			t.Fatalf("%q: read back %q %d %d, want %q %d %d", set, c.server, c.last, c.first, v, last, first)
		}
	})
}

// FuzzHeadEnd checks the one-pass header end against the plain rule: the
// end of the first empty line, CRLF or bare LF, whatever follows it.
func FuzzHeadEnd(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab\n\n",
		"GET / HTTP/1.0\n\nbody\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\n",
		"GET / HTTP/1.1\r\nHost: x\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r",
		"GET / HTTP/1.1\r\nHost: x\r\n",
		"\n\n", "\r\n\r\n", "\n\r", "\n", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := -1
		for i := range b {
			if b[i] != '\n' {
				continue
			}
			if bytes.HasPrefix(b[i+1:], []byte("\n")) {
				want = i + 2
				break
			}
			if bytes.HasPrefix(b[i+1:], []byte("\r\n")) {
				want = i + 3
				break
			}
		}
		if got := headEnd(b); got != want {
			t.Fatalf("headEnd(%q) = %d, want %d", b, got, want)
		}
	})
}
