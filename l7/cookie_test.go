package l7

import (
	"testing"
	"time"
)

func TestCookieDate(t *testing.T) {
	// Values from HAProxy's s30tob64: MSB first, standard alphabet.
	for _, tt := range []struct {
		d    uint32
		want string
	}{{0, "AAAAA"}, {1, "AAAAB"}, {63, "AAAA/"}, {64, "AAABA"}, {1<<30 - 1, "/////"}} {
		got := string(appendDate(nil, tt.d))
		if got != tt.want {
			t.Errorf("appendDate(%d) = %q, want %q", tt.d, got, tt.want)
		}
		back, ok := parseDate([]byte(got))
		if !ok || back != tt.d {
			t.Errorf("parseDate(%q) = %d, %v", got, back, ok)
		}
	}
	for _, bad := range []string{"", "AAAA", "AAAAAA", "AA*AA"} {
		if _, ok := parseDate([]byte(bad)); ok {
			t.Errorf("parseDate(%q) ok", bad)
		}
	}
	now := time.Unix(1_700_000_001, 0)
	if got, want := cookieDate(now), uint32((1_700_000_001+3)>>2); got != want {
		t.Errorf("cookieDate = %d, want %d", got, want)
	}
}

func TestParseSticky(t *testing.T) {
	d := string(appendDate(nil, 1000))
	e := string(appendDate(nil, 900))
	tests := []struct {
		in          string
		srv         string
		last, first uint32
	}{
		{"s1", "s1", 0, 0},
		{"s1|" + d, "s1", 1000, 0},
		{"s1|" + d + "|" + e, "s1", 1000, 900},
		{"s1|garbage|" + e, "s1", 0, 900},
		{"", "", 0, 0},
	}
	for _, tt := range tests {
		c := parseSticky([]byte(tt.in))
		if string(c.server) != tt.srv || c.last != tt.last || c.first != tt.first {
			t.Errorf("parseSticky(%q) = %q %d %d, want %q %d %d", tt.in, c.server, c.last, c.first, tt.srv, tt.last, tt.first)
		}
	}
}

func TestStickyExpired(t *testing.T) {
	const now = 10000                                   // 4-second units
	c := stickyCookie{last: now - 15, first: now - 100} // seen 60 s ago, first 400 s ago
	tests := []struct {
		name             string
		maxIdle, maxLife time.Duration
		want             bool
	}{
		{"no limits", 0, 0, false},
		{"idle within", 2 * time.Minute, 0, false},
		{"idle past", 30 * time.Second, 0, true},
		{"life within", 0, 10 * time.Minute, false},
		{"life past", 0, 5 * time.Minute, true},
	}
	for _, tt := range tests {
		if got := c.expired(now, tt.maxIdle, tt.maxLife); got != tt.want {
			t.Errorf("%s: expired = %v", tt.name, got)
		}
	}
	if (stickyCookie{}).expired(now, time.Second, time.Second) {
		t.Error("a cookie without dates expired")
	}
}

func TestAppendSetCookie(t *testing.T) {
	d, e := string(appendDate(nil, 1000)), string(appendDate(nil, 900))
	tests := []struct {
		name  string
		cc    CookieConfig
		first uint32
		want  string
	}{
		{"plain", CookieConfig{Name: "SRV"}, 0, "SRV=s1; path=/"},
		{"maxidle", CookieConfig{Name: "SRV", MaxIdle: time.Hour}, 0, "SRV=s1|" + d + "; path=/"},
		{"maxlife new", CookieConfig{Name: "SRV", MaxLife: time.Hour}, 0, "SRV=s1|" + d + "|" + d + "; path=/"},
		{"maxlife kept", CookieConfig{Name: "SRV", MaxLife: time.Hour}, 900, "SRV=s1|" + d + "|" + e + "; path=/"},
		{"attributes", CookieConfig{Name: "SRV", Domain: "example.com", HTTPOnly: true, Secure: true}, 0,
			"SRV=s1; path=/; domain=example.com; HttpOnly; Secure"},
	}
	for _, tt := range tests {
		if got := string(tt.cc.appendSetCookie(nil, "s1", 1000, tt.first)); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
