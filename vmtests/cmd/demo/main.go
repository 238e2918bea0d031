// Command demo brings up a director on this machine, in network namespaces:
// a client, a director running `director run` with configs/single.yaml, and
// three web servers in DR mode. It shows requests spreading, then offers a
// menu of things to try. Ctrl-C (or q) tears everything down.
//
// Run it as root from the repository: sudo make demo.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/directorlb/director/director/api"
	"github.com/directorlb/director/loader"
	"github.com/directorlb/director/vmtests/topo"
	"github.com/directorlb/director/vmtests/web"
	"github.com/rs/zerolog"
)

func main() {
	config := flag.String("config", "configs/single.yaml", "the director's config (its addresses match the demo topology)")
	bin := flag.String("director", "bin/director", "the director binary")
	flag.Parse()
	if err := run(*config, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		topo.CloseAll()
		os.Exit(1)
	}
}

type demo struct {
	top     *topo.Topology
	bin     string
	socket  string
	client  *topo.Host
	webs    map[string]*topo.WebServer
	agent   *topo.Process
	url     string
	pinRoot string
	dir     *topo.Host
}

func run(configPath, bin string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root: sudo make demo")
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly}).Level(zerolog.WarnLevel)
	topo.CleanStale(log)
	topo.CloseOnSignal()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	spec := topo.DRSpec(1, 1, 3)
	spec.XDPMode = topo.XDPGeneric // as configs/single.yaml asks
	spec.Hosts[0].Addrs = 3
	spec.Log = &log
	say("building the topology: client cl1, director dir1, web servers rs1-rs3 on one bridge")
	top, err := topo.New(ctx, spec)
	if err != nil {
		return err
	}
	defer top.Close()
	d := &demo{top: top, client: top.Clients()[0], webs: map[string]*topo.WebServer{}, dir: top.Directors()[0],
		url: fmt.Sprintf("http://%s/", netip.AddrPortFrom(top.VIP4(), topo.WebPort))}
	for _, r := range top.Reals() {
		w, err := top.StartWebserver(ctx, r)
		if err != nil {
			return err
		}
		d.webs[r.Name] = w
	}
	if d.bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "director-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	d.socket = filepath.Join(tmp, "director.sock")
	src, err := os.ReadFile(configPath)
	if err != nil {
		return err
	}
	cfg := filepath.Join(tmp, filepath.Base(configPath))
	if err := os.WriteFile(cfg, append(src, fmt.Sprintf("\ncontrol_socket: %s\n", d.socket)...), 0o600); err != nil {
		return err
	}
	d.pinRoot = "/sys/fs/bpf/" + top.Prefix + "-demo"
	defer func() {
		d.dir.Do(func() error { return loader.Teardown(d.pinRoot, d.dir.Iface) })
		os.RemoveAll(d.pinRoot)
	}()
	say("starting `director run --config %s` on dir1", configPath)
	d.agent, err = d.dir.Start(topo.ProcSpec{Name: "director", Path: d.bin,
		Args: []string{"run", "--config", cfg, "--pin-root", d.pinRoot}})
	if err != nil {
		return err
	}
	ctl := api.NewClient(d.socket)
	err = topo.WaitFor(ctx, 30*time.Second, "the director with every real up", func() (bool, error) {
		if d.agent.Exited() {
			return false, topo.Permanent(fmt.Errorf("the agent exited:\n%s", d.agent.Log()))
		}
		vips, err := ctl.VIPs(ctx)
		return err == nil && len(vips) > 0 && vips[0].RealsUp == vips[0].Reals, nil
	})
	if err != nil {
		return err
	}
	say("the VIP %s is up; 30 requests from the client, each on a new connection:", top.VIP4())
	d.spread(30)
	d.menu()
	return nil
}

func say(format string, args ...any) { fmt.Printf("\n>> "+format+"\n", args...) }

func (d *demo) get(c *http.Client) (web.WhoAmI, error) {
	var who web.WhoAmI
	resp, err := c.Get(d.url)
	if err != nil {
		return who, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return who, json.Unmarshal(b, &who)
}

func (d *demo) spread(n int) {
	counts := map[string]int{}
	failed := 0
	for i := 0; i < n; i++ {
		c := d.client.HTTPClient(d.client.Addrs4[i%len(d.client.Addrs4)])
		c.Transport.(*http.Transport).DisableKeepAlives = true
		who, err := d.get(c)
		if err != nil {
			failed++
			continue
		}
		counts[who.Server]++
	}
	names := make([]string, 0, len(counts))
	for k := range counts {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Printf("   %s answered %3d  %s\n", k, counts[k], strings.Repeat("#", counts[k]))
	}
	if failed > 0 {
		fmt.Printf("   %d failed\n", failed)
	}
}

func (d *demo) ctl(args ...string) {
	cmd := exec.Command(d.bin, append([]string{"ctl", "--socket", d.socket}, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	fmt.Printf("$ director ctl %s\n", strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		fmt.Println("  (exit:", err, ")")
	}
}

func (d *demo) menu() {
	rs1 := d.top.Host("rs1").Addr4().String()
	items := []struct {
		key, what string
		do        func()
	}{
		{"1", "curl the VIP from the client", func() {
			out, err := d.client.Curl(context.Background(), "-s", d.url)
			fmt.Printf("$ curl %s\n%s%v\n", d.url, out, errOrEmpty(err))
		}},
		{"2", "director ctl status", func() { d.ctl("status") }},
		{"3", "director ctl real list", func() { d.ctl("real", "list") }},
		{"4", "drain rs1 (existing connections finish, no new ones)", func() { d.ctl("real", "drain", "web", rs1) }},
		{"5", "enable rs1 again", func() { d.ctl("real", "enable", "web", rs1) }},
		{"6", "make rs2 fail its health check (/check.txt answers 503)", func() {
			d.webs["rs2"].SetHealthy(false)
			fmt.Println("rs2 now fails /check.txt; after fall 5 x inter 2s it leaves (try 3 and 8)")
		}},
		{"7", "make rs2 healthy again", func() {
			d.webs["rs2"].SetHealthy(true)
			fmt.Println("rs2 passes again; after rise 2 x inter 2s it rejoins")
		}},
		{"8", "send 60 requests and show who answered", func() { d.spread(60) }},
	}
	in := bufio.NewScanner(os.Stdin)
	for {
		fmt.Println("\nwhat next?")
		for _, it := range items {
			fmt.Printf("  %s  %s\n", it.key, it.what)
		}
		fmt.Println("  q  quit (tears everything down; so does Ctrl-C)")
		fmt.Print("> ")
		if !in.Scan() {
			return
		}
		choice := strings.TrimSpace(in.Text())
		if choice == "q" {
			return
		}
		for _, it := range items {
			if it.key == choice {
				it.do()
			}
		}
	}
}

func errOrEmpty(err error) string {
	if err != nil {
		return err.Error()
	}
	return ""
}
