package topo

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// RequireRoot skips the test unless it runs as root.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root (network namespaces, veth, bridge, XDP)")
	}
}

// NewT builds a topology for a test (skipping it when not root) and
// registers its teardown with tb.Cleanup: processes are stopped, their logs
// are printed if the test failed, and everything is removed — also when the
// test fails or panics. SIGINT/SIGTERM close it too (CloseOnSignal).
func NewT(tb testing.TB, spec Spec) *Topology {
	tb.Helper()
	RequireRoot(tb)
	CloseOnSignal()
	if spec.Log == nil {
		l := zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.DebugLevel)
		spec.Log = &l
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t, err := New(ctx, spec)
	if err != nil {
		tb.Fatalf("build topology: %v", err)
	}
	tb.Cleanup(func() {
		t.StopAll()
		if tb.Failed() {
			tb.Logf("topology %s processes:\n%s", t.Prefix, t.LogReport(4000))
		}
		if err := t.Close(); err != nil {
			tb.Errorf("close topology %s: %v", t.Prefix, err)
		}
	})
	return t
}

// Context returns a context for a test step, ended after d or at the test's
// end.
func Context(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}
