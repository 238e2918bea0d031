package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// This file reads YAML nodes strictly: every mapping's keys are checked
// against the keys its place allows, every scalar against the type its key
// wants, each problem reported with its line and key path.

// maxNodes bounds the nodes visited, aliases expanded: a small file of
// nested aliases must not make the walk explode.
const maxNodes = 200_000

// opt is a value read from the file.
type opt[T any] struct {
	v   T
	set bool // present and well-formed
	bad bool // present but malformed: reported already
	pos      // of the value if present, else of its mapping, with the key's path
}

func (o opt[T]) or(def T) T {
	if o.set {
		return o.v
	}
	return def
}

// absent: neither given nor reported as malformed.
func (o opt[T]) absent() bool { return !o.set && !o.bad }

type walker struct {
	*report
	nodes int
	over  bool
}

// deref follows aliases and counts the node against the budget; nil once
// the budget is spent.
func (w *walker) deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	if n == nil || n.Kind == yaml.AliasNode {
		return nil
	}
	w.nodes++
	if w.nodes > maxNodes {
		if !w.over {
			w.over = true
			w.errorf(pos{line: n.Line}, "too many values after expanding aliases (more than %d)", maxNodes)
		}
		return nil
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return strconv.Quote(n.Value)
	}
	return "a YAML node of kind " + strconv.Itoa(int(n.Kind))
}

// fields is a mapping whose keys were checked.
type fields struct {
	w    *walker
	pos  pos
	vals map[string]*yaml.Node // dereferenced; null values left out
	keys map[string]int        // line of each key given
}

