// Package stats serves director's stats page: HAProxy's stats page for the
// whole director — the XDP tier's VIPs and reals, the L7 tier's proxies and
// the VRRP state — as HTML that works without JavaScript (and better with
// it), and as HAProxy-compatible CSV (URI;csv) and JSON (URI;json).
//
// Users log in with HTTP basic auth; admin users may drain, enable, set the
// weight of and put in maintenance the reals and the L7 tier's servers,
// through the same api.Ops that `director ctl` uses. Each change is
// confirmed (a JavaScript confirm(), or a confirmation page without
// JavaScript), protected against cross-site requests (POST only, same
// origin, a per-user token) and logged.
package stats

import (
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/directorlb/director/director/api"
	"github.com/rs/zerolog"
)

// User may read the page; an Admin may change reals from it.
type User struct {
	Name, Password string
	Admin          bool
}

// Config is how the page is served.
type Config struct {
	// URI is the page's path; DefaultURI if empty. URI;csv and URI;json
	// serve the same data for scripts, URI;norefresh a page that does not
	// reload itself.
	URI string
	// Realm of the basic auth; DefaultRealm if empty.
	Realm string
	// Refresh is how often the page reloads itself; 0: never.
	Refresh time.Duration
	// HideVersion leaves the agent's version out; ShowNode shows the node's
	// name (HAProxy's stats hide-version, show-node).
	HideVersion, ShowNode bool
	// Users who may see the page. With none, the page is open to anyone
	// and no one may change anything.
	Users []User
	// Log gets one line per admin action: user, action, VIP, real,
	// result.
	Log zerolog.Logger
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultURI   = "/stats"
	DefaultRealm = "director stats"
)

// Sources are where the page's data comes from.
type Sources struct {
	// Ops is the agent (in the agent) or its control client: read for the
	// page, and the way admin actions are done.
	Ops api.Ops
	// L7 is the HTTP tier's statistics; nil when there is none.
	L7 L7Source
	// Sampler gives rates and history; nil: totals only.
	Sampler *Sampler
}

// Handler serves the stats page.
type Handler struct {
	cfg   Config
	src   Sources
	key   []byte // for the per-user form token
	users []userHash
}

type userHash struct {
	name, pass [sha256.Size]byte
	u          User
}

// NewHandler returns the page's handler.
func NewHandler(cfg Config, src Sources) (*Handler, error) {
	if src.Ops == nil {
		return nil, errors.New("stats: no api.Ops to read")
	}
	if cfg.URI == "" {
		cfg.URI = DefaultURI
	}
	if !strings.HasPrefix(cfg.URI, "/") || strings.ContainsAny(cfg.URI, ";?#") {
		return nil, fmt.Errorf("stats: URI %q: want a path without ; ? #", cfg.URI)
	}
	if cfg.Realm == "" {
		cfg.Realm = DefaultRealm
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{cfg: cfg, src: src, key: make([]byte, 32)}
	if _, err := rand.Read(h.key); err != nil {
		return nil, err
	}
	for _, u := range cfg.Users {
		h.users = append(h.users, userHash{name: sha256.Sum256([]byte(u.Name)), pass: sha256.Sum256([]byte(u.Password)), u: u})
	}
	return h, nil
}

func (h *Handler) now() time.Time { return h.cfg.Now() }

// view is what one request asks for: the page, ;csv or ;json.
type view struct {
	format    string // html, csv, json
	norefresh bool
}

func (h *Handler) parseView(path string) (view, bool) {
	rest, ok := strings.CutPrefix(path, h.cfg.URI)
	if !ok {
		return view{}, false
	}
	v := view{format: "html"}
	if rest == "" || rest == "/" {
		return v, true
	}
	if rest[0] != ';' {
		return view{}, false
	}
	for _, opt := range strings.Split(rest[1:], ";") {
		switch opt {
		case "csv", "json":
			v.format = opt
		case "norefresh":
			v.norefresh = true
		default:
			return view{}, false
		}
	}
	return v, true
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "same-origin")
	// The path before any decoding: ;csv stays ;csv.
	v, ok := h.parseView(r.URL.EscapedPath())
	if !ok {
		http.NotFound(w, r)
		return
	}
	user, ok := h.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+h.cfg.Realm+`", charset="UTF-8"`)
		http.Error(w, "401 Unauthorized: the stats page needs a user and password", http.StatusUnauthorized)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.get(w, r, user, v)
	case http.MethodPost:
		h.post(w, r, user)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "405 Method Not Allowed", http.StatusMethodNotAllowed)
	}
}

