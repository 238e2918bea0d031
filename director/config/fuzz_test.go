package config

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/directorlb/director/director"
)

var errLine = regexp.MustCompile(`^director\.yaml:([0-9]+): `)

// FuzzParse: Parse never panics, returns a config or an error, and every
// error names the file and a line of it.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../../configs/*.yaml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, c := range badCases {
		f.Add(doc(c.src))
	}
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("vips: &v [{reals: *v}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("director.yaml", data, topoLinks)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("config %v and error %v", cfg, err)
		}
		if err != nil {
			lines := yamlLines(data)
			errs := Errors(err)
			if len(errs) == 0 {
				t.Fatalf("error without *Error: %v", err)
			}
			for _, line := range bytes.Split([]byte(err.Error()), []byte("\n")) {
				m := errLine.FindSubmatch(line)
				if m == nil {
					t.Fatalf("error line %q does not start with file:line", line)
				}
				if n, _ := strconv.Atoi(string(m[1])); n < 1 || n > lines {
					t.Fatalf("error line %q: the file has %d lines", line, lines)
				}
			}
			return
		}
		checkInvariants(t, cfg)
	})
}

// yamlLines counts lines as the YAML library does: CR, LF, CRLF and the
// Unicode breaks NEL, LS and PS each end one.
func yamlLines(data []byte) int {
	s := string(data)
	s = strings.ReplaceAll(s, "\r\n", "\n")
	n := 1
	for _, r := range s {
		switch r {
		case '\r', '\n', '\u0085', '\u2028', '\u2029':
			n++
		}
	}
	return n
}

// checkInvariants checks what validation promises of a Config.
func checkInvariants(t *testing.T, cfg *Config) {
	t.Helper()
	if len(cfg.Interfaces) == 0 {
		t.Fatal("no interfaces")
	}
	for i := range cfg.VIPs {
		v := &cfg.VIPs[i]
		if w, ok := cfg.VIP(v.Key); !ok || w != v {
			t.Fatalf("VIP %v is not unique", v.Key)
		}
		if v.Mode == L4 && len(v.Reals) == 0 {
			t.Fatalf("VIP %v has no reals", v.Key)
		}
		if (v.AllDown == director.Sorry) != v.SorryServer.IsValid() {
			t.Fatalf("VIP %v: sorry server %v under policy %v", v.Key, v.SorryServer, v.AllDown)
		}
		for _, r := range v.Reals {
			if x, _ := v.Real(r.Addr); x.Check.Target != r.Check.Target {
				t.Fatalf("VIP %v: real %v is not unique", v.Key, r.Addr)
			}
			if r.Addr.Is4() != v.Key.Addr.Is4() || !topoLinks["eth0"][0].Contains(r.Addr) && !topoLinks["eth0"][1].Contains(r.Addr) {
				t.Fatalf("VIP %v: real %v off the link", v.Key, r.Addr)
			}
			if r.Check.Type != NoCheck && (r.Check.Interval <= 0 || r.Check.Timeout <= 0 || r.Check.Rise < 1 || r.Check.Fall < 1) {
				t.Fatalf("VIP %v: real %v: check %+v", v.Key, r.Addr, r.Check)
			}
			if _, _, err := r.Check.HealthTarget(v.HealthKey(r)); err != nil {
				t.Fatalf("VIP %v: real %v: %v", v.Key, r.Addr, err)
			}
		}
	}
	for _, in := range cfg.VRRP {
		if _, err := in.Build(agentCheck{}).Validate(); err != nil {
			t.Fatalf("vrrp %s: %v", in.Name, err)
		}
	}
}
