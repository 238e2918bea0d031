package l7

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestAppendServerCookie(t *testing.T) {
	tests := []struct {
		in     string
		prefix bool
		want   string
	}{
		{"JSESSIONID=abc; Path=/; HttpOnly", true, "JSESSIONID=s1~abc; Path=/; HttpOnly"},
		{"JSESSIONID=abc", true, "JSESSIONID=s1~abc"},
		{"JSESSIONID= abc", true, "JSESSIONID= s1~abc"},
		{"SERVERID=x; Path=/", false, "SERVERID=s1; Path=/"},
		{"SERVERID=xyz", false, "SERVERID=s1"},
		{"SERVERID=; Max-Age=0", false, "SERVERID=s1; Max-Age=0"},
		{"SERVERID=x ; Path=/", false, "SERVERID=s1 ; Path=/"},
		{"garbage", false, "garbage"},
	}
	for _, tt := range tests {
		if got := string(appendServerCookie(nil, []byte(tt.in), "s1", tt.prefix)); got != tt.want {
			t.Errorf("%q (prefix %v): %q, want %q", tt.in, tt.prefix, got, tt.want)
		}
	}
}

func TestCookieConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cc   CookieConfig
		err  string
	}{
		{"insert", CookieConfig{Name: "SRV", Domain: "a.example", Domains: []string{"b.example"}, Attrs: []string{"SameSite=Strict"}, PostOnly: true, Preserve: true}, ""},
		{"prefix", CookieConfig{Name: "JSESSIONID", Mode: CookiePrefix, NoCache: true}, ""},
		{"rewrite", CookieConfig{Name: "SERVERID", Mode: CookieRewrite}, ""},
		{"unknown mode", CookieConfig{Name: "SRV", Mode: "passive"}, `unknown mode "passive"`},
		{"prefix with maxidle", CookieConfig{Name: "J", Mode: CookiePrefix, MaxIdle: 1}, "need insert mode"},
		{"rewrite with attr", CookieConfig{Name: "J", Mode: CookieRewrite, Attrs: []string{"SameSite=Lax"}}, "need insert mode"},
		{"bad attr", CookieConfig{Name: "SRV", Attrs: []string{"a; b"}}, "bad attr"},
		{"empty attr", CookieConfig{Name: "SRV", Attrs: []string{""}}, "bad attr"},
		{"bad domain", CookieConfig{Name: "SRV", Domains: []string{"a b"}}, "bad domain"},
		{"empty domain", CookieConfig{Name: "SRV", Domains: []string{""}}, "bad domain"},
	}
	for _, tt := range tests {
		err := tt.cc.validate()
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
		}
	}
	_, err := NewBackend(BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a~1", Addr: "127.0.0.1:1"}},
		Cookie: &CookieConfig{Name: "J", Mode: CookiePrefix}})
	if err == nil || !strings.Contains(err.Error(), "no '~' in prefix mode") {
		t.Errorf("server cookie with '~' in prefix mode: %v", err)
	}
}

// setCookie returns the query that makes an appServer set cookie v.
func setCookie(v string) string { return "/?setcookie=" + url.QueryEscape(v) }

func TestCookiePrefix(t *testing.T) {
	a, b := startApp(t, "a"), startApp(t, "b")
	be, u := startProxy(t, BackendConfig{Name: "web", Servers: apps(a, b),
		Cookie: &CookieConfig{Name: "JSESSIONID", Mode: CookiePrefix}})
	cl := &http.Client{}

	// The application's cookie gets its server in front.
	r := get(t, cl, u+setCookie("JSESSIONID=s3cr3t; Path=/; HttpOnly"))
	if want := "JSESSIONID=" + r.server + "~s3cr3t; Path=/; HttpOnly"; r.setCookie != want {
		t.Fatalf("Set-Cookie %q, want %q", r.setCookie, want)
	}
	// Another cookie is left alone.
	if r := get(t, cl, u+setCookie("lang=en")); r.setCookie != "lang=en" {
		t.Errorf("other cookie: Set-Cookie %q", r.setCookie)
	}
	// The prefix routes and is stripped before the server sees it.
	for range 3 {
		r := get(t, cl, u, "Cookie", "lang=en; JSESSIONID=b~s3cr3t")
		if r.server != "b" || r.header.Get("X-Seen-Cookie") != "lang=en; JSESSIONID=s3cr3t" || r.setCookie != "" {
			t.Fatalf("prefixed cookie: went to %s, server saw %q, Set-Cookie %q", r.server, r.header.Get("X-Seen-Cookie"), r.setCookie)
		}
	}
	// No prefix: balanced, passed as it is.
	if r := get(t, cl, u, "Cookie", "JSESSIONID=plain"); r.header.Get("X-Seen-Cookie") != "JSESSIONID=plain" {
		t.Errorf("unprefixed cookie: server saw %q", r.header.Get("X-Seen-Cookie"))
	}
	// b down: the client goes to a, which sees its value and, setting a
	// new session, sticks the client to itself.
	be.SetUp("b", false)
	r = get(t, cl, u+setCookie("JSESSIONID=new; Path=/"), "Cookie", "JSESSIONID=b~s3cr3t")
	if r.server != "a" || r.header.Get("X-Seen-Cookie") != "JSESSIONID=s3cr3t" || r.setCookie != "JSESSIONID=a~new; Path=/" {
		t.Errorf("b down: went to %s, server saw %q, Set-Cookie %q", r.server, r.header.Get("X-Seen-Cookie"), r.setCookie)
	}
	// An unknown server's prefix: balanced, stripped.
	if r := get(t, cl, u, "Cookie", "JSESSIONID=zz~v"); r.status != 200 || r.header.Get("X-Seen-Cookie") != "JSESSIONID=v" {
		t.Errorf("unknown prefix: status %d, server saw %q", r.status, r.header.Get("X-Seen-Cookie"))
	}
}

