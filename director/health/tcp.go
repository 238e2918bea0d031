package health

import (
	"context"
	"fmt"
	"net"
	"time"
)

// TCPChecker passes when a TCP connection to Addr can be established
// (keepalived TCP_CHECK, HAProxy "check" without httpchk). The connection
// is closed at once with a reset, as HAProxy does, so that checks leave no
// TIME_WAIT sockets behind on the director.
type TCPChecker struct {
	addr   string
	dialer net.Dialer
}

// NewTCPChecker returns a checker connecting to addr, a "host:port".
func NewTCPChecker(addr string) (*TCPChecker, error) {
	if err := validateAddr(addr); err != nil {
		return nil, err
	}
	return &TCPChecker{addr: addr, dialer: net.Dialer{KeepAlive: -1}}, nil
}

// Check connects and disconnects.
func (c *TCPChecker) Check(ctx context.Context) Result {
	start := time.Now()
	conn, err := c.dialer.DialContext(ctx, "tcp", c.addr)
	latency := time.Since(start)
	if err != nil {
		return Fail(causeOf(ctx, err), latency)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
	return Pass(latency)
}

// String describes the checker, e.g. "tcp 10.0.0.1:80".
func (c *TCPChecker) String() string { return "tcp " + c.addr }

func validateAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("health: address %q: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("health: address %q: missing host", addr)
	}
	if port == "" {
		return fmt.Errorf("health: address %q: missing port", addr)
	}
	return nil
}
