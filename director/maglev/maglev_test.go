package maglev

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// backends returns n backends named like real server addresses, with IDs
// 1..n and the weight weight(i) for the i-th.
func backends(n int, weight func(i int) uint32) []Backend {
	bs := make([]Backend, n)
	for i := range bs {
		bs[i] = Backend{
			ID:     uint32(i + 1),
			Name:   fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff),
			Weight: weight(i),
		}
	}
	return bs
}

func equal(int) uint32   { return 1 }
func mixed(i int) uint32 { return uint32(i%10 + 1) } // 1..10

func mustBuild(t testing.TB, bs []Backend, size uint32) []uint32 {
	t.Helper()
	table, err := Build(bs, size)
	if err != nil {
		t.Fatalf("Build(%d backends, %d): %v", len(bs), size, err)
	}
	if len(table) != int(size) {
		t.Fatalf("Build(%d backends, %d): table has %d entries", len(bs), size, len(table))
	}
	return table
}

func counts(table []uint32) map[uint32]int {
	c := make(map[uint32]int)
	for _, id := range table {
		c[id]++
	}
	return c
}

func TestIsPrime(t *testing.T) {
	// Cross-check against a sieve for small numbers.
	const limit = 200_000
	composite := make([]bool, limit)
	for i := 2; i < limit; i++ {
		if !composite[i] {
			for j := i * i; j < limit; j += i {
				composite[j] = true
			}
		}
	}
	for n := range uint32(limit) {
		if want := n >= 2 && !composite[n]; IsPrime(n) != want {
			t.Fatalf("IsPrime(%d) = %v, want %v", n, !want, want)
		}
	}
	for _, tc := range []struct {
		n    uint32
		want bool
	}{
		{65537, true},
		{65521, true},
		{65536, false},
		{65535, false},
		{16381, true},
		{1_000_003, true},
		{4294967291, true},  // largest prime < 2^32
		{4294967295, false}, // 3 * 5 * 17 * 257 * 65537
		{4294836225, false}, // 65535^2
		{4292870399, false}, // 65519 * 65521, two large factors
	} {
		if got := IsPrime(tc.n); got != tc.want {
			t.Errorf("IsPrime(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	ok := []Backend{{ID: 1, Name: "10.0.0.1", Weight: 1}, {ID: 2, Name: "10.0.0.2", Weight: 1}}
	for _, tc := range []struct {
		name     string
		backends []Backend
		size     uint32
		want     error
	}{
		{"size 0", ok, 0, ErrSize},
		{"size 1", ok, 1, ErrSize},
		{"size 2", ok, 2, ErrSize},
		{"size 4", ok, 4, ErrSize},
		{"size 65535", ok, 65535, ErrSize},
		{"size 65536", ok, 65536, ErrSize},
		{"size max", ok, math.MaxUint32, ErrSize},
		{"size 0 without backends", nil, 0, ErrSize},
		{"duplicate name", []Backend{
			{ID: 1, Name: "10.0.0.1", Weight: 1},
			{ID: 2, Name: "10.0.0.2", Weight: 1},
			{ID: 3, Name: "10.0.0.1", Weight: 1},
		}, 13, ErrDuplicateName},
		{"duplicate name, drained", []Backend{
			{ID: 1, Name: "10.0.0.1", Weight: 1},
			{ID: 3, Name: "10.0.0.1", Weight: 0},
		}, 13, ErrDuplicateName},
		{"duplicate id", []Backend{
			{ID: 7, Name: "10.0.0.1", Weight: 1},
			{ID: 2, Name: "10.0.0.2", Weight: 1},
			{ID: 7, Name: "10.0.0.3", Weight: 1},
		}, 13, ErrDuplicateID},
		{"duplicate id, drained", []Backend{
			{ID: 7, Name: "10.0.0.1", Weight: 0},
			{ID: 7, Name: "10.0.0.3", Weight: 0},
		}, 13, ErrDuplicateID},
		{"empty name", []Backend{{ID: 1, Name: "", Weight: 1}}, 13, ErrEmptyName},
		{"reserved id", []Backend{{ID: Empty, Name: "10.0.0.1", Weight: 1}}, 13, ErrReservedID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table, err := Build(tc.backends, tc.size)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Build() error = %v, want %v", err, tc.want)
			}
			if table != nil {
				t.Errorf("Build() returned a table with the error")
			}
		})
	}
}

func TestBuildNoWeight(t *testing.T) {
	for _, tc := range []struct {
		name     string
		backends []Backend
	}{
		{"nil", nil},
		{"empty", []Backend{}},
		{"all drained", backends(10, func(int) uint32 { return 0 })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := mustBuild(t, tc.backends, 251)
			for i, id := range table {
				if id != Empty {
					t.Fatalf("table[%d] = %d, want Empty", i, id)
				}
			}
		})
	}
}

