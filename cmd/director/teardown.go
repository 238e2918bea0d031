package main

import (
	"fmt"

	"github.com/directorlb/director/loader"
	"github.com/urfave/cli/v2"
)

func teardownCommand() *cli.Command {
	return &cli.Command{
		Name:  "teardown",
		Usage: "detach the XDP program and remove every pinned map (drops the connection table)",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "interface", Aliases: []string{"i"}, Required: true, Usage: "interface to clean up (repeatable)"},
			&cli.StringFlag{Name: "pin-root", Value: loader.DefaultPinRoot, Usage: "bpffs folder holding the pins"},
		},
		Action: func(c *cli.Context) error {
			log := logger(c)
			for _, ifc := range c.StringSlice("interface") {
				if err := loader.Teardown(c.String("pin-root"), ifc); err != nil {
					return cli.Exit(fmt.Sprintf("teardown %s: %v", ifc, err), 1)
				}
				log.Info().Str("interface", ifc).Msg("detached and unpinned")
			}
			return nil
		},
	}
}
