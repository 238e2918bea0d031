package l7

import (
	"bytes"
	"errors"
)

// Request framing the engine's parser lets through and HAProxy refuses
// (with 400), because a server or another proxy in the path could frame
// the request differently: request smuggling.
var (
	errBareLF   = errors.New("header line not ended by CRLF")
	errObsFold  = errors.New("obsolete line folding")
	errBadName  = errors.New("malformed header name")
	errCLAndTE  = errors.New("both Content-Length and Transfer-Encoding")
	errBadTE    = errors.New("Transfer-Encoding other than chunked")
	errMultiTE  = errors.New("several Transfer-Encoding headers")
	errMultiHst = errors.New("several Host headers")
)

// checkHeader checks the header section of a request as it came from the
// client (fasthttp's RawHeaders: the lines after the request line, up to
// the empty line) for what fasthttp accepts but must be refused:
//
//   - a line ended by a bare LF, or a line folded onto the previous one
//     (starting with a space or tab; fasthttp joins them);
//   - a space or tab in a header name ("Content-Length : 5" is a header
//     of another name to fasthttp, and Content-Length to some servers);
//   - Transfer-Encoding other than exactly one "chunked" (fasthttp
//     accepts "identity" and repeated headers), or together with
//     Content-Length (fasthttp lets chunked win);
//   - more than one Host (RFC 9112 section 3.2).
//
// fasthttp itself refuses two Content-Lengths, a list in one
// ("5, 6"), other codings than chunked and identity, and control
// characters in names and values. The request line, which fasthttp does
// not keep, and chunked bodies are checked on the connection's raw bytes
// by the framer (framing.go). checkHeader reads the bytes once and
// allocates nothing.
func checkHeader(raw []byte) error {
	var cl, te, host int
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			return errBareLF
		}
		line := raw[:i]
		raw = raw[i+1:]
		if len(line) == 0 || line[len(line)-1] != '\r' {
			return errBareLF
		}
		line = line[:len(line)-1]
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errObsFold
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return errBadName
		}
		name := line[:colon]
		if bytes.IndexByte(name, ' ') >= 0 || bytes.IndexByte(name, '\t') >= 0 {
			return errBadName
		}
		switch len(name) {
		case len("Host"):
			if bytes.EqualFold(name, []byte("Host")) {
				host++
			}
		case len("Content-Length"):
			if bytes.EqualFold(name, []byte("Content-Length")) {
				cl++
			}
		case len("Transfer-Encoding"):
			if bytes.EqualFold(name, []byte("Transfer-Encoding")) {
				te++
				if !bytes.EqualFold(bytes.Trim(line[colon+1:], " \t"), []byte("chunked")) {
					return errBadTE
				}
			}
		}
	}
	switch {
	case te > 1:
		return errMultiTE
	case te > 0 && cl > 0:
		return errCLAndTE
	case host > 1:
		return errMultiHst
	}
	return nil
}
