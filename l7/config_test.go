package l7

import (
	"strings"
	"testing"
)

func TestBackendConfigValidate(t *testing.T) {
	srv := func(name, addr string) ServerConfig { return ServerConfig{Name: name, Addr: addr} }
	tests := []struct {
		name string
		cfg  BackendConfig
		err  string // substring; empty means valid
	}{
		{"valid", BackendConfig{Name: "web", Servers: []ServerConfig{srv("a", "127.0.0.1:80")}}, ""},
		{"no name", BackendConfig{Servers: []ServerConfig{srv("a", "127.0.0.1:80")}}, "name is required"},
		{"no servers", BackendConfig{Name: "web"}, "no servers"},
		{"server without name", BackendConfig{Name: "web", Servers: []ServerConfig{srv("", "127.0.0.1:80")}}, "server 0: name is required"},
		{"duplicate server", BackendConfig{Name: "web", Servers: []ServerConfig{srv("a", "127.0.0.1:80"), srv("a", "127.0.0.1:81")}}, "server a: duplicate name"},
		{"bad addr", BackendConfig{Name: "web", Servers: []ServerConfig{srv("a", "127.0.0.1")}}, `server a: addr "127.0.0.1"`},
		{"bad weight", BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: "127.0.0.1:80", Weight: 300}}}, "weight 300 not in 0..256"},
		{"bad cookie value", BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: "127.0.0.1:80", Cookie: "x|y"}}}, "not a valid cookie value"},
		{"same cookie", BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: "127.0.0.1:80", Cookie: "z"}, {Name: "b", Addr: "127.0.0.1:81", Cookie: "z"}}}, `same cookie "z"`},
		{"bad cookie name", BackendConfig{Name: "web", Servers: []ServerConfig{srv("a", "127.0.0.1:80")}, Cookie: &CookieConfig{Name: "S;RV"}}, "cookie: bad name"},
		{"negative timeout", BackendConfig{Name: "web", Servers: []ServerConfig{srv("a", "127.0.0.1:80")}, ServerTimeout: -1}, "negative timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.validate()
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.err != "" && err == nil:
				t.Fatalf("no error, want %q", tt.err)
			case tt.err != "" && !strings.Contains(err.Error(), tt.err):
				t.Fatalf("error %q, want it to contain %q", err, tt.err)
			}
		})
	}
}