// authenticate checks the basic-auth credentials against every user in
// constant time: how long it takes tells nothing of which user or how much
// of a password matched.
func (h *Handler) authenticate(r *http.Request) (User, bool) {
	if len(h.users) == 0 {
		return User{}, true
	}
	name, pass, ok := r.BasicAuth()
	if !ok {
		return User{}, false
	}
	nh, ph := sha256.Sum256([]byte(name)), sha256.Sum256([]byte(pass))
	found := -1
	for i := range h.users {
		m := subtle.ConstantTimeCompare(nh[:], h.users[i].name[:]) & subtle.ConstantTimeCompare(ph[:], h.users[i].pass[:])
		found = subtle.ConstantTimeSelect(m, i, found)
	}
	if found < 0 {
		return User{}, false
	}
	return h.users[found].u, true
}

// token is the user's form token: a form posted from elsewhere cannot know
// it. It changes when the handler is made again (the agent restarts).
func (h *Handler) token(u User) string {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte("stats-form\x00" + u.Name))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request, u User, v view) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	s, err := h.snapshot(ctx)
	if err != nil {
		http.Error(w, "502 Bad Gateway: reading the agent: "+err.Error(), http.StatusBadGateway)
		return
	}
	out, done := compress(w, r)
	defer done()
	switch v.format {
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		writeCSV(out, s)
	case "json":
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(out)
		enc.SetIndent("", " ")
		enc.Encode(s)
	default:
		p := h.page(u, s, v)
		p.Notice = notice(r.URL.Query())
		h.render(w, out, "page", &p)
	}
}

// compress gzips the answer when the client takes it: the page of a big
// director is large and very repetitive.
func compress(w http.ResponseWriter, r *http.Request) (io.Writer, func()) {
	w.Header().Add("Vary", "Accept-Encoding")
	if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		return w, func() {}
	}
	w.Header().Set("Content-Encoding", "gzip")
	gz := gzip.NewWriter(w)
	return gz, func() { gz.Close() }
}

// Actions an admin may take, in the page's order.
var actions = []struct{ Name, Label string }{
	{"drain", "Set state to DRAIN"},
	{"maint", "Set state to MAINT"},
	{"ready", "Set state to READY"},
	{"weight", "Set weight"},
}

func actionLabel(a string) string {
	for _, x := range actions {
		if x.Name == a {
			return x.Label
		}
	}
	return ""
}

// targetKind is what admin actions apply to, with the names of its form
// fields (and log keys) and its words for people.
type targetKind struct {
	Group, Item      string // form fields: vip and real, backend and server
	GroupWord, Items string
}

var (
	realsOfVIP = targetKind{Group: "vip", Item: "real", GroupWord: "VIP", Items: "reals"}
	l7Servers  = targetKind{Group: "backend", Item: "server", GroupWord: "L7 backend", Items: "servers"}
)

// request is an admin action as posted: on reals of a VIP, or on servers
// of an L7 backend.
type request struct {
	Action string
	Kind   targetKind
	Group  string   // the VIP or the backend
	Items  []string // the reals' addresses or the servers' names
	Weight string
	Token  string
}

func parseRequest(f url.Values) request {
	kind := realsOfVIP
	if f.Has(l7Servers.Group) {
		kind = l7Servers
	}
	return request{Action: f.Get("action"), Kind: kind, Group: f.Get(kind.Group), Items: f[kind.Item],
		Weight: f.Get("weight"), Token: f.Get("token")}
}

