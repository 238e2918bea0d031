package stats

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/directorlb/director/director/api"
)

// fakeOps is an agent in memory: VIPs with reals, the actions change them.
type fakeOps struct {
	mu     sync.Mutex
	status api.Status
	vips   []api.VIP
	reals  map[string][]api.Real
	calls  []string
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newFakeOps() *fakeOps {
	f := &fakeOps{
		status: api.Status{Node: "lb-node-1", Version: "v9.8.7", StartedAt: t0.Add(-26 * time.Hour),
			Interfaces: []api.Interface{{Name: "eth0", Mode: "native", ProgramID: 42, LinkID: 7}},
			VRRP: []api.VRRPInstance{{Name: "VI_1", State: "BACKUP", Priority: 90, Base: 100, Master: "10.99.0.3",
				Since: t0.Add(-5 * time.Minute)}},
			Packets: map[string]uint64{"tx": 123456, "pass_not_vip": 77}},
		reals: map[string][]api.Real{},
	}
	f.vips = []api.VIP{
		{Name: "web", Address: "10.99.0.100:80/tcp", Interface: "eth0", Scheduler: "maglev", Mode: "l4", AllDown: "keep",
			Counters: api.Counters{Packets: 5000, Bytes: 700000, NewFlows: 300}},
		{Name: "https-l7", Address: "10.99.0.100:443/tcp", Interface: "eth0", Scheduler: "maglev", Mode: "local", AllDown: "keep"},
	}
	f.reals["https-l7"] = nil
	f.reals["web"] = []api.Real{
		{VIP: "web", Address: "10.99.0.50", State: "up", Weight: 3, Healthy: true, Since: t0.Add(-90 * time.Second),
			Cause: "ok", LastCheck: "ok", CheckStatus: "L4OK", Latency: 1500 * time.Microsecond,
			Counters: api.Counters{Packets: 3000, Bytes: 400000, NewFlows: 200}},
		{VIP: "web", Address: "10.99.0.51", State: "down", Weight: 1, Since: t0.Add(-2 * time.Hour),
			Cause: "status 503", LastCheck: "status 503", CheckStatus: "L7STS", CheckCode: 503, Latency: 2 * time.Millisecond,
			Counters: api.Counters{Packets: 1000, Bytes: 200000, NewFlows: 60}},
		{VIP: "web", Address: "10.99.0.52", State: "drain", Weight: 1, Drained: true, Healthy: true,
			Since: t0.Add(-3 * time.Minute), Cause: "drain (operator)", LastCheck: "ok", CheckStatus: "L4OK",
			Counters: api.Counters{Packets: 1000, Bytes: 100000, NewFlows: 40}},
		{VIP: "web", Address: "10.99.0.53", State: "maint", Weight: 1, Maint: true, Healthy: true,
			Since: t0.Add(-4 * 24 * time.Hour), Cause: "maint (operator)", LastCheck: "timeout", CheckStatus: "L4TOUT"},
	}
	f.recount()
	return f
}

func (f *fakeOps) recount() {
	for i := range f.vips {
		v := &f.vips[i]
		v.Reals, v.RealsUp = 0, 0
		for _, r := range f.reals[v.Name] {
			v.Reals++
			if r.State == "up" {
				v.RealsUp++
			}
		}
	}
}

func (f *fakeOps) Status(context.Context) (api.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status, nil
}

func (f *fakeOps) VIPs(context.Context) ([]api.VIP, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.VIP(nil), f.vips...), nil
}

func (f *fakeOps) Reals(_ context.Context, vip string) ([]api.Real, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rs, ok := f.reals[vip]
	if !ok {
		return nil, fmt.Errorf("%w: no VIP %q", api.ErrNotFound, vip)
	}
	return append([]api.Real(nil), rs...), nil
}

func (f *fakeOps) change(op, vip string, addr netip.Addr, do func(r *api.Real)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("%s %s %s", op, vip, addr))
	for i, r := range f.reals[vip] {
		if r.Address == addr.String() {
			do(&f.reals[vip][i])
			f.recount()
			return nil
		}
	}
	return fmt.Errorf("%w: VIP %s has no real %v", api.ErrNotFound, vip, addr)
}

func (f *fakeOps) AddReal(context.Context, string, netip.Addr, *uint32) error { panic("not used") }
func (f *fakeOps) RemoveReal(context.Context, string, netip.Addr) error       { panic("not used") }
func (f *fakeOps) Reload(context.Context) error                               { panic("not used") }

func (f *fakeOps) DrainReal(_ context.Context, vip string, a netip.Addr) error {
	return f.change("drain", vip, a, func(r *api.Real) {
		r.Drained = true
		if !r.Maint {
			r.State = "drain"
		}
	})
}

