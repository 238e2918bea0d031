// Command demo brings up an active/standby director pair on this machine,
// in network namespaces: a client, two directors running `director run`
// with configs/pair-master.yaml and pair-backup.yaml (VRRP between them,
// the VIP on the master), and three web servers in DR mode. It shows
// requests spreading, then offers a menu of things to try, "kill the
// master" among them. Ctrl-C (or q) tears everything down.
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
	"syscall"
	"time"

	"github.com/directorlb/director/director/api"
	"github.com/directorlb/director/loader"
	"github.com/directorlb/director/vmtests/topo"
	"github.com/directorlb/director/vmtests/web"
	"github.com/rs/zerolog"
)

func main() {
	master := flag.String("master", "configs/pair-master.yaml", "dir1's config (its addresses match the demo topology)")
	backup := flag.String("backup", "configs/pair-backup.yaml", "dir2's config")
	bin := flag.String("director", "bin/director", "the director binary")
	flag.Parse()
	if err := run(*master, *backup, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		topo.CloseAll()
		os.Exit(1)
	}
}

type demo struct {
	top    *topo.Topology
	bin    string
	tmp    string
	client *topo.Host
	webs   map[string]*topo.WebServer
	dirs   []*director
	url    string
}

// director is one node of the pair and its agent.
type director struct {
	host    *topo.Host
	config  string
	socket  string
	pinRoot string
	agent   *topo.Process
	ctl     *api.Client
}

func run(masterConfig, backupConfig, bin string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root: sudo make demo")
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly}).Level(zerolog.WarnLevel)
	topo.CleanStale(log)
	topo.CloseOnSignal()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	spec := topo.DRSpec(1, 2, 3)
	spec.XDPMode = topo.XDPGeneric // as the pair configs ask
	for i := range spec.Hosts {
		if spec.Hosts[i].Role == topo.RoleDirector {
			spec.Hosts[i].NoVIP = true // VRRP puts it on the master
		}
		if spec.Hosts[i].Role == topo.RoleClient {
			spec.Hosts[i].Addrs = 3
		}
	}
	spec.Log = &log
	say("building the topology: client cl1, directors dir1 and dir2, web servers rs1-rs3 on one bridge")
	top, err := topo.New(ctx, spec)
	if err != nil {
		return err
	}
	defer top.Close()
	d := &demo{top: top, client: top.Clients()[0], webs: map[string]*topo.WebServer{},
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
	if d.tmp, err = os.MkdirTemp("", "director-demo-"); err != nil {
		return err
	}
	defer os.RemoveAll(d.tmp)
	for i, path := range []string{masterConfig, backupConfig} {
		host := top.Directors()[i]
		dir, err := d.newDirector(host, path)
		if err != nil {
			return err
		}
		defer func() {
			if dir.agent != nil {
				dir.agent.Stop(5 * time.Second)
			}
			host.Do(func() error { return loader.Teardown(dir.pinRoot, host.Iface) })
			os.RemoveAll(dir.pinRoot)
		}()
		d.dirs = append(d.dirs, dir)
		say("starting `director run --config %s` on %s", path, host.Name)
		if err := dir.start(ctx, d.bin); err != nil {
			return err
		}
	}
	err = topo.WaitFor(ctx, 30*time.Second, "dir1 VRRP master with the VIP", func() (bool, error) {
		return d.dirs[0].hasVIP(top.VIP4())
	})
	if err != nil {
		return err
	}
	say("dir1 is the VRRP master and holds the VIP %s; 30 requests from the client, each on a new connection:", top.VIP4())
	d.spread(30)
	d.menu()
	return nil
}

func (d *demo) newDirector(host *topo.Host, configPath string) (*director, error) {
	src, err := os.ReadFile(configPath)
	if err != nil {
		return nil, err
	}
	dir := &director{host: host,
		config:  filepath.Join(d.tmp, host.Name+"-"+filepath.Base(configPath)),
		socket:  filepath.Join(d.tmp, host.Name+".sock"),
		pinRoot: "/sys/fs/bpf/" + d.top.Prefix + "-demo-" + host.Name}
	dir.ctl = api.NewClient(dir.socket)
	body := append(src, fmt.Sprintf("\ncontrol_socket: %s\n", dir.socket)...)
	return dir, os.WriteFile(dir.config, body, 0o600)
}

// start runs the agent and waits until it answers with every real up.
func (dir *director) start(ctx context.Context, bin string) error {
	p, err := dir.host.Start(topo.ProcSpec{Name: "director", Path: bin,
		Args: []string{"run", "--config", dir.config, "--pin-root", dir.pinRoot, "--node", dir.host.Name}})
	if err != nil {
		return err
	}
	dir.agent = p
	return topo.WaitFor(ctx, 30*time.Second, dir.host.Name+" with every real up", func() (bool, error) {
		if p.Exited() {
			return false, topo.Permanent(fmt.Errorf("the agent on %s exited:\n%s", dir.host.Name, p.Log()))
		}
		vips, err := dir.ctl.VIPs(ctx)
		return err == nil && len(vips) > 0 && vips[0].RealsUp == vips[0].Reals, nil
	})
}

