package l7

import (
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
)

func TestStripPort(t *testing.T) {
	for in, want := range map[string]string{
		"example.com": "example.com", "example.com:8080": "example.com", "[2001:db8::1]:80": "[2001:db8::1]",
		"[2001:db8::1]": "[2001:db8::1]", "2001:db8::1": "2001:db8::1", "": "",
	} {
		if got := string(stripPort([]byte(in))); got != want {
			t.Errorf("stripPort(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRuleMatch(t *testing.T) {
	be := &Backend{}
	tests := []struct {
		name string
		rule Rule
		uri  string
		host string
		hdr  []string
		want bool
	}{
		{"no condition", Rule{}, "/", "x", nil, true},
		{"host", Rule{Host: []string{"www.example.com"}}, "/", "www.example.com", nil, true},
		{"host case and port", Rule{Host: []string{"WWW.example.com:443"}}, "/", "www.Example.COM:8080", nil, true},
		{"host other", Rule{Host: []string{"www.example.com"}}, "/", "api.example.com", nil, false},
		{"host any of", Rule{Host: []string{"a.example", "b.example"}}, "/", "b.example", nil, true},
		{"host no suffix match", Rule{Host: []string{"example.com"}}, "/", "www.example.com", nil, false},
		{"path_beg", Rule{PathPrefix: []string{"/api/"}}, "/api/v1/x?y=1", "x", nil, true},
		{"path_beg other", Rule{PathPrefix: []string{"/api/"}}, "/apix", "x", nil, false},
		{"path_beg not in query", Rule{PathPrefix: []string{"/api"}}, "/x?/api", "x", nil, false},
		{"path_beg absolute form", Rule{PathPrefix: []string{"/api"}}, "http://x/api/1", "x", nil, true},
		{"path_end", Rule{PathSuffix: []string{".png", ".css"}}, "/s/a.css?v=3", "x", nil, true},
		{"path_end other", Rule{PathSuffix: []string{".png"}}, "/s/a.png.html", "x", nil, false},
		{"header equals", Rule{Header: []HeaderMatch{{Name: "X-Tenant", Value: "blue"}}}, "/", "x", []string{"x-tenant", "red, blue"}, true},
		{"header equals case", Rule{Header: []HeaderMatch{{Name: "X-Tenant", Value: "blue"}}}, "/", "x", []string{"X-Tenant", "Blue"}, false},
		{"header ignore case", Rule{Header: []HeaderMatch{{Name: "X-Tenant", Value: "blue", IgnoreCase: true}}}, "/", "x", []string{"X-Tenant", "BLUE"}, true},
		{"header contains", Rule{Header: []HeaderMatch{{Name: "User-Agent", Value: "Mobile", Contains: true}}}, "/", "x", []string{"User-Agent", "Foo Mobile/1"}, true},
		{"header contains ignore case", Rule{Header: []HeaderMatch{{Name: "User-Agent", Value: "mobile", Contains: true, IgnoreCase: true}}}, "/", "x", []string{"User-Agent", "Foo MOBILE/1"}, true},
		{"header absent", Rule{Header: []HeaderMatch{{Name: "X-Tenant", Value: "blue"}}}, "/", "x", nil, false},
		{"header second occurrence", Rule{Header: []HeaderMatch{{Name: "X-T", Value: "b"}}}, "/", "x", []string{"X-T", "a", "X-T", "b"}, true},
		{"and: all hold", Rule{Host: []string{"h"}, PathPrefix: []string{"/a"}, Header: []HeaderMatch{{Name: "X", Value: "1"}}}, "/ab", "h", []string{"X", "1"}, true},
		{"and: one fails", Rule{Host: []string{"h"}, PathPrefix: []string{"/a"}, Header: []HeaderMatch{{Name: "X", Value: "1"}}}, "/ab", "h", []string{"X", "2"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.rule.Backend = be
			x, err := tt.rule.compile()
			if err != nil {
				t.Fatal(err)
			}
			var req fasthttp.Request
			req.Header.DisableNormalizing()
			req.SetRequestURI(tt.uri)
			req.Header.SetHost(tt.host)
			for i := 0; i+1 < len(tt.hdr); i += 2 {
				req.Header.Add(tt.hdr[i], tt.hdr[i+1])
			}
			if got := x.match(&req); got != tt.want {
				t.Errorf("match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewRouterErrors(t *testing.T) {
	be := &Backend{}
	tests := []struct {
		rule Rule
		err  string
	}{
		{Rule{Name: "r"}, "rule r: no backend and no return"},
		{Rule{Backend: be, Return: &Return{}}, "rule 0: both a backend and a return"},
		{Rule{Return: &Return{Status: 99}}, "status 99 not in 200..599"},
		{Rule{Return: &Return{Status: 200, ContentType: "a\nb"}}, "bad content type"},
		{Rule{Backend: be, Host: []string{""}}, "empty host"},
		{Rule{Backend: be, PathPrefix: []string{""}}, "empty path prefix"},
		{Rule{Backend: be, Header: []HeaderMatch{{Name: "a b"}}}, "header: bad name"},
	}
	for _, tt := range tests {
		if _, err := NewRouter(nil, []Rule{tt.rule}); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%+v: error %v, want %q", tt.rule, err, tt.err)
		}
	}
	if _, err := NewFrontend(FrontendConfig{Name: "fe"}); err == nil || !strings.Contains(err.Error(), "no backend") {
		t.Errorf("frontend without backend or rules: %v", err)
	}
}

func TestRouterLoopback(t *testing.T) {
	a, b := startApp(t, "a"), startApp(t, "b")
	web, err := NewBackend(BackendConfig{Name: "web", Servers: apps(a)})
	if err != nil {
		t.Fatal(err)
	}
	api, err := NewBackend(BackendConfig{Name: "api", Servers: apps(b)})
	if err != nil {
		t.Fatal(err)
	}
	_, addr := serveFrontend(t, FrontendConfig{Name: "fe", Backend: web, Logger: zerolog.Nop(), Rules: []Rule{
		{Name: "favicon", PathSuffix: []string{"/favicon.ico"}, Return: &Return{Status: 404, ContentType: "text/plain", Body: "no icon\n"}},
		{Name: "api host", Host: []string{"api.example.com"}, Backend: api},
		{Name: "api path", PathPrefix: []string{"/api/"}, Header: []HeaderMatch{{Name: "X-Tenant", Value: "blue"}}, Backend: api},
		{Name: "health", PathPrefix: []string{"/healthz"}, Return: &Return{}},
	}})
	t.Cleanup(api.Close)
	u := "http://" + addr
	cl := &http.Client{}
	tests := []struct {
		name, path, host string
		hdr              []string
		status           int
		body, ctype      string
	}{
		{"default", "/", "www.example.com", nil, 200, "a", "text/plain; charset=utf-8"},
		{"by host", "/", "API.example.com:80", nil, 200, "b", "text/plain; charset=utf-8"},
		{"path without header", "/api/x", "www.example.com", nil, 200, "a", "text/plain; charset=utf-8"},
		{"path and header", "/api/x", "www.example.com", []string{"X-Tenant", "blue"}, 200, "b", "text/plain; charset=utf-8"},
		{"fixed status", "/favicon.ico", "api.example.com", nil, 404, "no icon\n", "text/plain"},
		{"fixed 200", "/healthz", "www.example.com", nil, 200, "", ""},
	}
	for _, tt := range tests {
		r := getHost(t, cl, u+tt.path, tt.host, tt.hdr...)
		if r.status != tt.status || r.server != tt.body || r.header.Get("Content-Type") != tt.ctype {
			t.Errorf("%s: %d %q %q, want %d %q %q", tt.name, r.status, r.server, r.header.Get("Content-Type"), tt.status, tt.body, tt.ctype)
		}
	}

	// Without a default backend, unmatched requests get 503.
	_, addr2 := serveFrontend(t, FrontendConfig{Name: "fe2", Logger: zerolog.Nop(), Rules: []Rule{{Host: []string{"api.example.com"}, Backend: api}}})
	if r := getHost(t, cl, "http://"+addr2, "www.example.com"); r.status != 503 {
		t.Errorf("no rule, no default backend: status %d, want 503", r.status)
	}
	if r := getHost(t, cl, "http://"+addr2, "api.example.com"); r.status != 200 || r.server != "b" {
		t.Errorf("rule without default backend: %d %q", r.status, r.server)
	}
}

// TestRouterAllocs checks that dispatching by rules allocates nothing,
// to a backend or answering itself.
func TestRouterAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	addr := startCannedServer(t)
	be, err := NewBackend(BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: addr}}, Cookie: &CookieConfig{Name: "SRV"}})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	r, err := NewRouter(nil, []Rule{
		{Host: []string{"other"}, Return: &Return{Status: 404}},
		{PathSuffix: []string{".ico"}, Return: &Return{Status: 200, ContentType: "text/plain", Body: "x"}},
		{Host: []string{"x"}, PathPrefix: []string{"/api"}, Header: []HeaderMatch{{Name: "X-Tenant", Value: "blue"}}, Backend: be},
	})
	if err != nil {
		t.Fatal(err)
	}
	allocsPerServe(t, r.Serve, addr, "/api/v1", []string{"X-Tenant", "blue"})
	allocsPerServe(t, r.Serve, addr, "/favicon.ico", nil)
}
