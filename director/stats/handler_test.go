package stats

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/directorlb/director/director/api"
	"github.com/rs/zerolog"
)

var users = []User{{Name: "admin", Password: "s3cret", Admin: true}, {Name: "viewer", Password: "look"}}

type fixture struct {
	t   *testing.T
	ops *fakeOps
	h   *Handler
	log *bytes.Buffer
	now time.Time
}

// newFixture serves the fake agent with its traffic sampled three times,
// 5 s apart, ending at t0.
func newFixture(t *testing.T, mod func(*Config)) *fixture {
	f := &fixture{t: t, ops: newFakeOps(), log: &bytes.Buffer{}, now: t0.Add(-10 * time.Second)}
	sm := NewSampler(f.ops, SamplerConfig{Interval: 5 * time.Second, Keep: time.Minute, Now: func() time.Time { return f.now }})
	for i := 0; i < 3; i++ {
		if i > 0 {
			f.now = f.now.Add(5 * time.Second)
			f.ops.addTraffic("web", "10.99.0.50", api.Counters{Packets: 500 * uint64(i), Bytes: 50000 * uint64(i), NewFlows: 10 * uint64(i)})
		}
		if err := sm.Sample(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{URI: "/stats", Refresh: 10 * time.Second, ShowNode: true, Users: users,
		Log: zerolog.New(f.log), Now: func() time.Time { return t0 }}
	if mod != nil {
		mod(&cfg)
	}
	h, err := NewHandler(cfg, Sources{Ops: f.ops, L7: fakeL7{}, Sampler: sm})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	return f
}

// do runs one request; user "" sends no credentials.
func (f *fixture) do(method, target, user, pass string, form url.Values, hdr ...string) *httptest.ResponseRecorder {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, "http://lb.example:8404"+target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" {
		r.SetBasicAuth(user, pass)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

// actionsLogged returns the log's "stats: admin action" lines.
func (f *fixture) actionsLogged(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(f.log.String()), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if e["message"] == "stats: admin action" {
			out = append(out, e)
		}
	}
	return out
}

func (f *fixture) get(target, user string) string {
	f.t.Helper()
	pass := map[string]string{"admin": "s3cret", "viewer": "look"}[user]
	w := f.do(http.MethodGet, target, user, pass, nil)
	if w.Code != http.StatusOK {
		f.t.Fatalf("GET %s as %s: %d %s", target, user, w.Code, w.Body)
	}
	return w.Body.String()
}

func TestAuth(t *testing.T) {
	f := newFixture(t, nil)
	for _, c := range []struct {
		name, target, user, pass string
		want                     int
	}{
		{"no credentials", "/stats", "", "", 401},
		{"no credentials, csv", "/stats;csv", "", "", 401},
		{"no credentials, json", "/stats;json", "", "", 401},
		{"wrong password", "/stats", "admin", "s3cre", 401},
		{"password of another user", "/stats", "admin", "look", 401},
		{"unknown user", "/stats", "root", "s3cret", 401},
		{"empty password", "/stats", "viewer", "", 401},
		{"viewer", "/stats", "viewer", "look", 200},
		{"admin", "/stats", "admin", "s3cret", 200},
		{"admin, csv", "/stats;csv", "admin", "s3cret", 200},
		{"viewer, json", "/stats;json", "viewer", "look", 200},
		{"other path", "/other", "admin", "s3cret", 404},
		{"unknown view", "/stats;xml", "admin", "s3cret", 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := f.do(http.MethodGet, c.target, c.user, c.pass, nil)
			if w.Code != c.want {
				t.Fatalf("status %d, want %d: %s", w.Code, c.want, w.Body)
			}
			if c.want == 401 && w.Header().Get("WWW-Authenticate") != `Basic realm="director stats", charset="UTF-8"` {
				t.Errorf("WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
			}
			if c.want == 401 && strings.Contains(w.Body.String(), "10.99.0.50") {
				t.Errorf("401 answer shows data")
			}
		})
	}
	if w := f.do(http.MethodPut, "/stats", "admin", "s3cret", nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d", w.Code)
	}
}

// adminForm is what the page's form posts for an action.
func (f *fixture) adminForm(user, action, weight string, confirmed bool, reals ...string) url.Values {
	v := url.Values{"action": {action}, "vip": {"web"}, "real": reals, "token": {f.h.token(User{Name: user})}}
	if weight != "" {
		v.Set("weight", weight)
	}
	if confirmed {
		v.Set("confirmed", "1")
	}
	return v
}

func TestReadOnlyUserCannotAct(t *testing.T) {
	f := newFixture(t, nil)
	page := f.get("/stats", "viewer")
	if strings.Contains(page, `name="token"`) || strings.Contains(page, `type="checkbox" name="real"`) || strings.Contains(page, "Set state to") {
		t.Error("the read-only user's page has the admin form")
	}
	// Even with a token of their own and a well-formed form.
	form := f.adminForm("viewer", "drain", "", true, "10.99.0.50")
	w := f.do(http.MethodPost, "/stats", "viewer", "look", form, "Origin", "http://lb.example:8404")
	if w.Code != http.StatusForbidden {
		t.Fatalf("viewer's drain: %d %s", w.Code, w.Body)
	}
	w = f.do(http.MethodPost, "/stats", "", "", form)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("drain without credentials: %d", w.Code)
	}
	if len(f.ops.calls) != 0 {
		t.Fatalf("ops called: %v", f.ops.calls)
	}
	if !strings.Contains(f.log.String(), `"user":"viewer"`) || !strings.Contains(f.log.String(), "not an admin") {
		t.Errorf("refusal not logged: %s", f.log)
	}
}

func TestAdminActions(t *testing.T) {
	f := newFixture(t, nil)
	origin := []string{"Origin", "http://lb.example:8404", "Sec-Fetch-Site", "same-origin"}
	post := func(form url.Values, hdr ...string) *httptest.ResponseRecorder {
		return f.do(http.MethodPost, "/stats", "admin", "s3cret", form, hdr...)
	}
	page := f.get("/stats", "admin")
	if !strings.Contains(page, `name="token" value="`+f.h.token(users[0])+`"`) {
		t.Fatal("the admin's page has no form token")
	}

	// Refused before anything is done.
	for _, c := range []struct {
		name string
		form url.Values
		hdr  []string
		want int
	}{
		{"another origin", f.adminForm("admin", "drain", "", true, "10.99.0.50"), []string{"Origin", "http://evil.example"}, 403},
		{"cross-site fetch", f.adminForm("admin", "drain", "", true, "10.99.0.50"), []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"null origin", f.adminForm("admin", "drain", "", true, "10.99.0.50"), []string{"Origin", "null"}, 403},
		{"no token", url.Values{"action": {"drain"}, "vip": {"web"}, "real": {"10.99.0.50"}, "confirmed": {"1"}}, origin, 403},
		{"another user's token", f.adminForm("viewer", "drain", "", true, "10.99.0.50"), origin, 403},
		{"unknown action", f.adminForm("admin", "remove", "", true, "10.99.0.50"), origin, 400},
		{"no real", f.adminForm("admin", "drain", "", true), origin, 400},
		{"not an address", f.adminForm("admin", "drain", "", true, "rs1"), origin, 400},
		{"weight out of range", f.adminForm("admin", "weight", "257", true, "10.99.0.50"), origin, 400},
	} {
		if w := post(c.form, c.hdr...); w.Code != c.want {
			t.Errorf("%s: %d, want %d: %s", c.name, w.Code, c.want, w.Body)
		}
	}
	if len(f.ops.calls) != 0 {
		t.Fatalf("refused requests called ops: %v", f.ops.calls)
	}

	// Without JavaScript: a confirmation page first, nothing done.
	w := post(f.adminForm("admin", "drain", "", false, "10.99.0.50", "10.99.0.51"), origin...)
	body := w.Body.String()
	if w.Code != 200 || !strings.Contains(body, "Confirm") || !strings.Contains(body, `name="confirmed" value="1"`) ||
		!strings.Contains(body, `<li>10.99.0.51</li>`) || !strings.Contains(body, "Set state to DRAIN") {
		t.Fatalf("confirmation page: %d %s", w.Code, body)
	}
	if len(f.ops.calls) != 0 {
		t.Fatalf("unconfirmed action called ops: %v", f.ops.calls)
	}

	// Confirmed: done, logged, and back to the page with a notice.
	w = post(f.adminForm("admin", "drain", "", true, "10.99.0.50", "10.99.0.51"), origin...)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/stats?action=drain&n=2&st=done" {
		t.Fatalf("drain: %d %q %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	if page := f.get(w.Header().Get("Location"), "admin"); !strings.Contains(page, "Set state to DRAIN: done for 2 reals.") {
		t.Error("no notice after the action")
	}
	for _, c := range []struct{ action, weight, real, call string }{
		{"maint", "", "10.99.0.52", "maint=true web 10.99.0.52"},
		{"ready", "", "10.99.0.53", "enable web 10.99.0.53"},
		{"weight", "7", "10.99.0.50", "weight=7 web 10.99.0.50"},
	} {
		// A form without Origin or Referer (not from a browser) still
		// works with the token.
		if w := post(f.adminForm("admin", c.action, c.weight, true, c.real)); w.Code != http.StatusSeeOther {
			t.Fatalf("%s: %d %s", c.action, w.Code, w.Body)
		}
		if last := f.ops.calls[len(f.ops.calls)-1]; last != c.call {
			t.Errorf("%s called %q, want %q", c.action, last, c.call)
		}
	}
	want := []string{"drain web 10.99.0.50", "drain web 10.99.0.51", "maint=true web 10.99.0.52", "enable web 10.99.0.53", "weight=7 web 10.99.0.50"}
	if strings.Join(f.ops.calls, "|") != strings.Join(want, "|") {
		t.Errorf("calls %v\nwant  %v", f.ops.calls, want)
	}
	// Each action is logged: user, action, VIP, real, result.
	actions := f.actionsLogged(t)
	for _, e := range actions {
		if e["user"] != "admin" || e["vip"] != "web" || e["result"] != "done" || e["action"] == nil || e["real"] == nil {
			t.Errorf("log line %v", e)
		}
	}
	if len(actions) != 5 {
		t.Errorf("%d actions logged, want 5:\n%s", len(actions), f.log)
	}

	// A failure shows what was and was not done.
	w = post(f.adminForm("admin", "drain", "", true, "10.99.0.50", "10.99.0.99"), origin...)
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "VIP web has no real 10.99.0.99") ||
		!regexp.MustCompile(`10\.99\.0\.50</td><td>done`).MatchString(w.Body.String()) {
		t.Errorf("partial failure: %d %s", w.Code, w.Body)
	}
	if !strings.Contains(f.log.String(), `"result":"not found: VIP web has no real 10.99.0.99"`) {
		t.Errorf("failure not logged: %s", f.log)
	}
}

