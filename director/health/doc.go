// Package health is the health-check engine shared by the L4 agent and the
// L7 tier.
//
// It has three layers, each usable on its own:
//
//   - Checkers (TCPChecker, HTTPChecker, CommandChecker) perform one probe
//     and return a Result: OK, a typed Cause and the latency. They take
//     their timeout from the context they are given.
//   - Machine is the pure rise/fall state machine: feed it results one at a
//     time, it reports transitions. It knows nothing about time.
//   - Monitor schedules many targets, each in its own goroutine, with jitter,
//     without overlapping a check with itself, and reports transitions
//     through a callback. Time comes from a Clock so that scheduling can be
//     tested with a fake clock (see package healthtest).
//
// Semantics follow HAProxy (option httpchk, http-check expect, rise, fall,
// inter, fastinter, downinter) and keepalived (TCP_CHECK, HTTP_GET,
// MISC_CHECK, alpha).
package health