// post takes an admin action: checked, confirmed, applied, logged.
func (h *Handler) post(w http.ResponseWriter, r *http.Request, u User) {
	log := h.cfg.Log.With().Str("user", u.Name).Str("remote", r.RemoteAddr).Logger()
	if !u.Admin {
		log.Warn().Msg("stats: action refused: not an admin")
		http.Error(w, "403 Forbidden: this user may only read the page", http.StatusForbidden)
		return
	}
	if err := sameOrigin(r); err != nil {
		log.Warn().Err(err).Msg("stats: action refused")
		http.Error(w, "403 Forbidden: "+err.Error(), http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "400 Bad Request: "+err.Error(), http.StatusBadRequest)
		return
	}
	req := parseRequest(r.PostForm)
	if !hmac.Equal([]byte(req.Token), []byte(h.token(u))) {
		log.Warn().Str("action", req.Action).Msg("stats: action refused: bad form token")
		http.Error(w, "403 Forbidden: the form is stale or not from this page: reload the page", http.StatusForbidden)
		return
	}
	weight, err := req.check()
	if err != nil {
		http.Error(w, "400 Bad Request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if r.PostForm.Get("confirmed") != "1" {
		// Without JavaScript there was no confirm(): ask here.
		h.render(w, w, "confirm", &confirmPage{base: h.base(u), Request: req, Label: actionLabel(req.Action)})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	var results []result
	code := http.StatusOK
	for _, s := range req.Items {
		err := h.apply(ctx, req, s, weight)
		ev := log.Info()
		res := result{Item: s, Result: "done"}
		if err != nil {
			ev = log.Warn().Err(err)
			res.Result = err.Error()
			if code == http.StatusOK {
				code = httpStatus(err)
			}
		}
		ev.Str("action", req.Action).Str(req.Kind.Group, req.Group).Str(req.Kind.Item, s).Str("weight", req.Weight).
			Str("result", res.Result).Msg("stats: admin action")
		results = append(results, res)
	}
	if code == http.StatusOK {
		q := url.Values{"st": {"done"}, "action": {req.Action}, "n": {strconv.Itoa(len(req.Items))}}
		if req.Kind == l7Servers {
			q.Set("of", l7Servers.Items)
		}
		http.Redirect(w, r, h.cfg.URI+"?"+q.Encode(), http.StatusSeeOther)
		return
	}
	w.WriteHeader(code)
	h.render(w, w, "result", &resultPage{base: h.base(u), Request: req, Label: actionLabel(req.Action), Results: results})
}

// apply takes a checked request's action on one of its items.
func (h *Handler) apply(ctx context.Context, req request, item string, weight uint32) error {
	ops := h.src.Ops
	if req.Kind == l7Servers {
		k := itemOps[string]{ops.DrainL7Server, ops.EnableL7Server, ops.MaintL7Server, ops.SetL7Weight}
		return k.do(ctx, req.Action, req.Group, item, weight)
	}
	addr, _ := netip.ParseAddr(item) // checked
	k := itemOps[netip.Addr]{ops.DrainReal, ops.EnableReal, ops.MaintReal, ops.SetWeight}
	return k.do(ctx, req.Action, req.Group, addr, weight)
}

// itemOps are the api.Ops methods of the actions on one kind of item,
// named by T in a group: reals by address in a VIP, servers by name in
// an L7 backend.
type itemOps[T any] struct {
	drain, ready func(ctx context.Context, group string, item T) error
	maint        func(ctx context.Context, group string, item T, on bool) error
	weight       func(ctx context.Context, group string, item T, weight uint32) error
}

func (k itemOps[T]) do(ctx context.Context, action, group string, item T, weight uint32) error {
	switch action {
	case "drain":
		return k.drain(ctx, group, item)
	case "maint":
		return k.maint(ctx, group, item, true)
	case "ready":
		return k.ready(ctx, group, item)
	}
	return k.weight(ctx, group, item, weight)
}

// check validates a request; it returns the weight for "weight".
func (req request) check() (uint32, error) {
	if actionLabel(req.Action) == "" {
		return 0, fmt.Errorf("unknown action %q", req.Action)
	}
	if req.Group == "" {
		return 0, errors.New("no " + req.Kind.GroupWord)
	}
	if len(req.Items) == 0 {
		return 0, fmt.Errorf("no %s selected", req.Kind.Item)
	}
	if len(req.Items) > 4096 {
		return 0, errors.New("too many " + req.Kind.Items)
	}
	for _, s := range req.Items {
		if err := req.Kind.checkItem(s); err != nil {
			return 0, err
		}
	}
	if req.Action != "weight" {
		return 0, nil
	}
	n, err := strconv.ParseUint(req.Weight, 10, 32)
	if err != nil || n > 256 {
		return 0, fmt.Errorf("weight %q: want 0 to 256", req.Weight)
	}
	return uint32(n), nil
}

// checkItem validates a real's address or a server's name (config
// names: printable, not long).
func (k targetKind) checkItem(s string) error {
	if k == realsOfVIP {
		if _, err := netip.ParseAddr(s); err != nil {
			return fmt.Errorf("%q is not an IP address", s)
		}
		return nil
	}
	if s == "" || len(s) > 256 || strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return fmt.Errorf("%q is not a server name", s)
	}
	return nil
}

// sameOrigin refuses a POST that a browser says comes from another site.
// Browsers send Origin (or at least Referer) with a form's POST; a request
// with neither is not from a browser's page, and still needs the token.
func sameOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return fmt.Errorf("cross-site request (%s)", site)
	}
	from := r.Header.Get("Origin")
	if from == "" {
		from = r.Header.Get("Referer")
	}
	if from == "" {
		return nil
	}
	u, err := url.Parse(from)
	if err != nil || u.Host != r.Host {
		return fmt.Errorf("request from another origin (%q)", from)
	}
	return nil
}

func httpStatus(err error) int {
	switch {
	case errors.Is(err, api.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, api.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, api.ErrConflict):
		return http.StatusConflict
	}
	return http.StatusBadGateway
}

// notice is the line shown after an action, from the redirect's query:
// only known words and a number, so a crafted link cannot show any text.
func notice(q url.Values) string {
	if q.Get("st") != "done" {
		return ""
	}
	label := actionLabel(q.Get("action"))
	n, err := strconv.Atoi(q.Get("n"))
	if label == "" || err != nil || n < 1 {
		return ""
	}
	kind := realsOfVIP
	if q.Get("of") == l7Servers.Items {
		kind = l7Servers
	}
	if n == 1 {
		return label + ": done for 1 " + kind.Item + "."
	}
	return label + ": done for " + strconv.Itoa(n) + " " + kind.Items + "."
}
