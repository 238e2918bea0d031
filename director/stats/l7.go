package stats

import (
	"context"
	"time"
)

// L7Source gives the HTTP tier's statistics as HAProxy shows them: per
// proxy a frontend row, a row per server and a backend row. The l7 package
// is adapted to it by its owner; tests use a fake.
type L7Source interface {
	L7Stats(ctx context.Context) ([]Proxy, error)
}

// Proxy is one L7 listener with its backend, as a block of HAProxy's page.
type Proxy struct {
	Name     string `json:"name"`
	Frontend *Row   `json:"frontend,omitempty"`
	Servers  []Row  `json:"servers,omitempty"`
	Backend  *Row   `json:"backend,omitempty"`
}

// RowKind is HAProxy's "type" column.
type RowKind int

// The kinds of rows, numbered as HAProxy's CSV numbers them.
const (
	FrontendRow RowKind = 0
	BackendRow  RowKind = 1
	ServerRow   RowKind = 2
)

// Row is one line of HAProxy's stats: the fields its page and CSV show for
// a frontend, a backend or a server. Fields a kind of row does not have are
// left zero and shown empty.
type Row struct {
	// Name is the server's name; FRONTEND and BACKEND rows are named so
	// whatever this says.
	Name string  `json:"name"`
	Kind RowKind `json:"kind"`
	// Status: OPEN (frontend), UP, DOWN, DRAIN, MAINT, "no check".
	Status string `json:"status"`
	// Weight: the server's; for a backend, the sum of its active servers'.
	Weight uint32 `json:"weight"`
	Active int    `json:"act"` // active servers up (backend), 1 for an active server
	Backup int    `json:"bck"`

	QueueCur  uint64 `json:"qcur"`
	QueueMax  uint64 `json:"qmax"`
	SessCur   uint64 `json:"scur"`
	SessMax   uint64 `json:"smax"`
	SessLimit uint64 `json:"slim"`
	SessTotal uint64 `json:"stot"`
	// SessRate and SessRateMax: sessions per second, now and at most.
	SessRate    uint64 `json:"rate"`
	SessRateMax uint64 `json:"rate_max"`
	// LBTotal: times the server was picked by the balancer.
	LBTotal  uint64 `json:"lbtot"`
	BytesIn  uint64 `json:"bin"`
	BytesOut uint64 `json:"bout"`

	DeniedReq    uint64 `json:"dreq"`
	DeniedResp   uint64 `json:"dresp"`
	ErrReq       uint64 `json:"ereq"`
	ErrConn      uint64 `json:"econ"`
	ErrResp      uint64 `json:"eresp"`
	Retries      uint64 `json:"wretr"`
	Redispatches uint64 `json:"wredis"`

	// Responses by status class: 1xx, 2xx, 3xx, 4xx, 5xx, other.
	Responses  [6]uint64 `json:"hrsp"`
	ReqRate    uint64    `json:"req_rate"`
	ReqRateMax uint64    `json:"req_rate_max"`
	ReqTotal   uint64    `json:"req_tot"`

	// Checks: HAProxy's check_status (L4OK, L7STS, ...), the HTTP code,
	// the last check's duration, failed checks and UP->DOWN transitions.
	CheckStatus   string        `json:"check_status,omitempty"`
	CheckCode     int           `json:"check_code,omitempty"`
	CheckDuration time.Duration `json:"check_duration_ns,omitempty"`
	CheckFails    uint64        `json:"chkfail"`
	CheckDowns    uint64        `json:"chkdown"`
	// Since is when Status last changed.
	Since time.Time `json:"since"`
}
