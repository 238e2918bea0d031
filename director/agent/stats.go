package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/directorlb/director/director/api"
	"github.com/directorlb/director/director/stats"
)

// startStats serves the stats page when the config asks for it: its
// sampler and its listener run under spawn.
func (a *Agent) startStats(spawn func(string, func(context.Context) error)) error {
	sc := a.cfg.Stats
	if sc == nil {
		return nil
	}
	log := a.log.With().Str("component", "stats").Logger()
	users := make([]stats.User, 0, len(sc.Users))
	for _, u := range sc.Users {
		users = append(users, stats.User{Name: u.Name, Password: u.Password, Admin: u.Admin})
	}
	sm := stats.NewSampler(a, stats.SamplerConfig{})
	h, err := stats.NewHandler(stats.Config{URI: sc.URI, Realm: sc.Realm, Refresh: sc.Refresh,
		HideVersion: sc.HideVersion, ShowNode: sc.ShowNode, Users: users, Log: log},
		stats.Sources{Ops: a, L7: a.Control, Sampler: sm})
	if err != nil {
		return err
	}
	var tc *tls.Config
	if sc.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(sc.TLSCert, sc.TLSKey)
		if err != nil {
			return fmt.Errorf("stats: TLS certificate: %w", err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	l, err := net.Listen("tcp", sc.Address.String())
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	scheme := "http"
	if tc != nil {
		l, scheme = tls.NewListener(l, tc), "https"
	}
	spawn("stats sampler", sm.Run)
	spawn("stats page", func(ctx context.Context) error { return api.Serve(ctx, l, h) })
	log.Info().Str("url", scheme+"://"+sc.Address.String()+sc.URI).Int("users", len(users)).Msg("stats page")
	return nil
}
