package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/directorlb/director/director"
	"github.com/directorlb/director/director/health"
	"github.com/directorlb/director/loader"
	"github.com/directorlb/director/vrrp"
)

// Defaults of the top-level settings.
const (
	DefaultControlSocket = "/run/director/director.sock"
	// DefaultStateSuffix is appended to the config file's path to name the
	// state file when state_file is not set.
	DefaultStateSuffix = ".state"
	// DefaultWeight is a real's weight when none is given.
	DefaultWeight = 1
)

// Config is a validated configuration: every value typed, every default
// applied. Two Configs loaded from the same file are Equal.
type Config struct {
	// File is the path the configuration was read from.
	File       string
	Interfaces []Interface
	// ControlSocket is the path of the unix socket `director ctl` talks to.
	ControlSocket string
	// StateFile keeps the operator's changes made with ctl (drained reals,
	// weights) across restarts; by default File + DefaultStateSuffix.
	StateFile string
	// Metrics is where Prometheus metrics are served; the zero value means
	// not at all.
	Metrics  netip.AddrPort
	HashSeed uint32
	// Sizes of the dataplane's maps, defaults applied.
	Sizes loader.Sizes
	// VIPs in file order; their Keys are unique.
	VIPs []VIP
	// VRRP instances in file order.
	VRRP []VRRPInstance
	// L7 is the HTTP tier, nil if the file has no l7 section.
	L7 *L7
	// Stats is the stats page; nil when not configured.
	Stats *Stats
}

// Interface is an interface the XDP program is attached to.
type Interface struct {
	Name    string
	XDPMode loader.AttachMode
}

// Scheduler picks a VIP's real for a new flow.
type Scheduler int

const (
	// Maglev hashes the 5-tuple into the VIP's Maglev table (default).
	Maglev Scheduler = iota
	// Source hashes the client address alone: source affinity.
	Source
)

func (s Scheduler) String() string {
	switch s {
	case Maglev:
		return "maglev"
	case Source:
		return "source"
	}
	return "Scheduler(" + strconv.Itoa(int(s)) + ")"
}

// Mode is what a VIP's packets are for.
type Mode int

const (
	// L4 forwards them to the VIP's reals by direct routing (default).
	L4 Mode = iota
	// Local hands them to the local stack: the L7 tier on this host.
	Local
)

