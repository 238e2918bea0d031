package director

import (
	"context"
	"net/http"
	"time"

	"github.com/directorlb/director/director/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Collector turns what ctl sees into Prometheus metrics at scrape time: the
// XDP counters are read from the per-CPU maps and summed then, never
// sampled in between.
type Collector struct {
	ops api.Ops
	log zerolog.Logger

	vipPackets, vipBytes, vipFlows    *prometheus.Desc
	realPackets, realBytes, realFlows *prometheus.Desc
	realState, realWeight, checkDur   *prometheus.Desc
	packets, ctHits, ctMisses         *prometheus.Desc
	vrrpState, vrrpPriority           *prometheus.Desc
	vrrpEvents, vrrpDiscards          *prometheus.Desc
}

// NewCollector reads from ops (the agent).
func NewCollector(ops api.Ops, log zerolog.Logger) *Collector {
	d := func(sub, name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName("director", sub, name), help, labels, nil)
	}
	return &Collector{
		ops:          ops,
		log:          log,
		vipPackets:   d("vip", "packets_total", "Packets of the VIP handled by XDP.", "vip", "address"),
		vipBytes:     d("vip", "bytes_total", "Bytes of the VIP handled by XDP.", "vip", "address"),
		vipFlows:     d("vip", "new_flows_total", "New flows of the VIP.", "vip", "address"),
		realPackets:  d("real", "packets_total", "Packets forwarded to the real.", "vip", "real"),
		realBytes:    d("real", "bytes_total", "Bytes forwarded to the real.", "vip", "real"),
		realFlows:    d("real", "new_flows_total", "New flows sent to the real.", "vip", "real"),
		realState:    d("real", "state", "1 for the real's current state (up, drain, down, maint).", "vip", "real", "state"),
		realWeight:   d("real", "weight", "The real's configured weight.", "vip", "real"),
		checkDur:     d("real", "check_duration_seconds", "Duration of the real's last health check.", "vip", "real"),
		packets:      d("xdp", "packets_total", "Packets by verdict and reason.", "reason"),
		ctHits:       d("xdp", "flow_table_hits_total", "Packets whose flow was in the connection table."),
		ctMisses:     d("xdp", "flow_table_misses_total", "Packets whose real was picked from the Maglev table."),
		vrrpState:    d("vrrp", "state", "1 for the instance's current state.", "instance", "state"),
		vrrpPriority: d("vrrp", "priority", "The instance's effective priority.", "instance"),
		vrrpEvents:   d("vrrp", "events_total", "Protocol events: adverts sent and received, priority-0 adverts, becoming master, transitions, errors.", "instance", "event"),
		vrrpDiscards: d("vrrp", "discards_total", "Received adverts discarded, by cause.", "instance", "cause"),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.vipPackets, c.vipBytes, c.vipFlows, c.realPackets, c.realBytes,
		c.realFlows, c.realState, c.realWeight, c.checkDur, c.packets, c.ctHits, c.ctMisses, c.vrrpState, c.vrrpPriority, c.vrrpEvents, c.vrrpDiscards} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	st, err := c.ops.Status(ctx)
	if err != nil {
		c.log.Warn().Err(err).Msg("metrics: status")
		return
	}
	for reason, v := range st.Packets {
		switch reason {
		case "ct_hit":
			counter(c.ctHits, v)
		case "ct_miss":
			counter(c.ctMisses, v)
		default:
			counter(c.packets, v, reason)
		}
	}
	for _, in := range st.VRRP {
		for _, s := range []string{"MASTER", "BACKUP", "FAULT", "INIT"} {
			gauge(c.vrrpState, b2f(in.State == s), in.Name, s)
		}
		gauge(c.vrrpPriority, float64(in.Priority), in.Name)
		k := in.Counters
		for ev, v := range map[string]uint64{"advert_sent": k.AdvertsSent, "advert_received": k.AdvertsReceived,
			"priority0_sent": k.Priority0Sent, "priority0_received": k.Priority0Received, "became_master": k.BecameMaster,
			"transition": k.Transitions, "send_error": k.SendErrors, "action_error": k.ActionErrors} {
			counter(c.vrrpEvents, v, in.Name, ev)
		}
		for cause, v := range k.Discards {
			counter(c.vrrpDiscards, v, in.Name, cause)
		}
	}
	vips, err := c.ops.VIPs(ctx)
	if err != nil {
		c.log.Warn().Err(err).Msg("metrics: VIPs")
		return
	}
	for _, v := range vips {
		counter(c.vipPackets, v.Packets, v.Name, v.Address)
		counter(c.vipBytes, v.Bytes, v.Name, v.Address)
		counter(c.vipFlows, v.NewFlows, v.Name, v.Address)
		reals, err := c.ops.Reals(ctx, v.Name)
		if err != nil {
			c.log.Warn().Err(err).Str("vip", v.Name).Msg("metrics: reals")
			continue
		}
		for _, r := range reals {
			counter(c.realPackets, r.Packets, v.Name, r.Address)
			counter(c.realBytes, r.Bytes, v.Name, r.Address)
			counter(c.realFlows, r.NewFlows, v.Name, r.Address)
			for _, s := range []string{"up", "drain", "down", "maint"} {
				gauge(c.realState, b2f(r.State == s), v.Name, r.Address, s)
			}
			gauge(c.realWeight, float64(r.Weight), v.Name, r.Address)
			gauge(c.checkDur, r.Latency.Seconds(), v.Name, r.Address)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// MetricsHandler serves the agent's own registry: its collector plus the
// Go runtime's and the process's metrics.
func MetricsHandler(ops api.Ops, log zerolog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(ops, log), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: zerologAdapter{log}})
}

type zerologAdapter struct{ log zerolog.Logger }

func (z zerologAdapter) Println(v ...any) { z.log.Warn().Msgf("metrics: %v", v) }
