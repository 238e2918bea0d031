package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/directorlb/director/director/api"
)

// l7Config is a `director l7` config: two backends, one of static-rr,
// whose weights are fixed. %s: the control socket; %d: a free port.
const l7Config = `
control_socket: %s
l7:
  frontends:
    - name: www
      bind: ["127.0.0.1:%d"]
      default_backend: web
  backends:
    - name: web
      servers:
        - { name: s1, address: "127.0.0.1:1" }
        - { name: s2, address: "127.0.0.1:2", weight: 2 }
    - name: static
      balance: static-rr
      servers:
        - { name: s1, address: "127.0.0.1:3" }
`

// l7Run is a `director l7` node serving its control socket.
type l7Run struct {
	t      *testing.T
	path   string
	socket string
	port   int
	client *api.Client
	stop   func()
}

func startL7(t *testing.T) *l7Run {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &l7Run{t: t, path: filepath.Join(dir, "proxy.yaml"), socket: filepath.Join(dir, "d.sock"),
		port: ln.Addr().(*net.TCPAddr).Port}
	ln.Close()
	r.write("")
	r.start()
	return r
}

// start starts the node on the config as written, and stop stops it.
func (r *l7Run) start() {
	r.t.Helper()
	n, err := startL7Node(r.path, "px1", zerolog.Nop())
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var once sync.Once
	r.stop = func() { once.Do(func() { cancel(); wg.Wait(); n.tier.Close() }) }
	r.t.Cleanup(func() { r.stop() })
	if err := n.serve(ctx, &wg); err != nil {
		r.t.Fatal(err)
	}
	r.client = api.NewClient(r.socket)
}

// write writes the config with more servers for backend web.
func (r *l7Run) write(more string) {
	r.t.Helper()
	src := fmt.Sprintf(l7Config, r.socket, r.port)
	src = strings.Replace(src, "    - name: static\n", more+"    - name: static\n", 1)
	if err := os.WriteFile(r.path, []byte(src), 0o600); err != nil {
		r.t.Fatal(err)
	}
}

// ctl runs `director ctl` against the node and returns its output and
// exit code.
func (r *l7Run) ctl(args ...string) (string, int) {
	return runCtl(r.socket, args...)
}

func runCtl(socket string, args ...string) (string, int) {
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	app.ExitErrHandler = func(*cli.Context, error) {} // the exit code is checked, not taken
	err := app.Run(append([]string{"director", "ctl", "--socket", socket}, args...))
	if err == nil {
		return out.String(), 0
	}
	out.WriteString(err.Error())
	var exit cli.ExitCoder
	if errors.As(err, &exit) {
		return out.String(), exit.ExitCode()
	}
	return out.String(), -1
}

func (r *l7Run) servers() string {
	r.t.Helper()
	ss, err := r.client.L7Servers(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	b, _ := json.Marshal(ss)
	return string(b)
}

func (r *l7Run) server(backend, name string) api.L7Server {
	r.t.Helper()
	ss, err := r.client.L7Servers(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	for _, s := range ss {
		if s.Backend == backend && s.Server == name {
			return s
		}
	}
	r.t.Fatalf("no server %s/%s in %v", backend, name, ss)
	return api.L7Server{}
}

func TestCtlL7Server(t *testing.T) {
	r := startL7(t)
	out, code := r.ctl("l7", "server", "list")
	if code != 0 || !strings.Contains(out, "BACKEND  SERVER  ADDRESS      STATE") ||
		!matches(out, `web\s+s2\s+127\.0\.0\.1:2\s+no check\s+2\s+0\s+0\s+-`) || !matches(out, `static\s+s1\s+127\.0\.0\.1:3`) {
		t.Fatalf("l7 server list: exit %d\n%s", code, out)
	}
	// --json after ctl, as for every command, or after list.
	for _, args := range [][]string{{"--json", "l7", "server", "list"}, {"l7", "server", "list", "--json"}} {
		out, code := r.ctl(args...)
		var got []api.L7Server
		if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil {
			t.Fatalf("ctl %v: exit %d, %v\n%s", args, code, err, out)
		}
		if b, _ := json.Marshal(got); string(b) != r.servers() {
			t.Errorf("ctl %v differs from the API:\n%s\n%s", args, b, r.servers())
		}
	}

	for _, c := range []struct {
		args  []string
		check func(s api.L7Server) bool
	}{
		{[]string{"drain", "web", "s1"}, func(s api.L7Server) bool { return s.State == "DRAIN" && s.Drained && s.Weight == 1 }},
		{[]string{"maint", "web", "s1"}, func(s api.L7Server) bool { return s.State == "MAINT" && s.Maint && s.Drained }},
		{[]string{"maint", "--off", "web", "s1"}, func(s api.L7Server) bool { return s.State == "DRAIN" && !s.Maint }},
		{[]string{"weight", "web", "s1", "7"}, func(s api.L7Server) bool { return s.State == "DRAIN" && s.Weight == 7 }},
		{[]string{"ready", "web", "s1"}, func(s api.L7Server) bool { return s.State == "no check" && !s.Drained && s.Weight == 7 }},
		{[]string{"weight", "web", "s1", "0"}, func(s api.L7Server) bool { return s.State == "DRAIN" && !s.Drained && s.Weight == 0 }},
		{[]string{"enable", "web", "s1"}, func(s api.L7Server) bool { return s.State == "DRAIN" && s.Weight == 0 }},
		{[]string{"weight", "web", "s1", "1"}, func(s api.L7Server) bool { return s.State == "no check" }},
	} {
		out, code := r.ctl(append([]string{"l7", "server"}, c.args...)...)
		verb := strings.Replace(c.args[0], "enable", "ready", 1) // the alias
		if code != 0 || out != "web/s1: "+verb+" done\n" {
			t.Fatalf("ctl l7 server %v: exit %d %q", c.args, code, out)
		}
		if s := r.server("web", "s1"); !c.check(s) {
			t.Errorf("after %v: %+v", c.args, s)
		}
	}

	// Bad input: a clear message, the ctl real commands' exit codes, and
	// nothing changed.
	for _, b := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"drain", "nosuch", "s1"}, 1, `not found: no L7 backend "nosuch"`},
		{[]string{"maint", "web", "s9"}, 1, `not found: L7 backend web has no server "s9"`},
		{[]string{"weight", "web", "s1", "257"}, 1, "weight 257 out of range 0-256"},
		{[]string{"weight", "static", "s1", "2"}, 1, "static-rr takes weight 0 or 1 only"},
		{[]string{"weight", "web", "s1", "x"}, 2, `weight "x" is not a number`},
		{[]string{"weight", "web", "s1", "-1"}, 2, "not a number"},
		{[]string{"weight", "web", "s1"}, 2, "usage: director ctl l7 server weight BACKEND SERVER N"},
		{[]string{"drain", "web"}, 2, "usage: director ctl l7 server drain BACKEND SERVER"},
		{[]string{"ready", "web", "s1", "s2"}, 2, "usage"},
	} {
		before := r.servers()
		out, code := r.ctl(append([]string{"l7", "server"}, b.args...)...)
		if code != b.code || !strings.Contains(out, b.want) {
			t.Errorf("ctl l7 server %s: exit %d, %q; want exit %d and %q", strings.Join(b.args, " "), code, strings.TrimSpace(out), b.code, b.want)
		}
		if after := r.servers(); after != before {
			t.Errorf("ctl l7 server %s changed the servers:\n%s\n%s", strings.Join(b.args, " "), before, after)
		}
	}
	if out, code := runCtl(filepath.Join(t.TempDir(), "none.sock"), "l7", "server", "list"); code != 3 || !strings.Contains(out, "agent running") {
		t.Errorf("without a node: exit %d %q", code, out)
	}
}

