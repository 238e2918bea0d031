// Package maglev builds weighted Maglev consistent-hashing lookup tables.
//
// The algorithm is the population algorithm of Eisenbud et al., "Maglev: A
// Fast and Reliable Software Network Load Balancer", NSDI 2016, §3.4. Every
// backend walks its own permutation of the M table slots,
//
//	permutation[j] = (offset + j*skip) mod M
//
// and the backends take turns filling the next slot of their permutation that
// is still empty, until the table is full.
//
// # Weights
//
// The paper supports weights "by adjusting the relative frequency of the
// backends' turns". Build does this exactly, in two steps:
//
//  1. Quotas. Backend i gets t_i turns, and thus exactly t_i table entries:
//     t_i = floor(M*w_i/W) with W the sum of the weights, and the M - Σ t_i
//     entries left over go one each to the backends with the largest
//     remainders (M*w_i mod W), ties to the smaller Name (largest-remainder
//     apportionment). So |t_i - M*w_i/W| < 1 for every backend: the table is
//     as close to the weights as an integer table can be. A backend whose
//     share of the weights is below 1/M (say weight 1 next to 1,000,000) may
//     get no entry at all: that is its fair share, rounded.
//  2. Order. Backend i takes its (k+1)-th turn at time (2k+1)/(2*w_i), the
//     midpoint of its k-th interval of length 1/w_i (stride scheduling, or
//     Sainte-Laguë), ties to the smaller Name, until it has taken its t_i
//     turns. With equal weights this is plain round robin, as in the paper;
//     with weights every backend progresses at the pace of its weight, so no
//     backend fills the tail of the table alone. The times depend on the
//     backend's own weight only, not on W, so adding or removing a backend
//     changes the relative order of the others' turns only near the end,
//     where the quotas differ: that keeps disruption low.
//
// All arithmetic is on integers, exact (128-bit products where needed), with
// no floating point. The cost does not depend on the weight ratios: exactly M
// turns, bucket-sorted in O(M + N log N) time for usual weights and
// O(M log N) at worst, and permutation walks of about M ln M probes in all
// (about 10 per slot at M = 65537).
//
// # Determinism
//
// Two directors of a VRRP pair must compute the same table from the same set
// of backends. Build therefore depends only on the set: the backends are sorted
// by Name (byte-wise) before anything else, and the permutation of a backend
// comes from a fixed hash of its Name,
//
//	h      = SHA-256(Name)
//	offset = big-endian uint64(h[0:8])  mod M
//	skip   = big-endian uint64(h[8:16]) mod (M-1) + 1
//
// which is the same on every platform and Go version. Changing any of this
// changes the table and breaks agreement between directors of different
// versions during an upgrade; golden tests pin it.
package maglev

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// DefaultSize is the default table size, a prime.
const DefaultSize uint32 = 65537

// Empty is the table entry when no backend has a weight.
const Empty uint32 = 0xFFFFFFFF

// Errors returned by Build, wrapped with details; test with errors.Is.
var (
	ErrSize          = errors.New("maglev: table size must be a prime >= 3")
	ErrEmptyName     = errors.New("maglev: backend name is empty")
	ErrDuplicateName = errors.New("maglev: duplicate backend name")
	ErrDuplicateID   = errors.New("maglev: duplicate backend id")
	ErrReservedID    = errors.New("maglev: backend id is reserved for empty entries")
)

// Backend is one real server.
type Backend struct {
	ID     uint32 // what goes into the table (the dataplane's real id)
	Name   string // stable unique key, e.g. "10.0.0.11" — hashed for the permutation
	Weight uint32 // 0 = not in the table (drained)
}

// IsPrime reports whether n is a prime number.
func IsPrime(n uint32) bool {
	if n < 2 {
		return false
	}
	if n%2 == 0 {
		return n == 2
	}
	if n%3 == 0 {
		return n == 3
	}
	// Trial division by 6k±1 up to sqrt(n); at most ~11,000 steps for
	// n < 2^32. d*d fits in uint64.
	for d := uint64(5); d*d <= uint64(n); d += 6 {
		if uint64(n)%d == 0 || uint64(n)%(d+2) == 0 {
			return false
		}
	}
	return true
}