func TestPageShowsEveryField(t *testing.T) {
	f := newFixture(t, nil)
	page := f.get("/stats", "admin")
	row := func(addr string) string {
		t.Helper()
		m := regexp.MustCompile(`(?s)<tr class="real[^"]*" data-vip="web" data-real="` + regexp.QuoteMeta(addr) + `".*?</tr>`).FindString(page)
		if m == "" {
			t.Fatalf("no row for %s", addr)
		}
		return m
	}
	for _, c := range []struct {
		where string
		in    string
		want  []string
	}{
		{"header", page, []string{
			`<b id="node">lb-node-1</b>`, `version v9.8.7`, // show-node, version
			`id="role">BACKUP<`, `<td>VI_1</td>`, `>BACKUP</td>`, `<td class="n">90</td>`, `<td class="n">100</td>`, `<td>10.99.0.3</td>`, `<td>5m0s</td>`,
			`uptime</th><td>1d2h`, `reals up</th><td id="reals-up">1 of 4`, `XDP native, program 42`,
			`<td>tx</td><td class="n" title="123456">123.5k</td>`,
			`<noscript><meta http-equiv="refresh" content="10"></noscript>`,
			`<a href="/stats;csv">CSV</a>`, `<a href="/stats;json">JSON</a>`,
		}},
		{"summary", page, []string{`<a href="#vip-web">web</a>`, `<a href="#vip-https-l7">https-l7</a>`, `Local VIP: handed to the L7 tier`}},
		{"up real", row("10.99.0.50"), []string{
			`data-state="up"`, `<td class="st">UP</td>`, `<td>1m30s</td>`, `<td class="cause">ok</td>`, `<td class="n">3</td>`,
			`L4OK <small>ok</small>`, `1.5 ms`,
			`title="4500">4500<`, `<td class="n">200</td>`, // packets, 1000 in the last 5 s
			`title="550000">537.1 KiB<`, `19.5 KiB/s`, // bytes, 100000 in the last 5 s
			`title="230">230<`, `>4.0</td>`, // new flows 20 in the last 5 s, max 4/s
			`<svg class="spark"`, `<polyline`,
			`<input type="checkbox" name="real" value="10.99.0.50"`,
		}},
		{"down real", row("10.99.0.51"), []string{`st-down`, `<td class="st">DOWN</td>`, `<td>2h0m</td>`, `status 503`, `L7STS <small>status 503</small>`, `2.0 ms`}},
		{"drain real", row("10.99.0.52"), []string{`<td class="st">DRAIN</td>`, `<td>3m0s</td>`, `drain (operator)`}},
		{"maint real", row("10.99.0.53"), []string{`<td class="st">MAINT</td>`, `<td>4d0h</td>`, `maint (operator)`, `L4TOUT`}},
		{"frontend and backend rows", page, []string{
			`<tr class="fe">`, `<td>Frontend</td><td class="st">OPEN</td>`, `title="6500">6500<`, // the VIP's counters
			`<tr class="be st-up">`, `<td>Backend</td><td class="st">UP</td><td></td><td>1/4 up</td><td class="n">3</td>`, `title="6500">6500<`,
		}},
		{"l7 proxy", page, []string{
			`<caption>www</caption>`,
			`data-name="Frontend"`, `title="123457">123.5k<`, `<td class="n">2000</td>`, `<td class="n">230</td>`, `>OPEN</td>`,
			`data-name="app1"`, `L7OK 200 <small>3.0 ms</small>`, `<td class="n">9</td>`, `>1h10m<`, `title="60000">60.0k<`,
			`<td class="n">4</td><td class="n">5</td>`, `<td class="n">6</td><td class="n">7</td>`,
			`data-name="app2"`, `>DOWN</td>`, `L4CON`,
			`data-name="Backend"`, `<td class="n">12</td>`,
		}},
		{"admin form", page, []string{`<form method="post" action="/stats" class="admin">`, `Set state to MAINT`, `Set state to READY`, `Set weight`, `name="vip" value="web"`}},
	} {
		for _, w := range c.want {
			if !strings.Contains(c.in, w) {
				t.Errorf("%s: no %q", c.where, w)
			}
		}
	}
	if t.Failed() {
		t.Logf("page:\n%s", page)
	}
}

