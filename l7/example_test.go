package l7_test

import (
	"context"
	"net"
	"time"

	"github.com/rs/zerolog"

	"github.com/directorlb/director/director/health"
	"github.com/directorlb/director/l7"
)

// The HAProxy configuration
//
//	backend web
//	  balance roundrobin
//	  cookie SRV insert indirect nocache
//	  option forwardfor
//	  option redispatch
//	  option httpchk GET /healthz
//	  server web1 10.0.0.1:80 check inter 2s
//	  server web2 10.0.0.2:80 check inter 2s weight 2
//
// as a director frontend and backend.
func Example() {
	be, err := l7.NewBackend(l7.BackendConfig{
		Name: "web",
		Servers: []l7.ServerConfig{
			{Name: "web1", Addr: "10.0.0.1:80"},
			{Name: "web2", Addr: "10.0.0.2:80", Weight: 2},
		},
		Cookie:     &l7.CookieConfig{Name: "SRV", NoCache: true},
		ForwardFor: true,
		Redispatch: true,
		Check:      &l7.CheckConfig{HTTP: &health.HTTPConfig{Path: "/healthz"}, Interval: 2 * time.Second},
	})
	if err != nil {
		panic(err)
	}
	fe, err := l7.NewFrontend(l7.FrontendConfig{Name: "http", Backend: be, Logger: zerolog.Nop()})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l7.CheckHealth(ctx, zerolog.Nop(), be)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go fe.Serve(ln)
	defer fe.Shutdown(context.Background())
}
