package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/directorlb/director/director/api"
)

// l7Ops is a node's L7 side in memory; the XDP side is not used.
type l7Ops struct {
	api.Ops
	mu    sync.Mutex
	calls []string
}

var servers = []api.L7Server{
	{Backend: "web", Server: "s1", Address: "10.0.0.1:80", State: "UP", Weight: 1, Healthy: true, SessCur: 2, SessTotal: 90,
		CheckStatus: "L7OK", CheckCode: 200, CheckDesc: "ok: status 200"},
	{Backend: "web", Server: "s 2/x", Address: "10.0.0.2:80", State: "MAINT", Weight: 3, Maint: true, Drained: true},
}

func (o *l7Ops) L7Servers(context.Context) ([]api.L7Server, error) { return servers, nil }

// call records an operation; backend "nosuch" is unknown, and "bad"
// refuses every change.
func (o *l7Ops) call(op, backend, server string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, op+" "+backend+"|"+server)
	switch backend {
	case "nosuch":
		return fmt.Errorf("%w: no L7 backend %q", api.ErrNotFound, backend)
	case "bad":
		return fmt.Errorf("%w: weight out of range", api.ErrInvalid)
	}
	return nil
}

func (o *l7Ops) DrainL7Server(_ context.Context, backend, server string) error {
	return o.call("drain", backend, server)
}

func (o *l7Ops) MaintL7Server(_ context.Context, backend, server string, on bool) error {
	return o.call(fmt.Sprintf("maint=%v", on), backend, server)
}

func (o *l7Ops) EnableL7Server(_ context.Context, backend, server string) error {
	return o.call("ready", backend, server)
}

func (o *l7Ops) SetL7Weight(_ context.Context, backend, server string, w uint32) error {
	return o.call(fmt.Sprintf("weight=%d", w), backend, server)
}

// serve runs ops behind the control socket and returns a client of it and
// the log.
func serve(t *testing.T, ops api.Ops) (*api.Client, *bytes.Buffer) {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "d.sock")
	l, err := api.Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.Serve(ctx, l, api.Handler(ops, zerolog.New(&log))) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return api.NewClient(socket), &log
}

// The L7 operations go through the socket and back: arguments, answers,
// errors by kind, and a log line per change.
func TestL7RoundTrip(t *testing.T) {
	ops := &l7Ops{}
	c, log := serve(t, ops)
	ctx := context.Background()
	got, err := c.L7Servers(ctx)
	if err != nil || !reflect.DeepEqual(got, servers) {
		t.Fatalf("L7Servers: %v\n%+v\nwant %+v", err, got, servers)
	}
	for _, err := range []error{
		c.DrainL7Server(ctx, "web", "s1"),
		c.MaintL7Server(ctx, "web", "s 2/x", true), // a name with a space and a slash
		c.MaintL7Server(ctx, "web", "s1", false),
		c.EnableL7Server(ctx, "web", "s1"),
		c.SetL7Weight(ctx, "web", "s1", 7),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"drain web|s1", "maint=true web|s 2/x", "maint=false web|s1", "ready web|s1", "weight=7 web|s1"}
	if !reflect.DeepEqual(ops.calls, want) {
		t.Errorf("calls %q\nwant  %q", ops.calls, want)
	}
	if err := c.DrainL7Server(ctx, "nosuch", "s1"); !errors.Is(err, api.ErrNotFound) || err.Error() != `not found: no L7 backend "nosuch"` {
		t.Errorf("unknown backend: %v", err)
	}
	if err := c.SetL7Weight(ctx, "bad", "s1", 300); !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "weight") {
		t.Errorf("refused weight: %v", err)
	}
	for _, line := range []string{`"op":"drain","backend":"web","server":"s1","message":"ctl"`,
		`"op":"maint","backend":"web","server":"s 2/x"`, `"op":"weight 7","backend":"web","server":"s1"`,
		`"level":"warn","error":"not found: no L7 backend \"nosuch\"","op":"drain","backend":"nosuch"`} {
		if !strings.Contains(log.String(), line) {
			t.Errorf("log has no %s:\n%s", line, log)
		}
	}
}