func TestBuildDoesNotModifyInput(t *testing.T) {
	bs := backends(50, mixed)
	slices.Reverse(bs)
	orig := slices.Clone(bs)
	mustBuild(t, bs, 251)
	if !slices.Equal(bs, orig) {
		t.Errorf("Build reordered its input")
	}
}

// TestShares checks that every backend's share of the table follows its share
// of the weights.
//
// The bound is |entries - expected| <= max(1% of expected, 1 entry), with
// expected = M*w/W. A strict 1% relative bound cannot hold in general: a table
// has whole entries, and 1% of expected is less than one entry whenever
// expected < 100 (1000 equal backends get 65.537 entries each, so 65 or 66;
// in the mixed case a weight-1 backend of 1000 expects 11.9). Build's quotas
// are a largest-remainder apportionment, so it also meets the stronger
// |entries - expected| < 1, checked exactly with integers.
func TestShares(t *testing.T) {
	weights := []struct {
		name string
		w    func(int) uint32
	}{
		{"equal", equal},
		{"mixed", mixed},
		{"wide", func(i int) uint32 { return uint32(1 + i*i%997) }},
	}
	for _, ws := range weights {
		for _, n := range []int{1, 2, 3, 5, 10, 50, 100, 500, 1000} {
			t.Run(fmt.Sprintf("%s/N=%d", ws.name, n), func(t *testing.T) {
				bs := backends(n, ws.w)
				table := mustBuild(t, bs, DefaultSize)
				checkShares(t, bs, table)
			})
		}
	}
}

// checkShares asserts the bounds of TestShares and logs the worst deviation.
func checkShares(t *testing.T, bs []Backend, table []uint32) {
	t.Helper()
	m := uint64(len(table))
	c := counts(table)
	var total uint64
	for _, b := range bs {
		total += uint64(b.Weight)
	}
	var worstRel, worstAbs float64
	for _, b := range bs {
		got := c[b.ID]
		if b.Weight == 0 {
			if got != 0 {
				t.Errorf("drained backend %s has %d entries", b.Name, got)
			}
			continue
		}
		expected := float64(m) * float64(b.Weight) / float64(total)
		dev := math.Abs(float64(got) - expected)
		if dev > max(0.01*expected, 1) {
			t.Errorf("backend %s (weight %d): %d entries, expected %.3f", b.Name, b.Weight, got, expected)
		}
		// Exact: |got*W - M*w| < W.
		if d := int64(uint64(got)*total) - int64(m*uint64(b.Weight)); d >= int64(total) || -d >= int64(total) {
			t.Errorf("backend %s (weight %d): %d entries, not within 1 of %.3f", b.Name, b.Weight, got, expected)
		}
		worstAbs = max(worstAbs, dev)
		worstRel = max(worstRel, dev/expected)
	}
	if c[Empty] != 0 && total > 0 {
		t.Errorf("%d Empty entries in a table with weights", c[Empty])
	}
	t.Logf("N=%d M=%d: worst deviation %.3f entries, %.3f%% relative", len(bs), m, worstAbs, 100*worstRel)
}

