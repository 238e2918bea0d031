package director

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/directorlb/director/director/api"
)

// Overrides are the operator's changes made with `director ctl`, kept in a
// state file beside the config so they survive an agent restart and a
// reload. The config stays the operator's own file: the agent never
// rewrites it. An override names the VIP and the real by address, or the
// HTTP tier's backend and server by name.
type Overrides struct {
	VIPs map[string]*VIPOverrides `json:"vips,omitempty"`
	L7   []api.L7ServerState      `json:"l7,omitempty"`
}

// VIPOverrides are the changes to one VIP's reals.
type VIPOverrides struct {
	Added   map[string]uint32 `json:"added,omitempty"`   // address -> weight, reals the config does not name
	Removed []string          `json:"removed,omitempty"` // config reals taken out
	Drained []string          `json:"drained,omitempty"`
	Maint   []string          `json:"maint,omitempty"`   // in maintenance
	Weights map[string]uint32 `json:"weights,omitempty"` // address -> weight, over the config's
}

func (o *Overrides) vip(name string) *VIPOverrides {
	if o.VIPs == nil {
		o.VIPs = make(map[string]*VIPOverrides)
	}
	v := o.VIPs[name]
	if v == nil {
		v = &VIPOverrides{}
		o.VIPs[name] = v
	}
	return v
}

// Clone returns a deep copy.
func (o Overrides) Clone() Overrides {
	var c Overrides
	for name, v := range o.VIPs {
		cv := c.vip(name)
		cv.Added = maps.Clone(v.Added)
		cv.Removed = slices.Clone(v.Removed)
		cv.Drained = slices.Clone(v.Drained)
		cv.Maint = slices.Clone(v.Maint)
		cv.Weights = maps.Clone(v.Weights)
	}
	c.L7 = slices.Clone(o.L7)
	return c
}

// Add records a real added by the operator. inConfig: the config names it
// (it had been removed: adding it back undoes the removal).
func (o *Overrides) Add(vip, addr string, weight uint32, inConfig bool) {
	v := o.vip(vip)
	if inConfig {
		v.Removed = slices.DeleteFunc(v.Removed, func(s string) bool { return s == addr })
		o.SetWeight(vip, addr, weight, inConfig)
		return
	}
	if v.Added == nil {
		v.Added = make(map[string]uint32)
	}
	v.Added[addr] = weight
}

// Remove records a real taken out by the operator.
func (o *Overrides) Remove(vip, addr string, inConfig bool) {
	v := o.vip(vip)
	delete(v.Added, addr)
	delete(v.Weights, addr)
	v.Drained = slices.DeleteFunc(v.Drained, func(s string) bool { return s == addr })
	v.Maint = slices.DeleteFunc(v.Maint, func(s string) bool { return s == addr })
	if inConfig && !slices.Contains(v.Removed, addr) {
		v.Removed = append(v.Removed, addr)
	}
	o.tidy(vip)
}

// SetDrained records a drain (true) or an enable (false).
func (o *Overrides) SetDrained(vip, addr string, drained bool) {
	v := o.vip(vip)
	v.Drained = slices.DeleteFunc(v.Drained, func(s string) bool { return s == addr })
	if drained {
		v.Drained = append(v.Drained, addr)
	}
	o.tidy(vip)
}

// SetMaint records putting a real in maintenance (true) or taking it out.
func (o *Overrides) SetMaint(vip, addr string, on bool) {
	v := o.vip(vip)
	v.Maint = slices.DeleteFunc(v.Maint, func(s string) bool { return s == addr })
	if on {
		v.Maint = append(v.Maint, addr)
	}
	o.tidy(vip)
}

// SetWeight records a weight change.
func (o *Overrides) SetWeight(vip, addr string, weight uint32, inConfig bool) {
	v := o.vip(vip)
	if !inConfig {
		if v.Added == nil {
			v.Added = make(map[string]uint32)
		}
		v.Added[addr] = weight
		return
	}
	if v.Weights == nil {
		v.Weights = make(map[string]uint32)
	}
	v.Weights[addr] = weight
}

func (o *Overrides) tidy(vip string) {
	v := o.VIPs[vip]
	if v != nil && len(v.Added) == 0 && len(v.Removed) == 0 && len(v.Drained) == 0 && len(v.Maint) == 0 && len(v.Weights) == 0 {
		delete(o.VIPs, vip)
	}
}

// StatePath is the state file that goes with a config file.
func StatePath(configPath string) string {
	return configPath + ".state"
}

// LoadOverrides reads a state file; a missing file is no overrides.
func LoadOverrides(path string) (Overrides, error) {
	var o Overrides
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return o, nil
	}
	if err != nil {
		return o, fmt.Errorf("read state file: %w", err)
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return o, fmt.Errorf("state file %s: %w", path, err)
	}
	return o, nil
}

// Save writes the state file atomically: a reader, or an agent restarted
// after a crash mid-write, sees the old file or the new one, whole.
func (o Overrides) Save(path string) error {
	b, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write state file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync state file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace state file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// StateFile is a state file that two writers keep: the agent's XDP tier
// its VIPs' part and the HTTP tier its servers' part. Each save writes
// the whole file with the other part as last saved, under a lock that is
// taken last, so that either tier may save while holding its own.
type StateFile struct {
	path string
	mu   sync.Mutex
	cur  Overrides
}

// NewStateFile writes to path, which holds o now (LoadOverrides).
func NewStateFile(path string, o Overrides) *StateFile {
	return &StateFile{path: path, cur: o.Clone()}
}

// SaveVIPs writes the file with the VIPs' part of o.
func (s *StateFile) SaveVIPs(o Overrides) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := o.Clone()
	next.L7 = s.cur.L7
	if err := next.Save(s.path); err != nil {
		return err
	}
	s.cur = next
	return nil
}

// SaveL7 writes the file with the HTTP tier's servers' part l.
func (s *StateFile) SaveL7(l []api.L7ServerState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.cur.Clone()
	next.L7 = slices.Clone(l)
	if err := next.Save(s.path); err != nil {
		return err
	}
	s.cur = next
	return nil
}
