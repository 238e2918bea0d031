// Command webserver is the vmtests' real server: see package web.
//
//	webserver -name rs1 -listen :80 -echo :9000 -down-file /tmp/rs1.down
//
// GET / answers JSON {server, remote, local, xff}; GET /check.txt answers 200
// or 503 (down while -down-file exists, or after SIGUSR1 until SIGUSR2);
// GET /bytes?n=N&rate=R sends N bytes at R bytes/s; the echo port greets
// with "server=<name> remote=<addr>" and echoes. SIGTERM/SIGINT shut down.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/directorlb/director/vmtests/web"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "webserver:", err)
		os.Exit(1)
	}
}

func run() error {
	hostname, _ := os.Hostname()
	name := flag.String("name", hostname, "server name in answers")
	listen := flag.String("listen", ":80", "comma-separated HTTP listen addresses")
	echo := flag.String("echo", "", "comma-separated TCP echo listen addresses")
	downFile := flag.String("down-file", "", "health check is down while this file exists")
	flag.Parse()

	logger := log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds)
	srv := &web.Server{Name: *name, DownFile: *downFile, Log: logger}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: logger}

	var listeners []net.Listener
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	errc := make(chan error, 8)
	for _, kind := range []struct {
		addrs string
		serve func(net.Listener) error
	}{
		{*listen, hs.Serve},
		{*echo, srv.ServeEcho},
	} {
		for _, a := range strings.Split(kind.addrs, ",") {
			if a = strings.TrimSpace(a); a == "" {
				continue
			}
			l, err := net.Listen("tcp", a)
			if err != nil {
				closeAll()
				return err
			}
			listeners = append(listeners, l)
			logger.Printf("%s listening on %s", *name, l.Addr())
			go func() { errc <- kind.serve(l) }()
		}
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1, syscall.SIGUSR2)
	for {
		select {
		case err := <-errc:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				closeAll()
				return err
			}
		case sig := <-sigs:
			switch sig {
			case syscall.SIGUSR1:
				srv.SetDown(true)
				logger.Printf("health check down")
			case syscall.SIGUSR2:
				srv.SetDown(false)
				logger.Printf("health check up")
			default:
				logger.Printf("%v: shutting down", sig)
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				closeAll()
				_ = hs.Shutdown(ctx)
				return nil
			}
		}
	}
}