// What operators set survives `ctl reload` while the server stays.
func TestCtlL7ServerSurvivesReload(t *testing.T) {
	r := startL7(t)
	for _, args := range [][]string{{"maint", "web", "s1"}, {"weight", "web", "s2", "5"}} {
		if out, code := r.ctl(append([]string{"l7", "server"}, args...)...); code != 0 {
			t.Fatalf("%v: exit %d %s", args, code, out)
		}
	}
	r.write(`        - { name: s3, address: "127.0.0.1:4" }` + "\n")
	if out, code := r.ctl("reload"); code != 0 || out != "reloaded\n" {
		t.Fatalf("reload: exit %d %q", code, out)
	}
	if s1, s2, s3 := r.server("web", "s1"), r.server("web", "s2"), r.server("web", "s3"); s1.State != "MAINT" || s2.Weight != 5 ||
		s3.State != "no check" || s3.Weight != 1 {
		t.Errorf("after the reload: %+v\n%+v\n%+v", s1, s2, s3)
	}
}

func matches(s, expr string) bool { return regexp.MustCompile(expr).MatchString(s) }

// TestCtlL7StateAcrossRestart: what operators set on the L7 servers is in
// the state file and holds across a restart of `director l7`, as HAProxy's
// server-state-file; a weight the config changed since wins; a change
// the state file cannot take fails and changes nothing.
func TestCtlL7StateAcrossRestart(t *testing.T) {
	r := startL7(t)
	for _, args := range [][]string{
		{"l7", "server", "drain", "web", "s1"},
		{"l7", "server", "weight", "web", "s2", "5"},
		{"l7", "server", "maint", "static", "s1"},
	} {
		if out, code := r.ctl(args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, out)
		}
	}
	want := func(backend, name string, drained, maint bool, weight uint32) {
		t.Helper()
		s := r.server(backend, name)
		if s.Drained != drained || s.Maint != maint || s.Weight != weight {
			t.Errorf("%s/%s: drained %v maint %v weight %d; want %v %v %d", backend, name, s.Drained, s.Maint, s.Weight, drained, maint, weight)
		}
	}
	r.stop()
	r.start()
	want("web", "s1", true, false, 1)
	want("web", "s2", false, false, 5)
	want("static", "s1", false, true, 1)

	// Ready again: the state file forgets s1; the config gives s2 weight
	// 3 now, which wins over the operator's 5.
	if out, code := r.ctl("l7", "server", "enable", "web", "s1"); code != 0 {
		t.Fatalf("enable: exit %d\n%s", code, out)
	}
	r.stop()
	src, _ := os.ReadFile(r.path)
	os.WriteFile(r.path, []byte(strings.Replace(string(src), `address: "127.0.0.1:2", weight: 2`, `address: "127.0.0.1:2", weight: 3`, 1)), 0o600)
	r.start()
	want("web", "s1", false, false, 1)
	want("web", "s2", false, false, 3)
	want("static", "s1", false, true, 1)

	// A state file that cannot be written: the drain fails, s1 stays in.
	state := r.path + ".state"
	os.Remove(state)
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(state)
	if out, code := r.ctl("l7", "server", "drain", "web", "s1"); code == 0 || !strings.Contains(out, "state file") {
		t.Errorf("drain with an unwritable state file: exit %d\n%s", code, out)
	}
	want("web", "s1", false, false, 1)
}
