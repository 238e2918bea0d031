package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
)

// Client speaks to the agent's control socket.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	return &Client{
		socket: path,
		http: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
		}},
	}
}

// ErrNoAgent: nothing listens on the socket.
var ErrNoAgent = errors.New("no agent")

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://director"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w: cannot reach the agent at %s: is the agent running?", ErrNoAgent, c.socket)
		}
		return fmt.Errorf("talk to the agent at %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e Error
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error == "" {
			e.Error = resp.Status
		}
		var kind error
		switch resp.StatusCode {
		case http.StatusNotFound:
			kind = ErrNotFound
		case http.StatusConflict:
			kind = ErrConflict
		case http.StatusBadRequest:
			kind = ErrInvalid
		default:
			return errors.New(e.Error)
		}
		return &remoteError{msg: e.Error, kind: kind}
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// remoteError carries the agent's message and its kind for errors.Is.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

func realPath(vip string, addr netip.Addr) string {
	return "/v1/vips/" + url.PathEscape(vip) + "/reals/" + url.PathEscape(addr.String())
}

// Status implements Ops.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// VIPs implements Ops.
func (c *Client) VIPs(ctx context.Context) ([]VIP, error) {
	var v []VIP
	return v, c.do(ctx, http.MethodGet, "/v1/vips", nil, &v)
}

// Reals implements Ops.
func (c *Client) Reals(ctx context.Context, vip string) ([]Real, error) {
	var v []Real
	return v, c.do(ctx, http.MethodGet, "/v1/vips/"+url.PathEscape(vip)+"/reals", nil, &v)
}

// AddReal implements Ops.
func (c *Client) AddReal(ctx context.Context, vip string, addr netip.Addr, weight *uint32) error {
	return c.do(ctx, http.MethodPost, "/v1/vips/"+url.PathEscape(vip)+"/reals",
		AddReal{Address: addr.String(), Weight: weight}, nil)
}

// RemoveReal implements Ops.
func (c *Client) RemoveReal(ctx context.Context, vip string, addr netip.Addr) error {
	return c.do(ctx, http.MethodDelete, realPath(vip, addr), nil, nil)
}

// DrainReal implements Ops.
func (c *Client) DrainReal(ctx context.Context, vip string, addr netip.Addr) error {
	return c.do(ctx, http.MethodPost, realPath(vip, addr)+"/drain", nil, nil)
}

// MaintReal implements Ops.
func (c *Client) MaintReal(ctx context.Context, vip string, addr netip.Addr, on bool) error {
	return c.do(ctx, onOff(on), realPath(vip, addr)+"/maint", nil, nil)
}

// onOff is the method that puts a state on (POST) or takes it off
// (DELETE).
func onOff(on bool) string {
	if on {
		return http.MethodPost
	}
	return http.MethodDelete
}

// EnableReal implements Ops.
func (c *Client) EnableReal(ctx context.Context, vip string, addr netip.Addr) error {
	return c.do(ctx, http.MethodPost, realPath(vip, addr)+"/enable", nil, nil)
}

// SetWeight implements Ops.
func (c *Client) SetWeight(ctx context.Context, vip string, addr netip.Addr, weight uint32) error {
	return c.do(ctx, http.MethodPut, realPath(vip, addr)+"/weight", SetWeight{Weight: weight}, nil)
}

func l7ServerPath(backend, server string) string {
	return "/v1/l7/backends/" + url.PathEscape(backend) + "/servers/" + url.PathEscape(server)
}

// L7Servers implements Ops.
func (c *Client) L7Servers(ctx context.Context) ([]L7Server, error) {
	var v []L7Server
	return v, c.do(ctx, http.MethodGet, "/v1/l7/servers", nil, &v)
}

// DrainL7Server implements Ops.
func (c *Client) DrainL7Server(ctx context.Context, backend, server string) error {
	return c.do(ctx, http.MethodPost, l7ServerPath(backend, server)+"/drain", nil, nil)
}

// MaintL7Server implements Ops.
func (c *Client) MaintL7Server(ctx context.Context, backend, server string, on bool) error {
	return c.do(ctx, onOff(on), l7ServerPath(backend, server)+"/maint", nil, nil)
}

// EnableL7Server implements Ops.
func (c *Client) EnableL7Server(ctx context.Context, backend, server string) error {
	return c.do(ctx, http.MethodPost, l7ServerPath(backend, server)+"/ready", nil, nil)
}

// SetL7Weight implements Ops.
func (c *Client) SetL7Weight(ctx context.Context, backend, server string, weight uint32) error {
	return c.do(ctx, http.MethodPut, l7ServerPath(backend, server)+"/weight", SetWeight{Weight: weight}, nil)
}

// Reload implements Ops.
func (c *Client) Reload(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/reload", nil, nil)
}

var _ Ops = (*Client)(nil)