func TestPathologicalWeights(t *testing.T) {
	for _, tc := range []struct {
		name     string
		backends []Backend
	}{
		{"1 and 1e6", []Backend{{ID: 1, Name: "a", Weight: 1}, {ID: 2, Name: "b", Weight: 1_000_000}}},
		{"1e6 and 1", []Backend{{ID: 1, Name: "a", Weight: 1_000_000}, {ID: 2, Name: "b", Weight: 1}}},
		{"1 and max", []Backend{{ID: 1, Name: "a", Weight: 1}, {ID: 2, Name: "b", Weight: math.MaxUint32}}},
		{"all max", backends(1000, func(int) uint32 { return math.MaxUint32 })},
		{"one heavy among 1000", backends(1000, func(i int) uint32 {
			if i == 500 {
				return 1_000_000
			}
			return 1
		})},
		{"one light among 1000", backends(1000, func(i int) uint32 {
			if i == 500 {
				return 1
			}
			return 1_000_000
		})},
		{"powers of two", backends(32, func(i int) uint32 { return 1 << i })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			table := mustBuild(t, tc.backends, DefaultSize)
			if d := time.Since(start); d > time.Second {
				t.Errorf("Build took %v", d)
			}
			checkShares(t, tc.backends, table)
		})
	}
}

// TestSmallSizes builds tables smaller than the number of backends, where
// most backends get no entry, and the smallest legal table.
func TestSmallSizes(t *testing.T) {
	for _, size := range []uint32{3, 5, 7, 13, 251} {
		for _, n := range []int{1, 2, 3, 10, 100, 1000} {
			bs := backends(n, mixed)
			table := mustBuild(t, bs, size)
			checkShares(t, bs, table)
			if want := reference(bs, size); !slices.Equal(table, want) {
				t.Errorf("size %d, N=%d: table differs from the reference", size, n)
			}
		}
	}
}

// TestShuffle checks that the table depends on the set of backends only.
func TestShuffle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{2, 10, 100, 1000} {
		bs := backends(n, func(i int) uint32 { return uint32(i % 11) }) // some drained
		want := mustBuild(t, bs, DefaultSize)
		shuffles := 50
		if n >= 1000 {
			shuffles = 10
		}
		for range shuffles {
			rng.Shuffle(len(bs), func(i, j int) { bs[i], bs[j] = bs[j], bs[i] })
			if got := mustBuild(t, bs, DefaultSize); !slices.Equal(got, want) {
				t.Fatalf("N=%d: table differs after shuffling the input", n)
			}
		}
	}
}

// TestDrainedInvisible checks that a backend with weight 0 does not change the
// table of the others.
func TestDrainedInvisible(t *testing.T) {
	bs := backends(100, mixed)
	want := mustBuild(t, bs, DefaultSize)
	drained := append(slices.Clone(bs),
		Backend{ID: 1000, Name: "10.9.9.9", Weight: 0},
		Backend{ID: 1001, Name: "0.0.0.0", Weight: 0})
	if got := mustBuild(t, drained, DefaultSize); !slices.Equal(got, want) {
		t.Errorf("drained backends changed the table")
	}
}

// disruption returns how many entries changed between two tables among those
// not owned by the backend id in either (moved: entries that went from one
// backend in both sets to another), and how many the backend id owns in
// either (own).
func disruption(before, after []uint32, id uint32) (moved, own int) {
	for i := range before {
		switch {
		case before[i] == id || after[i] == id:
			own++
		case before[i] != after[i]:
			moved++
		}
	}
	return moved, own
}

