package l7

import (
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/directorlb/director/director/health"
)

// Stats is one line of HAProxy's "show stat" (management guide, 9.1 "CSV
// format"): a frontend, a backend or a server, with the CSV's column
// names as JSON keys. Counters count from the frontend's or backend's
// creation; the current values (qcur, scur, rate) are the snapshot's.
//
// Sessions are HAProxy's: a frontend's are client connections, a
// backend's and a server's are requests sent to them, from assignment to
// response.
type Stats struct {
	PxName string `json:"pxname"`
	SvName string `json:"svname"` // FRONTEND, BACKEND or the server's name
	// QCur and QMax are requests waiting for a connection to a server at
	// its MaxConns (servers only).
	QCur int64  `json:"qcur"`
	QMax int64  `json:"qmax"`
	SCur int64  `json:"scur"`
	SMax int64  `json:"smax"`
	SLim int64  `json:"slim"`
	STot uint64 `json:"stot"`
	// BIn and BOut are bytes from and to clients.
	BIn    uint64 `json:"bin"`
	BOut   uint64 `json:"bout"`
	DReq   uint64 `json:"dreq"`
	DResp  uint64 `json:"dresp"`
	EReq   uint64 `json:"ereq"`   // invalid or aborted requests (frontends)
	ECon   uint64 `json:"econ"`   // requests that failed to connect to a server
	EResp  uint64 `json:"eresp"`  // server errors and timeouts, srv_abrt included
	WRetr  uint64 `json:"wretr"`  // connection retries
	WRedis uint64 `json:"wredis"` // redispatches; a server's count the moves away from it
	// Status is OPEN (frontends), UP or DOWN; a server's may also be
	// MAINT (in maintenance), DRAIN (drained, or weight 0) or "no check"
	// (up and not checked).
	Status string `json:"status"`
	// Weight is a server's current weight; a backend's the sum of those
	// of its servers that take new sessions.
	Weight int `json:"weight"`
	Act    int `json:"act"` // servers up and not in maintenance (backend), 1 (server)
	Bck    int `json:"bck"`
	// ChkDown counts transitions to DOWN or MAINT (of the whole backend
	// for a backend); LastChg is the seconds since the last transition
	// and Downtime the seconds spent DOWN or MAINT.
	ChkDown  uint64 `json:"chkdown"`
	LastChg  int64  `json:"lastchg"`
	Downtime int64  `json:"downtime"`
	LbTot    uint64 `json:"lbtot"`
	Type     int    `json:"type"` // StatsFrontend, StatsBackend or StatsServer
	// Rate is sessions per second over the last second, RateMax the
	// highest seen.
	Rate    uint64 `json:"rate"`
	RateMax uint64 `json:"rate_max"`
	// CheckStatus is HAProxy's code of the last health check (L4OK,
	// L7STS, L4CON, ...), CheckCode its HTTP status, CheckDuration its
	// milliseconds and CheckDesc its cause; empty for servers not checked.
	CheckStatus   string `json:"check_status,omitempty"`
	CheckCode     int    `json:"check_code,omitempty"`
	CheckDuration int64  `json:"check_duration,omitempty"`
	HRsp1xx       uint64 `json:"hrsp_1xx"`
	HRsp2xx       uint64 `json:"hrsp_2xx"`
	HRsp3xx       uint64 `json:"hrsp_3xx"`
	HRsp4xx       uint64 `json:"hrsp_4xx"`
	HRsp5xx       uint64 `json:"hrsp_5xx"`
	HRspOther     uint64 `json:"hrsp_other"`
	// ReqRate, ReqRateMax and ReqTot count HTTP requests (frontends).
	ReqRate    uint64 `json:"req_rate"`
	ReqRateMax uint64 `json:"req_rate_max"`
	ReqTot     uint64 `json:"req_tot"`
	CliAbrt    uint64 `json:"cli_abrt"`
	SrvAbrt    uint64 `json:"srv_abrt"`
	// LastSess is the seconds since the last request was assigned, -1 if
	// none was.
	LastSess  int64  `json:"lastsess"`
	CheckDesc string `json:"check_desc,omitempty"`
	Addr      string `json:"addr,omitempty"`
	Cookie    string `json:"cookie,omitempty"`
	Mode      string `json:"mode"`
	Algo      string `json:"algo,omitempty"`
}

// Values of Stats.Type, HAProxy's.
const (
	StatsFrontend = 0
	StatsBackend  = 1
	StatsServer   = 2
)

