package l7

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

// TLSConfig terminates TLS on a frontend's listeners (HAProxy "bind ...
// ssl crt ...").
type TLSConfig struct {
	// Certs are the certificate chains and keys, chosen by the name the
	// client asks for (SNI) among their subject alternative names, exact
	// names before wildcards ("*.example.com" covers one label). The
	// first is the default, for clients that send no name or one that no
	// certificate covers. At least one.
	Certs []CertFile
}

// CertFile names a PEM certificate chain and its PEM private key.
type CertFile struct {
	CertFile, KeyFile string
}

// certSet is one loaded generation of certificates.
type certSet struct {
	def      *tls.Certificate
	exact    map[string]*tls.Certificate // lower-case DNS name
	wildcard map[string]*tls.Certificate // lower-case parent of "*.parent"
}

// certStore serves the current certSet to handshakes and swaps it on
// reload.
type certStore struct {
	files []CertFile
	cur   atomic.Pointer[certSet]
}

func newCertStore(c *TLSConfig) (*certStore, error) {
	if len(c.Certs) == 0 {
		return nil, errors.New("tls: no certificates")
	}
	s := &certStore{files: append([]CertFile(nil), c.Certs...)}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// reload reads all the files and swaps them in only if every one loads.
func (s *certStore) reload() error {
	set := &certSet{exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}}
	for _, f := range s.files {
		c, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return fmt.Errorf("tls: cert %s, key %s: %w", f.CertFile, f.KeyFile, err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return fmt.Errorf("tls: cert %s: %w", f.CertFile, err)
		}
		c.Leaf = leaf
		if set.def == nil {
			set.def = &c
		}
		for _, n := range leaf.DNSNames {
			n = strings.ToLower(n)
			m := set.exact
			if p, ok := strings.CutPrefix(n, "*."); ok {
				n, m = p, set.wildcard
			}
			if _, dup := m[n]; !dup { // the first certificate for a name wins
				m[n] = &c
			}
		}
	}
	s.cur.Store(set)
	return nil
}

// get is tls.Config.GetCertificate.
func (s *certStore) get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	set := s.cur.Load()
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name == "" {
		return set.def, nil
	}
	if c := set.exact[name]; c != nil {
		return c, nil
	}
	if _, parent, ok := strings.Cut(name, "."); ok {
		if c := set.wildcard[parent]; c != nil {
			return c, nil
		}
	}
	return set.def, nil
}

func (s *certStore) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// http/1.0: a client that offers only it (curl --http1.0) is
		// refused the handshake by a server that does not list it.
		NextProtos:     []string{"h2", "http/1.1", "http/1.0"},
		GetCertificate: s.get,
	}
}

// tlsConn is a client connection with TLS: tls.Conn over a timeoutConn,
// which keeps the timeouts of the raw connection. It has the methods by
// which fasthttp recognises TLS (Handshake, ConnectionState), so that
// RequestCtx.IsTLS is true and X-Forwarded-Proto says https.
type tlsConn struct {
	*tls.Conn
	tc  *timeoutConn
	raw *tlsRecords
}

func newTLSConn(tc *timeoutConn, cfg *tls.Config) *tlsConn {
	raw := &tlsRecords{timeoutConn: tc}
	return &tlsConn{Conn: tls.Server(raw, cfg), tc: tc, raw: raw}
}

// closeNotifyTimeout bounds the write of close_notify to a client that
// reads nothing.
const closeNotifyTimeout = time.Second

// Close sends TLS's close_notify, then closes. The alert is how a client
// tells the end of a body delimited by the close (an HTTP/1.0 client's)
// from a connection cut short, and OpenSSL 3 takes an end without it as
// an error. tls.Conn leaves the alert out if a write is under way.
func (c *tlsConn) Close() error {
	c.raw.closing.Store(true)
	return c.Conn.Close()
}

// tlsRecords is what a tlsConn writes its records to: the timeoutConn,
// except for the close_notify alert. The engine closes idle connections
// on shutdown from another goroutine than the one reading them, and the
// timeoutConn's timeouts and counters have room for one writer besides
// that reader, not a second: the alert goes to the socket itself.
type tlsRecords struct {
	*timeoutConn
	closing atomic.Bool
}

func (r *tlsRecords) Write(b []byte) (int, error) {
	if !r.closing.Load() {
		return r.timeoutConn.Write(b)
	}
	r.timeoutConn.Conn.SetWriteDeadline(time.Now().Add(closeNotifyTimeout))
	return r.timeoutConn.Conn.Write(b)
}

// Read reads plaintext and lets the framer check it.
func (c *tlsConn) Read(b []byte) (int, error) {
	if err := c.tc.req.failed(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	return c.tc.req.read(b, n, err)
}

// clientConn returns the timeoutConn under a client connection as the
// frontend accepted it, or nil (an HTTP/2 stream, a test's connection).
func clientConn(c net.Conn) *timeoutConn {
	switch c := c.(type) {
	case *timeoutConn:
		return c
	case *tlsConn:
		return c.tc
	}
	return nil
}
