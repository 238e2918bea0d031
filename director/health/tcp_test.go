package health_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/directorlb/director/director/health"
)

// Timeouts for checks expected to fail on time, and for checks expected to
// finish well before (generous, so a loaded CI machine does not flake).
const (
	shortTimeout    = 200 * time.Millisecond
	generousTimeout = 10 * time.Second
)

func checkCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestTCPCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })

	tests := []struct {
		name string
		addr string
		ctx  func() context.Context
		want health.CauseKind
	}{
		{name: "listening", addr: ln.Addr().String(), want: health.CauseOK},
		{name: "closed port", addr: closedAddr(t), want: health.CauseRefused},
		{name: "cancelled", addr: ln.Addr().String(), want: health.CauseCanceled, ctx: func() context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			return ctx
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := health.NewTCPChecker(tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			ctx := checkCtx(t, generousTimeout)
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			res := c.Check(ctx)
			if res.OK != (tt.want == health.CauseOK) || res.Cause.Kind != tt.want {
				t.Errorf("Check = ok %v, cause %q (%v), want cause %v", res.OK, res.Cause, res.Cause.Err, tt.want)
			}
			if res.Latency <= 0 {
				t.Errorf("latency %v, want > 0", res.Latency)
			}
		})
	}
}

func TestNewTCPCheckerInvalid(t *testing.T) {
	for _, addr := range []string{"", "127.0.0.1", ":80", "127.0.0.1:", "[::1"} {
		if _, err := health.NewTCPChecker(addr); err == nil {
			t.Errorf("NewTCPChecker(%q) succeeded, want an error", addr)
		}
	}
}

func TestCauseString(t *testing.T) {
	tests := []struct {
		cause health.Cause
		want  string
	}{
		{health.Cause{}, "none"},
		{health.Cause{Kind: health.CauseOK, Code: 200, Detail: "status 200"}, "ok: status 200"},
		{health.Cause{Kind: health.CauseStatus, Code: 503}, "status 503"},
		{health.Cause{Kind: health.CauseExit, Code: 2}, "exit code 2"},
		{health.Cause{Kind: health.CauseTimeout}, "timeout"},
		{health.Cause{Kind: health.CauseRefused}, "connection refused"},
		{health.Cause{Kind: health.CauseCommandTimeout}, "command timeout"},
		{health.Cause{Kind: health.CauseBody, Detail: `"x" not in the first 3 bytes`}, `body mismatch: "x" not in the first 3 bytes`},
		{health.Cause{Kind: health.CauseKind(200)}, "CauseKind(200)"},
	}
	for _, tt := range tests {
		if got := tt.cause.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.cause, got, tt.want)
		}
	}
}
