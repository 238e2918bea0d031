package stats

import (
	"context"
	"fmt"
	"strconv"
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
	// CheckStatus is HAProxy's check_status (L4OK, L4TOUT, L7STS, ...)
	// and CheckCode its check_code.
	CheckStatus string `json:"check_status,omitempty"`
	CheckCode   int    `json:"check_code,omitempty"`
	Trend       Trend  `json:"trend"`
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
				rs.CheckStatus, rs.CheckCode = checkStatus(r.LastCheck)
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

// checkStatus maps a check's cause (health.Cause's text) to HAProxy's
// check_status and check_code.
func checkStatus(last string) (string, int) {
	if last == "" {
		return "", 0
	}
	word, _, _ := strings.Cut(last, ":")
	code := 0
	for _, prefix := range []string{"status ", "exit code "} {
		if n, ok := strings.CutPrefix(word, prefix); ok {
			code, _ = strconv.Atoi(n)
			word = strings.TrimSuffix(prefix, " ")
		}
	}
	switch word {
	case "ok":
		return "L4OK", 0
	case "timeout":
		return "L4TOUT", 0
	case "connection refused", "connection reset", "connection closed", "unreachable":
		return "L4CON", 0
	case "tls error":
		return "L6RSP", 0
	case "protocol error", "body mismatch":
		return "L7RSP", 0
	case "status":
		return "L7STS", code
	case "exit code", "killed by signal":
		return "PROCERR", code
	case "command timeout":
		return "PROCTOUT", 0
	}
	return "UNK", 0
}
