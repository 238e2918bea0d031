package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
)

// CauseKind classifies the outcome of a check.
type CauseKind uint8

// Cause kinds. CauseNone is the zero value: no check has produced a cause
// yet (the initial state of a target).
const (
	CauseNone           CauseKind = iota
	CauseOK                       // the check passed
	CauseTimeout                  // no answer before the timeout
	CauseRefused                  // connection refused (RST to SYN)
	CauseReset                    // connection reset by peer
	CauseClosed                   // peer closed the connection before answering
	CauseUnreachable              // host or network unreachable
	CauseTLS                      // TLS handshake or certificate verification failed
	CauseProtocol                 // malformed response
	CauseStatus                   // HTTP status not in the expected set; Code holds it
	CauseBody                     // expected substring not found in the body
	CauseExit                     // command exited non-zero; Code holds the exit code
	CauseSignal                   // command was killed by a signal
	CauseCommandTimeout           // command ran past the timeout and was killed
	CauseCanceled                 // the check was abandoned (target removed, monitor stopped)
	CauseError                    // anything else; Detail and Err say more
)

var causeNames = [...]string{
	CauseNone:           "none",
	CauseOK:             "ok",
	CauseTimeout:        "timeout",
	CauseRefused:        "connection refused",
	CauseReset:          "connection reset",
	CauseClosed:         "connection closed",
	CauseUnreachable:    "unreachable",
	CauseTLS:            "tls error",
	CauseProtocol:       "protocol error",
	CauseStatus:         "status",
	CauseBody:           "body mismatch",
	CauseExit:           "exit code",
	CauseSignal:         "killed by signal",
	CauseCommandTimeout: "command timeout",
	CauseCanceled:       "canceled",
	CauseError:          "error",
}

// String returns the kind's name, e.g. "timeout" or "connection refused".
func (k CauseKind) String() string {
	if int(k) < len(causeNames) {
		return causeNames[k]
	}
	return "CauseKind(" + strconv.Itoa(int(k)) + ")"
}

// DetailConnecting is the Detail of an HTTP check's CauseTimeout when the
// time ran out before the TCP connection was made: a layer 4 timeout, not
// a slow answer.
const DetailConnecting = "connecting"

// Cause says why a check passed or failed.
type Cause struct {
	Kind CauseKind
	// Code is the HTTP status for CauseStatus (and for CauseOK from an HTTP
	// check), the exit code for CauseExit. Zero otherwise.
	Code int
	// Detail is optional human-readable context, e.g. the body substring
	// that was not found or the first bytes a command printed.
	Detail string
	// Err is the underlying error, if any, for errors.Is/As. It is not part
	// of String.
	Err error
}

// String renders the cause for logs and the control API: "status 503",
// "exit code 2", "timeout", "body mismatch: ...".
func (c Cause) String() string {
	var s string
	switch c.Kind {
	case CauseStatus, CauseExit:
		s = c.Kind.String() + " " + strconv.Itoa(c.Code)
	default:
		s = c.Kind.String()
	}
	if c.Detail != "" {
		s += ": " + c.Detail
	}
	return s
}

// causeOf classifies a network error. ctx is the check's context: if it has
// expired, the failure is a timeout whatever error the I/O reported.
func causeOf(ctx context.Context, err error) Cause {
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(cerr, context.DeadlineExceeded) {
			return Cause{Kind: CauseTimeout, Err: err}
		}
		return Cause{Kind: CauseCanceled, Err: err}
	}
	var (
		nerr    net.Error
		verr    *tls.CertificateVerificationError
		uaerr   x509.UnknownAuthorityError
		hnerr   x509.HostnameError
		cierr   x509.CertificateInvalidError
		rherr   tls.RecordHeaderError
		alerter tls.AlertError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &nerr) && nerr.Timeout():
		return Cause{Kind: CauseTimeout, Err: err}
	case errors.Is(err, syscall.ECONNREFUSED):
		return Cause{Kind: CauseRefused, Err: err}
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE):
		return Cause{Kind: CauseReset, Err: err}
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EHOSTDOWN), errors.Is(err, syscall.ENETDOWN):
		return Cause{Kind: CauseUnreachable, Err: err}
	case errors.As(err, &verr), errors.As(err, &uaerr), errors.As(err, &hnerr),
		errors.As(err, &cierr), errors.As(err, &rherr), errors.As(err, &alerter):
		return Cause{Kind: CauseTLS, Detail: err.Error(), Err: err}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return Cause{Kind: CauseClosed, Err: err}
	default:
		return Cause{Kind: CauseError, Detail: err.Error(), Err: err}
	}
}