func (f *fakeOps) EnableReal(_ context.Context, vip string, a netip.Addr) error {
	return f.change("enable", vip, a, func(r *api.Real) { r.Drained, r.Maint, r.State = false, false, "up" })
}

func (f *fakeOps) MaintReal(_ context.Context, vip string, a netip.Addr, on bool) error {
	return f.change(fmt.Sprintf("maint=%v", on), vip, a, func(r *api.Real) {
		r.Maint = on
		if on {
			r.State = "maint"
		} else {
			r.State = "up"
		}
	})
}

func (f *fakeOps) SetWeight(_ context.Context, vip string, a netip.Addr, w uint32) error {
	return f.change(fmt.Sprintf("weight=%d", w), vip, a, func(r *api.Real) { r.Weight = w })
}

// The L7 tier's servers: app1 and app2 of backend www, as fakeL7 shows.
func (f *fakeOps) L7Servers(context.Context) ([]api.L7Server, error) { panic("not used") }

func (f *fakeOps) l7Change(op, backend, server string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("l7 %s %s/%s", op, backend, server))
	if backend != "www" || server != "app1" && server != "app2" {
		return fmt.Errorf("%w: L7 backend %s has no server %q", api.ErrNotFound, backend, server)
	}
	return nil
}

func (f *fakeOps) DrainL7Server(_ context.Context, backend, server string) error {
	return f.l7Change("drain", backend, server)
}

func (f *fakeOps) MaintL7Server(_ context.Context, backend, server string, on bool) error {
	return f.l7Change(fmt.Sprintf("maint=%v", on), backend, server)
}

func (f *fakeOps) EnableL7Server(_ context.Context, backend, server string) error {
	return f.l7Change("enable", backend, server)
}

func (f *fakeOps) SetL7Weight(_ context.Context, backend, server string, w uint32) error {
	return f.l7Change(fmt.Sprintf("weight=%d", w), backend, server)
}

func (f *fakeOps) addTraffic(vip, addr string, c api.Counters) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.vips {
		if f.vips[i].Name == vip {
			f.vips[i].Packets += c.Packets
			f.vips[i].Bytes += c.Bytes
			f.vips[i].NewFlows += c.NewFlows
		}
	}
	for i, r := range f.reals[vip] {
		if r.Address == addr {
			f.reals[vip][i].Packets += c.Packets
			f.reals[vip][i].Bytes += c.Bytes
			f.reals[vip][i].NewFlows += c.NewFlows
		}
	}
}

var _ api.Ops = (*fakeOps)(nil)

// fakeL7 is an HTTP tier with one proxy.
type fakeL7 struct{ err error }

func (f fakeL7) L7Stats(context.Context) ([]Proxy, error) {
	if f.err != nil {
		return nil, f.err
	}
	return []Proxy{{
		Name: "www",
		Frontend: &Row{Name: "FRONTEND", Kind: FrontendRow, Status: "OPEN", SessCur: 11, SessMax: 95, SessLimit: 2000,
			SessTotal: 123457, SessRate: 14, SessRateMax: 230, BytesIn: 9876543, BytesOut: 87654321,
			ErrReq: 3, DeniedReq: 2, Responses: [6]uint64{0, 120000, 2000, 1400, 57, 0}, ReqRate: 15, ReqRateMax: 240, ReqTotal: 123458},
		Servers: []Row{
			{Name: "app1", Kind: ServerRow, Status: "UP", Weight: 10, Active: 1, SessCur: 6, SessMax: 50, SessTotal: 61000,
				SessRate: 7, SessRateMax: 120, QueueCur: 1, QueueMax: 9, BytesIn: 4000000, BytesOut: 40000000,
				ErrConn: 4, ErrResp: 5, Retries: 6, Redispatches: 7, Responses: [6]uint64{0, 60000, 1000, 700, 30, 0},
				CheckStatus: "L7OK", CheckCode: 200, CheckDuration: 3 * time.Millisecond, CheckFails: 8, CheckDowns: 1,
				Since: t0.Add(-70 * time.Minute), LBTotal: 61000},
			{Name: "app2", Kind: ServerRow, Status: "DOWN", Weight: 10, Active: 1, CheckStatus: "L4CON",
				Since: t0.Add(-10 * time.Second)},
		},
		Backend: &Row{Name: "BACKEND", Kind: BackendRow, Status: "UP", Weight: 10, Active: 1, SessCur: 6, SessMax: 50,
			SessTotal: 61000, QueueCur: 2, QueueMax: 12, BytesIn: 4000000, BytesOut: 40000000, Retries: 6, Redispatches: 7,
			Responses: [6]uint64{0, 60000, 1000, 700, 30, 0}, LBTotal: 61000, Since: t0.Add(-70 * time.Minute)},
	}}, nil
}
