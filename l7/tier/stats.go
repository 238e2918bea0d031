package tier

import (
	"context"
	"time"

	"github.com/directorlb/director/director/stats"
	"github.com/directorlb/director/l7"
)

// L7Stats puts the running section on the stats page: a block per
// frontend (its FRONTEND row), then a block per backend (a row per server
// and its BACKEND row), as HAProxy's page lists proxies.
func (t *Tier) L7Stats(context.Context) ([]stats.Proxy, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	var out []stats.Proxy
	for _, fc := range t.cfg.Frontends {
		if r := t.frontends[fc.Name]; r != nil {
			row := statsRow(r.fe.Stats(), now)
			out = append(out, stats.Proxy{Name: fc.Name, Frontend: &row})
		}
	}
	for _, b := range t.backends {
		bs := b.Stats()
		p := stats.Proxy{Name: bs.PxName}
		for _, s := range bs.Servers {
			p.Servers = append(p.Servers, statsRow(s, now))
		}
		row := statsRow(bs.Stats, now)
		p.Backend = &row
		out = append(out, p)
	}
	return out, nil
}

func statsRow(s l7.Stats, now time.Time) stats.Row {
	u := func(v int64) uint64 { return uint64(max(v, 0)) }
	r := stats.Row{
		Name: s.SvName, Kind: stats.RowKind(s.Type), Status: s.Status, Weight: uint32(max(s.Weight, 0)),
		Active: s.Act, Backup: s.Bck,
		QueueCur: u(s.QCur), QueueMax: u(s.QMax), SessCur: u(s.SCur), SessMax: u(s.SMax), SessLimit: u(s.SLim),
		SessTotal: s.STot, SessRate: s.Rate, SessRateMax: s.RateMax, LBTotal: s.LbTot, BytesIn: s.BIn, BytesOut: s.BOut,
		DeniedReq: s.DReq, DeniedResp: s.DResp, ErrReq: s.EReq, ErrConn: s.ECon, ErrResp: s.EResp,
		Retries: s.WRetr, Redispatches: s.WRedis,
		Responses: [6]uint64{s.HRsp1xx, s.HRsp2xx, s.HRsp3xx, s.HRsp4xx, s.HRsp5xx, s.HRspOther},
		ReqRate:   s.ReqRate, ReqRateMax: s.ReqRateMax, ReqTotal: s.ReqTot,
		CheckStatus: s.CheckStatus, CheckCode: s.CheckCode, CheckDuration: time.Duration(s.CheckDuration) * time.Millisecond,
		CheckDowns: s.ChkDown,
	}
	if s.LastChg > 0 {
		r.Since = now.Add(-time.Duration(s.LastChg) * time.Second)
	}
	return r
}
