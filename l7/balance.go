package l7

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Balancing algorithms, the names of HAProxy's "balance" keyword.
// BackendConfig.Balance takes one of them, with its argument where it has
// one: "uri whole", "url_param userid", "random(3)".
const (
	BalanceRoundRobin = "roundrobin" // smooth weighted roundrobin; weights can change at run time
	BalanceStaticRR   = "static-rr"  // weighted roundrobin over a fixed map; weights are static
	BalanceLeastConn  = "leastconn"  // fewest requests in flight for the weight; ties in turn
	BalanceSource     = "source"     // hash of the client's IP address
	BalanceURI        = "uri"        // hash of the path ("uri whole": with the query)
	BalanceURLParam   = "url_param"  // hash of a query parameter ("url_param NAME"); roundrobin without it
	BalanceRandom     = "random"     // "random(N)": N weighted draws, the least loaded wins; N is 2 by default
)

// policy chooses the server for a request that no cookie routes. The
// policies are pure: they see the servers' weights, states and requests
// in flight, and the request's hash key, and do no I/O.
type policy interface {
	// pick returns a server of srvs that takes new requests and is not
	// in avoid, or nil if there is none. key is the request's hash key
	// for the hashing policies, nil when the request has none.
	pick(srvs, avoid []*server, key []byte) *server
}

// eligible returns the weight s takes new requests with, 0 if it takes
// none: down, in maintenance, drained, weight 0 or in avoid.
func eligible(s *server, avoid []*server) int {
	if !s.serving() || s.drain.Load() {
		return 0
	}
	for _, a := range avoid {
		if a == s {
			return 0
		}
	}
	return int(s.weight.Load())
}

// lessLoaded reports whether (la, wa) is less loaded than (lb, wb): fewer
// requests in flight for its weight, (l+1)/w as HAProxy's leastconn
// counts, compared without division.
func lessLoaded(la int64, wa int, lb int64, wb int) bool {
	return (la+1)*int64(wb) < (lb+1)*int64(wa)
}

// balanceSpec is a parsed BackendConfig.Balance.
type balanceSpec struct {
	algo  string
	whole bool   // uri: hash the query too
	param string // url_param: the parameter
	draws int    // random
}

// hashKind tells which part of a request a policy hashes.
type hashKind int

const (
	hashNone hashKind = iota
	hashSource
	hashURI
	hashParam
)

func (s balanceSpec) hash() hashKind {
	switch s.algo {
	case BalanceSource:
		return hashSource
	case BalanceURI:
		return hashURI
	case BalanceURLParam:
		return hashParam
	}
	return hashNone
}

func parseBalance(v string) (balanceSpec, error) {
	f := strings.Fields(v)
	if len(f) == 0 {
		return balanceSpec{algo: BalanceRoundRobin}, nil
	}
	s := balanceSpec{algo: f[0]}
	args := f[1:]
	switch {
	case s.algo == BalanceRoundRobin, s.algo == BalanceStaticRR, s.algo == BalanceLeastConn, s.algo == BalanceSource:
	case s.algo == BalanceURI:
		if len(args) == 1 && args[0] == "whole" {
			s.whole, args = true, nil
		}
	case s.algo == BalanceURLParam:
		if len(args) == 0 || args[0] == "" {
			return s, errors.New("url_param needs a parameter name")
		}
		s.param, args = args[0], args[1:]
	case s.algo == BalanceRandom:
		s.draws = 2
	case strings.HasPrefix(s.algo, BalanceRandom+"(") && strings.HasSuffix(s.algo, ")"):
		n, err := strconv.Atoi(s.algo[len(BalanceRandom)+1 : len(s.algo)-1])
		if err != nil || n < 1 || n > 100 {
			return s, fmt.Errorf("%s: draws must be 1..100", s.algo)
		}
		s.algo, s.draws = BalanceRandom, n
	default:
		return s, fmt.Errorf("unknown algorithm %q", s.algo)
	}
	if len(args) > 0 {
		return s, fmt.Errorf("%s: unexpected %q", s.algo, strings.Join(args, " "))
	}
	return s, nil
}