// TestDisruption measures how many entries move between the other backends
// when one backend is removed or added. Ideal consistent hashing moves none;
// Maglev trades a few for even balance (§3.4 of the paper), more so
// when M/N is small. The bounds are the measured worst cases (logged) with a
// little headroom, in percent of M; the inputs are fixed, so the test is
// deterministic.
func TestDisruption(t *testing.T) {
	for _, tc := range []struct {
		n, trials             int
		removeBound, addBound float64 // percent of M
	}{
		// Measured worst (equal, mixed weights): remove 0.027, 0.027;
		// add 0.664, 0.430. The new backend takes 25% of M.
		{3, 100, 0.05, 0.8},
		// Measured: remove 0.273, 0.221; add 0.461, 0.372.
		{10, 100, 0.35, 0.6},
		// Measured: remove 0.638, 0.737; add 0.659, 0.751.
		{100, 100, 0.9, 0.9},
		// Measured: remove 0.609, 0.920; add 0.612, 0.948. M/N is only
		// about 65 here, so the churn is several times the removed
		// backend's own 0.1%; a larger M lowers it.
		{1000, 30, 1.2, 1.2},
	} {
		for _, ws := range []struct {
			name string
			w    func(int) uint32
		}{{"equal", equal}, {"mixed", mixed}} {
			t.Run(fmt.Sprintf("%s/N=%d", ws.name, tc.n), func(t *testing.T) {
				trials := tc.trials
				if testing.Short() {
					trials = min(trials, 5)
				}
				rng := rand.New(rand.NewPCG(uint64(tc.n), 7))
				bs := backends(tc.n, ws.w)
				base := mustBuild(t, bs, DefaultSize)
				baseCounts := counts(base)
				percent := func(moved int) float64 { return 100 * float64(moved) / float64(DefaultSize) }

				var worstRemove, sumRemove, worstAdd, sumAdd float64
				for trial := range trials {
					r := rng.IntN(tc.n)
					after := mustBuild(t, slices.Delete(slices.Clone(bs), r, r+1), DefaultSize)
					moved, own := disruption(base, after, bs[r].ID)
					if own != baseCounts[bs[r].ID] {
						t.Fatalf("removed backend %s still in the table", bs[r].Name)
					}
					worstRemove = max(worstRemove, percent(moved))
					sumRemove += percent(moved)

					extra := Backend{
						ID:     uint32(tc.n + 1 + trial),
						Name:   fmt.Sprintf("192.168.%d.%d", trial>>8, trial&0xff),
						Weight: ws.w(rng.IntN(10)),
					}
					after = mustBuild(t, append(slices.Clone(bs), extra), DefaultSize)
					moved, _ = disruption(base, after, extra.ID)
					worstAdd = max(worstAdd, percent(moved))
					sumAdd += percent(moved)
				}
				t.Logf("N=%d %s: moved between others, %% of M: remove one: worst %.3f, mean %.3f; add one: worst %.3f, mean %.3f (1/N = %.3f)",
					tc.n, ws.name, worstRemove, sumRemove/float64(trials), worstAdd, sumAdd/float64(trials), 100/float64(tc.n))
				if worstRemove > tc.removeBound {
					t.Errorf("remove one: %.3f%% of M moved, bound %.3f%%", worstRemove, tc.removeBound)
				}
				if worstAdd > tc.addBound {
					t.Errorf("add one: %.3f%% of M moved, bound %.3f%%", worstAdd, tc.addBound)
				}
			})
		}
	}
}