func (dir *director) running() bool { return dir.agent != nil && !dir.agent.Exited() }

func (dir *director) hasVIP(vip netip.Addr) (bool, error) {
	return dir.host.HasAddr(dir.host.Iface, vip)
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

// ctl runs `director ctl` against the master's agent, or dir1's if
// neither is master.
func (d *demo) ctl(args ...string) { d.ctlOn(d.master(), args...) }

func (d *demo) ctlOn(dir *director, args ...string) {
	cmd := exec.Command(d.bin, append([]string{"ctl", "--socket", dir.socket}, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stdout
	fmt.Printf("%s$ director ctl %s\n", dir.host.Name, strings.Join(args, " "))
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
		{"2", "director ctl status on both directors (VRRP state, priority, master)", func() {
			for _, dir := range d.dirs {
				if d.note(dir) {
					d.ctlOn(dir, "status")
				}
			}
		}},
		{"3", "director ctl real list (on the master)", func() { d.ctl("real", "list") }},
		{"4", "drain rs1 on both directors (existing connections finish, no new ones)", func() { d.both("real", "drain", "web", rs1) }},
		{"5", "enable rs1 again on both", func() { d.both("real", "enable", "web", rs1) }},
		{"6", "make rs2 fail its health check (/check.txt answers 503)", func() {
			d.webs["rs2"].SetHealthy(false)
			fmt.Println("rs2 now fails /check.txt; after fall 5 x inter 2s it leaves (try 3 and 8)")
		}},
		{"7", "make rs2 healthy again", func() {
			d.webs["rs2"].SetHealthy(true)
			fmt.Println("rs2 passes again; after rise 2 x inter 2s it rejoins")
		}},
		{"8", "send 60 requests and show who answered", func() { d.spread(60) }},
		{"9", "kill the master (SIGKILL) and watch the backup take the VIP", func() { d.failover(syscall.SIGKILL) }},
		{"10", "stop the master cleanly (SIGTERM: it sends priority 0)", func() { d.failover(syscall.SIGTERM) }},
		{"11", "start the stopped director again (dir1 preempts: priority 150 > 100)", d.restart},
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

// master is the director holding the VIP, or the first one running.
func (d *demo) master() *director {
	for _, dir := range d.dirs {
		if has, _ := dir.hasVIP(d.top.VIP4()); has && dir.running() {
			return dir
		}
	}
	for _, dir := range d.dirs {
		if dir.running() {
			return dir
		}
	}
	return d.dirs[0]
}

// note says so if dir's agent is not running, and reports whether it is.
func (d *demo) note(dir *director) bool {
	if !dir.running() {
		fmt.Printf("%s: the agent is not running (11 starts it)\n", dir.host.Name)
		return false
	}
	return true
}

// both runs a ctl command on each running director: ctl changes are a
// node's own, so a pair is changed on both nodes.
func (d *demo) both(args ...string) {
	for _, dir := range d.dirs {
		if d.note(dir) {
			d.ctlOn(dir, args...)
		}
	}
}

// failover signals the master's agent and times the other director's
// taking the VIP, while the client keeps requesting.
func (d *demo) failover(sig syscall.Signal) {
	from := d.master()
	var to *director
	for _, dir := range d.dirs {
		if dir != from && dir.running() {
			to = dir
		}
	}
	if to == nil || !from.running() {
		fmt.Println("both directors must be running first (11 starts the stopped one)")
		return
	}
	vip := d.top.VIP4()
	name := map[syscall.Signal]string{syscall.SIGKILL: "SIGKILL", syscall.SIGTERM: "SIGTERM"}[sig]
	fmt.Printf("sending %s to the agent on %s (the master)\n", name, from.host.Name)
	start := time.Now()
	if err := from.agent.Signal(sig); err != nil {
		fmt.Println("signal:", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := topo.WaitFor(ctx, 0, to.host.Name+" holding the VIP", func() (bool, error) { return to.hasVIP(vip) })
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s took the VIP after %v", to.host.Name, time.Since(start).Round(10*time.Millisecond))
	if sig == syscall.SIGKILL {
		fmt.Println(" (Master_Down_Interval = 3 x advert 1s + skew 0.61s = 3.61s after the last advert)")
		fmt.Printf("the killed agent left the XDP program and the VIP on %s, as a crashed node would\n", from.host.Name)
	} else {
		fmt.Println(" (Skew_Time 0.61s after the priority-0 advert)")
	}
	from.agent.Wait(ctx)
	d.spread(30)
}

func (d *demo) restart() {
	for _, dir := range d.dirs {
		if dir.running() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		fmt.Printf("starting the agent on %s again\n", dir.host.Name)
		if err := dir.start(ctx, d.bin); err != nil {
			fmt.Println(err)
		}
		cancel()
		return
	}
	fmt.Println("both agents are running")
}

func errOrEmpty(err error) string {
	if err != nil {
		return err.Error()
	}
	return ""
}
