package main

import (
	"strings"
	"testing"
)

const madison = `linux-image-6.1.0-50-amd64 |  6.1.176-1 | http://mirror.example/debian bookworm/main amd64 Packages
linux-image-6.1.0-50-amd64 |  6.1.176-1 | http://mirror.example/debian-security bookworm-security/main amd64 Packages
linux-image-6.1.0-56-amd64 |  6.1.192-2 | http://mirror.example/debian-security bookworm-security/main amd64 Packages
linux-image-6.1.0-55-amd64 |  6.1.192-1 | http://mirror.example/debian-security bookworm-security/main amd64 Packages
linux-image-6.1.0-9-amd64 |  6.1.27-1 | http://mirror.example/debian bookworm/main Sources
linux-image-6.12.95+deb12-amd64 | 6.12.95-1~bpo12+1 | http://mirror.example/debian bookworm-backports/main amd64 Packages
linux-image-6.12.117+deb12-amd64 | 6.12.117-1~deb12u1 | http://mirror.example/debian-security bookworm-security/main amd64 Packages
linux-image-6.12.117+deb12-amd64-unsigned | 6.12.117-1~deb12u1 | http://mirror.example/debian-security bookworm-security/main amd64 Packages
linux-image-6.12.117+deb12-cloud-amd64 | 6.12.117-1~deb12u1 | http://mirror.example/debian-security bookworm-security/main amd64 Packages
garbage line
`

func TestNewestFromMadison(t *testing.T) {
	for _, tc := range []struct {
		series, pkg, version string
	}{
		{"6.1", "linux-image-6.1.0-56-amd64", "6.1.192-2"},
		{"6.12", "linux-image-6.12.117+deb12-amd64", "6.12.117-1~deb12u1"},
	} {
		c, ok := newestFromMadison([]byte(madison), seriesPattern(tc.series))
		if !ok || c.pkg != tc.pkg || c.version != tc.version {
			t.Errorf("%s: got %+v %v, want %s %s", tc.series, c, ok, tc.pkg, tc.version)
		}
	}
	if c, ok := newestFromMadison([]byte(madison), seriesPattern("5.10")); ok {
		t.Errorf("5.10: got %+v, want nothing", c)
	}
}

func TestParseIndexTargets(t *testing.T) {
	out := `deb bookworm http://mirror.example/debian/
deb bookworm-updates http://mirror.example/debian/
deb bookworm-security http://security.example/debian-security/
deb-src bookworm http://other.example/debian/
deb cloud-sdk-bookworm https://vendor.example/apt/
`
	r := parseIndexTargets([]byte(out), "bookworm")
	want := debianRepos{codename: "bookworm", archive: "http://mirror.example/debian", security: "http://security.example/debian-security"}
	if r != want {
		t.Errorf("got %+v, want %+v", r, want)
	}
}

func TestRenderSources(t *testing.T) {
	r := debianRepos{codename: "bookworm", archive: "http://mirror.example/debian", security: "http://security.example/debian-security"}
	got := renderSources(r, defaultSuites("bookworm"), "/k.gpg")
	want := strings.Join([]string{
		"deb [signed-by=/k.gpg] http://mirror.example/debian bookworm main",
		"deb [signed-by=/k.gpg] http://mirror.example/debian bookworm-updates main",
		"deb [signed-by=/k.gpg] http://security.example/debian-security bookworm-security main",
		"deb [signed-by=/k.gpg] http://mirror.example/debian bookworm-backports main",
	}, "\n") + "\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	r.security = ""
	if got := renderSources(r, []string{"bullseye-security"}, ""); got != "" {
		t.Errorf("security suite without a security archive: got %q", got)
	}
}
