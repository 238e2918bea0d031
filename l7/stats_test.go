package l7

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/directorlb/director/director/health"
)

// startStatsProxy serves be on loopback and returns the frontend and its
// address.
func startStatsProxy(t *testing.T, be *Backend) (*Frontend, string) {
	t.Helper()
	fe, addr := serveFrontend(t, FrontendConfig{Name: "fe", Backend: be, Logger: zerolog.Nop()})
	return fe, addr
}

// countingConn counts the bytes a client sends and receives.
type countingConn struct {
	net.Conn
	in, out int
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in += n
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out += n
	return n, err
}

// statusServer answers /NNN with status NNN.
func statusServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil {
			code = 200
		}
		w.WriteHeader(code)
		io.WriteString(w, "body of "+r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func TestStatsCounters(t *testing.T) {
	addr := statusServer(t)
	be, err := NewBackend(BackendConfig{Name: "web", Redispatch: true, Cookie: &CookieConfig{Name: "SRV"},
		Servers: []ServerConfig{{Name: "dead", Addr: deadAddr(t)}, {Name: "a", Addr: addr, Weight: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	// Requests stick to a, so that roundrobin does not pick the dead
	// server.
	fe, feAddr := startStatsProxy(t, be)
	raw, err := net.Dial("tcp", feAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := &countingConn{Conn: raw}
	br := bufio.NewReader(c)
	do := func(path, cookie string) int {
		t.Helper()
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\nCookie: SRV="+cookie+"\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range []string{"/200", "/404", "/503", "/204"} {
		do(p, "a")
	}
	// Sticky to the dead server, which is believed up: a retry that is
	// a redispatch to a.
	if code := do("/200", "dead"); code != 200 {
		t.Fatalf("redispatched request: status %d", code)
	}
	// Nothing is up: the backend answers 503 itself.
	if err := be.SetUp("a", false); err != nil {
		t.Fatal(err)
	}
	if err := be.SetUp("dead", false); err != nil {
		t.Fatal(err)
	}
	if code := do("/200", "a"); code != 503 {
		t.Fatalf("no server: status %d", code)
	}

	// Bytes are counted once a response is out: wait for the last one.
	waitFor(t, "bytes counted", func() bool { return fe.Stats().BOut == uint64(c.in) })
	f, b := fe.Stats(), be.Stats()
	dead, a := b.Servers[0], b.Servers[1]
	type counts struct {
		stot, h2, h4, h5, econ, wretr, wredis, bin, bout uint64
	}
	for _, tt := range []struct {
		name      string
		got, want counts
	}{
		{"frontend", counts{f.ReqTot, f.HRsp2xx, f.HRsp4xx, f.HRsp5xx, 0, 0, 0, f.BIn, f.BOut},
			counts{6, 3, 1, 2, 0, 0, 0, uint64(c.out), uint64(c.in)}},
		{"backend", counts{b.STot, b.HRsp2xx, b.HRsp4xx, b.HRsp5xx, b.ECon, b.WRetr, b.WRedis, b.BIn, b.BOut},
			counts{6, 3, 1, 2, 2, 1, 1, uint64(c.out), uint64(c.in)}},
		// a's responses: all but the backend's own 503.
		{"a", counts{a.STot, a.HRsp2xx, a.HRsp4xx, a.HRsp5xx, a.ECon, a.WRetr, a.WRedis, 0, 0},
			counts{5, 3, 1, 1, 0, 0, 0, 0, 0}},
		{"dead", counts{dead.STot, dead.HRsp2xx, dead.HRsp4xx, dead.HRsp5xx, dead.ECon, dead.WRetr, dead.WRedis, dead.BIn, dead.BOut},
			counts{1, 0, 0, 0, 1, 1, 1, 0, 0}},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, tt.got, tt.want)
		}
	}
	// The server's bytes are those of its responses, not the 503's.
	if a.BOut == 0 || a.BOut >= b.BOut || a.BIn == 0 || a.BIn >= b.BIn {
		t.Errorf("a: bin %d bout %d, want some of the backend's %d %d", a.BIn, a.BOut, b.BIn, b.BOut)
	}
	if f.STot != 1 || f.SCur != 1 || f.SMax != 1 || f.EReq != 0 || f.Status != "OPEN" {
		t.Errorf("frontend sessions: stot %d scur %d smax %d ereq %d %s, want one connection", f.STot, f.SCur, f.SMax, f.EReq, f.Status)
	}
	if b.SCur != 0 || b.SMax != 1 || a.SCur != 0 || a.QCur != 0 || a.LbTot != 5 || b.LbTot != 6 {
		t.Errorf("backend scur %d smax %d, a scur %d qcur %d lbtot %d, backend lbtot %d", b.SCur, b.SMax, a.SCur, a.QCur, a.LbTot, b.LbTot)
	}
	if f.ReqRateMax < 1 || f.ReqRateMax > 6 || b.RateMax < 1 || b.RateMax > 6 {
		t.Errorf("rates: frontend req_rate_max %d, backend rate_max %d, want 1..6", f.ReqRateMax, b.RateMax)
	}
	// States: both servers went down once, and the backend with them.
	if dead.Status != "DOWN" || a.Status != "DOWN" || b.Status != "DOWN" || a.ChkDown != 1 || b.ChkDown != 1 ||
		b.Weight != 0 || b.Act != 0 || a.Weight != 3 || a.LastChg < 0 || a.Downtime < 0 {
		t.Errorf("states: dead %s, a %s (chkdown %d, weight %d), backend %s (chkdown %d, weight %d, act %d)",
			dead.Status, a.Status, a.ChkDown, a.Weight, b.Status, b.ChkDown, b.Weight, b.Act)
	}
	if err := be.SetUp("a", true); err != nil {
		t.Fatal(err)
	}
	if b := be.Stats(); b.Status != "UP" || b.Servers[1].Status != "no check" || b.Weight != 3 || b.Act != 1 || b.ChkDown != 1 {
		t.Errorf("a back: backend %s weight %d act %d chkdown %d, a %s", b.Status, b.Weight, b.Act, b.ChkDown, b.Servers[1].Status)
	}
	// JSON uses the CSV's names.
	j, err := json.Marshal(be.Stats())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"pxname":"web"`, `"svname":"BACKEND"`, `"hrsp_4xx":1`, `"wredis":1`, `"servers":[{`} {
		if !bytes.Contains(j, []byte(k)) {
			t.Errorf("JSON %s lacks %s", j, k)
		}
	}
}

// TestStatsQueue fills a server's connections so that requests wait.
func TestStatsQueue(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	be, err := NewBackend(BackendConfig{Name: "web", MaxConns: 1, Servers: []ServerConfig{{Name: "a", Addr: srv.Listener.Addr().String()}}})
	if err != nil {
		t.Fatal(err)
	}
	_, addr := startStatsProxy(t, be)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get("http://" + addr)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	waitFor(t, "queued", func() bool { s := be.Stats().Servers[0]; return s.QCur == 2 })
	s := be.Stats().Servers[0]
	if s.SCur != 1 || s.SMax != 1 || s.SLim != 1 || s.QMax != 2 {
		t.Errorf("scur %d smax %d slim %d qmax %d, want 1 1 1 2", s.SCur, s.SMax, s.SLim, s.QMax)
	}
	close(release)
	wg.Wait()
	s = be.Stats().Servers[0]
	if s.QCur != 0 || s.SCur != 0 || s.QMax != 2 || s.STot != 3 {
		t.Errorf("after: qcur %d scur %d qmax %d stot %d, want 0 0 2 3", s.QCur, s.SCur, s.QMax, s.STot)
	}
}

// TestStatsConcurrent runs requests from several clients while reading
// the counters: under -race it checks that no lock is missing, and the
// totals must add up.
func TestStatsConcurrent(t *testing.T) {
	addr := startCannedServer(t)
	be, err := NewBackend(BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: addr}, {Name: "b", Addr: addr}}})
	if err != nil {
		t.Fatal(err)
	}
	fe, feAddr := startStatsProxy(t, be)
	const clients, requests = 4, 50
	var wg sync.WaitGroup
	var sent sync.Map
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", feAddr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			cc := &countingConn{Conn: c}
			br := bufio.NewReader(cc)
			for range requests {
				io.WriteString(cc, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			sent.Store(i, [2]int{cc.out, cc.in})
		}()
	}
	stop := make(chan struct{})
	readers := make(chan struct{})
	go func() {
		defer close(readers)
		for {
			select {
			case <-stop:
				return
			default:
			}
			b := be.Stats()
			if err := WriteCSV(io.Discard, append([]Stats{fe.Stats()}, b.Rows()...)...); err != nil {
				t.Error(err)
			}
			if b.SCur < 0 || b.SCur > clients {
				t.Errorf("backend scur %d", b.SCur)
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-readers
	var in, out uint64
	sent.Range(func(_, v any) bool {
		n := v.([2]int)
		out += uint64(n[0])
		in += uint64(n[1])
		return true
	})
	const total = clients * requests
	waitFor(t, "all counted", func() bool {
		f, b := fe.Stats(), be.Stats()
		return f.BOut == in && b.BOut == in && b.SCur == 0
	})
	f, b := fe.Stats(), be.Stats()
	if f.ReqTot != total || f.HRsp2xx != total || f.STot != clients || f.SMax < 1 || f.SMax > clients || f.BIn != out {
		t.Errorf("frontend: req_tot %d hrsp_2xx %d stot %d smax %d bin %d, want %d %d %d 1..%d %d",
			f.ReqTot, f.HRsp2xx, f.STot, f.SMax, f.BIn, total, total, clients, clients, out)
	}
	if b.STot != total || b.HRsp2xx != total || b.Servers[0].STot+b.Servers[1].STot != total ||
		b.Servers[0].BOut+b.Servers[1].BOut != b.BOut || b.SMax < 1 || b.SMax > clients {
		t.Errorf("backend: stot %d (%d+%d) hrsp_2xx %d smax %d bout %d (%d+%d)", b.STot, b.Servers[0].STot, b.Servers[1].STot,
			b.HRsp2xx, b.SMax, b.BOut, b.Servers[0].BOut, b.Servers[1].BOut)
	}
}

// haproxyColumns are the first columns of HAProxy's "show stat", in its
// order (management guide, 9.1), which tools read by position.
const haproxyColumns = "pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp," +
	"wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot," +
	"tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx," +
	"hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out," +
	"comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code," +
	"agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall," +
	"agent_health,addr,cookie,mode,algo,"

func TestWriteCSV(t *testing.T) {
	rows := []Stats{
		{PxName: "fe", SvName: "FRONTEND", Type: StatsFrontend, Status: "OPEN", SCur: 2, STot: 7, ReqTot: 9, HRsp2xx: 9, Mode: "http"},
		{PxName: "web", SvName: "a", Type: StatsServer, Status: "UP", Weight: 2, QCur: 1, STot: 5, HRsp4xx: 1,
			CheckStatus: "L7STS", CheckCode: 503, CheckDuration: 3, CheckDesc: `status 503: "down, really"`, Addr: "10.0.0.1:80", Mode: "http"},
		{PxName: "web", SvName: "BACKEND", Type: StatsBackend, Status: "UP", STot: 5, ECon: 1, Algo: "roundrobin", Mode: "http"},
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, rows...); err != nil {
		t.Fatal(err)
	}
	header, body, _ := strings.Cut(buf.String(), "\n")
	if header != "# "+haproxyColumns {
		t.Fatalf("header\n%s\nwant\n# %s", header, haproxyColumns)
	}
	names := strings.Split(strings.TrimSuffix(haproxyColumns, ","), ",")
	r := csv.NewReader(strings.NewReader(body))
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(rows) {
		t.Fatalf("%d lines, want %d", len(recs), len(rows))
	}
	get := func(rec []string, col string) string {
		for i, n := range names {
			if n == col {
				return rec[i]
			}
		}
		t.Fatalf("no column %s", col)
		return ""
	}
	for i, rec := range recs {
		if len(rec) != len(names)+1 || rec[len(names)] != "" {
			t.Errorf("line %d: %d fields, want %d and a trailing comma", i, len(rec), len(names)+1)
		}
	}
	for _, tt := range []struct {
		line      int
		col, want string
	}{
		{0, "pxname", "fe"}, {0, "svname", "FRONTEND"}, {0, "scur", "2"}, {0, "stot", "7"}, {0, "req_tot", "9"},
		{0, "hrsp_2xx", "9"}, {0, "status", "OPEN"}, {0, "type", "0"}, {0, "mode", "http"},
		{0, "qcur", ""}, {0, "econ", ""}, {0, "weight", ""}, {0, "check_status", ""}, // not a frontend's
		{1, "qcur", "1"}, {1, "weight", "2"}, {1, "type", "2"}, {1, "check_status", "L7STS"}, {1, "check_code", "503"},
		{1, "check_duration", "3"}, {1, "check_desc", `status 503: "down, really"`}, {1, "addr", "10.0.0.1:80"},
		{1, "ereq", ""}, {1, "req_tot", ""}, {1, "algo", ""}, {1, "hrsp_4xx", "1"},
		{2, "econ", "1"}, {2, "algo", "roundrobin"}, {2, "type", "1"}, {2, "ereq", ""}, {2, "addr", ""},
	} {
		if got := get(recs[tt.line], tt.col); got != tt.want {
			t.Errorf("line %d, %s: %q, want %q", tt.line, tt.col, got, tt.want)
		}
	}
}

func TestRateCounter(t *testing.T) {
	var r rateCounter
	at := func(sec int64, ms int) time.Time { return time.Unix(sec, int64(ms)*int64(time.Millisecond)) }
	for range 5 {
		r.add(100)
	}
	for range 3 {
		r.add(101)
	}
	for _, tt := range []struct {
		at         time.Time
		rate, high uint64
	}{
		{at(101, 500), 3 + 5/2, 5}, // the current second and half the previous one
		{at(102, 500), 3 / 2, 5},   // the last second fades
		{at(103, 0), 0, 5},
	} {
		if rate, high := r.read(tt.at); rate != tt.rate || high != tt.high {
			t.Errorf("at %v: rate %d max %d, want %d %d", tt.at, rate, high, tt.rate, tt.high)
		}
	}
	// A gap: the second before is not the previous count.
	for range 9 {
		r.add(200)
	}
	if rate, high := r.read(at(200, 999)); rate != 9 || high != 9 {
		t.Errorf("after a gap: rate %d max %d, want 9 9", rate, high)
	}
}

func TestStatsChecks(t *testing.T) {
	a := startServer(t, "a")
	be, err := NewBackend(BackendConfig{Name: "web", Servers: servers(a),
		Check: &CheckConfig{HTTP: &health.HTTPConfig{Path: "/health"}, Interval: 20 * time.Millisecond, Rise: 1, Fall: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = CheckHealth(ctx, zerolog.Nop(), be); close(done) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "a checked", func() bool { return be.Stats().Servers[0].CheckStatus == "L7OK" })
	if s := be.Stats().Servers[0]; s.Status != "UP" || s.CheckCode != 200 || s.CheckDuration < 0 {
		t.Errorf("healthy: %s %s %d %d ms", s.Status, s.CheckStatus, s.CheckCode, s.CheckDuration)
	}
	a.healthy.Store(false)
	waitFor(t, "a down", func() bool { s := be.Stats().Servers[0]; return s.Status == "DOWN" && s.CheckStatus == "L7STS" })
	if s := be.Stats(); s.Servers[0].CheckCode != 503 || s.Servers[0].ChkDown != 1 || s.Status != "DOWN" || s.ChkDown != 1 {
		t.Errorf("unhealthy: code %d chkdown %d, backend %s chkdown %d", s.Servers[0].CheckCode, s.Servers[0].ChkDown, s.Status, s.ChkDown)
	}
}