// BackendStats is a backend's line and its servers'.
type BackendStats struct {
	Stats
	Servers []Stats `json:"servers"`
}

// Rows returns the lines in HAProxy's order: the servers, then BACKEND.
func (b BackendStats) Rows() []Stats { return append(append([]Stats(nil), b.Servers...), b.Stats) }

// counters are what frontends, backends and servers count alike, with
// atomics: the request path takes no lock.
type counters struct {
	cur, max  atomic.Int64
	tot       atomic.Uint64
	rate      rateCounter
	bin, bout atomic.Uint64
	hrsp      [6]atomic.Uint64 // 1xx..5xx, other
	ereq      atomic.Uint64
	econ      atomic.Uint64
	eresp     atomic.Uint64
	wretr     atomic.Uint64
	wredis    atomic.Uint64
	cliAbrt   atomic.Uint64
	srvAbrt   atomic.Uint64
	lastSess  atomic.Int64 // Unix seconds, 0: never
}

// enter counts a new session at second sec and returns the current number.
func (c *counters) enter(sec int64) int64 {
	c.tot.Add(1)
	c.rate.add(sec)
	if c.lastSess.Load() != sec {
		c.lastSess.Store(sec)
	}
	n := c.cur.Add(1)
	raiseMax(&c.max, n)
	return n
}

func (c *counters) leave() { c.cur.Add(-1) }

func (c *counters) status(code int) {
	i := code/100 - 1
	if i < 0 || i > 4 {
		i = 5
	}
	c.hrsp[i].Add(1)
}

func (c *counters) fill(s *Stats, now time.Time) {
	s.SCur, s.SMax, s.STot = c.cur.Load(), c.max.Load(), c.tot.Load()
	s.Rate, s.RateMax = c.rate.read(now)
	s.BIn, s.BOut = c.bin.Load(), c.bout.Load()
	s.EReq, s.ECon, s.EResp = c.ereq.Load(), c.econ.Load(), c.eresp.Load()
	s.WRetr, s.WRedis = c.wretr.Load(), c.wredis.Load()
	s.CliAbrt, s.SrvAbrt = c.cliAbrt.Load(), c.srvAbrt.Load()
	s.HRsp1xx, s.HRsp2xx, s.HRsp3xx = c.hrsp[0].Load(), c.hrsp[1].Load(), c.hrsp[2].Load()
	s.HRsp4xx, s.HRsp5xx, s.HRspOther = c.hrsp[3].Load(), c.hrsp[4].Load(), c.hrsp[5].Load()
	s.LastSess = -1
	if t := c.lastSess.Load(); t != 0 {
		s.LastSess = max(now.Unix()-t, 0)
	}
	s.Mode = "http"
}

func raiseMax(m *atomic.Int64, v int64) {
	for {
		old := m.Load()
		if v <= old || m.CompareAndSwap(old, v) {
			return
		}
	}
}

// rateCounter counts events per second, as HAProxy's freq_ctr: the count
// of the current second and of the one before. An event costs a load and
// an add; the second turns over with a compare-and-swap.
type rateCounter struct {
	sec       atomic.Int64 // the second cur counts
	cur, prev atomic.Uint64
	max       atomic.Uint64 // highest count of a whole second
}

func (r *rateCounter) add(sec int64) {
	if s := r.sec.Load(); s != sec {
		r.turn(s, sec)
	}
	r.cur.Add(1)
}

// turn moves from second s to sec. Events that race with it may land in
// the second before; a late event (sec < s) counts in the current one.
func (r *rateCounter) turn(s, sec int64) {
	if sec < s || !r.sec.CompareAndSwap(s, sec) {
		return
	}
	n := r.cur.Swap(0)
	raiseMaxU(&r.max, n)
	if sec != s+1 {
		n = 0
	}
	r.prev.Store(n)
}

// read returns the rate over the last second at now, as HAProxy reckons
// it (the current second's count plus the share of the previous one that
// the sliding second still covers), and the highest rate seen.
func (r *rateCounter) read(now time.Time) (rate, highest uint64) {
	sec, left := now.Unix(), uint64(time.Second-time.Duration(now.Nanosecond()))
	s, cur, prev := r.sec.Load(), r.cur.Load(), r.prev.Load()
	switch s {
	case sec:
		rate = cur + prev*left/uint64(time.Second)
	case sec - 1:
		rate = cur * left / uint64(time.Second)
	}
	highest = r.max.Load()
	if s < sec && cur > highest {
		highest = cur // a whole second not turned over yet
	}
	return rate, max(highest, rate)
}

