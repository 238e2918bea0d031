// Command director is an XDP direct-routing load balancer: one binary for
// the agent, its control client and the HTTP tier.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "director:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "director",
		Usage:   "XDP direct-routing L4 load balancer",
		Version: version,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "trace, debug, info, warn or error", EnvVars: []string{"DIRECTOR_LOG_LEVEL"}},
		},
		Before: func(c *cli.Context) error {
			log, err := newLogger(c.String("log-level"), os.Stderr)
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			c.App.Metadata = map[string]any{"log": log}
			return nil
		},
		Commands: []*cli.Command{
			runCommand(),
			ctlCommand(),
			teardownCommand(),
			l7Command(),
		},
	}
}
