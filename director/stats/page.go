package stats

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/directorlb/director/director/api"
)

var (
	//go:embed page.html
	pageHTML string
	//go:embed page.css
	pageCSS string
	//go:embed page.js
	pageJS string
)

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"num":     human,
	"bytes":   humanBytes,
	"rate":    humanRate,
	"ago":     ago,
	"ms":      func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) + " ms" },
	"lower":   strings.ToLower,
	"css":     func() template.CSS { return template.CSS(pageCSS) },
	"js":      func() template.JS { return template.JS(pageJS) },
	"actions": func() any { return actions },
	"anchor":  anchor,
	"brate":   func(v float64) string { return humanBytes(uint64(v+0.5)) + "/s" },
	"mulDur":  func(d time.Duration, n int) time.Duration { return d * time.Duration(n) },
	"actionsFor": func(p *pageData, group, name string) actionsView {
		kind := realsOfVIP
		if group == l7Servers.Group {
			kind = l7Servers
		}
		return actionsView{Kind: kind, Group: name, Token: p.Token}
	},
	"l7row": func(p *pageData, px Proxy, name string, r any, class string) l7RowView {
		v := l7RowView{Name: name, Class: class, Now: p.Time, Select: p.Admin && len(px.Servers) > 0}
		switch r := r.(type) {
		case *Row:
			v.Row = *r
		case Row:
			v.Row = r
		}
		return v
	},
}).Parse(pageHTML))

// l7RowView is one row of an L7 proxy's table. Select: the table has a
// column of check boxes, for an admin to pick servers.
type l7RowView struct {
	Row         Row
	Name, Class string
	Now         time.Time
	Select      bool
}

// actionsView is the admin's action bar under a table of reals or servers.
type actionsView struct {
	Kind         targetKind
	Group, Token string
}

// base is what every page of the handler shows.
type base struct {
	URI   string
	Nonce string
	User  string
	Admin bool
	Token string
}

// pageData is the stats page.
type pageData struct {
	base
	*Snapshot
	Refresh  int // seconds; 0: no refresh
	Notice   string
	Role     string // MASTER, BACKUP, FAULT, INIT, or "" without VRRP
	Uptime   time.Duration
	Local    int // VIPs served by the L7 tier
	Reals    int
	RealsUp  int
	VIPViews []vipView
}

// vipView is a VIP's block of the page.
type vipView struct {
	*VIPStats
	ID    string
	Rows  []realView
	Spark template.HTML
}

type realView struct {
	*RealStats
	Spark   template.HTML
	InState time.Duration // -1: unknown
}

func (h *Handler) base(u User) base {
	b := base{URI: h.cfg.URI, User: u.Name, Admin: u.Admin}
	if u.Admin {
		b.Token = h.token(u)
	}
	return b
}

func (h *Handler) page(u User, s *Snapshot, v view) pageData {
	p := pageData{base: h.base(u), Snapshot: s, Uptime: s.Time.Sub(s.StartedAt)}
	if !v.norefresh && h.cfg.Refresh > 0 {
		p.Refresh = int(math.Ceil(h.cfg.Refresh.Seconds()))
	}
	p.Role = role(s.VRRP)
	for i := range s.VIPs {
		vs := &s.VIPs[i]
		if vs.Mode == "local" {
			p.Local++
		}
		p.Reals += vs.Backend.Total
		p.RealsUp += vs.Backend.Up
		vv := vipView{VIPStats: vs, ID: anchor(vs.Name)}
		// One scale for the reals of a VIP: who takes more shows.
		var top float64
		for _, r := range vs.Rows {
			for _, x := range r.Trend.History {
				top = max(top, x.Bytes)
			}
		}
		for j := range vs.Rows {
			rs := &vs.Rows[j]
			rv := realView{RealStats: rs, InState: -1}
			if !rs.Since.IsZero() {
				rv.InState = s.Time.Sub(rs.Since)
			}
			if s.Sampled {
				rv.Spark = sparkline(rs.Trend.History, top, s.Interval, h.sparkPoints())
			}
			vv.Rows = append(vv.Rows, rv)
		}
		if s.Sampled {
			var vtop float64
			for _, x := range vs.Trend.History {
				vtop = max(vtop, x.Bytes)
			}
			vv.Spark = sparkline(vs.Trend.History, vtop, s.Interval, h.sparkPoints())
		}
		p.VIPViews = append(p.VIPViews, vv)
	}
	return p
}

