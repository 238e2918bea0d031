// Package healthtest provides a fake health.Clock for testing code that
// schedules health checks, without real sleeps.
package healthtest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/directorlb/director/director/health"
)

// Clock is a fake health.Clock. Time stands still until Advance or
// AdvanceToNext moves it; timers and WithTimeout deadlines fire, in order,
// as it passes them. Tests synchronize with the code under test by waiting
// for timers to be armed (WaitTimers), never by sleeping.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	seq     uint64
	pending []*entry
	changed chan struct{} // closed and replaced whenever pending changes
}

type entry struct {
	at       time.Time
	seq      uint64
	c        chan time.Time          // timers
	cancel   context.CancelCauseFunc // deadlines
	deadline bool
}

var _ health.Clock = (*Clock)(nil)

// NewClock returns a fake clock reading now.
func NewClock(now time.Time) *Clock {
	return &Clock{now: now, changed: make(chan struct{})}
}

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires when the clock reaches Now()+d.
func (c *Clock) NewTimer(d time.Duration) health.Timer {
	e := &entry{c: make(chan time.Time, 1)}
	c.add(e, d)
	return &timer{clock: c, e: e}
}

// WithTimeout returns a context whose Err becomes context.DeadlineExceeded
// when the clock reaches Now()+d. Its Deadline method reports no deadline,
// since the fake time means nothing to the real one.
func (c *Clock) WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	e := &entry{cancel: cancel, deadline: true}
	c.add(e, d)
	return deadlineCtx{ctx}, func() {
		c.remove(e)
		cancel(context.Canceled)
	}
}

func (c *Clock) add(e *entry, d time.Duration) {
	c.mu.Lock()
	e.at = c.now.Add(d)
	c.seq++
	e.seq = c.seq
	if d <= 0 {
		now := c.now
		c.mu.Unlock()
		fire(e, now)
		return
	}
	c.pending = append(c.pending, e)
	c.notifyLocked()
	c.mu.Unlock()
}

func (c *Clock) remove(e *entry) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.pending, e)
	if i < 0 {
		return false
	}
	c.pending = slices.Delete(c.pending, i, i+1)
	c.notifyLocked()
	return true
}

func (c *Clock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func fire(e *entry, now time.Time) {
	if e.deadline {
		e.cancel(context.DeadlineExceeded)
		return
	}
	select {
	case e.c <- now:
	default:
	}
}

// Advance moves the clock forward by d, firing every timer and deadline
// due on the way, earliest first, with the clock reading its due time.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.advanceLocked(c.now.Add(d))
}

// AdvanceToNext moves the clock to the earliest pending timer (deadlines
// are not considered but fire if due) and fires everything due then. It
// returns how far the clock moved, and false if no timer was pending.
func (c *Clock) AdvanceToNext() (time.Duration, bool) {
	c.mu.Lock()
	var next *entry
	for _, e := range c.pending {
		if !e.deadline && (next == nil || before(e, next)) {
			next = e
		}
	}
	if next == nil {
		c.mu.Unlock()
		return 0, false
	}
	step := next.at.Sub(c.now)
	c.advanceLocked(next.at)
	return step, true
}

// advanceLocked is called with c.mu held and releases it.
func (c *Clock) advanceLocked(target time.Time) {
	for {
		var next *entry
		for _, e := range c.pending {
			if !e.at.After(target) && (next == nil || before(e, next)) {
				next = e
			}
		}
		if next == nil {
			break
		}
		c.pending = slices.DeleteFunc(c.pending, func(e *entry) bool { return e == next })
		if next.at.After(c.now) {
			c.now = next.at
		}
		c.notifyLocked()
		now := c.now
		c.mu.Unlock()
		fire(next, now)
		c.mu.Lock()
	}
	if target.After(c.now) {
		c.now = target
	}
	c.mu.Unlock()
}

func before(a, b *entry) bool {
	if a.at.Equal(b.at) {
		return a.seq < b.seq
	}
	return a.at.Before(b.at)
}

// Timers returns the number of armed timers.
func (c *Clock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.countLocked(false)
}

// Deadlines returns the number of pending WithTimeout deadlines.
func (c *Clock) Deadlines() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.countLocked(true)
}

func (c *Clock) countLocked(deadline bool) int {
	n := 0
	for _, e := range c.pending {
		if e.deadline == deadline {
			n++
		}
	}
	return n
}

// WaitTimers blocks until exactly n timers are armed or ctx is done.
func (c *Clock) WaitTimers(ctx context.Context, n int) error {
	return c.wait(ctx, func() bool { return c.countLocked(false) == n })
}

// WaitDeadlines blocks until exactly n deadlines are pending or ctx is done.
func (c *Clock) WaitDeadlines(ctx context.Context, n int) error {
	return c.wait(ctx, func() bool { return c.countLocked(true) == n })
}

// NextTimer returns when the earliest armed timer fires, and false if no
// timer is armed.
func (c *Clock) NextTimer() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next *entry
	for _, e := range c.pending {
		if !e.deadline && (next == nil || before(e, next)) {
			next = e
		}
	}
	if next == nil {
		return time.Time{}, false
	}
	return next.at, true
}

// WaitFor blocks until cond returns true or ctx is done. cond is evaluated
// now and after every change to the armed timers and deadlines; it may
// call the Clock's methods.
func (c *Clock) WaitFor(ctx context.Context, cond func() bool) error {
	for {
		c.mu.Lock()
		ch := c.changed
		c.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *Clock) wait(ctx context.Context, cond func() bool) error {
	for {
		c.mu.Lock()
		ok, ch := cond(), c.changed
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

type timer struct {
	clock *Clock
	e     *entry
}

func (t *timer) C() <-chan time.Time { return t.e.c }
func (t *timer) Stop() bool          { return t.clock.remove(t.e) }

// deadlineCtx reports context.DeadlineExceeded from Err once the fake
// deadline fired, like a context from context.WithTimeout.
type deadlineCtx struct{ context.Context }

func (d deadlineCtx) Err() error {
	err := d.Context.Err()
	if err != nil && errors.Is(context.Cause(d.Context), context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return err
}
