package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/directorlb/director/director/config"
	"github.com/directorlb/director/l7/tier"
)

func l7Command() *cli.Command {
	return &cli.Command{
		Name:  "l7",
		Usage: "run the HTTP tier alone: the l7 section of a config (the proxy tier of a two-tier setup)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Required: true, Usage: "the config file (YAML) with an l7 section"},
		},
		Action: func(c *cli.Context) error {
			log := logger(c).With().Str("component", "l7").Logger()
			path := c.String("config")
			cfg, err := config.LoadL7(path)
			if err != nil {
				return cli.Exit(err.Error(), 1) // names file, line and key
			}
			t, err := tier.New(cfg.L7, log)
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			defer t.Close()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			for {
				select {
				case <-ctx.Done():
					log.Info().Msg("stopping: requests in flight finish")
					return nil
				case <-hup:
					cfg, err := config.LoadL7(path)
					if err == nil {
						err = t.Reload(cfg.L7)
					}
					if err != nil {
						log.Error().Err(err).Msg("SIGHUP reload: the running configuration is kept")
						continue
					}
					log.Info().Msg("SIGHUP reload applied")
				}
			}
		},
	}
}