func raiseMaxU(m *atomic.Uint64, v uint64) {
	for {
		old := m.Load()
		if v <= old || m.CompareAndSwap(old, v) {
			return
		}
	}
}

// upDown is the history of a server's or a backend's state: HAProxy's
// lastchg, downtime and chkdown.
type upDown struct {
	since     time.Time // last change, or creation
	downSince time.Time // zero while up
	downtime  time.Duration
	downs     uint64
}

func (u *upDown) change(up bool, now time.Time) {
	u.since = now
	if up {
		if !u.downSince.IsZero() {
			u.downtime += now.Sub(u.downSince)
			u.downSince = time.Time{}
		}
		return
	}
	u.downs++
	u.downSince = now
}

func (u *upDown) fill(s *Stats, now time.Time) {
	s.ChkDown = u.downs
	s.LastChg = int64(now.Sub(u.since) / time.Second)
	d := u.downtime
	if !u.downSince.IsZero() {
		d += now.Sub(u.downSince)
	}
	s.Downtime = int64(d / time.Second)
}

type frontendStats struct {
	counters
	reqTot  atomic.Uint64
	reqRate rateCounter
}

type backendStats struct {
	counters
	monitor atomic.Pointer[health.Monitor] // for the check columns

	mu sync.Mutex // guards the state changes of the backend and its servers
	up bool       // a server is up
	ud upDown
}

type serverStats struct {
	counters
	maxConns int64
	qmax     atomic.Int64
	ud       upDown // guarded by backendStats.mu
}

// load is the server's requests in progress, queued ones included: what
// leastconn and random(N) compare.
func (s *server) load() int64 { return s.st.cur.Load() }

// enter counts a request assigned to the server: above maxConns it waits
// for a connection, which HAProxy counts as queued rather than current.
func (s *serverStats) enter(sec int64) {
	n := s.counters.enter(sec)
	if q := n - s.maxConns; q > 0 {
		raiseMax(&s.qmax, q)
	}
}

func (b *Backend) initStats(now time.Time) {
	b.st.up = true
	b.st.ud.since = now
	for _, s := range b.servers {
		s.st.ud.since = now
		s.st.maxConns = int64(b.cfg.MaxConns)
	}
}

// setUp records a server's health verdict.
func (b *Backend) setUp(s *server, up bool, now time.Time) {
	b.changeState(s, now, func() { s.up.Store(up) })
}

// changeState applies change (to s.up or s.maint) under the state lock
// and records the transitions of the server, serving or not, and of the
// backend, with a server serving or not.
func (b *Backend) changeState(s *server, now time.Time, change func()) {
	b.st.mu.Lock()
	defer b.st.mu.Unlock()
	was := s.serving()
	change()
	if s.serving() == was {
		return
	}
	s.st.ud.change(!was, now)
	live := false
	for _, o := range b.servers {
		live = live || o.serving()
	}
	if live != b.st.up {
		b.st.up = live
		b.st.ud.change(live, now)
	}
}

// SetMonitor makes Stats report the health checks of m: its results for
// the keys of Targets. CheckHealth calls it; a caller that runs its own
// Monitor with Targets and Observe may too.
func (b *Backend) SetMonitor(m *health.Monitor) { b.st.monitor.Store(m) }

// The backend's side of the request path: Backend.serve and proxy call
// these, and they keep the counters and tx (which may be nil).

// assign counts a request assigned to server s.
func (b *Backend) assign(s *server, tx *txn, sec int64) {
	s.st.enter(sec)
	if tx != nil {
		tx.srv = s
	}
}

// retry counts a retry after a failure to connect to s, and a redispatch.
func (b *Backend) retry(s *server, tx *txn, redispatch bool) {
	s.st.wretr.Add(1)
	b.st.wretr.Add(1)
	if tx != nil {
		tx.retries++
	}
	if redispatch {
		s.st.wredis.Add(1)
		b.st.wredis.Add(1)
		s.st.econ.Add(1)
		b.st.econ.Add(1)
		s.st.leave()
	}
}

// noServer counts a request that found no live server.
func (b *Backend) noServer(tx *txn) {
	b.st.econ.Add(1)
	if tx != nil {
		tx.srv = nil
		tx.setTerm('S', 'C')
	}
}

