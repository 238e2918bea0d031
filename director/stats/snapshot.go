package stats

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/directorlb/director/director/api"
)

// Snapshot is the whole director at one moment: what the page, ;csv and
// ;json show.
type Snapshot struct {
	Node      string             `json:"node,omitempty"`    // with ShowNode only
	Version   string             `json:"version,omitempty"` // unless HideVersion
	Time      time.Time          `json:"time"`
	StartedAt time.Time          `json:"started_at"`
	VRRP      []api.VRRPInstance `json:"vrrp,omitempty"`
	Packets   map[string]uint64  `json:"packets"`
	Ifaces    []api.Interface    `json:"interfaces"`
	VIPs      []VIPStats         `json:"vips"`
	L7        []Proxy            `json:"l7,omitempty"`
	L7Error   string             `json:"l7_error,omitempty"`
	Sampled   bool               `json:"sampled"` // rates and history are known
	Interval  time.Duration      `json:"sample_interval_ns,omitempty"`
}

// VIPStats is a VIP with its reals, their rates and history.
type VIPStats struct {
	api.VIP
	Trend Trend       `json:"trend"`
	Rows  []RealStats `json:"real_stats"`
	// Backend sums the reals: how many are up, their weight, their
	// traffic.
	Backend BackendStats `json:"backend"`
}

// BackendStats sums a VIP's reals (HAProxy's BACKEND row).
type BackendStats struct {
	Status string `json:"status"` // UP when a real takes new flows, else DOWN
	Up     int    `json:"up"`
	Total  int    `json:"total"`
	Weight uint32 `json:"weight"` // of the reals up
	api.Counters
	Rates Rates `json:"rates"`
}

// RealStats is a real with its HAProxy-style status and trend.
type RealStats struct {
	api.Real
	// Status is HAProxy's word: UP, DOWN, DRAIN or MAINT.
	Status string `json:"status"`
	Trend  Trend  `json:"trend"`
}

// snapshot reads everything from the sources.
func (h *Handler) snapshot(ctx context.Context) (*Snapshot, error) {
	st, err := h.src.Ops.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	vips, err := h.src.Ops.VIPs(ctx)
	if err != nil {
		return nil, fmt.Errorf("VIPs: %w", err)
	}
	s := &Snapshot{Time: h.now(), StartedAt: st.StartedAt, VRRP: st.VRRP, Packets: st.Packets, Ifaces: st.Interfaces}
	if h.cfg.ShowNode {
		s.Node = st.Node
	}
	if !h.cfg.HideVersion {
		s.Version = st.Version
	}
	if sm := h.src.Sampler; sm != nil {
		s.Sampled, s.Interval = true, sm.Interval()
	}
	for _, v := range vips {
		vs := VIPStats{VIP: v, Backend: BackendStats{Status: "DOWN"}}
		if sm := h.src.Sampler; sm != nil {
			vs.Trend, _ = sm.VIP(v.Name)
		}
		if v.Mode != "local" {
			reals, err := h.src.Ops.Reals(ctx, v.Name)
			if err != nil {
				return nil, fmt.Errorf("reals of %s: %w", v.Name, err)
			}
			for _, r := range reals {
				rs := RealStats{Real: r, Status: statusWord(r)}
				if sm := h.src.Sampler; sm != nil {
					rs.Trend, _ = sm.Real(v.Name, r.Address)
				}
				b := &vs.Backend
				if !r.Sorry {
					b.Total++
					if r.State == "up" {
						b.Up++
						b.Weight += r.Weight
						b.Status = "UP"
					}
				}
				b.Packets += r.Packets
				b.Bytes += r.Bytes
				b.NewFlows += r.NewFlows
				b.Rates.Packets += rs.Trend.Now.Packets
				b.Rates.Bytes += rs.Trend.Now.Bytes
				b.Rates.NewFlows += rs.Trend.Now.NewFlows
				vs.Rows = append(vs.Rows, rs)
			}
		}
		s.VIPs = append(s.VIPs, vs)
	}
	if h.src.L7 != nil {
		s.L7, err = h.src.L7.L7Stats(ctx)
		if err != nil {
			s.L7Error = err.Error()
		}
	}
	return s, nil
}

// statusWord is HAProxy's word for a real's state.
func statusWord(r api.Real) string {
	switch r.State {
	case "up":
		return "UP"
	case "drain":
		return "DRAIN"
	case "maint":
		return "MAINT"
	case "down":
		return "DOWN"
	}
	return strings.ToUpper(r.State)
}