// reference is a slow, direct transcription of the algorithm in the package
// documentation: whole permutations, quotas from exact fractions and every
// turn's time sorted up front. Build must return the same table.
func reference(in []Backend, m uint32) []uint32 {
	bs := slices.Clone(in)
	slices.SortFunc(bs, func(a, b Backend) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	bs = slices.DeleteFunc(bs, func(b Backend) bool { return b.Weight == 0 })
	table := make([]uint32, m)
	for i := range table {
		table[i] = Empty
	}
	if len(bs) == 0 {
		return table
	}

	var total uint64
	for _, b := range bs {
		total += uint64(b.Weight)
	}
	quota := make([]uint64, len(bs))
	rem := make([]uint64, len(bs))
	left := uint64(m)
	for i, b := range bs {
		quota[i] = uint64(m) * uint64(b.Weight) / total
		rem[i] = uint64(m) * uint64(b.Weight) % total
		left -= quota[i]
	}
	for ; left > 0; left-- {
		best := -1
		for i := range bs {
			if rem[i] > 0 && (best < 0 || rem[i] > rem[best]) {
				best = i
			}
		}
		quota[best]++
		rem[best] = 0
	}

	perm := make([][]uint32, len(bs))
	for i, b := range bs {
		h := sha256.Sum256([]byte(b.Name))
		offset := binary.BigEndian.Uint64(h[0:8]) % uint64(m)
		skip := binary.BigEndian.Uint64(h[8:16])%uint64(m-1) + 1
		perm[i] = make([]uint32, m)
		for j := range uint64(m) {
			perm[i][j] = uint32((offset + j*skip) % uint64(m))
		}
	}

	type turn struct{ i, k uint64 } // at time (2k+1)/(2*w_i)
	var turns []turn
	for i := range bs {
		for k := range quota[i] {
			turns = append(turns, turn{uint64(i), k})
		}
	}
	slices.SortStableFunc(turns, func(a, b turn) int {
		// (2ka+1)/(2wa) vs (2kb+1)/(2wb), exactly.
		l := new(big.Int).Mul(big.NewInt(int64(2*a.k+1)), big.NewInt(int64(bs[b.i].Weight)))
		r := new(big.Int).Mul(big.NewInt(int64(2*b.k+1)), big.NewInt(int64(bs[a.i].Weight)))
		if c := l.Cmp(r); c != 0 {
			return c
		}
		return int(a.i) - int(b.i)
	})
	next := make([]int, len(bs))
	for _, tu := range turns {
		for table[perm[tu.i][next[tu.i]]] != Empty {
			next[tu.i]++
		}
		table[perm[tu.i][next[tu.i]]] = bs[tu.i].ID
		next[tu.i]++
	}
	return table
}

func TestReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 300 {
		size := []uint32{3, 5, 7, 11, 13, 101, 251, 1009, 4093}[trial%9]
		n := 1 + rng.IntN(40)
		bs := backends(n, func(int) uint32 {
			switch rng.IntN(4) {
			case 0:
				return 0
			case 1:
				return uint32(rng.IntN(1_000_000))
			}
			return uint32(1 + rng.IntN(10))
		})
		got := mustBuild(t, bs, size)
		if want := reference(bs, size); !slices.Equal(got, want) {
			t.Fatalf("trial %d (N=%d, size %d): table differs from the reference\n got %v\nwant %v", trial, n, size, got, want)
		}
	}
}

// TestGolden pins the tables, so that a change to the hash, the sort or the
// schedule, which would make two directors of different versions disagree,
// fails here. Update the values only on purpose, with a note in the release.
func TestGolden(t *testing.T) {
	small := []Backend{
		{ID: 1, Name: "10.0.0.1", Weight: 1},
		{ID: 2, Name: "10.0.0.2", Weight: 2},
		{ID: 3, Name: "10.0.0.3", Weight: 3},
		{ID: 4, Name: "10.0.0.4", Weight: 0},
	}
	if got, want := mustBuild(t, small, 13), []uint32{1, 1, 3, 3, 3, 2, 2, 3, 3, 2, 3, 3, 2}; !slices.Equal(got, want) {
		t.Errorf("Build(small, 13) = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		name     string
		backends []Backend
		want     string // SHA-256 of the table, little-endian uint32s
	}{
		{"equal 10", backends(10, equal), "d330e5aa82f54e9a671313f32b84008c6de1b78e2f5d8a04d9e98045501dc5bb"},
		{"mixed 1000", backends(1000, mixed), "c7c9e5ba95cd6019929889f6c5587974552f9fc15ffd310b0618a65784f400a5"},
	} {
		table := mustBuild(t, tc.backends, DefaultSize)
		h := sha256.New()
		if err := binary.Write(h, binary.LittleEndian, table); err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != tc.want {
			t.Errorf("%s: table hash %s, want %s", tc.name, got, tc.want)
		}
	}
}

func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		for _, ws := range []struct {
			name string
			w    func(int) uint32
		}{
			{"equal", equal},
			{"mixed", mixed},
			// Distinct, nearly equal weights: the turns of each round
			// bunch up out of Name order, the slow case of the
			// schedule's bucket sort.
			{"distinct", func(i int) uint32 { return uint32(1_000_000 + i) }},
		} {
			b.Run(fmt.Sprintf("N=%d/%s", n, ws.name), func(b *testing.B) {
				bs := backends(n, ws.w)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Build(bs, DefaultSize); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
