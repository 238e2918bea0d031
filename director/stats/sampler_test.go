package stats

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/directorlb/director/director/api"
)

func TestSampler(t *testing.T) {
	ops := newFakeOps()
	now := t0
	s := NewSampler(ops, SamplerConfig{Interval: 2 * time.Second, Keep: 10 * time.Second, Now: func() time.Time { return now }})
	sample := func(p, b, n uint64) {
		t.Helper()
		now = now.Add(2 * time.Second)
		ops.addTraffic("web", "10.99.0.50", api.Counters{Packets: p, Bytes: b, NewFlows: n})
		if err := s.Sample(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := s.Real("web", "10.99.0.50"); ok {
		t.Fatal("a trend before any sample")
	}
	sample(0, 0, 0)
	if tr, ok := s.Real("web", "10.99.0.50"); !ok || len(tr.History) != 0 || tr.Now != (Rates{}) {
		t.Fatalf("after one sample: %+v %v", tr, ok)
	}
	sample(20, 2000, 4)
	sample(60, 6000, 2)
	tr, _ := s.Real("web", "10.99.0.50")
	if want := (Rates{30, 3000, 1}); tr.Now != want {
		t.Errorf("now %+v, want %+v", tr.Now, want)
	}
	if want := (Rates{30, 3000, 2}); tr.Max != want {
		t.Errorf("max %+v, want %+v", tr.Max, want)
	}
	if len(tr.History) != 2 || tr.History[0] != (Rates{10, 1000, 2}) {
		t.Errorf("history %+v", tr.History)
	}
	if v, _ := s.VIP("web"); v.Now != (Rates{30, 3000, 1}) {
		t.Errorf("VIP now %+v", v.Now)
	}

	// The ring keeps Keep/Interval intervals.
	for i := 0; i < 10; i++ {
		sample(2, 2, 0)
	}
	if tr, _ := s.Real("web", "10.99.0.50"); len(tr.History) != 5 || tr.Max.Packets != 30 {
		t.Errorf("after 13 samples: %d intervals, max %+v", len(tr.History), tr.Max)
	}

	// A counter that goes back (the real was re-created) is no rate.
	ops.mu.Lock()
	ops.reals["web"][0].Counters = api.Counters{Packets: 1}
	ops.mu.Unlock()
	sample(0, 0, 0)
	if tr, _ := s.Real("web", "10.99.0.50"); tr.Now != (Rates{}) {
		t.Errorf("after a reset: %+v", tr.Now)
	}

	// A real gone is forgotten.
	ops.mu.Lock()
	ops.reals["web"] = ops.reals["web"][1:]
	ops.mu.Unlock()
	sample(0, 0, 0)
	if _, ok := s.Real("web", "10.99.0.50"); ok {
		t.Error("a removed real is still sampled")
	}

	// Run samples until its context ends.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// bigOps is a director with 50 VIPs of 20 reals each.
func bigOps() *fakeOps {
	f := newFakeOps()
	f.vips, f.reals = nil, map[string][]api.Real{}
	states := []string{"up", "up", "up", "up", "up", "up", "up", "drain", "down", "maint"}
	for v := 0; v < 50; v++ {
		name := fmt.Sprintf("svc-%02d", v)
		f.vips = append(f.vips, api.VIP{Name: name, Address: fmt.Sprintf("192.0.2.%d:443/tcp", v+1), Interface: "eth0",
			Scheduler: "maglev", Mode: "l4", AllDown: "keep"})
		for r := 0; r < 20; r++ {
			st := states[(v+r)%len(states)]
			real := api.Real{VIP: name, Address: fmt.Sprintf("10.%d.%d.%d", v/10, v%10, r+10), State: st, Weight: uint32(1 + r%4),
				Healthy: st != "down", Maint: st == "maint", Drained: st == "drain", Since: t0.Add(-time.Duration(v*r+5) * time.Minute),
				LastCheck: "ok", CheckStatus: "L4OK", Cause: "ok", Latency: time.Duration(r+1) * 300 * time.Microsecond}
			if st == "down" {
				real.LastCheck, real.CheckStatus, real.Cause = "connection refused", "L4CON", "connection refused"
			}
			f.reals[name] = append(f.reals[name], real)
		}
	}
	f.recount()
	return f
}

// sampleBig gives the big director a few minutes of uneven traffic.
func sampleBig(t testing.TB, f *fakeOps, s *Sampler, now *time.Time, n int) {
	for i := 0; i < n; i++ {
		*now = now.Add(5 * time.Second)
		for v := range f.vips {
			for r, real := range f.reals[f.vips[v].Name] {
				if real.State != "up" {
					continue
				}
				k := uint64((r%7+1)*(i%9+3)*100 + v*13)
				f.addTraffic(f.vips[v].Name, real.Address, api.Counters{Packets: k, Bytes: k * 900, NewFlows: k / 20})
			}
		}
		if err := s.Sample(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBigPage renders 50 VIPs of 20 reals: every real has its row and
// sparkline, and the page stays a reasonable size.
func TestBigPage(t *testing.T) {
	ops := bigOps()
	now := t0.Add(-5 * time.Minute)
	sm := NewSampler(ops, SamplerConfig{Interval: 5 * time.Second, Keep: 5 * time.Minute, Now: func() time.Time { return now }})
	sampleBig(t, ops, sm, &now, 61)
	h, err := NewHandler(Config{Users: users, Refresh: 10 * time.Second, Now: func() time.Time { return now }}, Sources{Ops: ops, Sampler: sm})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ops: ops, h: h}
	start := time.Now()
	page := f.get("/stats", "admin")
	t.Logf("50 VIPs x 20 reals: %d KiB of HTML in %v", len(page)/1024, time.Since(start).Round(time.Millisecond))
	if n := strings.Count(page, `<tr class="real `); n != 1000 {
		t.Errorf("%d real rows", n)
	}
	if n := strings.Count(page, `<svg class="spark"`); n != 1000+50+50 {
		t.Errorf("%d sparklines", n)
	}
	if len(page) > 4<<20 {
		t.Errorf("page of %d bytes", len(page))
	}
	w := f.do(http.MethodGet, "/stats", "admin", "s3cret", nil, "Accept-Encoding", "gzip")
	t.Logf("gzipped: %d KiB", w.Body.Len()/1024)
}
