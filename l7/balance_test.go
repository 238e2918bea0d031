package l7

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestSWRR(t *testing.T) {
	names := "abc"
	tests := []struct {
		name    string
		weights []int
		down    string
		picks   int
		want    string
	}{
		{"equal weights rotate", []int{1, 1, 1}, "", 6, "abcabc"},
		{"smooth, not bursty", []int{5, 1, 1}, "", 7, "aabacaa"},
		{"down server skipped", []int{1, 1, 1}, "b", 4, "acac"},
		{"weights among the live", []int{2, 1, 1}, "a", 4, "bcbc"},
		{"none live", []int{1, 1, 1}, "abc", 2, "--"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := newSWRR(len(tt.weights))
			var got strings.Builder
			for range tt.picks {
				i := rr.next(func(i int) int {
					if strings.ContainsRune(tt.down, rune(names[i])) {
						return 0
					}
					return tt.weights[i]
				})
				if i < 0 {
					got.WriteByte('-')
				} else {
					got.WriteByte(names[i])
				}
			}
			if got.String() != tt.want {
				t.Errorf("picks %q, want %q", got.String(), tt.want)
			}
		})
	}
}

func TestSWRRShares(t *testing.T) {
	w := []int{3, 7, 1, 256}
	rr := newSWRR(len(w))
	total := 0
	for _, x := range w {
		total += x
	}
	count := make([]int, len(w))
	for range total * 10 {
		count[rr.next(func(i int) int { return w[i] })]++
	}
	for i := range w {
		if count[i] != w[i]*10 {
			t.Errorf("server %d: %d picks, want %d", i, count[i], w[i]*10)
		}
	}
}

func TestParseBalance(t *testing.T) {
	tests := []struct {
		in   string
		want balanceSpec
		err  string
	}{
		{"", balanceSpec{algo: BalanceRoundRobin}, ""},
		{"roundrobin", balanceSpec{algo: BalanceRoundRobin}, ""},
		{"static-rr", balanceSpec{algo: BalanceStaticRR}, ""},
		{"leastconn", balanceSpec{algo: BalanceLeastConn}, ""},
		{"source", balanceSpec{algo: BalanceSource}, ""},
		{"uri", balanceSpec{algo: BalanceURI}, ""},
		{"uri whole", balanceSpec{algo: BalanceURI, whole: true}, ""},
		{"url_param userid", balanceSpec{algo: BalanceURLParam, param: "userid"}, ""},
		{"random", balanceSpec{algo: BalanceRandom, draws: 2}, ""},
		{"random(3)", balanceSpec{algo: BalanceRandom, draws: 3}, ""},
		{"url_param", balanceSpec{}, "needs a parameter name"},
		{"random(0)", balanceSpec{}, "draws must be 1..100"},
		{"random(x)", balanceSpec{}, "draws must be 1..100"},
		{"uri depth 3", balanceSpec{}, `unexpected "depth 3"`},
		{"leastconn x", balanceSpec{}, `unexpected "x"`},
		{"hash", balanceSpec{}, `unknown algorithm "hash"`},
	}
	for _, tt := range tests {
		got, err := parseBalance(tt.in)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%q: %v", tt.in, err)
		case tt.err == "" && got != tt.want:
			t.Errorf("%q: %+v, want %+v", tt.in, got, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%q: error %v, want %q", tt.in, err, tt.err)
		}
	}
}

// testServers returns servers named a, b, c... with the given weights,
// all up, for the policies alone.
func testServers(weights ...int) []*server {
	var srvs []*server
	for i, w := range weights {
		name := string(rune('a' + i))
		s := &server{name: name, cookie: name, seed: mix64(hashBytes([]byte(name))), cfgWeight: w}
		s.weight.Store(int32(w))
		s.up.Store(true)
		srvs = append(srvs, s)
	}
	return srvs
}

func testPolicy(t *testing.T, balance string, srvs []*server) policy {
	t.Helper()
	spec, err := parseBalance(balance)
	if err != nil {
		t.Fatal(err)
	}
	w := make([]int, len(srvs))
	for i, s := range srvs {
		w[i] = s.cfgWeight
	}
	return newPolicy(spec, w)
}

