package vrrp

import (
	"context"
	"os/exec"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Check is a tracked input (keepalived track_script / track_interface). The
// agent supplies its own (dataplane attached, a real up per VIP); this
// package provides InterfaceCheck and CommandCheck.
type Check interface {
	// Name identifies the check in logs and status; unique per instance.
	Name() string
	// Watch runs until ctx is done, calling report with the check's result
	// whenever it is known or changes. Until the first report the check
	// counts as passing.
	Watch(ctx context.Context, report func(ok bool))
}

// Track ties a check to an instance. While the check fails the priority is
// lowered by Weight (not below 1); a failing check with Weight 0 forces
// FAULT.
type Track struct {
	Check  Check
	Weight int
}

// InterfaceCheck passes while the interface is up with its carrier
// (track_interface), watched through netlink.
type InterfaceCheck struct {
	Interface string
}

// Name implements Check.
func (c InterfaceCheck) Name() string { return "interface:" + c.Interface }

func linkUp(l netlink.Link) bool {
	a := l.Attrs()
	if a.Flags&unix.IFF_UP == 0 {
		return false
	}
	// Dummy and some virtual links never leave "unknown".
	return a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown
}

// Watch implements Check.
func (c InterfaceCheck) Watch(ctx context.Context, report func(ok bool)) {
	for ctx.Err() == nil {
		c.watch(ctx, report)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second): // netlink socket lost; resubscribe
		}
	}
}

func (c InterfaceCheck) watch(ctx context.Context, report func(ok bool)) {
	ch := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	defer close(done)
	failed := make(chan struct{}, 1)
	err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{
		ListExisting: true,
		ErrorCallback: func(error) {
			select {
			case failed <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		report(false)
		return
	}
	found := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-failed:
			return
		case u, ok := <-ch:
			if !ok {
				return
			}
			if u.Link == nil || u.Link.Attrs().Name != c.Interface {
				continue
			}
			found = true
			report(u.Header.Type != unix.RTM_DELLINK && linkUp(u.Link))
		case <-time.After(time.Second):
			// ListExisting is done long before this; a missing link fails.
			if !found {
				report(false)
				found = true
			}
		}
	}
}

// CommandCheck runs a command every Interval (track_script / vrrp_script);
// it passes when the command exits 0 within Timeout. Rise and Fall are how
// many results in a row change its state (0 means 1).
type CommandCheck struct {
	CheckName string
	Command   []string
	Interval  time.Duration // 0 means 1s
	Timeout   time.Duration // 0 means Interval
	Rise      int
	Fall      int
}

// Name implements Check.
func (c CommandCheck) Name() string {
	if c.CheckName != "" {
		return c.CheckName
	}
	return "script:" + strings.Join(c.Command, " ")
}

// Watch implements Check.
func (c CommandCheck) Watch(ctx context.Context, report func(ok bool)) {
	interval := c.Interval
	if interval <= 0 {
		interval = time.Second
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = interval
	}
	rise, fall := max(c.Rise, 1), max(c.Fall, 1)
	known, state := false, true
	run := 0 // results in a row that disagree with state
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok := c.runOnce(ctx, timeout)
		if ctx.Err() != nil {
			return
		}
		switch {
		case !known:
			// The first result counts at once.
			known, state, run = true, ok, 0
			report(state)
		case ok == state:
			run = 0
		default:
			run++
			if (ok && run >= rise) || (!ok && run >= fall) {
				state, run = ok, 0
				report(state)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c CommandCheck) runOnce(ctx context.Context, timeout time.Duration) bool {
	if len(c.Command) == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Command[0], c.Command[1:]...)
	cmd.WaitDelay = time.Second
	return cmd.Run() == nil
}
