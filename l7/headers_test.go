package l7

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestAppendForwarded(t *testing.T) {
	tests := []struct {
		ip, host string
		tls      bool
		want     string
	}{
		{"192.0.2.7", "example.com", false, "for=192.0.2.7;proto=http;host=example.com"},
		{"2001:db8::1", "example.com", true, `for="[2001:db8::1]";proto=https;host=example.com`},
		{"192.0.2.7", "example.com:8080", false, `for=192.0.2.7;proto=http;host="example.com:8080"`},
		{"192.0.2.7", `a"b`, false, `for=192.0.2.7;proto=http;host="a\"b"`},
		{"", "", false, "for=unknown;proto=http"},
	}
	for _, tt := range tests {
		if got := string(appendForwarded(nil, []byte(tt.ip), tt.tls, []byte(tt.host))); got != tt.want {
			t.Errorf("%s %s: %s, want %s", tt.ip, tt.host, got, tt.want)
		}
	}
}

func TestForwardedAndServerHeaders(t *testing.T) {
	a := startApp(t, "a")
	cl := &http.Client{}
	t.Run("forwarded", func(t *testing.T) {
		_, u := startProxy(t, BackendConfig{Name: "web", Servers: apps(a), ForwardedHost: true, Forwarded: true})
		r := getHost(t, cl, u, "www.example.com:8080", "Forwarded", "for=192.0.2.1")
		if got := r.header.Get("X-Seen-XFH"); got != "www.example.com:8080" {
			t.Errorf("X-Forwarded-Host %q", got)
		}
		if got, want := r.header.Get("X-Seen-Fwd"), `for=192.0.2.1, for=127.0.0.1;proto=http;host="www.example.com:8080"`; got != want {
			t.Errorf("Forwarded %q, want %q", got, want)
		}
		if got := r.header.Get("Server"); got != "app/1.0" {
			t.Errorf("Server %q, want the server's", got)
		}
	})
	t.Run("IPv6 client", func(t *testing.T) {
		be, err := NewBackend(BackendConfig{Name: "web", Servers: apps(a), Forwarded: true})
		if err != nil {
			t.Fatal(err)
		}
		fe, err := NewFrontend(FrontendConfig{Name: "fe", Backend: be, Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "[::1]:0")
		if err != nil {
			t.Skip("no IPv6 loopback:", err)
		}
		go fe.Serve(ln)
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			fe.Shutdown(ctx)
			be.Close()
		}()
		r := getHost(t, cl, "http://"+ln.Addr().String(), "v6.example")
		if got, want := r.header.Get("X-Seen-Fwd"), `for="[::1]";proto=http;host=v6.example`; got != want {
			t.Errorf("Forwarded %q, want %q", got, want)
		}
	})
	t.Run("server replaced", func(t *testing.T) {
		_, u := startProxy(t, BackendConfig{Name: "web", Servers: apps(a), ServerHeader: "director"})
		if got := get(t, cl, u).header.Values("Server"); len(got) != 1 || got[0] != "director" {
			t.Errorf("Server %q, want director", got)
		}
	})
	t.Run("server hidden", func(t *testing.T) {
		_, u := startProxy(t, BackendConfig{Name: "web", Servers: apps(a), HideServer: true})
		r := get(t, cl, u)
		if got := r.header.Values("Server"); len(got) != 0 {
			t.Errorf("Server %q, want none", got)
		}
		if r.header.Get("X-Seen-XFH") != "" || r.header.Get("X-Seen-Fwd") != "" {
			t.Error("forwarding headers without the options")
		}
	})
}

// TestHeaderAndCookieModeAllocs extends TestServeAllocs to the options
// of this file and the other cookie modes.
func TestHeaderAndCookieModeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	addr := startCannedServer(t)
	for _, tt := range []struct {
		name string
		cfg  BackendConfig
		hdr  []string
	}{
		{"forwarded", BackendConfig{ForwardFor: true, ForwardedHost: true, Forwarded: true, ServerHeader: "director"}, nil},
		{"prefix", BackendConfig{Cookie: &CookieConfig{Name: "J", Mode: CookiePrefix}}, []string{"Cookie", "J=a~v; x=1"}},
		{"rewrite", BackendConfig{Cookie: &CookieConfig{Name: "J", Mode: CookieRewrite}}, []string{"Cookie", "J=a"}},
		{"insert options", BackendConfig{Cookie: &CookieConfig{Name: "SRV", NoIndirect: true, Attrs: []string{"SameSite=Lax"}, Domains: []string{"x"}}}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Name, tt.cfg.Servers = "web", []ServerConfig{{Name: "a", Addr: addr}}
			be, err := NewBackend(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer be.Close()
			allocsPerServe(t, be.Serve, addr, "/", tt.hdr)
		})
	}
}

// getHost is get with a Host header.
func getHost(t *testing.T, c *http.Client, url, host string, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{server: string(body), setCookie: resp.Header.Get("Set-Cookie"), header: resp.Header, status: resp.StatusCode}
}
