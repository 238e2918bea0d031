package l7

import (
	"bytes"
	"time"

	"github.com/valyala/fasthttp"
)

// HAProxy's cookie dates: seconds since the epoch divided by 4, in 30
// bits, as 5 characters of base64 (standard alphabet, most significant
// first, no padding): s30tob64 and b64tos30 in HAProxy's base64.c.
const b64tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// cookieDate is HAProxy's (now+3)>>2.
func cookieDate(now time.Time) uint32 { return uint32(now.Unix()+3) >> 2 }

func appendDate(dst []byte, d uint32) []byte {
	for i := 0; i < 5; i++ {
		dst = append(dst, b64tab[(d>>24)&0x3f])
		d <<= 6
	}
	return dst
}

func parseDate(b []byte) (uint32, bool) {
	if len(b) != 5 {
		return 0, false
	}
	var d uint32
	for _, c := range b {
		var v byte
		switch {
		case c >= 'A' && c <= 'Z':
			v = c - 'A'
		case c >= 'a' && c <= 'z':
			v = c - 'a' + 26
		case c >= '0' && c <= '9':
			v = c - '0' + 52
		case c == '+':
			v = 62
		case c == '/':
			v = 63
		default:
			return 0, false
		}
		d = d<<6 | uint32(v)
	}
	return d, true
}

// stickyCookie is a parsed request cookie: the server's value and the
// dates, zero when absent.
type stickyCookie struct {
	server      []byte
	last, first uint32
}

// parseSticky splits "srv", "srv|LAST" or "srv|LAST|FIRST". Dates that do
// not parse are treated as absent, as HAProxy does.
func parseSticky(v []byte) stickyCookie {
	var c stickyCookie
	srv, rest, found := bytes.Cut(v, []byte{'|'})
	c.server = srv
	if !found {
		return c
	}
	last, first, _ := bytes.Cut(rest, []byte{'|'})
	c.last, _ = parseDate(last)
	c.first, _ = parseDate(first)
	return c
}

// expired reports whether a cookie's dates put it past maxidle or maxlife
// at date now (in 4-second units). A cookie without a date that a limit
// needs is not expired: HAProxy accepts such cookies and dates them.
func (c stickyCookie) expired(now uint32, maxIdle, maxLife time.Duration) bool {
	if maxIdle > 0 && c.last != 0 && int64(now-c.last)*4 > int64(maxIdle/time.Second) {
		return true
	}
	if maxLife > 0 && c.first != 0 && int64(now-c.first)*4 > int64(maxLife/time.Second) {
		return true
	}
	return false
}

// appendSetCookie appends the Set-Cookie value naming server value v.
// first is the original first date to keep (0: now).
func (cc *CookieConfig) appendSetCookie(dst []byte, v string, now, first uint32) []byte {
	dst = append(dst, cc.Name...)
	dst = append(dst, '=')
	dst = append(dst, v...)
	if cc.MaxIdle > 0 || cc.MaxLife > 0 {
		dst = append(dst, '|')
		dst = appendDate(dst, now)
		if cc.MaxLife > 0 {
			if first == 0 {
				first = now
			}
			dst = append(dst, '|')
			dst = appendDate(dst, first)
		}
	}
	dst = append(dst, "; path=/"...)
	if cc.Domain != "" {
		dst = append(dst, "; domain="...)
		dst = append(dst, cc.Domain...)
	}
	for _, d := range cc.Domains {
		dst = append(dst, "; domain="...)
		dst = append(dst, d...)
	}
	if cc.HTTPOnly {
		dst = append(dst, "; HttpOnly"...)
	}
	if cc.Secure {
		dst = append(dst, "; Secure"...)
	}
	for _, a := range cc.Attrs {
		dst = append(dst, "; "...)
		dst = append(dst, a...)
	}
	return dst
}

// splitPrefixed splits a prefix-mode request cookie "srv~value" into the
// server's cookie value and the application's value; ok is false if v
// has no prefix.
func splitPrefixed(v []byte) (srv, app []byte, ok bool) {
	return bytes.Cut(v, []byte{'~'})
}

// appendServerCookie appends the Set-Cookie value sc, which the server
// set, with the value naming server v in it: "name=v~value; attrs" in
// prefix mode, "name=v; attrs" in rewrite mode.
func appendServerCookie(dst, sc []byte, v string, prefix bool) []byte {
	eq := bytes.IndexByte(sc, '=')
	if eq < 0 {
		return append(dst, sc...)
	}
	start := eq + 1
	for start < len(sc) && sc[start] == ' ' {
		start++
	}
	dst = append(dst, sc[:start]...)
	dst = append(dst, v...)
	if prefix {
		dst = append(dst, '~')
		return append(dst, sc[start:]...)
	}
	end := start
	if i := bytes.IndexByte(sc[start:], ';'); i >= 0 {
		end += i
		for end > start && sc[end-1] == ' ' {
			end--
		}
	} else {
		end = len(sc)
	}
	return append(dst, sc[end:]...)
}

