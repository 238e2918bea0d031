package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// aptRoot is a private apt configuration and state under the cache
// directory. It never touches the host's sources, lists or package cache:
// the kernels we want are resolved and downloaded with apt's ordinary
// client, but against sources of our own, so nothing gets installed and the
// host's apt keeps seeing exactly what it saw before.
type aptRoot struct {
	dir    string
	config string // path of the file passed in APT_CONFIG
}

// debianRepos are the Debian archive and security archive URIs, taken from
// the host's own apt configuration so that a local mirror or proxy setup is
// honoured and no host name is baked into this program.
type debianRepos struct {
	codename string
	archive  string
	security string
}

func newAptRoot(cacheDir string, repos debianRepos, suites []string, keyring string) (*aptRoot, error) {
	dir := filepath.Join(cacheDir, "apt")
	for _, d := range []string{"etc/apt.conf.d", "etc/sources.list.d", "etc/preferences.d", "etc/trusted.gpg.d", "state/lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	status := filepath.Join(dir, "state", "status")
	if err := os.WriteFile(status, nil, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "sources.list"), []byte(renderSources(repos, suites, keyring)), 0o644); err != nil {
		return nil, err
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "Dir::Etc %q;\n", filepath.Join(dir, "etc"))
	conf.WriteString(`Dir::Etc::main "apt.conf";
Dir::Etc::parts "apt.conf.d";
Dir::Etc::sourcelist "sources.list";
Dir::Etc::sourceparts "sources.list.d";
Dir::Etc::preferences "preferences";
Dir::Etc::preferencesparts "preferences.d";
Dir::Etc::trusted "trusted.gpg";
Dir::Etc::trustedparts "trusted.gpg.d";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
Acquire::Languages "none";
Acquire::Retries "3";
`)
	fmt.Fprintf(&conf, "Dir::State %q;\n", filepath.Join(dir, "state"))
	fmt.Fprintf(&conf, "Dir::State::status %q;\n", status)
	fmt.Fprintf(&conf, "Dir::Cache %q;\n", filepath.Join(dir, "cache"))
	if os.Geteuid() == 0 {
		// The download lands in a directory _apt may not be able to write.
		conf.WriteString("APT::Sandbox::User \"root\";\n")
	}
	conf.WriteString(hostProxyConfig())
	config := filepath.Join(dir, "apt.conf")
	if err := os.WriteFile(config, []byte(conf.String()), 0o644); err != nil {
		return nil, err
	}
	return &aptRoot{dir: dir, config: config}, nil
}

// defaultSuites are the suites searched for kernels: Debian's 6.12 for
// bookworm is published in bookworm-backports and bookworm-security.
func defaultSuites(codename string) []string {
	return []string{codename, codename + "-updates", codename + "-security", codename + "-backports"}
}

// renderSources writes one sources.list line per suite; "-security"
// suites come from the security archive.
func renderSources(r debianRepos, suites []string, keyring string) string {
	var b strings.Builder
	opt := ""
	if keyring != "" {
		opt = fmt.Sprintf("[signed-by=%s] ", keyring)
	}
	for _, s := range suites {
		uri := r.archive
		if strings.HasSuffix(s, "-security") {
			if r.security == "" {
				continue
			}
			uri = r.security
		}
		fmt.Fprintf(&b, "deb %s%s %s main\n", opt, uri, s)
	}
	return b.String()
}

// hostProxyConfig copies the host's apt proxy settings, if any, into the
// private configuration.
func hostProxyConfig() string {
	out, err := exec.Command("apt-config", "dump").Output()
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Acquire::http::Proxy") || strings.HasPrefix(line, "Acquire::https::Proxy") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

func (a *aptRoot) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "APT_CONFIG="+a.config, "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	return cmd
}

func (a *aptRoot) run(dir, name string, args ...string) ([]byte, error) {
	cmd := a.command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (a *aptRoot) update() error {
	_, err := a.run("", "apt-get", "-q", "update")
	return err
}

// candidate is one downloadable version of a kernel image package.
type candidate struct {
	pkg     string
	version string
}

// resolve returns the newest version of any package whose name matches re.
func (a *aptRoot) resolve(re *regexp.Regexp) (candidate, error) {
	out, err := a.run("", "apt-cache", "pkgnames", "linux-image-")
	if err != nil {
		return candidate{}, err
	}
	var names []string
	for _, n := range strings.Fields(string(out)) {
		if re.MatchString(n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return candidate{}, fmt.Errorf("no package matches %s", re)
	}
	out, err = a.run("", "apt-cache", append([]string{"madison"}, names...)...)
	if err != nil {
		return candidate{}, err
	}
	c, ok := newestFromMadison(out, re)
	if !ok {
		return candidate{}, fmt.Errorf("no downloadable version of a package matching %s", re)
	}
	return c, nil
}

// newestFromMadison picks the newest version of a package matching re from
// the output of `apt-cache madison`:
//
//	linux-image-6.1.0-56-amd64 |  6.1.192-2 | http://mirror/debian-security bookworm-security/main amd64 Packages
//
// Versions are compared as Debian versions; ties (the same source version
// built under two ABI names) go to the name that sorts higher as a version,
// i.e. the newer ABI.
func newestFromMadison(out []byte, re *regexp.Regexp) (candidate, bool) {
	var best candidate
	found := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) < 3 {
			continue
		}
		c := candidate{pkg: strings.TrimSpace(f[0]), version: strings.TrimSpace(f[1])}
		if !re.MatchString(c.pkg) || !strings.Contains(f[2], "Packages") {
			continue
		}
		if !found {
			best, found = c, true
			continue
		}
		cmp := compareDebVersions(c.version, best.version)
		if cmp > 0 || (cmp == 0 && compareDebVersions(c.pkg, best.pkg) > 0) {
			best = c
		}
	}
	return best, found
}

// download fetches the .deb of c into dir and returns its path.
func (a *aptRoot) download(c candidate, dir string) (string, error) {
	if _, err := a.run(dir, "apt-get", "-q", "download", c.pkg+"="+c.version); err != nil {
		return "", err
	}
	matches, _ := filepath.Glob(filepath.Join(dir, c.pkg+"_*.deb"))
	if len(matches) != 1 {
		return "", fmt.Errorf("apt-get download %s: expected one .deb in %s, found %d", c.pkg, dir, len(matches))
	}
	return matches[0], nil
}

// hostDebianRepos finds the Debian archive and security URIs configured on
// the host with `apt-get indextargets`.
func hostDebianRepos() (debianRepos, error) {
	codename := osReleaseCodename()
	if codename == "" {
		return debianRepos{}, fmt.Errorf("cannot read VERSION_CODENAME from /etc/os-release; pass -archive and -codename")
	}
	out, err := exec.Command("apt-get", "indextargets", "--format", "$(TARGET_OF) $(RELEASE) $(REPO_URI)").Output()
	if err != nil {
		return debianRepos{}, fmt.Errorf("apt-get indextargets: %v", err)
	}
	r := parseIndexTargets(out, codename)
	if r.archive == "" {
		return r, fmt.Errorf("no deb source for %s in the host's apt configuration; pass -archive", codename)
	}
	return r, nil
}

func parseIndexTargets(out []byte, codename string) debianRepos {
	r := debianRepos{codename: codename}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "deb" {
			continue
		}
		uri := strings.TrimSuffix(f[2], "/")
		switch f[1] {
		case codename:
			if r.archive == "" {
				r.archive = uri
			}
		case codename + "-security":
			if r.security == "" {
				r.security = uri
			}
		}
	}
	return r
}

func osReleaseCodename() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VERSION_CODENAME="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}
