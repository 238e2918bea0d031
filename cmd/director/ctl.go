package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/directorlb/director/director/api"
	"github.com/urfave/cli/v2"
)

func ctlCommand() *cli.Command {
	socket := &cli.StringFlag{Name: "socket", Value: api.DefaultSocket, Usage: "the agent's control socket", EnvVars: []string{"DIRECTOR_SOCKET"}}
	asJSON := &cli.BoolFlag{Name: "json", Usage: "print JSON for scripts"}
	client := func(c *cli.Context) *api.Client { return api.NewClient(c.String("socket")) }
	return &cli.Command{
		Name:  "ctl",
		Usage: "inspect and change a running agent",
		Flags: []cli.Flag{socket, asJSON},
		Subcommands: []*cli.Command{
			{
				Name:   "status",
				Usage:  "the node: interfaces, VRRP, VIPs, packet counters",
				Action: showAction(client, (*api.Client).Status, printStatus),
			},
			{
				Name:  "vip",
				Usage: "VIPs",
				Subcommands: []*cli.Command{{
					Name:   "list",
					Usage:  "list VIPs with their traffic",
					Action: showAction(client, (*api.Client).VIPs, printVIPs),
				}},
			},
			{
				Name:  "real",
				Usage: "real servers",
				Subcommands: []*cli.Command{
					{
						Name:      "list",
						Usage:     "list the reals of one VIP, or of all",
						ArgsUsage: "[VIP]",
						Action: func(c *cli.Context) error {
							cl := client(c)
							var names []string
							if c.NArg() > 0 {
								names = []string{c.Args().First()}
							} else {
								vips, err := cl.VIPs(c.Context)
								if err != nil {
									return fail(err)
								}
								for _, v := range vips {
									names = append(names, v.Name)
								}
							}
							var all []api.Real
							for _, n := range names {
								reals, err := cl.Reals(c.Context, n)
								if err != nil {
									return fail(err)
								}
								all = append(all, reals...)
							}
							return show(c, all, func(w io.Writer) { printReals(w, all) })
						},
					},
					{
						Name:      "add",
						Usage:     "add a real to a VIP",
						ArgsUsage: "VIP ADDR",
						Flags:     []cli.Flag{&cli.UintFlag{Name: "weight", Value: 1, Usage: "weight, 0-256"}},
						Action: realAction(client, func(c *cli.Context, cl *api.Client, vip string, a netip.Addr) error {
							w := uint32(c.Uint("weight"))
							return cl.AddReal(c.Context, vip, a, &w)
						}),
					},
					{
						Name: "remove", Usage: "remove a real from a VIP (its flows are re-picked)", ArgsUsage: "VIP ADDR",
						Action: realAction(client, func(c *cli.Context, cl *api.Client, vip string, a netip.Addr) error {
							return cl.RemoveReal(c.Context, vip, a)
						}),
					},
					{
						Name: "drain", Usage: "weight 0: existing flows finish, no new ones", ArgsUsage: "VIP ADDR",
						Action: realAction(client, func(c *cli.Context, cl *api.Client, vip string, a netip.Addr) error {
							return cl.DrainReal(c.Context, vip, a)
						}),
					},
					{
						Name: "maint", Usage: "maintenance: no traffic at all, existing flows cut (--off: out of it, a drain stays)",
						ArgsUsage: "VIP ADDR",
						Flags:     []cli.Flag{&cli.BoolFlag{Name: "off", Usage: "take the real out of maintenance"}},
						Action: realAction(client, func(c *cli.Context, cl *api.Client, vip string, a netip.Addr) error {
							return cl.MaintReal(c.Context, vip, a, !c.Bool("off"))
						}),
					},
					{
						Name: "enable", Aliases: []string{"ready"}, Usage: "undo drain and maint", ArgsUsage: "VIP ADDR",
						Action: realAction(client, func(c *cli.Context, cl *api.Client, vip string, a netip.Addr) error {
							return cl.EnableReal(c.Context, vip, a)
						}),
					},
					{
						Name: "weight", Usage: "set a real's weight (0-256)", ArgsUsage: "VIP ADDR N",
						Action: func(c *cli.Context) error {
							if c.NArg() != 3 {
								return cli.Exit("usage: director ctl real weight VIP ADDR N", 2)
							}
							n, err := strconv.ParseUint(c.Args().Get(2), 10, 32)
							if err != nil {
								return cli.Exit(fmt.Sprintf("weight %q is not a number", c.Args().Get(2)), 2)
							}
							return realAction(client, func(c *cli.Context, cl *api.Client, vip string, a netip.Addr) error {
								return cl.SetWeight(c.Context, vip, a, uint32(n))
							})(c)
						},
					},
				},
			},
			{
				Name:  "l7",
				Usage: "the HTTP tier (the l7 section)",
				Subcommands: []*cli.Command{{
					Name:        "server",
					Usage:       "the servers of the L7 backends, by backend and server name (HAProxy's set server)",
					Subcommands: l7ServerCommands(client),
				}},
			},
			{
				Name:  "reload",
				Usage: "re-read the config file; an invalid one is rejected and the running config kept",
				Action: func(c *cli.Context) error {
					if err := client(c).Reload(c.Context); err != nil {
						return fail(err)
					}
					fmt.Fprintln(c.App.Writer, "reloaded")
					return nil
				},
			},
		},
	}
}