// cookieState is what the request's cookie said, for the response.
type cookieState struct {
	sticky stickyCookie // insert mode: the parsed cookie
	had    bool         // the request carried a valid cookie for the server it went to
	now    uint32       // the cookie date, when the cookie has dates
}

// cookieRequest returns the live server the request's cookie names, or
// nil, and takes the cookie out of the request or strips it as the mode
// wants. A drained server keeps its sticky clients; one in maintenance
// does not.
func (b *Backend) cookieRequest(req *fasthttp.Request, cs *cookieState) *server {
	cc := b.cfg.Cookie
	if cc.MaxIdle > 0 || cc.MaxLife > 0 {
		cs.now = cookieDate(time.Now())
	}
	v := req.Header.Cookie(cc.Name)
	if len(v) == 0 {
		return nil
	}
	var s *server
	switch cc.Mode {
	case CookiePrefix:
		ck, app, ok := splitPrefixed(v)
		if !ok {
			return nil
		}
		s = b.byCK[string(ck)]
		// The server sees its own value. The copy moves bytes within
		// the cookie's buffer, which is safe.
		req.Header.SetCookieBytesKV(b.cookieName, app)
	case CookieRewrite:
		s = b.byCK[string(v)]
	default:
		cs.sticky = parseSticky(v)
		if !cs.sticky.expired(cs.now, cc.MaxIdle, cc.MaxLife) {
			s = b.byCK[string(cs.sticky.server)]
		}
		if !cc.NoIndirect {
			req.Header.DelCookie(cc.Name) // "indirect": the server never sees it
		}
	}
	if s == nil || !s.serving() {
		return nil
	}
	cs.had = true
	return s
}

// cookieResponse applies the cookie mode to the response from srv.
func (b *Backend) cookieResponse(req *fasthttp.Request, resp *fasthttp.Response, srv *server, cs *cookieState, tc *timeoutConn, tx *txn) {
	cc := b.cfg.Cookie
	var buf []byte
	if tc != nil {
		buf = tc.scratch[:0]
	}
	if cc.Mode == CookiePrefix || cc.Mode == CookieRewrite {
		// The server's own cookie gets the server in its value; several
		// of the name are rare but kept, one a line in buf.
		if len(resp.Header.PeekCookie(cc.Name)) == 0 {
			return
		}
		for k, v := range resp.Header.Cookies() {
			if string(k) == cc.Name {
				buf = appendServerCookie(buf, v, srv.cookie, cc.Mode == CookiePrefix)
				buf = append(buf, '\n')
			}
		}
		resp.Header.DelCookie(cc.Name)
		tx.setResponseCookieLetter('R')
		for rest := buf; len(rest) > 0; {
			var one []byte
			one, rest, _ = bytes.Cut(rest, []byte{'\n'})
			resp.Header.AddBytesKV(hdrSetCookie, one)
		}
		if tc != nil {
			tc.scratch = buf
		}
		if cc.NoCache && cacheable(resp) {
			resp.Header.Set("Cache-Control", "private")
		}
		return
	}

	// Insert. A cookie of the name that the server set is left alone
	// with Preserve and then none is inserted; otherwise it is replaced.
	if len(resp.Header.PeekCookie(cc.Name)) > 0 {
		if cc.Preserve {
			tx.setResponseCookieLetter('P')
			return
		}
		resp.Header.DelCookie(cc.Name)
	}
	refresh := cc.MaxIdle > 0 && cs.had && cs.sticky.last != cs.now
	if cs.had && !refresh || cc.PostOnly && !req.Header.IsPost() {
		return
	}
	tx.setResponseCookie(cs.had)
	if cs.now == 0 {
		resp.Header.AddBytesKV(hdrSetCookie, srv.setCookie)
	} else {
		first := uint32(0)
		if cs.had {
			first = cs.sticky.first
		}
		buf = cc.appendSetCookie(buf, srv.cookie, cs.now, first)
		resp.Header.AddBytesKV(hdrSetCookie, buf)
		if tc != nil {
			tc.scratch = buf
		}
	}
	if cc.NoCache && cacheable(resp) {
		resp.Header.Set("Cache-Control", "private")
	}
}
