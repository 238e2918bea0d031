package l7

import (
	"bytes"
	"time"
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
	if cc.HTTPOnly {
		dst = append(dst, "; HttpOnly"...)
	}
	if cc.Secure {
		dst = append(dst, "; Secure"...)
	}
	return dst
}
