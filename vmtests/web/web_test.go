package web

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestHandler(t *testing.T) {
	down := filepath.Join(t.TempDir(), "down")
	s := &Server{Name: "rs1", DownFile: down}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	resp, body := get(t, ts.URL+"/", map[string]string{"X-Forwarded-For": "192.0.2.1"})
	var who WhoAmI
	if err := json.Unmarshal([]byte(body), &who); err != nil {
		t.Fatal(err)
	}
	if who.Server != "rs1" || who.XFF != "192.0.2.1" || !strings.HasPrefix(who.Remote, "127.0.0.1:") ||
		who.Local != strings.TrimPrefix(ts.URL, "http://") || resp.Header.Get("X-Server") != "rs1" {
		t.Errorf("whoami: %+v, headers %v", who, resp.Header)
	}
	if resp, _ := get(t, ts.URL+"/nope", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/nope: %d", resp.StatusCode)
	}

	checks := []struct {
		name  string
		setup func()
		want  int
	}{
		{"up", func() {}, 200},
		{"down file", func() { os.WriteFile(down, nil, 0o644) }, 503},
		{"file removed", func() { os.Remove(down) }, 200},
		{"SetDown", func() { s.SetDown(true) }, 503},
		{"SetDown(false)", func() { s.SetDown(false) }, 200},
	}
	for _, c := range checks {
		c.setup()
		if resp, body := get(t, ts.URL+"/check.txt", nil); resp.StatusCode != c.want {
			t.Errorf("%s: check.txt %d %q, want %d", c.name, resp.StatusCode, body, c.want)
		}
	}
}

func TestBytes(t *testing.T) {
	ts := httptest.NewServer((&Server{Name: "rs1"}).Handler())
	defer ts.Close()
	tests := []struct {
		query   string
		status  int
		n       int
		minTime time.Duration
	}{
		{"n=100000", 200, 100000, 0},
		{"n=30000&rate=100000", 200, 30000, 250 * time.Millisecond},
		{"n=0", 200, 0, 0},
		{"n=-1", 400, -1, 0},
		{"n=x", 400, -1, 0},
		{fmt.Sprintf("n=%d", MaxBytes+1), 400, -1, 0},
		{"n=10&rate=-5", 400, -1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			start := time.Now()
			resp, body := get(t, ts.URL+"/bytes?"+tc.query, nil)
			if resp.StatusCode != tc.status || (tc.n >= 0 && len(body) != tc.n) {
				t.Fatalf("%d, %d bytes; want %d, %d bytes", resp.StatusCode, len(body), tc.status, tc.n)
			}
			if d := time.Since(start); d < tc.minTime {
				t.Errorf("took %v, want at least %v", d, tc.minTime)
			}
		})
	}
}

func TestEcho(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Name: "rs2"}
	done := make(chan error, 1)
	go func() { done <- s.ServeEcho(l) }()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	greet, _ := br.ReadString('\n')
	if want := "server=rs2 remote=" + c.LocalAddr().String() + "\n"; greet != want {
		t.Errorf("greeting %q, want %q", greet, want)
	}
	for _, msg := range []string{"one\n", "two\n"} {
		fmt.Fprint(c, msg)
		if got, err := br.ReadString('\n'); got != msg || err != nil {
			t.Errorf("echo %q %v, want %q", got, err, msg)
		}
	}
	l.Close()
	if err := <-done; err != nil {
		t.Errorf("ServeEcho after Close: %v", err)
	}
}
