package health_test

import (
	"testing"

	"github.com/directorlb/director/director/health"
)

// check_status follows the layer of the check, as HAProxy's does.
func TestLayerCheckStatus(t *testing.T) {
	for _, c := range []struct {
		cause health.Cause
		layer health.Layer
		want  string
		code  int
	}{
		{health.Cause{Kind: health.CauseOK}, health.Layer4, "L4OK", 0},
		{health.Cause{Kind: health.CauseOK, Code: 200}, health.Layer7, "L7OK", 200},
		{health.Cause{Kind: health.CauseOK}, health.LayerCommand, "PROCOK", 0},
		{health.Cause{Kind: health.CauseTimeout}, health.Layer4, "L4TOUT", 0},
		{health.Cause{Kind: health.CauseTimeout, Detail: health.DetailConnecting}, health.Layer7, "L4TOUT", 0},
		{health.Cause{Kind: health.CauseTimeout}, health.Layer7, "L7TOUT", 0},
		{health.Cause{Kind: health.CauseRefused}, health.Layer4, "L4CON", 0},
		{health.Cause{Kind: health.CauseRefused}, health.Layer7, "L4CON", 0},
		{health.Cause{Kind: health.CauseReset}, health.Layer7, "L4CON", 0},
		{health.Cause{Kind: health.CauseUnreachable}, health.Layer4, "L4CON", 0},
		{health.Cause{Kind: health.CauseStatus, Code: 503}, health.Layer7, "L7STS", 503},
		{health.Cause{Kind: health.CauseBody}, health.Layer7, "L7RSP", 0},
		{health.Cause{Kind: health.CauseClosed}, health.Layer7, "L7RSP", 0},
		{health.Cause{Kind: health.CauseTLS}, health.Layer7, "L6RSP", 0},
		{health.Cause{Kind: health.CauseExit, Code: 2}, health.LayerCommand, "PROCERR", 2},
		{health.Cause{Kind: health.CauseSignal}, health.LayerCommand, "PROCERR", 0},
		{health.Cause{Kind: health.CauseCommandTimeout}, health.LayerCommand, "PROCTOUT", 0},
		{health.Cause{Kind: health.CauseError}, health.Layer4, "UNK", 0},
	} {
		if got, code := c.layer.CheckStatus(c.cause); got != c.want || code != c.code {
			t.Errorf("%v of a layer %d check: %s %d, want %s %d", c.cause, c.layer, got, code, c.want, c.code)
		}
	}
}

// A target's status carries its checker's layer, and reads INI until the
// first check ends.
func TestStatusLayer(t *testing.T) {
	m, err := health.NewMonitor(health.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := health.NewTCPChecker("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	web, err := health.NewHTTPChecker(health.HTTPConfig{Addr: "127.0.0.1:1", Path: "/check.txt"})
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := health.NewCommandChecker(health.CommandConfig{Argv: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key   string
		ck    health.Checker
		layer health.Layer
	}{{"tcp", tcp, health.Layer4}, {"http", web, health.Layer7}, {"cmd", cmd, health.LayerCommand},
		{"func", health.CheckerFunc(nil), health.Layer4}} {
		if err := m.Add(health.Target{Key: c.key, Checker: c.ck}); err != nil {
			t.Fatal(err)
		}
		st, _ := m.Status(c.key)
		if st.Layer != c.layer {
			t.Errorf("%s: layer %d, want %d", c.key, st.Layer, c.layer)
		}
		if s, code := st.CheckStatus(); s != "INI" || code != 0 {
			t.Errorf("%s before its first check: %s %d", c.key, s, code)
		}
		st.Checks, st.Last = 1, health.Pass(0)
		want, _ := c.layer.CheckStatus(health.Cause{Kind: health.CauseOK})
		if s, _ := st.CheckStatus(); s != want {
			t.Errorf("%s after a passing check: %s, want %s", c.key, s, want)
		}
	}
}
