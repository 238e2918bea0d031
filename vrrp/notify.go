package vrrp

import (
	"context"
	"os/exec"
	"strconv"
	"time"

	"github.com/rs/zerolog"
)

// notifyState is the state word keepalived passes to notify scripts.
func notifyState(s State) string {
	if s == StateInit {
		return "STOP"
	}
	return s.String()
}

// NotifyArgs returns the command line run for a transition: cmd followed by
// "INSTANCE" <name> <state> <priority>, keepalived's convention.
func NotifyArgs(cmd []string, instance string, s State, prio uint8) []string {
	return append(append([]string(nil), cmd...), "INSTANCE", instance, notifyState(s), strconv.Itoa(int(prio)))
}

type notification struct {
	instance string
	state    State
	prio     uint8
}

// CommandNotifier runs a command for every transition, in order, one at a
// time, off the engine's path: Notify only queues.
type CommandNotifier struct {
	cmd     []string
	timeout time.Duration
	log     zerolog.Logger
	q       chan notification
}

// NewCommandNotifier returns a notifier; its Run must be running for the
// commands to be run.
func NewCommandNotifier(cmd []string, timeout time.Duration, log zerolog.Logger) *CommandNotifier {
	return &CommandNotifier{cmd: cmd, timeout: timeout, log: log, q: make(chan notification, 64)}
}

// Notify implements Notifier.
func (n *CommandNotifier) Notify(instance string, s State, prio uint8) {
	select {
	case n.q <- notification{instance, s, prio}:
	default:
		n.log.Error().Stringer("state", s).Msg("notify queue full, dropping notification")
	}
}

// Run runs queued commands until ctx is done, then the ones still queued
// (a STOP notification is queued as the engine stops).
func (n *CommandNotifier) Run(ctx context.Context) {
	for {
		select {
		case m := <-n.q:
			n.run(m)
		case <-ctx.Done():
			for {
				select {
				case m := <-n.q:
					n.run(m)
				default:
					return
				}
			}
		}
	}
}

func (n *CommandNotifier) run(m notification) {
	args := NotifyArgs(n.cmd, m.instance, m.state, m.prio)
	ctx, cancel := context.WithTimeout(context.Background(), n.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		n.log.Error().Err(err).Strs("command", args).Bytes("output", out).Msg("notify command failed")
		return
	}
	n.log.Debug().Strs("command", args).Msg("notify command ran")
}
