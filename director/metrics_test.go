package director

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/directorlb/director/director/api"
)

// staticOps answers with fixed data; the collector only reads.
type staticOps struct {
	api.Ops
	st    api.Status
	vips  []api.VIP
	reals map[string][]api.Real
}

func (o staticOps) Status(context.Context) (api.Status, error) { return o.st, nil }
func (o staticOps) VIPs(context.Context) ([]api.VIP, error)    { return o.vips, nil }
func (o staticOps) Reals(_ context.Context, vip string) ([]api.Real, error) {
	return o.reals[vip], nil
}

func TestCollector(t *testing.T) {
	ops := staticOps{
		st: api.Status{
			Packets: map[string]uint64{"tx": 90, "ct_hit": 70, "ct_miss": 20, "drop_malformed": 3},
			VRRP: []api.VRRPInstance{{Name: "VI_1", State: "BACKUP", Priority: 90, Counters: api.VRRPCounters{
				AdvertsReceived: 12, Priority0Received: 1, Transitions: 2, Discards: map[string]uint64{"ttl": 4}}}},
		},
		vips: []api.VIP{{Name: "web", Address: "10.0.0.1:80/tcp", Counters: api.Counters{Packets: 90, Bytes: 9000, NewFlows: 20}}},
		reals: map[string][]api.Real{"web": {
			{Address: "10.0.0.50", State: "drain", Weight: 0, Latency: 1500 * time.Microsecond, Counters: api.Counters{Packets: 60, NewFlows: 15}},
			{Address: "10.0.0.51", State: "up", Weight: 3, Counters: api.Counters{Packets: 30, NewFlows: 5}},
		}},
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(ops, zerolog.Nop()))
	want := `
# HELP director_real_state 1 for the real's current state (up, drain, down, maint).
# TYPE director_real_state gauge
director_real_state{real="10.0.0.50",state="down",vip="web"} 0
director_real_state{real="10.0.0.50",state="drain",vip="web"} 1
director_real_state{real="10.0.0.50",state="maint",vip="web"} 0
director_real_state{real="10.0.0.50",state="up",vip="web"} 0
director_real_state{real="10.0.0.51",state="down",vip="web"} 0
director_real_state{real="10.0.0.51",state="drain",vip="web"} 0
director_real_state{real="10.0.0.51",state="maint",vip="web"} 0
director_real_state{real="10.0.0.51",state="up",vip="web"} 1
# HELP director_real_check_duration_seconds Duration of the real's last health check.
# TYPE director_real_check_duration_seconds gauge
director_real_check_duration_seconds{real="10.0.0.50",vip="web"} 0.0015
director_real_check_duration_seconds{real="10.0.0.51",vip="web"} 0
# HELP director_real_new_flows_total New flows sent to the real.
# TYPE director_real_new_flows_total counter
director_real_new_flows_total{real="10.0.0.50",vip="web"} 15
director_real_new_flows_total{real="10.0.0.51",vip="web"} 5
# HELP director_vip_bytes_total Bytes of the VIP handled by XDP.
# TYPE director_vip_bytes_total counter
director_vip_bytes_total{address="10.0.0.1:80/tcp",vip="web"} 9000
# HELP director_xdp_flow_table_hits_total Packets whose flow was in the connection table.
# TYPE director_xdp_flow_table_hits_total counter
director_xdp_flow_table_hits_total 70
# HELP director_xdp_packets_total Packets by verdict and reason.
# TYPE director_xdp_packets_total counter
director_xdp_packets_total{reason="drop_malformed"} 3
director_xdp_packets_total{reason="tx"} 90
# HELP director_vrrp_discards_total Received adverts discarded, by cause.
# TYPE director_vrrp_discards_total counter
director_vrrp_discards_total{cause="ttl",instance="VI_1"} 4
# HELP director_vrrp_priority The instance's effective priority.
# TYPE director_vrrp_priority gauge
director_vrrp_priority{instance="VI_1"} 90
`
	names := []string{"director_real_state", "director_real_check_duration_seconds", "director_real_new_flows_total",
		"director_vip_bytes_total", "director_xdp_flow_table_hits_total", "director_xdp_packets_total",
		"director_vrrp_discards_total", "director_vrrp_priority"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	// One event series per kind, with its value.
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	events := map[string]float64{}
	for _, f := range fams {
		if f.GetName() == "director_vrrp_events_total" {
			for _, m := range f.Metric {
				for _, l := range m.Label {
					if l.GetName() == "event" {
						events[l.GetValue()] = m.Counter.GetValue()
					}
				}
			}
		}
	}
	if events["advert_received"] != 12 || events["priority0_received"] != 1 || events["transition"] != 2 || len(events) != 8 {
		t.Fatalf("vrrp events: %v", events)
	}
}
