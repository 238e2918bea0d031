package stats

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/directorlb/director/vmtests/browser"
)

// TestBigPageInBrowser renders 50 VIPs of 20 reals, with five minutes of
// traffic history, in Chromium and saves screenshots to judge how the page
// reads: stats-page-50x20{,-top,-vip}.png in $DIRECTOR_ARTIFACTS, or in
// testdata/out/.
func TestBigPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	ops := bigOps()
	now := t0.Add(-5 * time.Minute)
	sm := NewSampler(ops, SamplerConfig{Interval: 5 * time.Second, Keep: 5 * time.Minute, Now: func() time.Time { return now }})
	sampleBig(t, ops, sm, &now, 61)
	ops.status.VRRP[0].State = "MASTER"
	h, err := NewHandler(Config{Refresh: 10 * time.Second, ShowNode: true, Now: func() time.Time { return now }},
		Sources{Ops: ops, Sampler: sm, L7: fakeL7{}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	ctx := browser.New(t)
	ctx, cancelT := context.WithTimeout(ctx, time.Minute)
	defer cancelT()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/stats"), chromedp.WaitVisible(chromedp.ID("summary"))); err != nil {
		t.Fatal(err)
	}
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("tr.real").length`))
	if err != nil || n != 1000 {
		t.Fatalf("%d real rows in the browser (%v)", n, err)
	}
	dir := browser.ArtifactDir(t)
	// The top of the page as a screen shows it, and the whole page.
	top, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	full, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	// And one VIP's table, scrolled to.
	if err := chromedp.Do(ctx, chromedp.ScrollIntoView(chromedp.ID("vip-svc-03"))); err != nil {
		t.Fatal(err)
	}
	vip, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	for name, png := range map[string][]byte{"stats-page-50x20-top.png": top, "stats-page-50x20.png": full,
		"stats-page-50x20-vip.png": vip} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
}

// TestL7ActionInBrowser puts an L7 server in maintenance from the page as
// an admin does: tick it, pick the action, apply, accept the confirm().
func TestL7ActionInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	f := newFixture(t, nil)
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	ctx := browser.New(t)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	dialogs := browser.Admin(t, ctx, "admin", "s3cret")
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/stats;norefresh"),
		chromedp.WaitVisible(chromedp.ID("l7")),
		chromedp.Click(chromedp.CSS(`section#l7 input[name=server][value="app1"]`)),
		chromedp.SetValue(chromedp.CSS(`section#l7 select[name=action]`), "maint"),
		chromedp.Click(chromedp.CSS(`section#l7 button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)),
	); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-dialogs:
		if msg != "Set state to MAINT for app1 of L7 backend www?" {
			t.Errorf("confirm() asked %q", msg)
		}
	default:
		t.Error("no confirm() before the action")
	}
	notice, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`p.notice`)))
	if err != nil || notice != "Set state to MAINT: done for 1 server." {
		t.Errorf("notice %q %v", notice, err)
	}
	f.ops.mu.Lock()
	defer f.ops.mu.Unlock()
	if strings.Join(f.ops.calls, "|") != "l7 maint=true www/app1" {
		t.Errorf("calls %v", f.ops.calls)
	}
}
