package healthtest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/directorlb/director/director/health/healthtest"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestClockTimers(t *testing.T) {
	c := healthtest.NewClock(epoch)
	t1 := c.NewTimer(2 * time.Second)
	t2 := c.NewTimer(time.Second)
	t3 := c.NewTimer(3 * time.Second)
	if n := c.Timers(); n != 3 {
		t.Fatalf("Timers() = %d, want 3", n)
	}
	if !t3.Stop() || t3.Stop() {
		t.Error("Stop should report true once, then false")
	}
	if next, ok := c.NextTimer(); !ok || !next.Equal(epoch.Add(time.Second)) {
		t.Errorf("NextTimer() = %v, %v, want %v", next, ok, epoch.Add(time.Second))
	}
	step, ok := c.AdvanceToNext()
	if !ok || step != time.Second {
		t.Fatalf("AdvanceToNext() = %v, %v, want 1s", step, ok)
	}
	select {
	case at := <-t2.C():
		if !at.Equal(epoch.Add(time.Second)) {
			t.Errorf("t2 fired at %v", at)
		}
	default:
		t.Fatal("t2 did not fire")
	}
	select {
	case <-t1.C():
		t.Fatal("t1 fired early")
	default:
	}
	c.Advance(5 * time.Second)
	if got := c.Now(); !got.Equal(epoch.Add(6 * time.Second)) {
		t.Errorf("Now() = %v, want epoch+6s", got)
	}
	if at := <-t1.C(); !at.Equal(epoch.Add(2 * time.Second)) {
		t.Errorf("t1 fired at %v, want its due time", at)
	}
	if _, ok := c.AdvanceToNext(); ok {
		t.Error("AdvanceToNext with no timers reported a step")
	}
	// A timer for zero or less fires at once.
	select {
	case <-c.NewTimer(0).C():
	default:
		t.Error("zero timer did not fire at once")
	}
}

func TestClockWithTimeout(t *testing.T) {
	c := healthtest.NewClock(epoch)
	ctx, cancel := c.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if c.Deadlines() != 1 || c.Timers() != 0 {
		t.Fatalf("Deadlines, Timers = %d, %d, want 1, 0", c.Deadlines(), c.Timers())
	}
	c.Advance(999 * time.Millisecond)
	if ctx.Err() != nil {
		t.Fatal("expired early")
	}
	c.Advance(time.Millisecond)
	<-ctx.Done()
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("Err() = %v, want DeadlineExceeded", ctx.Err())
	}

	ctx2, cancel2 := c.WithTimeout(t.Context(), time.Second)
	cancel2()
	if !errors.Is(ctx2.Err(), context.Canceled) || c.Deadlines() != 0 {
		t.Errorf("after cancel: Err() = %v, Deadlines() = %d, want Canceled, 0", ctx2.Err(), c.Deadlines())
	}
}

func TestClockWait(t *testing.T) {
	c := healthtest.NewClock(epoch)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	go func() { c.NewTimer(time.Minute) }()
	if err := c.WaitTimers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithCancel(t.Context())
	cancelShort()
	if err := c.WaitTimers(short, 5); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitTimers on a cancelled context = %v, want Canceled", err)
	}
}
