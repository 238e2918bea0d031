package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/directorlb/director/director/health"
	"github.com/directorlb/director/l7"
)

// serve runs the director tier with the HAProxy configuration of the
// bench: roundrobin, cookie SRV insert indirect nocache, forwardfor,
// keep-alive, HTTP checks every 2 s.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:18090", "listen address")
	backends := fs.String("backends", "", "comma-separated server addresses")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile here until SIGTERM")
	threads := fs.Int("threads", 0, "threads serving, the event loops, as the l7 section's threads (0: the Go default, one per core)")
	engine := fs.String("engine", l7.EngineLoops, "loops or goroutines (FrontendConfig.Engine)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *threads <= 0 {
		*threads = runtime.GOMAXPROCS(0)
	}
	runtime.GOMAXPROCS(l7.Procs(*threads, *engine)) // as the tier sets it
	cfg := l7.BackendConfig{
		Name:       "be",
		Cookie:     &l7.CookieConfig{Name: "SRV", NoCache: true},
		ForwardFor: true,
		Redispatch: true,
		Check:      &l7.CheckConfig{HTTP: &health.HTTPConfig{Path: "/"}, Interval: 2 * time.Second},
	}
	for i, a := range strings.Split(*backends, ",") {
		cfg.Servers = append(cfg.Servers, l7.ServerConfig{Name: fmt.Sprintf("s%d", i+1), Addr: a})
	}
	be, err := l7.NewBackend(cfg)
	if err != nil {
		return err
	}
	log := zerolog.New(os.Stderr).With().Timestamp().Logger().Level(zerolog.InfoLevel)
	fe, err := l7.NewFrontend(l7.FrontendConfig{Name: "fe", Backend: be, Logger: log, Engine: *engine, Loops: *threads})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { _ = l7.CheckHealth(ctx, log, be) }()
	errc := make(chan error, 1)
	go func() { errc <- fe.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return fe.Shutdown(sctx)
	}
}
