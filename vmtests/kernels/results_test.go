package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const nonceT = "0123456789abcdef"

func TestParseGuestOutput(t *testing.T) {
	out := strings.Join([]string{
		"@@VMTEST " + nonceT + " BOOT 2.81 6.1.0-56-amd64\r",
		"@@VMTEST " + nonceT + " MODULE veth ok",
		"@@VMTEST " + nonceT + " MODULE ipip fail",
		"@@VMTEST " + nonceT + " START loader 2.95",
		"=== RUN   TestLoad",
		"--- PASS: TestLoad (0.10s)",
		"=== RUN   TestAttach",
		"    attach_test.go:10: veth needs CONFIG_VETH",
		"--- SKIP: TestAttach (0.00s)",
		"@@VMTEST ffffffffffffffff END loader 0 1.00", // another run's marker: output
		"    --- FAIL: TestSub/case (0.00s)",
		"PASS",
		"no newline at the end@@VMTEST " + nonceT + " END loader 1 4.45",
		"kernel noise outside a test",
		"@@VMTEST " + nonceT + " MODREQ net-pf-16-proto-6",
		"@@VMTEST " + nonceT + " MODREQ net-pf-16-proto-6",
		"@@VMTEST " + nonceT + " START smoke 4.50",
		"=== RUN   TestX",
		"@@VMTEST " + nonceT + " DONE 5.00",
	}, "\n")
	r := parseGuestOutput([]byte(out), nonceT)
	if !r.booted || r.bootTime != 2.81 || r.release != "6.1.0-56-amd64" {
		t.Errorf("boot: %+v", r)
	}
	if want := map[string]bool{"veth": true, "ipip": false}; !reflect.DeepEqual(r.modules, want) {
		t.Errorf("modules = %v, want %v", r.modules, want)
	}
	if len(r.tests) != 2 {
		t.Fatalf("tests = %+v", r.tests)
	}
	l := r.tests[0]
	if l.name != "loader" || l.exitCode != 1 || l.start != 2.95 || l.end != 4.45 {
		t.Errorf("loader = %+v", l)
	}
	if !reflect.DeepEqual(l.passed, []string{"TestLoad"}) || !reflect.DeepEqual(l.skipped, []string{"TestAttach"}) || !reflect.DeepEqual(l.failed, []string{"TestSub/case"}) {
		t.Errorf("loader results: passed %v skipped %v failed %v", l.passed, l.skipped, l.failed)
	}
	if last := l.output[len(l.output)-1]; last != "no newline at the end" {
		t.Errorf("last output line = %q", last)
	}
	if s := r.tests[1]; s.name != "smoke" || s.exitCode != -1 {
		t.Errorf("smoke = %+v", s)
	}
	if want := []string{"net-pf-16-proto-6"}; !reflect.DeepEqual(r.modRequests, want) {
		t.Errorf("modRequests = %v, want %v", r.modRequests, want)
	}
	if !r.done || r.doneTime != 5 {
		t.Errorf("done = %v %v", r.done, r.doneTime)
	}
}

func TestVerdict(t *testing.T) {
	ok := func(s string) *guestResult { return parseGuestOutput([]byte(s), nonceT) }
	m := func(s string) string { return "@@VMTEST " + nonceT + " " + s + "\n" }
	pass := m("BOOT 1 6.1") + m("MODULE veth ok") + m("START a 1") + m("END a 0 2") + m("DONE 2")
	for _, tc := range []struct {
		name     string
		out      string
		timedOut bool
		want     []string // substrings, one per reason
	}{
		{"pass", pass, false, nil},
		{"no boot", "", true, []string{"timed out", "never reached /init"}},
		{"module", strings.Replace(pass, "veth ok", "veth fail", 1), false, []string{"module veth failed"}},
		{"exit", strings.Replace(pass, "END a 0", "END a 2", 1), false, []string{"a: exit status 2"}},
		{"crash", m("BOOT 1 6.1") + m("MODULE veth ok") + m("START a 1"), false, []string{"a: did not finish"}},
		{"never started", m("BOOT 1 6.1") + m("MODULE veth ok") + m("DONE 2"), false, []string{"a: never started"}},
		{"no done", m("BOOT 1 6.1") + m("MODULE veth ok") + m("START a 1") + m("END a 0 2"), false, []string{"did not finish /init"}},
	} {
		why := ok(tc.out).verdict([]string{"veth"}, []string{"a"}, tc.timedOut)
		if len(why) != len(tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, why, tc.want)
			continue
		}
		for i := range why {
			if !strings.Contains(why[i], tc.want[i]) {
				t.Errorf("%s: reason %q does not contain %q", tc.name, why[i], tc.want[i])
			}
		}
	}
}

func TestConsoleProblems(t *testing.T) {
	console := "[    1.0] ok\r\n[    2.0] WARNING: CPU: 0 PID: 1 at kernel/bpf/x.c:1\r\n[    3.0] fine\n"
	got := consoleProblems([]byte(console))
	if len(got) != 1 || !strings.Contains(got[0], "WARNING: CPU: 0") {
		t.Errorf("got %q", got)
	}
}

// Only a guest that ended by itself before /init is booted again: not
// one the time limit stopped, not one that ran anything of ours.
func TestDiedBeforeInit(t *testing.T) {
	m := func(s string) string { return "@@VMTEST " + nonceT + " " + s + "\n" }
	for _, tc := range []struct {
		name     string
		out      string
		timedOut bool
		err      error
		want     bool
	}{
		{"panic before /init", "", false, nil, true},
		{"time limit before /init", "", true, nil, false},
		{"failed after /init", m("BOOT 1 6.1") + m("START a 1"), false, nil, false},
		{"not prepared", "", false, errors.New("no initramfs"), false},
	} {
		r := &kernelRun{res: parseGuestOutput([]byte(tc.out), nonceT), timedOut: tc.timedOut, err: tc.err}
		if got := r.diedBeforeInit(); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
