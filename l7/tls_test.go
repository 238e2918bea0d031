package l7

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// writeCert writes a self-signed certificate for names (its subject is
// cn, so that a test can tell certificates apart) and its key into dir.
func writeCert(t *testing.T, dir, cn string, names ...string) CertFile {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cf := CertFile{CertFile: filepath.Join(dir, cn+".crt"), KeyFile: filepath.Join(dir, cn+".key")}
	write := func(path, typ string, b []byte) {
		// Write and rename, as a certificate manager does.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(cf.CertFile, "CERTIFICATE", der)
	write(cf.KeyFile, "EC PRIVATE KEY", kder)
	return cf
}

// startFrontend serves cfg (with a backend to servers) on loopback and
// returns the frontend and its address.
func startFrontend(t *testing.T, cfg FrontendConfig, srvs ...*testServer) (*Frontend, string) {
	t.Helper()
	be, err := NewBackend(BackendConfig{Name: "web", Servers: servers(srvs...), ForwardFor: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Name, cfg.Backend, cfg.Logger = "fe", be, zerolog.Nop()
	fe, addr := serveFrontend(t, cfg)
	return fe, addr
}

// servedCN connects with SNI name (none if "") and returns the common
// name of the certificate the frontend presented.
func servedCN(t *testing.T, addr, name string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func TestTLSSNI(t *testing.T) {
	dir := t.TempDir()
	a := startServer(t, "a")
	_, addr := startFrontend(t, FrontendConfig{TLS: &TLSConfig{Certs: []CertFile{
		writeCert(t, dir, "default", "default.test"),
		writeCert(t, dir, "wild", "*.example.com"),
		writeCert(t, dir, "exact", "www.example.com", "api.example.org"),
	}}}, a)
	for _, tt := range []struct{ sni, want string }{
		{"www.example.com", "exact"},   // exact before wildcard
		{"WWW.Example.COM", "exact"},   // names are case-insensitive
		{"shop.example.com", "wild"},   // one label under the wildcard
		{"a.b.example.com", "default"}, // a wildcard covers one label only
		{"example.com", "default"},
		{"api.example.org", "exact"},
		{"other.test", "default"},
		{"", "default"}, // no SNI
	} {
		if got := servedCN(t, addr, tt.sni); got != tt.want {
			t.Errorf("SNI %q: served %q, want %q", tt.sni, got, tt.want)
		}
	}
}

func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	a := startServer(t, "a")
	cf := writeCert(t, dir, "site", "site.test")
	fe, addr := startFrontend(t, FrontendConfig{TLS: &TLSConfig{Certs: []CertFile{cf}}}, a)

	// An HTTP/1.1 client whose connection stays open across the reload.
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "site.test", InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var serial *big.Int
	fetch := func() string {
		t.Helper()
		resp, err := c.Get("https://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		serial = resp.TLS.PeerCertificates[0].SerialNumber
		if got := resp.Header.Get("X-Seen-XFP"); got != "https" {
			t.Errorf("server saw X-Forwarded-Proto %q, want https", got)
		}
		return string(b)
	}
	if got := fetch(); got != "a" {
		t.Fatalf("got %q", got)
	}
	old := serial

	// Replace the files with a new certificate for the same name.
	ncf := writeCert(t, dir, "site", "site.test")
	if ncf != cf {
		t.Fatal("paths changed")
	}
	if err := fe.Reload(); err != nil {
		t.Fatal(err)
	}
	// The open connection keeps working with the old certificate...
	if got := fetch(); got != "a" || serial.Cmp(old) != 0 {
		t.Errorf("open connection after reload: %q, same cert %v", got, serial.Cmp(old) == 0)
	}
	// ...and a new connection gets the new one.
	c2, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "site.test", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	newSerial := c2.ConnectionState().PeerCertificates[0].SerialNumber
	c2.Close()
	if newSerial.Cmp(old) == 0 {
		t.Fatal("new connection still gets the old certificate")
	}

	// A broken key: Reload fails and the last good certificate stays.
	if err := os.WriteFile(cf.KeyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = fe.Reload()
	if err == nil || !strings.Contains(err.Error(), cf.CertFile) {
		t.Fatalf("reload of a bad key: %v, want an error naming the file", err)
	}
	c3, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "site.test", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if got := c3.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(newSerial) != 0 {
		t.Error("a failed reload changed the certificate")
	}
}

func TestTLSConfigErrors(t *testing.T) {
	be, err := NewBackend(BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: "127.0.0.1:1"}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		tls  *TLSConfig
		want string
	}{
		{"no certs", &TLSConfig{}, "no certificates"},
		{"missing file", &TLSConfig{Certs: []CertFile{{CertFile: filepath.Join(dir, "x.crt"), KeyFile: filepath.Join(dir, "x.key")}}}, "x.crt"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewFrontend(FrontendConfig{Name: "fe", Backend: be, TLS: tt.tls})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// startSizedServer answers with the length of the request body it got
// in X-Body-Len, the protocol in X-Proto and a body of ?n= bytes.
func startSizedServer(t *testing.T) *testServer {
	t.Helper()
	ts := &testServer{name: "sized"}
	ts.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Body-Len", strconv.FormatInt(n, 10))
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Set("X-Seen-XFP", r.Header.Get("X-Forwarded-Proto"))
		size, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Write(bytes.Repeat([]byte("x"), size))
	}))
	t.Cleanup(ts.srv.Close)
	return ts
}

func TestHTTP2(t *testing.T) {
	dir := t.TempDir()
	s := startSizedServer(t)
	_, addr := startFrontend(t, FrontendConfig{TLS: &TLSConfig{Certs: []CertFile{writeCert(t, dir, "site", "site.test")}}}, s)
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{ServerName: "site.test", InsecureSkipVerify: true},
		ForceAttemptHTTP2: true,
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	for _, tt := range []struct {
		name       string
		body       io.Reader // nil: GET
		bodyLen    int
		respLen    int
		wantLength bool // the response says its Content-Length
	}{
		{"get small", nil, 0, 5, true},
		{"get streamed", nil, 0, 3 * BodyBuffer, false}, // the server sends it chunked
		{"post small", strings.NewReader("hello"), 5, 0, true},
		{"post large", bytes.NewReader(make([]byte, 2*BodyBuffer)), 2 * BodyBuffer, 0, true},
		// No length: the body is sent on chunked.
		{"post unknown length", io.LimitReader(zeros{}, BodyBuffer+7), BodyBuffer + 7, 1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			method := http.MethodGet
			if tt.body != nil {
				method = http.MethodPost
			}
			req, err := http.NewRequest(method, "https://"+addr+"/?n="+strconv.Itoa(tt.respLen), tt.body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.ProtoMajor != 2 {
				t.Errorf("client spoke %s, want HTTP/2", resp.Proto)
			}
			if resp.StatusCode != 200 || len(b) != tt.respLen {
				t.Errorf("status %d, %d bytes, want 200 and %d", resp.StatusCode, len(b), tt.respLen)
			}
			if tt.wantLength && resp.ContentLength != int64(tt.respLen) {
				t.Errorf("Content-Length %d, want %d", resp.ContentLength, tt.respLen)
			}
			h := resp.Header
			if h.Get("X-Proto") != "HTTP/1.1" || h.Get("X-Seen-XFP") != "https" || h.Get("X-Body-Len") != strconv.Itoa(tt.bodyLen) {
				t.Errorf("server saw %s, X-Forwarded-Proto %q, a body of %s bytes; want HTTP/1.1, https, %d",
					h.Get("X-Proto"), h.Get("X-Seen-XFP"), h.Get("X-Body-Len"), tt.bodyLen)
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
