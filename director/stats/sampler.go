package stats

import (
	"context"
	"sync"
	"time"

	"github.com/directorlb/director/director/api"
)

// Rates are per-second rates of a VIP's or a real's counters.
type Rates struct {
	Packets  float64 `json:"packets"`
	Bytes    float64 `json:"bytes"`
	NewFlows float64 `json:"new_flows"`
}

// Trend is what the sampler knows of one VIP or real: the rates over the
// last interval, the highest seen, and the history of the last minutes,
// oldest first, one entry per interval.
type Trend struct {
	Now     Rates   `json:"now"`
	Max     Rates   `json:"max"`
	History []Rates `json:"history,omitempty"`
}

// SamplerConfig says how often to sample and how much to keep.
type SamplerConfig struct {
	// Interval between samples; DefaultSampleInterval if zero.
	Interval time.Duration
	// Keep is how much history to keep; DefaultSampleKeep if zero.
	Keep time.Duration
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// Defaults of the sampler.
const (
	DefaultSampleInterval = 5 * time.Second
	DefaultSampleKeep     = 5 * time.Minute
)

// Sampler reads the XDP counters of every VIP and real at a fixed interval
// and keeps the last minutes of them: the page's per-second rates and
// sparklines. Its owner runs it (Run) with a context.
type Sampler struct {
	ops api.Ops
	cfg SamplerConfig
	n   int // samples kept

	mu    sync.Mutex
	vips  map[string]*series
	reals map[realKey]*series
}

type realKey struct{ vip, addr string }

type series struct {
	points []point // oldest first, at most n
	max    Rates
}

type point struct {
	t time.Time
	c api.Counters
}

// NewSampler samples ops.
func NewSampler(ops api.Ops, cfg SamplerConfig) *Sampler {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultSampleInterval
	}
	if cfg.Keep < cfg.Interval {
		cfg.Keep = DefaultSampleKeep
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Sampler{ops: ops, cfg: cfg, n: int(cfg.Keep/cfg.Interval) + 1,
		vips: map[string]*series{}, reals: map[realKey]*series{}}
}

// Interval is the time between samples.
func (s *Sampler) Interval() time.Duration { return s.cfg.Interval }

// Run samples every interval until ctx ends. A failed sample is skipped.
func (s *Sampler) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		_ = s.Sample(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sample reads every VIP's and real's counters once. VIPs and reals gone
// since the last sample are forgotten.
func (s *Sampler) Sample(ctx context.Context) error {
	vips, err := s.ops.VIPs(ctx)
	if err != nil {
		return err
	}
	reals := map[realKey]api.Counters{}
	for _, v := range vips {
		if v.Mode == "local" {
			continue // no reals: the L7 tier's
		}
		rs, err := s.ops.Reals(ctx, v.Name)
		if err != nil {
			return err
		}
		for _, r := range rs {
			reals[realKey{v.Name, r.Address}] = r.Counters
		}
	}
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	seenVIPs := map[string]bool{}
	for _, v := range vips {
		seenVIPs[v.Name] = true
		add(s, s.vips, v.Name, point{now, v.Counters})
	}
	for k := range s.vips {
		if !seenVIPs[k] {
			delete(s.vips, k)
		}
	}
	for k, c := range reals {
		add(s, s.reals, k, point{now, c})
	}
	for k := range s.reals {
		if _, ok := reals[k]; !ok {
			delete(s.reals, k)
		}
	}
	return nil
}

// add appends p to k's series in m, keeping the last s.n points.
func add[K comparable](s *Sampler, m map[K]*series, k K, p point) {
	sr := m[k]
	if sr == nil {
		sr = &series{}
		m[k] = sr
	}
	if l := len(sr.points); l > 0 {
		if r, ok := rate(sr.points[l-1], p); ok {
			sr.max = Rates{max(sr.max.Packets, r.Packets), max(sr.max.Bytes, r.Bytes), max(sr.max.NewFlows, r.NewFlows)}
		}
	}
	sr.points = append(sr.points, p)
	if len(sr.points) > s.n {
		sr.points = append(sr.points[:0], sr.points[len(sr.points)-s.n:]...)
	}
}

// rate between two samples; ok is false when a counter went back (the
// real was re-created, the dataplane replaced) or no time passed.
func rate(a, b point) (Rates, bool) {
	dt := b.t.Sub(a.t).Seconds()
	if dt <= 0 || b.c.Packets < a.c.Packets || b.c.Bytes < a.c.Bytes || b.c.NewFlows < a.c.NewFlows {
		return Rates{}, false
	}
	return Rates{
		Packets:  float64(b.c.Packets-a.c.Packets) / dt,
		Bytes:    float64(b.c.Bytes-a.c.Bytes) / dt,
		NewFlows: float64(b.c.NewFlows-a.c.NewFlows) / dt,
	}, true
}

func (sr *series) trend() Trend {
	t := Trend{Max: sr.max}
	for i := 1; i < len(sr.points); i++ {
		r, _ := rate(sr.points[i-1], sr.points[i]) // a reset counts as 0
		t.History = append(t.History, r)
	}
	if l := len(t.History); l > 0 {
		t.Now = t.History[l-1]
	}
	return t
}

// VIP returns a VIP's trend; ok is false before its first sample.
func (s *Sampler) VIP(name string) (Trend, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sr := s.vips[name]
	if sr == nil {
		return Trend{}, false
	}
	return sr.trend(), true
}

// Real returns a real's trend; ok is false before its first sample.
func (s *Sampler) Real(vip, addr string) (Trend, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sr := s.reals[realKey{vip, addr}]
	if sr == nil {
		return Trend{}, false
	}
	return sr.trend(), true
}