// failed counts a request whose last try on s failed with err, and says
// in tx how it ended.
func (b *Backend) failed(s *server, err error, tx *txn) {
	s.st.leave()
	who := cause(err, 'S')
	switch {
	case isConnectError(err):
		s.st.econ.Add(1)
		b.st.econ.Add(1)
		tx.setTerm(who, 'C')
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		tx.setTerm('s', 'Q')
	case tx != nil && tx.rerr != nil:
		// The client's request body did not come: the client's fault.
		s.st.cliAbrt.Add(1)
		b.st.cliAbrt.Add(1)
		tx.setTerm(clientCause(tx.rerr), 'D')
	case tx != nil && tx.gotHeaders:
		// The body did not come whole.
		s.st.srvAbrt.Add(1)
		b.st.srvAbrt.Add(1)
		s.st.eresp.Add(1)
		b.st.eresp.Add(1)
		tx.setTerm(who, 'D')
	default:
		s.st.eresp.Add(1)
		b.st.eresp.Add(1)
		tx.setTerm(who, 'H')
	}
}

// done counts the response of a request, from server s or, if nil, the
// backend's own.
func (b *Backend) done(code int, s *server, tx *txn) {
	b.st.status(code)
	b.st.leave()
	if s != nil {
		s.st.status(code)
		s.st.leave()
	}
	if tx != nil {
		tx.be, tx.fromServer = b, s != nil
	}
}

// Stats returns a snapshot of the frontend's counters.
func (f *Frontend) Stats() Stats {
	now := time.Now()
	s := Stats{PxName: f.name, SvName: "FRONTEND", Type: StatsFrontend, Status: "OPEN"}
	f.st.fill(&s, now)
	s.SLim = int64(f.srv.Concurrency)
	if s.SLim == 0 {
		s.SLim = fasthttp.DefaultConcurrency
	}
	s.ReqTot = f.st.reqTot.Load()
	s.ReqRate, s.ReqRateMax = f.st.reqRate.read(now)
	return s
}

// Stats returns a snapshot of the backend's counters and its servers'.
func (b *Backend) Stats() BackendStats {
	now := time.Now()
	m := b.st.monitor.Load()
	bs := BackendStats{Stats: Stats{PxName: b.cfg.Name, SvName: "BACKEND", Type: StatsBackend, Algo: "roundrobin"}}
	if b.cfg.Cookie != nil {
		bs.Cookie = b.cfg.Cookie.Name
	}
	b.st.fill(&bs.Stats, now)
	b.st.mu.Lock()
	defer b.st.mu.Unlock()
	b.st.ud.fill(&bs.Stats, now)
	bs.Status = "DOWN"
	if b.st.up {
		bs.Status = "UP"
	}
	for _, s := range b.servers {
		ss := b.serverStats(s, m, now)
		if s.serving() {
			bs.Act++
			if !s.drain.Load() {
				bs.Weight += ss.Weight
			}
		}
		bs.SLim += ss.SLim
		bs.LbTot += ss.STot
		bs.Servers = append(bs.Servers, ss)
	}
	return bs
}

// serverStats is a server's line; b.st.mu is held. Weight is the current
// weight, SetWeight's, which a drain keeps (the backend's line counts
// only the servers that take new sessions).
func (b *Backend) serverStats(s *server, m *health.Monitor, now time.Time) Stats {
	ss := Stats{PxName: b.cfg.Name, SvName: s.name, Type: StatsServer, Addr: s.addr,
		Weight: int(s.weight.Load()), Act: 1, SLim: s.st.maxConns}
	if b.cfg.Cookie != nil {
		ss.Cookie = s.cookie
	}
	s.st.fill(&ss, now)
	s.st.ud.fill(&ss, now)
	ss.QCur = max(ss.SCur-s.st.maxConns, 0)
	ss.SCur = min(ss.SCur, s.st.maxConns)
	ss.SMax = min(ss.SMax, s.st.maxConns)
	ss.QMax = s.st.qmax.Load()
	ss.LbTot = ss.STot
	ss.Status = s.status()
	if m != nil && s.checked {
		if st, ok := m.Status(b.healthKey(s.name)); ok {
			checkColumns(&ss, st)
		}
	}
	return ss
}

// status is HAProxy's word for the server's state: the operator's
// maintenance first, then the checks' verdict, then a drain (by the
// admin state or weight 0) of a server that is up.
func (s *server) status() string {
	switch {
	case s.maint.Load():
		return "MAINT"
	case !s.up.Load():
		return "DOWN"
	case s.drain.Load() || s.weight.Load() == 0:
		return "DRAIN"
	case !s.checked:
		return "no check"
	}
	return "UP"
}

