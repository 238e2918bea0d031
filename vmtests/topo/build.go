package topo

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"time"
)

// WebserverPkg is the real server program's package.
const WebserverPkg = "github.com/directorlb/director/vmtests/cmd/webserver"

// Ports the webserver listens on when started by StartWebserver.
const (
	WebPort  = 80
	EchoPort = 9000
)

var builds struct {
	sync.Mutex
	dir  string
	bins map[string]string
}

// GoBuild builds the main package pkg once per process into a temporary
// directory and returns the binary's path. RemoveBuilds (e.g. at the end of
// TestMain) deletes the directory; CleanStale does once this process is
// dead. It runs the go command, which must find this module from the
// working directory.
func GoBuild(pkg string) (string, error) {
	builds.Lock()
	defer builds.Unlock()
	if bin, ok := builds.bins[pkg]; ok {
		return bin, nil
	}
	if builds.dir == "" {
		d, err := makeTempDir("bin")
		if err != nil {
			return "", err
		}
		builds.dir = d
		builds.bins = map[string]string{}
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	bin := filepath.Join(builds.dir, path.Base(pkg))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	builds.bins[pkg] = bin
	return bin, nil
}

// RemoveBuilds deletes the binaries GoBuild made.
func RemoveBuilds() error {
	builds.Lock()
	defer builds.Unlock()
	if builds.dir == "" {
		return nil
	}
	err := os.RemoveAll(builds.dir)
	builds.dir, builds.bins = "", nil
	return err
}

// WebServer is a running vmtests/cmd/webserver.
type WebServer struct {
	*Process
	// DownFile makes /check.txt answer 503 while it exists.
	DownFile string
}

// StartWebserver builds (once) and starts the webserver in h, named after
// h, serving HTTP on WebPort and a TCP echo on EchoPort on all addresses
// (so also on the VIP), and waits until both accept connections. extra
// arguments are appended to the command line.
func (t *Topology) StartWebserver(ctx context.Context, h *Host, extra ...string) (*WebServer, error) {
	bin, err := GoBuild(WebserverPkg)
	if err != nil {
		return nil, err
	}
	down := filepath.Join(t.logDir, h.Name+"-web.down")
	args := append([]string{
		"-name", h.Name,
		"-listen", fmt.Sprintf(":%d", WebPort),
		"-echo", fmt.Sprintf(":%d", EchoPort),
		"-down-file", down,
	}, extra...)
	p, err := h.Start(ProcSpec{Name: "web", Path: bin, Args: args})
	if err != nil {
		return nil, err
	}
	for _, port := range []int{WebPort, EchoPort} {
		addr := fmt.Sprintf("%s:%d", h.Addr4(), port)
		err := WaitFor(ctx, 0, fmt.Sprintf("%s webserver on %s", h.Name, addr), func() (bool, error) {
			if p.Exited() {
				return false, Permanent(fmt.Errorf("exited (%v):\n%s", p.Err(), tail(p.Log(), 2000)))
			}
			dctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			c, err := h.Dial(dctx, "tcp", addr)
			if err != nil {
				return false, err
			}
			c.Close()
			return true, nil
		})
		if err != nil {
			return nil, err
		}
	}
	return &WebServer{Process: p, DownFile: down}, nil
}

// SetHealthy makes /check.txt answer 200 (true) or 503 (false).
func (w *WebServer) SetHealthy(up bool) error {
	if up {
		if err := os.Remove(w.DownFile); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	return os.WriteFile(w.DownFile, []byte("down\n"), 0o644)
}