func (m Mode) String() string {
	switch m {
	case L4:
		return "l4"
	case Local:
		return "local"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// VIP is a service. Key identifies it across reloads.
type VIP struct {
	// Name is for logs and health-check keys; by default Key.String().
	Name      string
	Key       loader.VIPKey
	Interface string
	Scheduler Scheduler
	Mode      Mode
	AllDown   director.AllDownPolicy
	// SorryServer is set under the director.Sorry policy only.
	SorryServer netip.Addr
	// Reals in file order; their addresses are unique. None for a Local VIP.
	Reals []Real
}

// Real is a real server of a VIP. Its address identifies it in the VIP.
type Real struct {
	Addr   netip.Addr
	Weight uint32
	// Check is the real's health check, merged: built-in defaults, then
	// check_defaults, then the VIP's check, then the real's own.
	Check Check
}

// CheckType is a kind of health check.
type CheckType int

// The kinds of checks.
const (
	// NoCheck: the real is taken as always up.
	NoCheck CheckType = iota
	TCPCheck
	HTTPCheck
	HTTPSCheck
	// CommandCheck runs a program (keepalived MISC_CHECK).
	CommandCheck
)

func (t CheckType) String() string {
	switch t {
	case NoCheck:
		return "none"
	case TCPCheck:
		return "tcp"
	case HTTPCheck:
		return "http"
	case HTTPSCheck:
		return "https"
	case CommandCheck:
		return "command"
	}
	return "CheckType(" + strconv.Itoa(int(t)) + ")"
}

// Check is one real's health check, ready to run.
type Check struct {
	Type CheckType
	// Target is where the probes go: the real's address and the check's
	// port (by default the VIP's). Port 0 only for a command check of a VIP
	// that serves every port.
	Target       netip.AddrPort
	Interval     time.Duration
	Timeout      time.Duration
	FastInterval time.Duration // 0: Interval
	DownInterval time.Duration // 0: Interval
	Rise, Fall   int
	StartDown    bool
	HTTP         HTTPCheckSpec // HTTPCheck and HTTPSCheck
	Command      []string      // CommandCheck: argv, no shell
}

// HTTPCheckSpec is what an HTTP(S) check asks and expects.
type HTTPCheckSpec struct {
	Method     string // GET or HEAD
	Path       string
	Host       string // Host header; empty: the target address
	Expect     health.StatusSet
	ExpectBody string
	// ServerName and InsecureSkipVerify: HTTPS only.
	ServerName         string
	InsecureSkipVerify bool
}

// Checker builds the checker that runs c; nil for NoCheck.
func (c Check) Checker() (health.Checker, error) {
	switch c.Type {
	case NoCheck:
		return nil, nil
	case TCPCheck:
		return health.NewTCPChecker(c.Target.String())
	case HTTPCheck, HTTPSCheck:
		return health.NewHTTPChecker(health.HTTPConfig{
			Addr:               c.Target.String(),
			TLS:                c.Type == HTTPSCheck,
			Method:             c.HTTP.Method,
			Path:               c.HTTP.Path,
			Host:               c.HTTP.Host,
			Expect:             slices.Clone(c.HTTP.Expect),
			ExpectBody:         c.HTTP.ExpectBody,
			ServerName:         c.HTTP.ServerName,
			InsecureSkipVerify: c.HTTP.InsecureSkipVerify,
		})
	case CommandCheck:
		cc := health.CommandConfig{Argv: slices.Clone(c.Command)}
		if c.Target.Port() != 0 {
			cc.Addr = c.Target.String()
		}
		return health.NewCommandChecker(cc)
	}
	return nil, fmt.Errorf("config: unknown check type %v", c.Type)
}

// HealthTarget is the health.Target for c under key; for NoCheck, ok is
// false: there is nothing to monitor.
func (c Check) HealthTarget(key string) (t health.Target, ok bool, err error) {
	if c.Type == NoCheck {
		return health.Target{}, false, nil
	}
	ch, err := c.Checker()
	if err != nil {
		return health.Target{}, false, err
	}
	return health.Target{
		Key:          key,
		Checker:      ch,
		Interval:     c.Interval,
		Timeout:      c.Timeout,
		FastInterval: c.FastInterval,
		DownInterval: c.DownInterval,
		Rise:         c.Rise,
		Fall:         c.Fall,
		StartDown:    c.StartDown,
	}, true, nil
}

// Equal reports whether c and o check the same way.
func (c Check) Equal(o Check) bool {
	return c.Type == o.Type && c.Target == o.Target &&
		c.Interval == o.Interval && c.Timeout == o.Timeout &&
		c.FastInterval == o.FastInterval && c.DownInterval == o.DownInterval &&
		c.Rise == o.Rise && c.Fall == o.Fall && c.StartDown == o.StartDown &&
		c.HTTP.Equal(o.HTTP) && slices.Equal(c.Command, o.Command)
}

// Equal reports whether h and o are the same.
func (h HTTPCheckSpec) Equal(o HTTPCheckSpec) bool {
	return h.Method == o.Method && h.Path == o.Path && h.Host == o.Host &&
		slices.Equal(h.Expect, o.Expect) && h.ExpectBody == o.ExpectBody &&
		h.ServerName == o.ServerName && h.InsecureSkipVerify == o.InsecureSkipVerify
}

// Spec is the real as the balancer takes it. It starts healthy unless its
// check starts down.
func (r Real) Spec() director.RealSpec {
	return director.RealSpec{Addr: r.Addr, Weight: r.Weight, Healthy: !r.Check.StartDown}
}

// Equal reports whether r and o are the same.
func (r Real) Equal(o Real) bool {
	return r.Addr == o.Addr && r.Weight == o.Weight && r.Check.Equal(o.Check)
}

// ServiceSpec is the VIP as the balancer runs it.
func (v *VIP) ServiceSpec() director.ServiceSpec {
	return director.ServiceSpec{
		Key:         v.Key,
		Source:      v.Scheduler == Source,
		Local:       v.Mode == Local,
		AllDown:     v.AllDown,
		SorryServer: v.SorryServer,
	}
}

// SorrySpec is the VIP's sorry server as the balancer takes it; ok is false
// when it has none.
func (v *VIP) SorrySpec() (director.RealSpec, bool) {
	if !v.SorryServer.IsValid() {
		return director.RealSpec{}, false
	}
	return director.RealSpec{Addr: v.SorryServer, Weight: 1, Healthy: true, Sorry: true}, true
}

// Real returns the VIP's real at addr.
func (v *VIP) Real(addr netip.Addr) (*Real, bool) {
	for i := range v.Reals {
		if v.Reals[i].Addr == addr {
			return &v.Reals[i], true
		}
	}
	return nil, false
}

// HealthKey names the health target of one of the VIP's reals:
// "<vip name>/<real address>".
func (v *VIP) HealthKey(r Real) string { return v.Name + "/" + r.Addr.String() }

// Equal reports whether v and o are the same, reals included (in any order).
func (v *VIP) Equal(o *VIP) bool {
	if v.Name != o.Name || v.Key != o.Key || v.Interface != o.Interface ||
		v.Scheduler != o.Scheduler || v.Mode != o.Mode || v.AllDown != o.AllDown ||
		v.SorryServer != o.SorryServer || len(v.Reals) != len(o.Reals) {
		return false
	}
	for _, r := range v.Reals {
		or, ok := o.Real(r.Addr)
		if !ok || !r.Equal(*or) {
			return false
		}
	}
	return true
}

// VIP returns the VIP with key k.
func (c *Config) VIP(k loader.VIPKey) (*VIP, bool) {
	for i := range c.VIPs {
		if c.VIPs[i].Key == k {
			return &c.VIPs[i], true
		}
	}
	return nil, false
}

// VRRPInstance is one VRRP instance. Config is validated by vrrp's own
// Validate, defaults filled in; it holds the interface and script tracks.
// The agent's own health, when tracked, is added by Build.
type VRRPInstance struct {
	vrrp.Config
	// TrackAgent: the agent's health (dataplane attached, a real up per
	// VIP) is tracked with weight AgentWeight.
	TrackAgent  bool
	AgentWeight int
}

// Build returns the instance's vrrp.Config with agent, the agent's health
// check, tracked if TrackAgent says so. agent may be nil if not.
func (v VRRPInstance) Build(agent vrrp.Check) vrrp.Config {
	c := v.Config
	c.Tracks = slices.Clone(c.Tracks)
	c.VIPs = slices.Clone(c.VIPs)
	c.Peers = slices.Clone(c.Peers)
	c.Notify = slices.Clone(c.Notify)
	if v.TrackAgent && agent != nil {
		c.Tracks = append(c.Tracks, vrrp.Track{Check: agent, Weight: v.AgentWeight})
	}
	return c
}