// keyFor returns the hash key of request i for a policy: distinct client
// addresses, paths or parameter values.
func keyFor(balance string, i int) []byte {
	switch balance {
	case BalanceSource:
		return fmt.Appendf(nil, "10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	case BalanceURI:
		return fmt.Appendf(nil, "/item/%d", i)
	case BalanceURLParam + " u":
		return fmt.Appendf(nil, "user%d", i)
	}
	return nil
}

// TestPolicyShares checks that every policy respects the weights and
// skips a down server, a drained one and one to avoid. With no request
// in flight leastconn and random(2) reduce to their tie-breaking, which
// must be weighted too: leastconn by the load per weight of the pick
// itself, which the test simulates by keeping requests in flight.
func TestPolicyShares(t *testing.T) {
	weights := []int{1, 2, 5}
	const picks = 8000
	for _, balance := range []string{BalanceRoundRobin, BalanceStaticRR, BalanceLeastConn, BalanceSource, BalanceURI, BalanceURLParam + " u", BalanceRandom, "random(1)"} {
		t.Run(balance, func(t *testing.T) {
			for _, tt := range []struct {
				name  string
				setup func(srvs []*server) []*server // returns avoid
				want  []float64
			}{
				{"all up", func([]*server) []*server { return nil }, []float64{1. / 8, 2. / 8, 5. / 8}},
				{"b down", func(s []*server) []*server { s[1].up.Store(false); return nil }, []float64{1. / 6, 0, 5. / 6}},
				{"c drained", func(s []*server) []*server { s[2].drain.Store(true); return nil }, []float64{1. / 3, 2. / 3, 0}},
				{"a weight 0", func(s []*server) []*server { s[0].weight.Store(0); return nil }, []float64{0, 2. / 7, 5. / 7}},
				{"avoid c", func(s []*server) []*server { return s[2:] }, []float64{1. / 3, 2. / 3, 0}},
			} {
				if balance == BalanceStaticRR && tt.name == "a weight 0" {
					continue // same as drained for static-rr
				}
				srvs := testServers(weights...)
				p := testPolicy(t, balance, srvs)
				avoid := tt.setup(srvs)
				count := make([]int, len(srvs))
				for i := range picks {
					s := p.pick(srvs, avoid, keyFor(balance, i))
					if s == nil {
						t.Fatalf("%s: no server", tt.name)
					}
					count[s.name[0]-'a']++
					if balance == BalanceLeastConn || strings.HasPrefix(balance, BalanceRandom) {
						// Each request stays in flight: the policy sees
						// the loads grow with the shares.
						s.st.cur.Add(1)
					}
				}
				for i, c := range count {
					got := float64(c) / picks
					if math.Abs(got-tt.want[i]) > 0.03 || tt.want[i] == 0 && c > 0 {
						t.Errorf("%s: server %c got %.3f of the picks, want %.3f (%v)", tt.name, 'a'+i, got, tt.want[i], count)
					}
				}
				t.Logf("%s: %v", tt.name, count)
			}
		})
	}
}

func TestPolicyNoneLive(t *testing.T) {
	for _, balance := range []string{BalanceRoundRobin, BalanceStaticRR, BalanceLeastConn, BalanceSource, BalanceRandom} {
		srvs := testServers(1, 1)
		p := testPolicy(t, balance, srvs)
		srvs[0].up.Store(false)
		srvs[1].drain.Store(true)
		if s := p.pick(srvs, nil, []byte("k")); s != nil {
			t.Errorf("%s: picked %s with none live", balance, s.name)
		}
	}
}

// TestRendezvous checks the hashing: the same key always picks the same
// server, in any process (the expected picks are fixed), and when a
// server goes down only its keys move, and they come back after.
func TestRendezvous(t *testing.T) {
	srvs := testServers(1, 1, 1, 1)
	p := testPolicy(t, BalanceSource, srvs)
	var got strings.Builder
	for _, k := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "2001:db8::1", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"} {
		got.WriteString(p.pick(srvs, nil, []byte(k)).name)
	}
	// Fixed: a change of hash or scoring would re-map every client of
	// every director, and the two directors of a pair must agree.
	if want := "ddcaccba"; got.String() != want {
		t.Errorf("picks %q, want %q", got.String(), want)
	}

	const keys = 4000
	before := make([]string, keys)
	for i := range keys {
		before[i] = p.pick(srvs, nil, keyFor(BalanceSource, i)).name
	}
	srvs[1].up.Store(false)
	moved := 0
	for i := range keys {
		now := p.pick(srvs, nil, keyFor(BalanceSource, i)).name
		switch {
		case before[i] == "b":
			moved++
		case now != before[i]:
			t.Fatalf("key %d moved from %s to %s while b went down", i, before[i], now)
		}
	}
	if moved < keys/4-keys/20 || moved > keys/4+keys/20 {
		t.Errorf("%d of %d keys were on b, want about a quarter", moved, keys)
	}
	srvs[1].up.Store(true)
	for i := range keys {
		if now := p.pick(srvs, nil, keyFor(BalanceSource, i)).name; now != before[i] {
			t.Fatalf("key %d on %s after b came back, was %s", i, now, before[i])
		}
	}
}

