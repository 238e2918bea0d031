package health

import (
	"context"
	"time"
)

// A Checker probes one backend once.
//
// Check must honour ctx: the Monitor puts the per-target timeout in it and
// cancels it when the target is removed or the monitor stops. A check that
// runs out of time returns a failed Result with CauseTimeout (or
// CauseCommandTimeout). Check never panics on a network failure; every
// failure is a Result.
type Checker interface {
	Check(ctx context.Context) Result
}

// CheckerFunc adapts a function to the Checker interface.
type CheckerFunc func(ctx context.Context) Result

// Check calls f(ctx).
func (f CheckerFunc) Check(ctx context.Context) Result { return f(ctx) }

// Result is the outcome of one check.
type Result struct {
	OK      bool
	Cause   Cause
	Latency time.Duration // time the check took, as measured by the checker
}

// Pass returns a passing Result.
func Pass(latency time.Duration) Result {
	return Result{OK: true, Cause: Cause{Kind: CauseOK}, Latency: latency}
}

// Fail returns a failing Result with the given cause.
func Fail(cause Cause, latency time.Duration) Result {
	return Result{Cause: cause, Latency: latency}
}