func realAction(client func(*cli.Context) *api.Client, do func(*cli.Context, *api.Client, string, netip.Addr) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() < 2 {
			return cli.Exit("usage: director ctl real "+c.Command.Name+" VIP ADDR", 2)
		}
		addr, err := netip.ParseAddr(c.Args().Get(1))
		if err != nil {
			return cli.Exit(fmt.Sprintf("%q is not an IP address", c.Args().Get(1)), 2)
		}
		if err := do(c, client(c), c.Args().First(), addr); err != nil {
			return fail(err)
		}
		fmt.Fprintf(c.App.Writer, "%s %s: %s done\n", c.Args().First(), addr, c.Command.Name)
		return nil
	}
}

// l7ServerCommands are `ctl l7 server ...`: the `ctl real ...` of the
// HTTP tier, its servers named by backend and server as in the config.
func l7ServerCommands(client func(*cli.Context) *api.Client) []*cli.Command {
	const args = "BACKEND SERVER"
	return []*cli.Command{
		{
			Name:   "list",
			Usage:  "list the servers of every L7 backend",
			Flags:  []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON for scripts"}},
			Action: showAction(client, (*api.Client).L7Servers, printL7Servers),
		},
		{
			Name: "drain", Usage: "no new clients; clients stuck to it by a cookie stay", ArgsUsage: args,
			Action: l7Action(client, func(c *cli.Context, cl *api.Client, backend, server string) error {
				return cl.DrainL7Server(c.Context, backend, server)
			}),
		},
		{
			Name: "maint", Usage: "maintenance: no requests at all, sticky clients move; checks do not end it (--off: out of it, a drain stays)",
			ArgsUsage: args,
			Flags:     []cli.Flag{&cli.BoolFlag{Name: "off", Usage: "take the server out of maintenance"}},
			Action: l7Action(client, func(c *cli.Context, cl *api.Client, backend, server string) error {
				return cl.MaintL7Server(c.Context, backend, server, !c.Bool("off"))
			}),
		},
		{
			Name: "ready", Aliases: []string{"enable"}, Usage: "undo drain and maint", ArgsUsage: args,
			Action: l7Action(client, func(c *cli.Context, cl *api.Client, backend, server string) error {
				return cl.EnableL7Server(c.Context, backend, server)
			}),
		},
		{
			Name: "weight", Usage: "set a server's weight (0-256; 0 drains it)", ArgsUsage: args + " N",
			Action: l7Action(client, func(c *cli.Context, cl *api.Client, backend, server string) error {
				n, err := strconv.ParseUint(c.Args().Get(2), 10, 32)
				if err != nil {
					return cli.Exit(fmt.Sprintf("weight %q is not a number", c.Args().Get(2)), 2)
				}
				return cl.SetL7Weight(c.Context, backend, server, uint32(n))
			}),
		},
	}
}

// l7Action runs do on the server its arguments name, once they are as
// many as the command's ArgsUsage says.
func l7Action(client func(*cli.Context) *api.Client, do func(*cli.Context, *api.Client, string, string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() != len(strings.Fields(c.Command.ArgsUsage)) {
			return cli.Exit("usage: director ctl l7 server "+c.Command.Name+" "+c.Command.ArgsUsage, 2)
		}
		backend, server := c.Args().Get(0), c.Args().Get(1)
		if err := do(c, client(c), backend, server); err != nil {
			var exit cli.ExitCoder
			if errors.As(err, &exit) {
				return err
			}
			return fail(err)
		}
		fmt.Fprintf(c.App.Writer, "%s/%s: %s done\n", backend, server, c.Command.Name)
		return nil
	}
}

// fail exits 1 with the agent's message (3 when there is no agent).
func fail(err error) error {
	if errors.Is(err, api.ErrNoAgent) {
		return cli.Exit(err.Error(), 3)
	}
	return cli.Exit(err.Error(), 1)
}