// mapping checks that n is a mapping with only allowed keys, each once. It
// returns nil, having reported why, if n is not a mapping.
func (w *walker) mapping(n *yaml.Node, p pos, allowed ...string) *fields {
	line := n.Line
	if n = w.deref(n); n == nil {
		return nil
	}
	p.line = line
	if n.Kind != yaml.MappingNode {
		w.errorf(p, "want a mapping, not %s", describe(n))
		return nil
	}
	f := &fields{w: w, pos: p, vals: map[string]*yaml.Node{}, keys: map[string]int{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := w.deref(n.Content[i]), n.Content[i+1]
		if k == nil {
			return f
		}
		if k.Kind != yaml.ScalarNode {
			w.errorf(pos{k.Line, p.path}, "want a key, not %s", describe(k))
			continue
		}
		kp := p.key(k.Value)
		kp.line = k.Line
		if k.Tag == "!!merge" {
			w.errorf(kp, "merge keys are not supported")
			continue
		}
		if !slices.Contains(allowed, k.Value) {
			if s := suggest(k.Value, allowed); s != "" && !w.full() {
				w.errorf(kp, "unknown key (did you mean %q?)", s)
			} else {
				w.errorf(kp, "unknown key")
			}
			continue
		}
		if first, dup := f.keys[k.Value]; dup {
			w.errorf(kp, "given twice (first at line %d)", first)
			continue
		}
		f.keys[k.Value] = k.Line
		vline := v.Line
		if v = w.deref(v); v == nil {
			return f
		}
		if !isNull(v) {
			// Keep the line where the value is written, not that of an
			// alias's anchor.
			if vline != v.Line {
				c := *v
				c.Line = vline
				v = &c
			}
			f.vals[k.Value] = v
		}
	}
	return f
}

// at returns the value of key (nil if absent or null) and its position.
func (f *fields) at(key string) (*yaml.Node, pos) {
	p := f.pos.key(key)
	if n, ok := f.vals[key]; ok {
		p.line = n.Line
		return n, p
	}
	if l, ok := f.keys[key]; ok {
		p.line = l
	}
	return nil, p
}

// suggest returns the allowed key closest to key, if close enough.
func suggest(key string, allowed []string) string {
	best, bestD := "", 3
	for _, a := range allowed {
		if d := editDistance(key, a); d < bestD {
			best, bestD = a, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// list calls elem for each element of the list at key.
func (f *fields) list(key string, elem func(n *yaml.Node, p pos)) (o opt[struct{}]) {
	n, p := f.at(key)
	o.pos = p
	if n == nil {
		return o
	}
	if n.Kind != yaml.SequenceNode {
		f.w.errorf(p, "want a list, not %s", describe(n))
		o.bad = true
		return o
	}
	for i, e := range n.Content {
		ep := p.index(i)
		ep.line = e.Line
		elem(e, ep)
	}
	o.set = true
	return o
}

// scalar returns the scalar at key, reporting anything else.
func (f *fields) scalar(key, want string) (*yaml.Node, pos, bool) {
	n, p := f.at(key)
	if n == nil {
		return nil, p, false
	}
	if n.Kind != yaml.ScalarNode {
		f.w.errorf(p, "want %s, not %s", want, describe(n))
		return nil, p, false
	}
	return n, p, true
}

func (f *fields) str(key string) (o opt[string]) {
	n, p, ok := f.scalar(key, "a string")
	o.pos, o.bad = p, n == nil && f.vals[key] != nil
	if ok {
		o.v, o.set = n.Value, true
	}
	return o
}

func (f *fields) boolean(key string) (o opt[bool]) {
	n, p, ok := f.scalar(key, "true or false")
	o.pos, o.bad = p, n == nil && f.vals[key] != nil
	if !ok {
		return o
	}
	if n.Tag != "!!bool" || n.Decode(&o.v) != nil {
		f.w.errorf(p, "want true or false, not %s", describe(n))
		o.bad = true
		return o
	}
	o.set = true
	return o
}

// integer reads an integer in lo..hi.
func (f *fields) integer(key string, lo, hi int64) (o opt[int64]) {
	n, p, ok := f.scalar(key, "an integer")
	o.pos, o.bad = p, n == nil && f.vals[key] != nil
	if !ok {
		return o
	}
	if n.Tag != "!!int" || n.Decode(&o.v) != nil {
		f.w.errorf(p, "want an integer, not %s", describe(n))
		o.bad = true
		return o
	}
	if o.v < lo || o.v > hi {
		f.w.errorf(p, "%d out of range %d..%d", o.v, lo, hi)
		o.bad = true
		return o
	}
	o.set = true
	return o
}

// duration reads a duration such as "2s" or "500ms"; a bare 0 is allowed.
// positive: zero is an error too.
func (f *fields) duration(key string, positive bool) (o opt[time.Duration]) {
	n, p, ok := f.scalar(key, "a duration")
	o.pos, o.bad = p, n == nil && f.vals[key] != nil
	if !ok {
		return o
	}
	var err error
	switch {
	case n.Tag == "!!int" && n.Value == "0":
	case n.Tag == "!!str":
		o.v, err = time.ParseDuration(n.Value)
	default:
		err = errors.New("no unit")
	}
	switch {
	case err != nil:
		f.w.errorf(p, "want a duration such as 2s or 500ms, not %s", describe(n))
	case o.v < 0:
		f.w.errorf(p, "negative duration %v", o.v)
	case o.v == 0 && positive:
		f.w.errorf(p, "must be more than 0")
	default:
		o.set = true
		return o
	}
	o.bad = true
	return o
}

// addr reads an IP address (no zone, no IPv4-mapped IPv6).
func (f *fields) addr(key string) (o opt[netip.Addr]) {
	n, p, ok := f.scalar(key, "an IP address")
	o.pos, o.bad = p, n == nil && f.vals[key] != nil
	if !ok {
		return o
	}
	o.v, o.bad = parseAddr(f.w, n, p)
	o.set = !o.bad
	return o
}

func parseAddr(w *walker, n *yaml.Node, p pos) (netip.Addr, bool) {
	a, err := netip.ParseAddr(n.Value)
	switch {
	case err != nil:
		w.errorf(p, "%q is not an IP address", n.Value)
	case a.Zone() != "":
		w.errorf(p, "%q: zones are not supported", n.Value)
	case a.Is4In6():
		w.errorf(p, "%q: write IPv4-mapped addresses as IPv4", n.Value)
	case a.IsUnspecified() || a.IsMulticast():
		w.errorf(p, "%q is not a unicast address", n.Value)
	default:
		return a, false
	}
	return netip.Addr{}, true
}

// addrList reads a list of addresses.
func (f *fields) addrList(key string) (o opt[[]opt[netip.Addr]]) {
	bad := false
	l := f.list(key, func(n *yaml.Node, p pos) {
		if n = f.w.deref(n); n == nil {
			bad = true
			return
		}
		a := opt[netip.Addr]{pos: p}
		if n.Kind != yaml.ScalarNode || isNull(n) {
			f.w.errorf(p, "want an IP address, not %s", describe(n))
			bad = true
			return
		}
		if a.v, a.bad = parseAddr(f.w, n, p); a.bad {
			bad = true
			return
		}
		a.set = true
		o.v = append(o.v, a)
	})
	o.pos, o.set, o.bad = l.pos, l.set && !bad, l.bad || bad
	return o
}

// argv reads a program and its arguments: a non-empty list of strings.
func (f *fields) argv(key string) (o opt[[]string]) {
	n, p := f.at(key)
	o.pos = p
	if n == nil {
		return o
	}
	if n.Kind != yaml.SequenceNode {
		f.w.errorf(p, "want a list: [program, arguments...], not %s", describe(n))
		o.bad = true
		return o
	}
	if len(n.Content) == 0 {
		f.w.errorf(p, "empty command")
		o.bad = true
		return o
	}
	for i, e := range n.Content {
		if e = f.w.deref(e); e == nil {
			o.bad = true
			return o
		}
		if e.Kind != yaml.ScalarNode || isNull(e) {
			ep := p.index(i)
			ep.line = e.Line
			f.w.errorf(ep, "want a string, not %s", describe(e))
			o.bad = true
			continue
		}
		o.v = append(o.v, e.Value)
	}
	if !o.bad && o.v[0] == "" {
		f.w.errorf(p, "empty program name")
		o.bad = true
	}
	o.set = !o.bad
	return o
}

// enum reads one of the given words.
func enum[T any](f *fields, key string, words map[string]T) (o opt[T]) {
	n, p, ok := f.scalar(key, "a string")
	o.pos, o.bad = p, n == nil && f.vals[key] != nil
	if !ok {
		return o
	}
	v, ok := words[n.Value]
	if !ok {
		names := make([]string, 0, len(words))
		for k := range words {
			names = append(names, k)
		}
		slices.Sort(names)
		f.w.errorf(p, "%s: want %s", describe(n), strings.Join(names, ", "))
		o.bad = true
		return o
	}
	o.v, o.set = v, true
	return o
}

var (
	yamlLine   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlAnchor = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// parseDocument reads data's one YAML document.
func parseDocument(r *report, data []byte) *yaml.Node {
	if !utf8.Valid(data) {
		i := 0
		for i < len(data) {
			c, size := utf8.DecodeRune(data[i:])
			if c == utf8.RuneError && size == 1 {
				break
			}
			i += size
		}
		r.errorf(pos{line: lineAt(data, i)}, "not valid UTF-8")
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := decodeSafe(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			r.errorf(pos{line: 1}, "empty file")
			return nil
		}
		r.errorf(yamlErrorPos(err, data), "%s", yamlErrorMsg(err))
		return nil
	}
	var extra yaml.Node
	switch err := decodeSafe(dec, &extra); {
	case err == nil:
		r.errorf(pos{line: extra.Line}, "more than one YAML document")
		return nil
	case !errors.Is(err, io.EOF):
		r.errorf(yamlErrorPos(err, data), "%s", yamlErrorMsg(err))
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		r.errorf(pos{line: 1}, "empty file")
		return nil
	}
	return doc.Content[0]
}

// decodeSafe turns a panic of the YAML library into an error: a bad file
// must not bring the agent down.
func decodeSafe(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("yaml: cannot parse: %v", p)
		}
	}()
	return dec.Decode(n)
}

// yamlErrorPos finds the line of a YAML library error: in its text, or for
// an unknown anchor where it is first referenced.
func yamlErrorPos(err error, data []byte) pos {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		if l, err := strconv.Atoi(m[1]); err == nil && l > 0 && l < math.MaxInt32 {
			return pos{line: l}
		}
	}
	if m := yamlAnchor.FindStringSubmatch(err.Error()); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			return pos{line: lineAt(data, i)}
		}
	}
	return pos{line: 1}
}

func yamlErrorMsg(err error) string {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		return m[2]
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// lineAt returns the line of data[i], counting CR, LF and CRLF as one break
// each, as the YAML library does.
func lineAt(data []byte, i int) int {
	return 1 + bytes.Count(data[:i], []byte("\n")) + bytes.Count(data[:i], []byte("\r")) - bytes.Count(data[:i], []byte("\r\n"))
}
