package vmtests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/directorlb/director/director/api"
	"github.com/directorlb/director/director/stats"
	"github.com/directorlb/director/vmtests/browser"
	"github.com/directorlb/director/vmtests/topo"
)

// forward serves 127.0.0.1:<port> in this namespace by dialling addr from
// host: the browser runs here, the agent in its namespace.
func forward(t *testing.T, host *topo.Host, addr string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				up, err := host.Dial(ctx, "tcp", addr)
				cancel()
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return l.Addr().String()
}

// pageRow is a real's row as the browser renders it.
type pageRow struct {
	VIP     string `json:"vip"`
	Address string `json:"address"`
	State   string `json:"state"`
	Status  string `json:"status"`
	Weight  uint32 `json:"weight"`
}

const rowsJS = `Array.from(document.querySelectorAll("tr.real")).map(tr => ({
	vip: tr.dataset.vip, address: tr.dataset.real, state: tr.dataset.state,
	status: tr.querySelector("td.st").textContent, weight: parseInt(tr.dataset.weight, 10)}))`

// TestStatsPageInBrowser loads the stats page of an agent running
// configs/single.yaml in Chromium, checks its rows against `ctl --json`,
// drains a real from the page (through the JavaScript confirm()) and sees
// the state change, and saves a screenshot.
func TestStatsPageInBrowser(t *testing.T) {
	spec := topo.DRSpec(1, 1, 3)
	spec.XDPMode = topo.XDPGeneric
	top := topo.NewT(t, spec)
	ctx := topo.Context(t, 3*time.Minute)
	for _, r := range top.Reals() {
		if _, err := top.StartWebserver(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	dir := top.Directors()[0]
	a := startAgent(t, top, dir, "single.yaml")
	base := "http://" + forward(t, dir, "127.0.0.1:8404") + "/stats"

	// Some traffic, until the sampler has rates and a history to draw.
	cl := top.Clients()[0]
	url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(top.VIP4(), topo.WebPort))
	l := startLoad(ctx, cl, url, 2)
	err := topo.WaitFor(ctx, time.Minute, "the stats JSON shows a traffic history", func() (bool, error) {
		var s stats.Snapshot
		if err := getJSON(ctx, base+";json", &s); err != nil {
			return false, err
		}
		for _, v := range s.VIPs {
			for _, r := range v.Rows {
				if len(r.Trend.History) >= 3 && r.Trend.Now.Packets > 0 {
					return true, nil
				}
			}
		}
		return false, nil
	})
	l.finish(time.Time{})
	if err != nil {
		t.Fatal(err)
	}

	bctx := browser.New(t)
	bctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	dialogs := browser.Admin(t, bctx, "admin", "director")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(chromedp.Do(bctx, chromedp.Navigate(base), chromedp.WaitVisible(chromedp.ID("summary"))))
	node, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID("node")))
	must(err)
	role, err := chromedp.Run(bctx, chromedp.Text(chromedp.ID("role")))
	must(err)
	if node == "" || role != "no VRRP" {
		t.Errorf("node %q, role %q", node, role)
	}
	checkRows := func() {
		t.Helper()
		rows, err := chromedp.Run(bctx, chromedp.Evaluate[[]pageRow](rowsJS))
		must(err)
		want := ctlReals(t, a)
		if len(rows) != len(want) {
			t.Fatalf("page has %d real rows, ctl %d:\n%v\n%v", len(rows), len(want), rows, want)
		}
		for i, r := range want {
			got := rows[i]
			if got.VIP != r.VIP || got.Address != r.Address || got.State != r.State || got.Weight != r.Weight ||
				got.Status != strings.ToUpper(r.State) {
				t.Errorf("row %d: page %+v, ctl %s %s %s weight %d", i, got, r.VIP, r.Address, r.State, r.Weight)
			}
		}
	}
	checkRows()

	// Drain rs1 of web from the page: tick it, pick the action, apply,
	// accept the confirm(). On ;norefresh: the page's own refresh must not
	// swap the table under the clicks.
	rs1 := top.Host("rs1").Addr4().String()
	must(chromedp.Do(bctx,
		chromedp.Navigate(base+";norefresh"),
		chromedp.WaitVisible(chromedp.ID("summary")),
		chromedp.Click(chromedp.CSS(`details#vip-web input[name=real][value="`+rs1+`"]`)),
		chromedp.SetValue(chromedp.CSS(`details#vip-web select[name=action]`), "drain"),
		chromedp.Click(chromedp.CSS(`details#vip-web button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)),
	))
	select {
	case msg := <-dialogs:
		if msg != "Set state to DRAIN for "+rs1+" of VIP web?" {
			t.Errorf("confirm() asked %q", msg)
		}
	default:
		t.Error("no confirm() before the action")
	}
	notice, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`p.notice`)))
	must(err)
	state, err := chromedp.Run(bctx, chromedp.AttributeValue(chromedp.CSS(`tr.real[data-vip="web"][data-real="`+rs1+`"]`), "data-state"))
	must(err)
	if notice != "Set state to DRAIN: done for 1 real." || state.Value != "drain" {
		t.Errorf("after drain: notice %q, state %q", notice, state.Value)
	}
	checkRows()
	if err := a.proc.WaitLog(ctx, `"action":"drain"`); err != nil {
		t.Errorf("the drain was not logged: %v", err)
	}

	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	must(err)
	out := filepath.Join(browser.ArtifactDir(t), "stats-page-agent.png")
	must(os.WriteFile(out, png, 0o644))
	t.Logf("screenshot: %s", out)
	if err := a.ctl.EnableReal(ctx, "web", top.Host("rs1").Addr4()); err != nil {
		t.Fatal(err)
	}
}

// ctlReals is `director ctl --json real list`, run as an operator would.
func ctlReals(t *testing.T, a *agentRun) []api.Real {
	t.Helper()
	socket := filepath.Join(filepath.Dir(a.config), "director.sock")
	out, err := exec.Command(a.bin, "ctl", "--socket", socket, "--json", "real", "list").Output()
	if err != nil {
		t.Fatalf("ctl real list: %v", err)
	}
	var reals []api.Real
	if err := json.Unmarshal(out, &reals); err != nil {
		t.Fatalf("ctl --json: %v\n%s", err, out)
	}
	return reals
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth("viewer", "viewer")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
