package stats

import (
	"io"
	"strconv"
	"strings"
	"time"
)

// csvColumns are HAProxy's first columns of "show stat" (its management
// guide, section "CSV format"), in its order, so that tools reading
// HAProxy's CSV by name or by position read ours.
var csvColumns = []string{
	"pxname", "svname", "qcur", "qmax", "scur", "smax", "slim", "stot", "bin", "bout",
	"dreq", "dresp", "ereq", "econ", "eresp", "wretr", "wredis", "status", "weight", "act",
	"bck", "chkfail", "chkdown", "lastchg", "downtime", "qlimit", "pid", "iid", "sid", "throttle",
	"lbtot", "tracked", "type", "rate", "rate_lim", "rate_max", "check_status", "check_code", "check_duration", "hrsp_1xx",
	"hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other", "hanafail", "req_rate", "req_rate_max", "req_tot", "cli_abrt",
	"srv_abrt",
}

func col(name string) int {
	for i, c := range csvColumns {
		if c == name {
			return i
		}
	}
	panic("stats: no CSV column " + name)
}

// csvLine is one line being filled; unset fields stay empty, as HAProxy
// leaves the fields a kind of row does not have.
type csvLine []string

func newLine(pxname, svname string, kind RowKind, iid, sid int) csvLine {
	l := make(csvLine, len(csvColumns))
	l.set("pxname", pxname).set("svname", svname).set("type", strconv.Itoa(int(kind)))
	l.set("pid", "1").set("iid", strconv.Itoa(iid)).set("sid", strconv.Itoa(sid))
	return l
}

func (l csvLine) set(name, v string) csvLine { l[col(name)] = v; return l }

func (l csvLine) num(name string, v uint64) csvLine { return l.set(name, strconv.FormatUint(v, 10)) }

// rate sets a per-second rate, rounded as HAProxy's whole numbers.
func (l csvLine) rate(name string, v float64) csvLine {
	return l.num(name, uint64(v+0.5))
}

// csvField quotes nothing: HAProxy's CSV has no quoting, so commas and
// line ends in names become spaces.
func csvField(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ',' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

func writeCSV(w io.Writer, s *Snapshot) error {
	var b strings.Builder
	b.WriteString("# " + strings.Join(csvColumns, ",") + ",\n")
	emit := func(l csvLine) {
		for i := range l {
			l[i] = csvField(l[i])
		}
		b.WriteString(strings.Join(l, ",") + ",\n")
	}
	iid := 0
	for _, v := range s.VIPs {
		iid++
		fe := newLine(v.Name, "FRONTEND", FrontendRow, iid, 0).set("status", "OPEN").
			num("stot", v.NewFlows).num("bin", v.Bytes).num("bout", 0)
		if s.Sampled {
			fe.rate("rate", v.Trend.Now.NewFlows).rate("rate_max", v.Trend.Max.NewFlows)
		}
		emit(fe)
		for i, r := range v.Rows {
			l := newLine(v.Name, r.Address, ServerRow, iid, i+1).set("status", r.Status).
				num("weight", uint64(r.Weight)).num("stot", r.NewFlows).num("lbtot", r.NewFlows).
				num("bin", r.Bytes).num("bout", 0).set("check_status", r.CheckStatus)
			if r.Sorry {
				l.set("act", "0").set("bck", "1")
			} else {
				l.set("act", "1").set("bck", "0")
			}
			if !r.Since.IsZero() {
				l.num("lastchg", uint64(s.Time.Sub(r.Since)/time.Second))
			}
			if r.CheckStatus != "" {
				l.num("check_duration", uint64(r.Latency/time.Millisecond))
				if r.CheckCode != 0 {
					l.set("check_code", strconv.Itoa(r.CheckCode))
				}
			}
			if s.Sampled {
				l.rate("rate", r.Trend.Now.NewFlows).rate("rate_max", r.Trend.Max.NewFlows)
			}
			emit(l)
		}
		be := newLine(v.Name, "BACKEND", BackendRow, iid, 0).set("status", v.Backend.Status).
			num("weight", uint64(v.Backend.Weight)).num("act", uint64(v.Backend.Up)).num("bck", 0).
			num("stot", v.Backend.NewFlows).num("lbtot", v.Backend.NewFlows).num("bin", v.Backend.Bytes).num("bout", 0)
		if s.Sampled {
			be.rate("rate", v.Backend.Rates.NewFlows)
		}
		emit(be)
	}
	for _, p := range s.L7 {
		iid++
		if p.Frontend != nil {
			emit(l7Line(p.Name, "FRONTEND", iid, 0, p.Frontend, s.Time))
		}
		for i := range p.Servers {
			emit(l7Line(p.Name, p.Servers[i].Name, iid, i+1, &p.Servers[i], s.Time))
		}
		if p.Backend != nil {
			emit(l7Line(p.Name, "BACKEND", iid, 0, p.Backend, s.Time))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func l7Line(px, sv string, iid, sid int, r *Row, now time.Time) csvLine {
	l := newLine(px, sv, r.Kind, iid, sid).set("status", r.Status).
		num("scur", r.SessCur).num("smax", r.SessMax).num("stot", r.SessTotal).
		num("bin", r.BytesIn).num("bout", r.BytesOut).num("dresp", r.DeniedResp).
		num("rate", r.SessRate).num("rate_max", r.SessRateMax)
	if r.SessLimit > 0 {
		l.num("slim", r.SessLimit)
	}
	if r.Kind != FrontendRow {
		l.num("qcur", r.QueueCur).num("qmax", r.QueueMax).num("econ", r.ErrConn).num("eresp", r.ErrResp).
			num("wretr", r.Retries).num("wredis", r.Redispatches).num("weight", uint64(r.Weight)).
			num("act", uint64(r.Active)).num("bck", uint64(r.Backup)).num("lbtot", r.LBTotal)
	}
	if r.Kind != ServerRow {
		l.num("dreq", r.DeniedReq)
	}
	if r.Kind == FrontendRow {
		l.num("ereq", r.ErrReq).num("req_rate", r.ReqRate).num("req_rate_max", r.ReqRateMax).num("req_tot", r.ReqTotal)
	}
	if r.Kind == ServerRow {
		l.num("chkfail", r.CheckFails).num("chkdown", r.CheckDowns)
		if r.CheckStatus != "" {
			l.set("check_status", r.CheckStatus).num("check_duration", uint64(r.CheckDuration/time.Millisecond))
			if r.CheckCode != 0 {
				l.set("check_code", strconv.Itoa(r.CheckCode))
			}
		}
	}
	if !r.Since.IsZero() {
		l.num("lastchg", uint64(now.Sub(r.Since)/time.Second))
	}
	for i, name := range []string{"hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"} {
		l.num(name, r.Responses[i])
	}
	return l
}
