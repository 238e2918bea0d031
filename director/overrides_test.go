package director

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/directorlb/director/director/api"
)

func TestOverridesRoundTripAndTidy(t *testing.T) {
	var o Overrides
	o.Add("web", "10.0.0.14", 3, false)
	o.Remove("web", "10.0.0.12", true)
	o.SetDrained("web", "10.0.0.11", true)
	o.SetMaint("web", "10.0.0.11", true)
	o.SetWeight("web", "10.0.0.13", 5, true)
	o.SetWeight("web", "10.0.0.14", 4, false)

	path := filepath.Join(t.TempDir(), "director.yaml.state")
	if err := o.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadOverrides(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &VIPOverrides{
		Added:   map[string]uint32{"10.0.0.14": 4},
		Removed: []string{"10.0.0.12"},
		Drained: []string{"10.0.0.11"},
		Maint:   []string{"10.0.0.11"},
		Weights: map[string]uint32{"10.0.0.13": 5},
	}
	if !reflect.DeepEqual(got.VIPs["web"], want) {
		t.Fatalf("loaded %+v, want %+v", got.VIPs["web"], want)
	}

	// Undo everything: nothing is left.
	got.Remove("web", "10.0.0.14", false)
	got.Add("web", "10.0.0.12", 1, true)
	got.SetDrained("web", "10.0.0.11", false)
	got.SetMaint("web", "10.0.0.11", false)
	got.Remove("web", "10.0.0.13", false)
	if _, ok := got.VIPs["web"]; ok && len(got.VIPs["web"].Weights) != 1 {
		t.Fatalf("left %+v", got.VIPs["web"])
	}

	// No temp files left behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("files in state folder: %v", entries)
	}
	if o2, err := LoadOverrides(filepath.Join(t.TempDir(), "missing")); err != nil || len(o2.VIPs) != 0 {
		t.Fatalf("missing file: %v %v", o2, err)
	}
	if err := os.WriteFile(path, []byte("{bad"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOverrides(path); err == nil {
		t.Fatal("corrupt state file accepted")
	}
}

// The two tiers save their parts of one state file, each keeping the
// other's; a save that fails leaves the file and what the next save
// keeps as they were.
func TestStateFileParts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "director.yaml.state")
	var vips Overrides
	vips.SetDrained("web", "10.0.0.11", true)
	l7 := []api.L7ServerState{{Backend: "app", Server: "s1", Maint: true, Weight: 1, ConfigWeight: 1}}

	s := NewStateFile(path, Overrides{})
	if err := s.SaveL7(l7); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveVIPs(vips); err != nil {
		t.Fatal(err)
	}
	got, err := LoadOverrides(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.L7, l7) || !reflect.DeepEqual(got.VIPs, vips.VIPs) {
		t.Fatalf("file: %+v", got)
	}

	// The file cannot be replaced: both saves fail, and the next good
	// save writes what was saved before, not the failed part.
	os.Remove(path)
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveL7(nil); err == nil {
		t.Fatal("a save onto a directory succeeded")
	}
	os.Remove(path)
	var more Overrides
	more.SetMaint("web", "10.0.0.12", true)
	if err := s.SaveVIPs(more); err != nil {
		t.Fatal(err)
	}
	got, _ = LoadOverrides(path)
	if !reflect.DeepEqual(got.L7, l7) || !reflect.DeepEqual(got.VIPs, more.VIPs) {
		t.Fatalf("after a failed save: %+v", got)
	}
}