// newPolicy returns the policy of spec over servers with the given
// configured weights.
func newPolicy(spec balanceSpec, weights []int) policy {
	switch spec.algo {
	case BalanceStaticRR:
		return newStaticRR(weights)
	case BalanceLeastConn:
		return &leastConn{}
	case BalanceSource, BalanceURI, BalanceURLParam:
		return &rendezvous{fallback: newRoundRobin(len(weights))}
	case BalanceRandom:
		return &random{draws: spec.draws}
	}
	return newRoundRobin(len(weights))
}

// swrr is smooth weighted roundrobin (nginx's): every pick adds each
// eligible server's weight to its current value, takes the largest and
// subtracts the total from it. Over a cycle of sum(weights) picks each
// server gets exactly its weight, spread out rather than in bursts
// (weights 5,1,1 give a a b a c a a, not a a a a a b c).
//
// It is a pure algorithm: no locking, no time, no I/O.
type swrr struct {
	current []int
}

func newSWRR(n int) *swrr { return &swrr{current: make([]int, n)} }

// next returns the index of the next server, given each server's weight
// at this pick (0: not eligible), or -1 if none has a weight.
func (s *swrr) next(weight func(i int) int) int {
	best, total := -1, 0
	for i := range s.current {
		w := weight(i)
		if w <= 0 {
			continue
		}
		s.current[i] += w
		total += w
		if best < 0 || s.current[i] > s.current[best] {
			best = i
		}
	}
	if best >= 0 {
		s.current[best] -= total
	}
	return best
}

// roundRobin is HAProxy's roundrobin: dynamic weights, smooth.
type roundRobin struct {
	mu sync.Mutex
	rr *swrr
}

func newRoundRobin(n int) *roundRobin { return &roundRobin{rr: newSWRR(n)} }

func (p *roundRobin) pick(srvs, avoid []*server, _ []byte) *server {
	p.mu.Lock()
	i := p.rr.next(func(i int) int { return eligible(srvs[i], avoid) })
	p.mu.Unlock()
	if i < 0 {
		return nil
	}
	return srvs[i]
}

// staticRR is HAProxy's static-rr: a map of sum(weights) slots, filled
// in smooth roundrobin order once, walked by a counter. Every pick
// consumes a slot, and a slot whose server takes no requests passes to
// the next one, so the shares stay those of the weights of the servers
// left. Weights changed at run time count only as zero or not.
type staticRR struct {
	slots []int32
	n     atomic.Uint64
}

func newStaticRR(weights []int) *staticRR {
	total := 0
	for _, w := range weights {
		total += w
	}
	rr := newSWRR(len(weights))
	p := &staticRR{slots: make([]int32, total)}
	for k := range p.slots {
		p.slots[k] = int32(rr.next(func(i int) int { return weights[i] }))
	}
	return p
}

func (p *staticRR) pick(srvs, avoid []*server, _ []byte) *server {
	for range p.slots {
		s := srvs[p.slots[(p.n.Add(1)-1)%uint64(len(p.slots))]]
		if eligible(s, avoid) > 0 {
			return s
		}
	}
	return nil
}

// leastConn is HAProxy's leastconn: the server with the fewest requests
// in flight for its weight; among equally loaded servers the search
// starts one further at every pick, so that they take turns.
type leastConn struct {
	n atomic.Uint64
}

func (p *leastConn) pick(srvs, avoid []*server, _ []byte) *server {
	n := uint64(len(srvs))
	start := p.n.Add(1)
	var (
		best  *server
		bestW int
		bestL int64
	)
	for k := range n {
		s := srvs[(start+k)%n]
		w := eligible(s, avoid)
		if w == 0 {
			continue
		}
		if l := s.load(); best == nil || lessLoaded(l, w, bestL, bestW) {
			best, bestW, bestL = s, w, l
		}
	}
	return best
}

