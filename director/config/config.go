package config

import (
	"fmt"
	"net/netip"
	"os"
)

// Links tells which subnets are directly connected to an interface: a real
// must be in one of them, for direct routing only rewrites the destination
// MAC. SystemLinks asks the kernel; StaticLinks is for tests and for
// checking a file away from the host it is for.
type Links interface {
	Prefixes(iface string) ([]netip.Prefix, error)
}

// StaticLinks is a fixed table of interfaces and their subnets.
type StaticLinks map[string][]netip.Prefix

// Prefixes implements Links.
func (s StaticLinks) Prefixes(iface string) ([]netip.Prefix, error) {
	ps, ok := s[iface]
	if !ok {
		return nil, fmt.Errorf("no such interface")
	}
	return ps, nil
}

// Load reads and validates the configuration file at path. links may be nil
// to skip the checks that need the host's interfaces (a real outside every
// connected subnet). On error the Config is nil and the error joins every
// problem found (see Errors), each naming the file, line and key.
func Load(path string, links Links) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, links)
}

// Parse validates data, the contents of the file at path. Relative paths in
// it (state_file, control_socket) are taken relative to path's directory.
func Parse(path string, data []byte, links Links) (*Config, error) {
	return parseKind(path, data, links, forAgent)
}

// LoadL7 reads and validates a configuration for `director l7`: the l7
// section (required), control socket, metrics and stats, and none of the
// XDP tier's sections.
func LoadL7(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseL7(path, data)
}

// ParseL7 is LoadL7 on data, the contents of the file at path.
func ParseL7(path string, data []byte) (*Config, error) {
	return parseKind(path, data, nil, forL7)
}

// kind is what a file configures: the agent, or the HTTP tier alone.
type kind int

const (
	forAgent kind = iota
	forL7
)

func parseKind(path string, data []byte, links Links, k kind) (*Config, error) {
	r := &report{file: path}
	n := parseDocument(r, data)
	if n == nil {
		return nil, r.err()
	}
	w := &walker{report: r}
	raw := parseRoot(w, n)
	if raw == nil || w.over {
		return nil, r.err()
	}
	cfg := validate(r, raw, path, links, k)
	if err := r.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}
