package topo

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultWait bounds WaitFor when neither ctx nor timeout sets a deadline.
const DefaultWait = 10 * time.Second

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps an error that a WaitFor condition returns to stop waiting
// at once (e.g. the process it waits on has died).
func Permanent(err error) error { return permanentError{err} }

// WaitFor polls cond until it returns true, a Permanent error, or the
// deadline passes: the earlier of ctx's deadline and timeout (if > 0), and
// DefaultWait if neither is set. Errors from cond mean "not yet"; the last
// one is in the failure message, which names what was waited for, how long
// and how many times it was checked:
//
//	err := topo.WaitFor(ctx, 5*time.Second, "rs1 healthy", func() (bool, error) { ... })
func WaitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	if timeout <= 0 {
		if _, ok := ctx.Deadline(); !ok {
			timeout = DefaultWait
		}
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := time.Now()
	interval := 5 * time.Millisecond
	var lastErr error
	for attempt := 1; ; attempt++ {
		ok, err := cond()
		if ok && err == nil {
			return nil
		}
		var perm permanentError
		if errors.As(err, &perm) {
			return fmt.Errorf("waiting for %s: gave up after %v (%d checks): %w", what, time.Since(start).Round(time.Millisecond), attempt, perm.err)
		}
		if err != nil {
			lastErr = err
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			if lastErr != nil {
				return fmt.Errorf("waiting for %s: not true after %v (%d checks): %w; last error: %w",
					what, time.Since(start).Round(time.Millisecond), attempt, ctx.Err(), lastErr)
			}
			return fmt.Errorf("waiting for %s: not true after %v (%d checks): %w",
				what, time.Since(start).Round(time.Millisecond), attempt, ctx.Err())
		case <-t.C:
		}
		interval = min(interval*2, 100*time.Millisecond)
	}
}