// Build returns the lookup table of length size for backends.
//
// size must be a prime >= 3. Names must be non-empty and unique, IDs unique
// and not Empty; this holds for drained backends too. Backends with Weight 0
// are left out. If no backend has a weight, every entry is Empty. The result
// depends only on the set of backends, not on their order.
func Build(backends []Backend, size uint32) ([]uint32, error) {
	if size < 3 || !IsPrime(size) {
		return nil, fmt.Errorf("%w: got %d", ErrSize, size)
	}
	sorted, err := validate(backends)
	if err != nil {
		return nil, err
	}

	table := make([]uint32, size)
	for i := range table {
		table[i] = Empty
	}

	st, total := quotas(sorted, size)
	if len(st) == 0 {
		return table, nil
	}
	fill(table, st, schedule(st, size, total))
	return table, nil
}

// validate returns the backends sorted by Name, or an error. The checks run
// on the sorted set, so the error does not depend on the input order either.
func validate(backends []Backend) ([]Backend, error) {
	sorted := slices.Clone(backends)
	// By ID too: with duplicate names the error must not depend on the
	// input order either.
	slices.SortFunc(sorted, func(a, b Backend) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	for i, b := range sorted {
		switch {
		case b.Name == "":
			return nil, fmt.Errorf("%w (id %d)", ErrEmptyName, b.ID)
		case i > 0 && b.Name == sorted[i-1].Name:
			return nil, fmt.Errorf("%w: %q", ErrDuplicateName, b.Name)
		case b.ID == Empty:
			return nil, fmt.Errorf("%w: %q has id %#x", ErrReservedID, b.Name, b.ID)
		}
	}
	ids := make([]uint32, len(sorted))
	for i, b := range sorted {
		ids[i] = b.ID
	}
	slices.Sort(ids)
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			return nil, fmt.Errorf("%w: %d", ErrDuplicateID, ids[i])
		}
	}
	return sorted, nil
}

// backend is the build state of one backend with a non-zero quota.
type backend struct {
	id     uint32
	pos    uint32 // next slot of its permutation
	skip   uint32
	quota  uint32 // turns to take in all (t)
	weight uint32 // w
}

// quotas returns the build state of the sorted backends that get at least one
// entry, in Name order, and the sum of the weights; the quotas add up to m.
func quotas(sorted []Backend, m uint32) ([]backend, uint64) {
	var total uint64
	n := 0
	for _, b := range sorted {
		if b.Weight > 0 {
			total += uint64(b.Weight)
			n++
		}
	}
	if n == 0 {
		return nil, 0
	}

	type share struct {
		quota uint32
		rem   uint64 // m*w mod total
	}
	shares := make([]share, 0, n)
	weighted := make([]Backend, 0, n)
	left := m
	for _, b := range sorted {
		if b.Weight == 0 {
			continue
		}
		// m < 2^32 and w < 2^32, so m*w < 2^64; the quotient is <= m.
		p := uint64(m) * uint64(b.Weight)
		q := uint32(p / total)
		shares = append(shares, share{quota: q, rem: p % total})
		weighted = append(weighted, b)
		left -= q
	}
	if left > 0 {
		// Σ rem/total == left and each rem/total < 1, so at least left
		// backends have a remainder: the largest ones get one entry more.
		order := make([]int32, n)
		for i := range order {
			order[i] = int32(i)
		}
		slices.SortFunc(order, func(a, b int32) int {
			if c := cmp.Compare(shares[b].rem, shares[a].rem); c != 0 {
				return c // larger remainder first
			}
			return cmp.Compare(a, b)
		})
		for _, i := range order[:left] {
			shares[i].quota++
		}
	}

	st := make([]backend, 0, n)
	for i, b := range weighted {
		if shares[i].quota == 0 {
			continue
		}
		offset, skip := permutation(b.Name, m)
		st = append(st, backend{id: b.ID, pos: offset, skip: skip, quota: shares[i].quota, weight: b.Weight})
	}
	return st, total
}

// permutation returns the offset and skip of the permutation of the backend
// called name in a table of size m (see the package documentation).
func permutation(name string, m uint32) (offset, skip uint32) {
	h := sha256.Sum256([]byte(name))
	offset = uint32(binary.BigEndian.Uint64(h[0:8]) % uint64(m))
	skip = uint32(binary.BigEndian.Uint64(h[8:16])%uint64(m-1)) + 1
	return offset, skip
}

// turn is the (k+1)-th turn of backend st[i], at time (2k+1)/(2*w_i).
type turn struct {
	i, k uint32
}