func TestPageOptionsAndEscaping(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.ShowNode, c.HideVersion, c.Refresh = false, true, 0 })
	f.ops.vips[0].Name = `<script>alert(1)</script>`
	f.ops.reals[`<script>alert(1)</script>`] = f.ops.reals["web"]
	page := f.get("/stats", "viewer")
	for _, bad := range []string{"lb-node-1", "v9.8.7", "<script>alert", `http-equiv="refresh"`} {
		if strings.Contains(page, bad) {
			t.Errorf("page has %q", bad)
		}
	}
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the VIP's name is not shown escaped")
	}
	js := f.get("/stats;json", "viewer")
	if strings.Contains(js, "lb-node-1") || strings.Contains(js, "v9.8.7") {
		t.Errorf("JSON shows the hidden node or version")
	}
	f = newFixture(t, nil)
	if page := f.get("/stats;norefresh", "viewer"); strings.Contains(page, `http-equiv="refresh"`) || !strings.Contains(page, `data-refresh="0"`) {
		t.Error(";norefresh refreshes")
	}
	w := f.do(http.MethodGet, "/stats", "viewer", "look", nil)
	csp := w.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'nonce-") || !strings.Contains(csp, "frame-ancestors 'none'") || w.Header().Get("X-Frame-Options") != "DENY" {
		t.Errorf("headers %v", w.Header())
	}
	nonce := regexp.MustCompile(`script-src 'nonce-([^']+)'`).FindStringSubmatch(csp)[1]
	if !strings.Contains(w.Body.String(), `<script nonce="`+nonce+`">`) {
		t.Error("the script does not carry the CSP nonce")
	}
}

