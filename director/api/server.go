package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
)

// Handler serves Ops over HTTP. Every change is logged with its outcome.
func Handler(ops Ops, log zerolog.Logger) http.Handler {
	s := &server{ops: ops, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("GET /v1/vips", s.vips)
	mux.HandleFunc("GET /v1/vips/{vip}/reals", s.reals)
	mux.HandleFunc("POST /v1/vips/{vip}/reals", s.addReal)
	mux.HandleFunc("DELETE /v1/vips/{vip}/reals/{real}", s.realOp("remove", ops.RemoveReal))
	mux.HandleFunc("POST /v1/vips/{vip}/reals/{real}/drain", s.realOp("drain", ops.DrainReal))
	mux.HandleFunc("POST /v1/vips/{vip}/reals/{real}/enable", s.realOp("enable", ops.EnableReal))
	mux.HandleFunc("POST /v1/vips/{vip}/reals/{real}/maint", s.realOp("maint", setTo(ops.MaintReal, true)))
	mux.HandleFunc("DELETE /v1/vips/{vip}/reals/{real}/maint", s.realOp("maint off", setTo(ops.MaintReal, false)))
	mux.HandleFunc("PUT /v1/vips/{vip}/reals/{real}/weight", s.setWeight)
	mux.HandleFunc("POST /v1/reload", s.reload)
	s.l7Routes(mux)
	return mux
}

// l7Routes serve L7Ops: the servers of the HTTP tier by backend and name.
func (s *server) l7Routes(mux *http.ServeMux) {
	ops := s.ops
	const srv = "/v1/l7/backends/{backend}/servers/{server}"
	mux.HandleFunc("GET /v1/l7/servers", func(w http.ResponseWriter, r *http.Request) {
		v, err := ops.L7Servers(r.Context())
		reply(w, v, err)
	})
	mux.HandleFunc("POST "+srv+"/drain", s.l7Op("drain", ops.DrainL7Server))
	mux.HandleFunc("POST "+srv+"/ready", s.l7Op("ready", ops.EnableL7Server))
	mux.HandleFunc("POST "+srv+"/maint", s.l7Op("maint", setTo(ops.MaintL7Server, true)))
	mux.HandleFunc("DELETE "+srv+"/maint", s.l7Op("maint off", setTo(ops.MaintL7Server, false)))
	mux.HandleFunc("PUT "+srv+"/weight", func(w http.ResponseWriter, r *http.Request) {
		var body SetWeight
		err := decode(r, &body)
		if err == nil {
			err = ops.SetL7Weight(r.Context(), r.PathValue("backend"), r.PathValue("server"), body.Weight)
		}
		s.logL7Change(r, fmt.Sprintf("weight %d", body.Weight), err)
		reply(w, nil, err)
	})
}

// setTo is the operation that sets a state of an item (a real, a
// server) of a group to on, or takes it off: POST and DELETE.
func setTo[T any](op func(context.Context, string, T, bool) error, on bool) func(context.Context, string, T) error {
	return func(ctx context.Context, group string, item T) error { return op(ctx, group, item, on) }
}

func (s *server) l7Op(name string, op func(ctx context.Context, backend, server string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := op(r.Context(), r.PathValue("backend"), r.PathValue("server"))
		s.logL7Change(r, name, err)
		reply(w, nil, err)
	}
}

type server struct {
	ops Ops
	log zerolog.Logger
}

func (s *server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.ops.Status(r.Context())
	reply(w, st, err)
}

func (s *server) vips(w http.ResponseWriter, r *http.Request) {
	v, err := s.ops.VIPs(r.Context())
	reply(w, v, err)
}

func (s *server) reals(w http.ResponseWriter, r *http.Request) {
	v, err := s.ops.Reals(r.Context(), r.PathValue("vip"))
	reply(w, v, err)
}

func (s *server) addReal(w http.ResponseWriter, r *http.Request) {
	var body AddReal
	if err := decode(r, &body); err != nil {
		reply(w, nil, err)
		return
	}
	addr, err := parseAddr(body.Address)
	if err == nil {
		err = s.ops.AddReal(r.Context(), r.PathValue("vip"), addr, body.Weight)
	}
	s.logChange(r, "add", body.Address, err)
	reply(w, nil, err)
}

func (s *server) realOp(name string, op func(context.Context, string, netip.Addr) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		addr, err := parseAddr(r.PathValue("real"))
		if err == nil {
			err = op(r.Context(), r.PathValue("vip"), addr)
		}
		s.logChange(r, name, r.PathValue("real"), err)
		reply(w, nil, err)
	}
}

func (s *server) setWeight(w http.ResponseWriter, r *http.Request) {
	var body SetWeight
	err := decode(r, &body)
	var addr netip.Addr
	if err == nil {
		addr, err = parseAddr(r.PathValue("real"))
	}
	if err == nil {
		err = s.ops.SetWeight(r.Context(), r.PathValue("vip"), addr, body.Weight)
	}
	s.logChange(r, fmt.Sprintf("weight %d", body.Weight), r.PathValue("real"), err)
	reply(w, nil, err)
}

func (s *server) reload(w http.ResponseWriter, r *http.Request) {
	err := s.ops.Reload(r.Context())
	s.logChange(r, "reload", "", err)
	reply(w, nil, err)
}

func (s *server) logChange(r *http.Request, op, real string, err error) {
	s.change(op, err).Str("vip", r.PathValue("vip")).Str("real", real).Msg("ctl")
}

func (s *server) logL7Change(r *http.Request, op string, err error) {
	s.change(op, err).Str("backend", r.PathValue("backend")).Str("server", r.PathValue("server")).Msg("ctl")
}

// change is the log line of a change, a warning if it failed.
func (s *server) change(op string, err error) *zerolog.Event {
	ev := s.log.Info()
	if err != nil {
		ev = s.log.Warn().Err(err)
	}
	return ev.Str("op", op)
}

func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: %q is not an IP address", ErrInvalid, s)
	}
	return a, nil
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: request body: %v", ErrInvalid, err)
	}
	return nil
}

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrNotFound):
			code = http.StatusNotFound
		case errors.Is(err, ErrConflict):
			code = http.StatusConflict
		case errors.Is(err, ErrInvalid):
			code = http.StatusBadRequest
		}
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(Error{Error: err.Error()})
		return
	}
	if v == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	json.NewEncoder(w).Encode(v)
}

// Listen opens the control socket: a stale socket from a dead agent is
// removed first, and the socket is made mode 0600 (root only).
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control socket folder: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another agent is listening", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale control socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("control socket mode: %w", err)
	}
	return l, nil
}

// Serve answers on l until ctx ends.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
