package l7_test

import (
	"github.com/rs/zerolog"

	"github.com/directorlb/director/l7"
)

// The HAProxy configuration
//
//	frontend http
//	  acl api hdr(host) -i api.example.com
//	  acl favicon path_end /favicon.ico
//	  http-request return status 404 if favicon
//	  use_backend app if api
//	  default_backend web
//
//	backend app
//	  balance leastconn
//	  cookie JSESSIONID prefix nocache
//	  server app1 10.0.0.1:8080
//	  server app2 10.0.0.2:8080
//
//	backend web
//	  balance uri
//	  option forwarded
//	  http-response del-header Server
//	  server web1 10.0.1.1:80
//	  server web2 10.0.1.2:80
//
// as a director frontend and backends.
func ExampleRule() {
	app, err := l7.NewBackend(l7.BackendConfig{
		Name:    "app",
		Balance: l7.BalanceLeastConn,
		Cookie:  &l7.CookieConfig{Name: "JSESSIONID", Mode: l7.CookiePrefix, NoCache: true},
		Servers: []l7.ServerConfig{{Name: "app1", Addr: "10.0.0.1:8080"}, {Name: "app2", Addr: "10.0.0.2:8080"}},
	})
	if err != nil {
		panic(err)
	}
	web, err := l7.NewBackend(l7.BackendConfig{
		Name:       "web",
		Balance:    l7.BalanceURI,
		Forwarded:  true,
		HideServer: true,
		Servers:    []l7.ServerConfig{{Name: "web1", Addr: "10.0.1.1:80"}, {Name: "web2", Addr: "10.0.1.2:80"}},
	})
	if err != nil {
		panic(err)
	}
	_, err = l7.NewFrontend(l7.FrontendConfig{
		Name:    "http",
		Backend: web,
		Rules: []l7.Rule{
			{Name: "favicon", PathSuffix: []string{"/favicon.ico"}, Return: &l7.Return{Status: 404}},
			{Name: "api", Host: []string{"api.example.com"}, Backend: app},
		},
		Logger: zerolog.Nop(),
	})
	if err != nil {
		panic(err)
	}
}
