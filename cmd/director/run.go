package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/directorlb/director/director/agent"
	"github.com/directorlb/director/loader"
	"github.com/urfave/cli/v2"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:  "run",
		Usage: "run the agent: load the XDP program, check the reals, take ctl commands",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Required: true, Usage: "the config file (YAML)"},
			&cli.StringFlag{Name: "node", Usage: "node name shown in status (default: the hostname)"},
			&cli.StringFlag{Name: "pin-root", Value: loader.DefaultPinRoot, Usage: "bpffs folder for the pinned maps and links"},
		},
		Action: func(c *cli.Context) error {
			log := logger(c)
			a, err := agent.New(agent.Options{ConfigPath: c.String("config"), Version: version, Node: c.String("node"),
				PinRoot: c.String("pin-root"), Log: log})
			if err != nil {
				// The config's errors name file, line and key.
				return cli.Exit(err.Error(), 1)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						if err := a.Reload(ctx); err != nil {
							log.Error().Err(err).Msg("SIGHUP reload")
						}
					}
				}
			}()
			if err := a.Run(ctx); err != nil {
				return cli.Exit(err.Error(), 1)
			}
			log.Info().Msg("stopped; the XDP program keeps forwarding until the next agent or a teardown")
			return nil
		},
	}
}
