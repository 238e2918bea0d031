// Package api is the agent's control interface: HTTP+JSON over a unix
// socket, served by the agent and spoken by `director ctl` and the stats
// page.
package api

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// DefaultSocket is where the agent listens unless configured otherwise.
const DefaultSocket = "/run/director/director.sock"

// Status is the whole node at a glance.
type Status struct {
	Node       string            `json:"node"`
	Version    string            `json:"version"`
	StartedAt  time.Time         `json:"started_at"`
	Config     string            `json:"config"`
	Interfaces []Interface       `json:"interfaces"`
	VRRP       []VRRPInstance    `json:"vrrp,omitempty"`
	VIPs       int               `json:"vips"`
	RealsUp    int               `json:"reals_up"`
	Reals      int               `json:"reals"`
	Packets    map[string]uint64 `json:"packets"` // by reason: tx, pass_not_vip, drop_malformed...
}

// Interface is an interface the XDP program is attached to.
type Interface struct {
	Name      string `json:"name"`
	Mode      string `json:"mode"` // native or generic
	ProgramID uint32 `json:"program_id"`
	LinkID    uint32 `json:"link_id"`
}

// VRRPInstance is one VRRP instance's state.
type VRRPInstance struct {
	Name     string    `json:"name"`
	State    string    `json:"state"` // MASTER, BACKUP, FAULT, INIT
	Priority int       `json:"priority"`
	Base     int       `json:"base_priority"`
	Master   string    `json:"master,omitempty"`
	Since    time.Time `json:"since"`
	VRID     int       `json:"vrid"`
	// AdvertInterval is the master's advertisement interval (a backup
	// learns it from the adverts).
	AdvertInterval time.Duration `json:"advert_interval_ns"`
	// FailingTracks names the tracks lowering the priority or forcing
	// FAULT.
	FailingTracks []string     `json:"failing_tracks,omitempty"`
	Counters      VRRPCounters `json:"counters"`
}

// VRRPCounters count an instance's protocol events since the agent started.
type VRRPCounters struct {
	AdvertsSent       uint64 `json:"adverts_sent"`
	AdvertsReceived   uint64 `json:"adverts_received"`
	Priority0Sent     uint64 `json:"priority0_sent"`
	Priority0Received uint64 `json:"priority0_received"`
	BecameMaster      uint64 `json:"became_master"`
	Transitions       uint64 `json:"transitions"`
	SendErrors        uint64 `json:"send_errors"`
	ActionErrors      uint64 `json:"action_errors"`
	// Discards are received adverts dropped, by cause (ttl, version,
	// checksum, vrid, auth, interval...).
	Discards map[string]uint64 `json:"discards,omitempty"`
}

// Counters are a VIP's or a real's traffic.
type Counters struct {
	Packets  uint64 `json:"packets"`
	Bytes    uint64 `json:"bytes"`
	NewFlows uint64 `json:"new_flows"`
}

// VIP is a service.
type VIP struct {
	Name      string `json:"name"`
	Address   string `json:"address"` // 10.0.0.1:80/tcp; port 0 = every port
	Interface string `json:"interface"`
	Scheduler string `json:"scheduler"` // maglev or source
	Mode      string `json:"mode"`      // l4 or local
	AllDown   string `json:"on_all_down"`
	Reals     int    `json:"reals"`
	RealsUp   int    `json:"reals_up"`
	Counters
}

// Real is a real server of a VIP.
type Real struct {
	VIP     string `json:"vip"`
	Address string `json:"address"`
	// State is what the dataplane does with it: up (new and existing
	// flows), drain (existing flows only), down (none), maint (none: put
	// in maintenance by the operator).
	State   string `json:"state"`
	Weight  uint32 `json:"weight"`
	Drained bool   `json:"drained"`
	Maint   bool   `json:"maint"`
	Healthy bool   `json:"healthy"`
	MAC     string `json:"mac,omitempty"`
	Sorry   bool   `json:"sorry_server,omitempty"`
	// Why the real is where it is: the last check's cause, or
	// "unresolved: ..." for a real whose MAC is unknown.
	Cause     string        `json:"cause,omitempty"`
	Since     time.Time     `json:"since"`
	LastCheck string        `json:"last_check,omitempty"`
	Latency   time.Duration `json:"latency_ns"`
	// CheckStatus is HAProxy's check_status of the last check (L4OK,
	// L7STS, PROCERR, ...) for the layer of its checker, CheckCode its
	// HTTP status or exit code; empty before the first check.
	CheckStatus string `json:"check_status,omitempty"`
	CheckCode   int    `json:"check_code,omitempty"`
	Counters
}