func (h *Handler) sparkPoints() int {
	if h.src.Sampler == nil {
		return 0
	}
	return h.src.Sampler.n - 1
}

// role sums up the node's VRRP instances: MASTER if all are master, else
// the first one that is not.
func role(vs []api.VRRPInstance) string {
	if len(vs) == 0 {
		return ""
	}
	for _, v := range vs {
		if v.State != "MASTER" {
			return v.State
		}
	}
	return "MASTER"
}

// setNonce gives a page its CSP nonce.
func (b *base) setNonce(n string) { b.Nonce = n }

type noncer interface{ setNonce(string) }

type confirmPage struct {
	base
	Request request
	Label   string
}

type result struct{ Item, Result string }

type resultPage struct {
	base
	Request request
	Label   string
	Results []result
}

// render executes a template with a fresh CSP nonce for its inline style
// and script.
func (h *Handler) render(w http.ResponseWriter, out io.Writer, name string, data noncer) {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	n := base64.RawURLEncoding.EncodeToString(nonce) // nothing for the template to escape
	data.setNonce(n)
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "500 Internal Server Error: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+n+"'; script-src 'nonce-"+n+
		"'; connect-src 'self'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	out.Write(buf.Bytes())
}

// sparkline draws a traffic history as an inline SVG: a line of bytes per
// second, oldest left, on the scale top, the last minutes of slots (right
// aligned: a young history starts late). Only numbers go into it.
func sparkline(hist []Rates, top float64, interval time.Duration, slots int) template.HTML {
	const w, hgt = 120.0, 20.0
	if len(hist) < 2 || slots < 2 {
		return ""
	}
	if len(hist) > slots {
		hist = hist[len(hist)-slots:]
	}
	step := w / float64(slots-1)
	x0 := w - step*float64(len(hist)-1)
	var b strings.Builder
	b.WriteString(`<svg class="spark" width="120" height="20" viewBox="0 0 120 20" role="img" aria-label="`)
	last := hist[len(hist)-1].Bytes
	fmt.Fprintf(&b, "bytes/s, last %s: now %s, at most %s", (interval * time.Duration(len(hist))).Round(time.Second),
		humanBytes(uint64(last)), humanBytes(uint64(top)))
	b.WriteString(`"><title>`)
	fmt.Fprintf(&b, "bytes/s over the last %s: now %s/s, top %s/s", (interval * time.Duration(len(hist))).Round(time.Second),
		humanBytes(uint64(last)), humanBytes(uint64(top)))
	b.WriteString(`</title><polyline fill="none" stroke="#2a6ebb" stroke-width="1.2" points="`)
	for i, r := range hist {
		y := hgt - 1
		if top > 0 {
			y = hgt - 1 - (hgt-2)*r.Bytes/top
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatFloat(x0+step*float64(i), 'f', 1, 64))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(y, 'f', 1, 64))
	}
	b.WriteString(`"/></svg>`)
	return template.HTML(b.String()) // numbers and fixed text only
}

// anchor makes an element id of a name.
func anchor(name string) string {
	var b strings.Builder
	b.WriteString("vip-")
	for _, r := range name {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, ".%x", r)
		}
	}
	return b.String()
}

// human writes a count with a k/M/G suffix past 10,000.
func human(v uint64) string {
	f := float64(v)
	switch {
	case v < 10_000:
		return strconv.FormatUint(v, 10)
	case f < 1e6:
		return strconv.FormatFloat(f/1e3, 'f', 1, 64) + "k"
	case f < 1e9:
		return strconv.FormatFloat(f/1e6, 'f', 1, 64) + "M"
	case f < 1e12:
		return strconv.FormatFloat(f/1e9, 'f', 1, 64) + "G"
	}
	return strconv.FormatFloat(f/1e12, 'f', 1, 64) + "T"
}

func humanBytes(v uint64) string {
	const unit = 1024
	if v < unit {
		return strconv.FormatUint(v, 10) + " B"
	}
	f, i := float64(v), 0
	for f >= unit && i < 5 {
		f /= unit
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + "KMGTP"[i-1:i] + "iB"
}

func humanRate(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return human(uint64(v + 0.5))
}

// ago writes a duration as HAProxy's page does: 3d4h, 2h5m, 4m12s, 9s.
func ago(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
}
