package main

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// guestResult is what the guest reported on its results port.
type guestResult struct {
	booted   bool
	bootTime float64 // guest uptime when /init started, seconds
	release  string  // uname -r in the guest
	modules  map[string]bool
	tests    []testRun
	done     bool
	doneTime float64
	// modRequests are module names the kernel tried to autoload.
	modRequests []string
}

type testRun struct {
	name     string
	start    float64
	end      float64
	exitCode int // -1 until END is seen
	output   []string
	passed   []string
	failed   []string
	skipped  []string
}

var goTestResultRE = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+)`)

// parseGuestOutput reads the results port. Only lines carrying this run's
// nonce are markers, so test output cannot fake one by accident; a marker
// that follows unterminated test output on the same line is still found.
func parseGuestOutput(data []byte, nonce string) *guestResult {
	r := &guestResult{modules: map[string]bool{}}
	tag := markerPrefix + " " + nonce + " "
	var cur *testRun
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		i := strings.Index(line, tag)
		if i < 0 {
			if cur != nil {
				cur.addOutput(line)
			}
			continue
		}
		if i > 0 && cur != nil {
			cur.addOutput(line[:i])
		}
		f := strings.Fields(line[i+len(tag):])
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "BOOT":
			r.booted = true
			if len(f) > 1 {
				r.bootTime, _ = strconv.ParseFloat(f[1], 64)
			}
			if len(f) > 2 {
				r.release = f[2]
			}
		case "MODULE":
			if len(f) > 2 {
				r.modules[f[1]] = f[2] == "ok"
			}
		case "MODREQ":
			if len(f) > 1 && !slices.Contains(r.modRequests, f[1]) {
				r.modRequests = append(r.modRequests, f[1])
			}
		case "START":
			if len(f) > 1 {
				r.tests = append(r.tests, testRun{name: f[1], exitCode: -1})
				cur = &r.tests[len(r.tests)-1]
				if len(f) > 2 {
					cur.start, _ = strconv.ParseFloat(f[2], 64)
				}
			}
		case "END":
			if cur != nil && len(f) > 2 && f[1] == cur.name {
				cur.exitCode, _ = strconv.Atoi(f[2])
				if len(f) > 3 {
					cur.end, _ = strconv.ParseFloat(f[3], 64)
				}
			}
			cur = nil
		case "DONE":
			r.done = true
			if len(f) > 1 {
				r.doneTime, _ = strconv.ParseFloat(f[1], 64)
			}
			cur = nil
		}
	}
	return r
}

func (t *testRun) addOutput(line string) {
	t.output = append(t.output, line)
	if m := goTestResultRE.FindStringSubmatch(line); m != nil {
		switch m[1] {
		case "PASS":
			t.passed = append(t.passed, m[2])
		case "FAIL":
			t.failed = append(t.failed, m[2])
		case "SKIP":
			t.skipped = append(t.skipped, m[2])
		}
	}
}

// verdict decides pass or fail for one kernel. It returns the reasons for
// failure, none if the kernel passed.
func (r *guestResult) verdict(wantModules []string, wantTests []string, timedOut bool) []string {
	var why []string
	if timedOut {
		why = append(why, "timed out")
	}
	if !r.booted {
		return append(why, "the guest never reached /init (see the console log)")
	}
	for _, m := range wantModules {
		ok, seen := r.modules[m]
		switch {
		case !seen:
			why = append(why, fmt.Sprintf("module %s: no result", m))
		case !ok:
			why = append(why, fmt.Sprintf("module %s failed to load", m))
		}
	}
	ran := map[string]*testRun{}
	for i := range r.tests {
		ran[r.tests[i].name] = &r.tests[i]
	}
	for _, name := range wantTests {
		t := ran[name]
		switch {
		case t == nil:
			why = append(why, fmt.Sprintf("%s: never started", name))
		case t.exitCode == -1:
			why = append(why, fmt.Sprintf("%s: did not finish (guest crashed or hung)", name))
		case t.exitCode != 0:
			why = append(why, fmt.Sprintf("%s: exit status %d, failed: %s", name, t.exitCode, strings.Join(t.failed, " ")))
		}
	}
	if !r.done && len(why) == 0 {
		why = append(why, "the guest did not finish /init")
	}
	return why
}

// consoleProblems picks kernel messages worth showing even when the tests
// passed: oopses, warnings, BPF/verifier complaints.
func consoleProblems(console []byte) []string {
	var out []string
	for _, line := range strings.Split(string(console), "\n") {
		line = strings.TrimRight(line, "\r")
		for _, key := range []string{"Kernel panic", "BUG:", "WARNING:", "Oops", "Call Trace:", "general protection fault"} {
			if strings.Contains(line, key) {
				out = append(out, line)
				break
			}
		}
	}
	return out
}
