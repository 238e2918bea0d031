package vmtests

import (
	"fmt"
	"os"
	"testing"

	"github.com/directorlb/director/vmtests/topo"
)

// helperEnv makes the test binary act as a run that gets killed or
// interrupted (see helperRun) instead of running tests.
const helperEnv = "DIRECTOR_VMTESTS_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		helperRun(mode)
		return
	}
	code := m.Run()
	if err := topo.RemoveBuilds(); err != nil {
		fmt.Fprintln(os.Stderr, "remove builds:", err)
	}
	os.Exit(code)
}