func TestCookieRewrite(t *testing.T) {
	a, b := startApp(t, "a"), startApp(t, "b")
	_, u := startProxy(t, BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: a.addr, Cookie: "s-a"}, {Name: "b", Addr: b.addr, Cookie: "s-b"}},
		Cookie: &CookieConfig{Name: "SERVERID", Mode: CookieRewrite}})
	cl := &http.Client{}
	r := get(t, cl, u+setCookie("SERVERID=placeholder; Path=/"))
	if want := "SERVERID=s-" + r.server + "; Path=/"; r.setCookie != want {
		t.Fatalf("Set-Cookie %q, want %q", r.setCookie, want)
	}
	for range 3 {
		if r := get(t, cl, u, "Cookie", "SERVERID=s-b"); r.server != "b" || r.header.Get("X-Seen-Cookie") != "SERVERID=s-b" {
			t.Fatalf("rewritten cookie: went to %s, server saw %q", r.server, r.header.Get("X-Seen-Cookie"))
		}
	}
	// No Set-Cookie from the server: none from the proxy.
	if r := get(t, cl, u); r.setCookie != "" {
		t.Errorf("Set-Cookie %q without one from the server", r.setCookie)
	}
}

func TestCookieInsertOptions(t *testing.T) {
	a, b := startApp(t, "a"), startApp(t, "b")
	cl := &http.Client{}
	post := func(t *testing.T, u string) result {
		t.Helper()
		resp, err := cl.Post(u, "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return result{setCookie: resp.Header.Get("Set-Cookie"), header: resp.Header, status: resp.StatusCode}
	}

	t.Run("attributes", func(t *testing.T) {
		_, u := startProxy(t, BackendConfig{Name: "web", Servers: apps(a),
			Cookie: &CookieConfig{Name: "SRV", HTTPOnly: true, Secure: true, Domain: "a.example", Domains: []string{"b.example"}, Attrs: []string{"SameSite=Strict", "Partitioned"}}})
		want := "SRV=a; path=/; domain=a.example; domain=b.example; HttpOnly; Secure; SameSite=Strict; Partitioned"
		if r := get(t, cl, u); r.setCookie != want {
			t.Errorf("Set-Cookie %q, want %q", r.setCookie, want)
		}
	})
	t.Run("not indirect", func(t *testing.T) {
		_, u := startProxy(t, BackendConfig{Name: "web", Servers: apps(a, b), Cookie: &CookieConfig{Name: "SRV", NoIndirect: true}})
		r := get(t, cl, u, "Cookie", "SRV=b; x=1")
		if r.server != "b" || r.header.Get("X-Seen-Cookie") != "SRV=b; x=1" || r.setCookie != "" {
			t.Errorf("went to %s, server saw %q, Set-Cookie %q", r.server, r.header.Get("X-Seen-Cookie"), r.setCookie)
		}
	})
	t.Run("postonly", func(t *testing.T) {
		_, u := startProxy(t, BackendConfig{Name: "web", Servers: apps(a), Cookie: &CookieConfig{Name: "SRV", PostOnly: true}})
		if r := get(t, cl, u); r.setCookie != "" {
			t.Errorf("GET got Set-Cookie %q", r.setCookie)
		}
		if r := post(t, u); r.setCookie != "SRV=a; path=/" {
			t.Errorf("POST got Set-Cookie %q", r.setCookie)
		}
	})
	t.Run("preserve", func(t *testing.T) {
		_, u := startProxy(t, BackendConfig{Name: "web", Servers: apps(a), Cookie: &CookieConfig{Name: "SRV", Preserve: true}})
		// The server ends the session itself: its cookie passes, none is
		// inserted.
		r := get(t, cl, u+setCookie("SRV=; Max-Age=0"), "Cookie", "SRV=a")
		if got := r.header.Values("Set-Cookie"); len(got) != 1 || got[0] != "SRV=; Max-Age=0" {
			t.Errorf("Set-Cookie %q, want the server's alone", got)
		}
		if r := get(t, cl, u+setCookie("SRV=; Max-Age=0")); len(r.header.Values("Set-Cookie")) != 1 {
			t.Errorf("new client: Set-Cookie %q, want the server's alone", r.header.Values("Set-Cookie"))
		}
	})
	t.Run("no preserve", func(t *testing.T) {
		_, u := startProxy(t, BackendConfig{Name: "web", Servers: apps(a), Cookie: &CookieConfig{Name: "SRV"}})
		// Without preserve the server's cookie of the name is replaced
		// by the proxy's, or dropped for a client that has it.
		if got := get(t, cl, u+setCookie("SRV=mine")).header.Values("Set-Cookie"); len(got) != 1 || got[0] != "SRV=a; path=/" {
			t.Errorf("new client: Set-Cookie %q, want the proxy's alone", got)
		}
		if got := get(t, cl, u+setCookie("SRV=mine"), "Cookie", "SRV=a").header.Values("Set-Cookie"); len(got) != 0 {
			t.Errorf("stuck client: Set-Cookie %q, want none", got)
		}
	})
}
