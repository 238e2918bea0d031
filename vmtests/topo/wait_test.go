package topo

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWaitFor(t *testing.T) {
	ctx := context.Background()
	n := 0
	if err := WaitFor(ctx, time.Second, "third try", func() (bool, error) {
		n++
		return n == 3, nil
	}); err != nil || n != 3 {
		t.Fatalf("WaitFor = %v after %d tries, want nil after 3", err, n)
	}

	notYet := errors.New("connection refused")
	start := time.Now()
	err := WaitFor(ctx, 50*time.Millisecond, "rs1 to answer", func() (bool, error) { return false, notYet })
	if err == nil || !errors.Is(err, notYet) || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "rs1 to answer") || !strings.Contains(err.Error(), "checks") {
		t.Fatalf("timeout error = %v: want what, checks, last error and deadline", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("timeout of 50ms took %v", d)
	}

	gone := errors.New("process exited")
	n = 0
	err = WaitFor(ctx, 5*time.Second, "log line", func() (bool, error) { n++; return false, Permanent(gone) })
	if !errors.Is(err, gone) || n != 1 {
		t.Fatalf("permanent error: got %v after %d checks, want %v after 1", err, n, gone)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := WaitFor(cctx, 0, "never", func() (bool, error) { return false, nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
}
