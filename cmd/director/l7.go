package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/directorlb/director/director"
	"github.com/directorlb/director/director/api"
	"github.com/directorlb/director/director/config"
	"github.com/directorlb/director/director/stats"
	"github.com/directorlb/director/l7/tier"
)

func l7Command() *cli.Command {
	return &cli.Command{
		Name:  "l7",
		Usage: "run the HTTP tier alone: the l7 section of a config (the proxy tier of a two-tier setup)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Required: true, Usage: "the config file (YAML) with an l7 section"},
			&cli.StringFlag{Name: "node", Usage: "node name shown in status (default: the hostname)"},
		},
		Action: func(c *cli.Context) error {
			log := logger(c).With().Str("component", "l7").Logger()
			node := c.String("node")
			if node == "" {
				node, _ = os.Hostname()
			}
			n, err := startL7Node(c.String("config"), node, log)
			if err != nil {
				return cli.Exit(err.Error(), 1) // a config error names file, line and key
			}
			defer n.tier.Close()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var wg sync.WaitGroup
			defer func() { stop(); wg.Wait() }() // the servers end with ctx
			if err := n.serve(ctx, &wg); err != nil {
				return cli.Exit(err.Error(), 1)
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			for {
				select {
				case <-ctx.Done():
					log.Info().Msg("stopping: requests in flight finish")
					return nil
				case <-hup:
					if err := n.Reload(ctx); err != nil {
						log.Error().Err(err).Msg("SIGHUP reload")
					}
				}
			}
		},
	}
}

// l7Node is a `director l7` node as ctl and the stats page see it: the
// HTTP tier, whose servers operators may change, and no XDP tier, so no
// VIPs or reals.
type l7Node struct {
	path    string
	tier    *tier.Tier
	node    string
	started time.Time
	log     zerolog.Logger
	tier.Control
	state *director.StateFile // what Control.Persist writes

	mu  sync.Mutex
	cfg *config.Config
}

// startL7Node loads the config at path and starts its HTTP tier, with
// what operators set on its servers before a restart (the state file, as
// HAProxy's server-state-file). The caller closes n.tier.
func startL7Node(path, node string, log zerolog.Logger) (*l7Node, error) {
	cfg, err := config.LoadL7(path)
	if err != nil {
		return nil, err
	}
	over, err := director.LoadOverrides(cfg.StateFile)
	if err != nil {
		return nil, err
	}
	t, err := tier.New(cfg.L7, log)
	if err != nil {
		return nil, err
	}
	for _, s := range t.Restore(over.L7) {
		log.Warn().Str("server", s).Msg("state file: the l7 section has no such server; its saved state is dropped")
	}
	state := director.NewStateFile(cfg.StateFile, over)
	return &l7Node{path: path, tier: t, cfg: cfg, node: node, started: time.Now(), log: log, state: state,
		Control: tier.Control{Running: func() *tier.Tier { return t }, Persist: state.SaveL7}}, nil
}

// serve starts the control socket and, if configured, the stats page.
func (n *l7Node) serve(ctx context.Context, wg *sync.WaitGroup) error {
	spawn := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				n.log.Error().Err(err).Msg(name)
			}
		}()
	}
	l, err := api.Listen(n.cfg.ControlSocket)
	if err != nil {
		return err
	}
	spawn("control socket", func(ctx context.Context) error {
		defer os.Remove(n.cfg.ControlSocket)
		return api.Serve(ctx, l, api.Handler(n, n.log.With().Str("component", "ctl").Logger()))
	})
	sc := n.cfg.Stats
	if sc == nil {
		return nil
	}
	users := make([]stats.User, 0, len(sc.Users))
	for _, u := range sc.Users {
		users = append(users, stats.User{Name: u.Name, Password: u.Password, Admin: u.Admin})
	}
	h, err := stats.NewHandler(stats.Config{URI: sc.URI, Realm: sc.Realm, Refresh: sc.Refresh, HideVersion: sc.HideVersion,
		ShowNode: sc.ShowNode, Users: users, Log: n.log.With().Str("component", "stats").Logger()},
		stats.Sources{Ops: n, L7: n.tier})
	if err != nil {
		return err
	}
	sl, err := net.Listen("tcp", sc.Address.String())
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	if sc.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(sc.TLSCert, sc.TLSKey)
		if err != nil {
			sl.Close()
			return fmt.Errorf("stats: TLS certificate: %w", err)
		}
		sl = tls.NewListener(sl, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	spawn("stats page", func(ctx context.Context) error { return api.Serve(ctx, sl, h) })
	return nil
}

var errNoXDP = fmt.Errorf("%w: a director l7 node has no VIPs or reals (the agent, director run, has)", api.ErrNotFound)

func (n *l7Node) Status(context.Context) (api.Status, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return api.Status{Node: n.node, Version: version, StartedAt: n.started, Config: n.cfg.File, Packets: map[string]uint64{}}, nil
}
func (n *l7Node) VIPs(context.Context) ([]api.VIP, error)           { return nil, nil }
func (n *l7Node) Reals(context.Context, string) ([]api.Real, error) { return nil, errNoXDP }
func (n *l7Node) AddReal(context.Context, string, netip.Addr, *uint32) error {
	return errNoXDP
}
func (n *l7Node) RemoveReal(context.Context, string, netip.Addr) error { return errNoXDP }
func (n *l7Node) DrainReal(context.Context, string, netip.Addr) error  { return errNoXDP }
func (n *l7Node) EnableReal(context.Context, string, netip.Addr) error { return errNoXDP }
func (n *l7Node) MaintReal(context.Context, string, netip.Addr, bool) error {
	return errNoXDP
}
func (n *l7Node) SetWeight(context.Context, string, netip.Addr, uint32) error { return errNoXDP }

// Reload re-reads the file and rebuilds the tier; an invalid file or one
// that cannot apply changes nothing. The control socket and the stats page
// keep their settings until a restart.
func (n *l7Node) Reload(context.Context) error {
	cfg, err := config.LoadL7(n.path)
	if err != nil {
		return fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	if err := n.tier.Reload(cfg.L7); err != nil {
		return fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	// The reload dropped the state of servers the config no longer has.
	if err := n.state.SaveL7(n.tier.Admin()); err != nil {
		n.log.Error().Err(err).Msg("state file: the l7 servers' state after the reload")
	}
	n.mu.Lock()
	n.cfg = cfg
	n.mu.Unlock()
	n.log.Info().Msg("reload applied")
	return nil
}

var _ api.Ops = (*l7Node)(nil)