func TestCSV(t *testing.T) {
	f := newFixture(t, nil)
	body := f.get("/stats;csv", "viewer")
	if !strings.HasPrefix(body, "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,\n") {
		t.Fatalf("header: %.400s", body)
	}
	rd := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "# ")))
	recs, err := rd.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	head := recs[0]
	rows := map[string]map[string]string{}
	var order []string
	for _, rec := range recs[1:] {
		if len(rec) != len(head) {
			t.Fatalf("row of %d fields, header %d: %v", len(rec), len(head), rec)
		}
		m := map[string]string{}
		for i, h := range head {
			m[h] = rec[i]
		}
		rows[m["pxname"]+"/"+m["svname"]] = m
		order = append(order, m["pxname"]+"/"+m["svname"])
	}
	wantOrder := []string{"web/FRONTEND", "web/10.99.0.50", "web/10.99.0.51", "web/10.99.0.52", "web/10.99.0.53", "web/BACKEND",
		"https-l7/FRONTEND", "https-l7/BACKEND", "www/FRONTEND", "www/app1", "www/app2", "www/BACKEND"}
	if strings.Join(order, " ") != strings.Join(wantOrder, " ") {
		t.Errorf("rows %v\nwant %v", order, wantOrder)
	}
	for key, want := range map[string]map[string]string{
		"web/FRONTEND":   {"status": "OPEN", "type": "0", "stot": "330", "bin": "850000", "rate": "4", "rate_max": "4", "scur": ""},
		"web/10.99.0.50": {"status": "UP", "weight": "3", "act": "1", "bck": "0", "type": "2", "stot": "230", "lbtot": "230", "bin": "550000", "lastchg": "90", "check_status": "L4OK", "check_duration": "1", "rate": "4", "rate_max": "4", "sid": "1"},
		"web/10.99.0.51": {"status": "DOWN", "check_status": "L7STS", "check_code": "503", "check_duration": "2", "lastchg": "7200"},
		"web/10.99.0.52": {"status": "DRAIN", "lastchg": "180"},
		"web/10.99.0.53": {"status": "MAINT", "check_status": "L4TOUT"},
		"web/BACKEND":    {"status": "UP", "type": "1", "weight": "3", "act": "1", "stot": "330", "bin": "850000"},
		"www/FRONTEND":   {"status": "OPEN", "scur": "11", "smax": "95", "slim": "2000", "stot": "123457", "bin": "9876543", "bout": "87654321", "ereq": "3", "dreq": "2", "hrsp_2xx": "120000", "hrsp_5xx": "57", "req_rate": "15", "req_rate_max": "240", "req_tot": "123458", "rate": "14", "rate_max": "230", "qcur": ""},
		"www/app1":       {"status": "UP", "type": "2", "qcur": "1", "qmax": "9", "econ": "4", "eresp": "5", "wretr": "6", "wredis": "7", "check_status": "L7OK", "check_code": "200", "check_duration": "3", "chkfail": "8", "chkdown": "1", "lastchg": "4200", "weight": "10", "hrsp_4xx": "700", "lbtot": "61000"},
		"www/app2":       {"status": "DOWN", "check_status": "L4CON", "lastchg": "10"},
		"www/BACKEND":    {"status": "UP", "type": "1", "qcur": "2", "qmax": "12", "wretr": "6", "wredis": "7"},
	} {
		for k, v := range want {
			if got := rows[key][k]; got != v {
				t.Errorf("%s %s = %q, want %q", key, k, got, v)
			}
		}
	}
}