// showAction shows what get reads from the agent, as a table or JSON.
func showAction[T any](client func(*cli.Context) *api.Client, get func(*api.Client, context.Context) (T, error),
	table func(io.Writer, T)) cli.ActionFunc {
	return func(c *cli.Context) error {
		v, err := get(client(c), c.Context)
		if err != nil {
			return fail(err)
		}
		return show(c, v, func(w io.Writer) { table(w, v) })
	}
}

func show(c *cli.Context, v any, table func(io.Writer)) error {
	if wantJSON(c) {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// wantJSON: --json was given to the command or to ctl (c.Bool reads only
// the nearest of the two that defines it, set or not).
func wantJSON(c *cli.Context) bool {
	for _, x := range c.Lineage() {
		if slices.Contains(x.LocalFlagNames(), "json") {
			return x.Bool("json")
		}
	}
	return false
}

func printStatus(w io.Writer, st api.Status) {
	fmt.Fprintf(w, "node\t%s\nversion\t%s\nup since\t%s\nconfig\t%s\n", st.Node, st.Version, st.StartedAt.Format(time.RFC3339), st.Config)
	fmt.Fprintf(w, "VIPs\t%d\nreals up\t%d of %d\n", st.VIPs, st.RealsUp, st.Reals)
	for _, i := range st.Interfaces {
		fmt.Fprintf(w, "interface\t%s: XDP %s, program %d, link %d\n", i.Name, i.Mode, i.ProgramID, i.LinkID)
	}
	for _, v := range st.VRRP {
		fmt.Fprintf(w, "vrrp %s\t%s, priority %d (base %d), master %s, since %s\n", v.Name, v.State, v.Priority, v.Base, v.Master, v.Since.Format(time.TimeOnly))
		c := v.Counters
		fmt.Fprintf(w, "vrrp %s\tvrid %d, advert %v; adverts sent %d, received %d; priority 0 sent %d, received %d; became master %d, transitions %d\n",
			v.Name, v.VRID, v.AdvertInterval, c.AdvertsSent, c.AdvertsReceived, c.Priority0Sent, c.Priority0Received, c.BecameMaster, c.Transitions)
		if len(v.FailingTracks) > 0 {
			fmt.Fprintf(w, "vrrp %s\tfailing tracks: %s\n", v.Name, strings.Join(v.FailingTracks, ", "))
		}
		if c.SendErrors+c.ActionErrors > 0 || len(c.Discards) > 0 {
			causes := make([]string, 0, len(c.Discards))
			for k, n := range c.Discards {
				causes = append(causes, fmt.Sprintf("%s %d", k, n))
			}
			sort.Strings(causes)
			fmt.Fprintf(w, "vrrp %s\tsend errors %d, action errors %d, discarded: %s\n", v.Name, c.SendErrors, c.ActionErrors, strings.Join(causes, ", "))
		}
	}
	keys := make([]string, 0, len(st.Packets))
	for k := range st.Packets {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "packets %s\t%d\n", k, st.Packets[k])
	}
}

func printVIPs(w io.Writer, vips []api.VIP) {
	fmt.Fprintln(w, "NAME\tADDRESS\tMODE\tSCHED\tREALS UP\tPACKETS\tBYTES\tNEW FLOWS")
	for _, v := range vips {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d/%d\t%d\t%d\t%d\n", v.Name, v.Address, v.Mode, v.Scheduler, v.RealsUp, v.Reals, v.Packets, v.Bytes, v.NewFlows)
	}
}

func printReals(w io.Writer, reals []api.Real) {
	fmt.Fprintln(w, "VIP\tREAL\tSTATE\tWEIGHT\tCHECK\tLATENCY\tSINCE\tPACKETS\tBYTES\tNEW FLOWS")
	for _, r := range reals {
		check := r.LastCheck
		if r.Cause != "" {
			check = r.Cause
		}
		since := "-"
		if !r.Since.IsZero() {
			since = time.Since(r.Since).Truncate(time.Second).String()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\n", r.VIP, r.Address, r.State, r.Weight, check,
			r.Latency.Round(time.Microsecond), since, r.Packets, r.Bytes, r.NewFlows)
	}
}

func printL7Servers(w io.Writer, servers []api.L7Server) {
	fmt.Fprintln(w, "BACKEND\tSERVER\tADDRESS\tSTATE\tWEIGHT\tCUR\tTOTAL\tCHECK")
	for _, s := range servers {
		check := "-"
		if s.CheckStatus != "" {
			check = strings.TrimSpace(fmt.Sprintf("%s %s", s.CheckStatus, s.CheckDesc))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", s.Backend, s.Server, s.Address, s.State, s.Weight,
			s.SessCur, s.SessTotal, check)
	}
}
