package vrrp

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// collect runs a check until it has reported n results.
func collect(t *testing.T, c Check, n int, timeout time.Duration) []bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got := make(chan bool, 16)
	go c.Watch(ctx, func(ok bool) { got <- ok })
	var res []bool
	for len(res) < n {
		select {
		case ok := <-got:
			res = append(res, ok)
		case <-ctx.Done():
			t.Fatalf("%s: got %v before timeout, want %d results", c.Name(), res, n)
		}
	}
	return res
}

func TestCommandCheck(t *testing.T) {
	if got := collect(t, CommandCheck{Command: []string{"true"}, Interval: 10 * time.Millisecond}, 1, 5*time.Second); !got[0] {
		t.Fatal("true failed")
	}
	if got := collect(t, CommandCheck{Command: []string{"false"}, Interval: 10 * time.Millisecond}, 1, 5*time.Second); got[0] {
		t.Fatal("false passed")
	}
	slow := CommandCheck{Command: []string{"sleep", "5"}, Interval: 50 * time.Millisecond, Timeout: 20 * time.Millisecond}
	if got := collect(t, slow, 1, 5*time.Second); got[0] {
		t.Fatal("timed-out command passed")
	}
	// A command that fails while a file exists, with fall 2 / rise 2.
	flag := filepath.Join(t.TempDir(), "down")
	c := CommandCheck{CheckName: "file", Command: []string{"sh", "-c", "test ! -e " + flag},
		Interval: 10 * time.Millisecond, Rise: 2, Fall: 2}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan bool, 16)
	go c.Watch(ctx, func(ok bool) { got <- ok })
	if !<-got {
		t.Fatal("first result should pass")
	}
	os.WriteFile(flag, nil, 0o644)
	if <-got {
		t.Fatal("want a failure")
	}
	os.Remove(flag)
	if !<-got {
		t.Fatal("want recovery")
	}
	if c.Name() != "file" || !strings.HasPrefix((CommandCheck{Command: []string{"x"}}).Name(), "script:") {
		t.Fatal("names")
	}
}

func TestNotifyArgs(t *testing.T) {
	got := strings.Join(NotifyArgs([]string{"/bin/n", "-v"}, "VI_1", StateMaster, 150), " ")
	if got != "/bin/n -v INSTANCE VI_1 MASTER 150" {
		t.Fatal(got)
	}
	if got := NotifyArgs(nil, "x", StateInit, 0)[2]; got != "STOP" {
		t.Fatal(got)
	}
}

func TestCommandNotifierRunsInOrder(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	n := NewCommandNotifier([]string{"sh", "-c", `echo "$@" >> ` + out, "notify"}, 5*time.Second, zerolog.Nop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	n.Notify("VI_1", StateBackup, 100)
	n.Notify("VI_1", StateMaster, 100)
	n.Notify("VI_1", StateInit, 100)
	cancel() // queued notifications still run
	<-done
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := "INSTANCE VI_1 BACKUP 100\nINSTANCE VI_1 MASTER 100\nINSTANCE VI_1 STOP 100\n"
	if string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
}
