package topo

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Every run owns a prefix FamilyPrefix + a digit + 3 characters [0-9a-z]
// (the digit keeps words like "dtests-" out of the family); all its
// namespaces are named <prefix>-<host>. A marker /run/director-vmtests/<prefix>.json
// records the owning process (pid and start time, so a reused pid does not
// count as alive) and the temporary directories the run made. It is written,
// under a lock, before any namespace exists, so a namespace of the family
// without a live marker is left over from a run that was killed.
const (
	FamilyPrefix = "dt"
	// StateDir holds the run markers and the lock.
	StateDir = "/run/director-vmtests"
	// tempPrefix starts the names of temporary directories:
	// director-vmtests-<kind>-<pid>-<start>-<random>.
	tempPrefix = "director-vmtests-"
)

var (
	nsNameRE  = regexp.MustCompile(`^` + FamilyPrefix + `[0-9][0-9a-z]{3}-`)
	tempDirRE = regexp.MustCompile(`^` + tempPrefix + `[a-z]+-(\d+)-(\d+)-`)
)

type marker struct {
	Prefix   string   `json:"prefix"`
	Pid      int      `json:"pid"`
	Start    uint64   `json:"start"`
	TempDirs []string `json:"temp_dirs,omitempty"`
}

// owner identifies a live process: pid plus its start time in clock ticks
// since boot.
type owner struct {
	pid   int
	start uint64
}

func self() owner {
	start, _ := procStart(os.Getpid())
	return owner{pid: os.Getpid(), start: start}
}

func (o owner) alive() bool {
	if o.pid <= 0 {
		return false
	}
	start, err := procStart(o.pid)
	return err == nil && start == o.start
}

// procStart reads field 22 (starttime) of /proc/<pid>/stat.
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// lockState takes the state directory's lock; call the returned func to
// release it.
func lockState() (func(), error) {
	if err := os.MkdirAll(StateDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(StateDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

func markerPath(prefix string) string { return filepath.Join(StateDir, prefix+".json") }

func readMarkers() (map[string]marker, error) {
	ents, err := os.ReadDir(StateDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ms := map[string]marker{}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		var m marker
		b, err := os.ReadFile(filepath.Join(StateDir, e.Name()))
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		if err != nil || m.Prefix != name {
			// Unreadable: treat as dead, it is removed with its namespaces.
			m = marker{Prefix: name}
		}
		ms[name] = m
	}
	return ms, nil
}

func writeMarker(m marker) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := markerPath(m.Prefix) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, markerPath(m.Prefix))
}

// CleanStale removes what earlier runs of this family left behind when they
// were killed: namespaces (and the processes still in them) whose marker's
// owner is dead or that have no marker, dead runs' markers and temporary
// directories. New calls it; a demo's "clean" command can too.
func CleanStale(log zerolog.Logger) error {
	unlock, err := lockState()
	if err != nil {
		return err
	}
	defer unlock()
	return cleanStaleLocked(log)
}

func cleanStaleLocked(log zerolog.Logger) error {
	ms, err := readMarkers()
	if err != nil {
		return err
	}
	var errs []error
	live := map[string]bool{}
	for prefix, m := range ms {
		if (owner{m.Pid, m.Start}).alive() {
			live[prefix] = true
			continue
		}
		for _, d := range m.TempDirs {
			if isOurTempDir(d) {
				errs = append(errs, os.RemoveAll(d))
			}
		}
	}
	ents, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range ents {
		name := e.Name()
		if !nsNameRE.MatchString(name) || live[name[:len(FamilyPrefix)+4]] {
			continue
		}
		path := filepath.Join(netnsDir, name)
		pids, _ := netnsPids(path)
		log.Info().Str("netns", name).Ints("pids", pids).Msg("removing stale namespace")
		errs = append(errs, deleteNetNS(path))
	}
	for prefix := range ms {
		if !live[prefix] {
			errs = append(errs, os.Remove(markerPath(prefix)))
		}
	}
	// Temporary directories of dead processes (e.g. built binaries).
	tmp := os.TempDir()
	dirs, _ := os.ReadDir(tmp)
	for _, d := range dirs {
		sm := tempDirRE.FindStringSubmatch(d.Name())
		if sm == nil {
			continue
		}
		pid, _ := strconv.Atoi(sm[1])
		start, _ := strconv.ParseUint(sm[2], 10, 64)
		if !(owner{pid, start}).alive() {
			errs = append(errs, os.RemoveAll(filepath.Join(tmp, d.Name())))
		}
	}
	for i, e := range errs {
		if errors.Is(e, os.ErrNotExist) {
			errs[i] = nil
		}
	}
	return errors.Join(errs...)
}

func isOurTempDir(d string) bool {
	return filepath.Dir(d) == filepath.Clean(os.TempDir()) && tempDirRE.MatchString(filepath.Base(d))
}

// makeTempDir makes a temporary directory that CleanStale recognises and
// removes once this process is dead.
func makeTempDir(kind string) (string, error) {
	o := self()
	return os.MkdirTemp("", fmt.Sprintf("%s%s-%d-%d-", tempPrefix, kind, o.pid, o.start))
}

// newPrefix picks an unused run prefix; call with the state lock held.
func newPrefix() (string, error) {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	for range 100 {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		p := FamilyPrefix + string(digits[int(b[0])%10])
		for _, c := range b[1:] {
			p += string(digits[int(c)%len(digits)])
		}
		if _, err := os.Stat(markerPath(p)); err == nil {
			continue
		}
		if m, _ := filepath.Glob(filepath.Join(netnsDir, p+"-*")); len(m) > 0 {
			continue
		}
		return p, nil
	}
	return "", errors.New("no free run prefix")
}