// schedule returns every turn of the backends in st, quota_i turns each, in
// order of time, ties to the smaller index (Name): the merge of N arithmetic
// progressions of rationals, exact.
//
// It is a bucket sort. A turn's bucket is floor(time*total), clamped to m:
// a non-decreasing function of the time, so sorting by bucket and then by
// exact time within each bucket gives the exact order whatever the weights;
// the buckets only make it fast. The floors are computed incrementally per
// backend, without a division per turn. Each backend has at most one turn
// per bucket (its turns are total/w_i >= 1 apart), and only its last turn
// can reach the clamped bucket m (time*total <= m + total/(2*w_i) for the
// last turn, so < m for the one before), so most buckets hold zero or one
// turn. Equal weights make buckets of equal times, already in index order.
func schedule(st []backend, m uint32, total uint64) []turn {
	nb := uint64(m) + 1
	count := make([]uint32, nb+1)
	each := func(visit func(b uint64, t turn)) {
		for i := range st {
			w := uint64(st[i].weight)
			// floor((2k+1)*total/(2w)) as q + r/(2w), stepping by
			// 2*total/(2w) = total/w.
			q, r := total/(2*w), total%(2*w)
			dq, dr := total/w, 2*(total%w)
			for k := range st[i].quota {
				visit(min(q, nb-1), turn{uint32(i), k})
				q += dq
				if r += dr; r >= 2*w {
					r -= 2 * w
					q++
				}
			}
		}
	}
	each(func(b uint64, _ turn) { count[b+1]++ })
	for b := uint64(1); b <= nb; b++ {
		count[b] += count[b-1]
	}
	turns := make([]turn, m)
	next := count[:nb] // next free place in each bucket
	each(func(b uint64, t turn) {
		turns[next[b]] = t
		next[b]++
	})
	// Now next[b] is the end of bucket b, and the start of b+1.
	start := uint32(0)
	for b := range nb {
		end := next[b]
		if end-start > 1 {
			sortTurns(st, turns[start:end])
		}
		start = end
	}
	return turns
}

// before reports whether turn a comes before turn b:
// (2*k_a+1)/(2*w_a) < (2*k_b+1)/(2*w_b), ties to the smaller index (Name).
// 2k+1 < 2^33 and w < 2^32, so the products are compared as 128-bit numbers.
func before(st []backend, a, b turn) bool {
	ahi, alo := bits.Mul64(2*uint64(a.k)+1, uint64(st[b.i].weight))
	bhi, blo := bits.Mul64(2*uint64(b.k)+1, uint64(st[a.i].weight))
	if ahi != bhi {
		return ahi < bhi
	}
	if alo != blo {
		return alo < blo
	}
	return a.i < b.i
}

// sortTurns sorts one bucket. Buckets are mostly tiny or already sorted
// (equal weights), which insertion sort handles in linear time; long unsorted
// ones go to the standard library's pdqsort. Either way the order is total,
// so the result is the same.
func sortTurns(st []backend, ts []turn) {
	if len(ts) > 12 {
		if !slices.IsSortedFunc(ts, func(a, b turn) int { return cmpTurn(st, a, b) }) {
			slices.SortFunc(ts, func(a, b turn) int { return cmpTurn(st, a, b) })
		}
		return
	}
	for j := 1; j < len(ts); j++ {
		for i := j; i > 0 && before(st, ts[i], ts[i-1]); i-- {
			ts[i], ts[i-1] = ts[i-1], ts[i]
		}
	}
}

func cmpTurn(st []backend, a, b turn) int {
	switch {
	case before(st, a, b):
		return -1
	case before(st, b, a):
		return 1
	}
	return 0
}

// fill fills table, all Empty, by letting the backends in st take their
// turns in order.
func fill(table []uint32, st []backend, turns []turn) {
	m := uint32(len(table))
	// Which slots are taken, 8 KiB for the default size: the walks below
	// probe it at random, and it stays in the L1 cache where the table
	// would not.
	used := make([]uint64, (m+63)/64)
	for _, t := range turns {
		b := &st[t.i]
		// The table is not full (the quotas add up to m) and the
		// permutation visits every slot (m is prime, 0 < skip < m), so
		// this ends; b never walks more than m steps over all its turns.
		for used[b.pos/64]&(1<<(b.pos%64)) != 0 {
			b.advance(m)
		}
		used[b.pos/64] |= 1 << (b.pos % 64)
		table[b.pos] = b.id
		b.advance(m)
	}
}

// advance moves b to the next slot of its permutation. The sum is taken in
// 64 bits, so it cannot overflow for any m < 2^32, and the compiler turns
// the wrap into a conditional move: which way it goes is random.
func (b *backend) advance(m uint32) {
	p := uint64(b.pos) + uint64(b.skip)
	if p >= uint64(m) {
		p -= uint64(m)
	}
	b.pos = uint32(p)
}