// L7Server is a server of a backend of the HTTP tier (the l7 section).
type L7Server struct {
	Backend string `json:"backend"`
	Server  string `json:"server"`
	Address string `json:"address"`
	// State is HAProxy's word: UP, DOWN, DRAIN (drained or weight 0),
	// MAINT (in maintenance) or "no check" (up, not checked).
	State string `json:"state"`
	// Weight is the current weight, which a drain keeps.
	Weight  uint32 `json:"weight"`
	Drained bool   `json:"drained"`
	Maint   bool   `json:"maint"`
	// Healthy is the checks' verdict, true for a server not checked.
	Healthy bool `json:"healthy"`
	// Sessions: requests in progress and in all.
	SessCur   int64  `json:"scur"`
	SessTotal uint64 `json:"stot"`
	// CheckStatus is HAProxy's check_status (L7OK, L4CON, ...), CheckCode
	// the HTTP status, CheckDesc the cause; empty when not checked.
	CheckStatus string `json:"check_status,omitempty"`
	CheckCode   int    `json:"check_code,omitempty"`
	CheckDesc   string `json:"check_desc,omitempty"`
}

// L7ServerState is what an operator set on a server of the HTTP tier, as
// the state file keeps it across a restart.
type L7ServerState struct {
	Backend string `json:"backend"`
	Server  string `json:"server"`
	Drain   bool   `json:"drain,omitempty"`
	Maint   bool   `json:"maint,omitempty"`
	Weight  uint32 `json:"weight"`
	// ConfigWeight is the weight the config gave the server then: a
	// config that gives it another one since wins over Weight, as it does
	// across a reload.
	ConfigWeight uint32 `json:"config_weight"`
}

// AddReal is the body of POST /v1/vips/{vip}/reals.
type AddReal struct {
	Address string  `json:"address"`
	Weight  *uint32 `json:"weight,omitempty"`
}

// SetWeight is the body of PUT .../weight.
type SetWeight struct {
	Weight uint32 `json:"weight"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
}

// Errors the agent returns, mapped to HTTP statuses.
var (
	ErrNotFound = errors.New("not found")      // 404
	ErrConflict = errors.New("already exists") // 409
	ErrInvalid  = errors.New("invalid")        // 400
)

// Ops is what the agent does for ctl. Every change is applied to the
// dataplane before it returns, or not at all.
type Ops interface {
	Status(ctx context.Context) (Status, error)
	VIPs(ctx context.Context) ([]VIP, error)
	Reals(ctx context.Context, vip string) ([]Real, error)
	AddReal(ctx context.Context, vip string, addr netip.Addr, weight *uint32) error
	RemoveReal(ctx context.Context, vip string, addr netip.Addr) error
	DrainReal(ctx context.Context, vip string, addr netip.Addr) error
	// MaintReal puts a real in maintenance (on) or takes it out: in
	// maintenance it gets no traffic at all, its existing flows are cut
	// (HAProxy's "set server state maint").
	MaintReal(ctx context.Context, vip string, addr netip.Addr, on bool) error
	// EnableReal undoes DrainReal and MaintReal (HAProxy's "ready").
	EnableReal(ctx context.Context, vip string, addr netip.Addr) error
	SetWeight(ctx context.Context, vip string, addr netip.Addr, weight uint32) error
	Reload(ctx context.Context) error
	L7Ops
}

// L7Ops are the operators' actions on the servers of the HTTP tier, by
// backend and server name, as HAProxy's "set server BACKEND/SERVER state
// ready|drain|maint" and "set server ... weight N". A node without an l7
// section answers ErrNotFound. The changes last until the server leaves
// the config, across reloads.
type L7Ops interface {
	L7Servers(ctx context.Context) ([]L7Server, error)
	// DrainL7Server: no new clients; clients stuck to it by a cookie stay.
	DrainL7Server(ctx context.Context, backend, server string) error
	// MaintL7Server puts a server in maintenance (on) or takes it out (a
	// drain stays): no requests at all, not even of sticky clients;
	// checks go on but do not bring it back.
	MaintL7Server(ctx context.Context, backend, server string, on bool) error
	// EnableL7Server undoes drain and maintenance (HAProxy's "ready").
	EnableL7Server(ctx context.Context, backend, server string) error
	// SetL7Weight sets the weight, 0 to 256 (0 drains).
	SetL7Weight(ctx context.Context, backend, server string, weight uint32) error
}
