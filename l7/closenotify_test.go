package l7

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// recordConn keeps what the server sent, to read the TLS records.
type recordConn struct {
	net.Conn
	got bytes.Buffer
}

func (c *recordConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.got.Write(b[:n])
	return n, err
}

// TestTLSCloseNotify: a response over TLS ends with TLS's close_notify,
// whose body ends with the connection (the server sent no length, the
// client speaks HTTP/1.0) or not. With the alert a client tells the end
// of a body from a connection cut short; OpenSSL 3 fails a response
// without it unless told to ignore that. The record types of TLS 1.2 are
// in the clear: the last one must be an alert.
func TestTLSCloseNotify(t *testing.T) {
	addr, _ := shapeServer(t)
	be, err := NewBackend(BackendConfig{Name: "web", Servers: []ServerConfig{{Name: "a", Addr: addr}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert := writeCert(t, dir, "site", "site.test")
	_, fa := serveFrontend(t, FrontendConfig{Name: "fe", Backend: be, Logger: zerolog.Nop(),
		TLS: &TLSConfig{Certs: []CertFile{cert}}})

	for _, path := range []string{"/close", "/fixed"} {
		raw, err := net.Dial("tcp", fa)
		if err != nil {
			t.Fatal(err)
		}
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		rc := &recordConn{Conn: raw}
		c := tls.Client(rc, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}})
		req := "GET " + path + " HTTP/1.0\r\nHost: site.test\r\n\r\n"
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 || len(body) == 0 {
			t.Fatalf("%s: %d %q %v", path, resp.StatusCode, body, err)
		}
		io.Copy(io.Discard, c) // to the end of the connection
		c.Close()
		// The records: type (1), version (2), length (2), fragment.
		b, last := rc.got.Bytes(), byte(0)
		for len(b) >= 5 {
			n := int(binary.BigEndian.Uint16(b[3:5]))
			if len(b) < 5+n {
				break
			}
			last, b = b[0], b[5+n:]
		}
		if last != 21 {
			t.Errorf("%s: the connection ended with a record of type %d, not an alert (close_notify)", path, last)
		}
	}

	// curl as users run it for HTTP/1.0: it offers only http/1.0 by ALPN,
	// which a server listing h2 and http/1.1 alone refuses.
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Log("no curl here: the record check above stands for it")
		return
	}
	out, err := exec.Command(curl, "-sS", "-k", "--http1.0", "--max-time", "10", "https://"+fa+"/close").CombinedOutput()
	if err != nil || string(out) != "until the close" {
		t.Errorf("curl: %q, %v", out, err)
	}
}