// checkColumns fills the check columns from a health status, with
// HAProxy's check_status codes for the layer of the check.
func checkColumns(s *Stats, st health.Status) {
	s.CheckStatus, s.CheckCode = st.CheckStatus()
	if st.Checks == 0 {
		return
	}
	s.CheckDuration = st.Last.Latency.Milliseconds()
	s.CheckDesc = st.Last.Cause.String()
}

// The CSV columns, in HAProxy's order up to "algo", with the types of
// line that have a value in each (f: frontend, b: backend, s: server)
// and how to write it. A column this package has no value for is left
// empty, as HAProxy leaves those that do not apply.
const (
	colF = 1 << StatsFrontend
	colB = 1 << StatsBackend
	colS = 1 << StatsServer
)

type column struct {
	name  string
	types int
	val   func(dst []byte, s *Stats) []byte
}

func num[T int | int64 | uint64](f func(*Stats) T) func([]byte, *Stats) []byte {
	return func(dst []byte, s *Stats) []byte { return strconv.AppendInt(dst, int64(f(s)), 10) }
}

func str(f func(*Stats) string) func([]byte, *Stats) []byte {
	return func(dst []byte, s *Stats) []byte { return appendCSV(dst, f(s)) }
}

var columns = []column{
	{"pxname", colF | colB | colS, str(func(s *Stats) string { return s.PxName })},
	{"svname", colF | colB | colS, str(func(s *Stats) string { return s.SvName })},
	{"qcur", colB | colS, num(func(s *Stats) int64 { return s.QCur })},
	{"qmax", colB | colS, num(func(s *Stats) int64 { return s.QMax })},
	{"scur", colF | colB | colS, num(func(s *Stats) int64 { return s.SCur })},
	{"smax", colF | colB | colS, num(func(s *Stats) int64 { return s.SMax })},
	{"slim", colF | colB | colS, num(func(s *Stats) int64 { return s.SLim })},
	{"stot", colF | colB | colS, num(func(s *Stats) uint64 { return s.STot })},
	{"bin", colF | colB | colS, num(func(s *Stats) uint64 { return s.BIn })},
	{"bout", colF | colB | colS, num(func(s *Stats) uint64 { return s.BOut })},
	{"dreq", colF | colB, num(func(s *Stats) uint64 { return s.DReq })},
	{"dresp", colF | colB | colS, num(func(s *Stats) uint64 { return s.DResp })},
	{"ereq", colF, num(func(s *Stats) uint64 { return s.EReq })},
	{"econ", colB | colS, num(func(s *Stats) uint64 { return s.ECon })},
	{"eresp", colB | colS, num(func(s *Stats) uint64 { return s.EResp })},
	{"wretr", colB | colS, num(func(s *Stats) uint64 { return s.WRetr })},
	{"wredis", colB | colS, num(func(s *Stats) uint64 { return s.WRedis })},
	{"status", colF | colB | colS, str(func(s *Stats) string { return s.Status })},
	{"weight", colB | colS, num(func(s *Stats) int { return s.Weight })},
	{"act", colB | colS, num(func(s *Stats) int { return s.Act })},
	{"bck", colB | colS, num(func(s *Stats) int { return s.Bck })},
	{"chkfail", 0, nil},
	{"chkdown", colB | colS, num(func(s *Stats) uint64 { return s.ChkDown })},
	{"lastchg", colB | colS, num(func(s *Stats) int64 { return s.LastChg })},
	{"downtime", colB | colS, num(func(s *Stats) int64 { return s.Downtime })},
	{"qlimit", 0, nil},
	{"pid", colF | colB | colS, num(func(*Stats) int { return 1 })},
	{"iid", 0, nil},
	{"sid", 0, nil},
	{"throttle", 0, nil},
	{"lbtot", colB | colS, num(func(s *Stats) uint64 { return s.LbTot })},
	{"tracked", 0, nil},
	{"type", colF | colB | colS, num(func(s *Stats) int { return s.Type })},
	{"rate", colF | colB | colS, num(func(s *Stats) uint64 { return s.Rate })},
	{"rate_lim", 0, nil},
	{"rate_max", colF | colB | colS, num(func(s *Stats) uint64 { return s.RateMax })},
	{"check_status", colS, str(func(s *Stats) string { return s.CheckStatus })},
	{"check_code", colS, func(dst []byte, s *Stats) []byte {
		if s.CheckCode == 0 {
			return dst
		}
		return strconv.AppendInt(dst, int64(s.CheckCode), 10)
	}},
	{"check_duration", colS, func(dst []byte, s *Stats) []byte {
		if s.CheckStatus == "" || s.CheckStatus == "INI" {
			return dst
		}
		return strconv.AppendInt(dst, s.CheckDuration, 10)
	}},
	{"hrsp_1xx", colF | colB | colS, num(func(s *Stats) uint64 { return s.HRsp1xx })},
	{"hrsp_2xx", colF | colB | colS, num(func(s *Stats) uint64 { return s.HRsp2xx })},
	{"hrsp_3xx", colF | colB | colS, num(func(s *Stats) uint64 { return s.HRsp3xx })},
	{"hrsp_4xx", colF | colB | colS, num(func(s *Stats) uint64 { return s.HRsp4xx })},
	{"hrsp_5xx", colF | colB | colS, num(func(s *Stats) uint64 { return s.HRsp5xx })},
	{"hrsp_other", colF | colB | colS, num(func(s *Stats) uint64 { return s.HRspOther })},
	{"hanafail", 0, nil},
	{"req_rate", colF, num(func(s *Stats) uint64 { return s.ReqRate })},
	{"req_rate_max", colF, num(func(s *Stats) uint64 { return s.ReqRateMax })},
	{"req_tot", colF, num(func(s *Stats) uint64 { return s.ReqTot })},
	{"cli_abrt", colB | colS, num(func(s *Stats) uint64 { return s.CliAbrt })},
	{"srv_abrt", colB | colS, num(func(s *Stats) uint64 { return s.SrvAbrt })},
	{"comp_in", colF | colB, num(func(*Stats) int { return 0 })},
	{"comp_out", colF | colB, num(func(*Stats) int { return 0 })},
	{"comp_byp", colF | colB, num(func(*Stats) int { return 0 })},
	{"comp_rsp", colF | colB, num(func(*Stats) int { return 0 })},
	{"lastsess", colB | colS, num(func(s *Stats) int64 { return s.LastSess })},
	{"last_chk", colS, str(func(s *Stats) string { return s.CheckDesc })},
	{"last_agt", 0, nil},
	{"qtime", 0, nil},
	{"ctime", 0, nil},
	{"rtime", 0, nil},
	{"ttime", 0, nil},
	{"agent_status", 0, nil},
	{"agent_code", 0, nil},
	{"agent_duration", 0, nil},
	{"check_desc", colS, str(func(s *Stats) string { return s.CheckDesc })},
	{"agent_desc", 0, nil},
	{"check_rise", 0, nil},
	{"check_fall", 0, nil},
	{"check_health", 0, nil},
	{"agent_rise", 0, nil},
	{"agent_fall", 0, nil},
	{"agent_health", 0, nil},
	{"addr", colS, str(func(s *Stats) string { return s.Addr })},
	{"cookie", colB | colS, str(func(s *Stats) string { return s.Cookie })},
	{"mode", colF | colB | colS, str(func(s *Stats) string { return s.Mode })},
	{"algo", colB, str(func(s *Stats) string { return s.Algo })},
}

// WriteCSV writes rows as HAProxy's "show stat" does: a header line
// "# pxname,svname,..." with HAProxy's columns in HAProxy's order, then a
// line per row, every line ending in a comma. HAProxy lists each proxy's
// FRONTEND, then its servers, then its BACKEND (BackendStats.Rows).
func WriteCSV(w io.Writer, rows ...Stats) error {
	buf := []byte("# ")
	for _, c := range columns {
		buf = append(buf, c.name...)
		buf = append(buf, ',')
	}
	buf = append(buf, '\n')
	for i := range rows {
		r := &rows[i]
		for _, c := range columns {
			if c.types&(1<<r.Type) != 0 {
				buf = c.val(buf, r)
			}
			buf = append(buf, ',')
		}
		buf = append(buf, '\n')
	}
	_, err := w.Write(buf)
	return err
}

// appendCSV appends a field, quoted if it holds a comma, a quote or a
// line break, with quotes doubled.
func appendCSV(dst []byte, v string) []byte {
	quote := false
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == ',' || c == '"' || c == '\n' || c == '\r' {
			quote = true
			break
		}
	}
	if !quote {
		return append(dst, v...)
	}
	dst = append(dst, '"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, v[i])
	}
	return append(dst, '"')
}