func TestJSON(t *testing.T) {
	f := newFixture(t, nil)
	var s Snapshot
	if err := json.Unmarshal([]byte(f.get("/stats;json", "viewer")), &s); err != nil {
		t.Fatal(err)
	}
	if s.Node != "lb-node-1" || s.Version != "v9.8.7" || len(s.VRRP) != 1 || s.VRRP[0].State != "BACKUP" || len(s.VIPs) != 2 || len(s.L7) != 1 {
		t.Fatalf("snapshot %+v", s)
	}
	r := s.VIPs[0].Rows[0]
	if r.Address != "10.99.0.50" || r.Status != "UP" || r.CheckStatus != "L4OK" || r.Trend.Now.Packets != 200 ||
		len(r.Trend.History) != 2 || r.Packets != 4500 {
		t.Errorf("real %+v", r)
	}
	if m := s.VIPs[0].Rows[3]; m.Status != "MAINT" || !m.Maint {
		t.Errorf("maint real %+v", m)
	}
	if b := s.VIPs[0].Backend; b.Up != 1 || b.Total != 4 || b.Weight != 3 || b.Status != "UP" {
		t.Errorf("backend %+v", b)
	}
}

func TestL7Failure(t *testing.T) {
	f := newFixture(t, nil)
	f.h.src.L7 = fakeL7{err: errors.New("l7 tier not answering")}
	if page := f.get("/stats", "viewer"); !strings.Contains(page, "reading the L7 tier: l7 tier not answering") || !strings.Contains(page, "10.99.0.50") {
		t.Error("an L7 failure hides the page or is not shown")
	}
}

