package l7

// swrr is smooth weighted roundrobin (nginx's): every pick adds each
// eligible server's weight to its current value, takes the largest and
// subtracts the total from it. Over a cycle of sum(weights) picks each
// server gets exactly its weight, spread out rather than in bursts
// (weights 5,1,1 give a a b a c a a, not a a a a a b c).
//
// It is a pure algorithm: no locking, no time, no I/O.
type swrr struct {
	weight  []int
	current []int
}

func newSWRR(weights []int) *swrr {
	return &swrr{weight: append([]int(nil), weights...), current: make([]int, len(weights))}
}

// next returns the index of the next server among those for which ok
// returns true, or -1 if there is none.
func (s *swrr) next(ok func(i int) bool) int {
	best, total := -1, 0
	for i, w := range s.weight {
		if !ok(i) {
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