// rendezvous is the hashing policy of source, uri and url_param:
// weighted rendezvous hashing. Every server scores a request by a hash
// of the request's key and the server's name, scaled by its weight
// (w / -ln(u), u the hash in (0, 1)); the highest score wins. The same
// key goes to the same server for as long as that server takes requests,
// whatever happens to the others: when a server goes down only its keys
// move, spread over the others by weight, and come back when it does.
// That is HAProxy's "hash-type consistent"; HAProxy's default,
// map-based, moves most keys when the set of live servers changes. The
// hash depends on names only, so that every director agrees.
//
// A request without a key (url_param absent) goes by roundrobin.
type rendezvous struct {
	fallback *roundRobin
}

func (p *rendezvous) pick(srvs, avoid []*server, key []byte) *server {
	if key == nil {
		return p.fallback.pick(srvs, avoid, nil)
	}
	h := hashBytes(key)
	var (
		best  *server
		score float64
	)
	for _, s := range srvs {
		w := eligible(s, avoid)
		if w == 0 {
			continue
		}
		u := (float64(mix64(h^s.seed)>>11) + 0.5) / (1 << 53) // in (0, 1)
		if sc := float64(w) / -math.Log(u); best == nil || sc > score {
			best, score = s, sc
		}
	}
	return best
}

// random is HAProxy's "random(N)": N servers drawn at random with
// probabilities of their weights, the least loaded of them wins (the
// power of two choices with N = 2).
type random struct {
	draws int
}

func (p *random) pick(srvs, avoid []*server, _ []byte) *server {
	total := 0
	for _, s := range srvs {
		total += eligible(s, avoid)
	}
	if total == 0 {
		return nil
	}
	var (
		best  *server
		bestW int
		bestL int64
	)
	for range p.draws {
		r := rand.IntN(total)
		for _, s := range srvs {
			w := eligible(s, avoid)
			if r -= w; r >= 0 {
				continue
			}
			if l := s.load(); best == nil || lessLoaded(l, w, bestL, bestW) {
				best, bestW, bestL = s, w, l
			}
			break
		}
	}
	if best == nil { // a server left between the two passes
		for _, s := range srvs {
			if eligible(s, avoid) > 0 {
				return s
			}
		}
	}
	return best
}

// hashBytes is 64-bit FNV-1a.
func hashBytes(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// mix64 is splitmix64's finalizer: every bit of x changes half the bits
// of the result.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hashKey returns the part of a request a hashing policy hashes, or nil
// if it has none. uri is the request target as received; ip is the
// client's address as text.
func (s balanceSpec) hashKey(uri []byte, ip func() []byte) []byte {
	switch s.hash() {
	case hashSource:
		return ip()
	case hashURI:
		p := stripAuthority(uri)
		if !s.whole {
			p = cutQuery(p)
		}
		return p
	case hashParam:
		return queryParam(uri, s.param)
	}
	return nil
}

// stripAuthority drops "scheme://authority" from an absolute-form request
// target, leaving the path and query.
func stripAuthority(uri []byte) []byte {
	if len(uri) == 0 || uri[0] == '/' {
		return uri
	}
	_, rest, ok := bytes.Cut(uri, []byte("://"))
	if !ok {
		return uri
	}
	if i := bytes.IndexAny(rest, "/?"); i >= 0 {
		return rest[i:]
	}
	return rest[len(rest):]
}

// cutQuery returns the path of a request target.
func cutQuery(p []byte) []byte {
	if i := bytes.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}

// queryParam returns the value of the first "name=value" of the query of
// uri with a non-empty value, or nil: HAProxy's url_param finds a value
// only after "name=".
func queryParam(uri []byte, name string) []byte {
	_, q, ok := bytes.Cut(uri, []byte{'?'})
	if !ok {
		return nil
	}
	q, _, _ = bytes.Cut(q, []byte{'#'})
	for len(q) > 0 {
		var kv []byte
		kv, q, _ = bytes.Cut(q, []byte{'&'})
		if len(kv) > len(name)+1 && kv[len(name)] == '=' && string(kv[:len(name)]) == name {
			return kv[len(name)+1:]
		}
	}
	return nil
}