func TestLeastConnPicksLeastLoaded(t *testing.T) {
	srvs := testServers(1, 1, 2)
	p := testPolicy(t, BalanceLeastConn, srvs)
	srvs[0].st.cur.Store(3)
	srvs[1].st.cur.Store(1)
	srvs[2].st.cur.Store(4) // (4+1)/2 = 2.5 against b's 2
	for range 5 {
		if s := p.pick(srvs, nil, nil); s.name != "b" {
			t.Fatalf("picked %s, want b, the least loaded", s.name)
		}
	}
	// Equal loads take turns.
	srvs[0].st.cur.Store(1)
	srvs[2].st.cur.Store(3) // (3+1)/2 = 2
	seen := map[string]int{}
	for range 30 {
		seen[p.pick(srvs, nil, nil).name]++
	}
	if len(seen) != 3 || seen["a"] != 10 || seen["b"] != 10 || seen["c"] != 10 {
		t.Errorf("equal loads: picks %v, want 10 each", seen)
	}
}

func TestRandomTwoChoices(t *testing.T) {
	srvs := testServers(1, 1, 1, 1)
	p := testPolicy(t, BalanceRandom, srvs)
	srvs[0].st.cur.Store(100) // a is overloaded
	n := 0
	for range 4000 {
		if p.pick(srvs, nil, nil).name == "a" {
			n++
		}
	}
	// a wins only when both draws are a: 1/16 of the picks.
	if n > 400 {
		t.Errorf("overloaded server picked %d times of 4000, want about 250", n)
	}
	t.Logf("overloaded server: %d of 4000 picks", n)
}

func TestHashKey(t *testing.T) {
	ip := func() []byte { return []byte("192.0.2.9") }
	tests := []struct {
		balance, uri, want string
		none               bool
	}{
		{"source", "/x", "192.0.2.9", false},
		{"uri", "/a/b?x=1", "/a/b", false},
		{"uri whole", "/a/b?x=1", "/a/b?x=1", false},
		{"uri", "http://example.com/a?x=1", "/a", false},
		{"uri whole", "http://example.com/a?x=1", "/a?x=1", false},
		{"uri", "http://example.com", "", false},
		{"url_param u", "/p?a=1&u=joe&u=ann", "joe", false},
		{"url_param u", "/p?uu=1&u=&u=ann#f", "ann", false},
		{"url_param u", "/p?a=1", "", true},
		{"url_param u", "/p?u", "", true},
		{"url_param u", "/p/u=1", "", true},
		{"roundrobin", "/p", "", true},
	}
	for _, tt := range tests {
		spec, err := parseBalance(tt.balance)
		if err != nil {
			t.Fatal(err)
		}
		got := spec.hashKey([]byte(tt.uri), ip)
		if tt.none != (got == nil) || string(got) != tt.want {
			t.Errorf("%s %q: key %q (nil %v), want %q (nil %v)", tt.balance, tt.uri, got, got == nil, tt.want, tt.none)
		}
	}
}
