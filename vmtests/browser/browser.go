// Package browser starts the headless Chromium the stats page is tested
// in (Debian's package, with the flags the project's CI machine needs)
// and says where test artefacts such as screenshots go.
package browser

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Chromium is Debian's browser, installed by .ci/run.
const Chromium = "/usr/bin/chromium"

// New starts a headless Chromium with a fresh profile for the test and
// returns its chromedp context; the browser ends with the test, and its
// output is logged if the test failed. Without Chromium the test is
// skipped, except in CI, which installs it: there a missing browser fails
// rather than hides the proof.
func New(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(Chromium); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no %s in CI: .ci/run installs chromium", Chromium)
		}
		t.Skipf("no %s (apt-get install chromium)", Chromium)
	}
	out := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chromium's output:\n%s", out.String())
		}
	})
	actx, cancelA := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(Chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1500, 1000),
		chromedp.CombinedOutput(out),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	return ctx
}

// Admin prepares ctx (from New) for a user who acts on the stats page:
// it starts the browser (once, here: a first use from two goroutines
// would start two browsers on one profile), sends user's basic auth with
// every request and accepts every confirm(), whose messages come on the
// returned channel.
func Admin(t *testing.T, ctx context.Context, user, password string) <-chan string {
	t.Helper()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	dialogs := make(chan string, 8)
	go func() {
		for ev, err := range chromedp.Events(ctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			dialogs <- ev.Message
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders,
		network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}}); err != nil {
		t.Fatal(err)
	}
	return dialogs
}

// ArtifactDir is where a test's artefacts go: $DIRECTOR_ARTIFACTS (CI), or
// testdata/out beside the test (ignored by git).
func ArtifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("DIRECTOR_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("testdata", "out")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// lockedBuffer collects the browser's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