func TestGzip(t *testing.T) {
	f := newFixture(t, nil)
	w := f.do(http.MethodGet, "/stats", "viewer", "look", nil, "Accept-Encoding", "gzip")
	if w.Code != 200 || w.Header().Get("Content-Encoding") != "gzip" || !bytes.HasPrefix(w.Body.Bytes(), []byte{0x1f, 0x8b}) {
		t.Errorf("gzip: %d %v", w.Code, w.Header())
	}
}

// l7Form is what the page's form of an L7 backend posts.
func (f *fixture) l7Form(user, action, weight string, confirmed bool, servers ...string) url.Values {
	v := f.adminForm(user, action, weight, confirmed)
	v.Del("vip")
	v.Set("backend", "www")
	v["server"] = servers
	return v
}

// The L7 tier's servers take the same actions, with the same checks, as
// the reals.
func TestL7AdminActions(t *testing.T) {
	f := newFixture(t, nil)
	origin := []string{"Origin", "http://lb.example:8404", "Sec-Fetch-Site", "same-origin"}
	post := func(user, pass string, form url.Values, hdr ...string) *httptest.ResponseRecorder {
		return f.do(http.MethodPost, "/stats", user, pass, form, hdr...)
	}

	// The form: for admins only.
	l7 := regexp.MustCompile(`(?s)<form method="post" action="/stats" class="admin">\s*<table class="grid l7" data-proxy="www">.*?</form>`).
		FindString(f.get("/stats", "admin"))
	for _, want := range []string{`<input type="checkbox" name="server" value="app1"`, `<input type="checkbox" name="server" value="app2"`,
		`name="backend" value="www"`, `name="token" value="` + f.h.token(users[0]) + `"`, "Choose an action for the selected servers",
		`<option value="maint">Set state to MAINT</option>`, `name="weight"`} {
		if !strings.Contains(l7, want) {
			t.Errorf("the admin's L7 form has no %q:\n%s", want, l7)
		}
	}
	if page := f.get("/stats", "viewer"); strings.Contains(page, `name="server"`) || strings.Contains(page, `name="backend"`) ||
		strings.Contains(page, `class="sel"`) {
		t.Error("the read-only user's page has the L7 admin form")
	}

	// Refused before anything is done.
	for _, c := range []struct {
		name, user, pass string
		form             url.Values
		hdr              []string
		want             int
	}{
		{"read-only user", "viewer", "look", f.l7Form("viewer", "maint", "", true, "app1"), origin, 403},
		{"no credentials", "", "", f.l7Form("admin", "maint", "", true, "app1"), origin, 401},
		{"another origin", "admin", "s3cret", f.l7Form("admin", "maint", "", true, "app1"), []string{"Origin", "http://evil.example"}, 403},
		{"cross-site fetch", "admin", "s3cret", f.l7Form("admin", "maint", "", true, "app1"), []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"no token", "admin", "s3cret", url.Values{"action": {"maint"}, "backend": {"www"}, "server": {"app1"}, "confirmed": {"1"}}, origin, 403},
		{"another user's token", "admin", "s3cret", f.l7Form("viewer", "maint", "", true, "app1"), origin, 403},
		{"unknown action", "admin", "s3cret", f.l7Form("admin", "remove", "", true, "app1"), origin, 400},
		{"no server", "admin", "s3cret", f.l7Form("admin", "drain", "", true), origin, 400},
		{"no backend", "admin", "s3cret", url.Values{"action": {"drain"}, "backend": {""}, "server": {"app1"},
			"token": {f.h.token(users[0])}, "confirmed": {"1"}}, origin, 400},
		{"not a name", "admin", "s3cret", f.l7Form("admin", "drain", "", true, "app1\x00"), origin, 400},
		{"weight out of range", "admin", "s3cret", f.l7Form("admin", "weight", "257", true, "app1"), origin, 400},
	} {
		if w := post(c.user, c.pass, c.form, c.hdr...); w.Code != c.want {
			t.Errorf("%s: %d, want %d: %s", c.name, w.Code, c.want, w.Body)
		}
	}
	if len(f.ops.calls) != 0 {
		t.Fatalf("refused requests called ops: %v", f.ops.calls)
	}

	// Without JavaScript: a confirmation page first, nothing done.
	w := post("admin", "s3cret", f.l7Form("admin", "maint", "", false, "app1", "app2"), origin...)
	body := w.Body.String()
	for _, want := range []string{"Set state to MAINT for these servers of L7 backend <b>www</b>", `<li>app2</li>`,
		`<input type="hidden" name="backend" value="www">`, `<input type="hidden" name="server" value="app1">`, `name="confirmed" value="1"`} {
		if w.Code != 200 || !strings.Contains(body, want) {
			t.Errorf("confirmation page: %d, no %q:\n%s", w.Code, want, body)
		}
	}
	if len(f.ops.calls) != 0 {
		t.Fatalf("unconfirmed action called ops: %v", f.ops.calls)
	}

	// Confirmed: done, logged, back to the page with a notice.
	w = post("admin", "s3cret", f.l7Form("admin", "maint", "", true, "app1", "app2"), origin...)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/stats?action=maint&n=2&of=servers&st=done" {
		t.Fatalf("maint: %d %q %s", w.Code, w.Header().Get("Location"), w.Body)
	}
	if page := f.get(w.Header().Get("Location"), "admin"); !strings.Contains(page, "Set state to MAINT: done for 2 servers.") {
		t.Error("no notice after the action")
	}
	for _, c := range []struct{ action, weight string }{{"drain", ""}, {"ready", ""}, {"weight", "7"}} {
		if w := post("admin", "s3cret", f.l7Form("admin", c.action, c.weight, true, "app2")); w.Code != http.StatusSeeOther {
			t.Fatalf("%s: %d %s", c.action, w.Code, w.Body)
		}
	}
	want := []string{"l7 maint=true www/app1", "l7 maint=true www/app2", "l7 drain www/app2", "l7 enable www/app2", "l7 weight=7 www/app2"}
	if strings.Join(f.ops.calls, "|") != strings.Join(want, "|") {
		t.Errorf("calls %v\nwant  %v", f.ops.calls, want)
	}
	actions := f.actionsLogged(t)
	for _, e := range actions {
		if e["user"] != "admin" || e["backend"] != "www" || e["server"] == nil || e["result"] != "done" || e["vip"] != nil {
			t.Errorf("log line %v", e)
		}
	}
	if len(actions) != 5 {
		t.Errorf("%d actions logged, want 5:\n%s", len(actions), f.log)
	}

	// A failure shows what was and was not done.
	w = post("admin", "s3cret", f.l7Form("admin", "drain", "", true, "app1", "nosuch"), origin...)
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), `L7 backend www has no server &#34;nosuch&#34;`) ||
		!strings.Contains(w.Body.String(), "<th>server</th>") || !strings.Contains(w.Body.String(), "app1</td><td>done") {
		t.Errorf("partial failure: %d %s", w.Code, w.Body)
	}
}
