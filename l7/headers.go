package l7

import (
	"github.com/valyala/fasthttp"
)

var (
	hdrXFH       = "X-Forwarded-Host"
	hdrForwarded = "Forwarded"
)

// forwarded adds X-Forwarded-Host and the RFC 7239 Forwarded element
// that the backend asks for, from the request as the client sent it.
func (b *Backend) forwarded(ctx *fasthttp.RequestCtx, tc *timeoutConn) {
	h := &ctx.Request.Header
	host := h.Host()
	if b.cfg.ForwardedHost && len(host) > 0 {
		h.SetBytesV(hdrXFH, host)
	}
	if !b.cfg.Forwarded {
		return
	}
	var ip, buf []byte
	if tc != nil {
		ip, buf = tc.ip(), tc.scratch[:0]
	} else {
		ip = appendIP(nil, ctx.RemoteAddr())
	}
	buf = appendForwarded(buf, ip, ctx.IsTLS(), host)
	h.AddBytesV(hdrForwarded, buf)
	if tc != nil {
		tc.scratch = buf
	}
}

// appendForwarded appends a forwarded-element (RFC 7239 section 4):
// for= the client's address ("unknown" if it has none; IPv6 in brackets
// and quotes), proto= and host= when there is one.
func appendForwarded(dst, ip []byte, tls bool, host []byte) []byte {
	dst = append(dst, "for="...)
	switch {
	case len(ip) == 0:
		dst = append(dst, "unknown"...)
	case isIPv6(ip):
		dst = append(dst, `"[`...)
		dst = append(dst, ip...)
		dst = append(dst, `]"`...)
	default:
		dst = append(dst, ip...)
	}
	if tls {
		dst = append(dst, ";proto=https"...)
	} else {
		dst = append(dst, ";proto=http"...)
	}
	if len(host) > 0 {
		dst = append(dst, ";host="...)
		dst = appendTokenOrQuoted(dst, host)
	}
	return dst
}

func isIPv6(ip []byte) bool {
	for _, c := range ip {
		if c == ':' {
			return true
		}
	}
	return false
}

// appendTokenOrQuoted appends v as a token if it is one, else as a
// quoted-string (RFC 9110 section 5.6): a host with a port needs quotes.
func appendTokenOrQuoted(dst, v []byte) []byte {
	token := true
	for _, c := range v {
		if !isTokenChar(c) {
			token = false
			break
		}
	}
	if token {
		return append(dst, v...)
	}
	dst = append(dst, '"')
	for _, c := range v {
		if c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
